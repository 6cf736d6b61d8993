/*
 * codegen_c.c — an IR function printed as portable C99: one loop nest per
 * instruction, f32 values in static arrays, no BLAS and no runtime, so the
 * text compiles with any C compiler and links with -lm alone. It serves
 * `brain export` (docs/specialisation.md): lobec embeds the text of each
 * source's export kernel in the model descriptor. Speed is the C compiler's
 * business; the loops are written so that -O2 vectorises the inner ones.
 * Transcendentals go through double libm, as in the interpreter.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "../runtime/c_literal.h"

typedef struct CPrinter {
  FILE *out;
  const IrFunc *f;
} CPrinter;

static const IrInstr *instr(const CPrinter *p, int v) { return &p->f->ins[v]; }
static IrShape shape(const CPrinter *p, int v) { return p->f->ins[v].shape; }
static int cols(IrShape s) { return s.rank == 2 ? s.dim[1] : 1; }
static const char *ctype(IrType t) { return t == TY_I32 ? "int32_t" : "float"; }

/* The expression of unary op applied to x (an element's text). */
static void print_unary(FILE *o, IrOp op, const char *x) {
  switch (op) {
  case IR_NEG: fprintf(o, "-%s", x); break;
  case IR_EXP: fprintf(o, "(float)exp((double)%s)", x); break;
  case IR_LOG: fprintf(o, "(float)log((double)%s)", x); break;
  case IR_SIN: fprintf(o, "(float)sin((double)%s)", x); break;
  case IR_COS: fprintf(o, "(float)cos((double)%s)", x); break;
  case IR_TANH: fprintf(o, "(float)tanh((double)%s)", x); break;
  case IR_SIGMOID: fprintf(o, "(float)(1.0 / (1.0 + exp(-(double)%s)))", x); break;
  case IR_RELU: fprintf(o, "(%s > 0 ? %s : 0.0f)", x, x); break;
  case IR_STEP: fprintf(o, "(%s > 0 ? 1.0f : 0.0f)", x); break;
  case IR_SQRT: fprintf(o, "(float)sqrt((double)%s)", x); break;
  case IR_ABS: fprintf(o, "(float)fabs((double)%s)", x); break;
  default: fputs(x, o); break;   /* DETACH */
  }
}

static const char *binary_symbol(IrOp op) {
  return op == IR_ADD ? "+" : op == IR_SUB ? "-" : op == IR_MUL ? "*" : "/";
}

static void loop(FILE *o, const char *indent, const char *var, long n) {
  fprintf(o, "%sfor (long %s = 0; %s < %ld; %s++)\n", indent, var, var, n, var);
}

static void zero(FILE *o, int v, long n) {
  fprintf(o, "  memset(v%d, 0, %ld * sizeof *v%d);\n", v, n, v);
}

static void print_leaf(CPrinter *p, int v) {
  const IrInstr *in = instr(p, v);
  FILE *o = p->out;
  long n = ir_numel(in->shape);
  const char *t = ctype(in->type);
  if (in->op == IR_INPUT) {
    fprintf(o, "  const %s *v%d = (const %s *)in[%d];\n", t, v, t, in->index);
  } else if (in->op == IR_CONST) {
    fprintf(o, "  static %s v%d[%ld];\n", t, v, n);
    loop(o, "  ", "i", n);
    fprintf(o, "    v%d[i] = ", v);
    if (in->type == TY_I32)
      fprintf(o, "%d", (int)in->value);
    else
      c_float_literal(o, in->value);
    fputs(";\n", o);
  } else {   /* TENSOR */
    fprintf(o, "  static const %s v%d[%ld] = {", t, v, n);
    for (long i = 0; i < n; i++) {
      fputs(i == 0 ? "\n    " : i % 8 ? ", " : ",\n    ", o);
      if (in->type == TY_I32)
        fprintf(o, "%d", (int)in->data[i]);
      else
        c_float_literal(o, in->data[i]);
    }
    fputs("};\n", o);
  }
}

