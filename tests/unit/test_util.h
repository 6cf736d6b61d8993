/*
 * test_util.h — helpers shared by the unit tests. Header-only, because
 * every tests/unit/test_*.c file is its own executable (tests/CMakeLists.txt).
 */
#ifndef LOBE_TEST_UTIL_H
#define LOBE_TEST_UTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs every test of s; returns the exit status for main. */
static inline int test_run_suite(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* A stream that writes into memory; memtext_close returns the text,
 * which the caller frees. */
typedef struct MemText {
  FILE *stream;
  char *text;
  size_t len;
} MemText;

static inline FILE *memtext_open(MemText *m) {
  *m = (MemText){0};
  m->stream = open_memstream(&m->text, &m->len);
  return m->stream;
}

static inline char *memtext_close(MemText *m) {
  fclose(m->stream);
  return m->text;
}

#ifdef LOBE_FRONT_H
/* A Diag printing into memory, so a test can read its messages. */
typedef struct Captured {
  Diag *diag;
  MemText printed;
} Captured;

static inline void captured_open(Captured *c) {
  c->diag = diag_new(memtext_open(&c->printed), false);
}

/* Everything reported so far, as printed. */
static inline const char *captured_text(Captured *c) {
  diag_flush(c->diag);
  fflush(c->printed.stream);
  return c->printed.text;
}

static inline void captured_close(Captured *c) {
  diag_free(c->diag);
  free(memtext_close(&c->printed));
}
#endif

#ifdef LOBE_IR_H
/* f must pass ir_verify. */
static inline void assert_valid(const IrFunc *f) {
  char err[256];
  ck_assert_msg(ir_verify(f, err, sizeof err) == 0, "%s", err);
}

/* f as ir_print writes it; the caller frees the text. */
static inline char *print_to_string(const IrFunc *f) {
  MemText m;
  ir_print(memtext_open(&m), f);
  return memtext_close(&m);
}

/* A spec checked and lowered, with everything it needs kept alive. */
typedef struct Lowered {
  Diag *diag;
  Program *prog;
  Model *model;
  IrModule *mod;
} Lowered;

/* text, named `name` in messages, must check without errors. */
static inline Lowered lowered_build(const char *name, const char *text) {
  Lowered fx = {.diag = diag_new(stderr, false)};
  fx.prog = parse_file(fx.diag, diag_add_source(fx.diag, name, text));
  ck_assert_ptr_nonnull(fx.prog);
  fx.model = sema_check(fx.diag, fx.prog);
  diag_flush(fx.diag);
  ck_assert_ptr_nonnull(fx.model);
  fx.mod = lower_model(fx.model);
  ck_assert_ptr_nonnull(fx.mod);
  return fx;
}

static inline void lowered_free(Lowered *fx) {
  ir_module_free(fx->mod);
  sema_free(fx->model);
  ast_free(fx->prog);
  diag_free(fx->diag);
}

/* A reproducible number in [-1, 1) from a linear congruential state. */
static inline double test_uniform(unsigned *state) {
  *state = *state * 1103515245u + 12345u;
  return ((*state >> 8) & 0xffff) / 65536.0 * 2 - 1;
}

/* The outputs of f run by the interpreter on in, each calloc'd. */
static inline double **run_interp(const IrFunc *f, double *const *in) {
  double **out = calloc(f->noutputs, sizeof *out);
  for (int o = 0; o < f->noutputs; o++)
    out[o] = calloc(ir_numel(f->ins[f->outputs[o]].shape), sizeof **out);
  char err[256];
  ck_assert_msg(interp_run(f, (const double *const *)in, out, err, sizeof err) == 0,
                "%s: %s", f->name, err);
  return out;
}

/* Frees n argument or result buffers and their array. */
static inline void free_buffers(double **b, int n) {
  for (int i = 0; i < n; i++)
    free(b[i]);
  free(b);
}
#endif

#endif
