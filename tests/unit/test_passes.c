/*
 * test_passes.c — each pass on small functions, compared in printed form;
 * the pipeline's order and dumps; and that the whole pipeline leaves the
 * interpreter's results on an MLP gradient function unchanged.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "test_util.h"

/* Runs pass on f, checks the result verifies and prints as `want`. */
static void expect_after(IrFunc *f, void (*pass)(IrFunc *), const char *want) {
  pass(f);
  assert_valid(f);
  char *text = print_to_string(f);
  ck_assert_str_eq(text, want);
  free(text);
}

/* ---- fold ------------------------------------------------------------------- */

START_TEST(test_fold_constants) {
  IrFunc *f = ir_func_new("fold");
  int x = ir_input(f, "x", TY_REAL, IR_VEC(2));
  int two = ir_const(f, 2, IR_VEC(2));
  int three = ir_const(f, 3, IR_VEC(2));
  int five = ir_binary(f, IR_ADD, two, three);
  double data[] = {1, 2};
  int t = ir_tensor(f, data, IR_VEC(2));
  int product = ir_binary(f, IR_MUL, x, five);
  ir_output(f, ir_binary(f, IR_MUL, product, ir_unary(f, IR_NEG, t)));
  expect_after(f, pass_fold,
               "func fold(%0: real[2] \"x\") {\n"
               "  %1 = const 2 : real[2]\n"
               "  %2 = const 3 : real[2]\n"
               "  %3 = const 5 : real[2]\n"
               "  %4 = tensor [1, 2] n=2 : real[2]\n"
               "  %5 = mul %0, %3 : real[2]\n"
               "  %6 = tensor [-1, -2] n=2 : real[2]\n"
               "  %7 = mul %5, %6 : real[2]\n"
               "  ret %7\n"
               "}\n");
  ir_func_free(f);
}
END_TEST

/* Folding never grows constant storage: a broadcast tensor stays a
 * broadcast, while broadcast constants and reductions of tensors fold. */
START_TEST(test_fold_keeps_broadcast_tables) {
  IrFunc *f = ir_func_new("fold");
  double data[] = {1, 2}, same[] = {4, 4};
  int t = ir_tensor(f, data, IR_VEC(2));
  int wide = ir_bcast(f, t, 0, IR_MAT(3, 2));
  int filled = ir_bcast(f, ir_const(f, 2, IR_SCALAR), -1, IR_MAT(3, 2));
  ir_output(f, ir_binary(f, IR_MUL, wide, filled));
  ir_output(f, ir_sum(f, t, -1));
  ir_output(f, ir_tensor(f, same, IR_VEC(2)));
  expect_after(f, pass_fold,
               "func fold() {\n"
               "  %0 = tensor [1, 2] n=2 : real[2]\n"
               "  %1 = bcast %0 axis=0 : real[3,2]\n"
               "  %2 = const 2 : real[]\n"
               "  %3 = const 2 : real[3,2]\n"
               "  %4 = mul %1, %3 : real[3,2]\n"
               "  %5 = const 3 : real[]\n"
               "  %6 = const 4 : real[2]\n"
               "  ret %4, %5, %6\n"
               "}\n");
  ir_func_free(f);
}
END_TEST

/* x*1, 0+x, x-0, x/1 -> x; x*0 -> 0; 0-x -> -x; -(-x) -> x; matmul by 0 -> 0 */
START_TEST(test_fold_identities) {
  IrFunc *f = ir_func_new("identities");
  int x = ir_input(f, "x", TY_REAL, IR_MAT(2, 2));
  int one = ir_const(f, 1, IR_MAT(2, 2));
  int zero = ir_const(f, 0, IR_MAT(2, 2));
  int a = ir_binary(f, IR_MUL, x, one);
  int b = ir_binary(f, IR_ADD, zero, a);
  int c = ir_binary(f, IR_SUB, b, zero);
  int d = ir_binary(f, IR_DIV, c, one);
  ir_output(f, d);
  ir_output(f, ir_binary(f, IR_MUL, zero, d));
  int minus = ir_binary(f, IR_SUB, zero, d);
  ir_output(f, minus);
  ir_output(f, ir_unary(f, IR_NEG, ir_unary(f, IR_NEG, minus)));
  ir_output(f, ir_matmul(f, x, zero, true, false));
  pass_fold(f);
  expect_after(f, pass_dce,
               "func identities(%0: real[2,2] \"x\") {\n"
               "  %1 = const 0 : real[2,2]\n"
               "  %2 = neg %0 : real[2,2]\n"
               "  %3 = neg %0 : real[2,2]\n"
               "  %4 = const 0 : real[2,2]\n"
               "  ret %0, %1, %2, %3, %4\n"
               "}\n");
  ir_func_free(f);
}
END_TEST

