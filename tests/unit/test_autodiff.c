/*
 * test_autodiff.c — every op's adjoint rule against central finite
 * differences in double precision, through the interpreter; a small MLP with
 * concat, gather and an mse loss; and activity analysis (no adjoint work for
 * values that do not depend on a wrt input, exact zeros for unused inputs).
 *
 * Each op case is differentiated inside loss = sum(w * op(x...)) with a
 * fixed random w, so every element of the adjoint is different and non-zero.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "test_util.h"

enum { MAX_ARGS = 12 };
static const double FD_STEP = 1e-5, TOLERANCE = 1e-6;

/* ---- deterministic random numbers ------------------------------------------ */

static uint64_t rng_state;

static double uniform(double lo, double hi) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Where an argument's values are drawn from: away from kinks (relu, step)
 * and from the edges of log's, sqrt's and div's domains. */
typedef enum { ANYWHERE, POSITIVE, INDEX } Domain;

static double draw(Domain d, int rows) {
  switch (d) {
  case POSITIVE:
    return uniform(0.5, 2.0);
  case INDEX:
    return floor(uniform(0, rows));
  default: {
    double x = uniform(0.1, 1.5);
    return uniform(0, 1) < 0.5 ? -x : x;
  }
  }
}

/* ---- finite-difference gradient check -------------------------------------- */

typedef struct ArgValues {
  int n;
  double *val[MAX_ARGS];
} ArgValues;

static ArgValues random_args(const IrFunc *f, const Domain *domain, int index_rows) {
  ck_assert_int_le(f->ninputs, MAX_ARGS);
  ArgValues a = {f->ninputs, {0}};
  for (int k = 0; k < f->ninputs; k++) {
    long n = ir_numel(f->ins[ir_input_value(f, k)].shape);
    a.val[k] = malloc(n * sizeof(double));
    for (long e = 0; e < n; e++)
      a.val[k][e] = draw(domain[k], index_rows);
  }
  return a;
}

static void free_args(ArgValues *a) {
  for (int k = 0; k < a->n; k++)
    free(a->val[k]);
}

/* Every output of f, each malloc'd: for a gradient function the loss, then
 * one gradient per wrt input. */
static double **run_outputs(const IrFunc *f, const ArgValues *a) {
  double **out = calloc(f->noutputs, sizeof *out);
  for (int o = 0; o < f->noutputs; o++)
    out[o] = malloc(ir_numel(f->ins[f->outputs[o]].shape) * sizeof **out);
  char err[256];
  ck_assert_msg(interp_run(f, (const double *const *)a->val, out, err, sizeof err) == 0,
                "%s", err);
  return out;
}

static void free_outputs(const IrFunc *f, double **out) {
  for (int o = 0; o < f->noutputs; o++)
    free(out[o]);
  free(out);
}

static double run_loss(const IrFunc *f, const ArgValues *a) {
  double **out = run_outputs(f, a);
  double loss = out[0][0];
  free_outputs(f, out);
  return loss;
}

static double central_difference(const IrFunc *f, ArgValues *a, int k, long e) {
  double saved = a->val[k][e];
  a->val[k][e] = saved + FD_STEP;
  double up = run_loss(f, a);
  a->val[k][e] = saved - FD_STEP;
  double down = run_loss(f, a);
  a->val[k][e] = saved;
  return (up - down) / (2 * FD_STEP);
}

static void assert_close(const char *what, int k, long e, double got, double want) {
  double scale = fmax(fmax(fabs(got), fabs(want)), 1e-2);
  ck_assert_msg(fabs(got - want) / scale < TOLERANCE,
                "%s: d loss / d arg %d [%ld]: autodiff %.12g, finite differences %.12g",
                what, k, e, got, want);
}

