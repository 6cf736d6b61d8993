/*
 * test_codegen_c.c — the C backend (codegen_c.c) against the interpreter.
 *
 * Each test builds an IR function by hand, prints it with cg_c_function,
 * compiles the text with the system C compiler into a shared object, loads
 * it and compares its f32 outputs on random inputs with interp_run to
 * relative 1e-4. Together the functions use every op; one more test checks
 * that a malformed function is refused with a message.
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
#include "test_util.h"

typedef void (*CKernel)(const void *const *in, void *const *out);

typedef struct CLib {
  void *handle;
  char dir[64];
} CLib;

/* Prints f as C, compiles it with cc into a fresh folder and loads it. */
static CKernel compile_c(const IrFunc *f, CLib *lib) {
  snprintf(lib->dir, sizeof lib->dir, "/tmp/lobe-cgc-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(lib->dir));
  char c_path[128], so_path[128], cmd[512], err[256];
  snprintf(c_path, sizeof c_path, "%s/k.c", lib->dir);
  snprintf(so_path, sizeof so_path, "%s/k.so", lib->dir);
  FILE *out = fopen(c_path, "w");
  ck_assert_ptr_nonnull(out);
  fputs("#include <math.h>\n#include <stdint.h>\n#include <string.h>\n", out);
  ck_assert_msg(cg_c_function(out, f, "kernel", false, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(fclose(out), 0);
  snprintf(cmd, sizeof cmd, "cc -std=c99 -Wall -Werror -Wno-unused-variable -O1 -fPIC "
           "-shared -o %s %s -lm", so_path, c_path);
  ck_assert_msg(system(cmd) == 0, "cc failed on %s", c_path);
  lib->handle = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
  ck_assert_msg(lib->handle != NULL, "%s", dlerror());
  unlink(c_path);
  unlink(so_path);
  rmdir(lib->dir);
  CKernel k = (CKernel)dlsym(lib->handle, "kernel");
  ck_assert_ptr_nonnull(k);
  return k;
}

static double uniform(unsigned *state) {
  *state = *state * 1103515245u + 12345u;
  return ((*state >> 8) & 0xffffff) / 16777216.0;
}

/* Reals in [-2, 2), ids in [0, ids) (ids + 1 makes some out of range). */
static double *random_input(const IrFunc *f, int k, unsigned *seed, int ids) {
  const IrInstr *x = &f->ins[ir_input_value(f, k)];
  long n = ir_numel(x->shape);
  double *v = malloc(n * sizeof *v);
  for (long i = 0; i < n; i++) {
    double u = uniform(seed);
    v[i] = x->type == TY_I32 ? floor(u * ids) : 4 * u - 2;
  }
  return v;
}

/* Runs f both ways on the same inputs and compares every output. */
static void check_against_interp(IrFunc *f, int ids) {
  CLib lib;
  CKernel kernel = compile_c(f, &lib);
  unsigned seed = 7;
  double *in[8];
  void *cin[8], *cout[8];
  double *ref[8];
  ck_assert_int_le(f->ninputs, 8);
  ck_assert_int_le(f->noutputs, 8);
  for (int k = 0; k < f->ninputs; k++) {
    in[k] = random_input(f, k, &seed, ids);
    const IrInstr *x = &f->ins[ir_input_value(f, k)];
    long n = ir_numel(x->shape);
    cin[k] = malloc(n * 4);
    for (long i = 0; i < n; i++)
      if (x->type == TY_I32)
        ((int32_t *)cin[k])[i] = (int32_t)in[k][i];
      else
        ((float *)cin[k])[i] = (float)in[k][i];
  }
  for (int o = 0; o < f->noutputs; o++) {
    long n = ir_numel(f->ins[f->outputs[o]].shape);
    ref[o] = calloc(n, sizeof **ref);
    cout[o] = calloc(n, sizeof(float));
  }
  char err[256];
  ck_assert_msg(interp_run(f, (const double *const *)in, ref, err, sizeof err) == 0, "%s", err);
  kernel((const void *const *)cin, cout);
  for (int o = 0; o < f->noutputs; o++) {
    long n = ir_numel(f->ins[f->outputs[o]].shape);
    for (long i = 0; i < n; i++) {
      double got = ((float *)cout[o])[i], want = ref[o][i];
      ck_assert_msg(fabs(got - want) <= 1e-4 * fmax(1.0, fabs(want)),
                    "%s output %d element %ld: C %g, interpreter %g", f->name, o, i, got, want);
    }
    free(ref[o]);
    free(cout[o]);
  }
  for (int k = 0; k < f->ninputs; k++) {
    free(in[k]);
    free(cin[k]);
  }
  dlclose(lib.handle);
  ir_func_free(f);
}

/* Every unary op over a matrix, bcast of all three kinds, sums, const. */
START_TEST(elementwise_and_shapes) {
  IrFunc *f = ir_func_new("elementwise");
  int x = ir_input(f, "x", TY_REAL, IR_MAT(5, 3));
  int v = ir_input(f, "v", TY_REAL, IR_VEC(3));
  int c = ir_input(f, "c", TY_REAL, IR_VEC(5));
  IrOp unary[] = {IR_NEG, IR_EXP, IR_SIN, IR_COS, IR_TANH, IR_SIGMOID, IR_RELU,
                  IR_STEP, IR_ABS, IR_DETACH};
  int acc = ir_binary(f, IR_ADD, x, ir_bcast(f, v, 0, IR_MAT(5, 3)));
  acc = ir_binary(f, IR_SUB, acc, ir_bcast(f, c, 1, IR_MAT(5, 3)));
  for (size_t k = 0; k < sizeof unary / sizeof unary[0]; k++)
    acc = ir_binary(f, IR_ADD, acc, ir_unary(f, unary[k], x));
  int pos = ir_binary(f, IR_ADD, ir_unary(f, IR_ABS, x), ir_const(f, 0.5, IR_MAT(5, 3)));
  acc = ir_binary(f, IR_MUL, acc, ir_unary(f, IR_SQRT, pos));
  acc = ir_binary(f, IR_DIV, acc, ir_unary(f, IR_LOG, ir_binary(f, IR_ADD, pos, pos)));
  int total = ir_sum(f, acc, -1);
  ir_output(f, acc);
  ir_output(f, ir_sum(f, acc, 0));
  ir_output(f, ir_sum(f, acc, 1));
  ir_output(f, ir_bcast(f, total, -1, IR_MAT(2, 2)));
  check_against_interp(f, 1);
}
END_TEST

/* All four transpose combinations, and a tensor constant. */
START_TEST(matmul) {
  IrFunc *f = ir_func_new("matmul");
  int a = ir_input(f, "a", TY_REAL, IR_MAT(4, 6));
  int b = ir_input(f, "b", TY_REAL, IR_MAT(6, 3));
  int at = ir_input(f, "at", TY_REAL, IR_MAT(6, 4));
  int bt = ir_input(f, "bt", TY_REAL, IR_MAT(3, 6));
  double data[3] = {1.5, -2.0, 0.25};
  int w = ir_bcast(f, ir_tensor(f, data, IR_VEC(3)), 0, IR_MAT(4, 3));
  ir_output(f, ir_binary(f, IR_MUL, ir_matmul(f, a, b, false, false), w));
  ir_output(f, ir_matmul(f, at, b, true, false));
  ir_output(f, ir_matmul(f, a, bt, false, true));
  ir_output(f, ir_matmul(f, at, bt, true, true));
  check_against_interp(f, 1);
}
END_TEST

/* Concat, slice and pad along columns and rows. */
START_TEST(concat_slice_pad) {
  IrFunc *f = ir_func_new("blocks");
  int a = ir_input(f, "a", TY_REAL, IR_MAT(4, 3));
  int b = ir_input(f, "b", TY_REAL, IR_MAT(4, 2));
  int cols[2] = {a, b}, rows[2] = {a, a};
  int side = ir_concat(f, cols, 2);
  int stack = ir_concat_rows(f, rows, 2);
  ir_output(f, side);
  ir_output(f, stack);
  ir_output(f, ir_slice(f, side, 1, 3));
  ir_output(f, ir_slice_rows(f, stack, 3, 4));
  ir_output(f, ir_pad(f, b, 2, 6));
  ir_output(f, ir_pad_rows(f, a, 1, 7));
  check_against_interp(f, 1);
}
END_TEST

/* Gather and scatter_add with ids, constant ids included. */
START_TEST(gather_scatter) {
  IrFunc *f = ir_func_new("tables");
  int table = ir_input(f, "table", TY_REAL, IR_MAT(5, 3));
  int idx = ir_input(f, "idx", TY_I32, IR_VEC(7));
  int src = ir_input(f, "src", TY_REAL, IR_MAT(7, 3));
  int fixed = ir_const_i32(f, 2, IR_VEC(4));
  ir_output(f, ir_gather(f, table, idx));
  ir_output(f, ir_gather(f, table, fixed));
  ir_output(f, ir_scatter_add(f, src, idx, 5));
  check_against_interp(f, 5);
}
END_TEST

/* A function that fails ir_verify is refused, with its message. */
START_TEST(refuses_malformed) {
  IrFunc *f = ir_func_new("bad");
  int x = ir_input(f, "x", TY_REAL, IR_VEC(3));
  ir_output(f, ir_unary(f, IR_NEG, x));
  f->ins[1].args[0] = 5;   /* an operand after its user */
  char err[256] = "";
  MemText m;
  FILE *out = memtext_open(&m);
  ck_assert_int_eq(cg_c_function(out, f, "kernel", true, err, sizeof err), -1);
  ck_assert_msg(err[0] != 0, "no message");
  free(memtext_close(&m));
  f->ins[1].args[0] = x;
  ir_func_free(f);
}
END_TEST

int main(void) {
  if (system("cc --version > /dev/null 2>&1") != 0) {
    puts("test_codegen_c: no C compiler, skipped");
    return EXIT_SUCCESS;
  }
  Suite *s = suite_create("codegen_c");
  TCase *tc = tcase_create("c");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, elementwise_and_shapes);
  tcase_add_test(tc, matmul);
  tcase_add_test(tc, concat_slice_pad);
  tcase_add_test(tc, gather_scatter);
  tcase_add_test(tc, refuses_malformed);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
