/*
 * make_data.c — the visual_pathway example's recordings, from a known ground
 * truth.
 *
 * Three regions in three subjects, simulated at 100 Hz for 40 s:
 *   LGN  two oscillators (1.3 and 3.1 Hz, slowly amplitude modulated) whose
 *        phases and amplitudes differ per subject: the drive;
 *   V1   tanh of a fixed mixture of LGN and of V2 one sample (10 ms) earlier:
 *        the feedforward input plus a delayed feedback;
 *   V2   tanh of a fixed mixture of V1 at the same sample.
 * Each region is read by one probe type, the same in every subject: a fixed
 * matrix from its two latent signals to its channels (LGN 4, V1 6, V2 5),
 * plus a little Gaussian noise. So the regions' dynamics, and how they drive
 * each other, are shared; what differs between subjects is the drive.
 *
 * Each subject has only some regions recorded (npy for m1, csv for m2 and
 * m3); the cells left out are written to OUTDIR/heldout, for evaluating what
 * the model predicts there:
 *         LGN   V1        V2
 *   m1    npy   npy       npy
 *   m2    csv   csv       heldout
 *   m3    csv   heldout   csv
 * Usage: make_data OUTDIR
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../make_data_io.h"

enum { RATE = 100, SECONDS = 40, SAMPLES = RATE * SECONDS, LATENT = 2, SUBJECTS = 3 };
enum { LGN, V1, V2, REGIONS };

static const char *const region_names[REGIONS] = {"lgn", "v1", "v2"};
static const int channels[REGIONS] = {4, 6, 5};

/* The connectivity of the ground truth: V1 = tanh(A l + B v2[k-1]),
 * V2 = tanh(C v1). */
static const double lgn_to_v1[LATENT][LATENT] = {{1.4, -0.6}, {0.5, 1.1}};
static const double v2_to_v1[LATENT][LATENT] = {{0.5, 0.2}, {-0.3, 0.4}};
static const double v1_to_v2[LATENT][LATENT] = {{1.2, 0.7}, {-0.8, 1.0}};

/* latent[region][k * LATENT + i] for one subject */
static void simulate(int subject, double *latent[REGIONS]) {
  rng_state = 1000 + (uint64_t)subject;
  double phase[LATENT], gain[LATENT];
  for (int i = 0; i < LATENT; i++) {
    phase[i] = 2 * M_PI * uniform();
    gain[i] = 0.7 + 0.6 * uniform();
  }
  static const double hz[LATENT] = {1.3, 3.1};
  double v2_before[LATENT] = {0, 0};
  for (int k = 0; k < SAMPLES; k++) {
    double t = (double)k / RATE, *l = latent[LGN] + k * LATENT;
    double *v1 = latent[V1] + k * LATENT, *v2 = latent[V2] + k * LATENT;
    for (int i = 0; i < LATENT; i++)
      l[i] = gain[i] * (1 + 0.3 * sin(2 * M_PI * 0.07 * (i + 1) * t)) *
             sin(2 * M_PI * hz[i] * t + phase[i]);
    for (int i = 0; i < LATENT; i++) {
      double a = 0;
      for (int j = 0; j < LATENT; j++)
        a += lgn_to_v1[i][j] * l[j] + v2_to_v1[i][j] * v2_before[j];
      v1[i] = tanh(a);
    }
    for (int i = 0; i < LATENT; i++) {
      double a = 0;
      for (int j = 0; j < LATENT; j++)
        a += v1_to_v2[i][j] * v1[j];
      v2[i] = tanh(a);
    }
    memcpy(v2_before, v2, sizeof v2_before);
  }
}

/* samples x channels: the region's probe applied to its latent, plus noise */
static float *record(int region, int subject, const double *latent) {
  int cols = channels[region];
  double probe[8][LATENT];
  rng_state = 77 + (uint64_t)region;         /* one probe type per region */
  for (int c = 0; c < cols; c++)
    for (int i = 0; i < LATENT; i++)
      probe[c][i] = gaussian();
  rng_state = 5000 + 10 * (uint64_t)subject + (uint64_t)region;
  float *x = malloc(sizeof(float) * SAMPLES * cols);
  for (int k = 0; k < SAMPLES; k++)
    for (int c = 0; c < cols; c++) {
      double v = 0.05 * gaussian();
      for (int i = 0; i < LATENT; i++)
        v += probe[c][i] * latent[k * LATENT + i];
      x[k * cols + c] = (float)v;
    }
  return x;
}

/* Which cells are recorded (the table at the top): 0 held out, 1 npy, 2 csv. */
static const int coverage[SUBJECTS][REGIONS] = {{1, 1, 1}, {2, 2, 0}, {2, 0, 2}};

static void write_cell(const char *dir, int region, int subject, const float *x) {
  char path[4096];
  int kind = coverage[subject][region];
  snprintf(path, sizeof path, "%s/%s%s_m%d.%s", dir, kind ? "" : "heldout/",
           region_names[region], subject + 1, kind == 2 ? "csv" : "npy");
  if (kind == 2)
    write_csv(path, x, SAMPLES, channels[region]);
  else
    write_npy(path, x, SAMPLES, channels[region]);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_data OUTDIR\n");
    return 2;
  }
  char heldout[4096];
  snprintf(heldout, sizeof heldout, "%s/heldout", argv[1]);
  make_dir(argv[1]);
  make_dir(heldout);
  double *latent[REGIONS];
  for (int r = 0; r < REGIONS; r++)
    latent[r] = malloc(sizeof(double) * SAMPLES * LATENT);
  for (int s = 0; s < SUBJECTS; s++) {
    simulate(s, latent);
    for (int r = 0; r < REGIONS; r++) {
      float *x = record(r, s, latent[r]);
      write_cell(argv[1], r, s, x);
      free(x);
    }
  }
  for (int r = 0; r < REGIONS; r++)
    free(latent[r]);
  return 0;
}
