/*
 * test_rt.c — the runtime driven through rt_main with a hand-written model:
 * a shared gain and one linear readout per source over Fourier features,
 *   out[i,c] = gain * sum_f x_f(t_i) W[f,c] + b[c],   loss = mean (out - y)^2,
 * with analytic gradients behind the lobe_fn ABI. Data files are written by
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

enum { F = 4, B = 16, MAXC = 3 };

static char tmpdir[64];
static char out_text[1 << 16], err_text[1 << 16];
static int break_gradient;     /* makes the f64 gain gradient wrong */
static long interrupt_at_call; /* raise SIGINT in this loss_grad_f32 call */
static long loss_calls;

/* ---- the model ---------------------------------------------------------- */

static void features(double t, double *x) {
  x[0] = sin(2 * M_PI * t);
  x[1] = cos(2 * M_PI * t);
  x[2] = sin(6 * M_PI * t);
  x[3] = cos(6 * M_PI * t);
}

/* Forward, and with y given, the loss and its gradients (gain, W, b). */
static double linear(double gain, const double *W, const double *b, const double *t, int C,
                     const double *y, double *out, double *dgain, double *dW, double *db) {
  double loss = 0;
  if (y) {
    *dgain = 0;
    memset(dW, 0, F * (size_t)C * sizeof *dW);
    memset(db, 0, (size_t)C * sizeof *db);
  }
  for (int i = 0; i < B; i++) {
    double x[F];
    features(t[i], x);
    for (int c = 0; c < C; c++) {
      double z = 0;
      for (int f = 0; f < F; f++)
        z += x[f] * W[f * C + c];
      out[i * C + c] = gain * z + b[c];
      if (!y)
        continue;
      double e = out[i * C + c] - y[i * C + c], d = 2 * e / (B * C);
      loss += e * e / (B * C);
      *dgain += d * z;
      db[c] += d;
      for (int f = 0; f < F; f++)
        dW[f * C + c] += d * gain * x[f];
    }
  }
  return loss;
}

/* Params: 0 gain, 1 W_a, 2 b_a, 3 W_b, 4 b_b; args as in lobe_model.h. */
typedef struct Unpacked {
  double gain, W[F * MAXC], b[MAXC], t[B], y[B * MAXC], out[B * MAXC];
  double dgain, dW[F * MAXC], db[MAXC];
} Unpacked;

static void unpack_f32(void *const *a, int w, int C, int with_y, Unpacked *u) {
  u->gain = *(const float *)a[0];
  for (int i = 0; i < F * C; i++)
    u->W[i] = ((const float *)a[w])[i];
  for (int c = 0; c < C; c++)
    u->b[c] = ((const float *)a[w + 1])[c];
  for (int i = 0; i < B; i++)
    u->t[i] = ((const float *)a[5])[i];
  for (int i = 0; with_y && i < B * C; i++)
    u->y[i] = ((const float *)a[8])[i];
}

static void forward_f32(void *const *a, int w, int C) {
  Unpacked u;
  unpack_f32(a, w, C, 0, &u);
  linear(u.gain, u.W, u.b, u.t, C, NULL, u.out, NULL, NULL, NULL);
  for (int i = 0; i < B * C; i++)
    ((float *)a[8])[i] = (float)u.out[i];
}

static void loss_grad_f32(void *const *a, int w, int C) {
  Unpacked u;
  unpack_f32(a, w, C, 1, &u);
  double loss = linear(u.gain, u.W, u.b, u.t, C, u.y, u.out, &u.dgain, u.dW, u.db);
  *(float *)a[9] = (float)loss;
  *(float *)a[10] = (float)u.dgain;
  for (int i = 0; i < F * C; i++)
    ((float *)a[11])[i] = (float)u.dW[i];
  for (int c = 0; c < C; c++)
    ((float *)a[12])[c] = (float)u.db[c];
  if (++loss_calls == interrupt_at_call)
    raise(SIGINT);
}

static void loss_grad_f64(void *const *a, int w, int C) {
  double out[B * MAXC];
  double *dgain = a[10];
  *(double *)a[9] = linear(*(const double *)a[0], a[w], a[w + 1], a[5], C, a[8], out, dgain,
                           a[11], a[12]);
  if (break_gradient)
    *dgain *= 1.01;
}

