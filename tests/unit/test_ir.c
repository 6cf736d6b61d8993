/*
 * test_ir.c — the IR builder (result shapes, aborts on misuse), the
 * verifier (rejects each kind of malformed function) and the printer.
 */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "test_util.h"

static void assert_shape(const IrFunc *f, int v, int rank, int d0, int d1) {
  ck_assert_msg(ir_shape_eq(f->ins[v].shape, (IrShape){rank, {d0, d1}}),
                "%%%d has rank %d [%d,%d], expected rank %d [%d,%d]", v,
                f->ins[v].shape.rank, f->ins[v].shape.dim[0], f->ins[v].shape.dim[1],
                rank, d0, d1);
}

/* ---- builder ---------------------------------------------------------------- */

START_TEST(test_shapes_of_matmul) {
  IrFunc *f = ir_func_new("mm");
  int a = ir_input(f, "a", TY_REAL, IR_MAT(3, 4));
  int b = ir_input(f, "b", TY_REAL, IR_MAT(4, 5));
  int bt = ir_input(f, "bt", TY_REAL, IR_MAT(5, 4));
  int at = ir_input(f, "at", TY_REAL, IR_MAT(4, 3));
  assert_shape(f, ir_matmul(f, a, b, false, false), 2, 3, 5);
  assert_shape(f, ir_matmul(f, a, bt, false, true), 2, 3, 5);
  assert_shape(f, ir_matmul(f, at, b, true, false), 2, 3, 5);
  assert_shape(f, ir_matmul(f, at, bt, true, true), 2, 3, 5);
  assert_valid(f);
  ir_func_free(f);
}
END_TEST

START_TEST(test_shapes_of_reductions_and_broadcasts) {
  IrFunc *f = ir_func_new("shapes");
  int x = ir_input(f, "x", TY_REAL, IR_MAT(3, 4));
  assert_shape(f, ir_sum(f, x, 0), 1, 4, 1);
  assert_shape(f, ir_sum(f, x, 1), 1, 3, 1);
  assert_shape(f, ir_sum(f, x, -1), 0, 1, 1);
  int row = ir_input(f, "row", TY_REAL, IR_VEC(4));
  int col = ir_input(f, "col", TY_REAL, IR_VEC(3));
  int s = ir_input(f, "s", TY_REAL, IR_SCALAR);
  assert_shape(f, ir_bcast(f, row, 0, IR_MAT(3, 4)), 2, 3, 4);
  assert_shape(f, ir_bcast(f, col, 1, IR_MAT(3, 4)), 2, 3, 4);
  assert_shape(f, ir_bcast(f, s, -1, IR_VEC(7)), 1, 7, 1);
  assert_shape(f, ir_unary(f, IR_TANH, x), 2, 3, 4);
  assert_shape(f, ir_binary(f, IR_DIV, row, row), 1, 4, 1);
  assert_valid(f);
  ir_func_free(f);
}
END_TEST

START_TEST(test_shapes_of_column_ops) {
  IrFunc *f = ir_func_new("cols");
  int a = ir_input(f, "a", TY_REAL, IR_MAT(2, 3));
  int b = ir_input(f, "b", TY_REAL, IR_MAT(2, 1));
  int parts[] = {a, b, a};
  int c = ir_concat(f, parts, 3);
  assert_shape(f, c, 2, 2, 7);
  assert_shape(f, ir_concat(f, &b, 1), 2, 2, 1);
  assert_shape(f, ir_slice(f, c, 3, 4), 2, 2, 4);
  assert_shape(f, ir_pad(f, a, 2, 6), 2, 2, 6);
  int table = ir_input(f, "table", TY_REAL, IR_MAT(10, 3));
  int idx = ir_input(f, "idx", TY_I32, IR_VEC(5));
  int g = ir_gather(f, table, idx);
  assert_shape(f, g, 2, 5, 3);
  assert_shape(f, ir_scatter_add(f, g, idx, 10), 2, 10, 3);
  assert_valid(f);
  ir_func_free(f);
}
END_TEST

