/*
 * make_data_io.h — what the examples' data generators share: a seeded random
 * source, writing a samples x channels float table as CSV (a header of
 * channel names) or NPY (v1.0, float32), and making folders; any failure
 * ends the program with a message naming the path.
 */
#ifndef LOBE_MAKE_DATA_IO_H
#define LOBE_MAKE_DATA_IO_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A 64-bit LCG: set rng_state to seed it; uniform() is in (0, 1). */
static uint64_t rng_state;

static double uniform(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return ((rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static double gaussian(void) {
  return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
}

static FILE *create(const char *path) {
  FILE *f = fopen(path, "wb");
  if (!f) {
    fprintf(stderr, "make_data: %s: %s\n", path, strerror(errno));
    exit(1);
  }
  return f;
}

static void finish(FILE *f, const char *path) {
  if (ferror(f) | fclose(f)) {
    fprintf(stderr, "make_data: writing %s failed\n", path);
    exit(1);
  }
}

static void make_dir(const char *path) {
  if (mkdir(path, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "make_data: %s: %s\n", path, strerror(errno));
    exit(1);
  }
}

/* Channels named ch1, ch2, ...; six significant digits. */
static void write_csv(const char *path, const float *x, int rows, int cols) {
  FILE *f = create(path);
  for (int c = 0; c < cols; c++)
    fprintf(f, "%sch%d", c ? "," : "", c + 1);
  fputc('\n', f);
  for (int k = 0; k < rows; k++)
    for (int c = 0; c < cols; c++)
      fprintf(f, "%.6g%c", x[k * cols + c], c + 1 < cols ? ',' : '\n');
  finish(f, path);
}

/* NPY v1.0: magic, header length, a Python dict padded to 64 bytes. */
static void write_npy(const char *path, const float *x, int rows, int cols) {
  FILE *f = create(path);
  char header[128];
  int n = snprintf(header, sizeof header,
                   "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }",
                   rows, cols);
  int total = (10 + n + 1 + 63) / 64 * 64;
  memset(header + n, ' ', total - 10 - n - 1);
  header[total - 10 - 1] = '\n';
  uint16_t len = (uint16_t)(total - 10);
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  fputc(len & 0xff, f);
  fputc(len >> 8, f);
  fwrite(header, 1, len, f);
  fwrite(x, sizeof(float), (size_t)rows * cols, f);
  finish(f, path);
}

#endif