static void fwd_a(void *const *a) { forward_f32(a, 1, 2); }
static void fwd_b(void *const *a) { forward_f32(a, 3, 3); }
static void lg32_a(void *const *a) { loss_grad_f32(a, 1, 2); }
static void lg32_b(void *const *a) { loss_grad_f32(a, 3, 3); }
static void lg64_a(void *const *a) { loss_grad_f64(a, 1, 2); }
static void lg64_b(void *const *a) { loss_grad_f64(a, 3, 3); }

/* Source a specialised: theta' = {gain * W_a} in W_a's slot, so that the
 * specialised readout is linear with gain 1 (spec.c's merging). */
static void spec_a(void *const *a) {
  float gain = *(const float *)a[0];
  for (int i = 0; i < F * 2; i++)
    ((float *)a[7])[i] = gain * ((const float *)a[1])[i];
}

static void loss_grad_spec_a(void *const *a) {
  Unpacked u;
  float one = 1;   /* loss_grad's layout, gain 1 */
  void *shifted[13] = {&one, a[1], a[2], NULL, NULL, a[5], NULL, NULL, a[6], a[7], NULL,
                       a[8], a[9]};
  unpack_f32(shifted, 1, 2, 1, &u);
  double loss = linear(1.0, u.W, u.b, u.t, 2, u.y, u.out, &u.dgain, u.dW, u.db);
  *(float *)a[7] = (float)loss;
  for (int i = 0; i < F * 2; i++)
    ((float *)a[8])[i] = (float)u.dW[i];
  for (int c = 0; c < 2; c++)
    ((float *)a[9])[c] = (float)u.db[c];
}


/* d gain = <dW', W_a>, d W_a = gain dW'. */
static void spec_vjp_a(void *const *a) {
  const float *W = a[1], *dW = a[7];
  float gain = *(const float *)a[0], dgain = 0;
  for (int i = 0; i < F * 2; i++) {
    dgain += dW[i] * W[i];
    ((float *)a[10])[i] = gain * dW[i];
  }
  *(float *)a[9] = dgain;
}

static const int32_t folded_a[] = {1}, spec_grads_a[] = {1, 2}, vjp_a[] = {0, 1};

static const lobe_param params[] = {
  {"gain", 1, 1, LOBE_INIT_UNIFORM, 1.0},
  {"W_a", F, 2, LOBE_INIT_NORMAL, 0.1},
  {"b_a", 1, 2, LOBE_INIT_ZEROS, 0},
  {"W_b", F, 3, LOBE_INIT_NORMAL, 0.1},
  {"b_b", 1, 3, LOBE_INIT_ZEROS, 0},
};
static const lobe_region regions[] = {{"LGN", "cortex"}, {"V1", "cortex"}};
static const char *const subjects[] = {"m1", "m2"};
static const char *const names_a[] = {"x", "y"};
static const char *const names_b[] = {"ch0", "ch1", "ch2"};
static const int32_t grads_a[] = {0, 1, 2}, grads_b[] = {0, 3, 4};
static char path_a[128], path_b[128];

static lobe_source sources[2];
static lobe_model model;

static void make_model(void) {
  sources[0] = (lobe_source){"V1.m1", 1, 0, LOBE_SRC_CSV, path_a, 20, 0.5, 2, names_a,
                             LOBE_LOSS_MSE, 1.0, fwd_a, lg32_a, lg64_a, 3, grads_a,
                             .spec_f32 = NULL};
  sources[1] = (lobe_source){"LGN.m2", 0, 1, LOBE_SRC_NPY, path_b, 10, 0, 3, names_b,
                             LOBE_LOSS_MSE, 0.5, fwd_b, lg32_b, lg64_b, 3, grads_b,
                             .spec_f32 = NULL};
  model = (lobe_model){LOBE_ABI_VERSION, "toy", "toy.lobe", 5, params, 2, regions, 2,
                       subjects, 2, sources, B, 300, 0.05, 0.9, 0.999, 1e-8, 7, 0};
}

static void specialise_a(void) {
  lobe_source *s = &sources[0];
  s->spec_f32 = spec_a;
  s->loss_grad_spec_f32 = loss_grad_spec_a;
  s->spec_vjp_f32 = spec_vjp_a;
  s->nfolded = 1;
  s->folded = folded_a;
  s->nspec_grad = 2;
  s->spec_grad_params = spec_grads_a;
  s->nvjp = 2;
  s->vjp_params = vjp_a;
}