START_TEST(test_shapes_of_row_ops) {
  IrFunc *f = ir_func_new("rows");
  int a = ir_input(f, "a", TY_REAL, IR_MAT(3, 2));
  int b = ir_input(f, "b", TY_REAL, IR_MAT(1, 2));
  int parts[] = {a, b, a};
  int c = ir_concat_rows(f, parts, 3);
  assert_shape(f, c, 2, 7, 2);
  ck_assert_int_eq(f->ins[c].axis, 0);
  assert_shape(f, ir_concat_rows(f, &b, 1), 2, 1, 2);
  assert_shape(f, ir_slice_rows(f, c, 3, 4), 2, 4, 2);
  assert_shape(f, ir_pad_rows(f, a, 2, 6), 2, 6, 2);
  ck_assert_int_eq(f->ins[ir_slice(f, a, 0, 1)].axis, 1);
  assert_valid(f);
  ir_func_free(f);
}
END_TEST

START_TEST(test_new_unary_ops_and_index_constants) {
  IrFunc *f = ir_func_new("new");
  int x = ir_input(f, "x", TY_REAL, IR_MAT(3, 2));
  assert_shape(f, ir_unary(f, IR_ABS, x), 2, 3, 2);
  assert_shape(f, ir_unary(f, IR_DETACH, x), 2, 3, 2);
  int idx = ir_const_i32(f, 4, IR_VEC(3));
  ck_assert_int_eq(f->ins[idx].type, TY_I32);
  int table = ir_input(f, "table", TY_REAL, IR_MAT(5, 2));
  assert_shape(f, ir_gather(f, table, idx), 2, 3, 2);
  assert_valid(f);
  ir_func_free(f);
}
END_TEST

START_TEST(test_inputs_are_numbered_in_order) {
  IrFunc *f = ir_func_new("in");
  ir_input(f, "a", TY_REAL, IR_SCALAR);
  int c = ir_const(f, 2, IR_SCALAR);
  int b = ir_input(f, "b", TY_I32, IR_VEC(3));
  ck_assert_int_eq(f->ninputs, 2);
  ck_assert_int_eq(ir_input_value(f, 0), 0);
  ck_assert_int_eq(ir_input_value(f, 1), b);
  ck_assert_int_eq(ir_input_value(f, 2), -1);
  ck_assert_int_eq(f->ins[c].op, IR_CONST);
  ir_func_free(f);
}
END_TEST

START_TEST(test_copy_renames_and_deep_copies) {
  IrFunc *f = ir_func_new("src");
  int x = ir_input(f, "x", TY_REAL, IR_VEC(2));
  double data[] = {1, 2};
  int t = ir_tensor(f, data, IR_VEC(2));
  int y = ir_binary(f, IR_MUL, x, t);
  IrFunc *g = ir_func_new("dst");
  int map[3];
  for (int i = 0; i < 3; i++)
    map[i] = ir_copy_instr(g, &f->ins[i], map);
  ck_assert_int_eq(g->ninputs, 1);
  ck_assert_ptr_ne(g->ins[map[t]].data, f->ins[t].data);
  ck_assert_ptr_ne(g->ins[map[x]].name, f->ins[x].name);
  ck_assert_str_eq(g->ins[map[x]].name, "x");
  ck_assert_int_eq(g->ins[map[y]].args[1], map[t]);
  ir_func_free(f);   /* g must not share anything with f */
  ck_assert_double_eq(g->ins[map[t]].data[1], 2);
  assert_valid(g);
  ir_func_free(g);
}
END_TEST

START_TEST(test_helpers) {
  ck_assert_int_eq(ir_numel(IR_SCALAR), 1);
  ck_assert_int_eq(ir_numel(IR_VEC(7)), 7);
  ck_assert_int_eq(ir_numel(IR_MAT(3, 5)), 15);
  ck_assert(ir_shape_eq(IR_VEC(3), (IrShape){1, {3, 99}}));
  ck_assert(!ir_shape_eq(IR_VEC(3), IR_MAT(3, 1)));
  ck_assert(ir_is_elementwise(IR_ADD) && ir_is_elementwise(IR_SQRT));
  ck_assert(ir_is_elementwise(IR_ABS) && ir_is_elementwise(IR_DETACH));
  ck_assert(!ir_is_elementwise(IR_MATMUL) && !ir_is_elementwise(IR_CONST));
  ck_assert_str_eq(ir_op_name(IR_SCATTER_ADD), "scatter_add");
  ck_assert_str_eq(ir_op_name(IR_SIGMOID), "sigmoid");
}
END_TEST

START_TEST(test_module_owns_functions) {
  IrModule *mod = ir_module_new(NULL);
  ck_assert_int_eq(ir_module_add(mod, ir_func_new("a")), 0);
  ck_assert_int_eq(ir_module_add(mod, ir_func_new("b")), 1);
  ck_assert_int_eq(mod->nfuncs, 2);
  ir_module_free(mod);
}
END_TEST

