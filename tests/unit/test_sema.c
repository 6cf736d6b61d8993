/* Unit tests of sema.c: the Model built from a spec (names resolved, units
 * converted, defaults filled in, paths resolved), and the errors and
 * warnings of bad specs. */
#include <check.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
  ck_assert_ptr_nonnull(strstr(messages(c), "warning[W0001]: region 'V2' has no data and "
                               "feeds no region with data"));
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
  expect_errors("import std.nothing\n", 1, "the standard modules are std.activations, "
                "std.aunns, std.encodings, std.losses, std.priors");
  expect_errors("import std.observe\n", 1, "cannot find module 'std.observe' (searched "
                "/specs/std/observe.lobe, " LOBE_SOURCE_DIR "/stdlib/std/observe.lobe)");
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
                " condition film(module: -1, subject: 3)\n mlp 8\n}\n", 1,
                "'module' must be between 0 and 65536, not -1");
  expect_errors("aunn b {\n index fourier(bands: 4, max_period: 1s)\n"
                " condition film(module: 0, subject: 0)\n mlp 8\n}\n", 1,
                "film needs an embedding");
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

/* ---- the graph ------------------------------------------------------------------ */

/* Three regions of an aunn that sends embeddings of width 4; A has data. */
static const char *const graph =
    "subjects m1\n"
    "aunn a {\n  index fourier(bands: 2, max_period: 1s)\n  mlp 8\n  embed 4\n}\n"
    "region A, B, C : a\n"
    "data A of m1 = csv(\"a.csv\", rate: 100Hz)\n";

/* graph plus extra, which must check without errors. */
static Checked *check_graph(const char *extra) {
  char text[4096];
  snprintf(text, sizeof text, "%s%s", graph, extra);
  Checked *c = check_text(text);
  ck_assert_msg(c->model, "errors in:\n%s", messages(c));
  return c;
}

/* graph plus extra must fail with `errors` errors, one containing message. */
static void expect_graph_errors(const char *extra, int errors, const char *message) {
  char text[4096];
  snprintf(text, sizeof text, "%s%s", graph, extra);
  Checked *c = check_text(text);
  const char *out = messages(c);
  ck_assert_ptr_null(c->model);
  ck_assert_msg(diag_errors(c->cap.diag) == errors, "%d errors, expected %d, in:\n%s",
                diag_errors(c->cap.diag), errors, out);
  ck_assert_msg(strstr(out, message), "no '%s' in:\n%s", message, out);
  checked_free(c);
}

static void assert_edge(const Edge *e, int from, int to, double delay) {
  ck_assert_int_eq(e->from, from);
  ck_assert_int_eq(e->to, to);
  ck_assert_double_eq_tol(e->delay, delay, 1e-15);
}

START_TEST(edges_merge) {
  Checked *c = check_graph("connect A -> B\n"
                           "connect B -> A delay 10ms\n"
                           "connect A -> [B, C]\n"
                           "connect B -> A delay 0.01s\n"
                           "connect B -> A delay 20ms\n");
  const Model *m = c->model;
  ck_assert_int_eq(m->nedges, 4);
  assert_edge(&m->edges[0], 0, 1, 0);
  assert_edge(&m->edges[1], 1, 0, 0.01);
  assert_edge(&m->edges[2], 0, 2, 0);
  assert_edge(&m->edges[3], 1, 0, 0.02);
  ck_assert_int_eq(m->edges[1].pos.line, 10);  /* the first statement naming it */
  ck_assert_double_eq(m->edges[0].l1, 0);
  ck_assert_double_eq(m->edges[0].length, 0);
  ck_assert_int_eq(m->aunns[0].input, 4);
  checked_free(c);
}
END_TEST

/* all -> all: every ordered pair of distinct regions; a later statement
 * naming one of its edges merges into it and may give it a prior. */
START_TEST(all_to_all) {
  Checked *c = check_graph("connect all -> all delay 10ms\n"
                           "connect C -> A delay 10ms prior sparse(l1: 0.5)\n"
                           "connect all -> B delay 5ms\n");
  const Model *m = c->model;
  ck_assert_int_eq(m->nedges, 8);
  static const int pairs[6][2] = {{0, 1}, {0, 2}, {1, 0}, {1, 2}, {2, 0}, {2, 1}};
  for (int i = 0; i < 6; i++) {
    assert_edge(&m->edges[i], pairs[i][0], pairs[i][1], 0.01);
    ck_assert_double_eq(m->edges[i].l1, i == 4 ? 0.5 : 0);
  }
  assert_edge(&m->edges[6], 0, 1, 0.005);
  assert_edge(&m->edges[7], 2, 1, 0.005);
  checked_free(c);
}
END_TEST

