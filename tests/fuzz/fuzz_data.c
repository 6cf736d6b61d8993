/*
 * fuzz_data.c — a libFuzzer harness over the data readers (runtime/data).
 * The first input byte picks the reader (its low 3 bits) and a variant (the
 * rest: header only, labels, orientation, ...); the other bytes are the file,
 * written to a scratch directory because the readers and the libraries under
 * them (EDFlib, matio, HDF5, niftilib, libzip) open paths, some by extension.
 * A reader must either succeed or fail with a message; a crash, leak or
 * sanitizer report anywhere in it fails the run. Built by run_fuzz_data.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { FMT_CSV, FMT_NPY, FMT_EDF, FMT_MAT, FMT_NWB, FMT_NIFTI, FMT_ZIP, FMT_COUNT };

/* The extension each library expects; EDFlib and niftilib go by it. */
static const char *const extension[FMT_COUNT] = {
  "csv", "npy", "edf", "mat", "nwb", "nii", "zip",
};

static char scratch[4096];
static char paths[FMT_COUNT][96];
static char bdf_path[96];

static void remove_scratch(void) {
  for (int i = 0; i < FMT_COUNT; i++)
    unlink(paths[i]);
  unlink(bdf_path);
  rmdir(scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  const char *tmp = getenv("TMPDIR");
  snprintf(scratch, sizeof scratch, "%s/lobe-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(scratch)) {
    perror("fuzz_data: mkdtemp");
    exit(1);
  }
  for (int i = 0; i < FMT_COUNT; i++)
    snprintf(paths[i], sizeof paths[i], "%s/in.%s", scratch, extension[i]);
  snprintf(bdf_path, sizeof bdf_path, "%s/in.bdf", scratch);
  atexit(remove_scratch);
  return 0;
}

static void write_file(const char *path, const uint8_t *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
    perror(path);
    abort();
  }
}

/* Every failure must say something: an empty message is a reader bug. */
static void check_message(int rc, const char *err) {
  if (rc != 0 && !err[0]) {
    fprintf(stderr, "fuzz_data: a reader failed without a message\n");
    abort();
  }
}

static int read_table(int fmt, const char *path, int variant, char *err, size_t errlen) {
  DataTable t;
  int rc = -1, header_only = variant & 1;
  if (fmt == FMT_CSV)
    rc = data_read_csv(path, header_only, &t, err, errlen);
  else if (fmt == FMT_NPY)
    rc = data_read_npy(path, header_only, &t, err, errlen);
  else if (fmt == FMT_MAT)
    rc = data_read_mat(path, variant & 2 ? "x" : "data",
                       variant & 4 ? DATA_MAT_TRANSPOSED : DATA_MAT_AS_STORED, header_only,
                       &t, err, errlen);
  if (rc == 0)
    data_free(&t);
  return rc;
}

/* Variant bits: 1 header only, 2 pick signals by label, 4 a BDF file. */
static int read_edf(const char *path, int variant, char *err, size_t errlen) {
  static const char *const labels[] = {"O1", "EEG Fpz-Cz"};
  DataEdf e;
  int rc = data_read_edf(path, labels, variant & 2 ? 2 : 0, variant & 1, &e, err, errlen);
  if (rc == 0)
    data_edf_free(&e);
  return rc;
}

/* Variant bits: 1 a time series rather than spike units, 2 a window. */
static int read_nwb(const char *path, int variant, char *err, size_t errlen) {
  DataTable t;
  double t0, rate;
  int rc;
  if (variant & 1)
    rc = data_read_nwb_series(path, variant & 2 ? "/acquisition/lfp" : "/acquisition/x",
                              &t, &t0, &rate, err, errlen);
  else if (variant & 2)
    rc = data_read_nwb_units(path, 0.25, 0.5, 2.0, &t, err, errlen);
  else
    rc = data_read_nwb_units(path, 0.01, 0, 0, &t, err, errlen);
  if (rc == 0)
    data_free(&t);
  return rc;
}

/* The file is both the series and its label volume: a 3-D image of small
 * integers is a valid pair. Variant bit 1 names the columns. */
static int read_nifti(const char *path, int variant, char *err, size_t errlen) {
  static const char *const names[] = {"V1", "V2"};
  DataTable t;
  double rate;
  int rc = data_read_nifti_regions(path, path, names, variant & 1 ? 2 : 0, &t, &rate, err,
                                   errlen);
  if (rc == 0)
    data_free(&t);
  return rc;
}

static int read_zip(const char *path, char *err, size_t errlen) {
  DataConnectome c;
  int rc = data_read_connectome(path, &c, err, errlen);
  if (rc == 0)
    data_connectome_free(&c);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  int fmt = data[0] % 8, variant = data[0] / 8;
  if (fmt >= FMT_COUNT)
    return 0;
  const char *path = fmt == FMT_EDF && variant & 4 ? bdf_path : paths[fmt];
  write_file(path, data + 1, size - 1);
  char err[512] = "";
  int rc;
  if (fmt == FMT_EDF)
    rc = read_edf(path, variant, err, sizeof err);
  else if (fmt == FMT_NWB)
    rc = read_nwb(path, variant, err, sizeof err);
  else if (fmt == FMT_NIFTI)
    rc = read_nifti(path, variant, err, sizeof err);
  else if (fmt == FMT_ZIP)
    rc = read_zip(path, err, sizeof err);
  else
    rc = read_table(fmt, path, variant, err, sizeof err);
  check_message(rc, err);
  return 0;
}
