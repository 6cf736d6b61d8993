/*
 * interp.c — the reference evaluator: every value in a double buffer, every
 * op written the plainest way. Compiled code is checked against it, so it
 * favours obviousness over speed.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct Interp {
  const IrFunc *f;
  double **val;            /* val[i]: numel(ins[i].shape) doubles */
  char *err;
  int errlen;
} Interp;

typedef int (*EvalFn)(Interp *ip, const IrInstr *in, double *dst);

static int fail(Interp *ip, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(Interp *ip, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ip->err, ip->errlen, fmt, ap);
  va_end(ap);
  return -1;
}

static const double *operand(const Interp *ip, const IrInstr *in, int k) {
  return ip->val[in->args[k]];
}

static int cols_of(const Interp *ip, int v) {
  IrShape s = ip->f->ins[v].shape;
  return s.rank == 2 ? s.dim[1] : 1;
}

/* ---- leaves ----------------------------------------------------------------- */

static int eval_const(Interp *ip, const IrInstr *in, double *dst) {
  for (long i = 0; i < ir_numel(in->shape); i++)
    dst[i] = in->value;
  return 0;
}

static int eval_tensor(Interp *ip, const IrInstr *in, double *dst) {
  memcpy(dst, in->data, ir_numel(in->shape) * sizeof *dst);
  return 0;
}

/* ---- elementwise ------------------------------------------------------------ */

static double apply_binary(IrOp op, double a, double b) {
  switch (op) {
  case IR_ADD: return a + b;
  case IR_SUB: return a - b;
  case IR_MUL: return a * b;
  default:     return a / b;
  }
}

static double apply_unary(IrOp op, double x) {
  switch (op) {
  case IR_NEG:     return -x;
  case IR_EXP:     return exp(x);
  case IR_LOG:     return log(x);
  case IR_SIN:     return sin(x);
  case IR_COS:     return cos(x);
  case IR_TANH:    return tanh(x);
  case IR_SIGMOID: return 1.0 / (1.0 + exp(-x));
  case IR_RELU:    return x > 0 ? x : 0.0;
  case IR_STEP:    return x > 0 ? 1.0 : 0.0;
  case IR_ABS:     return fabs(x);
  case IR_DETACH:  return x;
  default:         return sqrt(x);
  }
}

static int eval_binary(Interp *ip, const IrInstr *in, double *dst) {
  const double *a = operand(ip, in, 0), *b = operand(ip, in, 1);
  for (long i = 0; i < ir_numel(in->shape); i++)
    dst[i] = apply_binary(in->op, a[i], b[i]);
  return 0;
}

static int eval_unary(Interp *ip, const IrInstr *in, double *dst) {
  const double *x = operand(ip, in, 0);
  for (long i = 0; i < ir_numel(in->shape); i++)
    dst[i] = apply_unary(in->op, x[i]);
  return 0;
}

/* ---- shape ops -------------------------------------------------------------- */

/* Element (i, j) of the result reads element i (axis 1), j (axis 0) or 0. */
static int eval_bcast(Interp *ip, const IrInstr *in, double *dst) {
  const double *x = operand(ip, in, 0);
  int n = in->shape.rank == 2 ? in->shape.dim[1] : 1;
  for (long e = 0; e < ir_numel(in->shape); e++)
    dst[e] = in->axis == 0 ? x[e % n] : in->axis == 1 ? x[e / n] : x[0];
  return 0;
}

static int eval_sum(Interp *ip, const IrInstr *in, double *dst) {
  const double *x = operand(ip, in, 0);
  const IrShape xs = ip->f->ins[in->args[0]].shape;
  int n = xs.rank == 2 ? xs.dim[1] : 1;
  memset(dst, 0, ir_numel(in->shape) * sizeof *dst);
  for (long e = 0; e < ir_numel(xs); e++)
    dst[in->axis == 0 ? e % n : in->axis == 1 ? e / n : 0] += x[e];
  return 0;
}

/* op(a)[i][p] with op a transpose when trans is set */
static double at(const double *a, int ld, bool trans, int i, int p) {
  return trans ? a[(long)p * ld + i] : a[(long)i * ld + p];
}

static int eval_matmul(Interp *ip, const IrInstr *in, double *dst) {
  const double *a = operand(ip, in, 0), *b = operand(ip, in, 1);
  int lda = cols_of(ip, in->args[0]), ldb = cols_of(ip, in->args[1]);
  int m = in->shape.dim[0], n = in->shape.dim[1];
  int k = ip->f->ins[in->args[0]].shape.dim[in->trans_a ? 0 : 1];
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int p = 0; p < k; p++)
        s += at(a, lda, in->trans_a, i, p) * at(b, ldb, in->trans_b, p, j);
      dst[(long)i * n + j] = s;
    }
  return 0;
}

/* Copies columns [from, from+len) of each row of src (width sw) to columns
 * [to, to+len) of dst (width dw). */
static void copy_columns(double *dst, int dw, int to, const double *src, int sw,
                         int from, int len, int rows) {
  for (int r = 0; r < rows; r++)
    memcpy(dst + (long)r * dw + to, src + (long)r * sw + from, len * sizeof *dst);
}

/* Along rows (axis 0) every block is a contiguous run of whole rows. */
static int eval_concat(Interp *ip, const IrInstr *in, double *dst) {
  int rows = in->shape.dim[0], cols = in->shape.dim[1], at = 0;
  for (int k = 0; k < in->nargs; k++) {
    int w = cols_of(ip, in->args[k]);
    long n = ir_numel(ip->f->ins[in->args[k]].shape);
    if (in->axis == 0)
      memcpy(dst + (long)at * cols, operand(ip, in, k), n * sizeof *dst);
    else
      copy_columns(dst, cols, at, operand(ip, in, k), w, 0, w, rows);
    at += ip->f->ins[in->args[k]].shape.dim[in->axis];
  }
  return 0;
}