START_TEST(groups) {
  Checked *c = check_graph("let visual = [B, C]\n"
                           "let source = A\n"
                           "connect source -> visual\n"
                           "connect [B, C] -> [A] delay 1s\n");
  ck_assert_int_eq(c->model->nedges, 4);
  assert_edge(&c->model->edges[1], 0, 2, 0);
  assert_edge(&c->model->edges[3], 2, 0, 1);
  checked_free(c);
  /* An unknown region is reported once; the statement adds no edges, so
   * nothing follows from it (no cycle, no warning). */
  expect_graph_errors("connect A -> [B, D]\nconnect B -> A\n", 1,
                      "unknown region 'D' (known: A, B, C)");
  expect_graph_errors("connect A -> [3]\n", 1,
                      "expected a region, a list of regions or 'all', found the number 3");
  expect_graph_errors("let g = \"B\"\nconnect A -> g\n", 1,
                      "found 'g', which is a string");
}
END_TEST

START_TEST(cycles_printed) {
  char *out;
  Checked *c = check_text("subjects m1\n"
                          "aunn a {\n index fourier(bands: 2, max_period: 1s)\n mlp 8\n"
                          " embed 4\n}\n"
                          "region A, B, C : a\n"
                          "data A of m1 = csv(\"a.csv\", rate: 100Hz)\n"
                          "connect A -> B\nconnect C -> A\nconnect B -> C\n");
  out = strdup(messages(c));
  ck_assert_int_eq(diag_errors(c->cap.diag), 1);
  ck_assert_msg(strstr(out, "/specs/brain.lobe:11:11: error[E0057]: these edges form a "
                       "cycle without a delay: B -> C -> A -> B\n"), "%s", out);
  ck_assert_msg(strstr(out, "/specs/brain.lobe:9:11: note: add a delay to one of these "
                       "edges\n"), "%s", out);
  free(out);
  checked_free(c);
  /* Two cycles, two errors; one statement making many cycles, one error. */
  expect_graph_errors("connect A -> B\nconnect B -> A\nconnect C -> C\n", 2,
                      "a region feeds itself without a delay: C -> C");
  expect_graph_errors("connect all -> all\n", 1, "A -> B -> A");
  expect_graph_errors("connect [A, B] -> [A, B]\n", 1, "A -> A"); /* one per statement */
}
END_TEST

START_TEST(delayed_feedback_is_fine) {
  Checked *c = check_graph("connect A -> B\nconnect B -> A delay 10ms\n"
                           "connect C -> C delay 10ms\nconnect all -> all delay 20ms\n");
  ck_assert_int_eq(c->model->nedges, 9);
  checked_free(c);
}
END_TEST

/* The input width of an aunn is the embed of what feeds its regions. */
START_TEST(embed_and_input) {
  Checked *c = check_text("subjects m1\n"
                          "aunn wide {\n index fourier(bands: 2, max_period: 1s)\n mlp 8\n"
                          " embed 16\n}\n"
                          "aunn wide2 {\n index fourier(bands: 2, max_period: 1s)\n mlp 8\n"
                          " embed 16\n latent 3\n}\n"
                          "aunn sink {\n index fourier(bands: 2, max_period: 1s)\n mlp 8\n}\n"
                          "region A : wide\nregion B : wide2\nregion C, D : sink\n"
                          "data C of m1 = csv(\"c.csv\", rate: 100Hz)\n"
                          "connect A -> C\nconnect B -> D\n");
  ck_assert_msg(c->model, "%s", messages(c));
  const AunnDef *a = c->model->aunns;
  ck_assert_int_eq(a[0].embed, 16);
  ck_assert_int_eq(a[0].input, 0);
  ck_assert_int_eq(a[1].input, 0);
  ck_assert_int_eq(a[2].embed, 0);
  ck_assert_int_eq(a[2].input, 16);
  checked_free(c);
  expect_errors("aunn b {\n index fourier(bands: 2, max_period: 1s)\n mlp 8\n embed 70000\n}\n",
                1, "'embed' must be between 0 and 65536, not 70000");
}
END_TEST

START_TEST(embed_checked) {
  /* No embed: one error per aunn, however many edges leave its regions. */
  expect_errors("region B, C : a\nconnect V1 -> [B, C]\nconnect B -> C\n", 1,
                "'V1' has nothing to send along this edge: its aunn 'a' has no embed");
  expect_graph_errors("aunn n {\n index fourier(bands: 2, max_period: 1s)\n mlp 8\n"
                      " embed 8\n}\nregion N : n\nconnect [A, N] -> B\nconnect N -> C\n", 1,
                      "the regions of aunn 'a' would receive embeddings of width 8 (from "
                      "'N') and 4 (from 'A')");
}
END_TEST

