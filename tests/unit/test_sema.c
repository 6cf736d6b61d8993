/* Unit tests of sema.c: the Model built from a spec (names resolved, units
 * converted, defaults filled in, paths resolved), and the errors and
 * warnings of bad specs. */
#include <check.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "front.h"
#include "test_util.h"

static const char *const example =
    "import std.encodings\n"
    "subjects m1, m2, m3\n"
    "aunn cortex {\n"
    "  index     fourier(bands: 16, max_period: 10s, min_period: 20ms)\n"
    "  condition concat(module: 8, subject: 4)\n"
    "  mlp       64 x 2, tanh\n"
    "  latent    8\n"
    "}\n"
    "aunn small {\n"
    "  index fourier(bands: 4, max_period: 2s)\n"
    "  mlp [128, 32, 16], sine\n"
    "}\n"
    "region V1 : cortex\n"
    "region LGN, V2 : small\n"
    "data V1 of m1 = csv(\"v1_m1.csv\", rate: 100Hz)\n"
    "data V1 of m2 = npy(\"data/v1_m2.npy\", rate: 0.1kHz, t0: 2s, channels: 4)\n"
    "data LGN of m3 = csv(\"/abs/lgn.csv\", rate: 1 / 4ms, t0: 250ms)\n"
    "data V2 of m1 = csv(path: \"v2.csv\", rate: 1kHz)\n"
    "loss mse(V1) + 0.5 * mse(LGN) + mse(V2) / 4\n"
    "train { steps: 2000, batch: 64, optimizer: adam(lr: 2e-3, beta2: 0.99), seed: 7,\n"
    "        checkpoint_every: 500 }\n";

static const char *const minimal =
    "subjects m1\n"
    "aunn a {\n  index fourier(bands: 2, max_period: 1s)\n  mlp 8\n}\n"
    "region V1 : a\n"
    "data V1 of m1 = csv(\"v.csv\", rate: 10Hz)\n";

typedef struct Checked {
  Captured cap;
  Program *prog;
  Model *model;
} Checked;

/* Parses and checks text as the file `path`; sema runs only on a clean parse
 * (as in lobec). */
static Checked *check_as(const char *path, const char *text) {
  Checked *c = calloc(1, sizeof *c);
  captured_open(&c->cap);
  c->prog = parse_file(c->cap.diag, diag_add_source(c->cap.diag, path, text));
  ck_assert_ptr_nonnull(c->prog);
  ck_assert_int_eq(diag_errors(c->cap.diag), 0);
  c->model = sema_check(c->cap.diag, c->prog);
  return c;
}

static Checked *check_text(const char *text) {
  return check_as("/specs/brain.lobe", text);
}

static const char *messages(Checked *c) { return captured_text(&c->cap); }

static void checked_free(Checked *c) {
  sema_free(c->model);
  ast_free(c->prog);
  captured_close(&c->cap);
  free(c);
}

/* A spec that is minimal plus `extra`, which must fail with `errors`
 * errors, one of them containing `message`. */
static void expect_errors(const char *extra, int errors, const char *message) {
  char text[4096];
  snprintf(text, sizeof text, "%s%s", minimal, extra);
  Checked *c = check_text(text);
  ck_assert_ptr_null(c->model);
  const char *out = messages(c);
  ck_assert_msg(diag_errors(c->cap.diag) == errors, "%d errors, expected %d, in:\n%s",
                diag_errors(c->cap.diag), errors, out);
  ck_assert_msg(strstr(out, message), "no '%s' in:\n%s", message, out);
  checked_free(c);
}

/* How an aunn is conditioned on module and subject, and its activation. */
static void assert_conditioning(const AunnDef *a, int condition, int module_dim,
                                int subject_dim, int activation) {
  ck_assert_int_eq(a->condition, condition);
  ck_assert_int_eq(a->module_dim, module_dim);
  ck_assert_int_eq(a->subject_dim, subject_dim);
  ck_assert_int_eq(a->activation, activation);
}