static int eval_slice(Interp *ip, const IrInstr *in, double *dst) {
  int len = in->shape.dim[1], cols = cols_of(ip, in->args[0]);
  if (in->axis == 0)
    memcpy(dst, operand(ip, in, 0) + (long)in->start * cols,
           ir_numel(in->shape) * sizeof *dst);
  else
    copy_columns(dst, len, 0, operand(ip, in, 0), cols, in->start, len, in->shape.dim[0]);
  return 0;
}

static int eval_pad(Interp *ip, const IrInstr *in, double *dst) {
  int len = cols_of(ip, in->args[0]), cols = in->shape.dim[1];
  memset(dst, 0, ir_numel(in->shape) * sizeof *dst);
  if (in->axis == 0)
    memcpy(dst + (long)in->start * cols, operand(ip, in, 0),
           ir_numel(ip->f->ins[in->args[0]].shape) * sizeof *dst);
  else
    copy_columns(dst, cols, in->start, operand(ip, in, 0), len, 0, len, in->shape.dim[0]);
  return 0;
}

/* Index k of operand `idx` as a row of a table with `rows` rows, or -1. */
static long row_index(Interp *ip, const IrInstr *in, int k, int rows) {
  double x = operand(ip, in, 1)[k];
  if (!(x >= 0 && x < rows) || x != floor(x))
    return fail(ip, "%s: %s: index %g at position %d is not a row of 0..%d",
                ip->f->name, ir_op_name(in->op), x, k, rows - 1);
  return (long)x;
}

static int eval_gather(Interp *ip, const IrInstr *in, double *dst) {
  const double *table = operand(ip, in, 0);
  int rows = ip->f->ins[in->args[0]].shape.dim[0], e = in->shape.dim[1];
  for (int k = 0; k < in->shape.dim[0]; k++) {
    long r = row_index(ip, in, k, rows);
    if (r < 0)
      return -1;
    memcpy(dst + (long)k * e, table + r * e, e * sizeof *dst);
  }
  return 0;
}

static int eval_scatter_add(Interp *ip, const IrInstr *in, double *dst) {
  const double *src = operand(ip, in, 0);
  int e = in->shape.dim[1];
  memset(dst, 0, ir_numel(in->shape) * sizeof *dst);
  for (int k = 0; k < ip->f->ins[in->args[0]].shape.dim[0]; k++) {
    long r = row_index(ip, in, k, in->shape.dim[0]);
    if (r < 0)
      return -1;
    for (int j = 0; j < e; j++)
      dst[r * e + j] += src[(long)k * e + j];
  }
  return 0;
}

/* No INPUT: run() points its value at the caller's argument. */
static const EvalFn eval_fns[IR_NOPS] = {
    [IR_CONST] = eval_const,   [IR_TENSOR] = eval_tensor,
    [IR_ADD] = eval_binary,    [IR_SUB] = eval_binary,    [IR_MUL] = eval_binary,
    [IR_DIV] = eval_binary,    [IR_NEG] = eval_unary,     [IR_EXP] = eval_unary,
    [IR_LOG] = eval_unary,     [IR_SIN] = eval_unary,     [IR_COS] = eval_unary,
    [IR_TANH] = eval_unary,    [IR_SIGMOID] = eval_unary, [IR_RELU] = eval_unary,
    [IR_STEP] = eval_unary,    [IR_SQRT] = eval_unary,    [IR_ABS] = eval_unary,
    [IR_DETACH] = eval_unary,  [IR_BCAST] = eval_bcast,
    [IR_SUM] = eval_sum,       [IR_MATMUL] = eval_matmul, [IR_CONCAT] = eval_concat,
    [IR_SLICE] = eval_slice,   [IR_PAD] = eval_pad,       [IR_GATHER] = eval_gather,
    [IR_SCATTER_ADD] = eval_scatter_add,
};

/* ---- running a function ---------------------------------------------------- */

static int check_arguments(Interp *ip, const double *const *in) {
  for (int k = 0; k < ip->f->ninputs; k++)
    if (!in[k])
      return fail(ip, "%s: argument %d is missing", ip->f->name, k);
  return 0;
}

/* Evaluates every instruction in order; inputs alias the caller's buffers. */
static int run(Interp *ip, const double *const *in) {
  for (int i = 0; i < ip->f->nins; i++) {
    const IrInstr *ins = &ip->f->ins[i];
    if (ins->op == IR_INPUT) {
      ip->val[i] = (double *)in[ins->index];
      continue;
    }
    ip->val[i] = malloc(ir_numel(ins->shape) * sizeof **ip->val);
    if (!ip->val[i])
      return fail(ip, "%s: out of memory at %%%d", ip->f->name, i);
    if (eval_fns[ins->op](ip, ins, ip->val[i]) < 0)
      return -1;
  }
  return 0;
}

int interp_run(const IrFunc *f, const double *const *in, double *const *out,
               char *err, int errlen) {
  if (ir_verify(f, err, errlen) < 0)
    return -1;
  Interp ip = {f, calloc(f->nins ? f->nins : 1, sizeof *ip.val), err, errlen};
  int status = check_arguments(&ip, in) < 0 ? -1 : run(&ip, in);
  for (int o = 0; status == 0 && o < f->noutputs; o++) {
    int v = f->outputs[o];
    memcpy(out[o], ip.val[v], ir_numel(f->ins[v].shape) * sizeof **out);
  }
  for (int i = 0; i < f->nins; i++)
    if (f->ins[i].op != IR_INPUT)
      free(ip.val[i]);
  free(ip.val);
  return status;
}
