/*
 * test_interp.c — the reference interpreter, one op at a time, on small
 * examples computed by hand; and its errors for bad indices and arguments.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "test_util.h"

enum { MAX_OUT = 64 };

/* Runs f on the given arguments and checks its only output. */
static void expect(const IrFunc *f, const double *const *in, const double *want, int n) {
  double got[MAX_OUT];
  double *out[] = {got};
  char err[256];
  ck_assert_int_eq(ir_numel(f->ins[f->outputs[0]].shape), n);
  ck_assert_msg(interp_run(f, in, out, err, sizeof err) == 0, "%s", err);
  for (int i = 0; i < n; i++)
    ck_assert_msg(fabs(got[i] - want[i]) <= 1e-12 * (1 + fabs(want[i])),
                  "%s: element %d is %.17g, expected %.17g", f->name, i, got[i], want[i]);
}

/* f(x) = op(x) for one unary op on x = {-1, 0.5, 2}. */
static void expect_unary(IrOp op, const double *want) {
  IrFunc *f = ir_func_new(ir_op_name(op));
  ir_output(f, ir_unary(f, op, ir_input(f, "x", TY_REAL, IR_VEC(3))));
  double x[] = {-1, 0.5, 2};
  const double *in[] = {x};
  expect(f, in, want, 3);
  ir_func_free(f);
}

START_TEST(test_unary_ops) {
  double e = exp(1);
  expect_unary(IR_NEG, (double[]){1, -0.5, -2});
  expect_unary(IR_EXP, (double[]){1 / e, sqrt(e), e * e});
  expect_unary(IR_SIN, (double[]){sin(-1), sin(0.5), sin(2)});
  expect_unary(IR_COS, (double[]){cos(-1), cos(0.5), cos(2)});
  expect_unary(IR_TANH, (double[]){tanh(-1), tanh(0.5), tanh(2)});
  expect_unary(IR_SIGMOID, (double[]){1 / (1 + e), 1 / (1 + exp(-0.5)), 1 / (1 + exp(-2))});
  expect_unary(IR_RELU, (double[]){0, 0.5, 2});
  expect_unary(IR_STEP, (double[]){0, 1, 1});
  expect_unary(IR_ABS, (double[]){1, 0.5, 2});
  expect_unary(IR_DETACH, (double[]){-1, 0.5, 2});
}
END_TEST

/* log and sqrt on positive inputs */
START_TEST(test_log_and_sqrt) {
  IrFunc *f = ir_func_new("log_sqrt");
  int x = ir_input(f, "x", TY_REAL, IR_VEC(3));
  ir_output(f, ir_binary(f, IR_ADD, ir_unary(f, IR_LOG, x), ir_unary(f, IR_SQRT, x)));
  double xs[] = {1, 4, M_E};
  const double *in[] = {xs};
  expect(f, in, (double[]){1, log(4) + 2, 1 + sqrt(M_E)}, 3);
  ir_func_free(f);
}
END_TEST

static void expect_binary(IrOp op, const double *want) {
  IrFunc *f = ir_func_new(ir_op_name(op));
  int a = ir_input(f, "a", TY_REAL, IR_MAT(2, 2));
  int b = ir_input(f, "b", TY_REAL, IR_MAT(2, 2));
  ir_output(f, ir_binary(f, op, a, b));
  double av[] = {1, 2, 3, 4}, bv[] = {2, -1, 0.5, 8};
  const double *in[] = {av, bv};
  expect(f, in, want, 4);
  ir_func_free(f);
}

START_TEST(test_binary_ops) {
  expect_binary(IR_ADD, (double[]){3, 1, 3.5, 12});
  expect_binary(IR_SUB, (double[]){-1, 3, 2.5, -4});
  expect_binary(IR_MUL, (double[]){2, -2, 1.5, 32});
  expect_binary(IR_DIV, (double[]){0.5, -2, 6, 0.5});
}
END_TEST

START_TEST(test_leaves) {
  IrFunc *f = ir_func_new("leaves");
  double data[] = {1, 2, 3, 4};
  int t = ir_tensor(f, data, IR_MAT(2, 2));
  ir_output(f, ir_binary(f, IR_MUL, t, ir_const(f, -0.5, IR_MAT(2, 2))));
  expect(f, NULL, (double[]){-0.5, -1, -1.5, -2}, 4);
  ir_func_free(f);
}
END_TEST

/* x = [[1,2,3],[4,5,6]] */
static const double X23[] = {1, 2, 3, 4, 5, 6};

static IrFunc *reduce(int axis) {
  IrFunc *f = ir_func_new("sum");
  ir_output(f, ir_sum(f, ir_input(f, "x", TY_REAL, IR_MAT(2, 3)), axis));
  return f;
}

