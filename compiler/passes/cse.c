/*
 * cse.c — common subexpression elimination by hashing. Two instructions are
 * the same value when op, type, shape, attributes and operands agree (add
 * and mul in either operand order). A later duplicate is replaced by the
 * earlier value in every use; DCE then removes it. Inputs are never merged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

static bool commutes(IrOp op) { return op == IR_ADD || op == IR_MUL; }

static uint64_t mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
  return h;
}

static uint64_t hash_double(uint64_t h, double x) {
  uint64_t bits;
  memcpy(&bits, &x, sizeof bits);
  return mix(h, bits);
}

static uint64_t hash_instr(const IrInstr *in) {
  uint64_t h = mix(mix(in->op, in->type), (uint64_t)in->shape.rank);
  h = mix(mix(h, (uint64_t)in->shape.dim[0]), (uint64_t)in->shape.dim[1]);
  h = mix(mix(mix(h, (uint64_t)in->axis), (uint64_t)in->start),
          (uint64_t)(in->trans_a * 2 + in->trans_b));
  h = hash_double(h, in->value);
  if (commutes(in->op))   /* order-free: a sum is symmetric */
    return mix(h, (uint64_t)in->args[0] + (uint64_t)in->args[1]);
  for (int k = 0; k < in->nargs; k++)
    h = mix(h, (uint64_t)in->args[k]);
  for (long e = 0; in->op == IR_TENSOR && e < ir_numel(in->shape); e++)
    h = hash_double(h, in->data[e]);
  return h;
}

static bool same_args(const IrInstr *a, const IrInstr *b) {
  if (a->nargs != b->nargs)
    return false;
  if (commutes(a->op) && a->args[0] == b->args[1] && a->args[1] == b->args[0])
    return true;
  return a->nargs == 0 || memcmp(a->args, b->args, a->nargs * sizeof *a->args) == 0;
}

/* Constants compare bitwise, so 0 and -0 stay apart. */
static bool same_instr(const IrInstr *a, const IrInstr *b) {
  if (a->op != b->op || a->type != b->type || !ir_shape_eq(a->shape, b->shape) ||
      a->axis != b->axis || a->start != b->start || a->trans_a != b->trans_a ||
      a->trans_b != b->trans_b || memcmp(&a->value, &b->value, sizeof a->value) != 0)
    return false;
  if (a->op == IR_TENSOR &&
      memcmp(a->data, b->data, ir_numel(a->shape) * sizeof *a->data) != 0)
    return false;
  return same_args(a, b);
}

typedef struct Table {
  int *slot;               /* value id, or -1 */
  size_t mask;
} Table;

/* Returns the earlier value equal to v, after inserting v if there is none. */
static int find_or_insert(Table *t, const IrFunc *f, int v) {
  size_t i = hash_instr(&f->ins[v]) & t->mask;
  for (; t->slot[i] >= 0; i = (i + 1) & t->mask)
    if (same_instr(&f->ins[t->slot[i]], &f->ins[v]))
      return t->slot[i];
  t->slot[i] = v;
  return v;
}

static Table table_new(int nvalues) {
  size_t size = 16;
  while (size < 2 * (size_t)nvalues)
    size *= 2;
  Table t = {malloc(size * sizeof *t.slot), size - 1};
  for (size_t i = 0; i < size; i++)
    t.slot[i] = -1;
  return t;
}

void pass_cse(IrFunc *f) {
  Table t = table_new(f->nins);
  int *same = malloc((f->nins ? f->nins : 1) * sizeof *same);
  for (int i = 0; i < f->nins; i++) {
    IrInstr *in = &f->ins[i];
    for (int k = 0; k < in->nargs; k++)
      in->args[k] = same[in->args[k]];
    same[i] = in->op == IR_INPUT ? i : find_or_insert(&t, f, i);
  }
  for (int o = 0; o < f->noutputs; o++)
    f->outputs[o] = same[f->outputs[o]];
  free(same);
  free(t.slot);
}