START_TEST(example_aunns) {
  Checked *c = check_text(example);
  ck_assert_ptr_nonnull(c->model);
  const Model *m = c->model;
  ck_assert_str_eq(m->spec_path, "/specs/brain.lobe");
  ck_assert_int_eq(m->naunns, 2);
  const AunnDef *a = &m->aunns[0];
  ck_assert_str_eq(a->name, "cortex");
  ck_assert_int_eq(a->encoding, ENC_FOURIER);
  ck_assert_int_eq(a->bands, 16);
  ck_assert_double_eq_tol(a->max_period, 10.0, 1e-12);
  ck_assert_double_eq_tol(a->min_period, 0.02, 1e-12);
  assert_conditioning(a, COND_CONCAT, 8, 4, ACT_TANH);
  ck_assert_int_eq(a->nhidden, 2);
  ck_assert_int_eq(a->hidden[0], 64);
  ck_assert_int_eq(a->hidden[1], 64);
  ck_assert_int_eq(a->latent, 8);
  a = &m->aunns[1];
  ck_assert_int_eq(a->nhidden, 3);
  ck_assert_int_eq(a->hidden[2], 16);
  ck_assert_int_eq(a->activation, ACT_SINE);
  ck_assert_int_eq(a->latent, 0);
  ck_assert_double_eq_tol(a->min_period, 0.0, 1e-12);
  checked_free(c);
}
END_TEST

START_TEST(example_regions_and_subjects) {
  Checked *c = check_text(example);
  const Model *m = c->model;
  ck_assert_int_eq(m->nregions, 3);
  ck_assert_str_eq(m->regions[1].name, "LGN");
  ck_assert_int_eq(m->regions[0].aunn, 0);
  ck_assert_int_eq(m->regions[2].aunn, 1);
  ck_assert_int_eq(m->regions[2].pos.line, 14);
  ck_assert_int_eq(m->regions[2].pos.col, 13);
  ck_assert_int_eq(m->nsubjects, 3);
  ck_assert_str_eq(m->subjects[2].name, "m3");
  checked_free(c);
}
END_TEST

START_TEST(example_sources) {
  Checked *c = check_text(example);
  const Model *m = c->model;
  ck_assert_int_eq(m->nsources, 4);
  const Source *s = &m->sources[1];
  ck_assert_str_eq(s->name, "V1.m2");
  ck_assert_int_eq(s->region, 0);
  ck_assert_int_eq(s->subject, 1);
  ck_assert_int_eq(s->kind, SRC_NPY);
  ck_assert_str_eq(s->path, "/specs/data/v1_m2.npy");
  ck_assert_double_eq_tol(s->rate, 100.0, 1e-9);
  ck_assert_double_eq_tol(s->t0, 2.0, 1e-12);
  ck_assert_int_eq(s->channels, 4);
  ck_assert_ptr_null(s->channel_names);
  ck_assert_int_eq(s->path_pos.line, 16);
  s = &m->sources[2];
  ck_assert_str_eq(s->name, "LGN.m3");
  ck_assert_str_eq(s->path, "/abs/lgn.csv");
  ck_assert_double_eq_tol(s->rate, 250.0, 1e-9);
  ck_assert_double_eq_tol(s->t0, 0.25, 1e-12);
  ck_assert_int_eq(s->channels, 0);
  ck_assert_str_eq(m->sources[3].path, "/specs/v2.csv");
  ck_assert_int_eq(m->sources[0].kind, SRC_CSV);
  checked_free(c);
}
END_TEST

START_TEST(example_loss_and_train) {
  Checked *c = check_text(example);
  const Model *m = c->model;
  ck_assert_int_eq(m->nlosses, 4);
  static const double weights[] = {1, 1, 0.5, 0.25};
  for (int i = 0; i < 4; i++) {
    ck_assert_int_eq(m->losses[i].kind, LOSS_MSE);
    ck_assert_int_eq(m->losses[i].source, i);
    ck_assert_double_eq_tol(m->losses[i].weight, weights[i], 1e-12);
  }
  const TrainConfig *t = &m->train;
  ck_assert_int_eq(t->steps, 2000);
  ck_assert_int_eq(t->batch, 64);
  ck_assert_double_eq_tol(t->lr, 2e-3, 1e-15);
  ck_assert_double_eq_tol(t->beta1, 0.9, 1e-15);
  ck_assert_double_eq_tol(t->beta2, 0.99, 1e-15);
  ck_assert_double_eq_tol(t->eps, 1e-8, 1e-20);
  ck_assert_uint_eq(t->seed, 7);
  ck_assert_int_eq(t->checkpoint_every, 500);
  checked_free(c);
}
END_TEST