START_TEST(tract_delay) {
  Checked *c = check_graph("connect A -> B delay tract(length: 40mm, speed: 2m / 1s)\n"
                           "connect B -> A delay tract(speed: 4m / 2s, length: 1cm)\n");
  ck_assert_double_eq_tol(c->model->edges[0].delay, 0.02, 1e-15);
  ck_assert_double_eq_tol(c->model->edges[1].delay, 0.005, 1e-15);
  checked_free(c);
}
END_TEST

START_TEST(delays_checked) {
  expect_graph_errors("connect A -> B delay 5mm\n", 1,
                      "expected a time (s, ms or us) for the delay, found a distance");
  expect_graph_errors("connect A -> B delay 2m / 1s\n", 1, "found a speed");
  expect_graph_errors("connect A -> B delay -1ms\n", 1, "a delay must not be negative");
  expect_graph_errors("connect A -> B delay tract(length: 4mm, speed: 2m)\n", 1,
                      "'speed' must be a speed (a distance over a time), not a distance");
  expect_graph_errors("connect A -> B delay tract(length: 4mm, speed: 2)\n", 1,
                      "'speed' needs a unit (a distance over a time), as in 2m / 1s");
  expect_graph_errors("connect A -> B delay tract(length: 4mm)\n", 1, "'tract' needs 'speed'");
  expect_graph_errors("connect A -> B delay trac(length: 4mm)\n", 1,
                      "expected a time, as in 10ms, or tract(");
}
END_TEST

/* Positions in metres; the length of an edge is the distance between its
 * regions' positions, 0 when one is unknown. */
START_TEST(positions_and_length) {
  Checked *c = check_text("subjects m1\n"
                          "aunn a {\n index fourier(bands: 2, max_period: 1s)\n mlp 8\n"
                          " embed 4\n}\n"
                          "let origin = [0mm, 0mm, 0mm]\n"
                          "region A : a at origin\nregion B : a at [3mm, 0.4cm, 0m]\n"
                          "region C : a\n"
                          "data A of m1 = csv(\"a.csv\", rate: 100Hz)\n"
                          "connect [B, C] -> A\n");
  ck_assert_msg(c->model, "%s", messages(c));
  const Model *m = c->model;
  ck_assert(m->regions[0].has_position);
  ck_assert(!m->regions[2].has_position);
  ck_assert_double_eq_tol(m->regions[1].position[1], 0.004, 1e-15);
  ck_assert_double_eq_tol(m->edges[0].length, 0.005, 1e-15);
  ck_assert_double_eq(m->edges[1].length, 0);
  checked_free(c);
  expect_errors("region B, C : a at [0mm, 0mm, 0mm]\n", 1, "'at' gives one position");
  expect_errors("region B : a at [0mm, 0mm]\n", 1, "expected a position of three distances");
  expect_errors("region B : a at [0mm, 1s, 0mm]\n", 1,
                "'position' must be a distance (mm, cm or m), not a time");
  expect_errors("region all : a\n", 1, "'all' stands for every region in connect");
}
END_TEST

START_TEST(priors) {
  Checked *c = check_graph("region D : a at [0mm, 0mm, 0mm]\nregion E : a at [0mm, 0mm, 1cm]\n"
                           "connect D -> E prior sparse(l1: 1e-3, distance: 1e-4)\n"
                           "connect E -> D delay 1s prior sparse(distance: 2)\n"
                           "connect A -> B prior sparse(l1: 0.5)\n");
  const Edge *e = c->model->edges;
  ck_assert_double_eq_tol(e[0].l1, 1e-3, 1e-18);
  ck_assert_double_eq_tol(e[0].distance, 0.1, 1e-15);      /* per mm -> per m */
  ck_assert_double_eq_tol(e[0].length, 0.01, 1e-15);
  ck_assert_double_eq_tol(e[1].distance, 2000, 1e-9);
  ck_assert_double_eq(e[1].l1, 0);
  ck_assert_double_eq_tol(e[2].l1, 0.5, 1e-15);
  checked_free(c);
  expect_graph_errors("region D : a at [0mm, 0mm, 0mm]\n"
                      "connect D -> [B, C] prior sparse(distance: 1e-4)\n", 1,
                      "the distance prior needs the positions of the regions it connects, "
                      "but 'B' has none (nor have others)");
  expect_graph_errors("connect A -> B prior sparse(l1: 1)\nconnect A -> B prior sparse(l1: 2)\n",
                      1, "the edge A -> B already has another prior");
  expect_graph_errors("connect A -> B prior sparse(l1: -1)\n", 1, "'l1' must not be negative");
  expect_graph_errors("connect A -> B prior sparse(l1: 1ms)\n", 1,
                      "'l1' is a plain number, not a time");
  expect_graph_errors("connect A -> B prior dense(l1: 1)\n", 1, "unknown prior 'dense'");
}
END_TEST

