/*
 * autodiff.c — reverse mode as an IR-to-IR transformation.
 *
 * The gradient function first repeats the forward instructions, then walks
 * them backwards. adj[v] is the value holding d out0 / d v, or -1 for zero:
 * zeros are never materialised, and contributions accumulate with an ADD
 * into a fresh value. Only active values (those depending on a wrt input)
 * get adjoints, so nothing is spent on the constant parts of the graph
 * (encodings of t, ids, targets).
 *
 * Each op has one rule giving the contribution to operand k from the
 * adjoint dy of its result; rules read forward values through ad->map.
 */
#include <stdlib.h>

#include "ir.h"

typedef struct Ad {
  const IrFunc *f;         /* the forward function */
  IrFunc *g;               /* the gradient function being built */
  int *map;                /* forward value -> its copy in g */
  int *adj;                /* forward value -> adjoint value in g, or -1 */
  bool *active;            /* forward value depends on a wrt input */
} Ad;

/* The contribution to operand k of instruction v given dy = adjoint of v. */
typedef int (*AdjointFn)(Ad *ad, int v, int k, int dy);

static const IrInstr *fwd(const Ad *ad, int v) { return &ad->f->ins[v]; }
static int x_of(const Ad *ad, int v, int k) { return ad->map[fwd(ad, v)->args[k]]; }
static int y_of(const Ad *ad, int v) { return ad->map[v]; }

static int mul(Ad *ad, int a, int b) { return ir_binary(ad->g, IR_MUL, a, b); }

static int const_like(Ad *ad, double value, int v) {
  return ir_const(ad->g, value, fwd(ad, v)->shape);
}

/* ---- rules for elementwise ops ---------------------------------------------- */

static int adj_add(Ad *ad, int v, int k, int dy) { return dy; }

static int adj_sub(Ad *ad, int v, int k, int dy) {
  return k == 0 ? dy : ir_unary(ad->g, IR_NEG, dy);
}

static int adj_mul(Ad *ad, int v, int k, int dy) { return mul(ad, dy, x_of(ad, v, !k)); }

/* d(a/b)/da = 1/b; d(a/b)/db = -(a/b)/b */
static int adj_div(Ad *ad, int v, int k, int dy) {
  int b = x_of(ad, v, 1);
  if (k == 0)
    return ir_binary(ad->g, IR_DIV, dy, b);
  return ir_unary(ad->g, IR_NEG, ir_binary(ad->g, IR_DIV, mul(ad, dy, y_of(ad, v)), b));
}

static int adj_neg(Ad *ad, int v, int k, int dy) { return ir_unary(ad->g, IR_NEG, dy); }

static int adj_exp(Ad *ad, int v, int k, int dy) { return mul(ad, dy, y_of(ad, v)); }

static int adj_log(Ad *ad, int v, int k, int dy) {
  return ir_binary(ad->g, IR_DIV, dy, x_of(ad, v, 0));
}

static int adj_sin(Ad *ad, int v, int k, int dy) {
  return mul(ad, dy, ir_unary(ad->g, IR_COS, x_of(ad, v, 0)));
}

static int adj_cos(Ad *ad, int v, int k, int dy) {
  int minus_sin = ir_unary(ad->g, IR_NEG, ir_unary(ad->g, IR_SIN, x_of(ad, v, 0)));
  return mul(ad, dy, minus_sin);
}

/* tanh' = 1 - y^2 */
static int adj_tanh(Ad *ad, int v, int k, int dy) {
  int y = y_of(ad, v);
  int one_minus = ir_binary(ad->g, IR_SUB, const_like(ad, 1.0, v), mul(ad, y, y));
  return mul(ad, dy, one_minus);
}

/* sigmoid' = y (1 - y) */
static int adj_sigmoid(Ad *ad, int v, int k, int dy) {
  int y = y_of(ad, v);
  int one_minus = ir_binary(ad->g, IR_SUB, const_like(ad, 1.0, v), y);
  return mul(ad, dy, mul(ad, y, one_minus));
}

