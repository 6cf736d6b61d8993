/*
 * test_observe.c — the observation operators of observe.c: each against a
 * plain C reference written here, the shapes of the HRF and of the Balloon
 * response, Pearson's properties, gradients against central finite
 * differences, and results unchanged by the optimisation passes.
 *
 * Every case is f(x...) = op(x...) with x drawn from a fixed random state;
 * its gradient is checked inside loss = sum(w * op(x...)), w a fixed random
 * tensor, so that every element of the adjoint differs.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "test_util.h"

enum { T = 7, N = 3, C = 4, MAX_ARGS = 2 };
static const double REF_TOLERANCE = 1e-10, FD_STEP = 1e-5, FD_TOLERANCE = 1e-6;
static const double HRF_DT = 0.1, BALLOON_DT = 0.72;

/* ---- the cases ---------------------------------------------------------------- */

typedef int (*BuildFn)(IrFunc *f, const int *x);
/* in: the arguments as the IR reads them; out: op's result, row-major. */
typedef void (*ReferenceFn)(const double *const *in, double *out);

typedef struct ObsCase {
  const char *name;
  BuildFn build;
  ReferenceFn reference;
  int nargs;
  IrShape shape[MAX_ARGS];
  double lo, hi;           /* where the arguments are drawn from */
} ObsCase;

static double leadfield[N * C];

static void make_leadfield(void) {
  unsigned state = 99;
  for (int i = 0; i < N * C; i++)
    leadfield[i] = test_uniform(&state);
}

static int build_leadfield(IrFunc *f, const int *x) {
  return obs_leadfield(f, x[0], leadfield, C);
}
static int build_hrf(IrFunc *f, const int *x) { return obs_hrf(f, x[0], HRF_DT); }
static int build_hrf_coarse(IrFunc *f, const int *x) { return obs_hrf(f, x[0], 2.0); }
static int build_balloon(IrFunc *f, const int *x) { return obs_balloon(f, x[0], BALLOON_DT); }
static int build_pearson(IrFunc *f, const int *x) { return obs_pearson(f, x[0]); }
static int build_upper_mse(IrFunc *f, const int *x) { return obs_upper_mse(f, x[0], x[1]); }

/* ---- references: the definitions, written the plainest way -------------------- */

static void ref_leadfield(const double *const *in, double *out) {
  for (int t = 0; t < T; t++) {
    double mean = 0;
    for (int c = 0; c < C; c++) {
      double y = 0;
      for (int r = 0; r < N; r++)
        y += in[0][t * N + r] * leadfield[r * C + c];
      out[t * C + c] = y;
      mean += y / C;
    }
    for (int c = 0; c < C; c++)
      out[t * C + c] -= mean;
  }
}

static double factorial(int n) { return n <= 1 ? 1 : n * factorial(n - 1); }

/* SPM's canonical HRF, unnormalised. */
static double spm_hrf(double t) {
  return pow(t, 5) * exp(-t) / factorial(5) - pow(t, 15) * exp(-t) / factorial(15) / 6;
}

/* The normalised HRF sample k at dt. */
static double hrf_sample(int k, double dt) {
  int samples = (int)floor(32 / dt) + 1;
  if (k >= samples)
    return 0;
  double total = 0;
  for (int j = 0; j < samples; j++)
    total += spm_hrf(j * dt);
  return spm_hrf(k * dt) / total;
}

static void convolve_hrf(const double *x, int steps, int n, double dt, double *out) {
  for (int t = 0; t < steps; t++)
    for (int r = 0; r < n; r++) {
      double y = 0;
      for (int k = 0; k <= t; k++)
        y += hrf_sample(k, dt) * x[(t - k) * n + r];
      out[t * n + r] = y;
    }
}

static void ref_hrf(const double *const *in, double *out) {
  convolve_hrf(in[0], T, N, HRF_DT, out);
}

static void ref_hrf_coarse(const double *const *in, double *out) {
  convolve_hrf(in[0], T, N, 2.0, out);
}