START_TEST(poisson_and_l2) {
  Checked *c = check_graph("data B of m1 = csv(\"b.csv\", rate: 100Hz)\n"
                           "loss mse(A) + 2 * poisson(B) + poisson(A) + 1e-4 * l2(a) + l2(a)\n");
  const Model *m = c->model;
  ck_assert_int_eq(m->nlosses, 4);
  static const int kinds[] = {LOSS_MSE, LOSS_POISSON, LOSS_POISSON, LOSS_L2};
  static const int sources[] = {0, 1, 0, -1};
  static const double weights[] = {1, 2, 1, 1.0001};
  for (int i = 0; i < 4; i++) {
    ck_assert_int_eq(m->losses[i].kind, kinds[i]);
    ck_assert_int_eq(m->losses[i].source, sources[i]);
    ck_assert_int_eq(m->losses[i].aunn, i == 3 ? 0 : -1);
    ck_assert_double_eq_tol(m->losses[i].weight, weights[i], 1e-12);
  }
  checked_free(c);
  expect_graph_errors("loss mse(A) + poisson(B)\n", 1,
                      "region 'B' has no data, so poisson(B) has nothing to compare with");
  expect_graph_errors("loss mse(A) + l2(b)\n", 1, "unknown aunn 'b' (known: a)");
  expect_graph_errors("loss mse(A) + l2(A, B)\n", 1, "'l2' takes one aunn, as in l2(cortex)");
  expect_graph_errors("aunn z {\n index fourier(bands: 2, max_period: 1s)\n mlp 8\n}\n"
                      "loss mse(A) + l2(z)\n", 1, "no region uses aunn 'z'");
}
END_TEST

START_TEST(window) {
  Checked *c = check_graph("train { window: 16 }\n");
  ck_assert_int_eq(c->model->train.window, 16);
  checked_free(c);
  c = check_graph("");
  ck_assert_int_eq(c->model->train.window, 1);
  checked_free(c);
  expect_graph_errors("train { window: 0 }\n", 1, "'window' must be between 1 and 4096, not 0");
  expect_graph_errors("train { window: 5000 }\n", 1, "'window' must be between 1 and 4096");
}
END_TEST

/* A region without data is fine when it feeds one with data. */
START_TEST(dark_regions) {
  Checked *c = check_graph("connect B -> A\nconnect C -> B delay 10ms\n");
  ck_assert_ptr_null(strstr(messages(c), "W0001"));
  checked_free(c);
  c = check_graph("connect A -> B\n");
  ck_assert_ptr_nonnull(strstr(messages(c), "warning[W0001]: region 'B'"));
  ck_assert_ptr_nonnull(strstr(messages(c), "warning[W0001]: region 'C'"));
  checked_free(c);
}
END_TEST

/* A delay is rounded to whole samples of the source fitted: a warning when
 * that moves it by more than a quarter, once per connect statement. */
START_TEST(quantised_delays) {
  Checked *c = check_graph("data A of m2 = csv(\"a2.csv\", rate: 100Hz)\nsubjects m2\n"
                           "connect B -> A delay 4ms\nconnect C -> B delay 12ms\n"
                           "connect C -> A delay 26ms\n");
  const char *out = messages(c);
  ck_assert_msg(strstr(out, "warning[W0003]: the delay 4ms of B -> A becomes 10ms for "
                       "the data at 100Hz, whose steps are 10ms long"), "%s", out);
  ck_assert_ptr_null(strstr(out, "12ms"));
  ck_assert_ptr_null(strstr(out, "26ms"));
  checked_free(c);
  /* Each rate reads the delays its sources depend on; 14ms is exact at 1kHz. */
  c = check_graph("data A of m2 = csv(\"a2.csv\", rate: 1kHz)\nsubjects m2\n"
                  "data C of m1 = csv(\"c.csv\", rate: 50Hz)\n"
                  "connect B -> A delay 14ms\nconnect B -> C delay 14ms\n"
                  "connect all -> A delay 1ms\n");
  out = messages(c);
  ck_assert_msg(strstr(out, "the delay 14ms of B -> A becomes 10ms for the data at 100Hz"),
                "%s", out);
  ck_assert_msg(strstr(out, "the delay 14ms of B -> C becomes 20ms for the data at 50Hz"),
                "%s", out);
  ck_assert_ptr_null(strstr(out, "1kHz"));
  const char *all = strstr(out, "the delay 1ms");  /* once for the whole statement */
  ck_assert_ptr_nonnull(all);
  ck_assert_ptr_null(strstr(all + 1, "the delay 1ms"));
  checked_free(c);
}
END_TEST

/* ---- let -------------------------------------------------------------------------- */