/* ---- builder misuse aborts ------------------------------------------------- */

START_TEST(test_abort_on_shape_mismatch) {
  IrFunc *f = ir_func_new("bad");
  int a = ir_input(f, "a", TY_REAL, IR_VEC(3));
  int b = ir_input(f, "b", TY_REAL, IR_VEC(4));
  ir_binary(f, IR_ADD, a, b);
}
END_TEST

START_TEST(test_abort_on_inner_dimension) {
  IrFunc *f = ir_func_new("bad");
  int a = ir_input(f, "a", TY_REAL, IR_MAT(3, 4));
  ir_matmul(f, a, a, false, false);
}
END_TEST

START_TEST(test_abort_on_real_index) {
  IrFunc *f = ir_func_new("bad");
  int table = ir_input(f, "table", TY_REAL, IR_MAT(3, 4));
  int idx = ir_input(f, "idx", TY_REAL, IR_VEC(2));
  ir_gather(f, table, idx);
}
END_TEST

START_TEST(test_abort_on_index_arithmetic) {
  IrFunc *f = ir_func_new("bad");
  int idx = ir_input(f, "idx", TY_I32, IR_VEC(2));
  ir_unary(f, IR_NEG, idx);
}
END_TEST

START_TEST(test_abort_on_slice_out_of_range) {
  IrFunc *f = ir_func_new("bad");
  int a = ir_input(f, "a", TY_REAL, IR_MAT(3, 4));
  ir_slice(f, a, 2, 3);
}
END_TEST

START_TEST(test_abort_on_row_concat_mismatch) {
  IrFunc *f = ir_func_new("bad");
  int parts[] = {ir_input(f, "a", TY_REAL, IR_MAT(3, 4)),
                 ir_input(f, "b", TY_REAL, IR_MAT(3, 2))};
  ir_concat_rows(f, parts, 2);
}
END_TEST

START_TEST(test_abort_on_index_constant_arithmetic) {
  IrFunc *f = ir_func_new("bad");
  ir_unary(f, IR_EXP, ir_const_i32(f, 1, IR_VEC(2)));
}
END_TEST

START_TEST(test_abort_on_unknown_value) {
  IrFunc *f = ir_func_new("bad");
  ir_unary(f, IR_EXP, 5);
}
END_TEST

/* ---- verifier --------------------------------------------------------------- */

/* %0 = input a[2,3], %1 = input i[4], %2 = exp %0, %3 = add %2, %0, ret %3 */
static IrFunc *small_function(void) {
  IrFunc *f = ir_func_new("small");
  int a = ir_input(f, "a", TY_REAL, IR_MAT(2, 3));
  ir_input(f, "i", TY_I32, IR_VEC(4));
  int e = ir_unary(f, IR_EXP, a);
  ir_output(f, ir_binary(f, IR_ADD, e, a));
  return f;
}

static void assert_rejected(IrFunc *f, const char *fragment) {
  char err[256] = "";
  ck_assert_int_eq(ir_verify(f, err, sizeof err), -1);
  ck_assert_msg(strstr(err, fragment), "message \"%s\" lacks \"%s\"", err, fragment);
  ir_func_free(f);
}

START_TEST(test_verify_accepts_small_function) {
  IrFunc *f = small_function();
  assert_valid(f);
  ir_func_free(f);
}
END_TEST

START_TEST(test_verify_rejects_forward_reference) {
  IrFunc *f = small_function();
  f->ins[2].args[0] = 3;
  assert_rejected(f, "not an earlier value");
}
END_TEST

START_TEST(test_verify_rejects_wrong_shape) {
  IrFunc *f = small_function();
  f->ins[3].shape = IR_MAT(3, 2);
  assert_rejected(f, "result shape");
}
END_TEST

START_TEST(test_verify_rejects_index_arithmetic) {
  IrFunc *f = small_function();
  f->ins[2].args[0] = 1;
  f->ins[2].shape = IR_VEC(4);
  assert_rejected(f, "not real");
}
END_TEST

START_TEST(test_verify_rejects_operand_count) {
  IrFunc *f = small_function();
  f->ins[3].nargs = 1;
  assert_rejected(f, "operands, expected 2");
}
END_TEST

START_TEST(test_verify_rejects_repeated_argument) {
  IrFunc *f = small_function();
  f->ins[1].index = 0;
  assert_rejected(f, "argument number 0");
}
END_TEST

