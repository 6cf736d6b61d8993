/*
 * ir.c — building and verifying tensor IR functions.
 *
 * One checker per op says whether an instruction is well formed given its
 * operands and attributes. The builders fill in the result shape, run the
 * checker and abort on failure (misuse is a compiler bug); ir_verify runs
 * the same checkers over a whole function, so the two can never disagree.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

static const char *const op_names[] = {
#define IR_NAME(name, text) text,
    IR_OPS(IR_NAME)
#undef IR_NAME
};

const char *ir_op_name(IrOp op) {
  return op >= 0 && op < IR_NOPS ? op_names[op] : "?";
}

/* Both read at most two dimensions: the verifier calls them on shapes it has
 * not yet checked. */
long ir_numel(IrShape s) {
  long n = 1;
  for (int i = 0; i < s.rank && i < 2; i++)
    n *= s.dim[i];
  return n;
}

bool ir_shape_eq(IrShape a, IrShape b) {
  if (a.rank != b.rank)
    return false;
  for (int i = 0; i < a.rank && i < 2; i++)
    if (a.dim[i] != b.dim[i])
      return false;
  return true;
}

bool ir_is_elementwise(IrOp op) { return op >= IR_ADD && op <= IR_DETACH; }

static bool is_binary(IrOp op) { return op >= IR_ADD && op <= IR_DIV; }

/* Unused dimensions are 1, so shapes can be compared and hashed bytewise. */
static IrShape normal_shape(IrShape s) {
  IrShape n = {s.rank, {1, 1}};
  for (int i = 0; i < s.rank && i < 2; i++)
    n.dim[i] = s.dim[i];
  return n;
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) {
    fprintf(stderr, "lobe: out of memory\n");
    abort();
  }
  return p;
}

void *ir_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) {
    fprintf(stderr, "lobe: out of memory\n");
    abort();
  }
  return p;
}

static char *xstrdup(const char *s) {
  if (!s)
    return NULL;
  size_t n = strlen(s) + 1;
  return memcpy(xrealloc(NULL, n), s, n);
}

/* ---- functions and modules ------------------------------------------------ */

IrFunc *ir_func_new(const char *name) {
  IrFunc *f = xrealloc(NULL, sizeof *f);
  *f = (IrFunc){.name = xstrdup(name)};
  return f;
}

static void free_instr(IrInstr *in) {
  free(in->args);
  free(in->data);
  free(in->name);
}

void ir_func_free(IrFunc *f) {
  if (!f)
    return;
  for (int i = 0; i < f->nins; i++)
    free_instr(&f->ins[i]);
  free(f->ins);
  free(f->outputs);
  free(f->name);
  free(f);
}

IrModule *ir_module_new(const Model *m) {
  IrModule *mod = xrealloc(NULL, sizeof *mod);
  *mod = (IrModule){.model = m, .prior = -1};
  return mod;
}

int ir_module_add(IrModule *mod, IrFunc *f) {
  mod->funcs = xrealloc(mod->funcs, (mod->nfuncs + 1) * sizeof *mod->funcs);
  mod->funcs[mod->nfuncs] = f;
  return mod->nfuncs++;
}

/* source_fns has one entry per model source (ir.h), so the model must
 * outlive the module. */
void ir_module_free(IrModule *mod) {
  if (!mod)
    return;
  for (int i = 0; i < mod->nfuncs; i++)
    ir_func_free(mod->funcs[i]);
  for (int i = 0; i < mod->nparams; i++)
    free(mod->params[i].name);
  free(mod->gate_params);
  free(mod->prior_params);
  if (mod->source_fns && mod->model)
    for (int s = 0; s < mod->model->nsources; s++) {
      free(mod->source_fns[s].grad_params);
      ir_func_free(mod->source_fns[s].export_fn);
    }
  free(mod->source_fns);
  for (int o = 0; mod->obs_fns && o < mod->model->nobservations; o++)
    free(mod->obs_fns[o].grad_params);
  free(mod->obs_fns);
  for (int a = 0; mod->aunn_spec && a < mod->model->naunns; a++) {
    free(mod->aunn_spec[a].folded);
    free(mod->aunn_spec[a].vjp_params);
  }
  free(mod->aunn_spec);
  free(mod->funcs);
  free(mod->params);
  free(mod);
}