START_TEST(test_sum) {
  const double *in[] = {X23};
  IrFunc *rows = reduce(0), *cols = reduce(1), *all = reduce(-1);
  expect(rows, in, (double[]){5, 7, 9}, 3);
  expect(cols, in, (double[]){6, 15}, 2);
  expect(all, in, (double[]){21}, 1);
  ir_func_free(rows);
  ir_func_free(cols);
  ir_func_free(all);
}
END_TEST

START_TEST(test_bcast) {
  IrFunc *f = ir_func_new("bcast");
  int row = ir_input(f, "row", TY_REAL, IR_VEC(3));
  int col = ir_input(f, "col", TY_REAL, IR_VEC(2));
  int s = ir_input(f, "s", TY_REAL, IR_SCALAR);
  int down = ir_bcast(f, row, 0, IR_MAT(2, 3));
  int across = ir_bcast(f, col, 1, IR_MAT(2, 3));
  int sum = ir_binary(f, IR_ADD, down, across);
  ir_output(f, ir_binary(f, IR_ADD, sum, ir_bcast(f, s, -1, IR_MAT(2, 3))));
  double rv[] = {1, 2, 3}, cv[] = {10, 20}, sv[] = {100};
  const double *in[] = {rv, cv, sv};
  expect(f, in, (double[]){111, 112, 113, 121, 122, 123}, 6);
  ir_func_free(f);
}
END_TEST

/* a = [[1,2],[3,4]], b = [[5,6],[7,8]] in every transpose combination */
static void expect_matmul(bool ta, bool tb, const double *want) {
  IrFunc *f = ir_func_new("matmul");
  int a = ir_input(f, "a", TY_REAL, IR_MAT(2, 2));
  int b = ir_input(f, "b", TY_REAL, IR_MAT(2, 2));
  ir_output(f, ir_matmul(f, a, b, ta, tb));
  double av[] = {1, 2, 3, 4}, bv[] = {5, 6, 7, 8};
  const double *in[] = {av, bv};
  expect(f, in, want, 4);
  ir_func_free(f);
}

START_TEST(test_matmul) {
  expect_matmul(false, false, (double[]){19, 22, 43, 50});
  expect_matmul(true, false, (double[]){26, 30, 38, 44});
  expect_matmul(false, true, (double[]){17, 23, 39, 53});
  expect_matmul(true, true, (double[]){23, 31, 34, 46});
}
END_TEST

/* [2,3] x [3,1] -> [2,1]: non-square shapes catch swapped strides */
START_TEST(test_matmul_rectangular) {
  IrFunc *f = ir_func_new("matmul");
  int a = ir_input(f, "a", TY_REAL, IR_MAT(2, 3));
  int b = ir_input(f, "b", TY_REAL, IR_MAT(1, 3));
  ir_output(f, ir_matmul(f, a, b, false, true));
  double bv[] = {1, 0, -1};
  const double *in[] = {X23, bv};
  expect(f, in, (double[]){-2, -2}, 2);
  ir_func_free(f);
}
END_TEST

START_TEST(test_concat_slice_pad) {
  IrFunc *f = ir_func_new("columns");
  int x = ir_input(f, "x", TY_REAL, IR_MAT(2, 3));
  int y = ir_input(f, "y", TY_REAL, IR_MAT(2, 1));
  int parts[] = {y, x};
  int c = ir_concat(f, parts, 2);          /* [[9,1,2,3],[8,4,5,6]] */
  int s = ir_slice(f, c, 1, 2);            /* [[1,2],[4,5]] */
  ir_output(f, ir_pad(f, s, 1, 4));        /* [[0,1,2,0],[0,4,5,0]] */
  double yv[] = {9, 8};
  const double *in[] = {X23, yv};
  expect(f, in, (double[]){0, 1, 2, 0, 0, 4, 5, 0}, 8);
  ir_func_free(f);
}
END_TEST

START_TEST(test_rows) {
  IrFunc *f = ir_func_new("rows");
  int x = ir_input(f, "x", TY_REAL, IR_MAT(2, 3));
  int y = ir_input(f, "y", TY_REAL, IR_MAT(1, 3));
  int parts[] = {y, x};
  int c = ir_concat_rows(f, parts, 2);     /* [[7,8,9],[1,2,3],[4,5,6]] */
  int s = ir_slice_rows(f, c, 1, 1);       /* [[1,2,3]] */
  ir_output(f, ir_pad_rows(f, s, 2, 4));   /* [[0,0,0],[0,0,0],[1,2,3],[0,0,0]] */
  double yv[] = {7, 8, 9};
  const double *in[] = {X23, yv};
  expect(f, in, (double[]){0, 0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 0}, 12);
  ir_func_free(f);
  f = ir_func_new("concat_rows");
  int parts2[] = {ir_input(f, "x", TY_REAL, IR_MAT(2, 3)), ir_input(f, "y", TY_REAL, IR_MAT(1, 3))};
  ir_output(f, ir_slice_rows(f, ir_concat_rows(f, parts2, 2), 1, 2));
  expect(f, in, (double[]){4, 5, 6, 7, 8, 9}, 6);
  ir_func_free(f);
}
END_TEST