START_TEST(test_verify_rejects_missing_argument) {
  IrFunc *f = small_function();
  f->ninputs = 3;
  assert_rejected(f, "argument 2 has no input");
}
END_TEST

START_TEST(test_verify_rejects_bad_output) {
  IrFunc *f = small_function();
  f->outputs[0] = 4;
  assert_rejected(f, "output 0");
}
END_TEST

START_TEST(test_verify_rejects_bad_axis) {
  IrFunc *f = small_function();
  int s = ir_sum(f, 3, 0);
  f->ins[s].axis = 2;
  assert_rejected(f, "axis 2");
}
END_TEST

START_TEST(test_verify_rejects_bad_block_axis) {
  IrFunc *f = small_function();
  int s = ir_slice_rows(f, 3, 1, 1);
  f->ins[s].axis = -1;
  assert_rejected(f, "axis -1");
  f = small_function();
  s = ir_pad_rows(f, 3, 1, 4);
  f->ins[s].start = 3;
  assert_rejected(f, "rows [3,5) outside [0,4)");
}
END_TEST

START_TEST(test_verify_rejects_fractional_index_constant) {
  IrFunc *f = small_function();
  int c = ir_const_i32(f, 2, IR_VEC(2));
  f->ins[c].value = 2.5;
  assert_rejected(f, "not a 32-bit integer");
  f = small_function();
  c = ir_const(f, 2, IR_VEC(2));
  f->ins[c].type = TY_I32;
  f->ins[c].value = 1e10;
  assert_rejected(f, "not a 32-bit integer");
}
END_TEST

START_TEST(test_verify_rejects_bad_leaf) {
  IrFunc *f = small_function();
  f->ins[0].shape = IR_MAT(0, 3);
  assert_rejected(f, "dimension 0 is 0");
  f = small_function();
  f->ins[1].shape.rank = 3;
  assert_rejected(f, "rank 3");
}
END_TEST

/* ---- printer ---------------------------------------------------------------- */

START_TEST(test_print_small_function) {
  IrFunc *f = ir_func_new("loss_0");
  int emb = ir_input(f, "emb.module", TY_REAL, IR_MAT(16, 8));
  int t = ir_input(f, "t", TY_REAL, IR_VEC(4));
  int module = ir_input(f, "module", TY_I32, IR_VEC(4));
  int w = ir_input(f, "w", TY_REAL, IR_MAT(2, 8));
  int g = ir_gather(f, emb, module);
  int h = ir_matmul(f, g, w, false, true);
  int half = ir_const(f, 0.5, IR_MAT(4, 2));
  int m = ir_binary(f, IR_MUL, h, half);
  double omega[] = {1, 2.5, 3, 4, 5};
  int om = ir_tensor(f, omega, IR_VEC(5));
  int column = ir_bcast(f, t, 1, IR_MAT(4, 1));
  int row = ir_bcast(f, om, 0, IR_MAT(1, 5));
  int phase = ir_matmul(f, column, row, false, false);
  int s = ir_sum(f, m, -1);
  ir_output(f, s);
  ir_output(f, ir_slice(f, phase, 1, 2));
  char *text = print_to_string(f);
  ck_assert_str_eq(text,
                   "func loss_0(%0: real[16,8] \"emb.module\", %1: real[4] \"t\", "
                   "%2: i32[4] \"module\", %3: real[2,8] \"w\") {\n"
                   "  %4 = gather %0, %2 : real[4,8]\n"
                   "  %5 = matmul %4, %3 trans_b : real[4,2]\n"
                   "  %6 = const 0.5 : real[4,2]\n"
                   "  %7 = mul %5, %6 : real[4,2]\n"
                   "  %8 = tensor [1, 2.5, 3, 4, ...] n=5 : real[5]\n"
                   "  %9 = bcast %1 axis=1 : real[4,1]\n"
                   "  %10 = bcast %8 axis=0 : real[1,5]\n"
                   "  %11 = matmul %9, %10 : real[4,5]\n"
                   "  %12 = sum %7 axis=-1 : real[]\n"
                   "  %13 = slice %11 start=1 : real[4,2]\n"
                   "  ret %12, %13\n"
                   "}\n");
  free(text);
  ir_func_free(f);
}
END_TEST