static void print_elementwise(CPrinter *p, int v) {
  const IrInstr *in = instr(p, v);
  FILE *o = p->out;
  loop(o, "  ", "i", ir_numel(in->shape));
  fprintf(o, "    v%d[i] = ", v);
  if (in->nargs == 2) {
    fprintf(o, "v%d[i] %s v%d[i];\n", in->args[0], binary_symbol(in->op), in->args[1]);
    return;
  }
  char x[32];
  snprintf(x, sizeof x, "v%d[i]", in->args[0]);
  print_unary(o, in->op, x);
  fputs(";\n", o);
}

/* Element e of the result reads element e % n (axis 0), e / n (axis 1) or 0. */
static void print_bcast(CPrinter *p, int v) {
  const IrInstr *in = instr(p, v);
  int n = cols(in->shape), x = in->args[0];
  loop(p->out, "  ", "e", ir_numel(in->shape));
  if (in->axis == 0)
    fprintf(p->out, "    v%d[e] = v%d[e %% %d];\n", v, x, n);
  else if (in->axis == 1)
    fprintf(p->out, "    v%d[e] = v%d[e / %d];\n", v, x, n);
  else
    fprintf(p->out, "    v%d[e] = v%d[0];\n", v, x);
}

static void print_sum(CPrinter *p, int v) {
  const IrInstr *in = instr(p, v);
  int x = in->args[0], n = cols(shape(p, x));
  zero(p->out, v, ir_numel(in->shape));
  loop(p->out, "  ", "e", ir_numel(shape(p, x)));
  const char *at = in->axis == 0 ? "e %% %d" : in->axis == 1 ? "e / %d" : "0 * %d";
  fprintf(p->out, "    v%d[", v);
  fprintf(p->out, at, n);
  fprintf(p->out, "] += v%d[e];\n", x);
}

/* i-p-j order: the inner loop runs along rows of the result and of b. */
static void print_matmul(CPrinter *p, int v) {
  const IrInstr *in = instr(p, v);
  FILE *o = p->out;
  int a = in->args[0], b = in->args[1];
  int m = in->shape.dim[0], n = in->shape.dim[1];
  int k = shape(p, a).dim[in->trans_a ? 0 : 1];
  int lda = cols(shape(p, a)), ldb = cols(shape(p, b));
  zero(o, v, ir_numel(in->shape));
  loop(o, "  ", "i", m);
  loop(o, "    ", "q", k);
  fputs("    {\n", o);
  fprintf(o, in->trans_a ? "      float x = v%d[q * %d + i];\n" : "      float x = v%d[i * %d + q];\n",
          a, lda);
  loop(o, "      ", "j", n);
  fprintf(o, "        v%d[i * %d + j] += x * ", v, n);
  fprintf(o, in->trans_b ? "v%d[j * %d + q];\n" : "v%d[q * %d + j];\n", b, ldb);
  fputs("    }\n", o);
}

/* Rows of src, columns [from, from + len), to columns [to, to + len) of dst. */
static void copy_block(CPrinter *p, int dst, int dw, int to, int src, int sw, int from,
                       int len, int rows) {
  loop(p->out, "  ", "r", rows);
  loop(p->out, "    ", "c", len);
  fprintf(p->out, "      v%d[r * %d + %d + c] = v%d[r * %d + %d + c];\n", dst, dw, to, src,
          sw, from);
}

/* A run of whole rows: [row, row + rows) of src to row `at` of dst. */
static void copy_rows(CPrinter *p, int dst, long at, int src, long from, long n) {
  fprintf(p->out, "  memcpy(v%d + %ld, v%d + %ld, %ld * sizeof *v%d);\n", dst, at, src, from,
          n, dst);
}

static void print_concat(CPrinter *p, int v) {
  const IrInstr *in = instr(p, v);
  int rows = in->shape.dim[0], width = in->shape.dim[1], at = 0;
  for (int k = 0; k < in->nargs; k++) {
    IrShape s = shape(p, in->args[k]);
    if (in->axis == 0)
      copy_rows(p, v, (long)at * width, in->args[k], 0, ir_numel(s));
    else
      copy_block(p, v, width, at, in->args[k], cols(s), 0, cols(s), rows);
    at += s.dim[in->axis];
  }
}