int ir_input_value(const IrFunc *f, int index) {
  for (int i = 0; i < f->nins; i++)
    if (f->ins[i].op == IR_INPUT && f->ins[i].index == index)
      return i;
  return -1;
}

/* ---- checking one instruction --------------------------------------------- */

typedef struct Check {
  const IrFunc *f;
  const IrInstr *in;
  int id;
  char *err;
  int errlen;
} Check;

static bool fail(Check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(Check *c, const char *fmt, ...) {
  int n = snprintf(c->err, c->errlen, "%s: %%%d = %s: ",
                   c->f->name ? c->f->name : "?", c->id, ir_op_name(c->in->op));
  if (n < 0 || n >= c->errlen)
    return false;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err + n, c->errlen - n, fmt, ap);
  va_end(ap);
  return false;
}

static const IrInstr *arg(const Check *c, int k) { return &c->f->ins[c->in->args[k]]; }

/* "[]", "[n]" or "[m,n]", as in the text form */
static const char *shape_text(IrShape s, char *buf, int len) {
  if (s.rank == 0)
    snprintf(buf, len, "[]");
  else if (s.rank == 1)
    snprintf(buf, len, "[%d]", s.dim[0]);
  else
    snprintf(buf, len, "[%d,%d]%s", s.dim[0], s.dim[1], s.rank == 2 ? "" : "?");
  return buf;
}

static bool want_shape(Check *c, IrShape s) {
  char got[32], want[32];
  if (!ir_shape_eq(c->in->shape, s))
    return fail(c, "result shape is %s, expected %s",
                shape_text(c->in->shape, got, sizeof got), shape_text(s, want, sizeof want));
  return true;
}

static bool want_rank(Check *c, int k, int rank) {
  if (arg(c, k)->shape.rank != rank)
    return fail(c, "operand %d has rank %d, expected %d", k, arg(c, k)->shape.rank, rank);
  return true;
}

static bool check_leaf(Check *c) {
  IrShape s = c->in->shape;
  if (s.rank < 0 || s.rank > 2)
    return fail(c, "rank %d", s.rank);
  for (int i = 0; i < s.rank; i++)
    if (s.dim[i] < 1)
      return fail(c, "dimension %d is %d", i, s.dim[i]);
  if (c->in->op == IR_INPUT && c->in->index < 0)
    return fail(c, "argument number %d", c->in->index);
  if (c->in->op == IR_TENSOR && !c->in->data)
    return fail(c, "no data");
  if (c->in->op == IR_CONST && c->in->type == TY_I32 &&
      !(c->in->value >= INT32_MIN && c->in->value <= INT32_MAX &&
        c->in->value == (int32_t)c->in->value))
    return fail(c, "i32 constant %g is not a 32-bit integer", c->in->value);
  return true;
}

static bool check_elementwise(Check *c) {
  for (int k = 1; k < c->in->nargs; k++)
    if (!ir_shape_eq(arg(c, k)->shape, arg(c, 0)->shape))
      return fail(c, "operand shapes differ");
  return want_shape(c, arg(c, 0)->shape);
}

/* axis 0 repeats a row [n] down m rows, axis 1 a column [m] across n
 * columns; the kept dimension of the result is dim[!axis]. */
static bool check_bcast(Check *c) {
  IrShape to = c->in->shape;
  int axis = c->in->axis;
  if (axis == -1)
    return want_rank(c, 0, 0) && check_leaf(c);
  if (axis != 0 && axis != 1)
    return fail(c, "axis %d", axis);
  if (!want_rank(c, 0, 1))
    return false;
  if (to.rank != 2 || to.dim[axis] < 1 || to.dim[!axis] != arg(c, 0)->shape.dim[0])
    return fail(c, "axis %d cannot broadcast [%d] to [%d,%d]", axis,
                arg(c, 0)->shape.dim[0], to.dim[0], to.dim[1]);
  return true;
}

static bool check_sum(Check *c) {
  IrShape s = arg(c, 0)->shape;
  switch (c->in->axis) {
  case -1:
    return want_shape(c, IR_SCALAR);
  case 0:
    return want_rank(c, 0, 2) && want_shape(c, IR_VEC(s.dim[1]));
  case 1:
    return want_rank(c, 0, 2) && want_shape(c, IR_VEC(s.dim[0]));
  }
  return fail(c, "axis %d", c->in->axis);
}