/* ---- files -------------------------------------------------------------- */

static char *tmp_path(const char *name) {
  static char paths[8][160];
  static int slot;
  char *p = paths[slot++ % 8];
  snprintf(p, 160, "%s/%s", tmpdir, name);
  return p;
}

static void truth(double t, double *y) {
  y[0] = 2 * sin(2 * M_PI * t) + 1;
  y[1] = -cos(6 * M_PI * t) + 0.5 * sin(2 * M_PI * t);
  y[2] = 3 * cos(2 * M_PI * t) - 2;
}

static void write_csv(const char *path, int rows) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "x,y\n");
  for (int k = 0; k < rows; k++) {
    double y[3];
    truth(0.5 + k / 20.0, y);
    fprintf(f, "%.7g,%.7g\n", y[0], y[1]);
  }
  fclose(f);
}

static void write_npy(const char *path, int rows) {
  char header[128];
  int n = snprintf(header, sizeof header,
                   "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, 3), }", rows);
  memset(header + n, ' ', 117 - (size_t)n);
  header[117] = '\n';
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  fwrite("\x93NUMPY\x01\x00\x76\x00", 1, 10, f);
  fwrite(header, 1, 118, f);
  for (int k = 0; k < rows; k++) {
    double y[3];
    truth(k / 10.0, y);
    float v[3] = {(float)y[1], (float)y[2], (float)y[0]};
    fwrite(v, sizeof v, 1, f);
  }
  fclose(f);
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
  write_csv(path_a, 200);
  write_npy(path_b, 100);
  make_model();
  break_gradient = 0;
  interrupt_at_call = 0;
  loss_calls = 0;
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  ck_assert_int_eq(system(cmd), 0);
}

/* ---- running the CLI ---------------------------------------------------- */

static void slurp_fd(FILE *f, char *buf, size_t cap) {
  fflush(f);
  rewind(f);
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = '\0';
  fclose(f);
}

/* rt_main(&model, "brain", args..., NULL) with stdout and stderr captured. */
static int run(const char *first, ...) {
  char *argv[32] = {"brain"};
  int argc = 1;
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a; a = va_arg(ap, const char *))
    argv[argc++] = (char *)a;
  va_end(ap);
  fflush(stdout);
  fflush(stderr);
  int saved_out = dup(1), saved_err = dup(2);
  FILE *fo = tmpfile(), *fe = tmpfile();
  dup2(fileno(fo), 1);
  dup2(fileno(fe), 2);
  int rc = rt_main(&model, argc, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  slurp_fd(fo, out_text, sizeof out_text);
  slurp_fd(fe, err_text, sizeof err_text);
  return rc;
}

#define ck_assert_has(text, part) ck_assert_msg(strstr(text, part) != NULL, \
    "output \"%s\" lacks \"%s\"", text, part)

static double field(const char *text, const char *key) {
  const char *p = strstr(text, key);
  ck_assert_msg(p != NULL, "no %s in \"%s\"", key, text);
  return atof(p + strlen(key));
}

/* ---- training, eval, predict -------------------------------------------- */

static int count_lines(const char *text) {
  int n = 0;
  for (; *text; text++)
    n += *text == '\n';
  return n;
}

/* Source a trained through spec, loss_grad_spec and spec_vjp follows the
 * unspecialised run up to rounding. */
START_TEST(specialised_training_agrees) {
  ck_assert_int_eq(run("train", "--steps", "100", "--checkpoint", tmp_path("plain"), NULL), 0);
  double plain = field(out_text, "trained steps=100 loss=");
  specialise_a();
  ck_assert_int_eq(run("train", "--steps", "100", "--checkpoint", tmp_path("spec"), NULL), 0);
  double spec = field(out_text, "trained steps=100 loss=");
  ck_assert_msg(fabs(spec - plain) <= 1e-4 * plain, "loss %.6g specialised, %.6g not", spec,
                plain);
}
END_TEST