START_TEST(defaults) {
  Checked *c = check_text(minimal);
  const Model *m = c->model;
  ck_assert_ptr_nonnull(m);
  assert_conditioning(&m->aunns[0], COND_CONCAT, 8, 4, ACT_SILU);
  ck_assert_int_eq(m->aunns[0].nhidden, 1);
  ck_assert_int_eq(m->aunns[0].hidden[0], 8);
  ck_assert_double_eq_tol(m->sources[0].t0, 0.0, 1e-12);
  ck_assert_int_eq(m->nlosses, 1);            /* no loss: mse of every source */
  ck_assert_double_eq_tol(m->losses[0].weight, 1.0, 1e-12);
  const TrainConfig *t = &m->train;
  ck_assert_int_eq(t->steps, 1000);
  ck_assert_int_eq(t->batch, 256);
  ck_assert_double_eq_tol(t->lr, 1e-3, 1e-15);
  ck_assert_double_eq_tol(t->beta2, 0.999, 1e-15);
  ck_assert_uint_eq(t->seed, 1);
  ck_assert_int_eq(t->checkpoint_every, 0);
  checked_free(c);
}
END_TEST

START_TEST(film_and_gelu) {
  Checked *c = check_text("subjects m1\n"
                          "aunn a {\n  index fourier(bands: 2, max_period: 1s)\n"
                          "  condition film(module: 16, subject: 8)\n  mlp 32 x 3, gelu\n}\n"
                          "aunn b {\n  index fourier(bands: 2, max_period: 1s)\n"
                          "  condition film(subject: 2)\n  mlp 8\n}\n"
                          "region V1 : a\nregion V2 : b\n"
                          "data V1 of m1 = csv(\"v.csv\", rate: 10Hz)\n"
                          "data V2 of m1 = csv(\"w.csv\", rate: 10Hz)\n");
  ck_assert_ptr_nonnull(c->model);
  const AunnDef *a = &c->model->aunns[0];
  assert_conditioning(a, COND_FILM, 16, 8, ACT_GELU);
  ck_assert_int_eq(a->nhidden, 3);
  a = &c->model->aunns[1];                    /* an option left out keeps its default */
  assert_conditioning(a, COND_FILM, 8, 2, ACT_SILU);
  checked_free(c);
}
END_TEST

START_TEST(binary_index) {
  Checked *c = check_text("subjects m1\n"
                          "aunn a {\n  index binary(bits: 16, rate: 0.5kHz)\n  mlp 8\n}\n"
                          "aunn b {\n  index binary(bits: 24)\n  mlp 8\n}\n"
                          "region V1 : a\nregion V2 : b\n"
                          "data V1 of m1 = csv(\"v.csv\", rate: 10Hz)\n"
                          "data V2 of m1 = csv(\"w.csv\", rate: 10Hz)\n");
  ck_assert_ptr_nonnull(c->model);
  const AunnDef *a = &c->model->aunns[0];
  ck_assert_int_eq(a->encoding, ENC_BINARY);
  ck_assert_int_eq(a->bits, 16);
  ck_assert_double_eq_tol(a->rate, 500.0, 1e-12);
  a = &c->model->aunns[1];                    /* no rate: lowering picks the sources' */
  ck_assert_int_eq(a->encoding, ENC_BINARY);
  ck_assert_int_eq(a->bits, 24);
  ck_assert_double_eq_tol(a->rate, 0.0, 1e-12);
  checked_free(c);
}
END_TEST