/* Differentiates f w.r.t. wrt and compares with finite differences. */
static void gradcheck(const IrFunc *f, const int *wrt, int nwrt, ArgValues *a) {
  IrFunc *g = ad_grad(f, wrt, nwrt, "grad");
  assert_valid(g);
  ck_assert_int_eq(g->noutputs, f->noutputs + nwrt);
  double **out = run_outputs(g, a);
  ck_assert_double_eq_tol(out[0][0], run_loss(f, a), 1e-12 * (1 + fabs(out[0][0])));
  for (int i = 0; i < nwrt; i++) {
    int k = wrt[i];
    for (long e = 0; e < ir_numel(f->ins[ir_input_value(f, k)].shape); e++)
      assert_close(f->name, k, e, out[f->noutputs + i][e], central_difference(f, a, k, e));
  }
  free_outputs(g, out);
  ir_func_free(g);
}

/* ---- one case per op ---------------------------------------------------------- */

typedef int (*BuildFn)(IrFunc *f, const int *x);

typedef struct OpCase {
  const char *name;
  BuildFn build;
  int nargs;
  IrType type[3];
  IrShape shape[3];
  Domain domain[3];
} OpCase;

static int add(IrFunc *f, const int *x) { return ir_binary(f, IR_ADD, x[0], x[1]); }
static int sub(IrFunc *f, const int *x) { return ir_binary(f, IR_SUB, x[0], x[1]); }
static int mul(IrFunc *f, const int *x) { return ir_binary(f, IR_MUL, x[0], x[1]); }
static int square(IrFunc *f, const int *x) { return ir_binary(f, IR_MUL, x[0], x[0]); }
static int div_(IrFunc *f, const int *x) { return ir_binary(f, IR_DIV, x[0], x[1]); }
static int neg(IrFunc *f, const int *x) { return ir_unary(f, IR_NEG, x[0]); }
static int exp_(IrFunc *f, const int *x) { return ir_unary(f, IR_EXP, x[0]); }
static int log_(IrFunc *f, const int *x) { return ir_unary(f, IR_LOG, x[0]); }
static int sin_(IrFunc *f, const int *x) { return ir_unary(f, IR_SIN, x[0]); }
static int cos_(IrFunc *f, const int *x) { return ir_unary(f, IR_COS, x[0]); }
static int tanh_(IrFunc *f, const int *x) { return ir_unary(f, IR_TANH, x[0]); }
static int sigmoid(IrFunc *f, const int *x) { return ir_unary(f, IR_SIGMOID, x[0]); }
static int relu(IrFunc *f, const int *x) { return ir_unary(f, IR_RELU, x[0]); }
static int step(IrFunc *f, const int *x) { return ir_unary(f, IR_STEP, x[0]); }
static int sqrt_(IrFunc *f, const int *x) { return ir_unary(f, IR_SQRT, x[0]); }
static int abs_(IrFunc *f, const int *x) { return ir_unary(f, IR_ABS, x[0]); }
/* x * detach(x): no case in op_cases, since finite differences see through
 * detach; test_detach_blocks_gradient checks it. */
static int half_detached(IrFunc *f, const int *x) {
  return ir_binary(f, IR_MUL, x[0], ir_unary(f, IR_DETACH, x[0]));
}
static int bcast0(IrFunc *f, const int *x) { return ir_bcast(f, x[0], 0, IR_MAT(4, 3)); }
static int bcast1(IrFunc *f, const int *x) { return ir_bcast(f, x[0], 1, IR_MAT(3, 5)); }
static int bcast_all(IrFunc *f, const int *x) { return ir_bcast(f, x[0], -1, IR_MAT(2, 3)); }
static int sum0(IrFunc *f, const int *x) { return ir_sum(f, x[0], 0); }
static int sum1(IrFunc *f, const int *x) { return ir_sum(f, x[0], 1); }
static int sum_all(IrFunc *f, const int *x) { return ir_sum(f, x[0], -1); }
static int mm(IrFunc *f, const int *x) { return ir_matmul(f, x[0], x[1], false, false); }
static int mm_ta(IrFunc *f, const int *x) { return ir_matmul(f, x[0], x[1], true, false); }
static int mm_tb(IrFunc *f, const int *x) { return ir_matmul(f, x[0], x[1], false, true); }
static int mm_tab(IrFunc *f, const int *x) { return ir_matmul(f, x[0], x[1], true, true); }
static int concat(IrFunc *f, const int *x) {
  int parts[] = {x[0], x[1], x[0], x[2]};
  return ir_concat(f, parts, 4);
}
static int slice(IrFunc *f, const int *x) { return ir_slice(f, x[0], 1, 3); }
static int pad(IrFunc *f, const int *x) { return ir_pad(f, x[0], 2, 6); }
static int concat_rows(IrFunc *f, const int *x) {
  int parts[] = {x[0], x[1], x[0], x[2]};
  return ir_concat_rows(f, parts, 4);
}
static int slice_rows(IrFunc *f, const int *x) { return ir_slice_rows(f, x[0], 1, 3); }
static int pad_rows(IrFunc *f, const int *x) { return ir_pad_rows(f, x[0], 2, 6); }
static int gather(IrFunc *f, const int *x) { return ir_gather(f, x[0], x[1]); }
static int gather_const(IrFunc *f, const int *x) {
  return ir_gather(f, x[0], ir_const_i32(f, 3, IR_VEC(4)));
}
static int scatter(IrFunc *f, const int *x) { return ir_scatter_add(f, x[0], x[1], 5); }

