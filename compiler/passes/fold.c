/*
 * fold.c — constant folding and algebraic identities, in one forward sweep.
 *
 * An op whose operands are all constants is evaluated by the interpreter
 * (so folding can never disagree with it) and becomes a CONST when every
 * element is equal, else a TENSOR if that holds no more elements than its
 * largest constant operand: folding never grows constant storage, so a
 * broadcast table stays a broadcast. Identities: x+0, 0+x, x-0, x*1, 1*x,
 * x/1 -> x; 0-x -> -x; -(-x) -> x; x*0, 0*x and matmuls with a zero factor
 * -> 0 (as under fast-math: an inf or NaN in x is not propagated).
 * Replaced instructions stay in place, unused, for DCE to remove.
 */
#include <stdlib.h>

#include "ir.h"

/* The value every element of a constant holds, if they are all equal. */
static bool uniform_value(const IrInstr *in, double *value) {
  if (in->op == IR_CONST) {
    *value = in->value;
    return true;
  }
  if (in->op != IR_TENSOR)
    return false;
  for (long e = 1; e < ir_numel(in->shape); e++)
    if (in->data[e] != in->data[0])
      return false;
  *value = in->data[0];
  return true;
}

static bool is_const(const IrFunc *f, int v, double value) {
  double x;
  return uniform_value(&f->ins[v], &x) && x == value;
}

static void become_const(IrInstr *in, double value) {
  free(in->args);
  free(in->data);
  *in = (IrInstr){.op = IR_CONST, .type = in->type, .shape = in->shape,
                  .value = value, .name = in->name};
}

/* x+0, 0+x, x-0, x*1, 1*x, x/1: the operand x, else -1 */
static int neutral_operand(const IrFunc *f, const IrInstr *in) {
  int a = in->args[0], b = in->args[1];
  switch (in->op) {
  case IR_ADD:
    return is_const(f, b, 0) ? a : is_const(f, a, 0) ? b : -1;
  case IR_SUB:
    return is_const(f, b, 0) ? a : -1;
  case IR_MUL:
    return is_const(f, b, 1) ? a : is_const(f, a, 1) ? b : -1;
  default:
    return is_const(f, b, 1) ? a : -1;
  }
}

static bool has_zero_factor(const IrFunc *f, const IrInstr *in) {
  return (in->op == IR_MUL || in->op == IR_MATMUL) &&
         (is_const(f, in->args[0], 0) || is_const(f, in->args[1], 0));
}

/* An existing value equal to v, or -1 after perhaps rewriting v in place. */
static int simplify(IrFunc *f, int v) {
  IrInstr *in = &f->ins[v];
  int x = in->op >= IR_ADD && in->op <= IR_DIV ? neutral_operand(f, in) : -1;
  if (x >= 0)
    return x;
  if (has_zero_factor(f, in)) {
    become_const(in, 0);
  } else if (in->op == IR_SUB && is_const(f, in->args[0], 0)) {
    in->op = IR_NEG;   /* 0 - x */
    in->args[0] = in->args[1];
    in->nargs = 1;
  } else if (in->op == IR_NEG && f->ins[in->args[0]].op == IR_NEG) {
    return f->ins[in->args[0]].args[0];
  }
  return -1;
}

static bool all_operands_constant(const IrFunc *f, const IrInstr *in) {
  for (int k = 0; k < in->nargs; k++)
    if (f->ins[in->args[k]].op != IR_CONST && f->ins[in->args[k]].op != IR_TENSOR)
      return false;
  return in->nargs > 0;
}

static long largest_tensor(const IrFunc *f, const IrInstr *in) {
  long most = 0;
  for (int k = 0; k < in->nargs; k++)
    if (f->ins[in->args[k]].op == IR_TENSOR && ir_numel(f->ins[in->args[k]].shape) > most)
      most = ir_numel(f->ins[in->args[k]].shape);
  return most;
}

/* The values of v computed by the interpreter on a copy of v and its
 * constant operands; NULL if it fails. */
static double *evaluate(const IrFunc *f, int v) {
  const IrInstr *in = &f->ins[v];
  IrFunc *tiny = ir_func_new("fold");
  int *map = malloc(f->nins * sizeof *map);
  for (int k = 0; k < in->nargs; k++)
    map[in->args[k]] = ir_copy_instr(tiny, &f->ins[in->args[k]], NULL);
  ir_output(tiny, ir_copy_instr(tiny, in, map));
  double *result = malloc(ir_numel(in->shape) * sizeof *result);
  char err[256];
  if (interp_run(tiny, NULL, &result, err, sizeof err) < 0) {
    free(result);
    result = NULL;
  }
  free(map);
  ir_func_free(tiny);
  return result;
}

static void fold_constants(IrFunc *f, int v) {
  IrInstr *in = &f->ins[v];
  double *result = evaluate(f, v);
  if (!result)
    return;
  long n = ir_numel(in->shape);
  long e = 1;
  while (e < n && result[e] == result[0])
    e++;
  if (e == n) {
    become_const(in, result[0]);
    free(result);
  } else if (n <= largest_tensor(f, in)) {
    become_const(in, 0);
    in->op = IR_TENSOR;
    in->data = result;
  } else {
    free(result);
  }
}

static void fold_leaf(IrInstr *in) {
  double value;
  if (in->op == IR_TENSOR && uniform_value(in, &value))
    become_const(in, value);
}

void pass_fold(IrFunc *f) {
  int *same = malloc((f->nins ? f->nins : 1) * sizeof *same);
  for (int v = 0; v < f->nins; v++) {
    IrInstr *in = &f->ins[v];
    for (int k = 0; k < in->nargs; k++)
      in->args[k] = same[in->args[k]];
    same[v] = v;
    int existing = simplify(f, v);
    if (existing >= 0)
      same[v] = existing;
    else if (all_operands_constant(f, in))
      fold_constants(f, v);
    else
      fold_leaf(in);
  }
  for (int o = 0; o < f->noutputs; o++)
    f->outputs[o] = same[f->outputs[o]];
  free(same);
}