static bool check_matmul(Check *c) {
  if (!want_rank(c, 0, 2) || !want_rank(c, 1, 2))
    return false;
  IrShape a = arg(c, 0)->shape, b = arg(c, 1)->shape;
  int m = a.dim[c->in->trans_a], ka = a.dim[!c->in->trans_a];
  int kb = b.dim[c->in->trans_b], n = b.dim[!c->in->trans_b];
  if (ka != kb)
    return fail(c, "inner dimensions %d and %d differ", ka, kb);
  return want_shape(c, IR_MAT(m, n));
}

/* Concat, slice and pad work along `axis` (1: columns, 0: rows) of rank-2
 * values; `kept` is the other dimension, which they leave alone. */
static bool want_block_axis(Check *c) {
  if (c->in->axis != 0 && c->in->axis != 1)
    return fail(c, "axis %d", c->in->axis);
  return true;
}

static const char *axis_unit(int axis) { return axis ? "columns" : "rows"; }

/* The result shape with `along` in dimension axis and `kept` in the other. */
static IrShape block_shape(int axis, int along, int kept) {
  return axis ? IR_MAT(kept, along) : IR_MAT(along, kept);
}

static bool check_concat(Check *c) {
  if (c->in->nargs < 1)
    return fail(c, "no operands");
  if (!want_block_axis(c))
    return false;
  int axis = c->in->axis, kept = arg(c, 0)->shape.dim[!axis], along = 0;
  for (int k = 0; k < c->in->nargs; k++) {
    if (!want_rank(c, k, 2))
      return false;
    if (arg(c, k)->shape.dim[!axis] != kept)
      return fail(c, "operand %d has %d %s, expected %d", k, arg(c, k)->shape.dim[!axis],
                  axis_unit(!axis), kept);
    along += arg(c, k)->shape.dim[axis];
  }
  return want_shape(c, block_shape(axis, along, kept));
}

static bool check_slice(Check *c) {
  if (!want_block_axis(c))
    return false;
  if (!want_rank(c, 0, 2) || c->in->shape.rank != 2)
    return fail(c, "needs rank-2 operand and result");
  int axis = c->in->axis;
  int n = arg(c, 0)->shape.dim[axis], len = c->in->shape.dim[axis];
  if (c->in->start < 0 || len < 1 || c->in->start + len > n)
    return fail(c, "%s [%d,%d) outside [0,%d)", axis_unit(axis), c->in->start,
                c->in->start + len, n);
  return want_shape(c, block_shape(axis, len, arg(c, 0)->shape.dim[!axis]));
}

static bool check_pad(Check *c) {
  if (!want_block_axis(c))
    return false;
  if (!want_rank(c, 0, 2) || c->in->shape.rank != 2)
    return fail(c, "needs rank-2 operand and result");
  int axis = c->in->axis;
  int len = arg(c, 0)->shape.dim[axis], n = c->in->shape.dim[axis];
  if (c->in->start < 0 || c->in->start + len > n)
    return fail(c, "%s [%d,%d) outside [0,%d)", axis_unit(axis), c->in->start,
                c->in->start + len, n);
  return want_shape(c, block_shape(axis, n, arg(c, 0)->shape.dim[!axis]));
}

static bool want_index(Check *c, int k, int rows) {
  if (arg(c, k)->type != TY_I32 || arg(c, k)->shape.rank != 1 ||
      arg(c, k)->shape.dim[0] != rows)
    return fail(c, "index operand must be i32[%d]", rows);
  return true;
}

static bool check_gather(Check *c) {
  if (!want_rank(c, 0, 2))
    return false;
  int m = arg(c, 1)->shape.dim[0];
  return want_index(c, 1, m) && want_shape(c, IR_MAT(m, arg(c, 0)->shape.dim[1]));
}

static bool check_scatter_add(Check *c) {
  if (!want_rank(c, 0, 2) || !want_index(c, 1, arg(c, 0)->shape.dim[0]))
    return false;
  if (c->in->shape.rank != 2 || c->in->shape.dim[0] < 1)
    return fail(c, "needs a rank-2 result with at least one row");
  return want_shape(c, IR_MAT(c->in->shape.dim[0], arg(c, 0)->shape.dim[1]));
}

typedef bool (*CheckFn)(Check *c);