static int adj_relu(Ad *ad, int v, int k, int dy) {
  return mul(ad, dy, ir_unary(ad->g, IR_STEP, x_of(ad, v, 0)));
}

/* sqrt' = 0.5 / y */
static int adj_sqrt(Ad *ad, int v, int k, int dy) {
  return ir_binary(ad->g, IR_DIV, mul(ad, dy, const_like(ad, 0.5, v)), y_of(ad, v));
}

/* ---- rules for shape ops ---------------------------------------------------- */

/* bcast and sum are each other's adjoints, along the same axis. */
static int adj_bcast(Ad *ad, int v, int k, int dy) {
  return ir_sum(ad->g, dy, fwd(ad, v)->axis);
}

static int adj_sum(Ad *ad, int v, int k, int dy) {
  const IrInstr *in = fwd(ad, v);
  return ir_bcast(ad->g, dy, in->axis, fwd(ad, in->args[0])->shape);
}

/* C = op(A) op(B): d op(A) = dC op(B)^T and d op(B) = op(A)^T dC; a stored
 * transpose swaps the factors instead of materialising anything. */
static int adj_matmul(Ad *ad, int v, int k, int dy) {
  const IrInstr *in = fwd(ad, v);
  int a = x_of(ad, v, 0), b = x_of(ad, v, 1);
  bool ta = in->trans_a, tb = in->trans_b;
  if (k == 0)
    return ta ? ir_matmul(ad->g, b, dy, tb, true) : ir_matmul(ad->g, dy, b, false, !tb);
  return tb ? ir_matmul(ad->g, dy, a, true, ta) : ir_matmul(ad->g, a, dy, !ta, false);
}

static int adj_concat(Ad *ad, int v, int k, int dy) {
  const IrInstr *in = fwd(ad, v);
  int start = 0;
  for (int j = 0; j < k; j++)
    start += fwd(ad, in->args[j])->shape.dim[1];
  return ir_slice(ad->g, dy, start, fwd(ad, in->args[k])->shape.dim[1]);
}

static int adj_slice(Ad *ad, int v, int k, int dy) {
  const IrInstr *in = fwd(ad, v);
  return ir_pad(ad->g, dy, in->start, fwd(ad, in->args[0])->shape.dim[1]);
}

static int adj_pad(Ad *ad, int v, int k, int dy) {
  const IrInstr *in = fwd(ad, v);
  return ir_slice(ad->g, dy, in->start, fwd(ad, in->args[0])->shape.dim[1]);
}

/* Only the table (operand 0) is real; indices are never active. */
static int adj_gather(Ad *ad, int v, int k, int dy) {
  int rows = fwd(ad, fwd(ad, v)->args[0])->shape.dim[0];
  return ir_scatter_add(ad->g, dy, x_of(ad, v, 1), rows);
}

static int adj_scatter_add(Ad *ad, int v, int k, int dy) {
  return ir_gather(ad->g, dy, x_of(ad, v, 1));
}

/* Leaves have no operands and so no rule; step's result is never active
 * (mark_active), so it needs none either. */
static const AdjointFn adjoint_rules[IR_NOPS] = {
    [IR_ADD] = adj_add,         [IR_SUB] = adj_sub,       [IR_MUL] = adj_mul,
    [IR_DIV] = adj_div,         [IR_NEG] = adj_neg,       [IR_EXP] = adj_exp,
    [IR_LOG] = adj_log,         [IR_SIN] = adj_sin,       [IR_COS] = adj_cos,
    [IR_TANH] = adj_tanh,       [IR_SIGMOID] = adj_sigmoid, [IR_RELU] = adj_relu,
    [IR_SQRT] = adj_sqrt,     [IR_BCAST] = adj_bcast,
    [IR_SUM] = adj_sum,         [IR_MATMUL] = adj_matmul, [IR_CONCAT] = adj_concat,
    [IR_SLICE] = adj_slice,     [IR_PAD] = adj_pad,       [IR_GATHER] = adj_gather,
    [IR_SCATTER_ADD] = adj_scatter_add,
};

