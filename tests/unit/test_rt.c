/*
 * test_rt.c — the runtime driven through rt_main with a hand-written model
 * of ABI v3: windows of WIN steps, a shared gain and one linear readout per
 * source over Fourier features, and an edge LGN -> V1 whose gate scales a
 * fixed delayed input of V1:
 *   out[i,j,c] = gain * sum_f x_f(t_ij) W[f,c] + b[c] (+ gate * e(t_ij) on V1),
 * t_ij = t[i] + j / rate. V1.m1 has an mse loss, LGN.m2 a poisson loss (out
 * is the log rate), and the prior is pe * |gate| + prior_l2 * sum W_b^2. The
 * gradients behind the lobe_fn ABI are analytic. Data files are written by
 * the test into a temporary directory.
 */
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"
#include "test_util.h"

enum { F = 4, B = 16, WIN = 4, MAXC = 3, P = 6, MAXN = B * WIN * MAXC };

static char tmpdir[64];
static char out_text[1 << 16], err_text[1 << 16];
static int break_gradient;     /* makes the f64 gain gradient wrong */
static int break_prior;        /* makes the f64 prior's gate gradient wrong */
static long interrupt_at_call; /* raise SIGINT in this loss_grad_f32 call */
static long loss_calls, prior_calls;
static double prior_l2;
/* What V1's forward_f32 was last called with. */
static float seen_t[B];
static int32_t seen_module, seen_subject;
static double seen_starts[4096];   /* every window start V1's forward saw */
static int nseen;

/* ---- the model ---------------------------------------------------------- */

static void features(double t, double *x) {
  x[0] = sin(2 * M_PI * t);
  x[1] = cos(2 * M_PI * t);
  x[2] = sin(6 * M_PI * t);
  x[3] = cos(6 * M_PI * t);
}

/* What LGN sends V1, 50 ms late. */
static double edge_input(double t) { return sin(2 * M_PI * (t - 0.05)); }

typedef struct Head {          /* how a source reads the model */
  int C, poisson, gated;
  double rate;
} Head;

static const Head head_a = {2, 0, 1, 20}, head_b = {3, 1, 0, 10};

typedef struct Grads {
  double gain, gate, W[F * MAXC], b[MAXC];
} Grads;

/* One step's loss and d loss / d out, over n values. */
static double step_loss(const Head *h, double o, double y, int n, double *d) {
  if (h->poisson) {
    *d = (exp(o) - y) / n;
    return (exp(o) - y * o) / n;
  }
  *d = 2 * (o - y) / n;
  return (o - y) * (o - y) / n;
}

/* Forward into out, and with y given, the loss and its gradients into g. */
static double toy(const Head *h, double gain, double gate, const double *W, const double *b,
                  const double *t, const double *y, double *out, Grads *g) {
  int C = h->C, n = B * WIN * C;
  double loss = 0;
  if (g)
    memset(g, 0, sizeof *g);
  for (int i = 0; i < B; i++)
    for (int j = 0; j < WIN; j++) {
      double tj = t[i] + j / h->rate, x[F], e = h->gated ? edge_input(tj) : 0, d;
      features(tj, x);
      for (int c = 0; c < C; c++) {
        int at = (i * WIN + j) * C + c;
        double z = 0;
        for (int f = 0; f < F; f++)
          z += x[f] * W[f * C + c];
        out[at] = gain * z + b[c] + gate * e;
        if (!y)
          continue;
        loss += step_loss(h, out[at], y[at], n, &d);
        g->gain += d * z;
        g->gate += d * e;
        g->b[c] += d;
        for (int f = 0; f < F; f++)
          g->W[f * C + c] += d * gain * x[f];
      }
    }
  return loss;
}

static void to_double(const void *src, double *dst, int n) {
  for (int i = 0; i < n; i++)
    dst[i] = ((const float *)src)[i];
}

static void to_float(const double *src, void *dst, int n) {
  for (int i = 0; i < n; i++)
    ((float *)dst)[i] = (float)src[i];
}

/* Params: 0 gain, 1 W_a, 2 b_a, 3 W_b, 4 b_b, 5 gate; args as in lobe_model.h:
 * t at P, ids at P+1 and P+2, then out, or y, loss and gradients. */
static void record(void *const *a) {
  memcpy(seen_t, a[P], sizeof seen_t);
  seen_module = ((const int32_t *)a[P + 1])[0];
  seen_subject = ((const int32_t *)a[P + 2])[0];
  for (int i = 0; i < B && nseen < 4096; i++)
    seen_starts[nseen++] = seen_t[i];
}

static void run_f32(void *const *a, const Head *h, int w, int with_loss) {
  double W[F * MAXC], b[MAXC], t[B], y[MAXN], out[MAXN];
  double gain = *(const float *)a[0], gate = *(const float *)a[5];
  Grads g;
  int n = B * WIN * h->C;
  to_double(a[w], W, F * h->C);
  to_double(a[w + 1], b, h->C);
  to_double(a[P], t, B);
  if (!with_loss) {
    toy(h, gain, gate, W, b, t, NULL, out, NULL);
    to_float(out, a[P + 3], n);
    return;
  }
  to_double(a[P + 3], y, n);
  *(float *)a[P + 4] = (float)toy(h, gain, gate, W, b, t, y, out, &g);
  *(float *)a[P + 5] = (float)g.gain;
  to_float(g.W, a[P + 6], F * h->C);
  to_float(g.b, a[P + 7], h->C);
  if (h->gated)
    *(float *)a[P + 8] = (float)g.gate;
  if (++loss_calls == interrupt_at_call)
    raise(SIGINT);
}

static void run_f64(void *const *a, const Head *h, int w) {
  double out[MAXN];
  Grads g;
  *(double *)a[P + 4] = toy(h, *(const double *)a[0], *(const double *)a[5], a[w], a[w + 1],
                            a[P], a[P + 3], out, &g);
  *(double *)a[P + 5] = g.gain * (break_gradient ? 1.01 : 1);
  memcpy(a[P + 6], g.W, F * (size_t)h->C * sizeof(double));
  memcpy(a[P + 7], g.b, (size_t)h->C * sizeof(double));
  if (h->gated)
    *(double *)a[P + 8] = g.gate;
}

static void fwd_a(void *const *a) {
  record(a);
  run_f32(a, &head_a, 1, 0);
}
static void fwd_b(void *const *a) { run_f32(a, &head_b, 3, 0); }
static void lg32_a(void *const *a) { run_f32(a, &head_a, 1, 1); }
static void lg32_b(void *const *a) { run_f32(a, &head_b, 3, 1); }
static void lg64_a(void *const *a) { run_f64(a, &head_a, 1); }
static void lg64_b(void *const *a) { run_f64(a, &head_b, 3); }

/* Source a specialised (region V1's spec): theta' = {gain * W_a}, W_a's
 * folded form, so that the specialised readout is linear with gain 1
 * (spec.c's merging). */