START_TEST(test_print_new_ops) {
  IrFunc *f = ir_func_new("n");
  int x = ir_input(f, "x", TY_REAL, IR_MAT(2, 3));
  int table = ir_input(f, "table", TY_REAL, IR_MAT(4, 3));
  int parts[] = {ir_unary(f, IR_ABS, x), ir_unary(f, IR_DETACH, x)};
  int c = ir_concat_rows(f, parts, 2);
  int g = ir_gather(f, table, ir_const_i32(f, 3, IR_VEC(2)));
  ir_output(f, ir_pad_rows(f, ir_slice_rows(f, c, 1, 2), 1, 5));
  ir_output(f, g);
  char *text = print_to_string(f);
  ck_assert_str_eq(text,
                   "func n(%0: real[2,3] \"x\", %1: real[4,3] \"table\") {\n"
                   "  %2 = abs %0 : real[2,3]\n"
                   "  %3 = detach %0 : real[2,3]\n"
                   "  %4 = concat %2, %3 rows : real[4,3]\n"
                   "  %5 = const 3 : i32[2]\n"
                   "  %6 = gather %1, %5 : real[2,3]\n"
                   "  %7 = slice %4 rows start=1 : real[2,3]\n"
                   "  %8 = pad %7 rows start=1 : real[5,3]\n"
                   "  ret %8, %6\n"
                   "}\n");
  free(text);
  ir_func_free(f);
}
END_TEST

START_TEST(test_print_const_full_precision) {
  IrFunc *f = ir_func_new("c");
  ir_output(f, ir_const(f, 0.1, IR_SCALAR));
  char *text = print_to_string(f);
  ck_assert_str_eq(text, "func c() {\n  %0 = const 0.10000000000000001 : real[]\n"
                         "  ret %0\n}\n");
  free(text);
  ir_func_free(f);
}
END_TEST

static Suite *ir_suite(void) {
  Suite *s = suite_create("ir");
  TCase *build = tcase_create("builder");
  tcase_add_test(build, test_shapes_of_matmul);
  tcase_add_test(build, test_shapes_of_reductions_and_broadcasts);
  tcase_add_test(build, test_shapes_of_column_ops);
  tcase_add_test(build, test_shapes_of_row_ops);
  tcase_add_test(build, test_new_unary_ops_and_index_constants);
  tcase_add_test(build, test_inputs_are_numbered_in_order);
  tcase_add_test(build, test_copy_renames_and_deep_copies);
  tcase_add_test(build, test_helpers);
  tcase_add_test(build, test_module_owns_functions);
  suite_add_tcase(s, build);

  TCase *misuse = tcase_create("misuse");
  tcase_add_test_raise_signal(misuse, test_abort_on_shape_mismatch, SIGABRT);
  tcase_add_test_raise_signal(misuse, test_abort_on_inner_dimension, SIGABRT);
  tcase_add_test_raise_signal(misuse, test_abort_on_real_index, SIGABRT);
  tcase_add_test_raise_signal(misuse, test_abort_on_index_arithmetic, SIGABRT);
  tcase_add_test_raise_signal(misuse, test_abort_on_slice_out_of_range, SIGABRT);
  tcase_add_test_raise_signal(misuse, test_abort_on_unknown_value, SIGABRT);
  tcase_add_test_raise_signal(misuse, test_abort_on_row_concat_mismatch, SIGABRT);
  tcase_add_test_raise_signal(misuse, test_abort_on_index_constant_arithmetic, SIGABRT);
  suite_add_tcase(s, misuse);

  TCase *verify = tcase_create("verify");
  tcase_add_test(verify, test_verify_accepts_small_function);
  tcase_add_test(verify, test_verify_rejects_forward_reference);
  tcase_add_test(verify, test_verify_rejects_wrong_shape);
  tcase_add_test(verify, test_verify_rejects_index_arithmetic);
  tcase_add_test(verify, test_verify_rejects_operand_count);
  tcase_add_test(verify, test_verify_rejects_repeated_argument);
  tcase_add_test(verify, test_verify_rejects_missing_argument);
  tcase_add_test(verify, test_verify_rejects_bad_output);
  tcase_add_test(verify, test_verify_rejects_bad_axis);
  tcase_add_test(verify, test_verify_rejects_bad_leaf);
  tcase_add_test(verify, test_verify_rejects_bad_block_axis);
  tcase_add_test(verify, test_verify_rejects_fractional_index_constant);
  suite_add_tcase(s, verify);

  TCase *print = tcase_create("print");
  tcase_add_test(print, test_print_small_function);
  tcase_add_test(print, test_print_const_full_precision);
  tcase_add_test(print, test_print_new_ops);
  suite_add_tcase(s, print);
  return s;
}

int main(void) {
  return test_run_suite(ir_suite());
}