/* abs and detach of constants fold; detach of a value stays: it is what
 * keeps a gradient of this function from flowing through. */
START_TEST(test_fold_abs_and_detach) {
  IrFunc *f = ir_func_new("fold");
  int x = ir_input(f, "x", TY_REAL, IR_VEC(2));
  double data[] = {-1, 2};
  int t = ir_tensor(f, data, IR_VEC(2));
  ir_output(f, ir_unary(f, IR_ABS, t));
  ir_output(f, ir_unary(f, IR_DETACH, ir_const(f, -3, IR_VEC(2))));
  ir_output(f, ir_unary(f, IR_DETACH, x));
  pass_fold(f);
  expect_after(f, pass_dce,
               "func fold(%0: real[2] \"x\") {\n"
               "  %1 = tensor [1, 2] n=2 : real[2]\n"
               "  %2 = const -3 : real[2]\n"
               "  %3 = detach %0 : real[2]\n"
               "  ret %1, %2, %3\n"
               "}\n");
  ir_func_free(f);
}
END_TEST

/* ---- cse -------------------------------------------------------------------- */

START_TEST(test_cse_merges_equal_values) {
  IrFunc *f = ir_func_new("cse");
  int x = ir_input(f, "x", TY_REAL, IR_MAT(2, 2));
  int y = ir_input(f, "y", TY_REAL, IR_MAT(2, 2));
  int e1 = ir_unary(f, IR_EXP, x);
  int e2 = ir_unary(f, IR_EXP, x);
  int p = ir_binary(f, IR_MUL, e1, y);
  int q = ir_binary(f, IR_MUL, y, e2);     /* same as p: mul commutes */
  int r = ir_binary(f, IR_SUB, q, y);
  int s = ir_binary(f, IR_SUB, y, p);      /* not the same: sub does not commute */
  ir_output(f, ir_binary(f, IR_ADD, r, s));
  ir_output(f, ir_binary(f, IR_ADD, x, y)); /* inputs are never merged */
  expect_after(f, pass_cse,
               "func cse(%0: real[2,2] \"x\", %1: real[2,2] \"y\") {\n"
               "  %2 = exp %0 : real[2,2]\n"
               "  %3 = exp %0 : real[2,2]\n"
               "  %4 = mul %2, %1 : real[2,2]\n"
               "  %5 = mul %1, %2 : real[2,2]\n"
               "  %6 = sub %4, %1 : real[2,2]\n"
               "  %7 = sub %1, %4 : real[2,2]\n"
               "  %8 = add %6, %7 : real[2,2]\n"
               "  %9 = add %0, %1 : real[2,2]\n"
               "  ret %8, %9\n"
               "}\n");
  ir_func_free(f);
}
END_TEST

/* Attributes and constant bits distinguish values. */
START_TEST(test_cse_respects_attributes) {
  IrFunc *f = ir_func_new("attrs");
  int x = ir_input(f, "x", TY_REAL, IR_MAT(2, 2));
  ir_output(f, ir_matmul(f, x, x, false, false));
  ir_output(f, ir_matmul(f, x, x, true, false));
  ir_output(f, ir_matmul(f, x, x, false, false));
  ir_output(f, ir_sum(f, x, 0));
  ir_output(f, ir_sum(f, x, 1));
  ir_output(f, ir_const(f, 0.0, IR_SCALAR));
  ir_output(f, ir_const(f, -0.0, IR_SCALAR));
  ir_output(f, ir_const(f, 0.0, IR_VEC(1)));
  ir_output(f, ir_const(f, 0.0, IR_SCALAR));
  double a[] = {1, 2}, b[] = {1, 3};
  ir_output(f, ir_tensor(f, a, IR_VEC(2)));
  ir_output(f, ir_tensor(f, b, IR_VEC(2)));
  ir_output(f, ir_tensor(f, a, IR_VEC(2)));
  ir_output(f, ir_const_i32(f, 0, IR_SCALAR));  /* an index 0 is no real 0 */
  pass_cse(f);
  int want[] = {1, 2, 1, 4, 5, 6, 7, 8, 6, 10, 11, 10, 13};
  ck_assert_int_eq(f->noutputs, 13);
  for (int o = 0; o < 13; o++)
    ck_assert_int_eq(f->outputs[o], want[o]);
  ir_func_free(f);
}
END_TEST