static void spec_a(void *const *a) {
  float gain = *(const float *)a[0];
  for (int i = 0; i < F * 2; i++)
    ((float *)a[P + 2])[i] = gain * ((const float *)a[1])[i];
}

/* params (W_a unread), t, y, W_a' -> loss, d b_a, d gate, d W_a' */
static void loss_grad_spec_a(void *const *a) {
  double W[F * 2], b[2], t[B], y[MAXN], out[MAXN];
  Grads g;
  to_double(a[P + 2], W, F * 2);
  to_double(a[2], b, 2);
  to_double(a[P], t, B);
  to_double(a[P + 1], y, B * WIN * 2);
  double loss = toy(&head_a, 1, *(const float *)a[5], W, b, t, y, out, &g);
  *(float *)a[P + 3] = (float)loss;
  to_float(g.b, a[P + 4], 2);
  *(float *)a[P + 5] = (float)g.gate;
  to_float(g.W, a[P + 6], F * 2);
}

/* d gain = <dW', W_a>, d W_a = gain dW'. */
static void spec_vjp_a(void *const *a) {
  const float *W = a[1], *dW = a[P + 2];
  float gain = *(const float *)a[0], dgain = 0;
  for (int i = 0; i < F * 2; i++) {
    dgain += dW[i] * W[i];
    ((float *)a[P + 5])[i] = gain * dW[i];
  }
  *(float *)a[P + 4] = dgain;
}

static const lobe_edge edges[] = {{0, 1, 0.05, 5, 1e-3, 1e-2, 0.02}};

/* The edge's prior weight per |gate| (l1 + distance * length). */
static double edge_weight(void) {
  return edges[0].l1 + edges[0].distance * edges[0].length;
}

/* params -> loss, d gate, d W_b */
static void prior32(void *const *a) {
  float gate = *(const float *)a[5], loss = (float)edge_weight() * fabsf(gate);
  const float *W = a[3];
  for (int i = 0; i < F * 3; i++) {
    loss += (float)prior_l2 * W[i] * W[i];
    ((float *)a[P + 2])[i] = (float)(2 * prior_l2) * W[i];
  }
  *(float *)a[P] = loss;
  *(float *)a[P + 1] = (float)edge_weight() * (gate < 0 ? -1.0f : 1.0f);
  prior_calls++;
}

static void prior64(void *const *a) {
  double gate = *(const double *)a[5], loss = edge_weight() * fabs(gate);
  const double *W = a[3];
  for (int i = 0; i < F * 3; i++) {
    loss += prior_l2 * W[i] * W[i];
    ((double *)a[P + 2])[i] = 2 * prior_l2 * W[i];
  }
  *(double *)a[P] = loss;
  *(double *)a[P + 1] = edge_weight() * (gate < 0 ? -1 : 1) * (break_prior ? 1.01 : 1);
}

static const int32_t folded_a[] = {1}, spec_grads_a[] = {2, 5}, vjp_a[] = {0, 1};
static const int32_t spec_regions_a[] = {1};
static const int32_t prior_ids[] = {5, 3};

static const lobe_param params[] = {
  {"gain", 1, 1, LOBE_INIT_UNIFORM, 1.0},
  {"W_a", F, 2, LOBE_INIT_NORMAL, 0.1},
  {"b_a", 1, 2, LOBE_INIT_ZEROS, 0},
  {"W_b", F, 3, LOBE_INIT_NORMAL, 0.1},
  {"b_b", 1, 3, LOBE_INIT_ZEROS, 0},
  {"gate", 1, 1, LOBE_INIT_CONSTANT, 1.0},
};
static lobe_region regions[2];
static const char *const subjects[] = {"m1", "m2", "m3"};
static const char *const names_a[] = {"x", "y"};
static const char *const names_b[] = {"ch0", "ch1", "ch2"};
static const int32_t grads_a[] = {0, 1, 2, 5}, grads_b[] = {0, 3, 4};
static char path_a[128], path_b[128], path_c[128];

/* V1.m2 (sources[2]) reads V1 like V1.m1 and is not trained; it is only in
 * the model (nsources = 3) for the held-out baseline. */
static lobe_source sources[3];
static lobe_model model;

static void make_model(void) {
  regions[0] = (lobe_region){.name = "LGN", .aunn = "cortex"};
  regions[1] = (lobe_region){.name = "V1", .aunn = "cortex"};
  sources[0] = (lobe_source){"V1.m1", 1, 0, LOBE_SRC_CSV, path_a, 20, 0.5, 2, names_a,
                             LOBE_LOSS_MSE, 1.0, fwd_a, lg32_a, lg64_a, 4, grads_a,
                             .spec_f32 = NULL};
  sources[1] = (lobe_source){"LGN.m2", 0, 1, LOBE_SRC_NPY, path_b, 10, 0, 3, names_b,
                             LOBE_LOSS_POISSON, 0.5, fwd_b, lg32_b, lg64_b, 3, grads_b,
                             .spec_f32 = NULL};
  sources[2] = sources[0];
  sources[2].name = "V1.m2";
  sources[2].subject = 1;
  sources[2].path = path_c;
  sources[2].loss_weight = 0;
  model = (lobe_model){.abi_version = LOBE_ABI_VERSION, .name = "toy", .spec_path = "toy.lobe",
                       .nparams = P, .params = params, .nregions = 2, .regions = regions,
                       .nsubjects = 3, .subjects = subjects, .nsources = 2,
                       .sources = sources, .nedges = 1, .edges = edges, .window = WIN,
                       .prior_f32 = prior32, .prior_f64 = prior64, .nprior_grad = 2,
                       .prior_grad_params = prior_ids, .batch = B, .steps = 300, .lr = 0.05,
                       .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .seed = 7};
}

static void specialise_a(void) {
  lobe_region *r = &regions[1];
  r->spec_f32 = spec_a;
  r->spec_vjp_f32 = spec_vjp_a;
  r->nfolded = 1;
  r->folded = folded_a;
  r->nvjp = 2;
  r->vjp_params = vjp_a;
  lobe_source *s = &sources[0];
  s->loss_grad_spec_f32 = loss_grad_spec_a;
  s->nspec_grad = 2;
  s->spec_grad_params = spec_grads_a;
  s->nspec_regions = 1;
  s->spec_regions = spec_regions_a;
}

/* ---- files -------------------------------------------------------------- */

static char *tmp_path(const char *name) {
  static char paths[8][160];
  static int slot;
  char *p = paths[slot++ % 8];
  snprintf(p, 160, "%s/%s", tmpdir, name);
  return p;
}

/* V1's two channels. */
static void truth(double t, double *y) {
  y[0] = 2 * sin(2 * M_PI * t) + 1;
  y[1] = -cos(6 * M_PI * t) + 0.5 * sin(2 * M_PI * t);
}