#define REAL1(shape, dom) 1, {TY_REAL}, {shape}, {dom}
#define REAL2(s0, s1, d1) 2, {TY_REAL, TY_REAL}, {s0, s1}, {ANYWHERE, d1}

/* Index arguments draw rows from 0..4 (tables have 5 rows). */
static const OpCase op_cases[] = {
    {"add", add, REAL2(IR_MAT(2, 3), IR_MAT(2, 3), ANYWHERE)},
    {"sub", sub, REAL2(IR_MAT(2, 3), IR_MAT(2, 3), ANYWHERE)},
    {"mul", mul, REAL2(IR_MAT(2, 3), IR_MAT(2, 3), ANYWHERE)},
    {"mul_same", square, REAL1(IR_VEC(4), ANYWHERE)},
    {"div", div_, REAL2(IR_MAT(2, 3), IR_MAT(2, 3), POSITIVE)},
    {"neg", neg, REAL1(IR_VEC(4), ANYWHERE)},
    {"exp", exp_, REAL1(IR_VEC(4), ANYWHERE)},
    {"log", log_, REAL1(IR_VEC(4), POSITIVE)},
    {"sin", sin_, REAL1(IR_VEC(4), ANYWHERE)},
    {"cos", cos_, REAL1(IR_VEC(4), ANYWHERE)},
    {"tanh", tanh_, REAL1(IR_VEC(4), ANYWHERE)},
    {"sigmoid", sigmoid, REAL1(IR_VEC(4), ANYWHERE)},
    {"relu", relu, REAL1(IR_MAT(3, 4), ANYWHERE)},
    {"step", step, REAL1(IR_MAT(3, 4), ANYWHERE)},
    {"sqrt", sqrt_, REAL1(IR_VEC(4), POSITIVE)},
    {"abs", abs_, REAL1(IR_MAT(3, 4), ANYWHERE)},
    {"bcast0", bcast0, REAL1(IR_VEC(3), ANYWHERE)},
    {"bcast1", bcast1, REAL1(IR_VEC(3), ANYWHERE)},
    {"bcast_all", bcast_all, REAL1(IR_SCALAR, ANYWHERE)},
    {"sum0", sum0, REAL1(IR_MAT(3, 4), ANYWHERE)},
    {"sum1", sum1, REAL1(IR_MAT(3, 4), ANYWHERE)},
    {"sum_all", sum_all, REAL1(IR_MAT(3, 4), ANYWHERE)},
    {"matmul", mm, REAL2(IR_MAT(2, 3), IR_MAT(3, 4), ANYWHERE)},
    {"matmul_ta", mm_ta, REAL2(IR_MAT(3, 2), IR_MAT(3, 4), ANYWHERE)},
    {"matmul_tb", mm_tb, REAL2(IR_MAT(2, 3), IR_MAT(4, 3), ANYWHERE)},
    {"matmul_tab", mm_tab, REAL2(IR_MAT(3, 2), IR_MAT(4, 3), ANYWHERE)},
    {"concat", concat, 3, {TY_REAL, TY_REAL, TY_REAL},
     {IR_MAT(2, 3), IR_MAT(2, 1), IR_MAT(2, 2)}, {ANYWHERE, ANYWHERE, ANYWHERE}},
    {"slice", slice, REAL1(IR_MAT(2, 5), ANYWHERE)},
    {"pad", pad, REAL1(IR_MAT(3, 2), ANYWHERE)},
    {"concat_rows", concat_rows, 3, {TY_REAL, TY_REAL, TY_REAL},
     {IR_MAT(3, 2), IR_MAT(1, 2), IR_MAT(2, 2)}, {ANYWHERE, ANYWHERE, ANYWHERE}},
    {"slice_rows", slice_rows, REAL1(IR_MAT(5, 2), ANYWHERE)},
    {"pad_rows", pad_rows, REAL1(IR_MAT(3, 2), ANYWHERE)},
    {"gather_const", gather_const, REAL1(IR_MAT(5, 3), ANYWHERE)},
    {"gather", gather, 2, {TY_REAL, TY_I32}, {IR_MAT(5, 3), IR_VEC(7)}, {ANYWHERE, INDEX}},
    {"scatter_add", scatter, 2, {TY_REAL, TY_I32}, {IR_MAT(7, 3), IR_VEC(7)},
     {ANYWHERE, INDEX}},
};