/* nargs -1: any number (concat) */
static const struct {
  int nargs;
  CheckFn check;
} op_rules[IR_NOPS] = {
    [IR_INPUT] = {0, check_leaf},       [IR_CONST] = {0, check_leaf},
    [IR_TENSOR] = {0, check_leaf},      [IR_ADD] = {2, check_elementwise},
    [IR_SUB] = {2, check_elementwise},  [IR_MUL] = {2, check_elementwise},
    [IR_DIV] = {2, check_elementwise},  [IR_NEG] = {1, check_elementwise},
    [IR_EXP] = {1, check_elementwise},  [IR_LOG] = {1, check_elementwise},
    [IR_SIN] = {1, check_elementwise},  [IR_COS] = {1, check_elementwise},
    [IR_TANH] = {1, check_elementwise}, [IR_SIGMOID] = {1, check_elementwise},
    [IR_RELU] = {1, check_elementwise}, [IR_STEP] = {1, check_elementwise},
    [IR_SQRT] = {1, check_elementwise}, [IR_ABS] = {1, check_elementwise},
    [IR_DETACH] = {1, check_elementwise}, [IR_BCAST] = {1, check_bcast},
    [IR_SUM] = {1, check_sum},          [IR_MATMUL] = {2, check_matmul},
    [IR_CONCAT] = {-1, check_concat},   [IR_SLICE] = {1, check_slice},
    [IR_PAD] = {1, check_pad},          [IR_GATHER] = {2, check_gather},
    [IR_SCATTER_ADD] = {2, check_scatter_add},
};

/* Only an index operand (operand 1 of gather and scatter_add) is i32, and
 * only leaves (inputs, constants, tensors) produce i32 values. */
static bool check_types(Check *c) {
  const IrInstr *in = c->in;
  if (in->op != IR_INPUT && in->op != IR_CONST && in->op != IR_TENSOR &&
      in->type != TY_REAL)
    return fail(c, "result must be real");
  bool has_index = in->op == IR_GATHER || in->op == IR_SCATTER_ADD;
  for (int k = 0; k < in->nargs; k++)
    if (arg(c, k)->type != TY_REAL && !(has_index && k == 1))
      return fail(c, "operand %d (%%%d) is not real", k, in->args[k]);
  return true;
}

static bool check_instr(Check *c) {
  const IrInstr *in = c->in;
  if (in->op < 0 || in->op >= IR_NOPS)
    return fail(c, "unknown op %d", (int)in->op);
  int want = op_rules[in->op].nargs;
  if ((want >= 0 && in->nargs != want) || in->nargs < 0)
    return fail(c, "%d operands, expected %d", in->nargs, want);
  if (in->nargs > 0 && !in->args)
    return fail(c, "missing operand list");
  for (int k = 0; k < in->nargs; k++)
    if (in->args[k] < 0 || in->args[k] >= c->id)
      return fail(c, "operand %d is %%%d, not an earlier value", k, in->args[k]);
  return check_types(c) && op_rules[in->op].check(c);
}

/* ---- the builder ------------------------------------------------------------ */

/* Appends `in` (taking ownership of its pointers) after checking it. */
static int append(IrFunc *f, IrInstr in) {
  in.shape = normal_shape(in.shape);
  char err[256];
  Check c = {f, &in, f->nins, err, sizeof err};
  if (!check_instr(&c)) {
    fprintf(stderr, "lobe: internal error: bad IR instruction: %s\n", err);
    abort();
  }
  if (f->nins == f->cap) {
    f->cap = f->cap ? 2 * f->cap : 16;
    f->ins = xrealloc(f->ins, f->cap * sizeof *f->ins);
  }
  f->ins[f->nins] = in;
  return f->nins++;
}

static int *arg_list(const int *args, int n) {
  int *copy = xrealloc(NULL, n * sizeof *copy);
  if (n > 0)
    memcpy(copy, args, n * sizeof *copy);
  return copy;
}

static bool valid_value(const IrFunc *f, int v) { return v >= 0 && v < f->nins; }

/* Shapes of builder operands are read before append's checks run. */
static IrShape shape_of(const IrFunc *f, int v) {
  if (!valid_value(f, v)) {
    fprintf(stderr, "lobe: internal error: %s: no value %%%d\n", f->name, v);
    abort();
  }
  return f->ins[v].shape;
}

