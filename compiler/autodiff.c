/*
 * autodiff.c — reverse mode as an IR-to-IR transformation.
 *
 * The gradient function first repeats the forward instructions, then walks
 * them backwards. adj[v] is the value holding d out0 / d v, or -1 for zero:
 * zeros are never materialised, and contributions accumulate with an ADD
 * into a fresh value. Only active values (those depending on a wrt input)
 * get adjoints, so nothing is spent on the constant parts of the graph
 * (encodings of t, ids, targets, detached values).
 *
 * Each op has one rule giving the contribution to operand k from the
 * adjoint dy of its result; rules read forward values through ad->map.
 *
 * The adjoints of slices wait as blocks until their value is reached: when
 * they are disjoint, the value's adjoint is the concat of the blocks (zeros
 * in the gaps), not a sum of zero-padded copies, so a value read in W
 * slices (a window's steps) costs O(W) and not O(W^2).
 */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* A slice's adjoint dy waiting to be added to its operand's adjoint, at
 * start along axis; next: the operand's next waiting block, or -1. */
typedef struct Block {
  int dy, axis, start, next;
} Block;

typedef struct Ad {
  const IrFunc *f;         /* the forward function */
  IrFunc *g;               /* the gradient function being built */
  int *map;                /* forward value -> its copy in g */
  int *adj;                /* forward value -> adjoint value in g, or -1 */
  bool *active;            /* forward value depends on a wrt input */
  int *pending;            /* forward value -> its first waiting block, or -1 */
  Block *blocks;
  int nblocks, cap;
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

/* |x|' = sign(x) = step(x) - step(-x), so 0 at 0 */
static int adj_abs(Ad *ad, int v, int k, int dy) {
  int x = x_of(ad, v, 0);
  int sign = ir_binary(ad->g, IR_SUB, ir_unary(ad->g, IR_STEP, x),
                       ir_unary(ad->g, IR_STEP, ir_unary(ad->g, IR_NEG, x)));
  return mul(ad, dy, sign);
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

/* concat, slice and pad along columns or rows: each other's adjoints, along
 * the same axis */
static int slice_along(Ad *ad, int axis, int x, int start, int len) {
  return axis ? ir_slice(ad->g, x, start, len) : ir_slice_rows(ad->g, x, start, len);
}

static int adj_concat(Ad *ad, int v, int k, int dy) {
  const IrInstr *in = fwd(ad, v);
  int start = 0;
  for (int j = 0; j < k; j++)
    start += fwd(ad, in->args[j])->shape.dim[in->axis];
  return slice_along(ad, in->axis, dy, start, fwd(ad, in->args[k])->shape.dim[in->axis]);
}

static int adj_pad(Ad *ad, int v, int k, int dy) {
  const IrInstr *in = fwd(ad, v);
  return slice_along(ad, in->axis, dy, in->start, fwd(ad, in->args[0])->shape.dim[in->axis]);
}

/* Only the table (operand 0) is real; indices are never active. */
static int adj_gather(Ad *ad, int v, int k, int dy) {
  int rows = fwd(ad, fwd(ad, v)->args[0])->shape.dim[0];
  return ir_scatter_add(ad->g, dy, x_of(ad, v, 1), rows);
}

static int adj_scatter_add(Ad *ad, int v, int k, int dy) {
  return ir_gather(ad->g, dy, x_of(ad, v, 1));
}

/* Leaves have no operands and so no rule; the results of step and detach
 * are never active (mark_active), so they need none either. A slice's
 * adjoint is a block of its operand's (accumulate_block). */
static const AdjointFn adjoint_rules[IR_NOPS] = {
    [IR_ADD] = adj_add,         [IR_SUB] = adj_sub,       [IR_MUL] = adj_mul,
    [IR_DIV] = adj_div,         [IR_NEG] = adj_neg,       [IR_EXP] = adj_exp,
    [IR_LOG] = adj_log,         [IR_SIN] = adj_sin,       [IR_COS] = adj_cos,
    [IR_TANH] = adj_tanh,       [IR_SIGMOID] = adj_sigmoid, [IR_RELU] = adj_relu,
    [IR_SQRT] = adj_sqrt,       [IR_ABS] = adj_abs,       [IR_BCAST] = adj_bcast,
    [IR_SUM] = adj_sum,         [IR_MATMUL] = adj_matmul, [IR_CONCAT] = adj_concat,
    [IR_PAD] = adj_pad,         [IR_GATHER] = adj_gather,
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
 * active value; step and detach pass no gradient, so their results never
 * are. */
static void mark_active(Ad *ad, const int *wrt, int nwrt) {
  for (int v = 0; v < ad->f->nins; v++) {
    const IrInstr *in = fwd(ad, v);
    bool active = in->op == IR_INPUT && is_wrt(in->index, wrt, nwrt);
    for (int k = 0; k < in->nargs; k++)
      active = active || ad->active[in->args[k]];
    ad->active[v] = active && in->type == TY_REAL && in->op != IR_STEP &&
                    in->op != IR_DETACH;
  }
}

static void accumulate(Ad *ad, int v, int contribution) {
  ad->adj[v] = ad->adj[v] < 0 ? contribution
                              : ir_binary(ad->g, IR_ADD, ad->adj[v], contribution);
}

static void accumulate_block(Ad *ad, int v, int dy, int axis, int start) {
  if (ad->nblocks == ad->cap) {
    ad->cap = ad->cap ? 2 * ad->cap : 16;
    ad->blocks = realloc(ad->blocks, ad->cap * sizeof *ad->blocks);
  }
  ad->blocks[ad->nblocks] = (Block){dy, axis, start, ad->pending[v]};
  ad->pending[v] = ad->nblocks++;
}

static int block_len(const Ad *ad, const Block *b) {
  return ad->g->ins[b->dy].shape.dim[b->axis];
}

/* Sorts blocks along one axis by start and adds up those of equal range
 * (the same step read by several regions); returns how many are left, or
 * 0 if they do not lie along one axis without overlapping. */
static int merge_blocks(Ad *ad, Block *b, int n) {
  for (int i = 1; i < n; i++)
    if (b[i].axis != b[0].axis)
      return 0;
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && b[j - 1].start > b[j].start; j--) {
      Block t = b[j];
      b[j] = b[j - 1];
      b[j - 1] = t;
    }
  int m = 1;
  for (int i = 1; i < n; i++) {
    Block *last = &b[m - 1];
    if (b[i].start == last->start && block_len(ad, &b[i]) == block_len(ad, last))
      last->dy = ir_binary(ad->g, IR_ADD, last->dy, b[i].dy);
    else if (last->start + block_len(ad, last) <= b[i].start)
      b[m++] = b[i];
    else
      return 0;
  }
  return m;
}

/* Zeros of `len` rows or columns (by axis) beside blocks of `shape`. */
static int zero_block(Ad *ad, int axis, int len, IrShape shape) {
  return ir_const(ad->g, 0.0, axis ? IR_MAT(shape.dim[0], len) : IR_MAT(len, shape.dim[1]));
}

/* Sorted, disjoint blocks of v's adjoint side by side, zeros in the gaps. */
static int concat_blocks(Ad *ad, int v, const Block *b, int n) {
  IrShape shape = fwd(ad, v)->shape;
  int axis = b[0].axis, at = 0, nparts = 0;
  int *parts = malloc((2 * n + 1) * sizeof *parts);
  for (int i = 0; i < n; i++) {
    if (b[i].start > at)
      parts[nparts++] = zero_block(ad, axis, b[i].start - at, shape);
    parts[nparts++] = b[i].dy;
    at = b[i].start + block_len(ad, &b[i]);
  }
  if (at < shape.dim[axis])
    parts[nparts++] = zero_block(ad, axis, shape.dim[axis] - at, shape);
  int c = axis ? ir_concat(ad->g, parts, nparts) : ir_concat_rows(ad->g, parts, nparts);
  free(parts);
  return c;
}

static int pad_block(Ad *ad, int v, const Block *b) {
  int n = fwd(ad, v)->shape.dim[b->axis];
  return b->axis ? ir_pad(ad->g, b->dy, b->start, n) : ir_pad_rows(ad->g, b->dy, b->start, n);
}

/* Adds v's waiting blocks to its adjoint: one concat of their sums by range
 * if the ranges do not overlap, else each padded, in the order they came. */
static void settle(Ad *ad, int v) {
  int n = 0;
  for (int p = ad->pending[v]; p >= 0; p = ad->blocks[p].next)
    n++;
  if (n == 0)
    return;
  Block *b = malloc(n * sizeof *b);
  int k = n;
  for (int p = ad->pending[v]; p >= 0; p = ad->blocks[p].next)
    b[--k] = ad->blocks[p];
  ad->pending[v] = -1;
  Block *merged = malloc(n * sizeof *merged);
  memcpy(merged, b, n * sizeof *b);
  int m = n > 1 ? merge_blocks(ad, merged, n) : 0;
  if (m > 0)
    accumulate(ad, v, concat_blocks(ad, v, merged, m));
  else
    for (int i = 0; i < n; i++)
      accumulate(ad, v, pad_block(ad, v, &b[i]));
  free(merged);
  free(b);
}

static void backprop(Ad *ad, int v) {
  const IrInstr *in = fwd(ad, v);
  settle(ad, v);
  if (ad->adj[v] < 0 || !ad->active[v] || in->nargs == 0)
    return;
  if (in->op == IR_SLICE) {
    if (ad->active[in->args[0]])
      accumulate_block(ad, in->args[0], ad->adj[v], in->axis, in->start);
    return;
  }
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
    settle(ad, x);
    ir_output(ad->g, ad->adj[x] >= 0 ? ad->adj[x] : const_like(ad, 0.0, x));
  }
}

IrFunc *ad_grad(const IrFunc *f, const int *wrt, int nwrt, const char *name) {
  if (f->noutputs < 1 || f->ins[f->outputs[0]].shape.rank != 0) {
    fprintf(stderr, "lobe: internal error: %s: output 0 must be a scalar\n", f->name);
    abort();
  }
  int n = f->nins;
  Ad ad = {.f = f, .g = ir_func_new(name), .map = malloc(n * sizeof(int)),
           .adj = malloc(n * sizeof(int)), .active = calloc(n, sizeof(bool)),
           .pending = malloc(n * sizeof(int))};
  for (int v = 0; v < n; v++)
    ad.adj[v] = ad.pending[v] = -1;
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
  free(ad.pending);
  free(ad.blocks);
  return ad.g;
}
