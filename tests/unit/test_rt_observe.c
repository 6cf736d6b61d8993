/*
 * test_rt_observe.c — the runtime's observations (lobe_model.h, v6): the
 * target statistics on tiny tables with known answers, window drawing, and
 * a hand-written model with no sources and three observations of one
 * subject, driven through rt_main:
 *   rest.s1  bold on regions A, B   (trained, weight 1)
 *   scalp.s1 eeg on A, B, C, 3 ch   (trained, weight 0.5)
 *   conn.s1  fc on A, B, C          (eval only, weight 0)
 * bold and fc predict out[j][c] = a w_c(t_j) + b, w_c(t) = sin(2 pi f t + c),
 * t_j = t + j / rate; eeg predicts g (w_c - mean_c w_c), average-referenced
 * like the real operator. bold and eeg have the loss mean((out - y)^2) with
 * analytic gradients, fc the mean over i < j of (corr(out) - y)^2 and no f64
 * form (it is never trained).
 */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"
#include "test_util.h"

enum { P = 3, MAXT = 8, MAXC = 3 };
static const double freq = 0.25, rate = 2;

static char tmpdir[64];
static char out_text[1 << 16], err_text[1 << 16];
static char path_bold[128], path_eeg[128], path_fc[128];
static long calls[3];            /* loss_grad_f32 calls per observation */
static int bad_module;           /* a call saw module[] or subject[] other than expected */
static int off_grid;             /* a call saw a t that is not t0 + row / rate */
static int break_gradient;       /* makes bold's f64 gradient of a wrong */

/* ---- the model ---------------------------------------------------------- */

typedef struct Shape {
  int kind, T, C, index;
} Shape;

static const Shape shape_bold = {LOBE_OBS_BOLD, 4, 2, 0};
static const Shape shape_eeg = {LOBE_OBS_EEG, 5, 3, 1};
static const Shape shape_fc = {LOBE_OBS_FC, 8, 3, 2};

static double wave(double t, int c) { return sin(2 * M_PI * freq * t + c); }

/* What the gain multiplies: w_c, average-referenced for eeg. */
static double basis(const Shape *s, double t, int c) {
  double mean = 0;
  for (int k = 0; s->kind == LOBE_OBS_EEG && k < s->C; k++)
    mean += wave(t, k) / s->C;
  return wave(t, c) - mean;
}

/* The gain and offset: (a, b), or eeg's (g, 0). */
static void gain_offset(const Shape *s, void *const *a, int f64, double *gain, double *off) {
  double v[P];
  for (int k = 0; k < P; k++)
    v[k] = f64 ? *(const double *)a[k] : *(const float *)a[k];
  *gain = s->kind == LOBE_OBS_EEG ? v[2] : v[0];
  *off = s->kind == LOBE_OBS_EEG ? 0 : v[1];
}

static void predict(const Shape *s, double gain, double off, double t, double *out) {
  for (int j = 0; j < s->T; j++)
    for (int c = 0; c < s->C; c++)
      out[j * s->C + c] = gain * basis(s, t + j / rate, c) + off;
}

/* mean((out - y)^2) and its gradients: g[0] in the gain, g[1] in the offset. */
static double mse(const Shape *s, double t, const double *out, const double *y, double *g) {
  int n = s->T * s->C;
  double loss = 0;
  g[0] = g[1] = 0;
  for (int j = 0; j < s->T; j++)
    for (int c = 0; c < s->C; c++) {
      double d = out[j * s->C + c] - y[j * s->C + c];
      loss += d * d / n;
      g[0] += 2 * d / n * basis(s, t + j / rate, c);
      g[1] += 2 * d / n;
    }
  return loss;
}

static void pearson(const double *x, int T, int C, double *r) {
  double mean[MAXC] = {0};
  for (int j = 0; j < T; j++)
    for (int c = 0; c < C; c++)
      mean[c] += x[j * C + c] / T;
  for (int i = 0; i < C; i++)
    for (int k = 0; k < C; k++) {
      double sik = 0, sii = 0, skk = 0;
      for (int j = 0; j < T; j++) {
        double di = x[j * C + i] - mean[i], dk = x[j * C + k] - mean[k];
        sik += di * dk;
        sii += di * di;
        skk += dk * dk;
      }
      r[i * C + k] = sii > 0 && skk > 0 ? sik / sqrt(sii * skk) : 0;
    }
}

