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

/* Removes the folder path and everything in it. */
static inline void test_remove_tree(const char *path) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  ck_assert_int_eq(system(cmd), 0);
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

/* Output 0 of f (a loss) run by the interpreter on in. */
static inline double test_interp_loss(const IrFunc *f, double *const *in) {
  double **out = run_interp(f, in);
  double loss = out[0][0];
  free_buffers(out, f->noutputs);
  return loss;
}
#endif

#if defined(LOBE_BACKEND_H) && defined(LOBE_MODEL_H) && defined(LOBE_IR_H)
#include <dlfcn.h>
#include <math.h>
#include <unistd.h>

/* The lowered module's functions, optimised, compiled and loaded from a
 * shared object in dir (removed once loaded). */
static inline void *test_compile(const Lowered *fx, char *dir) {
  char obj[512], so[512], err[1024];
  snprintf(obj, sizeof obj, "%s/model.o", dir);
  snprintf(so, sizeof so, "%s/model.so", dir);
  for (int i = 0; i < fx->mod->nfuncs; i++)
    pass_run_all(fx->mod->funcs[i], NULL, NULL);
  CgOptions opt = {.opt_level = 2, .descriptor = false};
  ck_assert_msg(cg_emit_object(fx->mod, &opt, obj, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(link_executable(obj, so, true, err, sizeof err) == 0, "%s", err);
  void *lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  ck_assert_msg(lib != NULL, "%s", dlerror());
  unlink(obj);
  unlink(so);
  return lib;
}

/* Calls f's compiled form with the interpreter's inputs converted to its
 * precision; returns the largest norm-wise relative error over outputs. */
static inline double test_compiled_error(void *lib, const IrFunc *f, double **in, double **want,
                             bool f64) {
  char sym[256];
  cg_symbol(f, f64 ? "f64" : "f32", sym, sizeof sym);
  lobe_fn fn = (lobe_fn)dlsym(lib, sym);
  ck_assert_msg(fn != NULL, "no symbol %s", sym);
  int nargs = f->ninputs + f->noutputs;
  void **args = calloc(nargs, sizeof *args);
  for (int k = 0; k < nargs; k++) {
    const IrInstr *x = &f->ins[k < f->ninputs ? ir_input_value(f, k)
                                               : f->outputs[k - f->ninputs]];
    long n = ir_numel(x->shape);
    size_t size = x->type == TY_I32 ? 4 : f64 ? 8 : 4;
    args[k] = calloc(n, size);
    for (long i = 0; k < f->ninputs && i < n; i++) {
      if (x->type == TY_I32)
        ((int32_t *)args[k])[i] = (int32_t)in[k][i];
      else if (f64)
        ((double *)args[k])[i] = in[k][i];
      else
        ((float *)args[k])[i] = (float)in[k][i];
    }
  }
  fn(args);
  double worst = 0;
  for (int o = 0; o < f->noutputs; o++) {
    long n = ir_numel(f->ins[f->outputs[o]].shape);
    double diff = 0, norm = 0;
    for (long i = 0; i < n; i++) {
      void *buf = args[f->ninputs + o];
      double got = f64 ? ((double *)buf)[i] : ((float *)buf)[i];
      diff += (got - want[o][i]) * (got - want[o][i]);
      norm += want[o][i] * want[o][i];
    }
    worst = fmax(worst, sqrt(diff) / fmax(sqrt(norm), 1e-12));
  }
  for (int k = 0; k < nargs; k++)
    free(args[k]);
  free(args);
  return worst;
}
#endif

#ifdef LOBE_RT_H
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

/* The whole of f, read from its start into buf (NUL-terminated); closes f. */
static inline void test_slurp(FILE *f, char *buf, size_t cap) {
  fflush(f);
  rewind(f);
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = '\0';
  fclose(f);
}

/* rt_main(m, "brain", first, the rest of ap up to NULL) with stdout and
 * stderr captured into out and err. */
static inline int test_rt_vmain(const lobe_model *m, char *out, size_t outcap, char *err,
                                size_t errcap, const char *first, va_list ap) {
  char *argv[32] = {"brain"};
  int argc = 1;
  for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
    argv[argc++] = (char *)a;
  fflush(stdout);
  fflush(stderr);
  int saved_out = dup(1), saved_err = dup(2);
  FILE *fo = tmpfile(), *fe = tmpfile();
  dup2(fileno(fo), 1);
  dup2(fileno(fe), 2);
  int rc = rt_main(m, argc, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  test_slurp(fo, out, outcap);
  test_slurp(fe, err, errcap);
  return rc;
}

#define ck_assert_has(text, part) ck_assert_msg(strstr(text, part) != NULL, \
    "output \"%s\" lacks \"%s\"", text, part)

/* The state in dir's checkpoint of model m; the caller frees it with
 * rt_state_free. */
static inline void test_load_state(RtState *st, const lobe_model *m, const char *dir) {
  ck_assert_int_eq(rt_state_alloc(st, m), RT_OK);
  ck_assert_int_eq(rt_ckpt_load(st, dir), RT_OK);
}

/* The number after key in text. */
static inline double test_field(const char *text, const char *key) {
  const char *p = strstr(text, key);
  ck_assert_msg(p != NULL, "no %s in \"%s\"", key, text);
  return atof(p + strlen(key));
}
#endif

#endif