START_TEST(binary_checked) {
  expect_errors("aunn b {\n index binary(bits: 0)\n mlp 8\n}\n", 1,
                "'bits' must be between 1 and 24, not 0");
  expect_errors("aunn b {\n index binary(bits: 40, rate: 1Hz)\n mlp 8\n}\n", 1,
                "'bits' must be between 1 and 24, not 40");
  expect_errors("aunn b {\n index binary(bits: 8, rate: 10ms)\n mlp 8\n}\n", 1,
                "'rate' must be a rate (Hz or kHz), not a time");
  expect_errors("aunn b {\n index binary(bits: 8, rate: 100)\n mlp 8\n}\n", 1,
                "'rate' needs a unit (Hz or kHz)");
  expect_errors("aunn b {\n index binary(bits: 8, rate: 0Hz)\n mlp 8\n}\n", 1,
                "'rate' must be positive");
  expect_errors("aunn b {\n index binary(rate: 1Hz)\n mlp 8\n}\n", 1,
                "'binary' needs 'bits'");
  expect_errors("aunn b {\n index binary(bands: 4)\n mlp 8\n}\n", 1,
                "'binary' has no option 'bands'");
}
END_TEST

START_TEST(relative_spec_path) {
  char cwd[PATH_MAX], want[PATH_MAX + 16];
  ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
  char *real = realpath(cwd, NULL);
  snprintf(want, sizeof want, "%s/v.csv", real);
  free(real);
  Checked *c = check_as("brain.lobe", minimal);
  ck_assert_str_eq(c->model->sources[0].path, want);
  ck_assert_str_eq(c->model->spec_path, "brain.lobe");
  checked_free(c);
}
END_TEST

START_TEST(order_does_not_matter) {
  Checked *c = check_text("data V1 of m1 = csv(\"v.csv\", rate: 10Hz)\n"
                          "loss 2 * mse(V1) + mse(V1)\n"
                          "region V1 : a\n"
                          "aunn a {\n  mlp 8\n  index fourier(bands: 2, max_period: 1s)\n}\n"
                          "subjects m1\n");
  ck_assert_ptr_nonnull(c->model);
  ck_assert_int_eq(c->model->nlosses, 1);     /* one source, weights added */
  ck_assert_double_eq_tol(c->model->losses[0].weight, 3.0, 1e-12);
  checked_free(c);
}
END_TEST

START_TEST(warnings_are_not_errors) {
  char text[1024];
  snprintf(text, sizeof text, "%sregion V2 : a\n", minimal);
  Checked *c = check_text(text);
  ck_assert_ptr_nonnull(c->model);
  ck_assert_int_eq(diag_errors(c->cap.diag), 0);
  ck_assert_ptr_nonnull(strstr(messages(c),
                               "warning[W0001]: region 'V2' has no data in any subject"));
  checked_free(c);
}
END_TEST

/* A source the loss leaves out is a warning, unless there are errors (then
 * the source is likely what the user meant). */
START_TEST(unused_data_warned) {
  char text[1024];
  snprintf(text, sizeof text, "%sregion V2 : a\ndata V2 of m1 = csv(\"w.csv\", rate: 1Hz)\n"
           "loss mse(V1)\n", minimal);
  Checked *c = check_text(text);
  ck_assert_ptr_nonnull(c->model);
  ck_assert_ptr_nonnull(strstr(messages(c), "warning[W0002]: data 'V2.m1' is not used"));
  checked_free(c);
  snprintf(text, sizeof text, "%sregion V2 : a\ndata V2 of m1 = csv(\"w.csv\", rate: 1Hz)\n"
           "loss mse(V1) + mse(V3)\n", minimal);
  c = check_text(text);
  ck_assert_ptr_null(c->model);
  ck_assert_ptr_null(strstr(messages(c), "W0002"));
  checked_free(c);
}
END_TEST

/* ---- errors -------------------------------------------------------------------- */

