/*
 * observe.c — the observation operators of global losses, built from plain
 * IR ops so that autodiff differentiates them (docs/observations.md).
 *
 * A signal is [T, N]: T time steps as rows, oldest first, N regions.
 *
 * Lead field (EEG): act L' with L'[r][c] = L[r][c] - mean_c L[r][c], which
 *   equals act L minus its row mean over the C channels (average reference)
 *   in one matmul.
 * HRF (BOLD): H act with H[t][s] = h[t - s] for 0 <= t - s < K, where
 *   h[k] ~ g6(k dt) - g16(k dt) / 6, g_a the gamma pdf of shape a and scale
 *   1 s (SPM's canonical HRF), K dt covering obs_hrf_span(), sum h = 1.
 * Balloon-Windkessel (BOLD; Friston, Mechelli, Turner, Price, NeuroImage
 *   12:466-477, 2000), per region, drive z held for a step, forward Euler
 *   with sub-step h:
 *     ds/dt = z - kappa s - gamma (f - 1)
 *     df/dt = s
 *     dv/dt = (f - v^(1/alpha)) / tau
 *     dq/dt = (f E(f) / rho - v^(1/alpha) q / v) / tau,
 *             E(f) = 1 - (1 - rho)^(1/f)
 *     y = V0 (k1 (1 - q) + k2 (1 - q / v) + k3 (1 - v)),
 *             k1 = 7 rho, k2 = 2, k3 = 2 rho - 0.2
 *   from rest s = 0, f = v = q = 1. E(f) / rho is computed as
 *   1 + (1 - rho) / rho (1 - exp(log(1 - rho) (1/f - 1))), equal to it, so
 *   that at rest every term is exactly 0 and zero drive gives exactly 0.
 *   Nothing is clamped: f and v must stay positive, which sustained drive
 *   in [-0.34, 8.7] keeps (measured; docs/observations.md).
 * Pearson (FC): columns centred, xc^T xc divided by the outer product of
 *   sqrt(diag + eps), eps = OBS_PEARSON_EPS T, so a constant column gives 0.
 * Upper MSE: sum((a - b)^2 M) with M[i][j] = 1 / (N (N - 1) / 2) for i < j.
 *
 * Misuse (wrong shapes, dt <= 0) is a compiler bug: sema validates what the
 * user wrote, so these abort like the builders of ir.c.
 */
#include <math.h>
#include <stdlib.h>

#include "ir.h"

/* Balloon-Windkessel parameters (Friston et al. 2000). */
static const double BALLOON_KAPPA = 0.65;  /* signal decay, 1/s */
static const double BALLOON_GAMMA = 0.41;  /* flow-dependent elimination, 1/s */
static const double BALLOON_TAU = 0.98;    /* haemodynamic transit time, s */
static const double BALLOON_ALPHA = 0.32;  /* Grubb's exponent */
static const double BALLOON_RHO = 0.34;    /* resting oxygen extraction */
static const double BALLOON_V0 = 0.02;     /* resting blood volume fraction */

/* Variance floor per time step of obs_pearson: keeps sqrt's argument and
 * its derivative finite for a constant column. */
static const double OBS_PEARSON_EPS = 1e-12;

static const double HRF_SPAN = 32.0;       /* seconds */
static const double HRF_UNDERSHOOT = 1.0 / 6.0;

static void require(bool ok, const char *fn, const char *what) {
  if (!ok) {
    fprintf(stderr, "lobe: internal error: %s: %s\n", fn, what);
    abort();
  }
}

static IrShape signal_shape(const IrFunc *f, int v, const char *fn) {
  require(v >= 0 && v < f->nins, fn, "no such value");
  IrShape s = f->ins[v].shape;
  require(s.rank == 2 && f->ins[v].type == TY_REAL, fn, "needs a real [T, N] signal");
  return s;
}

/* ---- lead field ------------------------------------------------------------- */

int obs_leadfield(IrFunc *f, int act, const double *leadfield, int channels) {
  IrShape s = signal_shape(f, act, "obs_leadfield");
  require(channels >= 1 && leadfield, "obs_leadfield", "needs at least one channel");
  int regions = s.dim[1];
  double *referenced = ir_xcalloc((size_t)regions * channels, sizeof *referenced);
  for (int r = 0; r < regions; r++) {
    const double *row = leadfield + (size_t)r * channels;
    double mean = 0;
    for (int c = 0; c < channels; c++)
      mean += row[c];
    mean /= channels;
    for (int c = 0; c < channels; c++)
      referenced[(size_t)r * channels + c] = row[c] - mean;
  }
  int l = ir_tensor(f, referenced, IR_MAT(regions, channels));
  free(referenced);
  return ir_matmul(f, act, l, false, false);
}