enum { NCASES = sizeof op_cases / sizeof op_cases[0] };

/* loss = sum(w * op(x...)), w a fixed random tensor of op's shape */
static IrFunc *weighted_loss(const OpCase *c) {
  IrFunc *f = ir_func_new(c->name);
  int x[3];
  for (int k = 0; k < c->nargs; k++)
    x[k] = ir_input(f, NULL, c->type[k], c->shape[k]);
  int y = c->build(f, x);
  long n = ir_numel(f->ins[y].shape);
  double *w = malloc(n * sizeof *w);
  for (long e = 0; e < n; e++)
    w[e] = uniform(-1, 1);
  int weights = ir_tensor(f, w, f->ins[y].shape);
  free(w);
  ir_output(f, ir_sum(f, ir_binary(f, IR_MUL, weights, y), -1));
  return f;
}

START_TEST(test_adjoint_rule) {
  const OpCase *c = &op_cases[_i];
  rng_state = 0x9e3779b97f4a7c15u + (uint64_t)_i;
  IrFunc *f = weighted_loss(c);
  ArgValues a = random_args(f, c->domain, 5);
  int wrt[3], nwrt = 0;
  for (int k = 0; k < c->nargs; k++)
    if (c->type[k] == TY_REAL)
      wrt[nwrt++] = k;
  gradcheck(f, wrt, nwrt, &a);
  free_args(&a);
  ir_func_free(f);
}
END_TEST

/* Every op with operands appears in some case above; detach, whose
 * gradient differs from finite differences by design, has its own test. */
START_TEST(test_every_op_is_covered) {
  bool seen[IR_NOPS] = {false};
  for (int i = 0; i < NCASES; i++) {
    IrFunc *f = weighted_loss(&op_cases[i]);
    for (int v = 0; v < f->nins; v++)
      seen[f->ins[v].op] = true;
    ir_func_free(f);
  }
  for (int op = 0; op < IR_NOPS; op++)
    ck_assert_msg(seen[op] || op == IR_CONST || op == IR_DETACH, "no gradient check for %s",
                  ir_op_name((IrOp)op));
}
END_TEST

static const OpCase *find_case(const char *name) {
  for (int i = 0; i < NCASES; i++)
    if (strcmp(op_cases[i].name, name) == 0)
      return &op_cases[i];
  ck_abort_msg("no case %s", name);
  return NULL;
}