START_TEST(train_reduces_loss) {
  const char *ck = tmp_path("ck");
  ck_assert_int_eq(run("train", "--steps", "100", "--log-every", "10", "--checkpoint", ck,
                       NULL), 0);
  double first = field(err_text, "step=10 loss=");
  double last = field(out_text, "trained steps=100 loss=");
  ck_assert_msg(last < 0.5 * first, "loss %g -> %g", first, last);
  ck_assert_has(err_text, "loss[V1.m1]=");
  ck_assert_has(err_text, "samples_per_s=");
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
  ck_assert_msg(r2 > 0.95, "R^2 of LGN.m2 is %g", r2);
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
  /* a dark cell takes the region's first source; stdout without -o */
  ck_assert_int_eq(run("predict", "--region", "LGN", "--subject", "m1", "--from", "0",
                       "--to", "0.25", "--checkpoint", ck, NULL), 0);
  ck_assert_int_eq(strncmp(out_text, "t,ch0,ch1,ch2\n0,", 16), 0);
  ck_assert_int_eq(count_lines(out_text), 1 + 3);   /* 0, 0.1, 0.2 at 10 Hz */
  ck_assert_int_eq(run("predict", "--region", "V2", "--subject", "m1", "--from", "0",
                       "--to", "1", "--checkpoint", ck, NULL), RT_EUSAGE);
  ck_assert_has(err_text, "brain: unknown region 'V2' (valid: LGN, V1)");
  ck_assert_int_eq(run("predict", "--region", "V1", "--subject", "m1", "--from", "2",
                       "--to", "1", "--checkpoint", ck, NULL), RT_EUSAGE);
}
END_TEST

/* ---- gradcheck ---------------------------------------------------------- */

START_TEST(gradcheck_passes) {
  ck_assert_int_eq(run("gradcheck", "--checkpoint", tmp_path("none"), NULL), 0);
  const char *last = strstr(out_text, "gradcheck: max_rel_err=");
  ck_assert_ptr_nonnull(last);
  ck_assert_has(last, "params=5\n");
  ck_assert_msg(field(last, "max_rel_err=") < 1e-6, "%s", out_text);
}
END_TEST

START_TEST(gradcheck_catches_wrong_gradient) {
  break_gradient = 1;
  ck_assert_int_eq(run("gradcheck", "--checkpoint", tmp_path("none"), NULL), RT_FAIL);
  ck_assert_msg(field(out_text, "gradcheck: max_rel_err=") > 1e-3, "%s", out_text);
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
  lobe_param other[5];
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
  ck_assert_int_eq(run("info", NULL), 0);
  ck_assert_has(out_text, "W_b");
  ck_assert_has(out_text, "coverage");
  /* V1 has 2 channels of m1, LGN 3 of m2 */
  ck_assert_has(out_text, "LGN       .    3\n");
  ck_assert_has(out_text, "V1        2    .\n");
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
  sources[0].spec_f32 = fwd_a;   /* the other three specialised entries missing */
  ck_assert_int_eq(run("train", NULL), RT_FAIL);
  ck_assert_has(err_text, "incomplete specialised entry points");
}
END_TEST

/* ---- pieces ------------------------------------------------------------- */

START_TEST(stats_constant_channel) {
  float v[] = {0.1f, 5, 0.1f, 7, 0.1f, 9};
  DataTable t = {3, 2, v, NULL};
  double mean[2], std[2];
  rt_stats_compute(&t, mean, std);
  ck_assert_double_eq(mean[0], (double)0.1f);
  ck_assert_double_eq(std[0], 1);
  ck_assert_double_eq_tol(mean[1], 7, 1e-12);
  ck_assert_double_eq_tol(std[1], sqrt(8.0 / 3), 1e-12);
  rt_standardise(&t, mean, std);
  ck_assert_float_eq(v[0], 0);
  ck_assert_float_eq_tol(v[5], (float)(2 / sqrt(8.0 / 3)), 1e-6);
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
  tcase_add_test(tc, eval_r2);
  tcase_add_test(tc, predict_rows);
  tcase_add_test(tc, gradcheck_passes);
  tcase_add_test(tc, gradcheck_catches_wrong_gradient);
  tcase_add_test(tc, resume_is_exact);
  tcase_add_test(tc, interrupt_and_resume);
  tcase_add_test(tc, corrupt_checkpoint);
  tcase_add_test(tc, mismatched_checkpoint);
  tcase_add_test(tc, bad_data_keeps_checkpoint);
  tcase_add_test(tc, cli_usage);
  tcase_add_test(tc, broken_descriptor);
  tcase_add_test(tc, stats_constant_channel);
  tcase_add_test(tc, rng_is_counter_based);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(rt_suite());
}