START_TEST(lets_everywhere) {
  Checked *c = check_text("let enc = fourier(bands: n, max_period: period)\n"
                          "let n = 2 * 4\nlet period = 10s\nlet layers = [16, n]\n"
                          "let act = tanh\nlet file = \"v.csv\"\nlet src = csv(file, rate: 100Hz)\n"
                          "let steps = 300\nlet opt = adam(lr: 1e-2)\nlet half = 0.5\n"
                          "let wiring = sparse(l1: half)\nlet wait = 2 * 5ms\n"
                          "subjects m1\n"
                          "aunn a {\n index enc\n mlp layers, act\n embed n\n}\n"
                          "region V1, V2 : a\n"
                          "data V1 of m1 = src\n"
                          "connect V2 -> V1 delay wait prior wiring\n"
                          "loss half * mse(V1)\n"
                          "train { steps: steps, optimizer: opt }\n");
  ck_assert_msg(c->model, "%s", messages(c));
  const Model *m = c->model;
  ck_assert_int_eq(m->aunns[0].bands, 8);
  ck_assert_double_eq_tol(m->aunns[0].max_period, 10, 1e-12);
  ck_assert_int_eq(m->aunns[0].hidden[1], 8);
  ck_assert_int_eq(m->aunns[0].activation, ACT_TANH);
  ck_assert_int_eq(m->aunns[0].embed, 8);
  ck_assert_str_eq(m->sources[0].path, "/specs/v.csv");
  ck_assert_double_eq_tol(m->edges[0].delay, 0.01, 1e-15);
  ck_assert_double_eq_tol(m->edges[0].l1, 0.5, 1e-15);
  ck_assert_double_eq_tol(m->losses[0].weight, 0.5, 1e-15);
  ck_assert_int_eq(m->train.steps, 300);
  ck_assert_double_eq_tol(m->train.lr, 1e-2, 1e-15);
  ck_assert_ptr_null(strstr(messages(c), "W0004"));
  checked_free(c);
}
END_TEST

START_TEST(let_cycles) {
  char text[1024];
  snprintf(text, sizeof text, "%slet a = b\nlet b = a\nlet c = 2 * c\n"
           "train { steps: a, batch: c }\n", minimal);
  Checked *c = check_text(text);
  const char *out = messages(c);
  ck_assert_int_eq(diag_errors(c->cap.diag), 2);   /* the uses are quiet */
  ck_assert_msg(strstr(out, "error[E0054]: let 'a' is defined in terms of itself: a -> b -> a"),
                "%s", out);
  ck_assert_msg(strstr(out, "let 'c' is defined in terms of itself: c -> c"), "%s", out);
  checked_free(c);
}
END_TEST

START_TEST(lets_checked) {
  expect_errors("let silu = 3\n", 1, "'silu' is a builtin name; choose another name for the let");
  expect_errors("let all = 3\n", 1, "'all' is a builtin name");
  expect_errors("let x = 3\nlet x = 4\ntrain { steps: x }\n", 1, "let 'x' is already defined");
  expect_errors("let V1 = 3\n", 1, "'V1' is already defined as a region");
  expect_errors("let s = \"ten\"\ntrain { steps: s }\n", 1,
                "expected a number, found 's', which is a string");
  expect_errors("let w = 2\naunn b {\n index w\n mlp 8\n}\n", 1,
                "expected an encoding, as in fourier(bands: 16, max_period: 10s), found 'w', "
                "which is the number 2");
  /* A let with a bad value is reported at its value, once however often used. */
  char text[1024];
  snprintf(text, sizeof text, "%slet bad = 1sec\ntrain { steps: bad, batch: bad }\n", minimal);
  Checked *c = check_text(text);
  const char *out = messages(c), *first = strstr(out, "unknown unit 'sec'");
  ck_assert_ptr_nonnull(first);
  ck_assert_ptr_null(strstr(first + 1, "unknown unit 'sec'"));
  checked_free(c);
}
END_TEST

/* Lets, each naming the next twice: written out, 2^40 parts. */
START_TEST(let_too_large) {
  char text[8192];
  int n = snprintf(text, sizeof text, "%slet x0 = 1\n", minimal);
  for (int i = 1; i <= 40; i++)
    n += snprintf(text + n, sizeof text - n, "let x%d = x%d + x%d\n", i, i - 1, i - 1);
  snprintf(text + n, sizeof text - n, "train { steps: x40 }\n");
  Checked *c = check_text(text);
  ck_assert_ptr_null(c->model);
  ck_assert_ptr_nonnull(strstr(messages(c), "with the lets it names written out, is larger"));
  checked_free(c);
}
END_TEST

START_TEST(unused_lets_warned) {
  char text[1024];
  snprintf(text, sizeof text, "%slet a = 3\nlet b = a\nlet c = 5\ntrain { steps: c }\n",
           minimal);
  Checked *c = check_text(text);
  ck_assert_ptr_nonnull(c->model);
  const char *out = messages(c);
  ck_assert_msg(strstr(out, "warning[W0004]: let 'b' is never used"), "%s", out);
  ck_assert_ptr_null(strstr(out, "let 'a'"));     /* b names it */
  ck_assert_ptr_null(strstr(out, "let 'c'"));
  checked_free(c);
}
END_TEST