START_TEST(names_suggested) {
  expect_errors("region V3 : b\n", 1, "unknown aunn 'b' (known: a)");
  expect_errors("data V1 of m2 = csv(\"w.csv\", rate: 1Hz)\n", 1,
                "unknown subject 'm2'; did you mean 'm1'?");
  expect_errors("loss mse(V2)\n", 1, "unknown region 'V2'; did you mean 'V1'?");
  expect_errors("aunn b {\n index fourier(bands: 2, max_period: 1s)\n mlp 8, slu\n}\n", 1,
                "unknown activation 'slu'; did you mean 'silu'?");
  expect_errors("train { stesp: 3 }\n", 1, "unknown train setting 'stesp'; did you mean 'steps'?");
  expect_errors("import std.nothing\n", 1, "known: std.encodings, std.observe");
}
END_TEST

START_TEST(duplicates_have_notes) {
  char text[1024];
  snprintf(text, sizeof text, "%sregion V1 : a\n", minimal);
  Checked *c = check_text(text);
  ck_assert_ptr_null(c->model);
  ck_assert_int_eq(diag_errors(c->cap.diag), 1);
  ck_assert_str_eq(messages(c),
                   "/specs/brain.lobe:8:8: error[E0027]: region 'V1' is already defined\n"
                   "    8 | region V1 : a\n"
                   "      |        ^~\n"
                   "/specs/brain.lobe:6:8: note: first defined here\n"
                   "    6 | region V1 : a\n"
                   "      |        ^~\n");
  checked_free(c);
  expect_errors("subjects m1\n", 1, "subject 'm1' is already defined");
  expect_errors("data V1 of m1 = npy(\"w.npy\", rate: 1Hz)\n", 1, "'V1.m1' already has data");
  expect_errors("loss mse(V1)\nloss mse(V1)\n", 1, "only one 'loss' statement");
}
END_TEST

START_TEST(units_checked) {
  expect_errors("data V1 of m1 = csv(\"w.csv\", rate: 10s)\n", 2,
                "'rate' must be a rate (Hz or kHz), not a time");
  expect_errors("data V1 of m1 = csv(\"w.csv\", rate: 10)\n", 2,
                "'rate' needs a unit (Hz or kHz)");
  expect_errors("aunn b {\n index fourier(bands: 2Hz, max_period: 1)\n mlp 8\n}\n", 2,
                "'max_period' needs a unit (s, ms or us)");
  expect_errors("aunn b {\n index fourier(bands: 2, max_period: 1sec)\n mlp 8\n}\n", 1,
                "unknown unit 'sec'");
  expect_errors("train { steps: 1s + 1Hz }\n", 1, "cannot add a time and a rate");
}
END_TEST

START_TEST(sizes_checked) {
  expect_errors("aunn b {\n index fourier(bands: 5000, max_period: 1s)\n mlp 8\n}\n", 1,
                "'bands' must be between 1 and 4096, not 5000");
  expect_errors("aunn b {\n index fourier(bands: 4, max_period: 1s)\n mlp 8 x 17\n}\n", 1,
                "'layer count' must be between 1 and 16");
  expect_errors("aunn b {\n index fourier(bands: 4, max_period: 1s)\n mlp 100000\n}\n", 1,
                "'layer width' must be between 1 and 65536");
  expect_errors("train { batch: 2.5, seed: -1 }\n", 2, "'batch' must be a whole number");
}
END_TEST

START_TEST(options_checked) {
  expect_errors("data V1 of m1 = csv(\"w.csv\", rat: 1Hz)\n", 2,
                "'csv' has no option 'rat'; did you mean 'rate'?");
  expect_errors("aunn b {\n index fourier(bands: 4)\n mlp 8\n}\n", 1,
                "'fourier' needs 'max_period'");
  expect_errors("aunn b {\n index fourier(4, max_period: 1s)\n mlp 8\n}\n", 1,
                "'fourier' takes named options only");
  expect_errors("train { optimizer: adam(lr: 1, lr: 2) }\n", 1, "option 'lr' is given twice");
  expect_errors("aunn b {\n index fourier(bands: 4, max_period: 1s)\n"
                " condition film(modul: 4)\n mlp 8\n}\n", 1,
                "'film' has no option 'modul'; did you mean 'module'?");
  expect_errors("aunn b {\n index fourier(bands: 4, max_period: 1s)\n"
                " condition film(module: 0, subject: 3)\n mlp 8\n}\n", 1,
                "'module' must be between 1 and 65536, not 0");
  expect_errors("aunn b {\n index fourier(bands: 4, max_period: 1s)\n"
                " condition flim(module: 4)\n mlp 8, gleu\n}\n", 2,
                "unknown conditioning 'flim'; did you mean 'film'?");
}
END_TEST