static int build(IrFunc *f, IrOp op, IrShape shape, const int *args, int nargs) {
  return append(f, (IrInstr){.op = op, .type = TY_REAL, .shape = shape,
                             .nargs = nargs, .args = arg_list(args, nargs)});
}

int ir_input(IrFunc *f, const char *name, IrType type, IrShape shape) {
  int id = append(f, (IrInstr){.op = IR_INPUT, .type = type, .shape = shape,
                               .index = f->ninputs, .name = xstrdup(name)});
  f->ninputs++;
  return id;
}

int ir_const(IrFunc *f, double value, IrShape shape) {
  return append(f, (IrInstr){.op = IR_CONST, .type = TY_REAL, .shape = shape,
                             .value = value});
}

int ir_const_i32(IrFunc *f, int value, IrShape shape) {
  return append(f, (IrInstr){.op = IR_CONST, .type = TY_I32, .shape = shape,
                             .value = value});
}

int ir_tensor(IrFunc *f, const double *data, IrShape shape) {
  long n = ir_numel(normal_shape(shape));
  double *copy = xrealloc(NULL, (n > 0 ? n : 1) * sizeof *copy);
  if (n > 0)
    memcpy(copy, data, n * sizeof *copy);
  return append(f, (IrInstr){.op = IR_TENSOR, .type = TY_REAL, .shape = shape,
                             .data = copy});
}

int ir_tensor_i32(IrFunc *f, const int *data, IrShape shape) {
  long n = ir_numel(normal_shape(shape));
  double *copy = xrealloc(NULL, (n > 0 ? n : 1) * sizeof *copy);
  for (long i = 0; i < n; i++)
    copy[i] = data[i];
  return append(f, (IrInstr){.op = IR_TENSOR, .type = TY_I32, .shape = shape,
                             .data = copy});
}

int ir_binary(IrFunc *f, IrOp op, int a, int b) {
  if (!is_binary(op)) {
    fprintf(stderr, "lobe: internal error: %s is not a binary op\n", ir_op_name(op));
    abort();
  }
  int args[2] = {a, b};
  return build(f, op, shape_of(f, a), args, 2);
}

int ir_unary(IrFunc *f, IrOp op, int a) {
  if (!ir_is_elementwise(op) || is_binary(op)) {
    fprintf(stderr, "lobe: internal error: %s is not a unary op\n", ir_op_name(op));
    abort();
  }
  return build(f, op, shape_of(f, a), &a, 1);
}

int ir_bcast(IrFunc *f, int a, int axis, IrShape to) {
  shape_of(f, a);
  return append(f, (IrInstr){.op = IR_BCAST, .type = TY_REAL, .shape = to, .nargs = 1,
                             .args = arg_list(&a, 1), .axis = axis});
}

int ir_sum(IrFunc *f, int a, int axis) {
  IrShape s = shape_of(f, a);
  IrShape to = axis < 0 ? IR_SCALAR : IR_VEC(s.dim[axis == 0 ? 1 : 0]);
  return append(f, (IrInstr){.op = IR_SUM, .type = TY_REAL, .shape = to, .nargs = 1,
                             .args = arg_list(&a, 1), .axis = axis});
}

int ir_matmul(IrFunc *f, int a, int b, bool trans_a, bool trans_b) {
  IrShape sa = shape_of(f, a), sb = shape_of(f, b);
  int args[2] = {a, b};
  IrShape to = IR_MAT(sa.dim[trans_a ? 1 : 0], sb.dim[trans_b ? 0 : 1]);
  return append(f, (IrInstr){.op = IR_MATMUL, .type = TY_REAL, .shape = to, .nargs = 2,
                             .args = arg_list(args, 2), .trans_a = trans_a,
                             .trans_b = trans_b});
}

static int concat_along(IrFunc *f, int axis, const int *parts, int n) {
  int along = 0;
  for (int k = 0; k < n; k++)
    along += shape_of(f, parts[k]).dim[axis];
  int kept = n > 0 ? shape_of(f, parts[0]).dim[!axis] : 0;
  return append(f, (IrInstr){.op = IR_CONCAT, .type = TY_REAL,
                             .shape = block_shape(axis, along, kept), .nargs = n,
                             .args = arg_list(parts, n), .axis = axis});
}

