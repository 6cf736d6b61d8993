/*
 * make_data.c — the single_region example's recordings.
 *
 * Four latent oscillators (0.3, 1.1, 2.7 and 6.2 Hz, slowly amplitude
 * modulated) are mixed into CHANNELS channels by a subject-specific matrix,
 * plus a little Gaussian noise: 20 s at 100 Hz per subject. Writes
 *   OUTDIR/v1_m1.csv       subject m1, CSV with a header of channel names
 *   OUTDIR/v1_m2.npy       subject m2, NPY float32 (samples x channels)
 *   OUTDIR/v1_m1_alt.csv   another session of m1 (other mixing and phases),
 *                          for rebinding with `brain train --data V1.m1=...`
 * Usage: make_data OUTDIR
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../make_data_io.h"

enum { CHANNELS = 6, LATENTS = 4, RATE = 100, SECONDS = 20, SAMPLES = RATE * SECONDS };

static const double latent_hz[LATENTS] = {0.3, 1.1, 2.7, 6.2};

/* samples x channels, row-major, for one session */
static float *make_session(uint64_t seed) {
  rng_state = seed;
  double mix[CHANNELS][LATENTS], phase[LATENTS];
  for (int c = 0; c < CHANNELS; c++)
    for (int l = 0; l < LATENTS; l++)
      mix[c][l] = gaussian();
  for (int l = 0; l < LATENTS; l++)
    phase[l] = 2 * M_PI * uniform();
  float *x = malloc(sizeof(float) * SAMPLES * CHANNELS);
  for (int k = 0; k < SAMPLES; k++) {
    double t = (double)k / RATE, latent[LATENTS];
    for (int l = 0; l < LATENTS; l++)
      latent[l] = (1 + 0.5 * sin(2 * M_PI * 0.05 * (l + 1) * t)) *
                  sin(2 * M_PI * latent_hz[l] * t + phase[l]);
    for (int c = 0; c < CHANNELS; c++) {
      double v = 0.05 * gaussian();
      for (int l = 0; l < LATENTS; l++)
        v += mix[c][l] * latent[l];
      x[k * CHANNELS + c] = (float)v;
    }
  }
  return x;
}

/* OUTDIR/name */
static const char *in_dir(const char *dir, const char *name) {
  static char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_data OUTDIR\n");
    return 2;
  }
  make_dir(argv[1]);
  float *m1 = make_session(1), *m2 = make_session(2), *alt = make_session(3);
  write_csv(in_dir(argv[1], "v1_m1.csv"), m1, SAMPLES, CHANNELS);
  write_npy(in_dir(argv[1], "v1_m2.npy"), m2, SAMPLES, CHANNELS);
  write_csv(in_dir(argv[1], "v1_m1_alt.csv"), alt, SAMPLES, CHANNELS);
  free(m1);
  free(m2);
  free(alt);
  return 0;
}
