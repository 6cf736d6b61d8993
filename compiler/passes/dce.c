/*
 * dce.c — dead value elimination. Live values are the outputs, the inputs
 * (they are the function's signature) and the operands of live values.
 * Survivors move down in place, keeping their order, so operands still come
 * first; every operand and output is renamed to the new numbering.
 */
#include <stdlib.h>

#include "ir.h"

/* Operands precede their users, so one backward sweep finds every live value. */
static bool *mark_live(const IrFunc *f) {
  bool *live = calloc(f->nins ? f->nins : 1, sizeof *live);
  for (int o = 0; o < f->noutputs; o++)
    live[f->outputs[o]] = true;
  for (int i = f->nins - 1; i >= 0; i--) {
    const IrInstr *in = &f->ins[i];
    live[i] = live[i] || in->op == IR_INPUT;
    for (int k = 0; live[i] && k < in->nargs; k++)
      live[in->args[k]] = true;
  }
  return live;
}

static void release(IrInstr *in) {
  free(in->args);
  free(in->data);
  free(in->name);
}

void pass_dce(IrFunc *f) {
  bool *live = mark_live(f);
  int *renamed = malloc((f->nins ? f->nins : 1) * sizeof *renamed);
  int n = 0;
  for (int i = 0; i < f->nins; i++) {
    IrInstr *in = &f->ins[i];
    if (!live[i]) {
      release(in);
      continue;
    }
    for (int k = 0; k < in->nargs; k++)
      in->args[k] = renamed[in->args[k]];
    renamed[i] = n;
    f->ins[n++] = *in;
  }
  f->nins = n;
  for (int o = 0; o < f->noutputs; o++)
    f->outputs[o] = renamed[f->outputs[o]];
  free(renamed);
  free(live);
}