/* step passes no gradient: exactly zero, not merely small. */
START_TEST(test_step_gradient_is_exact_zero) {
  IrFunc *f = weighted_loss(find_case("step"));
  Domain any = ANYWHERE;
  ArgValues a = random_args(f, &any, 0);
  int wrt = 0;
  IrFunc *g = ad_grad(f, &wrt, 1, "grad");
  double **out = run_outputs(g, &a);
  for (int e = 0; e < 12; e++)
    ck_assert(out[1][e] == 0.0);
  ck_assert_int_eq(g->ins[g->outputs[1]].op, IR_CONST);
  free_outputs(g, out);
  ir_func_free(g);
  free_args(&a);
  ir_func_free(f);
}
END_TEST

/* loss = sum(w * x * detach(x)): d loss / dx = w * x exactly (the detached
 * factor is a constant), where finite differences would give 2 w x. */
START_TEST(test_detach_blocks_gradient) {
  OpCase c = {"half_detached", half_detached, REAL1(IR_VEC(4), ANYWHERE)};
  rng_state = 99;
  IrFunc *f = weighted_loss(&c);
  ArgValues a = random_args(f, c.domain, 0);
  int wrt = 0;
  IrFunc *g = ad_grad(f, &wrt, 1, "grad");
  double **out = run_outputs(g, &a);
  const double *w = f->ins[f->ins[f->ins[f->outputs[0]].args[0]].args[0]].data;
  for (int e = 0; e < 4; e++)
    ck_assert_double_eq_tol(out[1][e], w[e] * a.val[0][e], 1e-15);
  free_outputs(g, out);
  ir_func_free(g);
  free_args(&a);
  ir_func_free(f);
}
END_TEST

/* |x|' = sign(x), and 0 at 0 exactly. */
START_TEST(test_abs_gradient_at_zero) {
  IrFunc *f = ir_func_new("abs0");
  int x = ir_input(f, "x", TY_REAL, IR_VEC(3));
  ir_output(f, ir_sum(f, ir_unary(f, IR_ABS, x), -1));
  int wrt = 0;
  IrFunc *g = ad_grad(f, &wrt, 1, "grad");
  double in[3] = {-2, 0, 3}, loss, grad[3];
  const double *args[] = {in};
  double *outs[] = {&loss, grad};
  char err[256];
  ck_assert_msg(interp_run(g, args, outs, err, sizeof err) == 0, "%s", err);
  ck_assert(loss == 5 && grad[0] == -1 && grad[1] == 0 && grad[2] == 1);
  ir_func_free(g);
  ir_func_free(f);
}
END_TEST

/* ---- a small AUNN-like MLP ------------------------------------------------------- */

enum { B = 4, BANDS = 2, V = 3, E = 2, H = 5, C = 2 };
enum { ARG_T, ARG_IDS, ARG_EMB, ARG_W1, ARG_B1, ARG_W2, ARG_B2, ARG_Y, ARG_UNUSED };

static int dense(IrFunc *f, int x, int w, int b) {
  int y = ir_matmul(f, x, w, false, false);
  return ir_binary(f, IR_ADD, y, ir_bcast(f, b, 0, f->ins[y].shape));
}