/* ---- canonical HRF ---------------------------------------------------------- */

double obs_hrf_span(void) { return HRF_SPAN; }

/* The gamma pdf of integer shape a and scale 1 s at t >= 0. */
static double gamma_pdf(int a, double t) {
  if (t <= 0)
    return 0;
  return exp((a - 1) * log(t) - t - lgamma(a));
}

static double hrf_at(double t) {
  return gamma_pdf(6, t) - HRF_UNDERSHOOT * gamma_pdf(16, t);
}

/* The first n of the K samples covering the span, normalised over all K. */
static double *hrf_samples(double dt, int n) {
  long k_total = (long)floor(HRF_SPAN / dt) + 1;
  double total = 0;
  for (long k = 0; k < k_total; k++)
    total += hrf_at(k * dt);
  double *h = ir_xcalloc((size_t)n, sizeof *h);
  for (int k = 0; k < n; k++)
    h[k] = k < k_total ? hrf_at(k * dt) / total : 0;
  return h;
}

int obs_hrf(IrFunc *f, int act, double dt) {
  IrShape s = signal_shape(f, act, "obs_hrf");
  require(dt > 0 && isfinite(dt), "obs_hrf", "needs dt > 0");
  int steps = s.dim[0];
  double *h = hrf_samples(dt, steps);
  double *toeplitz = ir_xcalloc((size_t)steps * steps, sizeof *toeplitz);
  for (int t = 0; t < steps; t++)
    for (int u = 0; u < steps; u++)
      toeplitz[(size_t)t * steps + u] = u <= t ? h[t - u] : 0;
  int conv = ir_tensor(f, toeplitz, IR_MAT(steps, steps));
  free(toeplitz);
  free(h);
  return ir_matmul(f, conv, act, false, false);
}

/* ---- Balloon-Windkessel ----------------------------------------------------- */

/* The state of every region, each [1, N]. */
typedef struct BalloonState {
  int s, f, v, q;
} BalloonState;

/* The function being built and the [1, N] constants every sub-step reads,
 * made once. */
typedef struct Balloon {
  IrFunc *fn;
  int one, inv_alpha, log_spare, spare_ratio;
  int decay, h, h_gamma, h_tau;
} Balloon;

static int badd(Balloon *b, int x, int y) { return ir_binary(b->fn, IR_ADD, x, y); }
static int bsub(Balloon *b, int x, int y) { return ir_binary(b->fn, IR_SUB, x, y); }
static int bmul(Balloon *b, int x, int y) { return ir_binary(b->fn, IR_MUL, x, y); }
static int bdiv(Balloon *b, int x, int y) { return ir_binary(b->fn, IR_DIV, x, y); }

static Balloon balloon_new(IrFunc *f, int regions, double h) {
  IrShape row = IR_MAT(1, regions);
  Balloon b = {.fn = f};
  b.one = ir_const(f, 1, row);
  b.inv_alpha = ir_const(f, 1 / BALLOON_ALPHA, row);
  b.log_spare = ir_const(f, log(1 - BALLOON_RHO), row);
  b.spare_ratio = ir_const(f, (1 - BALLOON_RHO) / BALLOON_RHO, row);
  b.decay = ir_const(f, 1 - h * BALLOON_KAPPA, row);
  b.h = ir_const(f, h, row);
  b.h_gamma = ir_const(f, h * BALLOON_GAMMA, row);
  b.h_tau = ir_const(f, h / BALLOON_TAU, row);
  return b;
}

/* v^(1/alpha) as exp(log(v) / alpha). */
static int outflow(Balloon *b, int v) {
  IrFunc *f = b->fn;
  return ir_unary(f, IR_EXP, bmul(b, b->inv_alpha, ir_unary(f, IR_LOG, v)));
}

/* f E(f) / rho, written so that it is exactly 1 at f = 1 (see the header). */
static int oxygen_inflow(Balloon *b, int flow) {
  int u = bsub(b, bdiv(b, b->log_spare, flow), b->log_spare);
  int deficit = bsub(b, b->one, ir_unary(b->fn, IR_EXP, u));
  return bmul(b, flow, badd(b, b->one, bmul(b, b->spare_ratio, deficit)));
}