static void print_slice(CPrinter *p, int v) {
  const IrInstr *in = instr(p, v);
  int x = in->args[0], width = cols(shape(p, x));
  if (in->axis == 0)
    copy_rows(p, v, 0, x, (long)in->start * width, ir_numel(in->shape));
  else
    copy_block(p, v, in->shape.dim[1], 0, x, width, in->start, in->shape.dim[1],
               in->shape.dim[0]);
}

static void print_pad(CPrinter *p, int v) {
  const IrInstr *in = instr(p, v);
  int x = in->args[0], width = in->shape.dim[1];
  zero(p->out, v, ir_numel(in->shape));
  if (in->axis == 0)
    copy_rows(p, v, (long)in->start * width, x, 0, ir_numel(shape(p, x)));
  else
    copy_block(p, v, width, in->start, x, cols(shape(p, x)), 0, cols(shape(p, x)),
               in->shape.dim[0]);
}

/* Rows whose index is out of range are skipped: the result stays zero
 * there, instead of reading outside the table. */
static void print_gather(CPrinter *p, int v) {
  const IrInstr *in = instr(p, v);
  FILE *o = p->out;
  int table = in->args[0], idx = in->args[1], e = in->shape.dim[1];
  int rows = shape(p, table).dim[0];
  zero(o, v, ir_numel(in->shape));
  loop(o, "  ", "k", in->shape.dim[0]);
  fprintf(o, "    if (v%d[k] >= 0 && v%d[k] < %d)\n", idx, idx, rows);
  fprintf(o, "      memcpy(v%d + k * %d, v%d + (long)v%d[k] * %d, %d * sizeof *v%d);\n", v, e,
          table, idx, e, e, v);
}

static void print_scatter_add(CPrinter *p, int v) {
  const IrInstr *in = instr(p, v);
  FILE *o = p->out;
  int src = in->args[0], idx = in->args[1], e = in->shape.dim[1];
  zero(o, v, ir_numel(in->shape));
  loop(o, "  ", "k", shape(p, src).dim[0]);
  fprintf(o, "    if (v%d[k] >= 0 && v%d[k] < %d)\n", idx, idx, in->shape.dim[0]);
  loop(o, "      ", "c", e);
  fprintf(o, "        v%d[(long)v%d[k] * %d + c] += v%d[k * %d + c];\n", v, idx, e, src, e);
}

static void print_instr(CPrinter *p, int v) {
  const IrInstr *in = instr(p, v);
  if (in->op == IR_INPUT || in->op == IR_CONST || in->op == IR_TENSOR) {
    print_leaf(p, v);
    return;
  }
  fprintf(p->out, "  static %s v%d[%ld];   /* %s */\n", ctype(in->type), v,
          ir_numel(in->shape), ir_op_name(in->op));
  switch (in->op) {
  case IR_BCAST: print_bcast(p, v); break;
  case IR_SUM: print_sum(p, v); break;
  case IR_MATMUL: print_matmul(p, v); break;
  case IR_CONCAT: print_concat(p, v); break;
  case IR_SLICE: print_slice(p, v); break;
  case IR_PAD: print_pad(p, v); break;
  case IR_GATHER: print_gather(p, v); break;
  case IR_SCATTER_ADD: print_scatter_add(p, v); break;
  default: print_elementwise(p, v); break;
  }
}

int cg_c_function(FILE *out, const IrFunc *f, const char *name, bool is_static,
                  char *err, int errlen) {
  if (ir_verify(f, err, errlen) != 0)
    return -1;
  CPrinter p = {out, f};
  fprintf(out, "/* %s, printed by lobec */\n%svoid %s(const void *const *in, void *const *out) {\n",
          f->name, is_static ? "static " : "", name);
  for (int v = 0; v < f->nins; v++)
    print_instr(&p, v);
  for (int k = 0; k < f->noutputs; k++) {
    int v = f->outputs[k];
    fprintf(out, "  memcpy(out[%d], v%d, %ld * sizeof *v%d);\n", k, v,
            ir_numel(f->ins[v].shape), v);
  }
  fputs("}\n", out);
  if (ferror(out)) {
    snprintf(err, errlen, "cannot write the C text of %s", f->name);
    return -1;
  }
  return 0;
}