/* an i32 constant names the same row for every position */
START_TEST(test_gather_constant_index) {
  IrFunc *f = ir_func_new("gather_const");
  int table = ir_input(f, "table", TY_REAL, IR_MAT(3, 2));
  ir_output(f, ir_gather(f, table, ir_const_i32(f, 1, IR_VEC(3))));
  double tv[] = {1, 2, 3, 4, 5, 6};
  const double *in[] = {tv};
  expect(f, in, (double[]){3, 4, 3, 4, 3, 4}, 6);
  ir_func_free(f);
}
END_TEST

static IrFunc *gather_scatter(void) {
  IrFunc *f = ir_func_new("gather");
  int table = ir_input(f, "table", TY_REAL, IR_MAT(3, 2));
  int idx = ir_input(f, "idx", TY_I32, IR_VEC(4));
  int g = ir_gather(f, table, idx);
  ir_output(f, ir_scatter_add(f, g, idx, 3));
  ir_output(f, g);
  return f;
}

START_TEST(test_gather_and_scatter_add) {
  IrFunc *f = gather_scatter();
  double table[] = {1, 2, 3, 4, 5, 6}, idx[] = {2, 0, 2, 1};
  const double *in[] = {table, idx};
  double scattered[6], gathered[8];
  double *out[] = {scattered, gathered};
  char err[256];
  ck_assert_msg(interp_run(f, in, out, err, sizeof err) == 0, "%s", err);
  double want_g[] = {5, 6, 1, 2, 5, 6, 3, 4}, want_s[] = {1, 2, 3, 4, 10, 12};
  ck_assert_mem_eq(gathered, want_g, sizeof want_g);
  ck_assert_mem_eq(scattered, want_s, sizeof want_s);
  ir_func_free(f);
}
END_TEST

static void expect_index_error(double bad) {
  IrFunc *f = gather_scatter();
  double table[6] = {0}, idx[] = {0, bad, 1, 1};
  const double *in[] = {table, idx};
  double scattered[6], gathered[8];
  double *out[] = {scattered, gathered};
  char err[256] = "";
  ck_assert_int_eq(interp_run(f, in, out, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "gather") && strstr(err, "position 1"), "%s", err);
  ir_func_free(f);
}

START_TEST(test_index_out_of_range) {
  expect_index_error(3);
  expect_index_error(-1);
  expect_index_error(0.5);
  expect_index_error(NAN);
}
END_TEST

START_TEST(test_missing_argument) {
  IrFunc *f = gather_scatter();
  double table[6] = {0};
  const double *in[] = {table, NULL};
  double out0[6], out1[8];
  double *out[] = {out0, out1};
  char err[256] = "";
  ck_assert_int_eq(interp_run(f, in, out, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "argument 1"), "%s", err);
  ir_func_free(f);
}
END_TEST

START_TEST(test_invalid_function) {
  IrFunc *f = gather_scatter();
  f->ins[2].args[0] = 3;
  char err[256] = "";
  ck_assert_int_eq(interp_run(f, NULL, NULL, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "not an earlier value"), "%s", err);
  ir_func_free(f);
}
END_TEST

static Suite *interp_suite(void) {
  Suite *s = suite_create("interp");
  TCase *ops = tcase_create("ops");
  tcase_add_test(ops, test_unary_ops);
  tcase_add_test(ops, test_log_and_sqrt);
  tcase_add_test(ops, test_binary_ops);
  tcase_add_test(ops, test_leaves);
  tcase_add_test(ops, test_sum);
  tcase_add_test(ops, test_bcast);
  tcase_add_test(ops, test_matmul);
  tcase_add_test(ops, test_matmul_rectangular);
  tcase_add_test(ops, test_concat_slice_pad);
  tcase_add_test(ops, test_gather_and_scatter_add);
  tcase_add_test(ops, test_rows);
  tcase_add_test(ops, test_gather_constant_index);
  suite_add_tcase(s, ops);
  TCase *errors = tcase_create("errors");
  tcase_add_test(errors, test_index_out_of_range);
  tcase_add_test(errors, test_missing_argument);
  tcase_add_test(errors, test_invalid_function);
  suite_add_tcase(s, errors);
  return s;
}

int main(void) {
  return test_run_suite(interp_suite());
}