static double upper_mse(const double *x, const double *y, int C) {
  double sum = 0;
  for (int i = 0; i < C; i++)
    for (int k = i + 1; k < C; k++)
      sum += (x[i * C + k] - y[i * C + k]) * (x[i * C + k] - y[i * C + k]);
  return sum / (C * (C - 1) / 2);
}

static const int32_t regions_ab[] = {0, 1}, regions_abc[] = {0, 1, 2};

/* The observation's ids are its regions and subject 1 (s1); t is on its grid. */
static void check_call(const Shape *s, void *const *a) {
  const int32_t *module = a[P + 1], *subject = a[P + 2];
  const int32_t *want = s->C == 2 ? regions_ab : regions_abc;
  for (int i = 0; i < (s->kind == LOBE_OBS_EEG ? 3 : s->C); i++)
    bad_module |= module[i] != want[i] || subject[i] != 1;
  double row = (*(const float *)a[P] - 0.5) * rate;
  off_grid |= fabs(row - round(row)) > 1e-3 || row < -1e-3;
}

static void run_f32(const Shape *s, void *const *a, int with_loss) {
  double out[MAXT * MAXC], y[MAXT * MAXC], g[2], gain, off, t = *(const float *)a[P];
  int n = s->kind == LOBE_OBS_FC ? s->C * s->C : s->T * s->C;
  check_call(s, a);
  gain_offset(s, a, 0, &gain, &off);
  predict(s, gain, off, t, out);
  if (!with_loss) {
    for (int i = 0; i < s->T * s->C; i++)
      ((float *)a[P + 3])[i] = (float)out[i];
    return;
  }
  calls[s->index]++;
  for (int i = 0; i < n; i++)
    y[i] = ((const float *)a[P + 3])[i];
  if (s->kind == LOBE_OBS_FC) {
    double r[MAXC * MAXC];
    pearson(out, s->T, s->C, r);
    *(float *)a[P + 4] = (float)upper_mse(r, y, s->C);
    *(float *)a[P + 5] = *(float *)a[P + 6] = 0;   /* never trained */
    return;
  }
  *(float *)a[P + 4] = (float)mse(s, t, out, y, g);
  *(float *)a[P + 5] = (float)g[0];
  if (s->kind != LOBE_OBS_EEG)
    *(float *)a[P + 6] = (float)g[1];
}

static void run_f64(const Shape *s, void *const *a) {
  double out[MAXT * MAXC], g[2], gain, off, t = *(const double *)a[P];
  gain_offset(s, a, 1, &gain, &off);
  predict(s, gain, off, t, out);
  *(double *)a[P + 4] = mse(s, t, out, a[P + 3], g);
  *(double *)a[P + 5] = g[0] * (break_gradient && s->kind == LOBE_OBS_BOLD ? 1.01 : 1);
  if (s->kind != LOBE_OBS_EEG)
    *(double *)a[P + 6] = g[1];
}

static void fwd_bold(void *const *a) { run_f32(&shape_bold, a, 0); }
static void fwd_eeg(void *const *a) { run_f32(&shape_eeg, a, 0); }
static void fwd_fc(void *const *a) { run_f32(&shape_fc, a, 0); }
static void lg32_bold(void *const *a) { run_f32(&shape_bold, a, 1); }
static void lg32_eeg(void *const *a) { run_f32(&shape_eeg, a, 1); }
static void lg32_fc(void *const *a) { run_f32(&shape_fc, a, 1); }
static void lg64_bold(void *const *a) { run_f64(&shape_bold, a); }
static void lg64_eeg(void *const *a) { run_f64(&shape_eeg, a); }