/* ---- modules ------------------------------------------------------------------------ */

/* A temporary folder for the files of one test. */
typedef struct Folder {
  char path[64];
} Folder;

static void folder_open(Folder *f) {
  snprintf(f->path, sizeof f->path, "/tmp/lobe-sema-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(f->path));
}

/* Writes text to the file rel in f, making its folders. */
static void put_file(const Folder *f, const char *rel, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", f->path, rel);
  for (char *slash = strchr(path + strlen(f->path) + 1, '/'); slash;
       slash = strchr(slash + 1, '/')) {
    *slash = 0;
    mkdir(path, 0700);
    *slash = '/';
  }
  FILE *fp = fopen(path, "w");
  ck_assert_ptr_nonnull(fp);
  fputs(text, fp);
  fclose(fp);
}

static void folder_close(Folder *f) {
  test_remove_tree(f->path);
}

/* Checks text as f/brain.lobe. */
static Checked *check_in(const Folder *f, const char *text) {
  char path[128];
  snprintf(path, sizeof path, "%s/brain.lobe", f->path);
  return check_as(path, text);
}

static const char *const areas =
    "import std.encodings\n"
    "let fast = encodings.eeg\n"
    "let wiring = sparse(l1: n)\n"
    "let n = 0.25\n"
    "aunn cortex {\n  index fast\n  mlp   16 x 2, silu\n  embed 4\n}\n"
    "aunn unused {\n  index fast\n  mlp   8\n}\n";

START_TEST(imports) {
  Folder f;
  folder_open(&f);
  put_file(&f, "shared/areas.lobe", areas);
  Checked *c = check_in(&f, "import shared.areas as areas\nimport std.aunns\n"
                            "subjects m1\n"
                            "region V1 : areas.cortex\nregion V2 : aunns.small\n"
                            "data V1 of m1 = csv(\"v.csv\", rate: 100Hz)\n"
                            "connect V2 -> V1 prior areas.wiring\n"
                            "loss mse(V1) + 0.5 * l2(areas.cortex)\n");
  ck_assert_msg(c->model, "%s", messages(c));
  const Model *m = c->model;
  ck_assert_int_eq(m->naunns, 2);                  /* areas.unused and aunns.wide: not used */
  ck_assert_str_eq(m->aunns[0].name, "areas.cortex");
  ck_assert_int_eq(m->aunns[0].bands, 64);          /* std.encodings' eeg */
  ck_assert_int_eq(m->aunns[0].input, 16);          /* from aunns.small */
  ck_assert_str_eq(m->aunns[1].name, "aunns.small");
  ck_assert_int_eq(m->regions[1].aunn, 1);
  ck_assert_double_eq_tol(m->edges[0].l1, 0.25, 1e-15);
  ck_assert_int_eq(m->losses[1].aunn, 0);
  ck_assert_ptr_null(strstr(messages(c), "W0004")); /* module lets are presets */
  checked_free(c);
  folder_close(&f);
}
END_TEST

/* Every module of the standard library loads and checks. */
START_TEST(stdlib_modules) {
  Checked *c = check_text("import std.activations\nimport std.aunns\nimport std.encodings\n"
                          "import std.losses\nimport std.priors\nimport std.tracts\n"
                          "subjects m1\n"
                          "aunn a {\n index encodings.fmri\n mlp 8, activations.periodic\n"
                          " embed 16\n}\n"
                          "region A : aunns.wide at [0mm, 0mm, 0mm]\n"
                          "region B : a at [0mm, 1cm, 0mm]\n"
                          "data B of m1 = csv(\"b.csv\", rate: 1Hz)\n"
                          "connect A -> B delay tract(length: 1cm, speed: tracts.myelinated) "
                          "prior priors.wiring\n"
                          "loss mse(B) + losses.decay * l2(a)\n");
  ck_assert_msg(c->model, "%s", messages(c));
  ck_assert_int_eq(c->model->aunns[0].activation, ACT_SINE);
  ck_assert_double_eq_tol(c->model->edges[0].delay, 0.001, 1e-15);
  ck_assert_double_eq_tol(c->model->losses[1].weight, 1e-4, 1e-18);
  checked_free(c);
}
END_TEST

START_TEST(import_errors) {
  Folder f;
  folder_open(&f);
  put_file(&f, "lab/a.lobe", "import b\nlet x = b.y\n");
  put_file(&f, "lab/b.lobe", "import a\nlet y = 3\nsubjects s\n");
  put_file(&f, "lab/priors.lobe", "let wiring = sparse(l1: 1)\n");
  Checked *c = check_in(&f, "import lab.a\nimport lab.priors\nimport std.priors\n"
                            "import lab.nothing\nsubjects m1\n"
                            "aunn k {\n index fourier(bands: 2, max_period: 1s)\n mlp 8\n}\n"
                            "region V1 : k\nregion V2 : areas.cortex\nregion V3 : a.x\n"
                            "data V1 of m1 = csv(\"v.csv\", rate: 100Hz)\n");
  const char *out = messages(c);
  char want[512];
  ck_assert_int_eq(diag_errors(c->cap.diag), 6);
  ck_assert_msg(strstr(out, "error[E0049]: import cycle: lab.a -> b -> lab.a"), "%s", out);
  ck_assert_msg(strstr(out, "lab/b.lobe:3:1: error[E0050]: 'subjects' is not allowed in an "
                       "imported module"), "%s", out);
  ck_assert_msg(strstr(out, "3:8: error[E0051]: namespace 'priors' is already taken"), "%s", out);
  snprintf(want, sizeof want, "cannot find module 'lab.nothing' (searched %s/lab/nothing.lobe, "
           "%s/stdlib/lab/nothing.lobe)", f.path, LOBE_SOURCE_DIR);
  ck_assert_msg(strstr(out, want), "%s", out);
  ck_assert_msg(strstr(out, "error[E0052]: unknown namespace 'areas' (known: a, priors, "
                       "nothing)"), "%s", out);
  ck_assert_msg(strstr(out, "error[E0014]: unknown aunn 'a.x' (known: ") == NULL &&
                strstr(out, "error[E0014]: unknown aunn 'a.x'"), "%s", out);
  checked_free(c);
  folder_close(&f);
}
END_TEST

/* Names in a module are looked up in the module: its lets and its imports. */
START_TEST(module_scopes) {
  Folder f;
  folder_open(&f);
  put_file(&f, "m.lobe", "import std.priors as p\nlet n = 3\nlet pr = p.loose\n");
  Checked *c = check_in(&f, "import m\nlet n = 5\n"
                            "subjects m1\n"
                            "aunn a {\n index fourier(bands: m.n, max_period: 1s)\n mlp n\n"
                            " embed 2\n}\n"
                            "region A, B : a\n"
                            "data A of m1 = csv(\"a.csv\", rate: 1Hz)\n"
                            "connect B -> A prior m.pr\n");
  ck_assert_msg(c->model, "%s", messages(c));
  ck_assert_int_eq(c->model->aunns[0].bands, 3);
  ck_assert_int_eq(c->model->aunns[0].hidden[0], 5);
  ck_assert_double_eq_tol(c->model->edges[0].l1, 1e-5, 1e-18);
  checked_free(c);
  char text[1024];
  snprintf(text, sizeof text, "%simport m\ntrain { steps: m.nn }\n", minimal);
  c = check_in(&f, text);
  ck_assert_msg(strstr(messages(c), "module 'm' has no let or aunn 'nn' (known: m.n, m.pr)"),
                "%s", messages(c));
  checked_free(c);
  snprintf(text, sizeof text, "%simport m\ntrain { steps: p.loose }\n", minimal);
  c = check_in(&f, text);                          /* p is m's namespace, not the spec's */
  ck_assert_ptr_nonnull(strstr(messages(c), "unknown namespace 'p' (known: m)"));
  checked_free(c);
  folder_close(&f);
}
END_TEST

/* A module with a syntax error: reported in its file, and names from it
 * are not reported again. */
START_TEST(broken_module) {
  Folder f;
  folder_open(&f);
  put_file(&f, "m.lobe", "aunn a {\n index fourier(bands: 2, max_period: 1s\n mlp 8\n}\n");
  char text[1024];
  snprintf(text, sizeof text, "%simport m\nregion V2 : m.a\ntrain { steps: m.x }\n", minimal);
  Checked *c = check_in(&f, text);
  ck_assert_int_eq(diag_errors(c->cap.diag), 1);
  ck_assert_ptr_nonnull(strstr(messages(c), "m.lobe:3:2: error[E0008]"));
  checked_free(c);
  folder_close(&f);
}
END_TEST

/* The real-data formats: their options land in the Source; rates the file
 * knows stay 0 until bound. */
START_TEST(real_data_sources) {
  Checked *c = check_text(
      "subjects m1, m2, m3, m4, m5\n"
      "aunn a {\n  index fourier(bands: 2, max_period: 1s)\n  mlp 8\n}\n"
      "region V1, CA1 : a\n"
      "data V1 of m1 = edf(\"e.edf\", channels: [O1, \"EEG Pz\"])\n"
      "data V1 of m2 = mat(\"tc.mat\", var: tc, layout: channels_x_time, rate: 2Hz)\n"
      "data CA1 of m3 = nwb_units(\"u.nwb\", bin: 10ms)\n"
      "data V1 of m4 = nwb_series(\"s.nwb\", series: \"acquisition/lfp\")\n"
      "data V1 of m5 = nifti(\"bold.nii\", atlas: \"atlas/aal.nii\", rate: 1.4Hz)\n");
  const Model *m = c->model;
  ck_assert_msg(m != NULL, "%s", messages(c));
  const Source *s = &m->sources[0];
  ck_assert_int_eq(s->kind, SRC_EDF);
  ck_assert_int_eq(s->nselect, 2);
  ck_assert_str_eq(s->select[0], "O1");
  ck_assert_str_eq(s->select[1], "EEG Pz");
  ck_assert_double_eq(s->rate, 0);
  ck_assert(!s->rate_given);
  s = &m->sources[1];
  ck_assert_int_eq(s->kind, SRC_MAT);
  ck_assert_str_eq(s->var, "tc");
  ck_assert(s->transposed);
  ck_assert(s->rate_given);
  s = &m->sources[2];
  ck_assert_int_eq(s->kind, SRC_NWB_UNITS);
  ck_assert_double_eq_tol(s->bin, 0.01, 1e-12);
  ck_assert_double_eq_tol(s->rate, 100, 1e-9);
  ck_assert_str_eq(m->sources[3].series, "acquisition/lfp");
  ck_assert_str_eq(m->sources[4].atlas, "/specs/atlas/aal.nii");
  ck_assert_double_eq_tol(m->sources[4].rate, 1.4, 1e-12);
  checked_free(c);
}
END_TEST

START_TEST(real_data_errors) {
  /* minimal has one subject: m2 is unknown too, a second error each */
  expect_errors("data V1 of m2 = nwb_unit(\"u.nwb\", bin: 1s)\n", 2,
                "unknown data format 'nwb_unit'; did you mean 'nwb_units'?");
  expect_errors("data V1 of m2 = mat(\"t.mat\", var: tc, rate: 1Hz, layout: rows)\n", 2,
                "unknown layout 'rows'");
  expect_errors("data V1 of m2 = mat(\"t.mat\", var: tc)\n", 2, "'mat' needs 'rate'");
  expect_errors("data V1 of m2 = nwb_units(\"u.nwb\", rate: 2Hz, bin: 1s)\n", 2,
                "a bin of 1 s counts at 1 Hz, but 'rate' says 2 Hz");
  expect_errors("data V1 of m2 = nifti(\"b.nii\")\n", 2, "'nifti' needs 'atlas'");
  expect_errors("data V1 of m2 = csv(\"v.csv\", rate: 1Hz, bin: 1s)\n", 2,
                "'csv' has no option 'bin'");
  expect_errors("data V1 of m2 = csv(\"v.csv\", rate: 1Hz, channels: [O1])\n", 2,
                "expected");
}
END_TEST

Suite *sema_suite(void) {
  Suite *s = suite_create("sema");
  TCase *tm = tcase_create("model");
  tcase_add_test(tm, example_aunns);
  tcase_add_test(tm, example_regions_and_subjects);
  tcase_add_test(tm, example_sources);
  tcase_add_test(tm, real_data_sources);
  tcase_add_test(tm, real_data_errors);
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
  TCase *tg = tcase_create("graph");
  tcase_add_test(tg, edges_merge);
  tcase_add_test(tg, all_to_all);
  tcase_add_test(tg, groups);
  tcase_add_test(tg, cycles_printed);
  tcase_add_test(tg, delayed_feedback_is_fine);
  tcase_add_test(tg, embed_and_input);
  tcase_add_test(tg, embed_checked);
  tcase_add_test(tg, tract_delay);
  tcase_add_test(tg, delays_checked);
  tcase_add_test(tg, positions_and_length);
  tcase_add_test(tg, priors);
  tcase_add_test(tg, poisson_and_l2);
  tcase_add_test(tg, window);
  tcase_add_test(tg, dark_regions);
  tcase_add_test(tg, quantised_delays);
  suite_add_tcase(s, tg);
  TCase *tl = tcase_create("let");
  tcase_add_test(tl, lets_everywhere);
  tcase_add_test(tl, let_cycles);
  tcase_add_test(tl, lets_checked);
  tcase_add_test(tl, let_too_large);
  tcase_add_test(tl, unused_lets_warned);
  suite_add_tcase(s, tl);
  TCase *tm2 = tcase_create("modules");
  tcase_add_test(tm2, imports);
  tcase_add_test(tm2, stdlib_modules);
  tcase_add_test(tm2, import_errors);
  tcase_add_test(tm2, module_scopes);
  tcase_add_test(tm2, broken_module);
  suite_add_tcase(s, tm2);
  return s;
}

int main(void) {
  setenv("LOBE_STDLIB", LOBE_SOURCE_DIR "/stdlib", 1);  /* whatever the environment says */
  return test_run_suite(sema_suite());
}