/* ---- the sweep -------------------------------------------------------------- */

static bool is_wrt(int index, const int *wrt, int nwrt) {
  for (int i = 0; i < nwrt; i++)
    if (wrt[i] == index)
      return true;
  return false;
}

/* Forward dataflow: a real value is active if it is a wrt input or reads an
 * active value; step passes no gradient, so its result is never active. */
static void mark_active(Ad *ad, const int *wrt, int nwrt) {
  for (int v = 0; v < ad->f->nins; v++) {
    const IrInstr *in = fwd(ad, v);
    bool active = in->op == IR_INPUT && is_wrt(in->index, wrt, nwrt);
    for (int k = 0; k < in->nargs; k++)
      active = active || ad->active[in->args[k]];
    ad->active[v] = active && in->type == TY_REAL && in->op != IR_STEP;
  }
}

static void accumulate(Ad *ad, int v, int contribution) {
  ad->adj[v] = ad->adj[v] < 0 ? contribution
                              : ir_binary(ad->g, IR_ADD, ad->adj[v], contribution);
}

static void backprop(Ad *ad, int v) {
  const IrInstr *in = fwd(ad, v);
  if (ad->adj[v] < 0 || !ad->active[v] || in->nargs == 0)
    return;
  AdjointFn rule = adjoint_rules[in->op];
  if (!rule) {
    fprintf(stderr, "lobe: internal error: no adjoint rule for %s\n", ir_op_name(in->op));
    abort();
  }
  for (int k = 0; k < in->nargs; k++) {
    if (!ad->active[in->args[k]])
      continue;
    accumulate(ad, in->args[k], rule(ad, v, k, ad->adj[v]));
  }
}

static void copy_forward(Ad *ad) {
  for (int v = 0; v < ad->f->nins; v++)
    ad->map[v] = ir_copy_instr(ad->g, fwd(ad, v), ad->map);
  for (int o = 0; o < ad->f->noutputs; o++)
    ir_output(ad->g, ad->map[ad->f->outputs[o]]);
}

static void output_gradients(Ad *ad, const int *wrt, int nwrt) {
  for (int i = 0; i < nwrt; i++) {
    int x = ir_input_value(ad->f, wrt[i]);
    if (x < 0) {
      fprintf(stderr, "lobe: internal error: %s has no argument %d\n", ad->f->name, wrt[i]);
      abort();
    }
    ir_output(ad->g, ad->adj[x] >= 0 ? ad->adj[x] : const_like(ad, 0.0, x));
  }
}

IrFunc *ad_grad(const IrFunc *f, const int *wrt, int nwrt, const char *name) {
  if (f->noutputs < 1 || f->ins[f->outputs[0]].shape.rank != 0) {
    fprintf(stderr, "lobe: internal error: %s: output 0 must be a scalar\n", f->name);
    abort();
  }
  int n = f->nins;
  Ad ad = {f, ir_func_new(name), malloc(n * sizeof(int)), malloc(n * sizeof(int)),
           calloc(n, sizeof(bool))};
  for (int v = 0; v < n; v++)
    ad.adj[v] = -1;
  mark_active(&ad, wrt, nwrt);
  copy_forward(&ad);
  int out0 = f->outputs[0];
  if (ad.active[out0])
    ad.adj[out0] = ir_const(ad.g, 1.0, IR_SCALAR);
  for (int v = n - 1; v >= 0; v--)
    backprop(&ad, v);
  output_gradients(&ad, wrt, nwrt);
  free(ad.map);
  free(ad.adj);
  free(ad.active);
  return ad.g;
}