/* One forward Euler sub-step; drive is h z + h gamma, held for the step. */
static BalloonState balloon_substep(Balloon *b, BalloonState x, int drive) {
  int vpow = outflow(b, x.v);
  int ds = bsub(b, drive, bmul(b, b->h_gamma, x.f));
  int dv = bsub(b, x.f, vpow);
  int dq = bsub(b, oxygen_inflow(b, x.f), bdiv(b, bmul(b, vpow, x.q), x.v));
  BalloonState next;
  next.s = badd(b, bmul(b, b->decay, x.s), ds);
  next.f = badd(b, x.f, bmul(b, b->h, x.s));
  next.v = badd(b, x.v, bmul(b, b->h_tau, dv));
  next.q = badd(b, x.q, bmul(b, b->h_tau, dq));
  return next;
}

/* y = V0 (k1 (1 - q) + k2 (1 - q / v) + k3 (1 - v)). */
static int balloon_bold(Balloon *b, BalloonState x, int k1, int k2, int k3, int v0) {
  int sum = bmul(b, k1, bsub(b, b->one, x.q));
  sum = badd(b, sum, bmul(b, k2, bsub(b, b->one, bdiv(b, x.q, x.v))));
  sum = badd(b, sum, bmul(b, k3, bsub(b, b->one, x.v)));
  return bmul(b, v0, sum);
}

int obs_balloon(IrFunc *f, int act, double dt) {
  IrShape s = signal_shape(f, act, "obs_balloon");
  require(dt > 0 && isfinite(dt), "obs_balloon", "needs dt > 0");
  int steps = s.dim[0];
  IrShape row = IR_MAT(1, s.dim[1]);
  int substeps = (int)ceil(dt * OBS_BALLOON_SUBSTEPS_PER_SECOND);
  Balloon b = balloon_new(f, s.dim[1], dt / substeps);
  int k1 = ir_const(f, 7 * BALLOON_RHO, row), k2 = ir_const(f, 2, row);
  int k3 = ir_const(f, 2 * BALLOON_RHO - 0.2, row), v0 = ir_const(f, BALLOON_V0, row);
  BalloonState x = {ir_const(f, 0, row), b.one, b.one, b.one};
  int *rows = ir_xcalloc((size_t)steps, sizeof *rows);
  for (int k = 0; k < steps; k++) {
    int drive = badd(&b, bmul(&b, b.h, ir_slice_rows(f, act, k, 1)), b.h_gamma);
    for (int i = 0; i < substeps; i++)
      x = balloon_substep(&b, x, drive);
    rows[k] = balloon_bold(&b, x, k1, k2, k3, v0);
  }
  int out = ir_concat_rows(f, rows, steps);
  free(rows);
  return out;
}

/* ---- functional connectivity ------------------------------------------------ */

int obs_pearson(IrFunc *f, int x) {
  IrShape s = signal_shape(f, x, "obs_pearson");
  int steps = s.dim[0], n = s.dim[1];
  int mean = ir_binary(f, IR_MUL, ir_sum(f, x, 0), ir_const(f, 1.0 / steps, IR_VEC(n)));
  int xc = ir_binary(f, IR_SUB, x, ir_bcast(f, mean, 0, s));
  int cov = ir_matmul(f, xc, xc, true, false);
  int var = ir_sum(f, ir_binary(f, IR_MUL, xc, xc), 0);
  var = ir_binary(f, IR_ADD, var, ir_const(f, OBS_PEARSON_EPS * steps, IR_VEC(n)));
  int sd = ir_unary(f, IR_SQRT, var);
  IrShape square = IR_MAT(n, n);
  int outer = ir_binary(f, IR_MUL, ir_bcast(f, sd, 1, square), ir_bcast(f, sd, 0, square));
  return ir_binary(f, IR_DIV, cov, outer);
}

int obs_upper_mse(IrFunc *f, int a, int b) {
  IrShape s = signal_shape(f, a, "obs_upper_mse");
  int n = s.dim[0];
  require(n >= 2 && s.dim[1] == n, "obs_upper_mse", "needs square [N, N], N >= 2");
  require(ir_shape_eq(signal_shape(f, b, "obs_upper_mse"), s), "obs_upper_mse",
          "operands differ in shape");
  double *mask = ir_xcalloc((size_t)n * n, sizeof *mask);
  double weight = 2.0 / ((double)n * (n - 1));
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      mask[(size_t)i * n + j] = i < j ? weight : 0;
  int m = ir_tensor(f, mask, s);
  free(mask);
  int d = ir_binary(f, IR_SUB, a, b);
  return ir_sum(f, ir_binary(f, IR_MUL, ir_binary(f, IR_MUL, d, d), m), -1);
}