/* [sin(t omega), cos(t omega), emb[ids]] -> tanh dense -> silu dense -> mse */
static IrFunc *mlp_loss(void) {
  IrFunc *f = ir_func_new("mlp");
  int t = ir_input(f, "t", TY_REAL, IR_VEC(B));
  int ids = ir_input(f, "ids", TY_I32, IR_VEC(B));
  int emb = ir_input(f, "emb", TY_REAL, IR_MAT(V, E));
  int w1 = ir_input(f, "w1", TY_REAL, IR_MAT(2 * BANDS + E, H));
  int b1 = ir_input(f, "b1", TY_REAL, IR_VEC(H));
  int w2 = ir_input(f, "w2", TY_REAL, IR_MAT(H, C));
  int b2 = ir_input(f, "b2", TY_REAL, IR_VEC(C));
  int y = ir_input(f, "y", TY_REAL, IR_MAT(B, C));
  ir_input(f, "unused", TY_REAL, IR_VEC(3));
  double omega[BANDS] = {0.7, 2.3};
  int om = ir_bcast(f, ir_tensor(f, omega, IR_VEC(BANDS)), 0, IR_MAT(B, BANDS));
  int phase = ir_binary(f, IR_MUL, ir_bcast(f, t, 1, IR_MAT(B, BANDS)), om);
  int parts[] = {ir_unary(f, IR_SIN, phase), ir_unary(f, IR_COS, phase), ir_gather(f, emb, ids)};
  int h = ir_unary(f, IR_TANH, dense(f, ir_concat(f, parts, 3), w1, b1));
  int pre = dense(f, h, w2, b2);
  int out = ir_binary(f, IR_MUL, pre, ir_unary(f, IR_SIGMOID, pre));
  int d = ir_binary(f, IR_SUB, out, y);
  int sse = ir_sum(f, ir_binary(f, IR_MUL, d, d), -1);
  ir_output(f, ir_binary(f, IR_MUL, sse, ir_const(f, 1.0 / (B * C), IR_SCALAR)));
  ir_output(f, out);
  return f;
}

static const int mlp_wrt[] = {ARG_EMB, ARG_W1, ARG_B1, ARG_W2, ARG_B2, ARG_UNUSED};
enum { MLP_NWRT = sizeof mlp_wrt / sizeof mlp_wrt[0] };

static ArgValues mlp_args(const IrFunc *f) {
  rng_state = 12345;
  const Domain domain[] = {ANYWHERE, INDEX, ANYWHERE, ANYWHERE, ANYWHERE,
                           ANYWHERE, ANYWHERE, ANYWHERE, ANYWHERE};
  return random_args(f, domain, V);
}

START_TEST(test_mlp_gradient) {
  IrFunc *f = mlp_loss();
  ArgValues a = mlp_args(f);
  gradcheck(f, mlp_wrt, MLP_NWRT, &a);
  free_args(&a);
  ir_func_free(f);
}
END_TEST

START_TEST(test_unused_input_gets_exact_zeros) {
  IrFunc *f = mlp_loss();
  ArgValues a = mlp_args(f);
  IrFunc *g = ad_grad(f, mlp_wrt, MLP_NWRT, "grad");
  double **out = run_outputs(g, &a);
  double *unused = out[g->noutputs - 1];
  for (int e = 0; e < 3; e++)
    ck_assert(unused[e] == 0.0);
  free_outputs(g, out);
  free_args(&a);
  ir_func_free(g);
  ir_func_free(f);
}
END_TEST

static int count_in_sweep(const IrFunc *f, const IrFunc *g, IrOp op) {
  int n = 0;
  for (int v = f->nins; v < g->nins; v++)
    n += g->ins[v].op == op;
  return n;
}

/* The Fourier features of t and the target y are inactive: no sin or cos
 * derivatives, no slices for the feature columns, no negation for y. */
START_TEST(test_activity_skips_inactive_values) {
  IrFunc *f = mlp_loss();
  IrFunc *g = ad_grad(f, mlp_wrt, MLP_NWRT, "grad");
  ck_assert_int_eq(count_in_sweep(f, g, IR_SIN), 0);
  ck_assert_int_eq(count_in_sweep(f, g, IR_COS), 0);
  ck_assert_int_eq(count_in_sweep(f, g, IR_NEG), 0);
  ck_assert_int_eq(count_in_sweep(f, g, IR_SLICE), 1);
  ck_assert_int_eq(count_in_sweep(f, g, IR_SCATTER_ADD), 1);
  ir_func_free(g);
  ir_func_free(f);
}
END_TEST

/* loss = sum of w_i * (block i of x), blocks of rows or columns: with
 * disjoint blocks, or blocks of equal ranges (summed first), the adjoint of
 * x is one concat (zeros in the gaps), with partly overlapping ones a sum of
 * pads; all match finite differences. */
