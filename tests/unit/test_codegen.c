/*
 * test_codegen.c — the LLVM backend against the reference interpreter.
 *
 * Each test builds IR functions by hand, compiles them (cg_emit_object),
 * links a shared object (link_executable), loads it with dlopen and calls
 * the f32 and f64 entry points on random inputs; results must match
 * interp_run to 1e-4 (f32) and 1e-10 (f64). Also: the f32 polynomial math
 * over wide ranges, the fusion rule and memory plan as seen in the emitted
 * LLVM IR, the model descriptor, and the error paths.
 */
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "ir.h"
#include "lobe_model.h"
#include "test_util.h"

/* ---- compiling ---------------------------------------------------------------- */

typedef struct Lib {
  void *handle;
  char dir[64];
} Lib;

/* Compiles mod into a fresh temporary folder and loads it; with ll set,
 * keeps the textual LLVM IR there as out.ll. */
static Lib compile_opts(const IrModule *mod, const CgOptions *opt) {
  Lib lib;
  snprintf(lib.dir, sizeof lib.dir, "/tmp/lobe-cg-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(lib.dir));
  char obj[128], so[128], err[2048];
  snprintf(obj, sizeof obj, "%s/out.o", lib.dir);
  snprintf(so, sizeof so, "%s/out.so", lib.dir);
  ck_assert_msg(cg_emit_object(mod, opt, obj, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(link_executable(obj, so, true, err, sizeof err) == 0, "%s", err);
  lib.handle = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  ck_assert_msg(lib.handle != NULL, "%s", dlerror());
  unlink(obj);
  unlink(so);
  return lib;
}

static Lib compile(const IrModule *mod) {
  CgOptions opt = {.opt_level = 2};
  return compile_opts(mod, &opt);
}

static void release(Lib *lib, IrModule *mod) {
  char ll[128];
  snprintf(ll, sizeof ll, "%s/out.ll", lib->dir);
  unlink(ll);
  rmdir(lib->dir);
  dlclose(lib->handle);
  ir_module_free(mod);
}

static lobe_fn entry(const Lib *lib, const IrFunc *f, const char *prec) {
  char sym[256];
  cg_symbol(f, prec, sym, sizeof sym);
  lobe_fn fn = (lobe_fn)dlsym(lib->handle, sym);
  ck_assert_msg(fn != NULL, "no symbol %s", sym);
  return fn;
}

/* ---- inputs and comparison ------------------------------------------------------ */

static double uniform(unsigned *state) {
  *state = *state * 1103515245u + 12345u;
  return ((*state >> 8) & 0xffffff) / 16777216.0;
}

/* Reals uniform in [lo, hi); ids uniform in [0, ids). */
typedef struct Gen {
  double lo, hi;
  int ids;
} Gen;

static double **random_inputs(const IrFunc *f, unsigned seed, Gen g) {
  double **in = calloc(f->ninputs, sizeof *in);
  for (int k = 0; k < f->ninputs; k++) {
    const IrInstr *x = &f->ins[ir_input_value(f, k)];
    long n = ir_numel(x->shape);
    in[k] = malloc(n * sizeof **in);
    for (long i = 0; i < n; i++) {
      double u = uniform(&seed);
      in[k][i] = x->type == TY_I32 ? floor(u * g.ids) : g.lo + (g.hi - g.lo) * u;
    }
  }
  return in;
}

static long numel_of(const IrFunc *f, int v) { return ir_numel(f->ins[v].shape); }

/* Argument buffers in the compiled precision: inputs converted, outputs
 * filled with NaN so that an element the code forgets to write shows. */
static void **make_args(const IrFunc *f, double **in, bool f64) {
  int nargs = f->ninputs + f->noutputs;
  void **args = calloc(nargs, sizeof *args);
  for (int k = 0; k < nargs; k++) {
    int v = k < f->ninputs ? ir_input_value(f, k) : f->outputs[k - f->ninputs];
    bool ids = f->ins[v].type == TY_I32;
    long n = numel_of(f, v);
    args[k] = calloc(n, ids ? 4 : f64 ? 8 : 4);
    for (long i = 0; i < n; i++) {
      double x = k < f->ninputs ? in[k][i] : NAN;
      if (ids)
        ((int32_t *)args[k])[i] = isnan(x) ? -1 : (int32_t)x;
      else if (f64)
        ((double *)args[k])[i] = x;
      else
        ((float *)args[k])[i] = (float)x;
    }
  }
  return args;
}

static double get(const void *buf, long i, bool f64) {
  return f64 ? ((const double *)buf)[i] : ((const float *)buf)[i];
}

/* Largest |got - want| relative to |want|, where elements below 1% of the
 * output's largest magnitude count as that 1% (norm-wise for cancelling
 * sums and products, elementwise otherwise). */
static double output_error(const void *got, const double *want, long n, bool f64) {
  double scale = 0, worst = 0;
  for (long i = 0; i < n; i++)
    scale = fmax(scale, fabs(want[i]));
  for (long i = 0; i < n; i++) {
    double g = get(got, i, f64);
    if (isnan(g) != isnan(want[i]))
      return INFINITY;
    if (!isnan(g))
      worst = fmax(worst, fabs(g - want[i]) / fmax(fabs(want[i]), fmax(1e-2 * scale, 1e-30)));
  }
  return worst;
}

/* Runs f compiled in both precisions against the interpreter. */
static void check_inputs(const Lib *lib, const IrFunc *f, double **in) {
  double **want = run_interp(f, in);
  for (int p = 0; p < 2; p++) {
    bool f64 = p == 1;
    void **args = make_args(f, in, f64);
    entry(lib, f, f64 ? "f64" : "f32")(args);
    for (int o = 0; o < f->noutputs; o++) {
      double e = output_error(args[f->ninputs + o], want[o],
                              numel_of(f, f->outputs[o]), f64);
      ck_assert_msg(e < (f64 ? 1e-10 : 1e-4), "%s %s output %d: relative error %g",
                    f->name, f64 ? "f64" : "f32", o, e);
    }
    for (int k = 0; k < f->ninputs + f->noutputs; k++)
      free(args[k]);
    free(args);
  }
  free_buffers(want, f->noutputs);
}

static void check_gen(const Lib *lib, const IrFunc *f, Gen g) {
  double **in = random_inputs(f, 1234, g);
  check_inputs(lib, f, in);
  free_buffers(in, f->ninputs);
}

/* Compiles every function of mod once and checks each. */
static void check_module(IrModule *mod, Gen g) {
  Lib lib = compile(mod);
  for (int i = 0; i < mod->nfuncs; i++)
    check_gen(&lib, mod->funcs[i], g);
  release(&lib, mod);
}

static IrFunc *add(IrModule *mod, const char *name) {
  IrFunc *f = ir_func_new(name);
  ir_module_add(mod, f);
  return f;
}

/* ---- elementwise ---------------------------------------------------------------- */

static void build_binary_ops(IrModule *mod) {
  static const IrOp ops[] = {IR_ADD, IR_SUB, IR_MUL, IR_DIV};
  for (int i = 0; i < 4; i++) {
    IrFunc *f = add(mod, ir_op_name(ops[i]));
    int a = ir_input(f, "a", TY_REAL, IR_MAT(7, 13));
    int b = ir_input(f, "b", TY_REAL, IR_MAT(7, 13));
    ir_output(f, ir_binary(f, ops[i], a, b));
  }
}

START_TEST(unary_ops) {
  static const IrOp ops[] = {IR_NEG, IR_EXP,  IR_SIN, IR_COS, IR_TANH,
                             IR_SIGMOID, IR_RELU, IR_STEP, IR_ABS, IR_DETACH};
  IrModule *mod = ir_module_new(NULL);
  IrFunc *f = add(mod, "unary");
  int x = ir_input(f, "x", TY_REAL, IR_VEC(301));
  for (int i = 0; i < 10; i++)
    ir_output(f, ir_unary(f, ops[i], x));
  IrFunc *g = add(mod, "positive");
  int p = ir_input(g, "p", TY_REAL, IR_MAT(5, 9));
  ir_output(g, ir_unary(g, IR_LOG, p));
  ir_output(g, ir_unary(g, IR_SQRT, p));
  Lib lib = compile(mod);
  check_gen(&lib, f, (Gen){-6, 6, 1});
  check_gen(&lib, g, (Gen){0.01, 50, 1});
  release(&lib, mod);
}
END_TEST

/* out = sigmoid(a * b + bcast(bias)) * exp(-a) / 3 + sin(a): one fused
 * loop; CONST and BCAST feed it inline. */
static int fused_chain(IrFunc *f) {
  int a = ir_input(f, "a", TY_REAL, IR_MAT(6, 37));
  int b = ir_input(f, "b", TY_REAL, IR_MAT(6, 37));
  int bias = ir_input(f, "bias", TY_REAL, IR_VEC(37));
  int z = ir_binary(f, IR_ADD, ir_binary(f, IR_MUL, a, b), ir_bcast(f, bias, 0, IR_MAT(6, 37)));
  int s = ir_binary(f, IR_MUL, ir_unary(f, IR_SIGMOID, z), ir_unary(f, IR_EXP, ir_unary(f, IR_NEG, a)));
  int third = ir_bcast(f, ir_const(f, 1.0 / 3, IR_SCALAR), -1, IR_MAT(6, 37));
  return ir_binary(f, IR_ADD, ir_binary(f, IR_MUL, s, third), ir_unary(f, IR_SIN, a));
}

/* A value used twice: stored once and read by both users. */
static void add_shared_value(IrModule *mod) {
  IrFunc *g = add(mod, "shared");
  int x = ir_input(g, "x", TY_REAL, IR_VEC(50));
  int t = ir_unary(g, IR_TANH, x);
  ir_output(g, ir_binary(g, IR_MUL, t, ir_unary(g, IR_COS, t)));
}

static void build_fused_chains(IrModule *mod) {
  IrFunc *f = add(mod, "chain");
  ir_output(f, fused_chain(f));
  add_shared_value(mod);
  /* a fused chain ending in a column broadcast, and one into a reduction */
  IrFunc *h = add(mod, "rows");
  int m = ir_input(h, "m", TY_REAL, IR_MAT(9, 4));
  int v = ir_input(h, "v", TY_REAL, IR_VEC(9));
  int e = ir_unary(h, IR_EXP, v);
  int y = ir_binary(h, IR_MUL, m, ir_bcast(h, e, 1, IR_MAT(9, 4)));
  ir_output(h, ir_sum(h, ir_binary(h, IR_MUL, y, y), -1));
  ir_output(h, y);
}

static int count(const char *text, const char *needle) {
  int n = 0;
  for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
    n++;
  return n;
}

static char *read_text(const char *path) {
  FILE *fp = fopen(path, "r");
  ck_assert_ptr_nonnull(fp);
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  rewind(fp);
  char *s = calloc(n + 1, 1);
  ck_assert_int_eq(fread(s, 1, n, fp), n);
  fclose(fp);
  return s;
}

/* At O0 kernels stay separate functions, so the IR shows the plan. */
static char *compile_to_text(IrModule *mod, Lib *lib, int opt_level) {
  char ll[128];
  snprintf(ll, sizeof ll, "/tmp/lobe-cg-ll-%d.ll", (int)getpid());
  CgOptions opt = {.emit_llvm = ll, .opt_level = opt_level};
  *lib = compile_opts(mod, &opt);
  char *text = read_text(ll);
  unlink(ll);
  return text;
}

/* After a look at its text, the code must still compute the right thing. */
static void check_text_and_release(Lib *lib, IrModule *mod, char *text, const IrFunc *f,
                                   Gen g) {
  free(text);
  check_gen(lib, f, g);
  release(lib, mod);
}

START_TEST(fusion_rule_in_ir) {
  IrModule *mod = ir_module_new(NULL);
  IrFunc *f = add(mod, "chain");
  ir_output(f, fused_chain(f));
  add_shared_value(mod);
  Lib lib;
  char *text = compile_to_text(mod, &lib, 0);
  ck_assert_int_eq(count(text, "define internal void @lobe_chain_f32.k"), 1);
  ck_assert_int_eq(count(text, "define internal void @lobe_shared_f32.k"), 2);
  ck_assert_int_eq(count(text, "call float @sinf"), 0);
  ck_assert_int_eq(count(text, "call float @expf"), 0);
  ck_assert_int_eq(count(text, "@llvm.sin.f64"), 2);
  check_text_and_release(&lib, mod, text, f, (Gen){-1, 1, 1});
}
END_TEST

/* At O2 the f32 math is inline and the fused loop vectorised: no libm. */
START_TEST(f32_math_vectorised) {
  IrModule *mod = ir_module_new(NULL);
  IrFunc *f = add(mod, "chain");
  int c = fused_chain(f);
  ir_output(f, ir_binary(f, IR_MUL, ir_unary(f, IR_LOG, ir_unary(f, IR_SIGMOID, c)),
                         ir_unary(f, IR_TANH, ir_unary(f, IR_COS, c))));
  Lib lib;
  char *text = compile_to_text(mod, &lib, 2);
  char *f64 = strstr(text, "define void @lobe_chain_f64");
  ck_assert_ptr_nonnull(f64);
  *f64 = 0;   /* look at the f32 function only */
  static const char *const libm[] = {"@sinf", "@cosf", "@expf", "@logf", "@tanhf", "@llvm.sin.f32",
                                     "@llvm.exp.f32", "@llvm.log.f32", "@llvm.cos.f32"};
  for (int i = 0; i < 9; i++)
    ck_assert_msg(!strstr(text, libm[i]), "f32 code calls %s", libm[i]);
  ck_assert_msg(strstr(text, " x float>"), "f32 loop not vectorised");
  check_text_and_release(&lib, mod, text, f, (Gen){-1, 1, 1});
}
END_TEST

/* x -> (x w)^1..5: each product lives until the next is computed, so
 * three ping-pong slots are never needed: two suffice. */
START_TEST(memory_plan_reuses_space) {
  IrModule *mod = ir_module_new(NULL);
  IrFunc *f = add(mod, "plan");
  int x = ir_input(f, "x", TY_REAL, IR_MAT(32, 32));
  int w = ir_input(f, "w", TY_REAL, IR_MAT(32, 32));
  int y = x;
  for (int i = 0; i < 5; i++)
    y = ir_matmul(f, y, w, false, false);
  ir_output(f, y);
  Lib lib;
  char *text = compile_to_text(mod, &lib, 0);
  ck_assert_msg(strstr(text, "@lobe_plan_f32.ws = internal global [8192 x i8] zeroinitializer"),
                "f32 workspace is not two 32x32 slots");
  ck_assert_msg(strstr(text, "@lobe_plan_f64.ws = internal global [16384 x i8] zeroinitializer"),
                "f64 workspace is not two 32x32 slots");
  check_text_and_release(&lib, mod, text, f, (Gen){-0.2, 0.2, 1});
}
END_TEST

/* ---- shape ops -------------------------------------------------------------------- */

static void build_bcast_and_sum(IrModule *mod) {
  IrFunc *f = add(mod, "bcast");
  int m = ir_input(f, "m", TY_REAL, IR_MAT(5, 8));
  int row = ir_input(f, "row", TY_REAL, IR_VEC(8));
  int col = ir_input(f, "col", TY_REAL, IR_VEC(5));
  int s = ir_input(f, "s", TY_REAL, IR_SCALAR);
  ir_output(f, ir_binary(f, IR_ADD, m, ir_bcast(f, row, 0, IR_MAT(5, 8))));
  ir_output(f, ir_binary(f, IR_MUL, m, ir_bcast(f, col, 1, IR_MAT(5, 8))));
  ir_output(f, ir_bcast(f, s, -1, IR_MAT(5, 8)));
  ir_output(f, ir_bcast(f, row, 0, IR_MAT(3, 8)));
  ir_output(f, ir_bcast(f, ir_const(f, 2.5, IR_SCALAR), -1, IR_VEC(4)));
  IrFunc *g = add(mod, "sum");
  int a = ir_input(g, "a", TY_REAL, IR_MAT(17, 11));
  int v = ir_input(g, "v", TY_REAL, IR_VEC(23));
  ir_output(g, ir_sum(g, a, 0));
  ir_output(g, ir_sum(g, a, 1));
  ir_output(g, ir_sum(g, a, -1));
  ir_output(g, ir_sum(g, v, -1));
  ir_output(g, ir_sum(g, ir_unary(g, IR_EXP, a), 0));
  ir_output(g, ir_sum(g, ir_unary(g, IR_SIN, a), 1));
}

static void build_big_reduction(IrModule *mod) {
  IrFunc *f = add(mod, "big");
  int a = ir_input(f, "a", TY_REAL, IR_MAT(300, 200));
  ir_output(f, ir_sum(f, a, -1));
  ir_output(f, ir_sum(f, a, 0));
  ir_output(f, ir_sum(f, ir_binary(f, IR_MUL, a, a), 1));
}

static void build_matmul_all_transposes(IrModule *mod) {
  for (int t = 0; t < 4; t++) {
    bool ta = t & 1, tb = t & 2;
    char name[32];
    snprintf(name, sizeof name, "mm%d%d", ta, tb);
    IrFunc *f = add(mod, name);
    /* op(a) is [7, 5], op(b) is [5, 3] */
    int a = ir_input(f, "a", TY_REAL, ta ? IR_MAT(5, 7) : IR_MAT(7, 5));
    int b = ir_input(f, "b", TY_REAL, tb ? IR_MAT(3, 5) : IR_MAT(5, 3));
    ir_output(f, ir_matmul(f, a, b, ta, tb));
  }
  IrFunc *g = add(mod, "gram");   /* the same buffer as both operands */
  int x = ir_input(g, "x", TY_REAL, IR_MAT(6, 4));
  ir_output(g, ir_matmul(g, x, x, true, false));
}

static void build_concat_slice_pad(IrModule *mod) {
  IrFunc *f = add(mod, "columns");
  int a = ir_input(f, "a", TY_REAL, IR_MAT(4, 3));
  int b = ir_input(f, "b", TY_REAL, IR_MAT(4, 5));
  int c = ir_input(f, "c", TY_REAL, IR_MAT(4, 2));
  int parts[3] = {a, ir_unary(f, IR_COS, b), ir_binary(f, IR_MUL, c, c)};
  int cat = ir_concat(f, parts, 3);
  ir_output(f, cat);
  ir_output(f, ir_slice(f, cat, 2, 5));
  ir_output(f, ir_pad(f, ir_unary(f, IR_EXP, a), 4, 9));
  ir_output(f, ir_slice(f, ir_unary(f, IR_TANH, b), 1, 3));
}

/* Blocks of rows: flat loops, and nested ones where a fused part
 * broadcasts along rows or columns. */
static void build_rows(IrModule *mod) {
  IrFunc *f = add(mod, "rows");
  int a = ir_input(f, "a", TY_REAL, IR_MAT(4, 3));
  int b = ir_input(f, "b", TY_REAL, IR_MAT(2, 3));
  int v = ir_input(f, "v", TY_REAL, IR_VEC(3));
  int col = ir_input(f, "col", TY_REAL, IR_VEC(2));
  int parts[4] = {a, ir_unary(f, IR_ABS, b), ir_bcast(f, v, 0, IR_MAT(5, 3)),
                  ir_binary(f, IR_MUL, b, ir_bcast(f, col, 1, IR_MAT(2, 3)))};
  int cat = ir_concat_rows(f, parts, 4);
  ir_output(f, cat);
  ir_output(f, ir_slice_rows(f, cat, 3, 7));
  ir_output(f, ir_slice_rows(f, ir_unary(f, IR_TANH, a), 1, 2));
  ir_output(f, ir_pad_rows(f, ir_unary(f, IR_DETACH, ir_unary(f, IR_EXP, b)), 3, 6));
  ir_output(f, ir_pad_rows(f, ir_bcast(f, col, 1, IR_MAT(2, 3)), 1, 4));
}

/* i32 constants as the index of gather and scatter_add */
static void build_index_constants(IrModule *mod) {
  IrFunc *f = add(mod, "const_ids");
  int table = ir_input(f, "table", TY_REAL, IR_MAT(4, 5));
  int src = ir_input(f, "src", TY_REAL, IR_MAT(3, 5));
  ir_output(f, ir_gather(f, table, ir_const_i32(f, 2, IR_VEC(3))));
  ir_output(f, ir_scatter_add(f, ir_unary(f, IR_SIN, src), ir_const_i32(f, 3, IR_VEC(3)), 4));
}

static void build_gather_scatter(IrModule *mod) {
  IrFunc *f = add(mod, "rows");
  int table = ir_input(f, "table", TY_REAL, IR_MAT(4, 6));
  int idx = ir_input(f, "idx", TY_I32, IR_VEC(11));
  int src = ir_input(f, "src", TY_REAL, IR_MAT(11, 6));
  ir_output(f, ir_gather(f, table, idx));
  ir_output(f, ir_scatter_add(f, src, idx, 4));
  ir_output(f, ir_scatter_add(f, ir_unary(f, IR_SIGMOID, src), idx, 4));
}

/* An id out of range cannot crash compiled code: its row stays zero. */
START_TEST(gather_out_of_range_is_zero) {
  IrModule *mod = ir_module_new(NULL);
  IrFunc *f = add(mod, "gather");
  int table = ir_input(f, "table", TY_REAL, IR_MAT(2, 3));
  int idx = ir_input(f, "idx", TY_I32, IR_VEC(3));
  ir_output(f, ir_gather(f, table, idx));
  Lib lib = compile(mod);
  float t[6] = {1, 2, 3, 4, 5, 6}, out[9];
  int32_t ids[3] = {1, -7, 2};
  void *args[3] = {t, ids, out};
  entry(&lib, f, "f32")(args);
  float want[9] = {4, 5, 6, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < 9; i++)
    ck_assert_float_eq(out[i], want[i]);
  release(&lib, mod);
}
END_TEST

/* An i32 constant returned is written as int32_t in both precisions. */
START_TEST(index_constant_output) {
  IrModule *mod = ir_module_new(NULL);
  IrFunc *f = add(mod, "ids");
  ir_output(f, ir_const_i32(f, -5, IR_VEC(3)));
  Lib lib = compile(mod);
  for (int p = 0; p < 2; p++) {
    int32_t out[3] = {0};
    void *args[1] = {out};
    entry(&lib, f, p ? "f64" : "f32")(args);
    for (int i = 0; i < 3; i++)
      ck_assert_int_eq(out[i], -5);
  }
  release(&lib, mod);
}
END_TEST

/* Outputs that are inputs, tensors, constants or repeated; dead code. */
static void build_odd_outputs(IrModule *mod) {
  IrFunc *f = add(mod, "odd");
  int x = ir_input(f, "x", TY_REAL, IR_MAT(3, 4));
  double data[4] = {1.5, -2, 0.25, 8};
  int t = ir_tensor(f, data, IR_VEC(4));
  ir_unary(f, IR_LOG, x);   /* dead */
  int y = ir_binary(f, IR_ADD, x, ir_bcast(f, t, 0, IR_MAT(3, 4)));
  ir_output(f, x);
  ir_output(f, t);
  ir_output(f, y);
  ir_output(f, y);
  ir_output(f, ir_const(f, -3, IR_MAT(2, 2)));
  ir_output(f, ir_unary(f, IR_EXP, y));
}

/* ---- a whole MLP and its gradient -------------------------------------------------- */

/* loss = mean((tanh(x w1 + b1) w2 + b2 - y)^2) with a silu second layer */
static IrFunc *mlp_loss(int batch, int in, int hidden, int out) {
  IrFunc *f = ir_func_new("mlp.loss");
  int x = ir_input(f, "x", TY_REAL, IR_MAT(batch, in));
  int w1 = ir_input(f, "w1", TY_REAL, IR_MAT(in, hidden));
  int b1 = ir_input(f, "b1", TY_REAL, IR_VEC(hidden));
  int w2 = ir_input(f, "w2", TY_REAL, IR_MAT(hidden, out));
  int b2 = ir_input(f, "b2", TY_REAL, IR_VEC(out));
  int y = ir_input(f, "y", TY_REAL, IR_MAT(batch, out));
  int z1 = ir_binary(f, IR_ADD, ir_matmul(f, x, w1, false, false),
                     ir_bcast(f, b1, 0, IR_MAT(batch, hidden)));
  int h = ir_unary(f, IR_TANH, z1);
  int z2 = ir_binary(f, IR_ADD, ir_matmul(f, h, w2, false, false),
                     ir_bcast(f, b2, 0, IR_MAT(batch, out)));
  int a2 = ir_binary(f, IR_MUL, z2, ir_unary(f, IR_SIGMOID, z2));
  int d = ir_binary(f, IR_SUB, a2, y);
  int sse = ir_sum(f, ir_binary(f, IR_MUL, d, d), -1);
  ir_output(f, ir_binary(f, IR_MUL, sse, ir_const(f, 1.0 / (batch * out), IR_SCALAR)));
  return f;
}

static void build_mlp_loss_and_gradient(IrModule *mod) {
  IrFunc *loss = mlp_loss(64, 24, 48, 5);
  ir_module_add(mod, loss);
  int wrt[4] = {1, 2, 3, 4};
  IrFunc *grad = ad_grad(loss, wrt, 4, "mlp.grad");
  ir_module_add(mod, grad);
  IrFunc *opt = ad_grad(loss, wrt, 4, "mlp.grad.opt");
  pass_run_all(opt, NULL, NULL);
  ir_module_add(mod, opt);
}

/* Modules whose every function is checked against the interpreter. */
typedef struct ModuleCase {
  const char *name;
  void (*build)(IrModule *mod);
  Gen gen;
} ModuleCase;

static const ModuleCase module_cases[] = {
  {"binary_ops", build_binary_ops, {0.5, 2, 1}},
  {"fused_chains", build_fused_chains, {-1, 1, 1}},
  {"bcast_and_sum", build_bcast_and_sum, {-1, 1, 1}},
  {"big_reduction", build_big_reduction, {0, 1, 1}},
  {"matmul_all_transposes", build_matmul_all_transposes, {-1, 1, 1}},
  {"concat_slice_pad", build_concat_slice_pad, {-1, 1, 1}},
  {"gather_scatter", build_gather_scatter, {-1, 1, 4}},
  {"rows", build_rows, {-1, 1, 1}},
  {"index_constants", build_index_constants, {-1, 1, 1}},
  {"odd_outputs", build_odd_outputs, {-1, 1, 1}},
  {"mlp_loss_and_gradient", build_mlp_loss_and_gradient, {-1, 1, 1}},
};
enum { NMODULE_CASES = sizeof module_cases / sizeof module_cases[0] };

START_TEST(modules_match_interpreter) {
  const ModuleCase *c = &module_cases[_i];
  IrModule *mod = ir_module_new(NULL);
  c->build(mod);
  ck_assert_msg(mod->nfuncs > 0, "%s builds nothing", c->name);
  check_module(mod, c->gen);
}
END_TEST

/* ---- f32 polynomial math ------------------------------------------------------------ */

/* Compiles out[i] = op(x[i]) for n floats and runs it. */
static void run_f32(IrOp op, const float *x, float *out, int n) {
  IrModule *mod = ir_module_new(NULL);
  IrFunc *f = add(mod, ir_op_name(op));
  ir_output(f, ir_unary(f, op, ir_input(f, "x", TY_REAL, IR_VEC(n))));
  Lib lib = compile(mod);
  void *args[2] = {(void *)x, out};
  entry(&lib, f, "f32")(args);
  release(&lib, mod);
}

static double reference(IrOp op, double x) {
  switch (op) {
  case IR_EXP: return exp(x);
  case IR_LOG: return log(x);
  case IR_SIN: return sin(x);
  case IR_COS: return cos(x);
  case IR_TANH: return tanh(x);
  default: return 1 / (1 + exp(-x));
  }
}

/* Largest relative error of op over x[0..n), with |want| below `floor`
 * measured absolutely against floor (subnormal results). */
static double math_error(IrOp op, const float *x, int n, double floor_, int *worst) {
  float *out = malloc(n * sizeof *out);
  run_f32(op, x, out, n);
  double e = 0;
  for (int i = 0; i < n; i++) {
    double want = reference(op, x[i]);
    double d = want == out[i] ? 0 : fabs(out[i] - want) / fmax(fabs(want), floor_);
    if (isnan(want) != isnan(out[i]))
      d = INFINITY;
    if (d > e) {
      e = d;
      *worst = i;
    }
  }
  free(out);
  return e;
}

/* Evenly spread points in [lo, hi], plus every small power of two. */
static float *spread(double lo, double hi, int n) {
  float *x = malloc(n * sizeof *x);
  unsigned seed = 99;
  for (int i = 0; i < n; i++)
    x[i] = (float)(lo + (hi - lo) * (i % 2 ? uniform(&seed) : (double)i / (n - 1)));
  for (int i = 0; i < 40 && i < n / 4; i++)
    x[4 * i + 2] = ldexpf(i % 2 ? -1.0f : 1.0f, -i);
  return x;
}

static void expect_accuracy(IrOp op, double lo, double hi, double tol, double floor_) {
  int n = 200000, worst = 0;
  float *x = spread(lo, hi, n);
  double e = math_error(op, x, n, floor_, &worst);
  ck_assert_msg(e < tol, "%s over [%g, %g]: relative error %g at x = %.9g", ir_op_name(op),
                lo, hi, e, x[worst]);
  free(x);
}

START_TEST(math_sin_cos) {
  expect_accuracy(IR_SIN, -3.5, 3.5, 1e-6, 1e-30);
  expect_accuracy(IR_SIN, -1e5, 1e5, 1e-6, 1e-3);
  expect_accuracy(IR_COS, -3.5, 3.5, 1e-6, 1e-30);
  expect_accuracy(IR_COS, -1e5, 1e5, 1e-6, 1e-3);
  expect_accuracy(IR_SIN, -1e6, 1e6, 1e-6, 1e-3);
}
END_TEST

START_TEST(math_exp_log) {
  expect_accuracy(IR_EXP, -87, 88.7, 1e-6, 1e-30);
  expect_accuracy(IR_EXP, -104, -87, 1e-6, 0x1p-126);    /* gradual underflow */
  expect_accuracy(IR_EXP, -1e-3, 1e-3, 1e-6, 1e-30);
  expect_accuracy(IR_LOG, 1e-30, 1e30, 1e-6, 1e-30);
  expect_accuracy(IR_LOG, 0.5, 2, 1e-6, 1e-30);
  expect_accuracy(IR_LOG, 1e-44, 1e-38, 1e-6, 1e-30);    /* subnormal inputs */
}
END_TEST

START_TEST(math_tanh_sigmoid) {
  expect_accuracy(IR_TANH, -20, 20, 1e-6, 1e-30);
  expect_accuracy(IR_TANH, -0.7, 0.7, 1e-6, 1e-30);
  expect_accuracy(IR_SIGMOID, -80, 80, 1e-6, 1e-30);
}
END_TEST

START_TEST(math_special_values) {
  enum { N = 8 };
  float x[N] = {INFINITY, -INFINITY, NAN, 0.0f, -0.0f, 89.0f, -200.0f, -1.0f};
  float out[N];
  run_f32(IR_EXP, x, out, N);
  ck_assert(isinf(out[0]) && out[0] > 0);
  ck_assert_float_eq(out[1], 0);
  ck_assert(isnan(out[2]));
  ck_assert_float_eq(out[3], 1);
  ck_assert(isinf(out[5]));
  ck_assert_float_eq(out[6], 0);
  run_f32(IR_LOG, x, out, N);
  ck_assert(isinf(out[0]) && out[0] > 0);
  ck_assert(isnan(out[1]) && isnan(out[2]) && isnan(out[7]));
  ck_assert(isinf(out[3]) && out[3] < 0);
  run_f32(IR_SIN, x, out, N);
  ck_assert(isnan(out[0]) && isnan(out[1]) && isnan(out[2]));
  ck_assert_float_eq(out[3], 0);
  run_f32(IR_TANH, x, out, N);
  ck_assert_float_eq(out[0], 1);
  ck_assert_float_eq(out[1], -1);
  ck_assert(isnan(out[2]));
  run_f32(IR_SIGMOID, x, out, N);
  ck_assert_float_eq(out[0], 1);
  ck_assert_float_eq(out[1], 0);
  ck_assert_float_eq(out[3], 0.5f);
}
END_TEST

/* ---- descriptor ---------------------------------------------------------------------- */

/* forward: (w[2,3], b[3], t[4], module[4], subject[4]) -> t w-ish output;
 * the functions only need the right signatures here. */
static IrFunc *tiny_forward(const char *name, bool with_y) {
  IrFunc *f = ir_func_new(name);
  int w = ir_input(f, "w", TY_REAL, IR_MAT(2, 3));
  int b = ir_input(f, "b", TY_REAL, IR_VEC(3));
  int t = ir_input(f, "t", TY_REAL, IR_VEC(4));
  ir_input(f, "module", TY_I32, IR_VEC(4));
  ir_input(f, "subject", TY_I32, IR_VEC(4));
  int y = with_y ? ir_input(f, "y", TY_REAL, IR_MAT(4, 3)) : -1;
  int tt = ir_bcast(f, t, 1, IR_MAT(4, 2));
  int out = ir_binary(f, IR_ADD, ir_matmul(f, tt, w, false, false),
                      ir_bcast(f, b, 0, IR_MAT(4, 3)));
  if (!with_y) {
    ir_output(f, out);
    return f;
  }
  int d = ir_binary(f, IR_SUB, out, y);
  ir_output(f, ir_sum(f, ir_binary(f, IR_MUL, d, d), -1));
  return f;
}

typedef struct TinyModel {
  Model m;
  AunnDef aunn;
  Region region;
  Subject subject;
  Source source;
  LossTerm losses[2];
  char *channel_names[3];
  Edge edge;
} TinyModel;

static void tiny_model(TinyModel *t) {
  memset(t, 0, sizeof *t);
  t->aunn.name = "cortex";
  t->region = (Region){.name = "V1", .aunn = 0};
  t->subject = (Subject){.name = "m1"};
  t->channel_names[0] = "a";
  t->channel_names[1] = "b";
  t->channel_names[2] = "c";
  t->source = (Source){.name = "V1.m1", .region = 0, .subject = 0, .kind = SRC_NPY,
                       .path = "/data/v1.npy", .rate = 100, .t0 = 0.5, .channels = 3,
                       .channel_names = t->channel_names};
  t->losses[0] = (LossTerm){.kind = LOSS_MSE, .weight = 0.25, .source = 0};
  t->losses[1] = (LossTerm){.kind = LOSS_MSE, .weight = 0.5, .source = 0};
  t->m = (Model){.spec_path = "/x/y/brain.v2.lobe", .aunns = &t->aunn, .naunns = 1,
                 .regions = &t->region, .nregions = 1, .subjects = &t->subject,
                 .nsubjects = 1, .sources = &t->source, .nsources = 1,
                 .losses = t->losses, .nlosses = 2,
                 .train = {.steps = 77, .batch = 4, .window = 1, .lr = 1e-3, .beta1 = 0.9,
                           .beta2 = 0.999, .eps = 1e-8, .seed = 0x123456789abcULL,
                           .checkpoint_every = 5}};
}

static IrModule *tiny_module(const TinyModel *t) {
  IrModule *mod = ir_module_new(&t->m);
  mod->nparams = 2;
  mod->params = calloc(2, sizeof *mod->params);
  mod->params[0] = (IrParam){.name = strdup("cortex.w"), .rank = 2, .rows = 2, .cols = 3,
                             .init = LOBE_INIT_UNIFORM, .scale = 0.5};
  mod->params[1] = (IrParam){.name = strdup("cortex.b"), .rank = 1, .rows = 1, .cols = 3,
                             .init = LOBE_INIT_ZEROS};
  mod->source_fns = calloc(1, sizeof *mod->source_fns);
  IrSourceFns *fns = mod->source_fns;
  fns->forward = ir_module_add(mod, tiny_forward("forward.V1.m1", false));
  IrFunc *loss = tiny_forward("loss.V1.m1", true);
  int wrt[2] = {1, 0};
  fns->loss_grad = ir_module_add(mod, ad_grad(loss, wrt, 2, "loss_grad.V1.m1"));
  ir_func_free(loss);
  fns->loss_held = -1;
  fns->ngrad = 2;
  fns->grad_params = malloc(2 * sizeof *fns->grad_params);
  fns->grad_params[0] = 1;
  fns->grad_params[1] = 0;
  return mod;
}

static void check_desc_source(const lobe_source *s, const Lib *lib, const IrModule *mod) {
  ck_assert_str_eq(s->name, "V1.m1");
  ck_assert_int_eq(s->region, 0);
  ck_assert_int_eq(s->subject, 0);
  ck_assert_int_eq(s->kind, LOBE_SRC_NPY);
  ck_assert_str_eq(s->path, "/data/v1.npy");
  ck_assert_double_eq(s->rate, 100);
  ck_assert_double_eq(s->t0, 0.5);
  ck_assert_int_eq(s->channels, 3);
  ck_assert_str_eq(s->channel_names[2], "c");
  ck_assert_int_eq(s->loss_kind, LOBE_LOSS_MSE);
  ck_assert_double_eq(s->loss_weight, 0.75);
  ck_assert_ptr_eq((void *)s->forward_f32, (void *)entry(lib, mod->funcs[mod->source_fns[0].forward], "f32"));
  ck_assert_ptr_eq((void *)s->loss_grad_f32, (void *)entry(lib, mod->funcs[mod->source_fns[0].loss_grad], "f32"));
  ck_assert_ptr_eq((void *)s->loss_grad_f64, (void *)entry(lib, mod->funcs[mod->source_fns[0].loss_grad], "f64"));
  ck_assert_int_eq(s->ngrad, 2);
  ck_assert_int_eq(s->grad_params[0], 1);
  ck_assert_int_eq(s->grad_params[1], 0);
  ck_assert_ptr_null((void *)s->loss_held_f64);
}

/* Calling through the descriptor: out = t w + b with w = 1, b = 2. */
static void call_forward(const lobe_source *s) {
  float w[6] = {1, 1, 1, 1, 1, 1}, b[3] = {2, 2, 2}, t[4] = {0, 1, 2, 3}, out[12];
  int32_t ids[4] = {0, 0, 0, 0};
  void *args[6] = {w, b, t, ids, ids, out};
  s->forward_f32(args);
  for (int i = 0; i < 12; i++)
    ck_assert_float_eq(out[i], 2 * t[i / 3] + 2);
}

/* Compiles mod with its descriptor and finds the descriptor in it. */
static const lobe_model *load_descriptor(Lib *lib, const IrModule *mod, int opt_level) {
  CgOptions opt = {.opt_level = opt_level, .descriptor = true};
  *lib = compile_opts(mod, &opt);
  const lobe_model *d = dlsym(lib->handle, "lobe_model_desc");
  ck_assert_ptr_nonnull(d);
  return d;
}

START_TEST(descriptor_reads_back) {
  TinyModel t;
  tiny_model(&t);
  IrModule *mod = tiny_module(&t);
  Lib lib;
  const lobe_model *d = load_descriptor(&lib, mod, 2);
  ck_assert_int_eq(d->abi_version, LOBE_ABI_VERSION);
  ck_assert_str_eq(d->name, "brain.v2");
  ck_assert_str_eq(d->spec_path, "/x/y/brain.v2.lobe");
  ck_assert_int_eq(d->nparams, 2);
  ck_assert_str_eq(d->params[0].name, "cortex.w");
  ck_assert_int_eq(d->params[0].rows, 2);
  ck_assert_int_eq(d->params[0].cols, 3);
  ck_assert_int_eq(d->params[0].init, LOBE_INIT_UNIFORM);
  ck_assert_double_eq(d->params[0].scale, 0.5);
  ck_assert_int_eq(d->params[1].rows, 1);
  ck_assert_int_eq(d->nregions, 1);
  ck_assert_str_eq(d->regions[0].name, "V1");
  ck_assert_str_eq(d->regions[0].aunn, "cortex");
  ck_assert_int_eq(d->nsubjects, 1);
  ck_assert_str_eq(d->subjects[0], "m1");
  ck_assert_int_eq(d->nsources, 1);
  check_desc_source(&d->sources[0], &lib, mod);
  ck_assert_int_eq(d->batch, 4);
  ck_assert_int_eq(d->steps, 77);
  ck_assert_double_eq(d->lr, 1e-3);
  ck_assert_double_eq(d->beta1, 0.9);
  ck_assert_double_eq(d->beta2, 0.999);
  ck_assert_double_eq(d->eps, 1e-8);
  ck_assert(d->seed == 0x123456789abcULL);
  ck_assert_int_eq(d->checkpoint_every, 5);
  ck_assert_int_eq(d->window, 1);
  call_forward(&d->sources[0]);
  release(&lib, mod);
}
END_TEST

/* A delayed self-edge with a prior on its gate (param 2), a window of 4
 * steps, a poisson source: prior(w, b, gate) = 0.5 |gate|. */
static void tiny_graph(TinyModel *t, IrModule *mod) {
  t->edge = (Edge){.from = 0, .to = 0, .delay = 0.02, .l1 = 0.25, .distance = 5,
                   .length = 0.05};
  t->m.edges = &t->edge;
  t->m.nedges = 1;
  t->m.train.window = 4;
  mod->params = realloc(mod->params, 3 * sizeof *mod->params);
  mod->params[2] = (IrParam){.name = strdup("gate.V1->V1@20ms"), .rank = 1, .rows = 1,
                             .cols = 1, .init = LOBE_INIT_CONSTANT, .scale = 1};
  mod->nparams = 3;
  mod->gate_params = malloc(sizeof *mod->gate_params);
  mod->gate_params[0] = 2;
  IrFunc *f = ir_func_new("prior.loss");
  ir_input(f, "w", TY_REAL, IR_MAT(2, 3));
  ir_input(f, "b", TY_REAL, IR_VEC(3));
  int gate = ir_sum(f, ir_input(f, "gate", TY_REAL, IR_VEC(1)), -1);
  ir_output(f, ir_binary(f, IR_MUL, ir_const(f, 0.5, IR_SCALAR), ir_unary(f, IR_ABS, gate)));
  mod->nprior = 1;
  mod->prior_params = malloc(sizeof *mod->prior_params);
  mod->prior_params[0] = 2;
  mod->prior = ir_module_add(mod, ad_grad(f, mod->prior_params, 1, "prior"));
  ir_func_free(f);
  mod->source_fns[0].loss = LOSS_POISSON;
  mod->source_fns[0].loss_held = mod->source_fns[0].loss_grad;   /* any f64 function */
}

START_TEST(descriptor_graph) {
  TinyModel t;
  tiny_model(&t);
  IrModule *mod = tiny_module(&t);
  tiny_graph(&t, mod);
  Lib lib;
  const lobe_model *d = load_descriptor(&lib, mod, 2);
  ck_assert_int_eq(d->window, 4);
  ck_assert_int_eq(d->nedges, 1);
  const lobe_edge *e = &d->edges[0];
  ck_assert(e->from == 0 && e->to == 0 && e->gate == 2);
  ck_assert(e->delay == 0.02 && e->l1 == 0.25 && e->distance == 5 && e->length == 0.05);
  ck_assert_int_eq(d->params[2].init, LOBE_INIT_CONSTANT);
  ck_assert_double_eq(d->params[2].scale, 1);
  ck_assert_int_eq(d->sources[0].loss_kind, LOBE_LOSS_POISSON);
  ck_assert_ptr_eq((void *)d->sources[0].loss_held_f64,
                   (void *)entry(&lib, mod->funcs[mod->source_fns[0].loss_grad], "f64"));
  ck_assert_ptr_eq((void *)d->prior_f32, (void *)entry(&lib, mod->funcs[mod->prior], "f32"));
  ck_assert_ptr_eq((void *)d->prior_f64, (void *)entry(&lib, mod->funcs[mod->prior], "f64"));
  ck_assert_int_eq(d->nprior_grad, 1);
  ck_assert_int_eq(d->prior_grad_params[0], 2);
  ck_assert_int_eq(d->batch, 4);   /* the fields after the new ones still line up */
  ck_assert_int_eq(d->checkpoint_every, 5);
  float w[6] = {0}, b[3] = {0}, gate[1] = {-3}, loss[1], grad[1];
  void *args[5] = {w, b, gate, loss, grad};
  d->prior_f32(args);
  ck_assert(loss[0] == 1.5f && grad[0] == -0.5f);
  release(&lib, mod);
}
END_TEST

START_TEST(descriptor_defaults) {
  TinyModel t;
  tiny_model(&t);
  t.source.channel_names = NULL;
  t.source.kind = SRC_CSV;
  t.m.nlosses = 0;
  t.m.spec_path = "plain";
  IrModule *mod = tiny_module(&t);
  Lib lib;
  const lobe_model *d = load_descriptor(&lib, mod, 1);
  ck_assert_str_eq(d->name, "plain");
  ck_assert_int_eq(d->sources[0].kind, LOBE_SRC_CSV);
  ck_assert_str_eq(d->sources[0].channel_names[0], "ch0");
  ck_assert_str_eq(d->sources[0].channel_names[2], "ch2");
  ck_assert_double_eq(d->sources[0].loss_weight, 0);
  ck_assert_int_eq(d->nedges, 0);
  ck_assert_ptr_null(d->edges);
  ck_assert_ptr_null((void *)d->prior_f32);
  ck_assert_ptr_null((void *)d->prior_f64);
  ck_assert_int_eq(d->nprior_grad, 0);
  release(&lib, mod);
}
END_TEST

/* The runtime's own `info` reads the descriptor of a linked executable. */
START_TEST(executable_runs) {
  TinyModel t;
  tiny_model(&t);
  IrModule *mod = tiny_module(&t);
  char dir[] = "/tmp/lobe-cg-XXXXXX", obj[64], exe[64], err[2048], cmd[128];
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(obj, sizeof obj, "%s/brain.o", dir);
  snprintf(exe, sizeof exe, "%s/brain", dir);
  CgOptions opt = {.opt_level = 2, .descriptor = true};
  ck_assert_msg(cg_emit_object(mod, &opt, obj, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(link_executable(obj, exe, false, err, sizeof err) == 0, "%s", err);
  snprintf(cmd, sizeof cmd, "%s info", exe);
  FILE *out = popen(cmd, "r");
  ck_assert_ptr_nonnull(out);
  char text[8192];
  size_t n = fread(text, 1, sizeof text - 1, out);
  text[n] = 0;
  ck_assert_int_eq(pclose(out), 0);
  ck_assert_msg(strstr(text, "cortex.w"), "info output: %s", text);
  unlink(obj);
  unlink(exe);
  rmdir(dir);
  ir_module_free(mod);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------ */

START_TEST(errors_are_reported) {
  char err[1024] = "";
  IrModule *mod = ir_module_new(NULL);
  IrFunc *f = add(mod, "bad");
  int x = ir_input(f, "x", TY_REAL, IR_VEC(3));
  ir_output(f, ir_unary(f, IR_EXP, x));
  CgOptions opt = {.opt_level = 2};
  ck_assert_int_eq(cg_emit_object(mod, &opt, "/nonexistent/dir/out.o", err, sizeof err), -1);
  ck_assert_msg(strstr(err, "/nonexistent/dir/out.o"), "%s", err);
  opt.descriptor = true;
  ck_assert_int_eq(cg_emit_object(mod, &opt, "/tmp/never.o", err, sizeof err), -1);
  ck_assert_msg(strstr(err, "descriptor"), "%s", err);
  f->ins[1].args[0] = 5;   /* not an earlier value */
  opt.descriptor = false;
  ck_assert_int_eq(cg_emit_object(mod, &opt, "/tmp/never.o", err, sizeof err), -1);
  ck_assert_msg(strstr(err, "bad"), "%s", err);
  f->ins[1].args[0] = 0;
  IrFunc *twin = add(mod, "bad");   /* same symbol twice */
  ir_output(twin, ir_input(twin, "x", TY_REAL, IR_SCALAR));
  ck_assert_int_eq(cg_emit_object(mod, &opt, "/tmp/never.o", err, sizeof err), -1);
  ck_assert_msg(strstr(err, "lobe_bad_f32"), "%s", err);
  ir_module_free(mod);
}
END_TEST

START_TEST(link_errors_are_reported) {
  char err[2048] = "";
  ck_assert_int_eq(link_executable("/nonexistent/in.o", "/tmp/lobe-never.so", true, err,
                                   sizeof err), -1);
  ck_assert_msg(strstr(err, "exited with status"), "%s", err);
  ck_assert_msg(strstr(err, "/nonexistent/in.o"), "compiler output missing: %s", err);
  setenv("LOBE_CC", "/nonexistent/cc", 1);
  ck_assert_int_eq(link_executable("/tmp/in.o", "/tmp/lobe-never.so", true, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "cannot run"), "%s", err);
  unsetenv("LOBE_CC");
  setenv("LOBE_RT_LIB", "/nonexistent/liblobe_rt.a", 1);
  ck_assert_int_eq(link_executable("/tmp/in.o", "/tmp/lobe-never", false, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "LOBE_RT_LIB"), "%s", err);
  unsetenv("LOBE_RT_LIB");
}
END_TEST

START_TEST(symbol_names) {
  IrFunc *f = ir_func_new("loss_grad.V1.m-1");
  char buf[64];
  cg_symbol(f, "f64", buf, sizeof buf);
  ck_assert_str_eq(buf, "lobe_loss_grad_V1_m_1_f64");
  cg_symbol(f, "f32", buf, 4);
  ck_assert_str_eq(buf, "lob");
  ir_func_free(f);
}
END_TEST

int main(void) {
  Suite *s = suite_create("codegen");
  TCase *ops = tcase_create("ops");
  tcase_set_timeout(ops, 60);
  tcase_add_loop_test(ops, modules_match_interpreter, 0, NMODULE_CASES);
  tcase_add_test(ops, unary_ops);
  tcase_add_test(ops, fusion_rule_in_ir);
  tcase_add_test(ops, f32_math_vectorised);
  tcase_add_test(ops, memory_plan_reuses_space);
  tcase_add_test(ops, gather_out_of_range_is_zero);
  tcase_add_test(ops, index_constant_output);
  suite_add_tcase(s, ops);
  TCase *math = tcase_create("math");
  tcase_set_timeout(math, 60);
  tcase_add_test(math, math_sin_cos);
  tcase_add_test(math, math_exp_log);
  tcase_add_test(math, math_tanh_sigmoid);
  tcase_add_test(math, math_special_values);
  suite_add_tcase(s, math);
  TCase *desc = tcase_create("descriptor");
  tcase_set_timeout(desc, 60);
  tcase_add_test(desc, descriptor_reads_back);
  tcase_add_test(desc, descriptor_defaults);
  tcase_add_test(desc, descriptor_graph);
  tcase_add_test(desc, executable_runs);
  tcase_add_test(desc, errors_are_reported);
  tcase_add_test(desc, link_errors_are_reported);
  tcase_add_test(desc, symbol_names);
  suite_add_tcase(s, desc);
  return test_run_suite(s);
}