/* slice (len) and pad (n) set the result's extent along axis */
static int block_op(IrFunc *f, IrOp op, int axis, int a, int start, int n) {
  IrShape s = shape_of(f, a);
  return append(f, (IrInstr){.op = op, .type = TY_REAL,
                             .shape = block_shape(axis, n, s.dim[!axis]), .nargs = 1,
                             .args = arg_list(&a, 1), .axis = axis, .start = start});
}

int ir_concat(IrFunc *f, const int *parts, int n) { return concat_along(f, 1, parts, n); }

int ir_slice(IrFunc *f, int a, int start, int len) {
  return block_op(f, IR_SLICE, 1, a, start, len);
}

int ir_pad(IrFunc *f, int a, int start, int cols) {
  return block_op(f, IR_PAD, 1, a, start, cols);
}

int ir_concat_rows(IrFunc *f, const int *parts, int n) {
  return concat_along(f, 0, parts, n);
}

int ir_slice_rows(IrFunc *f, int a, int start, int len) {
  return block_op(f, IR_SLICE, 0, a, start, len);
}

int ir_pad_rows(IrFunc *f, int a, int start, int rows) {
  return block_op(f, IR_PAD, 0, a, start, rows);
}

int ir_gather(IrFunc *f, int table, int idx) {
  IrShape st = shape_of(f, table), si = shape_of(f, idx);
  int args[2] = {table, idx};
  return build(f, IR_GATHER, IR_MAT(si.dim[0], st.dim[1]), args, 2);
}

int ir_scatter_add(IrFunc *f, int src, int idx, int rows) {
  IrShape s = shape_of(f, src);
  shape_of(f, idx);
  int args[2] = {src, idx};
  return build(f, IR_SCATTER_ADD, IR_MAT(rows, s.dim[1]), args, 2);
}

void ir_output(IrFunc *f, int value) {
  shape_of(f, value);
  f->outputs = xrealloc(f->outputs, (f->noutputs + 1) * sizeof *f->outputs);
  f->outputs[f->noutputs++] = value;
}

/* A copied INPUT keeps its argument number; ninputs grows to cover it. */
int ir_copy_instr(IrFunc *f, const IrInstr *in, const int *map) {
  IrInstr copy = *in;
  copy.args = xrealloc(NULL, (in->nargs > 0 ? in->nargs : 1) * sizeof *copy.args);
  for (int k = 0; k < in->nargs; k++)
    copy.args[k] = map[in->args[k]];
  copy.name = xstrdup(in->name);
  copy.data = NULL;
  if (in->op == IR_TENSOR) {
    long n = ir_numel(in->shape);
    copy.data = memcpy(xrealloc(NULL, n * sizeof *copy.data), in->data,
                       n * sizeof *copy.data);
  }
  int id = append(f, copy);
  if (in->op == IR_INPUT && in->index >= f->ninputs)
    f->ninputs = in->index + 1;
  return id;
}

/* ---- verifying a whole function ------------------------------------------- */

static int verify_inputs(const IrFunc *f, char *err, int errlen) {
  int *seen = calloc(f->ninputs > 0 ? f->ninputs : 1, sizeof *seen);
  int status = 0;
  for (int i = 0; i < f->nins && status == 0; i++) {
    const IrInstr *in = &f->ins[i];
    if (in->op != IR_INPUT)
      continue;
    if (in->index >= f->ninputs || seen[in->index]) {
      snprintf(err, errlen, "%s: %%%d: argument number %d is out of range or repeated",
               f->name, i, in->index);
      status = -1;
    } else {
      seen[in->index] = 1;
    }
  }
  for (int k = 0; k < f->ninputs && status == 0; k++)
    if (!seen[k]) {
      snprintf(err, errlen, "%s: argument %d has no input instruction", f->name, k);
      status = -1;
    }
  free(seen);
  return status;
}

int ir_verify(const IrFunc *f, char *err, int errlen) {
  for (int i = 0; i < f->nins; i++) {
    Check c = {f, &f->ins[i], i, err, errlen};
    if (!check_instr(&c))
      return -1;
  }
  if (verify_inputs(f, err, errlen) < 0)
    return -1;
  for (int o = 0; o < f->noutputs; o++)
    if (!valid_value(f, f->outputs[o])) {
      snprintf(err, errlen, "%s: output %d is %%%d, not a value", f->name, o,
               f->outputs[o]);
      return -1;
    }
  return 0;
}