static void check_blocks(int axis, const int *starts, int n, int npads, int nconcats) {
  IrFunc *f = ir_func_new("blocks");
  int x = ir_input(f, "x", TY_REAL, IR_MAT(8, 8)), total = -1;
  for (int i = 0; i < n; i++) {
    int block = axis ? ir_slice(f, x, starts[i], 2) : ir_slice_rows(f, x, starts[i], 2);
    int w = ir_const(f, i + 1.5, f->ins[block].shape);
    int term = ir_sum(f, ir_binary(f, IR_MUL, w, ir_unary(f, IR_SIN, block)), -1);
    total = total < 0 ? term : ir_binary(f, IR_ADD, total, term);
  }
  ir_output(f, total);
  rng_state = 7;
  Domain any = ANYWHERE;
  ArgValues a = random_args(f, &any, 0);
  int wrt = 0;
  gradcheck(f, &wrt, 1, &a);
  IrFunc *g = ad_grad(f, &wrt, 1, "grad");
  ck_assert_int_eq(count_in_sweep(f, g, IR_PAD), npads);
  ck_assert_int_eq(count_in_sweep(f, g, IR_CONCAT), nconcats);
  ir_func_free(g);
  free_args(&a);
  ir_func_free(f);
}

START_TEST(test_adjoint_of_blocks) {
  int disjoint[] = {6, 0, 2}, overlapping[] = {0, 1}, repeated[] = {0, 4, 0};
  check_blocks(0, disjoint, 3, 0, 1);
  check_blocks(0, repeated, 3, 0, 1);
  check_blocks(1, disjoint, 3, 0, 1);
  check_blocks(0, overlapping, 2, 2, 0);
  check_blocks(1, disjoint, 1, 1, 0);
}
END_TEST

/* With nothing to differentiate the sweep adds nothing at all. */
START_TEST(test_no_wrt_adds_nothing) {
  IrFunc *f = mlp_loss();
  IrFunc *g = ad_grad(f, NULL, 0, "grad");
  ck_assert_int_eq(g->nins, f->nins);
  ck_assert_int_eq(g->noutputs, f->noutputs);
  ir_func_free(g);
  ir_func_free(f);
}
END_TEST

/* Gradients keep f's inputs and outputs first, in order and by name. */
START_TEST(test_grad_keeps_signature) {
  IrFunc *f = mlp_loss();
  IrFunc *g = ad_grad(f, mlp_wrt, MLP_NWRT, "mlp_grad");
  ck_assert_str_eq(g->name, "mlp_grad");
  ck_assert_int_eq(g->ninputs, f->ninputs);
  for (int k = 0; k < f->ninputs; k++)
    ck_assert_str_eq(g->ins[ir_input_value(g, k)].name, f->ins[ir_input_value(f, k)].name);
  for (int i = 0; i < MLP_NWRT; i++)
    ck_assert(ir_shape_eq(g->ins[g->outputs[f->noutputs + i]].shape,
                          f->ins[ir_input_value(f, mlp_wrt[i])].shape));
  ir_func_free(g);
  ir_func_free(f);
}
END_TEST

static Suite *autodiff_suite(void) {
  Suite *s = suite_create("autodiff");
  TCase *rules = tcase_create("rules");
  tcase_add_loop_test(rules, test_adjoint_rule, 0, NCASES);
  tcase_add_test(rules, test_every_op_is_covered);
  tcase_add_test(rules, test_step_gradient_is_exact_zero);
  tcase_add_test(rules, test_detach_blocks_gradient);
  tcase_add_test(rules, test_abs_gradient_at_zero);
  suite_add_tcase(s, rules);
  TCase *mlp = tcase_create("mlp");
  tcase_add_test(mlp, test_mlp_gradient);
  tcase_add_test(mlp, test_unused_input_gets_exact_zeros);
  tcase_add_test(mlp, test_activity_skips_inactive_values);
  tcase_add_test(mlp, test_adjoint_of_blocks);
  tcase_add_test(mlp, test_no_wrt_adds_nothing);
  tcase_add_test(mlp, test_grad_keeps_signature);
  suite_add_tcase(s, mlp);
  return s;
}

int main(void) {
  return test_run_suite(autodiff_suite());
}