/* LGN's three rates per sample: log-linear in the features. */
static void rates(double t, double *y) {
  y[0] = exp(0.5 * sin(2 * M_PI * t) + 0.2);
  y[1] = exp(0.3 * cos(6 * M_PI * t) - 0.1);
  y[2] = exp(-0.4 * sin(6 * M_PI * t) + 0.5 * cos(2 * M_PI * t));
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

static void write_csv(const char *path, int rows) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "x,y\n");
  for (int k = 0; k < rows; k++) {
    double y[2];
    truth(0.5 + k / 20.0, y);
    fprintf(f, "%.7g,%.7g\n", y[0], y[1]);
  }
  fclose(f);
}

static void write_npy(const char *path, int rows, int cols, const float *v) {
  char header[128];
  int n = snprintf(header, sizeof header,
                   "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, cols);
  memset(header + n, ' ', 117 - (size_t)n);
  header[117] = '\n';
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  fwrite("\x93NUMPY\x01\x00\x76\x00", 1, 10, f);
  fwrite(header, 1, 118, f);
  fwrite(v, sizeof *v, (size_t)rows * (size_t)cols, f);
  fclose(f);
}

static void write_rates(const char *path, int rows) {
  float *v = malloc((size_t)rows * 3 * sizeof *v);
  for (int k = 0; k < rows; k++) {
    double y[3];
    rates(k / 10.0, y);
    for (int c = 0; c < 3; c++)
      v[k * 3 + c] = (float)y[c];
  }
  write_npy(path, rows, 3, v);
  free(v);
}

static long read_file(const char *path, char **data) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  *data = malloc((size_t)n + 1);
  ck_assert_int_eq((long)fread(*data, 1, (size_t)n, f), n);
  (*data)[n] = '\0';
  fclose(f);
  return n;
}

static int same_file(const char *a, const char *b) {
  char *x, *y;
  long n = read_file(a, &x), m = read_file(b, &y);
  ck_assert_int_gt(n, 0);
  int same = n == m && memcmp(x, y, (size_t)n) == 0;
  free(x);
  free(y);
  return same;
}