/* ---- dce -------------------------------------------------------------------- */

START_TEST(test_dce_removes_and_renumbers) {
  IrFunc *f = ir_func_new("dce");
  int x = ir_input(f, "x", TY_REAL, IR_VEC(3));
  int dead = ir_unary(f, IR_EXP, x);
  ir_input(f, "unused", TY_I32, IR_VEC(2));
  ir_unary(f, IR_SIN, dead);
  int s = ir_unary(f, IR_COS, x);
  int t = ir_binary(f, IR_MUL, s, s);
  ir_output(f, t);
  ir_output(f, s);
  ir_output(f, t);
  expect_after(f, pass_dce,
               "func dce(%0: real[3] \"x\", %1: i32[2] \"unused\") {\n"
               "  %2 = cos %0 : real[3]\n"
               "  %3 = mul %2, %2 : real[3]\n"
               "  ret %3, %2, %3\n"
               "}\n");
  ck_assert_int_eq(f->nins, 4);
  ir_func_free(f);
}
END_TEST

/* ---- the pipeline ------------------------------------------------------------ */

START_TEST(test_pass_order) {
  const char *const *names = pass_names();
  ck_assert_str_eq(names[0], "fold");
  ck_assert_str_eq(names[1], "cse");
  ck_assert_str_eq(names[2], "dce");
  ck_assert_ptr_null(names[3]);
}
END_TEST

static char *dump_after(const char *which) {
  IrFunc *f = ir_func_new("d");
  int x = ir_input(f, "x", TY_REAL, IR_SCALAR);
  ir_output(f, ir_binary(f, IR_MUL, x, ir_const(f, 1, IR_SCALAR)));
  MemText m;
  pass_run_all(f, which, memtext_open(&m));
  ir_func_free(f);
  return memtext_close(&m);
}

START_TEST(test_dump_after_named_pass) {
  char *text = dump_after("dce");
  ck_assert_str_eq(text, "# after dce\nfunc d(%0: real[] \"x\") {\n  ret %0\n}\n");
  free(text);
}
END_TEST

START_TEST(test_dump_after_all_and_none) {
  char *all = dump_after("all"), *none = dump_after(NULL);
  ck_assert_ptr_nonnull(strstr(all, "# after fold\n"));
  char *cse = strstr(all, "# after cse\n");
  ck_assert_ptr_nonnull(cse);
  ck_assert_ptr_nonnull(strstr(cse, "# after dce\n"));
  ck_assert_str_eq(none, "");
  free(all);
  free(none);
}
END_TEST

/* ---- results are preserved on an MLP gradient ---------------------------------- */

enum { B = 5, IN = 3, H = 6, V = 4, E = 2 };

static int dense(IrFunc *f, int x, int w, int b) {
  int y = ir_matmul(f, x, w, false, false);
  return ir_binary(f, IR_ADD, y, ir_bcast(f, b, 0, f->ins[y].shape));
}

/* relu MLP on [x, emb[ids]] with a scaled mse; the scale is built from
 * constants and both layers reuse the same subexpressions, so every pass
 * has work to do. */
static IrFunc *mlp_loss(void) {
  IrFunc *f = ir_func_new("mlp");
  int x = ir_input(f, "x", TY_REAL, IR_MAT(B, IN));
  int ids = ir_input(f, "ids", TY_I32, IR_VEC(B));
  int emb = ir_input(f, "emb", TY_REAL, IR_MAT(V, E));
  int w1 = ir_input(f, "w1", TY_REAL, IR_MAT(IN + E, H));
  int b1 = ir_input(f, "b1", TY_REAL, IR_VEC(H));
  int w2 = ir_input(f, "w2", TY_REAL, IR_MAT(H, 1));
  int y = ir_input(f, "y", TY_REAL, IR_MAT(B, 1));
  int parts[] = {x, ir_gather(f, emb, ids)};
  int h = ir_unary(f, IR_RELU, dense(f, ir_concat(f, parts, 2), w1, b1));
  int out = ir_matmul(f, h, w2, false, false);
  int d = ir_binary(f, IR_SUB, out, y);
  int sq = ir_binary(f, IR_MUL, d, ir_binary(f, IR_SUB, out, y));
  int half = ir_binary(f, IR_MUL, ir_const(f, 0.5, IR_SCALAR), ir_const(f, 1, IR_SCALAR));
  int scale = ir_binary(f, IR_DIV, half, ir_const(f, B, IR_SCALAR));
  ir_output(f, ir_binary(f, IR_MUL, ir_sum(f, sq, -1), scale));
  return f;
}