/* Friston et al. 2003 with forward Euler, one region at a time. */
static void balloon(const double *z, int steps, int n, double dt, double *out) {
  const double kappa = 0.65, gamma = 0.41, tau = 0.98, alpha = 0.32, rho = 0.34, v0 = 0.02;
  int substeps = (int)ceil(dt * 10);
  double h = dt / substeps;
  for (int r = 0; r < n; r++) {
    double s = 0, f = 1, v = 1, q = 1;
    for (int t = 0; t < steps; t++) {
      for (int i = 0; i < substeps; i++) {
        double e = 1 - pow(1 - rho, 1 / f), vout = pow(v, 1 / alpha);
        double ds = z[t * n + r] - kappa * s - gamma * (f - 1), df = s;
        double dv = (f - vout) / tau, dq = (f * e / rho - vout * q / v) / tau;
        s += h * ds, f += h * df, v += h * dv, q += h * dq;
      }
      out[t * n + r] = v0 * (7 * rho * (1 - q) + 2 * (1 - q / v) + (2 * rho - 0.2) * (1 - v));
    }
  }
}

static void ref_balloon(const double *const *in, double *out) {
  balloon(in[0], T, N, BALLOON_DT, out);
}

static void ref_pearson(const double *const *in, double *out) {
  const double *x = in[0];
  double mean[N] = {0}, sd[N];
  for (int j = 0; j < N; j++) {
    for (int t = 0; t < T; t++)
      mean[j] += x[t * N + j] / T;
    double ss = 0;
    for (int t = 0; t < T; t++)
      ss += (x[t * N + j] - mean[j]) * (x[t * N + j] - mean[j]);
    sd[j] = sqrt(ss + 1e-12 * T);
  }
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      double cov = 0;
      for (int t = 0; t < T; t++)
        cov += (x[t * N + i] - mean[i]) * (x[t * N + j] - mean[j]);
      out[i * N + j] = cov / (sd[i] * sd[j]);
    }
}

static void ref_upper_mse(const double *const *in, double *out) {
  double sum = 0;
  int pairs = 0;
  for (int i = 0; i < N; i++)
    for (int j = i + 1; j < N; j++, pairs++)
      sum += (in[0][i * N + j] - in[1][i * N + j]) * (in[0][i * N + j] - in[1][i * N + j]);
  out[0] = sum / pairs;
}

static const ObsCase cases[] = {
    {"leadfield", build_leadfield, ref_leadfield, 1, {IR_MAT(T, N)}, -1, 1},
    {"hrf", build_hrf, ref_hrf, 1, {IR_MAT(T, N)}, -1, 1},
    {"hrf_coarse", build_hrf_coarse, ref_hrf_coarse, 1, {IR_MAT(T, N)}, -1, 1},
    {"balloon", build_balloon, ref_balloon, 1, {IR_MAT(T, N)}, -0.3, 1},
    {"pearson", build_pearson, ref_pearson, 1, {IR_MAT(T, N)}, -1, 1},
    {"upper_mse", build_upper_mse, ref_upper_mse, 2, {IR_MAT(N, N), IR_MAT(N, N)}, -1, 1},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

/* ---- running ------------------------------------------------------------------ */

/* f(x...) = op(x...), or with weighted set loss = sum(w * op(x...)). */
static IrFunc *case_func(const ObsCase *c, bool weighted) {
  IrFunc *f = ir_func_new(c->name);
  int x[MAX_ARGS];
  for (int k = 0; k < c->nargs; k++)
    x[k] = ir_input(f, k ? "b" : "x", TY_REAL, c->shape[k]);
  int y = c->build(f, x);
  if (weighted) {
    IrShape s = f->ins[y].shape;
    double *w = malloc(ir_numel(s) * sizeof *w);
    unsigned state = 7;
    for (long e = 0; e < ir_numel(s); e++)
      w[e] = test_uniform(&state);
    y = ir_sum(f, ir_binary(f, IR_MUL, ir_tensor(f, w, s), y), -1);
    free(w);
  }
  ir_output(f, y);
  assert_valid(f);
  return f;
}

static double **case_args(const ObsCase *c) {
  double **a = calloc(c->nargs, sizeof *a);
  unsigned state = 12345;
  for (int k = 0; k < c->nargs; k++) {
    a[k] = malloc(ir_numel(c->shape[k]) * sizeof **a);
    for (long e = 0; e < ir_numel(c->shape[k]); e++)
      a[k][e] = c->lo + (c->hi - c->lo) * (test_uniform(&state) + 1) / 2;
  }
  return a;
}

static long output_numel(const IrFunc *f, int o) {
  return ir_numel(f->ins[f->outputs[o]].shape);
}

static void assert_near(const char *what, long e, double got, double want, double tol) {
  double scale = fmax(fmax(fabs(got), fabs(want)), 1.0);
  ck_assert_msg(fabs(got - want) <= tol * scale, "%s [%ld]: got %.15g, want %.15g", what, e,
                got, want);
}

/* f(x) = op(x) and g(x) = op(x) on a one-column signal x. */
static IrFunc *signal_func(int (*op)(IrFunc *, int, double), int steps, double dt) {
  IrFunc *f = ir_func_new("signal");
  ir_output(f, op(f, ir_input(f, "x", TY_REAL, IR_MAT(steps, 1)), dt));
  assert_valid(f);
  return f;
}

/* op's response to x [steps, 1]: malloc'd. */
static double *respond(int (*op)(IrFunc *, int, double), const double *x, int steps, double dt) {
  IrFunc *f = signal_func(op, steps, dt);
  double *args[] = {(double *)x};
  double **out = run_interp(f, args);
  double *y = out[0];
  free(out);
  ir_func_free(f);
  return y;
}

static int argmax(const double *y, int n, int sign) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (sign * y[i] > sign * y[best])
      best = i;
  return best;
}