static void setup(void) {
  strcpy(tmpdir, "/tmp/lobe_test_rt_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
  snprintf(path_a, sizeof path_a, "%s/a.csv", tmpdir);
  snprintf(path_b, sizeof path_b, "%s/b.npy", tmpdir);
  snprintf(path_c, sizeof path_c, "%s/c.csv", tmpdir);
  write_csv(path_a, 200);
  write_rates(path_b, 100);
  write_csv(path_c, 50);
  make_model();
  break_gradient = break_prior = 0;
  interrupt_at_call = 0;
  loss_calls = prior_calls = 0;
  prior_l2 = 1e-3;
  nseen = 0;
}

static void teardown(void) { test_remove_tree(tmpdir); }

/* ---- running the CLI ---------------------------------------------------- */

/* rt_main(&model, "brain", args..., NULL) with stdout and stderr captured. */
static int run(const char *first, ...) {
  va_list ap;
  va_start(ap, first);
  int rc = test_rt_vmain(&model, out_text, sizeof out_text, err_text, sizeof err_text,
                         first, ap);
  va_end(ap);
  return rc;
}

/* ---- training, eval, predict -------------------------------------------- */

static int count_lines(const char *text) {
  int n = 0;
  for (; *text; text++)
    n += *text == '\n';
  return n;
}

/* Source a trained through spec, loss_grad_spec and spec_vjp (source b
 * through loss_grad: a mixed model) follows the unspecialised run up to
 * rounding. */
START_TEST(specialised_training_agrees) {
  ck_assert_int_eq(run("train", "--steps", "100", "--checkpoint", tmp_path("plain"), NULL), 0);
  double plain = test_field(out_text, "trained steps=100 loss=");
  specialise_a();
  ck_assert_int_eq(run("train", "--steps", "100", "--checkpoint", tmp_path("spec"), NULL), 0);
  double spec = test_field(out_text, "trained steps=100 loss=");
  ck_assert_msg(fabs(spec - plain) <= 1e-4 * fabs(plain), "loss %.6g specialised, %.6g not",
                spec, plain);
}
END_TEST

START_TEST(train_reduces_loss) {
  const char *ck = tmp_path("ck");
  ck_assert_int_eq(run("train", "--steps", "100", "--log-every", "10", "--checkpoint", ck,
                       NULL), 0);
  /* the poisson term has a non-zero minimum: V1's mse shows the progress */
  double first = test_field(strstr(err_text, "step=10 "), "loss[V1.m1]=");
  double last = test_field(strstr(err_text, "step=100 "), "loss[V1.m1]=");
  ck_assert_msg(last < 0.2 * first, "loss %g -> %g", first, last);
  ck_assert_double_eq_tol(test_field(out_text, "trained steps=100 loss="),
                          test_field(strstr(err_text, "step=100 "), "loss="), 1e-5);
  ck_assert_has(err_text, "loss[V1.m1]=");
  ck_assert_has(err_text, "loss[LGN.m2]=");
  ck_assert_has(err_text, "loss[prior]=");
  ck_assert_has(err_text, "samples_per_s=");
}
END_TEST

/* The prior's loss is one term of every step's loss, and its gradient is
 * added to the parameters' once per step. */
START_TEST(prior_once_per_step) {
  const char *ck = tmp_path("ck");
  ck_assert_int_eq(run("train", "--steps", "10", "--log-every", "1", "--checkpoint", ck, NULL),
                   0);
  ck_assert_int_eq(prior_calls, 10);
  const char *line = strstr(err_text, "step=10 ");
  ck_assert_ptr_nonnull(line);
  double total = test_field(line, "loss="), a = test_field(line, "loss[V1.m1]="),
         b = test_field(line, "loss[LGN.m2]="), prior = test_field(line, "loss[prior]=");
  ck_assert_double_eq_tol(total, a + 0.5 * b + prior, 1e-5 * fabs(total));
  ck_assert_double_gt(prior, edge_weight() * 0.9);   /* |gate| is about 1 */
  /* W_b trained by the prior alone: with eps = 1, Adam's first step is
   * lr * g / (|g| + 1), so g is visible, and counted once. */
  sources[1].loss_weight = 0;
  model.eps = 1;
  prior_l2 = 0.5;
  ck_assert_int_eq(run("train", "--steps", "1", "--checkpoint", ck, NULL), 0);
  RtParams fresh;
  ck_assert_int_eq(rt_params_alloc(&fresh, &model), RT_OK);
  rt_params_init(&fresh, &model, model.seed);
  RtState st;
  test_load_state(&st, &model, ck);
  for (int i = 0; i < F * 3; i++) {
    double w = fresh.value[3][i], g = 2 * prior_l2 * w;
    ck_assert_double_eq_tol(st.params.value[3][i], w - model.lr * g / (fabs(g) + 1), 1e-6);
  }
  rt_state_free(&st);
  rt_params_free(&fresh);
}
END_TEST

START_TEST(eval_r2) {
  const char *ck = tmp_path("ck");
  ck_assert_int_eq(run("eval", "--checkpoint", ck, NULL), RT_FAIL);
  ck_assert_has(err_text, "brain: no checkpoint at");
  ck_assert_has(err_text, "run train first");
  ck_assert_int_eq(run("train", "--checkpoint", ck, NULL), 0);
  ck_assert_int_eq(run("eval", "--checkpoint", ck, NULL), 0);
  const char *a = strstr(out_text, "V1.m1"), *b = strstr(out_text, "LGN.m2");
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  double rows, ch, mse, mse_std, r2;
  ck_assert_int_eq(sscanf(a + 5, "%lf %lf %lf %lf %lf", &rows, &ch, &mse, &mse_std, &r2), 5);
  ck_assert_double_eq(rows, 200);
  ck_assert_msg(r2 > 0.95, "R^2 of V1.m1 is %g", r2);
  ck_assert_int_eq(sscanf(b + 6, "%lf %lf %lf %lf %lf", &rows, &ch, &mse, &mse_std, &r2), 5);
  ck_assert_double_eq(ch, 3);
  ck_assert_msg(r2 > 0.95, "R^2 of LGN.m2 (rates exp(out)) is %g", r2);
  ck_assert_double_eq_tol(mse, mse_std, 1e-6 * mse);   /* counts are not standardised */
}
END_TEST

/* Tiles cover every row once: rows from W-1 on at the last step of the
 * window ending there, the first W-1 rows from the first window. */
START_TEST(eval_tiles_cover_rows_once) {
  for (int W = 1; W <= 7; W++)
    for (int rows = W; rows <= 40; rows++) {
      int used[40] = {0};
      int64_t n = rt_tile_count(rows, W);
      for (int64_t i = 0; i < n; i++) {
        int64_t start;
        int step;
        rt_tile(W, i, &start, &step);
        ck_assert(start >= 0 && start + W <= rows && step >= 0 && step < W);
        for (int j = step; j < W; j++)
          used[start + j]++;
      }
      for (int r = 0; r < rows; r++)
        ck_assert_msg(used[r] == 1, "W %d rows %d: row %d predicted %d times", W, rows, r,
                      used[r]);
    }
  int64_t start;
  int step;
  rt_tile(4, 2, &start, &step);   /* row 5: the last step of the window 2..5 */
  ck_assert_int_eq(start, 2);
  ck_assert_int_eq(step, 3);
  rt_tile(4, 0, &start, &step);   /* rows 0..3: every step of the first window */
  ck_assert_int_eq(start, 0);
  ck_assert_int_eq(step, 0);
}
END_TEST

/* eval runs V1.m1's 10 rows as the windows at rows 0, 1, ..., 6. */
START_TEST(eval_tiles_through_forward) {
  const char *ck = tmp_path("ck"), *ten = tmp_path("ten.csv");
  ck_assert_int_eq(run("train", "--steps", "5", "--checkpoint", ck, NULL), 0);
  write_csv(ten, 10);
  char arg[200];
  snprintf(arg, sizeof arg, "V1.m1=%s", ten);
  nseen = 0;
  ck_assert_int_eq(run("eval", "--data", arg, "--checkpoint", ck, NULL), 0);
  ck_assert_int_eq(nseen, B);   /* one batch: seven windows and padding */
  const double want[] = {0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.5};
  for (int i = 0; i < 8; i++)
    ck_assert_double_eq_tol(seen_starts[i], want[i], 1e-6);
  ck_assert_has(out_text, "\nV1.m1          10        2 ");
}
END_TEST

START_TEST(predict_rows) {
  const char *ck = tmp_path("ck"), *out = tmp_path("p.csv");
  ck_assert_int_eq(run("train", "--checkpoint", ck, NULL), 0);
  ck_assert_int_eq(run("predict", "--region", "V1", "--subject", "m1", "--from", "1",
                       "--to", "2", "-o", out, "--checkpoint", ck, NULL), 0);
  char *text;
  ck_assert_int_gt(read_file(out, &text), 0);
  ck_assert_int_eq(count_lines(text), 1 + 20);   /* [1, 2) at 20 Hz */
  ck_assert_int_eq(strncmp(text, "t,x,y\n1,", 8), 0);
  double t, x, y, want[3];
  ck_assert_int_eq(sscanf(strchr(text, '\n') + 1, "%lf,%lf,%lf", &t, &x, &y), 3);
  truth(t, want);
  ck_assert_msg(fabs(x - want[0]) < 0.2 && fabs(y - want[1]) < 0.2, "%g %g", x, y);
  free(text);
  /* a poisson source predicts rates, exp(out); stdout without -o */
  ck_assert_int_eq(run("predict", "--region", "LGN", "--subject", "m2", "--from", "0",
                       "--to", "0.25", "--checkpoint", ck, NULL), 0);
  ck_assert_int_eq(strncmp(out_text, "t,ch0,ch1,ch2\n0,", 16), 0);
  ck_assert_int_eq(count_lines(out_text), 1 + 3);   /* 0, 0.1, 0.2 at 10 Hz */
  double r[3], got[3];
  ck_assert_int_eq(sscanf(strchr(out_text, '\n') + 1, "%lf,%lf,%lf,%lf", &t, &got[0], &got[1],
                          &got[2]), 4);
  rates(t, r);
  for (int c = 0; c < 3; c++)
    ck_assert_msg(got[c] > 0 && fabs(got[c] - r[c]) < 0.2 * r[c], "rate %g, want %g", got[c],
                  r[c]);
  ck_assert_int_eq(run("predict", "--region", "V2", "--subject", "m1", "--from", "0",
                       "--to", "1", "--checkpoint", ck, NULL), RT_EUSAGE);
  ck_assert_has(err_text, "brain: unknown region 'V2' (valid: LGN, V1)");
  ck_assert_int_eq(run("predict", "--region", "V1", "--subject", "m1", "--from", "2",
                       "--to", "1", "--checkpoint", ck, NULL), RT_EUSAGE);
  ck_assert_int_eq(run("predict", "--region", "V1", "--subject", "m1", "--source", "LGN.m2",
                       "--from", "0", "--to", "1", "--checkpoint", ck, NULL), RT_EUSAGE);
  ck_assert_has(err_text, "--source LGN.m2: a source on region 'LGN', not on 'V1'");
}
END_TEST

/* The value at t is the last step of the window ending at t, for the
 * requested cell, and a batch holds several such windows. */
START_TEST(predict_window_placement) {
  const char *ck = tmp_path("ck");
  ck_assert_int_eq(run("train", "--steps", "5", "--checkpoint", ck, NULL), 0);
  ck_assert_int_eq(run("predict", "--region", "V1", "--subject", "m3", "--from", "1",
                       "--to", "1.1", "--checkpoint", ck, NULL), 0);
  ck_assert_int_eq(count_lines(out_text), 1 + 2);   /* 1 and 1.05 at 20 Hz */
  ck_assert_double_eq_tol(seen_t[0], 1 - (WIN - 1) / 20.0, 1e-6);
  ck_assert_double_eq_tol(seen_t[1], 1.05 - (WIN - 1) / 20.0, 1e-6);
  ck_assert_int_eq(seen_module, 1);
  ck_assert_int_eq(seen_subject, 2);
  /* the printed value is the forward's last step at t = 1 */
  RtState st;
  test_load_state(&st, &model, ck);
  double W[F * 2], b[2], t[B], out[MAXN];
  to_double(st.params.value[1], W, F * 2);
  to_double(st.params.value[2], b, 2);
  for (int i = 0; i < B; i++)
    t[i] = (float)(1 - (WIN - 1) / 20.0);
  toy(&head_a, st.params.value[0][0], st.params.value[5][0], W, b, t, NULL, out, NULL);
  double x = test_field(strchr(out_text, '\n') + 1, "1,");
  double want = out[(WIN - 1) * 2] * st.std[0][0] + st.mean[0][0];
  ck_assert_double_eq_tol(x, want, 1e-5 * fmax(1, fabs(want)));
  rt_state_free(&st);
}
END_TEST

/* ---- windows, poisson sources, held-out cells ---------------------------- */

START_TEST(window_draw_bounds) {
  enum { ROWS = 10, C = 2 };
  float values[ROWS * C];
  for (int i = 0; i < ROWS * C; i++)
    values[i] = (float)i;
  DataTable t = {ROWS, C, values, NULL};
  RtBatch b;
  ck_assert_int_eq(rt_batch_alloc(&b, &model), RT_OK);
  ck_assert_int_eq(b.window, WIN);
  int seen_first = 0, seen_last = 0;
  for (uint64_t k = 0; k < 20; k++) {
    rt_batch_draw(&b, &sources[0], &t, rt_rng_stream(1, RT_RNG_BATCH, k, 0));
    for (int i = 0; i < B; i++) {
      int64_t start = b.rows[i];
      ck_assert(start >= 0 && start <= ROWS - WIN);
      seen_first |= start == 0;
      seen_last |= start == ROWS - WIN;
      ck_assert_double_eq_tol(b.t[i], 0.5 + start / 20.0, 1e-6);
      ck_assert_int_eq(b.module[i], 1);
      ck_assert_int_eq(b.subject[i], 0);
      for (int j = 0; j < WIN * C; j++)   /* W consecutive rows, contiguous */
        ck_assert_float_eq(b.y[i * WIN * C + j], values[start * C + j]);
    }
  }
  ck_assert(seen_first && seen_last);
  t.rows = WIN;   /* exactly one window */
  rt_batch_draw(&b, &sources[0], &t, rt_rng_stream(1, RT_RNG_BATCH, 0, 0));
  for (int i = 0; i < B; i++)
    ck_assert_int_eq(b.rows[i], 0);
  rt_batch_free(&b);
}
END_TEST

START_TEST(too_short_table) {
  const char *ck = tmp_path("ck"), *shortcsv = tmp_path("short.csv");
  write_csv(shortcsv, WIN - 1);
  char arg[200];
  snprintf(arg, sizeof arg, "V1.m1=%s", shortcsv);
  ck_assert_int_eq(run("train", "--data", arg, "--checkpoint", ck, NULL), RT_EDATA);
  ck_assert_has(err_text, "short.csv: expected at least 4 rows for source 'V1.m1' (one window, "
                          "train { window: 4 }), found 3");
  write_csv(shortcsv, WIN);
  ck_assert_int_eq(run("train", "--steps", "2", "--data", arg, "--checkpoint", ck, NULL), 0);
}
END_TEST

START_TEST(poisson_counts_validated) {
  const char *ck = tmp_path("ck"), *npy = tmp_path("neg.npy"), *csv = tmp_path("neg.csv");
  float v[WIN * 3];
  for (int i = 0; i < WIN * 3; i++)
    v[i] = (float)i;
  v[2 * 3 + 1] = -1;
  write_npy(npy, WIN, 3, v);
  char arg[200];
  snprintf(arg, sizeof arg, "LGN.m2=%s", npy);
  ck_assert_int_eq(run("train", "--data", arg, "--checkpoint", ck, NULL), RT_EDATA);
  ck_assert_has(err_text, "neg.npy: row 2, column 1: expected a non-negative count for poisson "
                          "source 'LGN.m2', found -1");
  write_text(csv, "a,b,c\n0,1,2\n3,4,5\n6,7,-0.5\n1,1,1\n");
  snprintf(arg, sizeof arg, "LGN.m2=%s", csv);
  ck_assert_int_eq(run("gradcheck", "--data", arg, "--checkpoint", ck, NULL), RT_EDATA);
  ck_assert_has(err_text, "neg.csv:4: field 3 (\"c\"): expected a non-negative count for "
                          "poisson source 'LGN.m2', found -0.5");
  write_text(csv, "a,b,c\n0,1,2\n3,4,5\n6,7,0\n1,1,1\n");   /* zero is a count */
  ck_assert_int_eq(run("train", "--steps", "2", "--data", arg, "--checkpoint", ck, NULL), 0);
}
END_TEST

/* Counts keep their scale: stored as mean 0, std 1; a checkpoint that
 * standardised the source (trained as mse) does not load as poisson. */
START_TEST(poisson_not_standardised) {
  const char *ck = tmp_path("ck"), *mse = tmp_path("mse");
  ck_assert_int_eq(run("train", "--steps", "3", "--checkpoint", ck, NULL), 0);
  RtState st;
  test_load_state(&st, &model, ck);
  for (int c = 0; c < 3; c++) {
    ck_assert_double_eq(st.mean[1][c], 0);
    ck_assert_double_eq(st.std[1][c], 1);
  }
  ck_assert_double_ne(st.mean[0][0], 0);   /* the mse source is standardised */
  rt_state_free(&st);
  sources[1].loss_kind = LOBE_LOSS_MSE;
  ck_assert_int_eq(run("train", "--steps", "3", "--checkpoint", mse, NULL), 0);
  sources[1].loss_kind = LOBE_LOSS_POISSON;
  ck_assert_int_eq(run("eval", "--checkpoint", mse, NULL), RT_FAIL);
  ck_assert_has(err_text, "source 'LGN.m2' is standardised there (an mse loss), raw counts "
                          "here (poisson)");
}
END_TEST

/* The baseline by hand: h is V1 of m3; V1 of m1 has 6 rows, of m2 4 rows.
 *   h  x 0 1 2 3 4 5    y 0 0 0 0 0 6
 *   m1 x 0 1 2 3 4 6    y 0 0 0 0 0 0
 *   m2 x 2 3 4 5        y 0 0 0 0
 * baseline x = 1 2 3 4 4 6: SSE 5 of SST 17.5; y = 0: SSE 36 of SST 30;
 * R^2 = (1 - 5/17.5 + 1 - 36/30) / 2, mse = 41 / 12. */
START_TEST(heldout_baseline) {
  const char *ck = tmp_path("ck"), *h = tmp_path("h.csv"), *m1 = tmp_path("m1.csv"),
             *m2 = tmp_path("m2.csv");
  model.nsources = 3;
  ck_assert_int_eq(run("train", "--steps", "20", "--checkpoint", ck, NULL), 0);
  write_text(h, "x,y\n0,0\n1,0\n2,0\n3,0\n4,0\n5,6\n");
  write_text(m1, "x,y\n0,0\n1,0\n2,0\n3,0\n4,0\n6,0\n");
  write_text(m2, "x,y\n2,0\n3,0\n4,0\n5,0\n");
  char d1[200], d2[200], held[200];
  snprintf(d1, sizeof d1, "V1.m1=%s", m1);
  snprintf(d2, sizeof d2, "V1.m2=%s", m2);
  snprintf(held, sizeof held, "V1.m3=%s", h);
  ck_assert_int_eq(run("eval", "--data", d1, "--data", d2, "--heldout", held, "--head",
                       "V1.m1", "--checkpoint", ck, NULL), 0);
  const char *line = strstr(out_text, "\nheldout V1.m3 head=V1.m1 rows=6 channels=2 ");
  ck_assert_msg(line != NULL, "%s", out_text);
  ck_assert_int_eq((int)test_field(line, "baseline_sources="), 2);
  ck_assert_double_eq_tol(test_field(line, "baseline_r2="), (1 - 5 / 17.5 + 1 - 36 / 30.0) / 2,
                          1e-4);
  ck_assert_double_eq_tol(test_field(line, "baseline_mse="), 41 / 12.0, 1e-5);
  ck_assert_has(line, " r2=");
  ck_assert_has(line, " mse=");
  ck_assert_int_eq(seen_subject, 2);   /* V1's head read for m3 */
  ck_assert_int_eq(seen_module, 1);
}
END_TEST

START_TEST(heldout_errors) {
  const char *ck = tmp_path("ck"), *h = tmp_path("h.csv");
  char held[200];
  ck_assert_int_eq(run("train", "--steps", "5", "--checkpoint", ck, NULL), 0);
  write_text(h, "a,b,c\n0,0,0\n1,1,1\n2,2,2\n3,3,3\n");
  snprintf(held, sizeof held, "V1.m3=%s", h);
  ck_assert_int_eq(run("eval", "--heldout", held, "--checkpoint", ck, NULL), RT_EDATA);
  ck_assert_has(err_text, "h.csv: expected 2 channels for source 'V1.m1', found 3");
  ck_assert_int_eq(run("eval", "--heldout", held, "--head", "LGN.m2", "--checkpoint", ck, NULL),
                   RT_EUSAGE);
  ck_assert_has(err_text, "--head LGN.m2: a source on region 'LGN', not on 'V1'");
  snprintf(held, sizeof held, "V1.m1=%s", h);
  ck_assert_int_eq(run("eval", "--heldout", held, "--checkpoint", ck, NULL), RT_EUSAGE);
  ck_assert_has(err_text, "the model trains on this cell (source 'V1.m1')");
  ck_assert_int_eq(run("eval", "--heldout", "V9.m1=x.csv", NULL), RT_EUSAGE);
  ck_assert_has(err_text, "--heldout: 'V9.m1' is not REGION.SUBJECT of this model");
  ck_assert_int_eq(run("eval", "--heldout", "V1.m3", NULL), RT_EUSAGE);
  ck_assert_has(err_text, "expected REGION.SUBJECT=PATH");
  ck_assert_int_eq(run("eval", "--head", "V1.m1", NULL), RT_EUSAGE);
  ck_assert_has(err_text, "--head V1.m1: expected after a --heldout");
  /* LGN of m1 through the poisson head: counts, validated as such */
  write_text(h, "a,b,c\n0,0,0\n1,1,1\n2,-2,2\n3,3,3\n");
  snprintf(held, sizeof held, "LGN.m1=%s", h);
  ck_assert_int_eq(run("eval", "--heldout", held, "--checkpoint", ck, NULL), RT_EDATA);
  ck_assert_has(err_text, "expected a non-negative count");
  write_text(h, "a,b,c\n0,0,0\n1,1,1\n2,2,2\n3,3,3\n");
  ck_assert_int_eq(run("eval", "--heldout", held, "--checkpoint", ck, NULL), 0);
  ck_assert_has(out_text, "heldout LGN.m1 head=LGN.m2 rows=4 channels=3 ");
  ck_assert_has(out_text, " baseline_sources=1 ");
  /* LGN.m2 untrained: held out through its own head, no other subject has LGN */
  sources[1].loss_weight = 0;
  snprintf(held, sizeof held, "LGN.m2=%s", h);
  ck_assert_int_eq(run("eval", "--heldout", held, "--checkpoint", ck, NULL), 0);
  ck_assert_has(out_text, "baseline_sources=0 baseline_mse=n/a baseline_r2=n/a\n");
}
END_TEST

/* ---- gradcheck ---------------------------------------------------------- */

START_TEST(gradcheck_passes) {
  ck_assert_int_eq(run("gradcheck", "--checkpoint", tmp_path("none"), NULL), 0);
  const char *last = strstr(out_text, "gradcheck: max_rel_err=");
  ck_assert_ptr_nonnull(last);
  ck_assert_has(last, "params=6\n");
  ck_assert_msg(test_field(last, "max_rel_err=") < 1e-6, "%s", out_text);
  ck_assert_msg(test_field(out_text, "prior: max_rel_err=") < 1e-6, "%s", out_text);
}
END_TEST

START_TEST(gradcheck_catches_wrong_gradient) {
  break_gradient = 1;
  ck_assert_int_eq(run("gradcheck", "--checkpoint", tmp_path("none"), NULL), RT_FAIL);
  ck_assert_msg(test_field(out_text, "gradcheck: max_rel_err=") > 1e-3, "%s", out_text);
  break_gradient = 0;
  break_prior = 1;
  ck_assert_int_eq(run("gradcheck", "--checkpoint", tmp_path("none"), NULL), RT_FAIL);
  ck_assert_msg(test_field(out_text, "prior: max_rel_err=") > 1e-3, "%s", out_text);
}
END_TEST

/* ---- checkpoints -------------------------------------------------------- */

static const char *ckpt_file(const char *dir) {
  static char paths[2][200];
  static int slot;
  char *path = paths[slot++ % 2];
  snprintf(path, 200, "%s/checkpoint.bin", dir);
  return path;
}

START_TEST(resume_is_exact) {
  const char *a = tmp_path("a"), *b = tmp_path("b");
  ck_assert_int_eq(run("train", "--steps", "40", "--checkpoint", a, NULL), 0);
  ck_assert_int_eq(run("train", "--steps", "20", "--checkpoint", b, NULL), 0);
  ck_assert_int_eq(run("train", "--steps", "40", "--resume", "--checkpoint", b, NULL), 0);
  ck_assert_has(out_text, "trained steps=40 ");
  ck_assert(same_file(ckpt_file(a), ckpt_file(b)));
  /* a different seed must change the result, or the comparison proves nothing */
  ck_assert_int_eq(run("train", "--steps", "40", "--seed", "8", "--checkpoint", b, NULL), 0);
  ck_assert(!same_file(ckpt_file(a), ckpt_file(b)));
}
END_TEST

START_TEST(interrupt_and_resume) {
  const char *a = tmp_path("a"), *c = tmp_path("c");
  ck_assert_int_eq(run("train", "--steps", "40", "--checkpoint-every", "7", "--checkpoint", a,
                       NULL), 0);
  loss_calls = 0;
  interrupt_at_call = 2 * 13 - 1;   /* in step 13: two sources per step */
  ck_assert_int_eq(run("train", "--steps", "40", "--checkpoint", c, NULL), 130);
  ck_assert_has(err_text, "interrupted by SIGINT at step 13");
  ck_assert(!same_file(ckpt_file(a), ckpt_file(c)));
  interrupt_at_call = 0;
  ck_assert_int_eq(run("train", "--steps", "40", "--resume", "--checkpoint", c, NULL), 0);
  ck_assert(same_file(ckpt_file(a), ckpt_file(c)));
}
END_TEST

static void damage(const char *path, long offset, int truncate_to) {
  char *data;
  long n = read_file(path, &data);
  FILE *f = fopen(path, "wb");
  if (offset >= 0)
    data[offset] ^= 0x40;
  fwrite(data, 1, truncate_to >= 0 ? (size_t)truncate_to : (size_t)n, f);
  fclose(f);
  free(data);
}

START_TEST(corrupt_checkpoint) {
  const char *ck = tmp_path("ck");
  ck_assert_int_eq(run("train", "--steps", "5", "--checkpoint", ck, NULL), 0);
  damage(ckpt_file(ck), 100, -1);
  ck_assert_int_eq(run("eval", "--checkpoint", ck, NULL), RT_FAIL);
  ck_assert_has(err_text, "checkpoint.bin is corrupt: checksum mismatch");
  damage(ckpt_file(ck), -1, 50);
  ck_assert_int_eq(run("train", "--resume", "--checkpoint", ck, NULL), RT_FAIL);
  ck_assert_has(err_text, "is corrupt");
  damage(ckpt_file(ck), 0, -1);
  ck_assert_int_eq(run("predict", "--region", "V1", "--subject", "m1", "--from", "0", "--to",
                       "1", "--checkpoint", ck, NULL), RT_FAIL);
  ck_assert_has(err_text, "not a lobe checkpoint");
}
END_TEST

START_TEST(mismatched_checkpoint) {
  const char *ck = tmp_path("ck");
  ck_assert_int_eq(run("train", "--steps", "5", "--checkpoint", ck, NULL), 0);
  lobe_param other[P];
  memcpy(other, params, sizeof other);
  other[3].rows = 5;
  model.params = other;
  ck_assert_int_eq(run("eval", "--checkpoint", ck, NULL), RT_FAIL);
  ck_assert_has(err_text, "was written for a different model: parameter 3 is 'W_b' 4x3 there, "
                          "'W_b' 5x3 here");
  model.params = params;
  model.nsources = 1;
  ck_assert_int_eq(run("train", "--resume", "--checkpoint", ck, NULL), RT_FAIL);
  ck_assert_has(err_text, "it has 2 data sources, this model has 1");
}
END_TEST

START_TEST(bad_data_keeps_checkpoint) {
  const char *ck = tmp_path("ck"), *bad = tmp_path("bad.csv");
  ck_assert_int_eq(run("train", "--steps", "5", "--checkpoint", ck, NULL), 0);
  char *before, *after;
  long n = read_file(ckpt_file(ck), &before);
  FILE *f = fopen(bad, "w");
  fputs("x,y\n1,2\n3,oops\n", f);
  fclose(f);
  char arg[200];
  snprintf(arg, sizeof arg, "V1.m1=%s", bad);
  ck_assert_int_eq(run("train", "--data", arg, "--checkpoint", ck, NULL), RT_EDATA);
  ck_assert_has(err_text, "bad.csv:3: field 2 (\"y\"): expected a number, found \"oops\"");
  snprintf(arg, sizeof arg, "V1.m1=%s", path_b);
  ck_assert_int_eq(run("train", "--data", arg, "--checkpoint", ck, NULL), RT_EDATA);
  ck_assert_has(err_text, "b.npy: expected 2 channels for source 'V1.m1', found 3");
  ck_assert_int_eq(run("eval", "--data", "V9.m1=x.csv", "--checkpoint", ck, NULL), RT_EDATA);
  ck_assert_has(err_text, "unknown source 'V9.m1' (valid: V1.m1, LGN.m2)");
  ck_assert_int_eq(read_file(ckpt_file(ck), &after), n);
  ck_assert(memcmp(before, after, (size_t)n) == 0);
  free(before);
  free(after);
}
END_TEST

/* ---- command line ------------------------------------------------------- */

START_TEST(cli_usage) {
  ck_assert_int_eq(run("--help", NULL), 0);
  ck_assert_has(out_text, "brain train [--steps N]");
  ck_assert_has(out_text, "[--heldout R.S=PATH [--head SOURCE]]...");
  ck_assert_int_eq(run("train", "--help", NULL), 0);
  ck_assert_has(out_text, "--checkpoint-every N");
  ck_assert_int_eq(run("fly", NULL), RT_EUSAGE);
  ck_assert_has(err_text, "brain: unknown command 'fly'");
  ck_assert_int_eq(run("eval", "--steps", "3", NULL), RT_EUSAGE);
  ck_assert_has(err_text, "option --steps does not apply to 'eval'");
  ck_assert_int_eq(run("eval", "--stpes=3", NULL), RT_EUSAGE);
  ck_assert_has(err_text, "unknown option '--stpes=3' for 'eval'");
  ck_assert_int_eq(run("train", "--steps", "-3", NULL), RT_EUSAGE);
  ck_assert_has(err_text, "--steps: expected an integer from 1");
  ck_assert_int_eq(run("train", "--steps", NULL), RT_EUSAGE);
  ck_assert_has(err_text, "option --steps needs a value");
  ck_assert_int_eq(run("train", "--heldout", "V1.m3=x.csv", NULL), RT_EUSAGE);
  ck_assert_has(err_text, "option --heldout does not apply to 'train'");
}
END_TEST

START_TEST(info_graph) {
  const char *ck = tmp_path("ck");
  ck_assert_int_eq(run("info", "--checkpoint", ck, NULL), 0);
  ck_assert_has(out_text, "W_b");
  ck_assert_has(out_text, "train: batch 16, window 4, steps 300");
  ck_assert_has(out_text, "checkpoint: none at");
  ck_assert_has(out_text, "edges: 1\n");
  ck_assert_has(out_text, "LGN  -> V1         0.05       1 (init)      0.001         0.01       "
                          "0.02\n");
  ck_assert_has(out_text, "constant(1)");
  ck_assert_has(out_text, "V1.m1   csv        2         20        0.5     mse        1 ");
  ck_assert_has(out_text, "LGN.m2  npy        3         10          0 poisson      0.5 ");
  /* V1 has 2 channels of m1, LGN 3 of m2 */
  ck_assert_has(out_text, "LGN       .    3    .\n");
  ck_assert_has(out_text, "V1        2    .    .\n");
  ck_assert_int_eq(run("train", "--steps", "30", "--checkpoint", ck, NULL), 0);
  ck_assert_int_eq(run("info", "--checkpoint", ck, NULL), 0);
  ck_assert_has(out_text, "checkpoint: ");
  ck_assert_has(out_text, ", step 30\n");
  RtState st;
  test_load_state(&st, &model, ck);
  char gate[64];
  snprintf(gate, sizeof gate, "0.05 %14g ", st.params.value[5][0]);
  ck_assert_has(out_text, gate);
  rt_state_free(&st);
}
END_TEST

START_TEST(broken_descriptor) {
  model.batch = 0;
  ck_assert_int_eq(run("info", NULL), RT_FAIL);
  ck_assert_has(err_text, "broken model descriptor");
  make_model();
  static const int32_t bad_grads[] = {0, 9};
  sources[1].grad_params = bad_grads;
  sources[1].ngrad = 2;
  ck_assert_int_eq(run("train", NULL), RT_FAIL);
  ck_assert_has(err_text, "list names an unknown parameter");
  make_model();
  regions[1].spec_f32 = fwd_a;   /* spec_vjp missing */
  ck_assert_int_eq(run("train", NULL), RT_FAIL);
  ck_assert_has(err_text, "region 1: incomplete specialised entry points");
  make_model();
  specialise_a();
  static const int32_t lgn_only[] = {0};
  sources[0].spec_regions = lgn_only;   /* LGN has no spec, V1 is not listed */
  ck_assert_int_eq(run("train", NULL), RT_FAIL);
  ck_assert_has(err_text, "source 0: a specialised region without spec");
  make_model();
  sources[1].loss_kind = 7;
  ck_assert_int_eq(run("info", NULL), RT_FAIL);
  ck_assert_has(err_text, "source 1: unknown loss kind");
  make_model();
  model.window = 0;
  ck_assert_int_eq(run("info", NULL), RT_FAIL);
  ck_assert_has(err_text, "window out of range");
}
END_TEST

/* Each edge or prior inconsistency on its own. */
START_TEST(broken_graph) {
  static const char *const problems[] = {
    "edge 0: region out of range", "edge 0: delay out of range",
    "edge 0: gate is not a parameter of one element per edge", "edge 0: prior weights or length",
    "edge 0: its prior has no gradient for its gate", "prior 0: gradients or an f64 form",
    "prior 0: list names an unknown parameter",
  };
  static const int32_t bad_ids[] = {5, 6};
  for (int i = 0; i < 7; i++) {
    lobe_edge e = edges[0];
    make_model();
    model.edges = &e;
    switch (i) {
    case 0: e.to = 2; break;
    case 1: e.from = e.to = 1, e.delay = 0; break;
    case 2: e.gate = 1; break;
    case 3: e.l1 = -1; break;
    case 4: model.nprior_grad = 1, model.prior_grad_params = &prior_ids[1]; break;
    case 5: model.prior_f32 = NULL; break;
    case 6: model.prior_grad_params = bad_ids; break;
    }
    ck_assert_int_eq(run("info", NULL), RT_FAIL);
    ck_assert_has(err_text, problems[i]);
  }
}
END_TEST

/* ---- pieces ------------------------------------------------------------- */

START_TEST(stats_constant_channel) {
  float v[] = {0.1f, 5, 0.1f, 7, 0.1f, 9};
  DataTable t = {3, 2, v, NULL};
  double mean[2], std[2];
  rt_stats_compute(&sources[0], &t, mean, std);
  ck_assert_double_eq(mean[0], (double)0.1f);
  ck_assert_double_eq(std[0], 1);
  ck_assert_double_eq_tol(mean[1], 7, 1e-12);
  ck_assert_double_eq_tol(std[1], sqrt(8.0 / 3), 1e-12);
  rt_standardise(&t, mean, std);
  ck_assert_float_eq(v[0], 0);
  ck_assert_float_eq_tol(v[5], (float)(2 / sqrt(8.0 / 3)), 1e-6);
  rt_stats_compute(&sources[1], &t, mean, std);   /* poisson: counts stay as they are */
  ck_assert(mean[0] == 0 && mean[1] == 0 && std[0] == 1 && std[1] == 1);
}
END_TEST

START_TEST(rng_is_counter_based) {
  uint64_t s1 = rt_rng_stream(1, RT_RNG_BATCH, 5, 0), s2 = rt_rng_stream(1, RT_RNG_BATCH, 6, 0);
  ck_assert_uint_ne(s1, s2);
  ck_assert_uint_eq(rt_rng_u64(s1, 3), rt_rng_u64(rt_rng_stream(1, RT_RNG_BATCH, 5, 0), 3));
  double sum = 0, sq = 0;
  for (int i = 0; i < 20000; i++) {
    double x = rt_rng_normal(s1, (uint64_t)i);
    sum += x;
    sq += x * x;
    ck_assert_uint_lt(rt_rng_below(s2, (uint64_t)i, 7), 7);
  }
  ck_assert_double_eq_tol(sum / 20000, 0, 0.05);
  ck_assert_double_eq_tol(sq / 20000, 1, 0.05);
}
END_TEST

static Suite *rt_suite(void) {
  Suite *s = suite_create("rt");
  TCase *tc = tcase_create("runtime");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, train_reduces_loss);
  tcase_add_test(tc, specialised_training_agrees);
  tcase_add_test(tc, prior_once_per_step);
  tcase_add_test(tc, eval_r2);
  tcase_add_test(tc, eval_tiles_cover_rows_once);
  tcase_add_test(tc, eval_tiles_through_forward);
  tcase_add_test(tc, predict_rows);
  tcase_add_test(tc, predict_window_placement);
  tcase_add_test(tc, window_draw_bounds);
  tcase_add_test(tc, too_short_table);
  tcase_add_test(tc, poisson_counts_validated);
  tcase_add_test(tc, poisson_not_standardised);
  tcase_add_test(tc, heldout_baseline);
  tcase_add_test(tc, heldout_errors);
  tcase_add_test(tc, gradcheck_passes);
  tcase_add_test(tc, gradcheck_catches_wrong_gradient);
  tcase_add_test(tc, resume_is_exact);
  tcase_add_test(tc, interrupt_and_resume);
  tcase_add_test(tc, corrupt_checkpoint);
  tcase_add_test(tc, mismatched_checkpoint);
  tcase_add_test(tc, bad_data_keeps_checkpoint);
  tcase_add_test(tc, cli_usage);
  tcase_add_test(tc, info_graph);
  tcase_add_test(tc, broken_descriptor);
  tcase_add_test(tc, broken_graph);
  tcase_add_test(tc, stats_constant_channel);
  tcase_add_test(tc, rng_is_counter_based);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(rt_suite());
}