START_TEST(required_items) {
  expect_errors("aunn b {\n latent 3\n}\n", 2, "aunn 'b' needs an index");
}
END_TEST

START_TEST(loss_checked) {
  expect_errors("region V2 : a\nloss mse(V1) + mse(V2)\n", 1,
                "region 'V2' has no data, so mse(V2) has nothing to compare with");
  expect_errors("loss mse(V1) - mse(V1)\n", 1, "loss terms can only be added");
  expect_errors("loss -1 * mse(V1)\n", 1, "loss weights must be positive");
  expect_errors("loss mae(V1)\n", 1, "unknown loss 'mae'; did you mean 'mse'?");
}
END_TEST

START_TEST(no_cascade_from_unknown_aunn) {
  Checked *c = check_text("subjects m1\nregion V1, V2 : nope\n"
                          "data V1 of m1 = csv(\"a.csv\", rate: 1Hz)\n"
                          "data V2 of m1 = csv(\"b.csv\", rate: 1Hz)\nloss mse(V1) + mse(V2)\n");
  ck_assert_ptr_null(c->model);
  ck_assert_int_eq(diag_errors(c->cap.diag), 1);
  checked_free(c);
}
END_TEST

START_TEST(nothing_to_train) {
  Checked *c = check_text("subjects m1\n");
  ck_assert_ptr_null(c->model);
  ck_assert_int_eq(diag_errors(c->cap.diag), 1);
  ck_assert_ptr_nonnull(strstr(messages(c), "no data to train on"));
  checked_free(c);
}
END_TEST

START_TEST(many_regions) {
  enum { N = 20000 };
  size_t cap = 64 * N + 1024, len = 0;
  char *text = malloc(cap);
  len += snprintf(text + len, cap - len, "%s", minimal);
  for (int i = 0; i < N; i++)
    len += snprintf(text + len, cap - len, "region R%d : a\ndata R%d of m1 = csv(\"r.csv\", "
                    "rate: 1Hz)\n", i, i);
  len += snprintf(text + len, cap - len, "loss mse(R%d) + mse(R17) + mse(Q1)\n", N - 1);
  Checked *c = check_text(text);
  ck_assert_ptr_null(c->model);              /* Q1 is unknown; the rest is fine */
  ck_assert_int_eq(diag_errors(c->cap.diag), 1);
  free(text);
  checked_free(c);
}
END_TEST

Suite *sema_suite(void) {
  Suite *s = suite_create("sema");
  TCase *tm = tcase_create("model");
  tcase_add_test(tm, example_aunns);
  tcase_add_test(tm, example_regions_and_subjects);
  tcase_add_test(tm, example_sources);
  tcase_add_test(tm, example_loss_and_train);
  tcase_add_test(tm, defaults);
  tcase_add_test(tm, film_and_gelu);
  tcase_add_test(tm, binary_index);
  tcase_add_test(tm, relative_spec_path);
  tcase_add_test(tm, order_does_not_matter);
  tcase_add_test(tm, warnings_are_not_errors);
  tcase_add_test(tm, unused_data_warned);
  suite_add_tcase(s, tm);
  TCase *te = tcase_create("errors");
  tcase_add_test(te, names_suggested);
  tcase_add_test(te, duplicates_have_notes);
  tcase_add_test(te, units_checked);
  tcase_add_test(te, sizes_checked);
  tcase_add_test(te, options_checked);
  tcase_add_test(te, binary_checked);
  tcase_add_test(te, required_items);
  tcase_add_test(te, loss_checked);
  tcase_add_test(te, no_cascade_from_unknown_aunn);
  tcase_add_test(te, nothing_to_train);
  tcase_add_test(te, many_regions);
  suite_add_tcase(s, te);
  return s;
}

int main(void) {
  return test_run_suite(sema_suite());
}