/* ---- tests -------------------------------------------------------------------- */

START_TEST(test_matches_reference) {
  const ObsCase *c = &cases[_i];
  IrFunc *f = case_func(c, false);
  double **args = case_args(c);
  double **out = run_interp(f, args);
  long n = output_numel(f, 0);
  double *want = malloc(n * sizeof *want);
  c->reference((const double *const *)args, want);
  for (long e = 0; e < n; e++)
    assert_near(c->name, e, out[0][e], want[e], REF_TOLERANCE);
  free(want);
  free_buffers(out, f->noutputs);
  free_buffers(args, c->nargs);
  ir_func_free(f);
}
END_TEST

START_TEST(test_gradient) {
  const ObsCase *c = &cases[_i];
  IrFunc *f = case_func(c, true);
  int wrt[MAX_ARGS] = {0, 1};
  IrFunc *g = ad_grad(f, wrt, c->nargs, "grad");
  assert_valid(g);
  double **args = case_args(c);
  double **out = run_interp(g, args);
  for (int k = 0; k < c->nargs; k++)
    for (long e = 0; e < ir_numel(c->shape[k]); e++) {
      double saved = args[k][e];
      args[k][e] = saved + FD_STEP;
      double up = test_interp_loss(f, args);
      args[k][e] = saved - FD_STEP;
      double down = test_interp_loss(f, args);
      args[k][e] = saved;
      assert_near(c->name, k * 1000 + e, out[1 + k][e], (up - down) / (2 * FD_STEP),
                  FD_TOLERANCE);
    }
  free_buffers(out, g->noutputs);
  free_buffers(args, c->nargs);
  ir_func_free(g);
  ir_func_free(f);
}
END_TEST

/* The passes change the instructions, never the values: of op and of its gradient. */
START_TEST(test_passes_keep_values) {
  const ObsCase *c = &cases[_i];
  IrFunc *f = case_func(c, true);
  int wrt[MAX_ARGS] = {0, 1};
  IrFunc *g = ad_grad(f, wrt, c->nargs, "grad");
  double **args = case_args(c);
  double **before = run_interp(g, args);
  int nins = g->nins;
  pass_run_all(g, NULL, NULL);
  assert_valid(g);
  ck_assert_int_le(g->nins, nins);
  double **after = run_interp(g, args);
  for (int o = 0; o < g->noutputs; o++)
    for (long e = 0; e < output_numel(g, o); e++)
      assert_near(c->name, o * 1000 + e, after[o][e], before[o][e], 1e-12);
  free_buffers(after, g->noutputs);
  free_buffers(before, g->noutputs);
  free_buffers(args, c->nargs);
  ir_func_free(g);
  ir_func_free(f);
}
END_TEST

/* An impulse at row 0 returns the HRF itself: peak near 5 s, undershoot near
 * 15 s, samples summing to 1 over the 32 s span. */
START_TEST(test_hrf_shape) {
  enum { STEPS = 400 };
  double x[STEPS] = {1};
  double *h = respond(obs_hrf, x, STEPS, HRF_DT);
  double peak = argmax(h, STEPS, 1) * HRF_DT, dip = argmax(h, STEPS, -1) * HRF_DT;
  ck_assert_msg(peak >= 4.5 && peak <= 5.5, "peak at %g s", peak);
  ck_assert_msg(dip >= 14.5 && dip <= 16.5, "undershoot at %g s", dip);
  ck_assert(h[argmax(h, STEPS, -1)] < 0);
  double total = 0;
  for (int k = 0; k < STEPS; k++)
    total += h[k];
  ck_assert_double_eq_tol(total, 1, 1e-12);
  ck_assert_double_eq(h[0], 0);
  for (int k = (int)(obs_hrf_span() / HRF_DT) + 1; k < STEPS; k++)
    ck_assert_double_eq(h[k], 0);
  ck_assert_double_eq(obs_hrf_span(), 32);
  free(h);
}
END_TEST

