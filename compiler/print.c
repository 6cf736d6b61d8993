/*
 * print.c — the text form of the IR: one instruction per line, operands and
 * attributes after the op name, the result type after a colon. Golden tests
 * compare it byte for byte, so every choice here is deliberate and stable.
 */
#include "ir.h"

enum { TENSOR_PREVIEW = 4 };   /* elements of a TENSOR shown before "..." */

static void print_type(FILE *out, IrType type, IrShape s) {
  fputs(type == TY_I32 ? "i32[" : "real[", out);
  for (int i = 0; i < s.rank; i++)
    fprintf(out, i ? ",%d" : "%d", s.dim[i]);
  fputc(']', out);
}

static void print_header(FILE *out, const IrFunc *f) {
  fprintf(out, "func %s(", f->name);
  for (int k = 0; k < f->ninputs; k++) {
    int v = ir_input_value(f, k);
    fputs(k ? ", " : "", out);
    if (v < 0) {
      fprintf(out, "?%d", k);
      continue;
    }
    fprintf(out, "%%%d: ", v);
    print_type(out, f->ins[v].type, f->ins[v].shape);
    if (f->ins[v].name)
      fprintf(out, " \"%s\"", f->ins[v].name);
  }
  fputs(") {\n", out);
}

static void print_tensor(FILE *out, const IrInstr *in) {
  long n = ir_numel(in->shape);
  fputs(" [", out);
  for (long i = 0; i < n && i < TENSOR_PREVIEW; i++)
    fprintf(out, i ? ", %.6g" : "%.6g", in->data[i]);
  fprintf(out, "%s] n=%ld", n > TENSOR_PREVIEW ? ", ..." : "", n);
}

static void print_attrs(FILE *out, const IrInstr *in) {
  switch (in->op) {
  case IR_CONST:
    fprintf(out, " %.17g", in->value);
    break;
  case IR_TENSOR:
    print_tensor(out, in);
    break;
  case IR_BCAST:
  case IR_SUM:
    fprintf(out, " axis=%d", in->axis);
    break;
  case IR_MATMUL:
    fputs(in->trans_a ? " trans_a" : "", out);
    fputs(in->trans_b ? " trans_b" : "", out);
    break;
  case IR_CONCAT:
    fputs(in->axis == 0 ? " rows" : "", out);
    break;
  case IR_SLICE:
  case IR_PAD:
    fprintf(out, "%s start=%d", in->axis == 0 ? " rows" : "", in->start);
    break;
  default:
    break;
  }
}

/* INPUTs appear in the header only; a debug name follows as a comment. */
static void print_instr(FILE *out, const IrFunc *f, int id) {
  const IrInstr *in = &f->ins[id];
  fprintf(out, "  %%%d = %s", id, ir_op_name(in->op));
  for (int k = 0; k < in->nargs; k++)
    fprintf(out, k ? ", %%%d" : " %%%d", in->args[k]);
  print_attrs(out, in);
  fputs(" : ", out);
  print_type(out, in->type, in->shape);
  if (in->name)
    fprintf(out, "  # %s", in->name);
  fputc('\n', out);
}

void ir_print(FILE *out, const IrFunc *f) {
  print_header(out, f);
  for (int i = 0; i < f->nins; i++)
    if (f->ins[i].op != IR_INPUT)
      print_instr(out, f, i);
  fputs("  ret", out);
  for (int o = 0; o < f->noutputs; o++)
    fprintf(out, o ? ", %%%d" : " %%%d", f->outputs[o]);
  fputs("\n}\n", out);
}

void ir_print_module(FILE *out, const IrModule *mod) {
  for (int i = 0; i < mod->nparams; i++) {
    const IrParam *p = &mod->params[i];
    static const char *const inits[] = {"zeros", "normal", "uniform", "constant"};
    fprintf(out, "param %s : real", p->name);
    if (p->rank == 1)
      fprintf(out, "[%d]", p->cols);
    else
      fprintf(out, "[%d,%d]", p->rows, p->cols);
    fprintf(out, " init=%s scale=%.17g\n", inits[p->init], p->scale);
  }
  for (int i = 0; i < mod->nfuncs; i++) {
    fputc('\n', out);
    ir_print(out, mod->funcs[i]);
  }
}