static double **random_arguments(const IrFunc *f) {
  uint64_t state = 42;
  double **in = calloc(f->ninputs, sizeof *in);
  for (int k = 0; k < f->ninputs; k++) {
    const IrInstr *arg = &f->ins[ir_input_value(f, k)];
    in[k] = malloc(ir_numel(arg->shape) * sizeof **in);
    for (long e = 0; e < ir_numel(arg->shape); e++) {
      state = state * 6364136223846793005u + 1442695040888963407u;
      double u = (double)(state >> 11) / 9007199254740992.0;
      in[k][e] = arg->type == TY_I32 ? floor(u * V) : 2 * u - 1;
    }
  }
  return in;
}

START_TEST(test_pipeline_preserves_gradients) {
  IrFunc *loss = mlp_loss();
  int wrt[] = {2, 3, 4, 5};
  IrFunc *g = ad_grad(loss, wrt, 4, "mlp_grad");
  double **in = random_arguments(g);
  double **before = run_interp(g, in);
  int nins = g->nins;
  pass_run_all(g, NULL, NULL);
  assert_valid(g);
  ck_assert_int_lt(g->nins, nins);
  ck_assert_int_eq(g->noutputs, 5);
  double **after = run_interp(g, in);
  for (int o = 0; o < g->noutputs; o++)
    for (long e = 0; e < ir_numel(g->ins[g->outputs[o]].shape); e++)
      ck_assert_msg(fabs(after[o][e] - before[o][e]) <= 1e-12 * (1 + fabs(before[o][e])),
                    "output %d [%ld]: %.17g before the passes, %.17g after", o, e,
                    before[o][e], after[o][e]);
  free_buffers(before, g->noutputs);
  free_buffers(after, g->noutputs);
  free_buffers(in, g->ninputs);
  ir_func_free(g);
  ir_func_free(loss);
}
END_TEST

/* Each pass alone keeps the function valid; a second run changes nothing. */
START_TEST(test_passes_are_idempotent) {
  IrFunc *loss = mlp_loss();
  int wrt[] = {2, 3, 4, 5};
  IrFunc *g = ad_grad(loss, wrt, 4, "mlp_grad");
  pass_run_all(g, NULL, NULL);
  char *once = print_to_string(g);
  pass_run_all(g, NULL, NULL);
  char *twice = print_to_string(g);
  ck_assert_str_eq(once, twice);
  free(once);
  free(twice);
  ir_func_free(g);
  ir_func_free(loss);
}
END_TEST

static Suite *passes_suite(void) {
  Suite *s = suite_create("passes");
  TCase *each = tcase_create("each");
  tcase_add_test(each, test_fold_constants);
  tcase_add_test(each, test_fold_keeps_broadcast_tables);
  tcase_add_test(each, test_fold_identities);
  tcase_add_test(each, test_fold_abs_and_detach);
  tcase_add_test(each, test_cse_merges_equal_values);
  tcase_add_test(each, test_cse_respects_attributes);
  tcase_add_test(each, test_dce_removes_and_renumbers);
  suite_add_tcase(s, each);
  TCase *pipeline = tcase_create("pipeline");
  tcase_add_test(pipeline, test_pass_order);
  tcase_add_test(pipeline, test_dump_after_named_pass);
  tcase_add_test(pipeline, test_dump_after_all_and_none);
  tcase_add_test(pipeline, test_pipeline_preserves_gradients);
  tcase_add_test(pipeline, test_passes_are_idempotent);
  suite_add_tcase(s, pipeline);
  return s;
}

int main(void) {
  return test_run_suite(passes_suite());
}