/* One second of drive: BOLD rises, peaks a few seconds later, comes back. */
START_TEST(test_balloon_response) {
  enum { STEPS = 60 };
  double dt = 0.5, x[STEPS] = {1, 1};
  double *y = respond(obs_balloon, x, STEPS, dt);
  int peak = argmax(y, STEPS, 1);
  ck_assert_msg(peak * dt >= 2 && peak * dt <= 7, "peak at %g s", peak * dt);
  ck_assert(y[peak] > 0.001);
  ck_assert(y[0] > 0 && y[0] < y[peak]);
  ck_assert_msg(fabs(y[STEPS - 1]) < 0.1 * y[peak], "still %g at the end", y[STEPS - 1]);
  free(y);
}
END_TEST

START_TEST(test_balloon_rest_is_exactly_zero) {
  enum { STEPS = 20 };
  double x[STEPS] = {0};
  for (int s = 0; s < 2; s++) {
    double dt = s ? 0.72 : 2.0;
    double *y = respond(obs_balloon, x, STEPS, dt);
    for (int k = 0; k < STEPS; k++)
      ck_assert_double_eq(y[k], 0);
    free(y);
  }
}
END_TEST

START_TEST(test_pearson_properties) {
  const ObsCase *c = &cases[4];
  ck_assert_str_eq(c->name, "pearson");
  IrFunc *f = case_func(c, false);
  double **args = case_args(c);
  for (int t = 0; t < T; t++)
    args[0][t * N + 1] = 0.3;   /* a constant column */
  double **out = run_interp(f, args);
  const double *r = out[0];
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      ck_assert_double_eq(r[i * N + j], r[j * N + i]);
      if (i == 1 || j == 1)
        ck_assert_double_eq_tol(r[i * N + j], 0, 1e-9);
      else if (i == j)
        ck_assert_double_eq_tol(r[i * N + j], 1, 1e-10);
      else
        ck_assert(fabs(r[i * N + j]) < 1);
    }
  free_buffers(out, f->noutputs);
  free_buffers(args, c->nargs);
  ir_func_free(f);
}
END_TEST

/* Perfectly (anti)correlated columns give +1 and -1; upper_mse ignores the
 * diagonal and the lower triangle. */
START_TEST(test_pearson_extremes_and_mask) {
  IrFunc *f = ir_func_new("fc");
  ir_output(f, obs_pearson(f, ir_input(f, "x", TY_REAL, IR_MAT(4, 3))));
  double x[] = {1, 3, -2, 2, 5, -4, 0, 1, 0, 5, 11, -10};
  double *args[] = {x};
  double **out = run_interp(f, args);
  ck_assert_double_eq_tol(out[0][1], 1, 1e-10);
  ck_assert_double_eq_tol(out[0][2], -1, 1e-10);
  free_buffers(out, 1);
  ir_func_free(f);

  IrFunc *m = ir_func_new("mse");
  int a = ir_input(m, "a", TY_REAL, IR_MAT(2, 2)), b = ir_input(m, "b", TY_REAL, IR_MAT(2, 2));
  ir_output(m, obs_upper_mse(m, a, b));
  double va[] = {5, 1, 7, 9}, vb[] = {-5, 4, 0, 2};
  double *margs[] = {va, vb};
  ck_assert_double_eq(test_interp_loss(m, margs), 9);
  ir_func_free(m);
}
END_TEST

static Suite *observe_suite(void) {
  make_leadfield();
  Suite *s = suite_create("observe");
  TCase *ops = tcase_create("operators");
  tcase_add_loop_test(ops, test_matches_reference, 0, NCASES);
  tcase_add_loop_test(ops, test_gradient, 0, NCASES);
  tcase_add_loop_test(ops, test_passes_keep_values, 0, NCASES);
  suite_add_tcase(s, ops);
  TCase *shapes = tcase_create("shapes");
  tcase_add_test(shapes, test_hrf_shape);
  tcase_add_test(shapes, test_balloon_response);
  tcase_add_test(shapes, test_balloon_rest_is_exactly_zero);
  tcase_add_test(shapes, test_pearson_properties);
  tcase_add_test(shapes, test_pearson_extremes_and_mask);
  suite_add_tcase(s, shapes);
  return s;
}

int main(void) {
  return test_run_suite(observe_suite());
}