static const lobe_param params[] = {
  {"a", 1, 1, LOBE_INIT_CONSTANT, 0.5},
  {"b", 1, 1, LOBE_INIT_CONSTANT, 0.3},
  {"g", 1, 1, LOBE_INIT_CONSTANT, 0.1},
};
static const lobe_region regions[] = {{.name = "A"}, {.name = "B"}, {.name = "C"}};
static const char *const subjects[] = {"s0", "s1"};
static const int32_t grads[] = {0, 1}, eeg_grads[] = {2};
static lobe_observation observations[3];
static lobe_model model;

static lobe_source recording(const char *path, int channels) {
  return (lobe_source){.name = "", .region = -1, .subject = 1, .kind = LOBE_SRC_CSV,
                       .path = path, .rate = rate, .t0 = 0.5, .channels = channels};
}

static void make_model(void) {
  observations[0] = (lobe_observation){"rest.s1", LOBE_OBS_BOLD, 1, 2, regions_ab, 4, 3, 2,
                                       1.0, recording(path_bold, 2), fwd_bold, lg32_bold,
                                       lg64_bold, NULL, 2, grads};
  observations[1] = (lobe_observation){"scalp.s1", LOBE_OBS_EEG, 1, 3, regions_abc, 5, 2, 3,
                                       0.5, recording(path_eeg, 3), fwd_eeg, lg32_eeg,
                                       lg64_eeg, NULL, 1, eeg_grads};
  observations[2] = (lobe_observation){"conn.s1", LOBE_OBS_FC, 1, 3, regions_abc, 8, 1, 3,
                                       0, recording(path_fc, 3), fwd_fc, lg32_fc, NULL, NULL,
                                       2, grads};
  model = (lobe_model){.abi_version = LOBE_ABI_VERSION, .name = "obs", .nparams = P,
                       .params = params, .nregions = 3, .regions = regions, .nsubjects = 2,
                       .subjects = subjects, .window = 1, .batch = 1, .steps = 200,
                       .lr = 0.05, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .seed = 3,
                       .nobservations = 3, .observations = observations};
}

/* ---- files -------------------------------------------------------------- */

static char *tmp_path(const char *name) {
  static char paths[8][160];
  static int slot;
  char *p = paths[slot++ % 8];
  snprintf(p, 160, "%s/%s", tmpdir, name);
  return p;
}

typedef double Column(double t, int c);

static double bold_value(double t, int c) { return 3 * wave(t, c) + 5 + c; }
static double eeg_value(double t, int c) { return wave(t, c) + 10 * cos(t); }
static double fc_value(double t, int c) { return wave(t, c) + 0.2 * sin(7.3 * t * (c + 1)); }

static void write_table(const char *path, int rows, int cols, Column *value) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  for (int c = 0; c < cols; c++)
    fprintf(f, "%sch%d", c ? "," : "", c);
  for (int k = 0; k < rows; k++)
    for (int c = 0; c < cols; c++)
      fprintf(f, "%s%.9g", c ? "," : "\n", value(0.5 + k / rate, c));
  fputc('\n', f);
  fclose(f);
}

static void setup(void) {
  strcpy(tmpdir, "/tmp/lobe_test_rt_obs_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
  snprintf(path_bold, sizeof path_bold, "%s/bold.csv", tmpdir);
  snprintf(path_eeg, sizeof path_eeg, "%s/eeg.csv", tmpdir);
  snprintf(path_fc, sizeof path_fc, "%s/fc.csv", tmpdir);
  write_table(path_bold, 40, 2, bold_value);
  write_table(path_eeg, 50, 3, eeg_value);
  write_table(path_fc, 43, 3, fc_value);
  make_model();
  memset(calls, 0, sizeof calls);
  bad_module = off_grid = break_gradient = 0;
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

static DataTable table_of(int rows, int cols, const float *values) {
  DataTable t = {rows, cols, malloc((size_t)rows * (size_t)cols * sizeof(float)), NULL};
  memcpy(t.values, values, (size_t)rows * (size_t)cols * sizeof(float));
  return t;
}

/* ---- target statistics -------------------------------------------------- */

/* Rows [1 2 3] and [4 4 10] referenced: [-1 0 1] and [-2 -2 4], squares
 * summing to 26 over 6 values. */
START_TEST(eeg_reference_and_scale) {
  DataTable t = table_of(2, 3, (const float[]){1, 2, 3, 4, 4, 10});
  double stat[1], scale = sqrt(26.0 / 6);
  ck_assert_uint_eq(rt_obs_stat_count(&observations[1]), 1);
  ck_assert_int_eq(rt_obs_stats_compute(&observations[1], &t, stat), RT_OK);
  ck_assert_double_eq_tol(stat[0], scale, 1e-12);
  rt_obs_targets(&observations[1], &t, stat);
  const double want[] = {-1, 0, 1, -2, -2, 4};
  for (int i = 0; i < 6; i++)
    ck_assert_double_eq_tol(t.values[i], want[i] / scale, 1e-6);
  free(t.values);
}
END_TEST

/* A flat recording keeps scale 1 rather than dividing by 0. */
START_TEST(eeg_flat_recording) {
  DataTable t = table_of(2, 3, (const float[]){5, 5, 5, 7, 7, 7});
  double stat[1];
  ck_assert_int_eq(rt_obs_stats_compute(&observations[1], &t, stat), RT_OK);
  ck_assert_double_eq(stat[0], 1);
  rt_obs_targets(&observations[1], &t, stat);
  for (int i = 0; i < 6; i++)
    ck_assert_float_eq(t.values[i], 0);
  free(t.values);
}
END_TEST

/* Columns [1 2 3 4] (mean 2.5, std sqrt(1.25)) and constant 5 (std 1). */
START_TEST(bold_zscore) {
  DataTable t = table_of(4, 2, (const float[]){1, 5, 2, 5, 3, 5, 4, 5});
  double stat[4];
  ck_assert_uint_eq(rt_obs_stat_count(&observations[0]), 4);
  ck_assert_int_eq(rt_obs_stats_compute(&observations[0], &t, stat), RT_OK);
  ck_assert_double_eq_tol(stat[0], 2.5, 1e-12);
  ck_assert_double_eq_tol(stat[1], 5, 1e-12);
  ck_assert_double_eq_tol(stat[2], sqrt(1.25), 1e-12);
  ck_assert_double_eq(stat[3], 1);
  rt_obs_targets(&observations[0], &t, stat);
  for (int r = 0; r < 4; r++) {
    ck_assert_double_eq_tol(t.values[2 * r], (r + 1 - 2.5) / sqrt(1.25), 1e-6);
    ck_assert_float_eq(t.values[2 * r + 1], 0);
  }
  free(t.values);
}
END_TEST

/* x = [1 2 3], y = [1 3 2]: r = 0.5; z = -x: r = -1; w constant: 0. */
START_TEST(fc_pearson) {
  DataTable t = table_of(3, 4, (const float[]){1, 1, -1, 7, 2, 3, -2, 7, 3, 2, -3, 7});
  const lobe_observation four = {.kind = LOBE_OBS_FC, .channels = 4};
  double r[16];
  ck_assert_uint_eq(rt_obs_stat_count(&four), 16);
  ck_assert_int_eq(rt_obs_stats_compute(&four, &t, r), RT_OK);
  const double want[16] = {1, 0.5, -1, 0, 0.5, 1, -0.5, 0, -1, -0.5, 1, 0, 0, 0, 0, 0};
  for (int i = 0; i < 16; i++)
    ck_assert_double_eq_tol(r[i], want[i], 1e-12);
  rt_obs_targets(&four, &t, r);   /* fc's y is the matrix: the table stays raw */
  ck_assert_float_eq(t.values[1], 1);
  free(t.values);
}
END_TEST

START_TEST(correlation_scores) {
  const float a[] = {1, 5, 2, 5, 3, 5}, b[] = {2, 1, 4, 2, 6, 3};
  /* column 0: r = 1; column 1 of a is constant, so only column 0 counts */
  ck_assert_double_eq_tol(rt_columns_r(a, b, 3, 2), 1, 1e-12);
  const float flat[] = {5, 5, 5};
  ck_assert(isnan(rt_columns_r(flat, b, 3, 1)));
  const double x[9] = {1, 0.2, 0.4, 0.2, 1, 0.6, 0.4, 0.6, 1};
  const double y[9] = {1, -0.2, -0.4, -0.2, 1, -0.6, -0.4, -0.6, 1};
  ck_assert_double_eq_tol(rt_upper_r(x, x, 3), 1, 1e-12);
  ck_assert_double_eq_tol(rt_upper_r(x, y, 3), -1, 1e-12);
  ck_assert(isnan(rt_upper_r(x, y, 2)));   /* one pair: undefined */
}
END_TEST

/* ---- windows ------------------------------------------------------------ */

START_TEST(window_draws) {
  DataTable t = {.rows = 10, .cols = 2};
  const lobe_observation *ob = &observations[0];   /* window 4: starts 0..6 */
  int seen[7] = {0};
  uint64_t s1 = rt_rng_stream(3, RT_RNG_OBS_BATCH, 5, 0);
  uint64_t s2 = rt_rng_stream(3, RT_RNG_OBS_BATCH, 6, 0);
  int differ = 0;
  for (uint64_t i = 0; i < 700; i++) {
    int64_t start = rt_obs_draw(ob, &t, s1, i);
    ck_assert(start >= 0 && start <= 6);
    seen[start]++;
    ck_assert_int_eq(start, rt_obs_draw(ob, &t, s1, i));   /* a pure function */
    differ += start != rt_obs_draw(ob, &t, s2, i);
  }
  for (int k = 0; k < 7; k++)
    ck_assert_int_gt(seen[k], 60);
  ck_assert_int_gt(differ, 400);
  t.rows = 4;   /* exactly one window */
  ck_assert_int_eq(rt_obs_draw(ob, &t, s1, 0), 0);
}
END_TEST

/* ---- training ----------------------------------------------------------- */

/* The bold target is 3 sin + const, standardised: sqrt(2) sin + 0 for
 * columns of whole cycles; the eeg one pulls a the same way. */
START_TEST(train_moves_parameters) {
  const char *ck = tmp_path("ck");
  ck_assert_int_eq(run("train", "--steps", "300", "--checkpoint", ck, "--log-every", "100",
                       NULL), 0);
  ck_assert_has(err_text, "loss[rest.s1]=");
  ck_assert_has(err_text, "loss[scalp.s1]=");
  ck_assert_msg(!strstr(err_text, "conn.s1"), "conn.s1 is not trained: %s", err_text);
  ck_assert_int_eq(calls[2], 0);
  ck_assert_int_eq(calls[0], 300 * 3);
  ck_assert_int_eq(calls[1], 300 * 2);
  ck_assert(!bad_module && !off_grid);
  RtState st;
  test_load_state(&st, &model, ck);
  ck_assert_double_gt(st.params.value[0][0], 1.1);
  ck_assert_double_lt(fabs(st.params.value[1][0]), 0.1);
  ck_assert_double_gt(st.params.value[2][0], 1);
  const char *last = err_text;
  for (const char *p = last; (p = strstr(p + 1, "loss[rest.s1]=")) != NULL;)
    last = p;
  ck_assert_double_lt(test_field(last, "loss[rest.s1]="), 0.01);
  ck_assert_double_lt(test_field(out_text, "loss="), 0.02);
  rt_state_free(&st);
}
END_TEST

/* The statistics come from the whole recording and survive the checkpoint. */
START_TEST(checkpoint_keeps_statistics) {
  const char *ck = tmp_path("ck");
  ck_assert_int_eq(run("train", "--steps", "5", "--checkpoint", ck, NULL), 0);
  RtState st;
  test_load_state(&st, &model, ck);
  const char *paths[] = {path_bold, path_eeg, path_fc};
  for (int k = 0; k < 3; k++) {
    DataTable t = {0};
    double want[9];
    ck_assert_int_eq(rt_obs_load(&observations[k], paths[k], &t), RT_OK);
    ck_assert_int_eq(rt_obs_stats_compute(&observations[k], &t, want), RT_OK);
    for (size_t i = 0; i < rt_obs_stat_count(&observations[k]); i++)
      ck_assert_double_eq(st.obs_stat[k][i], want[i]);
    data_free(&t);
  }
  ck_assert_double_eq_tol(st.obs_stat[0][2], 3 / sqrt(2), 0.05);   /* bold std */
  rt_state_free(&st);
}
END_TEST

static long read_file(const char *path, char **data) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  *data = malloc((size_t)n + 1);
  ck_assert_int_eq((long)fread(*data, 1, (size_t)n, f), n);
  fclose(f);
  return n;
}

START_TEST(resume_is_exact) {
  const char *one = tmp_path("one"), *two = tmp_path("two");
  ck_assert_int_eq(run("train", "--steps", "40", "--checkpoint", one, NULL), 0);
  ck_assert_int_eq(run("train", "--steps", "15", "--checkpoint", two, NULL), 0);
  ck_assert_int_eq(run("train", "--steps", "40", "--checkpoint", two, "--resume", NULL), 0);
  char pa[200], pb[200], *a, *b;
  snprintf(pa, sizeof pa, "%s/checkpoint.bin", one);
  snprintf(pb, sizeof pb, "%s/checkpoint.bin", two);
  long na = read_file(pa, &a), nb = read_file(pb, &b);
  ck_assert_int_eq(na, nb);
  ck_assert_int_eq(memcmp(a, b, (size_t)na), 0);
  free(a);
  free(b);
}
END_TEST

/* Version 1 had no observations: refused with the versions named. */
START_TEST(old_checkpoint_refused) {
  const char *ck = tmp_path("ck");
  ck_assert_int_eq(run("train", "--steps", "2", "--checkpoint", ck, NULL), 0);
  char path[200];
  snprintf(path, sizeof path, "%s/checkpoint.bin", ck);
  FILE *f = fopen(path, "r+b");
  ck_assert_ptr_nonnull(f);
  fseek(f, 8, SEEK_SET);
  fputc(1, f);
  fclose(f);
  ck_assert_int_eq(run("eval", "--checkpoint", ck, NULL), RT_FAIL);
  ck_assert_has(err_text, "has format version 1, this runtime reads version 2");
}
END_TEST

START_TEST(nothing_to_train) {
  observations[0].loss_weight = observations[1].loss_weight = 0;
  ck_assert_int_eq(run("train", "--checkpoint", tmp_path("ck"), NULL), RT_FAIL);
  ck_assert_has(err_text, "no data source or observation has a non-zero loss weight");
}
END_TEST

/* ---- eval, gradcheck, info ---------------------------------------------- */

static const char *line_of(const char *text, const char *start) {
  const char *p = strstr(text, start);
  ck_assert_msg(p != NULL, "no line %s in \"%s\"", start, text);
  return p;
}

START_TEST(eval_reports_observations) {
  const char *ck = tmp_path("ck"), *fc_dir = tmp_path("fc");
  ck_assert_int_eq(run("train", "--steps", "300", "--checkpoint", ck, NULL), 0);
  ck_assert_int_eq(run("eval", "--checkpoint", ck, "--fc-out", fc_dir, NULL), 0);
  ck_assert_msg(!strstr(out_text, "mse_std"), "no sources, no source table: %s", out_text);
  ck_assert_has(out_text, "observation kind");
  /* 40 rows in windows of 4: 10; 50 in 5: 10; 43 in 8: 5 covering 40 */
  ck_assert_has(line_of(out_text, "rest.s1 "), "bold         40       10 ");
  ck_assert_has(line_of(out_text, "scalp.s1 "), "eeg         50       10 ");
  ck_assert_has(line_of(out_text, "conn.s1 "), "fc         40        5 ");
  ck_assert_int_eq(calls[2], 5);
  double r = test_field(line_of(out_text, "rest.s1 "), "       10 ");
  ck_assert_double_lt(r, 0.1);   /* the loss */
  char fc[200], *text;
  snprintf(fc, sizeof fc, "%s/conn.s1.fc.csv", fc_dir);
  read_file(fc, &text);
  ck_assert_msg(strncmp(text, "A,B,C\n1,", 8) == 0, "fc csv: %s", text);
  free(text);
  snprintf(fc, sizeof fc, "%s/rest.s1.fc.csv", fc_dir);
  read_file(fc, &text);
  ck_assert_msg(strncmp(text, "A,B\n1,", 6) == 0, "fc csv: %s", text);
  free(text);
  ck_assert(access(tmp_path("fc/scalp.s1.fc.csv"), F_OK) != 0);
}
END_TEST

/* r and fc_r of a model that predicts the waves: near 1. */
START_TEST(eval_correlations) {
  const char *ck = tmp_path("ck");
  ck_assert_int_eq(run("train", "--steps", "300", "--checkpoint", ck, NULL), 0);
  ck_assert_int_eq(run("eval", "--checkpoint", ck, NULL), 0);
  char r[16], fc_r[16], head[64];
  sscanf(line_of(out_text, "rest.s1 "), "%63s %*s %*s %*s %*s %15s %15s", head, r, fc_r);
  ck_assert_double_gt(atof(r), 0.99);
  ck_assert_str_eq(fc_r, "n/a");   /* two regions: one pair */
  sscanf(line_of(out_text, "scalp.s1 "), "%63s %*s %*s %*s %*s %15s %15s", head, r, fc_r);
  ck_assert_double_gt(atof(r), 0.9);
  ck_assert_str_eq(fc_r, "n/a");
  sscanf(line_of(out_text, "conn.s1 "), "%63s %*s %*s %*s %*s %15s %15s", head, r, fc_r);
  ck_assert_str_eq(r, "n/a");
  ck_assert_double_gt(atof(fc_r), 0.9);
}
END_TEST

START_TEST(gradcheck_observations) {
  ck_assert_int_eq(run("gradcheck", "--checkpoint", tmp_path("none"), NULL), 0);
  ck_assert_has(out_text, "observations: max_rel_err=");
  ck_assert_double_lt(test_field(out_text, "gradcheck: max_rel_err="), 1e-6);
  ck_assert_has(out_text, "params=3");
  break_gradient = 1;
  ck_assert_int_eq(run("gradcheck", "--checkpoint", tmp_path("none"), NULL), RT_FAIL);
  ck_assert_double_gt(test_field(out_text, "gradcheck: max_rel_err="), 1e-3);
}
END_TEST

START_TEST(info_coverage) {
  ck_assert_int_eq(run("info", "--checkpoint", tmp_path("none"), NULL), 0);
  ck_assert_has(out_text, "sources: 0\n");
  ck_assert_has(out_text, "observations: 3\n");
  ck_assert_has(out_text, "conn.s1       fc       3        3      8     1");
  ck_assert_has(out_text, "(eval only)");
  ck_assert_has(out_text, "modalities (");
  ck_assert_has(out_text, "  A                - bold+eeg+fc\n");
  ck_assert_has(out_text, "  C                -      eeg+fc\n");
  /* without sources, nothing gives predict its channels */
  ck_assert_int_eq(run("predict", "--region", "A", "--subject", "s1", "--from", "0", "--to",
                       "1", NULL), RT_EUSAGE);
  ck_assert_has(err_text, "region 'A' has no data source");
}
END_TEST

/* ---- data binding and descriptors --------------------------------------- */

START_TEST(data_rebinding) {
  const char *other = tmp_path("other.csv"), *ck = tmp_path("ck");
  write_table(other, 12, 2, bold_value);
  ck_assert_int_eq(run("train", "--steps", "3", "--checkpoint", ck, "--data",
                       "nosuch.s1=x.csv", NULL), RT_EUSAGE);
  ck_assert_has(err_text, "unknown source or observation");
  ck_assert_has(err_text, "(valid: rest.s1, scalp.s1, conn.s1)");
  ck_assert_int_eq(run("train", "--steps", "3", "--checkpoint", ck, "--data",
                       "conn.s1=/nonexistent/x.csv", NULL), RT_EDATA);
  ck_assert_has(err_text, "/nonexistent/x.csv");
  char arg[200];
  snprintf(arg, sizeof arg, "scalp.s1=%s", other);   /* 2 columns for 3 channels */
  ck_assert_int_eq(run("train", "--steps", "3", "--checkpoint", ck, "--data", arg, NULL),
                   RT_EDATA);
  ck_assert_has(err_text, "other.csv: expected 3 channels for observation 'scalp.s1', found 2");
  write_table(other, 7, 3, fc_value);   /* fewer rows than conn's window of 8 */
  snprintf(arg, sizeof arg, "conn.s1=%s", other);
  ck_assert_int_eq(run("train", "--steps", "3", "--checkpoint", ck, "--data", arg, NULL),
                   RT_EDATA);
  ck_assert_has(err_text, "expected at least 8 rows for observation 'conn.s1'");
  write_table(other, 12, 2, bold_value);
  snprintf(arg, sizeof arg, "rest.s1=%s", other);
  ck_assert_int_eq(run("train", "--steps", "3", "--checkpoint", ck, "--data", arg, NULL), 0);
  RtState st;
  test_load_state(&st, &model, ck);
  ck_assert_double_ne(st.obs_stat[0][0], 0);
  rt_state_free(&st);
}
END_TEST

static void expect_broken(const char *message) {
  ck_assert_int_eq(run("info", NULL), RT_FAIL);
  ck_assert_has(err_text, message);
  make_model();
}

START_TEST(broken_observations) {
  static const int32_t bad_regions[] = {0, 3}, twice[] = {1, 1}, bad_grads[] = {0, 3};
  observations[0].regions = bad_regions;
  expect_broken("observation 0: subject or regions out of range");
  observations[0].regions = twice;
  expect_broken("observation 0: subject or regions out of range");
  observations[1].subject = 2;
  expect_broken("observation 1: subject or regions out of range");
  observations[2].window = 0;
  expect_broken("observation 2: window or batch out of range");
  observations[0].channels = 3;
  expect_broken("observation 0: channels out of range");
  observations[1].loss_grad_f32 = NULL;
  expect_broken("observation 1: missing entry points");
  observations[1].grad_params = bad_grads;
  observations[1].ngrad = 2;
  expect_broken("observation 1: list names an unknown parameter");
  observations[1].kind = 7;
  expect_broken("observation 1: unknown measure");
  observations[1].loss_weight = -1;
  expect_broken("observation 1: loss weight out of range");
  observations[2].data.channels = 2;
  expect_broken("observation 2: data channels do not match");
  observations[2].name = NULL;
  expect_broken("observation 2: no name");
  model.nobservations = -1;
  expect_broken("negative observation count");
}
END_TEST

static Suite *rt_observe_suite(void) {
  Suite *s = suite_create("rt_observe");
  TCase *tc = tcase_create("observations");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, eeg_reference_and_scale);
  tcase_add_test(tc, eeg_flat_recording);
  tcase_add_test(tc, bold_zscore);
  tcase_add_test(tc, fc_pearson);
  tcase_add_test(tc, correlation_scores);
  tcase_add_test(tc, window_draws);
  tcase_add_test(tc, train_moves_parameters);
  tcase_add_test(tc, checkpoint_keeps_statistics);
  tcase_add_test(tc, resume_is_exact);
  tcase_add_test(tc, old_checkpoint_refused);
  tcase_add_test(tc, nothing_to_train);
  tcase_add_test(tc, eval_reports_observations);
  tcase_add_test(tc, eval_correlations);
  tcase_add_test(tc, gradcheck_observations);
  tcase_add_test(tc, info_coverage);
  tcase_add_test(tc, data_rebinding);
  tcase_add_test(tc, broken_observations);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(rt_observe_suite());
}
