/*
 * codegen_llvm.c — tensor IR to a native object through the LLVM C API.
 *
 * Every IR function becomes two exported functions, lobe_NAME_f32 and
 * lobe_NAME_f64, with the lobe_fn signature (runtime/lobe_model.h). Each
 * instruction that needs a buffer of its own becomes a call of an internal
 * "kernel" function taking its result and every buffer it reads as noalias
 * pointers; instructions with the same code share one kernel. The exported
 * function calls segments of those calls in order. noalias is true by
 * construction (the memory plan never lets a result share space with
 * anything live), so the vectoriser needs no runtime alias checks.
 *
 * Fusion: elementwise values read by exactly one consumer that walks its
 * operands element by element are computed inside that consumer's loop;
 * CONST and BCAST are recomputed wherever they are read; a slice of rows of a
 * value in memory is a pointer into it. See docs/codegen.md.
 *
 * Sections: analysis and memory plan, math library, loops and elements,
 * kernels, sharing kernels, entry points, descriptor, driver.
 */
#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Linker.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "lobe_model.h"

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };
enum { SLOT_ALIGN = 16 };   /* elements: slots start on cache-line boundaries */

/* f32 code trains, so it gets polynomial math and vectorised loops; f64
 * code only checks gradients, so it calls libm and is built in a module of
 * its own, optimised at O1 (half the compile time otherwise goes there) and
 * linked into the f32 module before emission. */
typedef struct Prec {
  const char *name;          /* symbol suffix */
  LLVMTypeRef real;
  int size;                  /* bytes per element */
  bool fast;
  LLVMModuleRef module;
} Prec;

typedef struct Cg {
  LLVMContextRef ctx;
  LLVMModuleRef mod;         /* the module being built: one of prec[].module */
  LLVMBuilderRef b;          /* kernels and entry points */
  LLVMBuilderRef mb;         /* math helpers, built on first use */
  LLVMTargetMachineRef tm;
  LLVMTypeRef i8, i32, i64, ptr, void_, f32, f64;
  Prec prec[2];
  LLVMValueRef mathf[IR_NOPS];   /* f32 helpers by op */
  struct SharedKernel **kernels; /* hash table of kernels by their text (Key) */
  char *err;
  int errlen;
} Cg;

static int cg_fail(Cg *cg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int cg_fail(Cg *cg, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (cg->errlen > 0)
    vsnprintf(cg->err, cg->errlen, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- analysis and memory plan ----------------------------------------------- */

typedef struct Plan {
  const IrFunc *f;
  bool *live;                /* reaches an output */
  int *uses;                 /* operand slots naming the value, live readers only */
  int *out_slot;             /* first output holding the value, or -1 */
  bool *stored;              /* computed by a kernel of its own */
  int *last_read;            /* last kernel reading its buffer */
  long *offset;              /* workspace offset in elements, or -1 */
  long ws_elems;
} Plan;

static bool cheap(IrOp op) { return op == IR_CONST || op == IR_BCAST; }

/* Consumers that visit each element of operand k at most once. */
static bool walks_once(const IrInstr *c, int k) {
  switch (c->op) {
  case IR_SUM: case IR_CONCAT: case IR_SLICE: case IR_PAD:
    return true;
  case IR_SCATTER_ADD:
    return k == 0;
  default:
    return ir_is_elementwise(c->op);
  }
}

/* Is operand k of c computed inside c's kernel rather than read from memory?
 * An i32 constant (the index of a gather or scatter_add) always is. */
static bool fused(const Plan *p, const IrInstr *c, int k) {
  int u = c->args[k];
  const IrInstr *v = &p->f->ins[u];
  if (v->op == IR_CONST && v->type == TY_I32)
    return true;
  if (cheap(v->op))
    return walks_once(c, k) || c->op == IR_BCAST;
  return ir_is_elementwise(v->op) && p->uses[u] == 1 && p->out_slot[u] < 0 &&
         walks_once(c, k);
}

static bool contains(const int *list, int n, int v) {
  for (int i = 0; i < n; i++)
    if (list[i] == v)
      return true;
  return false;
}

/* The buffers c's kernel reads: operands not fused, through fused ones. */
static int collect_leaves(const Plan *p, int c, int *leaves, int n) {
  const IrInstr *in = &p->f->ins[c];
  for (int k = 0; k < in->nargs; k++) {
    if (fused(p, in, k))
      n = collect_leaves(p, in->args[k], leaves, n);
    else if (!contains(leaves, n, in->args[k]))
      leaves[n++] = in->args[k];
  }
  return n;
}

static void mark_live(Plan *p) {
  const IrFunc *f = p->f;
  for (int o = 0; o < f->noutputs; o++) {
    p->live[f->outputs[o]] = true;
    if (p->out_slot[f->outputs[o]] < 0)
      p->out_slot[f->outputs[o]] = o;
  }
  for (int i = f->nins - 1; i >= 0; i--)
    for (int k = 0; p->live[i] && k < f->ins[i].nargs; k++) {
      p->live[f->ins[i].args[k]] = true;
      p->uses[f->ins[i].args[k]]++;
    }
}

static bool has_buffer_anyway(IrOp op) { return op == IR_INPUT || op == IR_TENSOR; }

/* A slice of whole rows of a value held in memory is a view: a pointer into
 * that value's buffer, with no kernel and no copy (a window's steps are
 * such slices). Outputs are written to the caller's buffers instead. */
static bool is_view(const Plan *p, int v) {
  const IrInstr *in = &p->f->ins[v];
  return in->op == IR_SLICE && in->axis == 0 && !fused(p, in, 0) && p->out_slot[v] < 0;
}

/* The part of a slice's start that the pointer its kernel reads carries: all
 * of it when the operand is in memory (so the slices of a window's steps
 * share one kernel), none when the kernel computes the operand itself. */
static int pointer_start(const Plan *p, const IrInstr *in) {
  return in->op == IR_SLICE && !fused(p, in, 0) ? in->start : 0;
}

/* The value whose buffer v's data lives in. */
static int buffer_of(const Plan *p, int v) {
  while (is_view(p, v))
    v = p->f->ins[v].args[0];
  return v;
}

static void mark_stored(Plan *p) {
  const IrFunc *f = p->f;
  for (int i = 0; i < f->nins; i++) {
    const IrInstr *in = &f->ins[i];
    p->stored[i] = p->live[i] && !has_buffer_anyway(in->op) && p->out_slot[i] >= 0;
  }
  for (int i = 0; i < f->nins; i++)
    for (int k = 0; p->live[i] && k < f->ins[i].nargs; k++) {
      int u = f->ins[i].args[k];
      if (!fused(p, &f->ins[i], k) && !has_buffer_anyway(f->ins[u].op) && !is_view(p, u))
        p->stored[u] = true;
    }
}

/* Reading a view reads the buffer it points into. */
static void find_reads(Plan *p, int *scratch) {
  for (int r = 0; r < p->f->nins; r++) {
    if (!p->stored[r])
      continue;
    int n = collect_leaves(p, r, scratch, 0);
    for (int k = 0; k < n; k++) {
      int b = buffer_of(p, scratch[k]);
      if (p->last_read[b] < r)
        p->last_read[b] = r;
    }
  }
}

typedef struct Block {
  long offset, size;
  int value;                 /* whose slot it is */
} Block;

static int by_offset(const void *a, const void *b) {
  long x = ((const Block *)a)->offset, y = ((const Block *)b)->offset;
  return (x > y) - (x < y);
}

static long round_up(long n) { return (n + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN; }

/* Lowest offset where size elements fit between the live blocks. */
static long first_fit(Block *live, int n, long size) {
  qsort(live, n, sizeof *live, by_offset);
  long at = 0;
  for (int i = 0; i < n && live[i].offset < at + size; i++)
    if (live[i].offset + live[i].size > at)
      at = round_up(live[i].offset + live[i].size);
  return at;
}

/* Intermediates live from their kernel to their last reader, inclusive, so a
 * result never shares space with anything its own kernel reads. The slots
 * still alive are kept as they go, so planning takes time in proportion to
 * the values times those alive, not to the values squared. */
static void place_buffers(Plan *p) {
  const IrFunc *f = p->f;
  Block *live = ir_xcalloc(f->nins, sizeof *live);
  int n = 0;
  for (int v = 0; v < f->nins; v++) {
    if (!p->stored[v] || p->out_slot[v] >= 0)
      continue;
    int kept = 0;
    for (int i = 0; i < n; i++)
      if (p->last_read[live[i].value] >= v)
        live[kept++] = live[i];
    n = kept;
    long size = ir_numel(f->ins[v].shape);
    p->offset[v] = first_fit(live, n, size);
    live[n++] = (Block){p->offset[v], size, v};
    if (p->offset[v] + size > p->ws_elems)
      p->ws_elems = round_up(p->offset[v] + size);
  }
  free(live);
}

static Plan *plan_new(const IrFunc *f) {
  int n = f->nins;
  Plan *p = ir_xcalloc(1, sizeof *p);
  p->f = f;
  p->live = ir_xcalloc(n, sizeof *p->live);
  p->uses = ir_xcalloc(n, sizeof *p->uses);
  p->out_slot = ir_xcalloc(n, sizeof *p->out_slot);
  p->stored = ir_xcalloc(n, sizeof *p->stored);
  p->last_read = ir_xcalloc(n, sizeof *p->last_read);
  p->offset = ir_xcalloc(n, sizeof *p->offset);
  for (int i = 0; i < n; i++)
    p->out_slot[i] = p->last_read[i] = p->offset[i] = -1;
  mark_live(p);
  mark_stored(p);
  int *scratch = ir_xcalloc(n, sizeof *scratch);
  find_reads(p, scratch);
  free(scratch);
  place_buffers(p);
  return p;
}

static void plan_free(Plan *p) {
  free(p->live);
  free(p->uses);
  free(p->out_slot);
  free(p->stored);
  free(p->last_read);
  free(p->offset);
  free(p);
}

/* ---- small builders ----------------------------------------------------------- */

static LLVMValueRef i64c(Cg *cg, long v) {
  return LLVMConstInt(cg->i64, (unsigned long long)v, true);
}

static LLVMValueRef i32c(Cg *cg, int v) {
  return LLVMConstInt(cg->i32, (unsigned long long)(long long)v, true);
}

static void add_attr(Cg *cg, LLVMValueRef fn, LLVMAttributeIndex at, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(fn, at, LLVMCreateEnumAttribute(cg->ctx, kind, 0));
}

static LLVMValueRef call_intrinsic(Cg *cg, LLVMBuilderRef b, const char *name,
                                   LLVMTypeRef type, LLVMValueRef *args, int nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, &type, 1);
  LLVMTypeRef fty = LLVMIntrinsicGetType(cg->ctx, id, &type, 1);
  return LLVMBuildCall2(b, fty, fn, args, nargs, "");
}

/* An external function of the C library, declared once. */
static LLVMValueRef libc_function(Cg *cg, const char *name, LLVMTypeRef type) {
  LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, name);
  if (!fn) {
    fn = LLVMAddFunction(cg->mod, name, type);
    add_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
  }
  return fn;
}

/* ---- math library ------------------------------------------------------------- */
/* f32 exp, log, sin, cos, tanh and sigmoid as straight-line code over one
 * float (selects, no branches, no calls), so the loop vectoriser widens them
 * once they are inlined. Coefficients are Chebyshev fits of the remainder
 * after the leading Taylor terms; relative error stays near 1e-7. */

/* ln 2 and pi/2 split so that n * LN2_HI (9 significant bits) is exact in
 * float for |n| < 2^15, and q * PIO2_HI, q * PIO2_MID (24 bits each) are
 * exact in double for |q| < 2^29 (Cody-Waite). */
static const double LN2_HI = 0x1.63p-1, LN2_LO = -2.1219444005469057e-4;
static const double PIO2_HI = 0x1.921fb6p+0, PIO2_MID = -0x1.777a5cp-25,
                    PIO2_LO = -1.7151244994428829e-15;

typedef struct Math {
  Cg *cg;
  LLVMBuilderRef b;
  LLVMTypeRef t;
} Math;

static LLVMValueRef mc(Math *m, double v) { return LLVMConstReal(m->t, v); }
static LLVMValueRef madd(Math *m, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFAdd(m->b, a, b, "");
}
static LLVMValueRef msub(Math *m, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFSub(m->b, a, b, "");
}
static LLVMValueRef mmul(Math *m, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFMul(m->b, a, b, "");
}
static LLVMValueRef mcmp(Math *m, LLVMRealPredicate pred, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFCmp(m->b, pred, a, b, "");
}
static LLVMValueRef msel(Math *m, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(m->b, c, a, b, "");
}
static LLVMValueRef mcall1(Math *m, const char *intrinsic, LLVMValueRef x) {
  return call_intrinsic(m->cg, m->b, intrinsic, LLVMTypeOf(x), &x, 1);
}

/* c[0] + x*(c[1] + x*(...)) */
static LLVMValueRef horner(Math *m, LLVMValueRef x, const double *c, int n) {
  LLVMValueRef acc = mc(m, c[n - 1]);
  for (int i = n - 2; i >= 0; i--)
    acc = madd(m, mmul(m, acc, x), mc(m, c[i]));
  return acc;
}

/* 2^n for integer n in [-126, 127], built from its exponent bits. */
static LLVMValueRef pow2i(Math *m, LLVMValueRef n) {
  Cg *cg = m->cg;
  LLVMValueRef bits = LLVMBuildShl(m->b, LLVMBuildAdd(m->b, n, i32c(cg, 127), ""),
                                   i32c(cg, 23), "");
  return LLVMBuildBitCast(m->b, bits, cg->f32, "");
}

/* exp(x) = 2^n exp(r), x = n ln2 + r, |r| <= ln2/2. Clamping x to [-104, 89] before scaling by 2^n in two
 * halves gives correct overflow to inf and gradual underflow to 0. */
static LLVMValueRef math_exp(Math *m, LLVMValueRef x) {
  static const double p[] = {0.5, 0.166665770256, 0.0416665546621, 0.00836317307451,
                             0.00139261761199};
  LLVMValueRef nan = mcmp(m, LLVMRealUNO, x, x);
  LLVMValueRef xc = msel(m, mcmp(m, LLVMRealOGT, x, mc(m, 89)), mc(m, 89), x);
  xc = msel(m, mcmp(m, LLVMRealOLT, xc, mc(m, -104)), mc(m, -104), xc);
  xc = msel(m, nan, mc(m, 0), xc);
  LLVMValueRef n = mcall1(m, "llvm.rint", mmul(m, xc, mc(m, 1.4426950408889634)));
  LLVMValueRef r = msub(m, msub(m, xc, mmul(m, n, mc(m, LN2_HI))),
                        mmul(m, n, mc(m, LN2_LO)));
  LLVMValueRef er = madd(m, madd(m, mc(m, 1), r), mmul(m, mmul(m, r, r), horner(m, r, p, 5)));
  LLVMValueRef ni = LLVMBuildFPToSI(m->b, n, m->cg->i32, "");
  LLVMValueRef n1 = LLVMBuildAShr(m->b, ni, i32c(m->cg, 1), "");
  LLVMValueRef n2 = LLVMBuildSub(m->b, ni, n1, "");
  LLVMValueRef y = mmul(m, mmul(m, er, pow2i(m, n1)), pow2i(m, n2));
  return msel(m, nan, x, y);
}

/* log(x) = e ln2 + log(f), x = f 2^e with f in [sqrt(1/2), sqrt(2));
 * log(f) = 2 atanh(s), s = (f-1)/(f+1), |s| <= 0.172. Subnormals are scaled
 * up first; 0, negatives, inf and NaN are patched at the end. */
static LLVMValueRef math_log(Math *m, LLVMValueRef x) {
  static const double l[] = {0.333333332772, 0.200000609199, 0.14275410408, 0.116652336082};
  Cg *cg = m->cg;
  LLVMValueRef tiny = mcmp(m, LLVMRealOLT, x, mc(m, 0x1p-126));
  LLVMValueRef xs = msel(m, tiny, mmul(m, x, mc(m, 0x1p23)), x);
  LLVMValueRef bits = LLVMBuildBitCast(m->b, xs, cg->i32, "");
  LLVMValueRef e = LLVMBuildAnd(m->b, LLVMBuildLShr(m->b, bits, i32c(cg, 23), ""),
                                i32c(cg, 255), "");
  e = LLVMBuildSub(m->b, e, msel(m, tiny, i32c(cg, 150), i32c(cg, 127)), "");
  LLVMValueRef mant = LLVMBuildOr(m->b, LLVMBuildAnd(m->b, bits, i32c(cg, 0x7fffff), ""),
                                  i32c(cg, 0x3f800000), "");
  LLVMValueRef f = LLVMBuildBitCast(m->b, mant, cg->f32, "");
  LLVMValueRef big = mcmp(m, LLVMRealOGT, f, mc(m, 1.4142135623730951));
  f = msel(m, big, mmul(m, f, mc(m, 0.5)), f);
  e = LLVMBuildAdd(m->b, e, LLVMBuildZExt(m->b, big, cg->i32, ""), "");
  LLVMValueRef g = msub(m, f, mc(m, 1));
  LLVMValueRef s = LLVMBuildFDiv(m->b, g, madd(m, mc(m, 2), g), "");
  LLVMValueRef z = mmul(m, s, s);
  LLVMValueRef at = madd(m, s, mmul(m, mmul(m, s, z), horner(m, z, l, 4)));
  LLVMValueRef ef = LLVMBuildSIToFP(m->b, e, cg->f32, "");
  LLVMValueRef y = madd(m, mmul(m, ef, mc(m, LN2_HI)),
                        madd(m, mmul(m, mc(m, 2), at), mmul(m, ef, mc(m, LN2_LO))));
  LLVMValueRef ok = LLVMBuildAnd(m->b, mcmp(m, LLVMRealOGT, x, mc(m, 0)),
                                 mcmp(m, LLVMRealOLT, x, mc(m, INFINITY)), "");
  LLVMValueRef special = msel(m, mcmp(m, LLVMRealOEQ, x, mc(m, 0)), mc(m, -INFINITY),
                              msel(m, mcmp(m, LLVMRealOEQ, x, mc(m, INFINITY)), x,
                                   mc(m, NAN)));
  return msel(m, ok, y, special);
}

/* sin (quarter 0) or cos (quarter 1): x = q pi/2 + r reduced in double with
 * pi/2 split in three, so the phase stays exact to ~1e-9 rad far beyond
 * 1e5 rad; the polynomials run in float on |r| <= pi/4 and quadrant
 * q + quarter picks sin or cos and the sign. |x| >= 2^62 gives NaN. */
static LLVMValueRef math_sincos(Math *m, LLVMValueRef x, int quarter) {
  static const double s[] = {-0.166666666639, 0.00833333187471, -0.000198400867354,
                             2.72499258031e-6};
  static const double c[] = {0.0416666666643, -0.0013888887672, 2.48006003772e-5,
                             -2.73009592039e-7};
  Cg *cg = m->cg;
  Math d = {cg, m->b, cg->f64};
  LLVMValueRef xd = LLVMBuildFPExt(m->b, x, cg->f64, "");
  LLVMValueRef q = mcall1(&d, "llvm.rint", mmul(&d, xd, mc(&d, 0.6366197723675814)));
  LLVMValueRef sane = mcmp(&d, LLVMRealOLT, mcall1(&d, "llvm.fabs", q), mc(&d, 0x1p62));
  q = msel(&d, sane, q, mc(&d, 0));
  LLVMValueRef r = msub(&d, xd, mmul(&d, q, mc(&d, PIO2_HI)));
  r = msub(&d, r, mmul(&d, q, mc(&d, PIO2_MID)));
  r = msub(&d, r, mmul(&d, q, mc(&d, PIO2_LO)));
  LLVMValueRef rf = LLVMBuildFPTrunc(m->b, r, cg->f32, "");
  LLVMValueRef z = mmul(m, rf, rf);
  LLVMValueRef sn = madd(m, rf, mmul(m, mmul(m, rf, z), horner(m, z, s, 4)));
  LLVMValueRef cs = madd(m, msub(m, mc(m, 1), mmul(m, z, mc(m, 0.5))),
                         mmul(m, mmul(m, z, z), horner(m, z, c, 4)));
  LLVMValueRef qi = LLVMBuildAdd(m->b, LLVMBuildFPToSI(m->b, q, cg->i64, ""),
                                 i64c(cg, quarter), "");
  LLVMValueRef odd = LLVMBuildTrunc(m->b, qi, LLVMInt1TypeInContext(cg->ctx), "");
  LLVMValueRef neg = LLVMBuildICmp(m->b, LLVMIntNE,
                                   LLVMBuildAnd(m->b, qi, i64c(cg, 2), ""), i64c(cg, 0), "");
  LLVMValueRef y = msel(m, odd, cs, sn);
  y = msel(m, neg, LLVMBuildFNeg(m->b, y, ""), y);
  LLVMValueRef finite = mcmp(m, LLVMRealOLT, mcall1(m, "llvm.fabs", x), mc(m, 0x1p62));
  return msel(m, finite, y, mc(m, NAN));
}

static LLVMValueRef math_function(Cg *cg, IrOp op);

static LLVMValueRef call_math(Math *m, IrOp op, LLVMValueRef x) {
  LLVMValueRef fn = math_function(m->cg, op);
  return LLVMBuildCall2(m->b, LLVMGlobalGetValueType(fn), fn, &x, 1, "");
}

/* Odd polynomial below 0.625 (where 1 - 2/(e^2x + 1) would cancel). */
static LLVMValueRef math_tanh(Math *m, LLVMValueRef x) {
  static const double t[] = {-0.333333331721, 0.133333035569, -0.0539592595772,
                             0.021768918651, -0.00834394551584, 0.00229274481618};
  LLVMValueRef a = mcall1(m, "llvm.fabs", x);
  LLVMValueRef z = mmul(m, x, x);
  LLVMValueRef small = madd(m, x, mmul(m, mmul(m, x, z), horner(m, z, t, 6)));
  LLVMValueRef e = call_math(m, IR_EXP, madd(m, a, a));
  LLVMValueRef big = msub(m, mc(m, 1), LLVMBuildFDiv(m->b, mc(m, 2), madd(m, e, mc(m, 1)), ""));
  LLVMValueRef args[2] = {big, x};
  big = call_intrinsic(m->cg, m->b, "llvm.copysign", m->t, args, 2);
  return msel(m, mcmp(m, LLVMRealOLT, a, mc(m, 0.625)), small, big);
}

static LLVMValueRef math_sigmoid(Math *m, LLVMValueRef x) {
  LLVMValueRef e = m->t == m->cg->f32 ? call_math(m, IR_EXP, LLVMBuildFNeg(m->b, x, ""))
                                      : mcall1(m, "llvm.exp", LLVMBuildFNeg(m->b, x, ""));
  return LLVMBuildFDiv(m->b, mc(m, 1), madd(m, mc(m, 1), e), "");
}

static LLVMValueRef math_body(Math *m, IrOp op, LLVMValueRef x) {
  switch (op) {
  case IR_EXP: return math_exp(m, x);
  case IR_LOG: return math_log(m, x);
  case IR_SIN: return math_sincos(m, x, 0);
  case IR_COS: return math_sincos(m, x, 1);
  case IR_TANH: return math_tanh(m, x);
  default: return math_sigmoid(m, x);
  }
}

/* The f32 helper for op, an internal always-inline function built once.
 * Helpers that call exp get it declared first: building it moves mb. */
static LLVMValueRef math_function(Cg *cg, IrOp op) {
  if (cg->mathf[op])
    return cg->mathf[op];
  if (op == IR_TANH || op == IR_SIGMOID)
    math_function(cg, IR_EXP);
  char name[32];
  snprintf(name, sizeof name, "lobe.%sf", ir_op_name(op));
  LLVMValueRef fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->f32, &cg->f32, 1, 0));
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "alwaysinline");
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
  cg->mathf[op] = fn;
  LLVMPositionBuilderAtEnd(cg->mb, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
  Math m = {cg, cg->mb, cg->f32};
  LLVMBuildRet(cg->mb, math_body(&m, op, LLVMGetParam(fn, 0)));
  return fn;
}

/* f64 code favours correctness: the C library through LLVM's intrinsics. */
static LLVMValueRef libm_unary(Cg *cg, IrOp op, LLVMValueRef x) {
  Math m = {cg, cg->b, cg->f64};
  switch (op) {
  case IR_EXP: return mcall1(&m, "llvm.exp", x);
  case IR_LOG: return mcall1(&m, "llvm.log", x);
  case IR_SIN: return mcall1(&m, "llvm.sin", x);
  case IR_COS: return mcall1(&m, "llvm.cos", x);
  case IR_SIGMOID: return math_sigmoid(&m, x);
  default: {
    LLVMTypeRef type = LLVMFunctionType(cg->f64, &cg->f64, 1, 0);
    return LLVMBuildCall2(cg->b, type, libc_function(cg, "tanh", type), &x, 1, "");
  }
  }
}

/* ---- loops and elements ------------------------------------------------------- */

typedef struct Kernel {
  Cg *cg;
  const Prec *pr;
  const Plan *p;
  LLVMValueRef fn;
  LLVMValueRef *buf;         /* per value id: the pointer a leaf is read from */
  LLVMValueRef out;          /* the result buffer */
  LLVMTypeRef out_type;      /* its element type */
} Kernel;

/* Coordinates of one element: (i, j) of a matrix, i of a vector, nothing of
 * a scalar; flat: i is the offset in a matrix whose operands all share its
 * shape (no row or column broadcasts), so one loop covers it. */
typedef struct Index {
  LLVMValueRef i, j;
  bool flat;
} Index;

typedef struct Loop {
  LLVMValueRef iv;
  LLVMBasicBlockRef body;
  long n;
} Loop;

/* A counted loop 0..n-1 (n >= 1, shapes are never empty), tested at the
 * bottom; the builder is left in the body. */
static Loop loop_open(Kernel *K, long n) {
  Cg *cg = K->cg;
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->b);
  Loop l = {.body = LLVMAppendBasicBlockInContext(cg->ctx, K->fn, "loop"), .n = n};
  LLVMBuildBr(cg->b, l.body);
  LLVMPositionBuilderAtEnd(cg->b, l.body);
  l.iv = LLVMBuildPhi(cg->b, cg->i64, "i");
  LLVMValueRef zero = i64c(cg, 0);
  LLVMAddIncoming(l.iv, &zero, &pre, 1);
  return l;
}

static void loop_close(Kernel *K, Loop *l) {
  Cg *cg = K->cg;
  LLVMValueRef next = LLVMBuildNUWAdd(cg->b, l->iv, i64c(cg, 1), "");
  LLVMSetNSW(next, true);
  LLVMValueRef more = LLVMBuildICmp(cg->b, LLVMIntULT, next, i64c(cg, l->n), "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->b);
  LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(cg->ctx, K->fn, "done");
  LLVMBuildCondBr(cg->b, more, l->body, exit);
  LLVMAddIncoming(l->iv, &next, &latch, 1);
  LLVMPositionBuilderAtEnd(cg->b, exit);
}

typedef struct Nest {
  Loop loop[2];
  int depth;
} Nest;

static Index nest_open(Kernel *K, IrShape s, bool flat, Nest *nest) {
  Index x = {i64c(K->cg, 0), i64c(K->cg, 0), false};
  nest->depth = s.rank == 0 ? 0 : s.rank == 1 || flat ? 1 : 2;
  if (nest->depth == 1) {
    nest->loop[0] = loop_open(K, ir_numel(s));
    x.i = nest->loop[0].iv;
    x.flat = s.rank == 2;
  } else if (nest->depth == 2) {
    nest->loop[0] = loop_open(K, s.dim[0]);
    nest->loop[1] = loop_open(K, s.dim[1]);
    x.i = nest->loop[0].iv;
    x.j = nest->loop[1].iv;
  }
  return x;
}

static void nest_close(Kernel *K, Nest *nest) {
  for (int d = nest->depth - 1; d >= 0; d--)
    loop_close(K, &nest->loop[d]);
}

/* The builder ends in the `then` block; if_close joins. */
static LLVMBasicBlockRef if_open(Kernel *K, LLVMValueRef cond) {
  Cg *cg = K->cg;
  LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(cg->ctx, K->fn, "then");
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(cg->ctx, K->fn, "join");
  LLVMBuildCondBr(cg->b, cond, then, join);
  LLVMPositionBuilderAtEnd(cg->b, then);
  return join;
}

static void if_close(Kernel *K, LLVMBasicBlockRef join) {
  LLVMBuildBr(K->cg->b, join);
  LLVMPositionBuilderAtEnd(K->cg->b, join);
}

static LLVMValueRef offset_of(Kernel *K, IrShape s, Index x) {
  if (s.rank == 0)
    return i64c(K->cg, 0);
  if (s.rank == 1 || x.flat)
    return x.i;
  LLVMValueRef row = LLVMBuildNUWMul(K->cg->b, x.i, i64c(K->cg, s.dim[1]), "");
  return LLVMBuildNUWAdd(K->cg->b, row, x.j, "");
}

static LLVMTypeRef elem_type(Kernel *K, const IrInstr *in) {
  return in->type == TY_I32 ? K->cg->i32 : K->pr->real;
}

static LLVMValueRef elem_ptr(Kernel *K, LLVMTypeRef type, LLVMValueRef base, LLVMValueRef off) {
  return LLVMBuildInBoundsGEP2(K->cg->b, type, base, &off, 1, "");
}

static LLVMValueRef load_at(Kernel *K, int v, LLVMValueRef off) {
  LLVMTypeRef type = elem_type(K, &K->p->f->ins[v]);
  return LLVMBuildLoad2(K->cg->b, type, elem_ptr(K, type, K->buf[v], off), "");
}

static void store_out(Kernel *K, LLVMValueRef val, LLVMValueRef off) {
  LLVMBuildStore(K->cg->b, val, elem_ptr(K, K->out_type, K->out, off));
}

/* Scalar out[off] += val; reassociation lets the vectoriser split sums. */
static void accumulate_out(Kernel *K, LLVMValueRef val, LLVMValueRef off) {
  LLVMValueRef at = elem_ptr(K, K->pr->real, K->out, off);
  LLVMValueRef sum = LLVMBuildFAdd(K->cg->b, LLVMBuildLoad2(K->cg->b, K->pr->real, at, ""),
                                   val, "");
  LLVMSetFastMathFlags(sum, LLVMFastMathAllowReassoc);
  LLVMBuildStore(K->cg->b, sum, at);
}

/* Can v's fused tree be walked with one flat loop (no row/column bcast)? */
static bool flat_ok(const Plan *p, int v) {
  const IrInstr *in = &p->f->ins[v];
  if (in->op == IR_BCAST && in->axis >= 0)
    return false;
  for (int k = 0; k < in->nargs; k++)
    if (fused(p, in, k) && !flat_ok(p, in->args[k]))
      return false;
  return true;
}

static LLVMValueRef compute(Kernel *K, int v, Index x);

/* Operand k of instruction c at element x of the operand's own shape. */
static LLVMValueRef operand_at(Kernel *K, const IrInstr *c, int k, Index x) {
  int u = c->args[k];
  if (fused(K->p, c, k))
    return compute(K, u, x);
  return load_at(K, u, offset_of(K, K->p->f->ins[u].shape, x));
}

static LLVMValueRef unary(Kernel *K, IrOp op, LLVMValueRef a) {
  Cg *cg = K->cg;
  Math m = {cg, cg->b, K->pr->real};
  switch (op) {
  case IR_NEG: return LLVMBuildFNeg(cg->b, a, "");
  case IR_SQRT: return mcall1(&m, "llvm.sqrt", a);
  case IR_RELU: return msel(&m, mcmp(&m, LLVMRealOGT, a, mc(&m, 0)), a, mc(&m, 0));
  case IR_STEP: return msel(&m, mcmp(&m, LLVMRealOGT, a, mc(&m, 0)), mc(&m, 1), mc(&m, 0));
  case IR_ABS: return mcall1(&m, "llvm.fabs", a);
  case IR_DETACH: return a;
  default:
    return K->pr->fast ? call_math(&m, op, a) : libm_unary(cg, op, a);
  }
}

static LLVMValueRef binary(Kernel *K, IrOp op, LLVMValueRef a, LLVMValueRef b) {
  switch (op) {
  case IR_ADD: return LLVMBuildFAdd(K->cg->b, a, b, "");
  case IR_SUB: return LLVMBuildFSub(K->cg->b, a, b, "");
  case IR_MUL: return LLVMBuildFMul(K->cg->b, a, b, "");
  default: return LLVMBuildFDiv(K->cg->b, a, b, "");
  }
}

/* x moved by n rows (axis 0) or columns (axis 1) of a matrix with `cols`
 * columns; a flat index only moves by whole rows. */
static Index index_moved(Kernel *K, Index x, int axis, long n, int cols) {
  LLVMBuilderRef b = K->cg->b;
  if (x.flat)
    return (Index){LLVMBuildNUWAdd(b, x.i, i64c(K->cg, n * cols), ""), NULL, true};
  if (axis == 0)
    return (Index){LLVMBuildNUWAdd(b, x.i, i64c(K->cg, n), ""), x.j, false};
  return (Index){x.i, LLVMBuildNUWAdd(b, x.j, i64c(K->cg, n), ""), false};
}

/* Axis 0 repeats a row: element (i, j) reads j; axis 1 reads i; -1 reads 0. */
static Index bcast_index(const IrInstr *in, Index x) {
  if (in->axis == 0)
    return (Index){x.j, NULL, false};
  if (in->axis == 1)
    return (Index){x.i, NULL, false};
  return (Index){NULL, NULL, false};
}

/* Element x of value v computed here (v is the kernel's root or fused). */
static LLVMValueRef compute(Kernel *K, int v, Index x) {
  const IrInstr *in = &K->p->f->ins[v];
  if (in->op == IR_CONST && in->type == TY_I32)
    return i32c(K->cg, (int)in->value);
  if (in->op == IR_CONST)
    return LLVMConstReal(K->pr->real, in->value);
  if (in->op == IR_BCAST)
    return operand_at(K, in, 0, bcast_index(in, x));
  if (in->nargs == 2)
    return binary(K, in->op, operand_at(K, in, 0, x), operand_at(K, in, 1, x));
  return unary(K, in->op, operand_at(K, in, 0, x));
}

/* ---- kernels ------------------------------------------------------------------ */

static void zero_out(Kernel *K, IrShape s) {
  LLVMBuildMemSet(K->cg->b, K->out, LLVMConstInt(K->cg->i8, 0, false),
                  i64c(K->cg, ir_numel(s) * K->pr->size), K->pr->size);
}

static void kernel_elementwise(Kernel *K, int v) {
  IrShape s = K->p->f->ins[v].shape;
  Nest nest;
  Index x = nest_open(K, s, flat_ok(K->p, v), &nest);
  store_out(K, compute(K, v, x), offset_of(K, s, x));
  nest_close(K, &nest);
}

static void kernel_sum(Kernel *K, const IrInstr *in) {
  IrShape s = K->p->f->ins[in->args[0]].shape;
  zero_out(K, in->shape);
  bool flat = in->axis < 0 && (!fused(K->p, in, 0) || flat_ok(K->p, in->args[0]));
  Nest nest;
  Index x = nest_open(K, s, flat, &nest);
  LLVMValueRef at = in->axis == 0 ? x.j : in->axis == 1 ? x.i : i64c(K->cg, 0);
  accumulate_out(K, operand_at(K, in, 0, x), at);
  nest_close(K, &nest);
}

/* A block of whole rows is contiguous: walk it with one flat loop unless a
 * fused operand broadcasts along rows or columns. */
static bool block_flat(Kernel *K, const IrInstr *in, int k) {
  return in->axis == 0 && (!fused(K->p, in, k) || flat_ok(K->p, in->args[k]));
}

/* Each part fills its columns of every row, or its rows. */
static void kernel_concat(Kernel *K, const IrInstr *in) {
  long at = 0;
  for (int k = 0; k < in->nargs; k++) {
    IrShape s = K->p->f->ins[in->args[k]].shape;
    Nest nest;
    Index x = nest_open(K, s, block_flat(K, in, k), &nest);
    Index to = index_moved(K, x, in->axis, at, in->shape.dim[1]);
    store_out(K, operand_at(K, in, k, x), offset_of(K, in->shape, to));
    nest_close(K, &nest);
    at += s.dim[in->axis];
  }
}

static void kernel_slice(Kernel *K, const IrInstr *in) {
  Nest nest;
  Index x = nest_open(K, in->shape, block_flat(K, in, 0), &nest);
  int start = in->start - pointer_start(K->p, in);
  Index from = index_moved(K, x, in->axis, start, in->shape.dim[1]);
  store_out(K, operand_at(K, in, 0, from), offset_of(K, in->shape, x));
  nest_close(K, &nest);
}

static void kernel_pad(Kernel *K, const IrInstr *in) {
  zero_out(K, in->shape);
  Nest nest;
  Index x = nest_open(K, K->p->f->ins[in->args[0]].shape, block_flat(K, in, 0), &nest);
  Index to = index_moved(K, x, in->axis, in->start, in->shape.dim[1]);
  store_out(K, operand_at(K, in, 0, x), offset_of(K, in->shape, to));
  nest_close(K, &nest);
}

/* Row number idx[i] (operand 1 of in) as i64, and whether it names one of
 * `rows` rows: ids out of range leave their row at zero instead of reading
 * out of bounds. */
static LLVMValueRef row_id(Kernel *K, const IrInstr *in, LLVMValueRef i, int rows,
                           LLVMValueRef *ok) {
  LLVMValueRef id = operand_at(K, in, 1, (Index){i, NULL, false});
  LLVMValueRef r = LLVMBuildSExt(K->cg->b, id, K->cg->i64, "");
  *ok = LLVMBuildICmp(K->cg->b, LLVMIntULT, r, i64c(K->cg, rows), "");
  return r;
}

static void kernel_gather(Kernel *K, const IrInstr *in) {
  IrShape ts = K->p->f->ins[in->args[0]].shape;
  zero_out(K, in->shape);
  Loop rows = loop_open(K, in->shape.dim[0]);
  LLVMValueRef ok, r = row_id(K, in, rows.iv, ts.dim[0], &ok);
  LLVMBasicBlockRef join = if_open(K, ok);
  Loop cols = loop_open(K, in->shape.dim[1]);
  LLVMValueRef v = load_at(K, in->args[0], offset_of(K, ts, (Index){r, cols.iv, false}));
  store_out(K, v, offset_of(K, in->shape, (Index){rows.iv, cols.iv, false}));
  loop_close(K, &cols);
  if_close(K, join);
  loop_close(K, &rows);
}

static void kernel_scatter_add(Kernel *K, const IrInstr *in) {
  zero_out(K, in->shape);
  Loop rows = loop_open(K, K->p->f->ins[in->args[0]].shape.dim[0]);
  LLVMValueRef ok, r = row_id(K, in, rows.iv, in->shape.dim[0], &ok);
  LLVMBasicBlockRef join = if_open(K, ok);
  Loop cols = loop_open(K, in->shape.dim[1]);
  LLVMValueRef v = operand_at(K, in, 0, (Index){rows.iv, cols.iv, false});
  LLVMValueRef at = offset_of(K, in->shape, (Index){r, cols.iv, false});
  LLVMValueRef sum = LLVMBuildFAdd(K->cg->b, LLVMBuildLoad2(K->cg->b, K->pr->real,
                                   elem_ptr(K, K->pr->real, K->out, at), ""), v, "");
  store_out(K, sum, at);
  loop_close(K, &cols);
  if_close(K, join);
  loop_close(K, &rows);
}

static LLVMValueRef gemm_function(Kernel *K) {
  Cg *cg = K->cg;
  LLVMTypeRef i = cg->i32, p = cg->ptr, r = K->pr->real;
  LLVMTypeRef params[14] = {i, i, i, i, i, i, r, p, i, p, i, r, p, i};
  LLVMTypeRef type = LLVMFunctionType(cg->void_, params, 14, 0);
  return libc_function(cg, K->pr->real == cg->f32 ? "cblas_sgemm" : "cblas_dgemm", type);
}

/* C = op(A) op(B) by BLAS; transposes are flags, leading dimensions the
 * stored (untransposed) widths. */
static void kernel_matmul(Kernel *K, const IrInstr *in) {
  Cg *cg = K->cg;
  IrShape a = K->p->f->ins[in->args[0]].shape, b = K->p->f->ins[in->args[1]].shape;
  int m = in->shape.dim[0], n = in->shape.dim[1], k = a.dim[in->trans_a ? 0 : 1];
  LLVMValueRef fn = gemm_function(K);
  LLVMValueRef args[14] = {
      i32c(cg, CBLAS_ROW_MAJOR), i32c(cg, in->trans_a ? CBLAS_TRANS : CBLAS_NO_TRANS),
      i32c(cg, in->trans_b ? CBLAS_TRANS : CBLAS_NO_TRANS), i32c(cg, m), i32c(cg, n),
      i32c(cg, k), LLVMConstReal(K->pr->real, 1), K->buf[in->args[0]], i32c(cg, a.dim[1]),
      K->buf[in->args[1]], i32c(cg, b.dim[1]), LLVMConstReal(K->pr->real, 0), K->out,
      i32c(cg, n)};
  LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(fn), fn, args, 14, "");
}

static void kernel_body(Kernel *K, int v) {
  const IrInstr *in = &K->p->f->ins[v];
  switch (in->op) {
  case IR_SUM: kernel_sum(K, in); break;
  case IR_MATMUL: kernel_matmul(K, in); break;
  case IR_CONCAT: kernel_concat(K, in); break;
  case IR_SLICE: kernel_slice(K, in); break;
  case IR_PAD: kernel_pad(K, in); break;
  case IR_GATHER: kernel_gather(K, in); break;
  case IR_SCATTER_ADD: kernel_scatter_add(K, in); break;
  default: kernel_elementwise(K, v); break;
  }
}

/* void SYMBOL.kV(ptr noalias out, ptr noalias leaf...), never inlined: each
 * kernel is optimised once on its own, in time linear in the number of
 * kernels, and instructions with the same kernel text share it (an
 * unrolled window repeats the same layers at every step). Inlined into one
 * entry function, a window of 16 steps took LLVM minutes. */
static LLVMValueRef kernel_function(Cg *cg, const char *sym, int v, int nleaves) {
  char name[300];
  snprintf(name, sizeof name, "%s.k%d", sym, v);
  LLVMTypeRef *params = ir_xcalloc(nleaves + 1, sizeof *params);
  for (int i = 0; i <= nleaves; i++)
    params[i] = cg->ptr;
  LLVMValueRef fn = LLVMAddFunction(cg->mod, name,
                                    LLVMFunctionType(cg->void_, params, nleaves + 1, 0));
  free(params);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "noinline");
  for (int i = 0; i <= nleaves; i++) {
    add_attr(cg, fn, i + 1, "noalias");
    add_attr(cg, fn, i + 1, "nocapture");
  }
  return fn;
}

/* Builds value v's kernel and returns it; leaves[] lists its buffers. */
static LLVMValueRef emit_kernel(Kernel *K, const char *sym, int v, const int *leaves, int n) {
  Cg *cg = K->cg;
  LLVMBasicBlockRef caller = LLVMGetInsertBlock(cg->b);
  K->fn = kernel_function(cg, sym, v, n);
  LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, K->fn, "entry"));
  K->out = LLVMGetParam(K->fn, 0);
  K->out_type = elem_type(K, &K->p->f->ins[v]);
  for (int i = 0; i < n; i++)
    K->buf[leaves[i]] = LLVMGetParam(K->fn, i + 1);
  kernel_body(K, v);
  LLVMBuildRetVoid(cg->b);
  for (int i = 0; i < n; i++)
    K->buf[leaves[i]] = NULL;
  LLVMPositionBuilderAtEnd(cg->b, caller);
  return K->fn;
}

/* ---- sharing kernels ------------------------------------------------------------ */
/* A kernel's code depends on its root, the tree fused into it (ops, types,
 * shapes, attributes, constants) and the shapes and types of the leaves it
 * reads, by position; not on which buffers those are. The key spells all
 * of that, with the precision. */

typedef struct Key {
  char *text;
  size_t len, cap;
} Key;

static void key_add(Key *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void key_add(Key *k, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (k->len + n + 1 > k->cap) {
    k->cap = 2 * (k->len + n + 1);
    k->text = realloc(k->text, k->cap);
  }
  va_start(ap, fmt);
  vsnprintf(k->text + k->len, n + 1, fmt, ap);
  va_end(ap);
  k->len += n;
}

static void key_shape(Key *k, const IrInstr *in) {
  key_add(k, " %d:%d:%d:%d", in->type, in->shape.rank, in->shape.dim[0], in->shape.dim[1]);
}

static int leaf_index(const int *leaves, int n, int v) {
  for (int i = 0; i < n; i++)
    if (leaves[i] == v)
      return i;
  return -1;
}

static void key_tree(Key *k, const Plan *p, int v, const int *leaves, int n) {
  const IrInstr *in = &p->f->ins[v];
  key_add(k, "(%d", in->op);
  key_shape(k, in);
  key_add(k, " %d %d %d%d %a", in->axis, in->start - pointer_start(p, in), in->trans_a,
          in->trans_b, in->value);
  for (int a = 0; a < in->nargs; a++) {
    if (fused(p, in, a)) {
      key_tree(k, p, in->args[a], leaves, n);
      continue;
    }
    key_add(k, " L%d", leaf_index(leaves, n, in->args[a]));
    key_shape(k, &p->f->ins[in->args[a]]);
  }
  key_add(k, ")");
}

typedef struct SharedKernel {
  char *key;
  LLVMValueRef fn;
  struct SharedKernel *next;
} SharedKernel;

enum { KERNEL_BUCKETS = 4096 };

static unsigned long hash_text(const char *s) {
  unsigned long h = 5381;
  while (*s)
    h = h * 33 + (unsigned char)*s++;
  return h;
}

static SharedKernel **kernel_bucket(Cg *cg, const char *key) {
  if (!cg->kernels)
    cg->kernels = ir_xcalloc(KERNEL_BUCKETS, sizeof *cg->kernels);
  return &cg->kernels[hash_text(key) % KERNEL_BUCKETS];
}

static LLVMValueRef find_kernel(Cg *cg, const char *key) {
  for (SharedKernel *s = *kernel_bucket(cg, key); s; s = s->next)
    if (strcmp(s->key, key) == 0)
      return s->fn;
  return NULL;
}

/* Takes the key. */
static void remember_kernel(Cg *cg, char *key, LLVMValueRef fn) {
  SharedKernel **bucket = kernel_bucket(cg, key);
  SharedKernel *s = ir_xcalloc(1, sizeof *s);
  *s = (SharedKernel){key, fn, *bucket};
  *bucket = s;
}

static void forget_kernels(Cg *cg) {
  for (int i = 0; cg->kernels && i < KERNEL_BUCKETS; i++)
    while (cg->kernels[i]) {
      SharedKernel *s = cg->kernels[i];
      cg->kernels[i] = s->next;
      free(s->key);
      free(s);
    }
  free(cg->kernels);
}

/* Value v's kernel: an existing one with the same text, or a new one. */
static LLVMValueRef shared_kernel(Kernel *K, const char *sym, int v, const int *leaves, int n) {
  Key key = {0};
  key_add(&key, "%s", K->pr->name);
  key_tree(&key, K->p, v, leaves, n);
  LLVMValueRef fn = find_kernel(K->cg, key.text);
  if (fn) {
    free(key.text);
    return fn;
  }
  fn = emit_kernel(K, sym, v, leaves, n);
  remember_kernel(K->cg, key.text, fn);
  return fn;
}

/* ---- entry points --------------------------------------------------------------- */

typedef struct Entry {
  Kernel K;
  const char *sym;
  LLVMValueRef ws;           /* the workspace, or NULL */
  LLVMValueRef *global;      /* per tensor value: its constant array */
  LLVMValueRef args;         /* the argument array of the function being built */
  LLVMValueRef *arg;         /* argument pointers loaded there (inputs, outputs) */
  LLVMValueRef *home;        /* per value: its buffer there */
} Entry;

static LLVMValueRef private_global(Cg *cg, LLVMTypeRef type, const char *name,
                                   LLVMValueRef init) {
  LLVMValueRef g = LLVMAddGlobal(cg->mod, type, name);
  LLVMSetLinkage(g, LLVMInternalLinkage);
  LLVMSetInitializer(g, init);
  LLVMSetAlignment(g, 64);
  return g;
}

static LLVMValueRef tensor_global(Entry *e, int v) {
  const IrInstr *in = &e->K.p->f->ins[v];
  long n = ir_numel(in->shape);
  LLVMTypeRef elem = in->type == TY_I32 ? e->K.cg->i32 : e->K.pr->real;
  LLVMValueRef *vals = ir_xcalloc(n, sizeof *vals);
  for (long i = 0; i < n; i++)
    vals[i] = in->type == TY_I32 ? LLVMConstInt(elem, (long long)in->data[i], true)
                                 : LLVMConstReal(elem, in->data[i]);
  LLVMTypeRef type = LLVMArrayType2(elem, n);
  char name[300];
  snprintf(name, sizeof name, "%s.t%d", e->sym, v);
  LLVMValueRef g = private_global(e->K.cg, type, name, LLVMConstArray2(elem, vals, n));
  LLVMSetGlobalConstant(g, true);
  LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
  free(vals);
  return g;
}

static LLVMValueRef workspace(Entry *e) {
  Cg *cg = e->K.cg;
  LLVMTypeRef type = LLVMArrayType2(cg->i8, e->K.p->ws_elems * e->K.pr->size);
  char name[300];
  snprintf(name, sizeof name, "%s.ws", e->sym);
  return private_global(cg, type, name, LLVMConstNull(type));
}

/* Starts the body of fn, whose one parameter is the argument array. */
static void enter(Entry *e, LLVMValueRef fn) {
  const IrFunc *f = e->K.p->f;
  LLVMPositionBuilderAtEnd(e->K.cg->b, LLVMAppendBasicBlockInContext(e->K.cg->ctx, fn, "entry"));
  e->args = LLVMGetParam(fn, 0);
  memset(e->arg, 0, (f->ninputs + f->noutputs) * sizeof *e->arg);
  memset(e->home, 0, f->nins * sizeof *e->home);
}

/* Argument pointer k (inputs, then outputs), loaded where first needed. */
static LLVMValueRef arg_pointer(Entry *e, int k) {
  Cg *cg = e->K.cg;
  if (!e->arg[k]) {
    LLVMValueRef at = i64c(cg, k);
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(cg->b, cg->ptr, e->args, &at, 1, "");
    e->arg[k] = LLVMBuildLoad2(cg->b, cg->ptr, slot, "");
  }
  return e->arg[k];
}

/* Where value v lives: caller buffers for inputs and outputs, constant
 * arrays for tensors, views inside other buffers, the workspace for other
 * stored intermediates. */
static LLVMValueRef home_of(Entry *e, int v) {
  if (e->home[v])
    return e->home[v];
  Cg *cg = e->K.cg;
  const Plan *p = e->K.p;
  const IrInstr *in = &p->f->ins[v];
  LLVMValueRef off, base;
  if (in->op == IR_INPUT)
    return e->home[v] = arg_pointer(e, in->index);
  if (in->op == IR_TENSOR)
    return e->home[v] = e->global[v];
  if (p->out_slot[v] >= 0)
    return e->home[v] = arg_pointer(e, p->f->ninputs + p->out_slot[v]);
  if (is_view(p, v)) {
    off = i64c(cg, (long)in->start * in->shape.dim[1] * e->K.pr->size);
    base = home_of(e, in->args[0]);
  } else {
    off = i64c(cg, p->offset[v] * e->K.pr->size);
    base = e->ws;
  }
  return e->home[v] = LLVMBuildInBoundsGEP2(cg->b, cg->i8, base, &off, 1, "");
}

/* v's buffer plus `elements`, in bytes */
static LLVMValueRef home_plus(Entry *e, int v, long elements) {
  if (elements == 0)
    return home_of(e, v);
  LLVMValueRef off = i64c(e->K.cg, elements * e->K.pr->size);
  return LLVMBuildInBoundsGEP2(e->K.cg->b, e->K.cg->i8, home_of(e, v), &off, 1, "");
}

static void call_kernel(Entry *e, int v, int *leaves) {
  const IrInstr *in = &e->K.p->f->ins[v];
  int n = collect_leaves(e->K.p, v, leaves, 0);
  LLVMValueRef fn = shared_kernel(&e->K, e->sym, v, leaves, n);
  LLVMValueRef *args = ir_xcalloc(n + 1, sizeof *args);
  args[0] = home_of(e, v);
  for (int i = 0; i < n; i++)
    args[i + 1] = home_of(e, leaves[i]);
  long start = pointer_start(e->K.p, in);
  if (start > 0)
    args[1] = home_plus(e, in->args[0], in->axis ? start : start * in->shape.dim[1]);
  LLVMBuildCall2(e->K.cg->b, LLVMGlobalGetValueType(fn), fn, args, n + 1, "");
  free(args);
}

/* Outputs not computed in place (inputs, tensors, repeated outputs). */
static void copy_outputs(Entry *e) {
  const IrFunc *f = e->K.p->f;
  for (int o = 0; o < f->noutputs; o++) {
    int v = f->outputs[o];
    LLVMValueRef dst = arg_pointer(e, f->ninputs + o);
    if (home_of(e, v) == dst)
      continue;
    const IrInstr *in = &f->ins[v];
    long bytes = ir_numel(in->shape) * (in->type == TY_I32 ? 4 : e->K.pr->size);
    LLVMBuildMemCpy(e->K.cg->b, dst, 4, home_of(e, v), 4, i64c(e->K.cg, bytes));
  }
}

/* The kernel calls go into internal functions of SEGMENT_CALLS calls each,
 * which the entry point calls in order: in one basic block of thousands of
 * calls (a window unrolled over 32 steps) register allocation took seconds,
 * growing faster than the number of calls. */
enum { SEGMENT_CALLS = 64 };

static LLVMValueRef segment_function(Entry *e, int index) {
  Cg *cg = e->K.cg;
  char name[300];
  snprintf(name, sizeof name, "%s.s%d", e->sym, index);
  LLVMValueRef fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->void_, &cg->ptr, 1, 0));
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "noinline");
  return fn;
}

/* Emits the segments; returns them and their number. */
static LLVMValueRef *emit_segments(Entry *e, int *nsegments) {
  const Plan *p = e->K.p;
  int n = p->f->nins, calls = 0, nseg = 0;
  LLVMValueRef *segs = ir_xcalloc(n / SEGMENT_CALLS + 1, sizeof *segs);
  int *leaves = ir_xcalloc(n, sizeof *leaves);
  for (int v = 0; v < n; v++) {
    if (!p->stored[v])
      continue;
    if (calls++ % SEGMENT_CALLS == 0) {
      if (nseg > 0)
        LLVMBuildRetVoid(e->K.cg->b);
      segs[nseg] = segment_function(e, nseg);
      enter(e, segs[nseg++]);
    }
    call_kernel(e, v, leaves);
  }
  if (nseg > 0)
    LLVMBuildRetVoid(e->K.cg->b);
  free(leaves);
  *nsegments = nseg;
  return segs;
}

/* Static data beyond 2 GiB does not link in the small code model. */
#define CG_MAX_WORKSPACE (1L << 30)

static int emit_entry(Cg *cg, const IrFunc *f, const Plan *p, const Prec *pr) {
  char sym[256];
  cg_symbol(f, pr->name, sym, sizeof sym);
  cg->mod = pr->module;
  if (LLVMGetNamedFunction(cg->mod, sym))
    return cg_fail(cg, "two functions share the symbol %s", sym);
  if (p->ws_elems > CG_MAX_WORKSPACE / pr->size)
    return cg_fail(cg, "model too large: %s needs %ld MiB of intermediate tensors in %s "
                   "(at most %ld MiB); use smaller layers or a smaller batch",
                   f->name, p->ws_elems * pr->size >> 20, pr->name, CG_MAX_WORKSPACE >> 20);
  LLVMValueRef fn = LLVMAddFunction(cg->mod, sym, LLVMFunctionType(cg->void_, &cg->ptr, 1, 0));
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
  int n = f->nins;
  Entry e = {.K = {cg, pr, p, NULL, ir_xcalloc(n, sizeof(LLVMValueRef)), NULL}, .sym = sym,
             .global = ir_xcalloc(n, sizeof(LLVMValueRef)),
             .arg = ir_xcalloc(f->ninputs + f->noutputs, sizeof(LLVMValueRef)),
             .home = ir_xcalloc(n, sizeof(LLVMValueRef))};
  e.ws = p->ws_elems > 0 ? workspace(&e) : NULL;
  for (int v = 0; v < n; v++)
    if (p->live[v] && f->ins[v].op == IR_TENSOR)
      e.global[v] = tensor_global(&e, v);
  int nseg;
  LLVMValueRef *segs = emit_segments(&e, &nseg);
  enter(&e, fn);
  for (int i = 0; i < nseg; i++)
    LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(segs[i]), segs[i], &e.args, 1, "");
  copy_outputs(&e);
  LLVMBuildRetVoid(cg->b);
  free(segs);
  free(e.K.buf);
  free(e.global);
  free(e.arg);
  free(e.home);
  return 0;
}

/* ---- descriptor --------------------------------------------------------------- */
/* lobe_model_desc with the field order of the C structs in lobe_model.h; LLVM
 * lays out non-packed structs by the target's ABI rules, as the C compiler
 * does. */

typedef struct Desc {
  Cg *cg;
  const IrModule *mod;
  LLVMTypeRef param_t, region_t, edge_t, source_t, obs_t, model_t;
  int nstrings;
} Desc;

static LLVMTypeRef named_struct(Cg *cg, const char *name, LLVMTypeRef *fields, int n) {
  LLVMTypeRef t = LLVMStructCreateNamed(cg->ctx, name);
  LLVMStructSetBody(t, fields, n, false);
  return t;
}

static void desc_types(Desc *d) {
  Cg *cg = d->cg;
  LLVMTypeRef i = cg->i32, p = cg->ptr, f = cg->f64;
  LLVMTypeRef param[] = {p, i, i, i, f};
  LLVMTypeRef region[] = {p, p, p, p, p, p, i, p, i, p};
  LLVMTypeRef edge[] = {i, i, f, i, f, f, f};
  LLVMTypeRef source[] = {p, i, i, i, p, f, f, i, p, i, f, p, p, p, i, p,
                          p, p, p, p, p, p, i, p, i, p, i, p, p,
                          p, p, i, p, i, p, i, i, i, p, i, p, p, i, f, p, p};
  LLVMTypeRef model[] = {i, p, p, i, p, i, p, i, p, i, p, i, p, i, p, p, i, p,
                         i, i, f, f, f, f, cg->i64, i, i, p};
  d->param_t = named_struct(cg, "lobe_param", param, 5);
  d->region_t = named_struct(cg, "lobe_region", region, 10);
  d->edge_t = named_struct(cg, "lobe_edge", edge, 7);
  d->source_t = named_struct(cg, "lobe_source", source, 46);
  LLVMTypeRef obs[] = {p, i, i, i, p, i, i, i, f, d->source_t, p, p, p, p, i, p};
  d->obs_t = named_struct(cg, "lobe_observation", obs, 16);
  d->model_t = named_struct(cg, "lobe_model", model, 28);
}

static LLVMValueRef desc_global(Desc *d, LLVMTypeRef type, LLVMValueRef init) {
  char name[32];
  snprintf(name, sizeof name, "lobe.desc.%d", d->nstrings++);
  LLVMValueRef g = LLVMAddGlobal(d->cg->mod, type, name);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, true);
  return g;
}

/* A constant string, or a null pointer for NULL (an absent field). */
static LLVMValueRef desc_string(Desc *d, const char *s) {
  if (!s)
    return LLVMConstNull(d->cg->ptr);
  LLVMValueRef init = LLVMConstStringInContext(d->cg->ctx, s, strlen(s), false);
  LLVMValueRef g = desc_global(d, LLVMTypeOf(init), init);
  LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
  return g;
}

/* A constant array, or a null pointer when empty. */
static LLVMValueRef desc_array(Desc *d, LLVMTypeRef elem, LLVMValueRef *vals, int n) {
  if (n == 0)
    return LLVMConstNull(d->cg->ptr);
  return desc_global(d, LLVMArrayType2(elem, n), LLVMConstArray2(elem, vals, n));
}

static LLVMValueRef di32(Desc *d, long v) { return i32c(d->cg, (int)v); }
static LLVMValueRef df64(Desc *d, double v) { return LLVMConstReal(d->cg->f64, v); }

/* Row i of a descriptor table; ctx is what the table is built from. */
typedef LLVMValueRef (*DescRow)(Desc *d, const void *ctx, int i);

/* The array of rows 0..n-1 (a null pointer when empty). */
static LLVMValueRef desc_table(Desc *d, LLVMTypeRef elem, int n, DescRow row, const void *ctx) {
  LLVMValueRef *vals = ir_xcalloc(n, sizeof *vals);
  for (int i = 0; i < n; i++)
    vals[i] = row(d, ctx, i);
  LLVMValueRef a = desc_array(d, elem, vals, n);
  free(vals);
  return a;
}

static LLVMValueRef param_row(Desc *d, const void *params, int i) {
  const IrParam *p = &((const IrParam *)params)[i];
  LLVMValueRef f[] = {desc_string(d, p->name), di32(d, p->rows), di32(d, p->cols),
                      di32(d, p->init), df64(d, p->scale)};
  return LLVMConstNamedStruct(d->param_t, f, 5);
}

static LLVMValueRef edge_row(Desc *d, const void *model, int i) {
  const Edge *e = &((const Model *)model)->edges[i];
  LLVMValueRef f[] = {di32(d, e->from),   di32(d, e->to),         df64(d, e->delay),
                      di32(d, d->mod->gate_params[i]), df64(d, e->l1),
                      df64(d, e->distance), df64(d, e->length)};
  return LLVMConstNamedStruct(d->edge_t, f, 7);
}

static LLVMValueRef subject_row(Desc *d, const void *subjects, int i) {
  return desc_string(d, ((const Subject *)subjects)[i].name);
}

/* Channel names as bound, or ch0, ch1, ... when none are. */
static LLVMValueRef channel_row(Desc *d, const void *source, int c) {
  const Source *s = source;
  char buf[24];
  snprintf(buf, sizeof buf, "ch%d", c);
  return desc_string(d, s->channel_names ? s->channel_names[c] : buf);
}

static LLVMValueRef select_row(Desc *d, const void *source, int c) {
  return desc_string(d, ((const Source *)source)->select[c]);
}

/* The format's options (lobe_model.h v5), from f[0]. */
static void option_fields(Desc *d, const Source *src, LLVMValueRef *f) {
  f[0] = di32(d, src->nselect);
  f[1] = desc_table(d, d->cg->ptr, src->nselect, select_row, src);
  f[2] = desc_string(d, src->var);
  f[3] = di32(d, src->transposed);
  f[4] = df64(d, src->bin);
  f[5] = desc_string(d, src->series);
  f[6] = desc_string(d, src->atlas);
}

static LLVMValueRef id_row(Desc *d, const void *ids, int g) {
  return di32(d, ((const int *)ids)[g]);
}

static LLVMValueRef desc_ids(Desc *d, const int *ids, int n) {
  return desc_table(d, d->cg->i32, n, id_row, ids);
}

/* f64 entries are declared here and defined by the f64 module linked in;
 * a missing function (func < 0) is a null pointer. */
static LLVMValueRef desc_entry(Desc *d, int func, const char *prec) {
  if (func < 0)
    return LLVMConstNull(d->cg->ptr);
  char sym[256];
  cg_symbol(d->mod->funcs[func], prec, sym, sizeof sym);
  LLVMValueRef fn = LLVMGetNamedFunction(d->cg->mod, sym);
  return fn ? fn : LLVMAddFunction(d->cg->mod, sym,
                                   LLVMFunctionType(d->cg->void_, &d->cg->ptr, 1, 0));
}

/* The region's name, its AUNN's and the AUNN's spec (null without one). */
static LLVMValueRef region_row(Desc *d, const void *model, int i) {
  const Model *m = model;
  const Region *r = &m->regions[i];
  bool has_aunn = r->aunn >= 0 && r->aunn < m->naunns;
  const IrAunnSpec none = {.spec = -1, .spec_vjp = -1};
  const IrAunnSpec *as = has_aunn && d->mod->aunn_spec ? &d->mod->aunn_spec[r->aunn] : &none;
  bool spec = as->spec >= 0;
  LLVMValueRef f[] = {desc_string(d, r->name),
                      desc_string(d, has_aunn ? m->aunns[r->aunn].name : NULL),
                      desc_entry(d, as->spec, "f32"),
                      desc_entry(d, as->spec_vjp, "f32"),
                      desc_entry(d, as->spec, "f64"),
                      desc_entry(d, as->spec_vjp, "f64"),
                      di32(d, spec ? as->nfolded : 0),
                      desc_ids(d, as->folded, spec ? as->nfolded : 0),
                      di32(d, spec ? as->nvjp : 0),
                      desc_ids(d, as->vjp_params, spec ? as->nvjp : 0)};
  return LLVMConstNamedStruct(d->region_t, f, 10);
}

/* Loss weight: the sum over the loss terms naming the source (or the
 * observation). */
static double loss_weight(const Model *m, int s, bool observation) {
  double w = 0;
  for (int l = 0; l < m->nlosses; l++)
    if ((observation ? m->losses[l].observation : m->losses[l].source) == s)
      w += m->losses[l].weight;
  return w;
}

/* The params an export kernel reads (its inputs before t that have a use). */
static int kernel_params(const IrFunc *f, int nparams, int *out) {
  bool *read = ir_xcalloc(nparams, sizeof *read);
  for (int v = 0; v < f->nins; v++)
    for (int k = 0; k < f->ins[v].nargs; k++) {
      const IrInstr *a = &f->ins[f->ins[v].args[k]];
      if (a->op == IR_INPUT && a->index < nparams)
        read[a->index] = true;
    }
  int n = 0;
  for (int p = 0; p < nparams; p++)
    if (read[p])
      out[n++] = p;
  free(read);
  return n;
}

/* The kernel's C text (codegen_c.c), or NULL if it cannot be printed. */
static char *kernel_text(Desc *d, const IrFunc *f) {
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  if (!mem)
    return NULL;
  int rc = cg_c_function(mem, f, "lobe_export_kernel", true, d->cg->err, d->cg->errlen);
  if (fclose(mem) != 0 || rc != 0) {
    free(text);
    return NULL;
  }
  return text;
}

/* The export fields of a source row (lobe_model.h): eight, null when the
 * source has no export kernel. */
static void export_fields(Desc *d, const IrSourceFns *fns, LLVMValueRef *f) {
  const IrFunc *k = fns->export_fn;
  char *text = k ? kernel_text(d, k) : NULL;
  int np = d->mod->nparams;
  int *read = ir_xcalloc(np ? np : 1, sizeof *read);
  int nread = text ? kernel_params(k, np, read) : 0;
  int t = text ? ir_input_value(k, np) : -1;
  int u = text && k->ninputs > np + 1 ? ir_input_value(k, np + 1) : -1;
  f[0] = desc_string(d, text);
  f[1] = desc_entry(d, text ? fns->export_spec : -1, "f32");
  f[2] = di32(d, text ? fns->nexport_folded : 0);
  f[3] = desc_ids(d, fns->export_folded, text ? fns->nexport_folded : 0);
  f[4] = di32(d, nread);
  f[5] = desc_ids(d, read, nread);
  f[6] = di32(d, t >= 0 ? k->ins[t].shape.dim[0] : 0);
  f[7] = di32(d, u >= 0 ? k->ins[u].shape.dim[1] : 0);
  free(read);
  free(text);
}

/* A specialised entry point, or -1 for a source lowered without them. */
static int spec(const IrSourceFns *fns, int func) { return fns->nfolded > 0 ? func : -1; }

/* A lobe_source of src with the entry points fns and the given loss. */
static LLVMValueRef source_struct(Desc *d, const Source *src, const IrSourceFns *fns,
                                  double weight) {
  LLVMValueRef f[] = {
      desc_string(d, src->name), di32(d, src->region), di32(d, src->subject),
      di32(d, (int)src->kind),   /* SourceKind is in the order of LOBE_SRC_* */ desc_string(d, src->path), df64(d, src->rate), df64(d, src->t0),
      di32(d, src->channels), desc_table(d, d->cg->ptr, src->channels, channel_row, src),
      di32(d, fns->loss == LOSS_POISSON ? LOBE_LOSS_POISSON : LOBE_LOSS_MSE),
      df64(d, weight), desc_entry(d, fns->forward, "f32"),
      desc_entry(d, fns->loss_grad, "f32"), desc_entry(d, fns->loss_grad, "f64"),
      di32(d, fns->ngrad), desc_ids(d, fns->grad_params, fns->ngrad),
      desc_entry(d, spec(fns, fns->spec), "f32"),
      desc_entry(d, spec(fns, fns->loss_grad_spec), "f32"),
      desc_entry(d, spec(fns, fns->spec_vjp), "f32"), desc_entry(d, spec(fns, fns->spec), "f64"),
      desc_entry(d, spec(fns, fns->loss_grad_spec), "f64"),
      desc_entry(d, spec(fns, fns->spec_vjp), "f64"), di32(d, fns->nfolded),
      desc_ids(d, fns->folded, fns->nfolded), di32(d, fns->nspec_grad),
      desc_ids(d, fns->spec_grad_params, fns->nspec_grad), di32(d, fns->nvjp),
      desc_ids(d, fns->vjp_params, fns->nvjp), desc_entry(d, fns->loss_held, "f64"),
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      di32(d, fns->nfolded > 0 ? fns->nspec_regions : 0),
      desc_ids(d, fns->spec_regions, fns->nfolded > 0 ? fns->nspec_regions : 0),
      NULL, NULL, NULL, NULL, NULL, NULL, NULL};
  export_fields(d, fns, f + 29);
  option_fields(d, src, f + 39);
  return LLVMConstNamedStruct(d->source_t, f, 46);
}

static LLVMValueRef source_row(Desc *d, const void *model, int s) {
  const Model *m = model;
  return source_struct(d, &m->sources[s], &d->mod->source_fns[s], loss_weight(m, s, false));
}

/* An observation's row; its recording is a source without entry points. */
static LLVMValueRef observation_row(Desc *d, const void *model, int i) {
  const Model *m = model;
  const Observation *o = &m->observations[i];
  const IrObsFns *fns = &d->mod->obs_fns[i];
  const IrSourceFns none = {.forward = -1, .loss_grad = -1, .loss_held = -1, .spec = -1,
                            .loss_grad_spec = -1, .spec_vjp = -1, .export_spec = -1};
  int channels = o->kind == OBS_EEG ? o->data.channels : o->nregions;
  LLVMValueRef f[] = {desc_string(d, o->name), di32(d, (int)o->kind),  /* as LOBE_OBS_* */
                      di32(d, o->subject), di32(d, o->nregions),
                      desc_ids(d, o->regions, o->nregions), di32(d, o->window),
                      di32(d, o->batch), di32(d, channels),
                      df64(d, loss_weight(m, i, true)),
                      source_struct(d, &o->data, &none, 0),
                      desc_entry(d, fns->forward, "f32"), desc_entry(d, fns->loss_grad, "f32"),
                      desc_entry(d, fns->loss_grad, "f64"), desc_entry(d, fns->loss_held, "f64"),
                      di32(d, fns->ngrad), desc_ids(d, fns->grad_params, fns->ngrad)};
  return LLVMConstNamedStruct(d->obs_t, f, 16);
}

/* The spec's file name without folder and extension. */
static void model_name(const char *spec, char *buf, int buflen) {
  const char *base = spec ? strrchr(spec, '/') : NULL;
  base = base ? base + 1 : spec ? spec : "model";
  snprintf(buf, buflen, "%s", base);
  char *dot = strrchr(buf, '.');
  if (dot && dot != buf)
    *dot = 0;
}

static void emit_descriptor(Cg *cg, const IrModule *mod) {
  Desc d = {.cg = cg, .mod = mod};
  cg->mod = cg->prec[0].module;
  desc_types(&d);
  const Model *m = mod->model;
  const TrainConfig *t = &m->train;
  char name[256];
  model_name(m->spec_path, name, sizeof name);
  LLVMValueRef f[] = {
      di32(&d, LOBE_ABI_VERSION), desc_string(&d, name), desc_string(&d, m->spec_path),
      di32(&d, mod->nparams), desc_table(&d, d.param_t, mod->nparams, param_row, mod->params),
      di32(&d, m->nregions), desc_table(&d, d.region_t, m->nregions, region_row, m),
      di32(&d, m->nsubjects), desc_table(&d, cg->ptr, m->nsubjects, subject_row, m->subjects),
      di32(&d, m->nsources), desc_table(&d, d.source_t, m->nsources, source_row, m),
      di32(&d, m->nedges), desc_table(&d, d.edge_t, m->nedges, edge_row, m),
      di32(&d, t->window), desc_entry(&d, mod->prior, "f32"), desc_entry(&d, mod->prior, "f64"),
      di32(&d, mod->nprior), desc_ids(&d, mod->prior_params, mod->nprior),
      di32(&d, t->batch), di32(&d, t->steps), df64(&d, t->lr), df64(&d, t->beta1),
      df64(&d, t->beta2), df64(&d, t->eps), LLVMConstInt(cg->i64, t->seed, false),
      di32(&d, t->checkpoint_every), di32(&d, m->nobservations),
      desc_table(&d, d.obs_t, m->nobservations, observation_row, m)};
  LLVMValueRef g = LLVMAddGlobal(cg->mod, d.model_t, "lobe_model_desc");
  LLVMSetInitializer(g, LLVMConstNamedStruct(d.model_t, f, 28));
  LLVMSetGlobalConstant(g, true);
}

/* what: "source 2", "prior", "edge 1" */
static int check_ids(Cg *cg, const char *what, const int *ids, int n, int nparams) {
  for (int g = 0; g < n; g++)
    if (ids[g] < 0 || ids[g] >= nparams)
      return cg_fail(cg, "%s: parameter %d of %d", what, ids[g], nparams);
  return 0;
}

static int check_function(Cg *cg, const char *what, int func, int nfuncs) {
  if (func < 0 || func >= nfuncs)
    return cg_fail(cg, "%s names function %d of %d", what, func, nfuncs);
  return 0;
}

/* The prior (if any) and every edge's gate. */
static int check_graph(Cg *cg, const IrModule *mod) {
  if (mod->prior >= 0 && (check_function(cg, "the prior", mod->prior, mod->nfuncs) != 0 ||
                          check_ids(cg, "prior", mod->prior_params, mod->nprior,
                                    mod->nparams) != 0))
    return -1;
  if (mod->model->nedges > 0 && !mod->gate_params)
    return cg_fail(cg, "edges without gate parameters");
  return check_ids(cg, "edge gates", mod->gate_params, mod->model->nedges, mod->nparams);
}

/* Per AUNN with a spec: its functions exist and its lists name params. */
static int check_aunn_specs(Cg *cg, const IrModule *mod) {
  for (int a = 0; mod->aunn_spec && a < mod->model->naunns; a++) {
    const IrAunnSpec *as = &mod->aunn_spec[a];
    if (as->spec < 0)
      continue;
    if (check_function(cg, "aunn spec", as->spec, mod->nfuncs) != 0 ||
        check_function(cg, "aunn spec", as->spec_vjp, mod->nfuncs) != 0 ||
        check_ids(cg, "aunn spec", as->folded, as->nfolded, mod->nparams) != 0 ||
        check_ids(cg, "aunn spec", as->vjp_params, as->nvjp, mod->nparams) != 0)
      return -1;
  }
  return 0;
}

/* Every function a source names must exist, and its tables must match. */
static int check_sources(Cg *cg, const IrModule *mod) {
  if (!mod->model || !mod->source_fns)
    return cg_fail(cg, "descriptor requested for a module without a model");
  for (int s = 0; s < mod->model->nsources; s++) {
    const IrSourceFns *fns = &mod->source_fns[s];
    int ids[5] = {fns->forward, fns->loss_grad, fns->spec, fns->loss_grad_spec,
                  fns->spec_vjp};
    int nids = fns->nfolded > 0 ? 5 : 2;
    char what[32];
    snprintf(what, sizeof what, "source %d", s);
    for (int k = 0; k < nids; k++)
      if (check_function(cg, what, ids[k], mod->nfuncs) != 0)
        return -1;
    if (fns->loss_held >= 0 && check_function(cg, what, fns->loss_held, mod->nfuncs) != 0)
      return -1;
    if (fns->export_fn && (check_function(cg, what, fns->export_spec, mod->nfuncs) != 0 ||
                           check_ids(cg, what, fns->export_folded, fns->nexport_folded,
                                     mod->nparams) != 0))
      return -1;
    if (check_ids(cg, what, fns->grad_params, fns->ngrad, mod->nparams) != 0 ||
        check_ids(cg, what, fns->folded, fns->nfolded, mod->nparams) != 0 ||
        check_ids(cg, what, fns->spec_grad_params, fns->nspec_grad, mod->nparams) != 0 ||
        check_ids(cg, what, fns->vjp_params, fns->nvjp, mod->nparams) != 0 ||
        check_ids(cg, what, fns->spec_regions, fns->nfolded > 0 ? fns->nspec_regions : 0,
                  mod->model->nregions) != 0)
      return -1;
  }
  return check_aunn_specs(cg, mod) != 0 ? -1 : check_graph(cg, mod);
}

/* ---- driver --------------------------------------------------------------------- */

static void init_llvm(void) {
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
}

void cg_symbol(const IrFunc *f, const char *prec, char *buf, int buflen) {
  if (buflen <= 0)
    return;
  snprintf(buf, buflen, "lobe_%s_%s", f->name ? f->name : "", prec);
  for (char *c = buf + (strlen(buf) < 5 ? strlen(buf) : 5); *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
      *c = '_';
}

static int make_target(Cg *cg, int opt_level) {
  char *triple = LLVMGetDefaultTargetTriple(), *msg = NULL;
  LLVMTargetRef target;
  if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
    cg_fail(cg, "LLVM target %s: %s", triple, msg);
    LLVMDisposeMessage(msg);
    LLVMDisposeMessage(triple);
    return -1;
  }
  static const LLVMCodeGenOptLevel levels[] = {LLVMCodeGenLevelNone, LLVMCodeGenLevelLess,
                                               LLVMCodeGenLevelDefault,
                                               LLVMCodeGenLevelAggressive};
  char *cpu = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
  cg->tm = LLVMCreateTargetMachine(target, triple, cpu, features, levels[opt_level],
                                   LLVMRelocPIC, LLVMCodeModelDefault);
  for (int p = 0; p < 2; p++)
    LLVMSetTarget(cg->prec[p].module, triple);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
  LLVMDisposeMessage(triple);
  if (!cg->tm)
    return cg_fail(cg, "cannot create an LLVM target machine for the host");
  LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(cg->tm);
  for (int p = 0; p < 2; p++)
    LLVMSetModuleDataLayout(cg->prec[p].module, layout);
  LLVMDisposeTargetData(layout);
  return 0;
}

static void cg_open(Cg *cg, char *err, int errlen) {
  *cg = (Cg){.err = err, .errlen = errlen};
  cg->ctx = LLVMContextCreate();
  cg->b = LLVMCreateBuilderInContext(cg->ctx);
  cg->mb = LLVMCreateBuilderInContext(cg->ctx);
  cg->i8 = LLVMInt8TypeInContext(cg->ctx);
  cg->i32 = LLVMInt32TypeInContext(cg->ctx);
  cg->i64 = LLVMInt64TypeInContext(cg->ctx);
  cg->ptr = LLVMPointerTypeInContext(cg->ctx, 0);
  cg->void_ = LLVMVoidTypeInContext(cg->ctx);
  cg->f32 = LLVMFloatTypeInContext(cg->ctx);
  cg->f64 = LLVMDoubleTypeInContext(cg->ctx);
  cg->prec[0] = (Prec){"f32", cg->f32, 4, true,
                       LLVMModuleCreateWithNameInContext("lobe", cg->ctx)};
  cg->prec[1] = (Prec){"f64", cg->f64, 8, false,
                       LLVMModuleCreateWithNameInContext("lobe.f64", cg->ctx)};
}

static void cg_close(Cg *cg) {
  forget_kernels(cg);
  if (cg->tm)
    LLVMDisposeTargetMachine(cg->tm);
  LLVMDisposeBuilder(cg->b);
  LLVMDisposeBuilder(cg->mb);
  for (int p = 0; p < 2; p++)
    if (cg->prec[p].module)
      LLVMDisposeModule(cg->prec[p].module);
  LLVMContextDispose(cg->ctx);
}

/* With a descriptor, f64 code is only for what gradcheck calls: a third of
 * the compile time went to f64 forward passes nobody runs. */
static bool *f64_wanted(const IrModule *mod, bool descriptor) {
  bool *want = ir_xcalloc(mod->nfuncs ? mod->nfuncs : 1, sizeof *want);
  for (int i = 0; i < mod->nfuncs; i++)
    want[i] = !descriptor;
  if (descriptor && mod->prior >= 0)
    want[mod->prior] = true;
  for (int s = 0; descriptor && s < mod->model->nsources; s++) {
    const IrSourceFns *fns = &mod->source_fns[s];
    int ids[5] = {fns->loss_grad, fns->spec, fns->loss_grad_spec, fns->spec_vjp,
                  fns->loss_held};
    for (int k = 0; k < 5; k++)
      if (ids[k] >= 0)
        want[ids[k]] = true;
  }
  for (int o = 0; descriptor && o < mod->model->nobservations; o++) {
    want[mod->obs_fns[o].loss_grad] = true;
    if (mod->obs_fns[o].loss_held >= 0)
      want[mod->obs_fns[o].loss_held] = true;
  }
  for (int a = 0; descriptor && mod->aunn_spec && a < mod->model->naunns; a++)
    if (mod->aunn_spec[a].spec >= 0)
      want[mod->aunn_spec[a].spec] = want[mod->aunn_spec[a].spec_vjp] = true;
  return want;
}

/* f32 always; f64 too when with_f64. */
static int emit_function(Cg *cg, const IrFunc *f, bool with_f64) {
  if (ir_verify(f, cg->err, cg->errlen) != 0)
    return -1;
  Plan *p = plan_new(f);
  int rc = emit_entry(cg, f, p, &cg->prec[0]);
  if (rc == 0 && with_f64)
    rc = emit_entry(cg, f, p, &cg->prec[1]);
  plan_free(p);
  return rc;
}

static int emit_functions(Cg *cg, const IrModule *mod, bool descriptor) {
  bool *f64 = f64_wanted(mod, descriptor);
  int rc = 0;
  for (int i = 0; i < mod->nfuncs && rc == 0; i++)
    rc = emit_function(cg, mod->funcs[i], f64[i]);
  free(f64);
  return rc;
}

static int verify_module(Cg *cg, LLVMModuleRef module) {
  char *msg = NULL;
  if (LLVMVerifyModule(module, LLVMReturnStatusAction, &msg)) {
    cg_fail(cg, "internal error: invalid LLVM module: %s", msg);
    LLVMDisposeMessage(msg);
    return -1;
  }
  LLVMDisposeMessage(msg);
  return 0;
}

/* Vectorisation from O2. Plain unrolling only at O3: the vectoriser already
 * interleaves its loops, and unrolling everything else doubled both the
 * object size and the compile time for a percent of run time. */
static int optimise(Cg *cg, LLVMModuleRef module, int opt_level, bool vectorise) {
  char pipeline[32];
  snprintf(pipeline, sizeof pipeline, "default<O%d>", opt_level);
  LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(opts, vectorise && opt_level >= 2);
  LLVMPassBuilderOptionsSetSLPVectorization(opts, vectorise && opt_level >= 2);
  LLVMPassBuilderOptionsSetLoopInterleaving(opts, vectorise && opt_level >= 2);
  LLVMPassBuilderOptionsSetLoopUnrolling(opts, opt_level >= 3);
  LLVMErrorRef e = LLVMRunPasses(module, pipeline, cg->tm, opts);
  LLVMDisposePassBuilderOptions(opts);
  if (!e)
    return 0;
  char *msg = LLVMGetErrorMessage(e);
  cg_fail(cg, "LLVM passes: %s", msg);
  LLVMDisposeErrorMessage(msg);
  return -1;
}

static int optimise_all(Cg *cg, int opt_level) {
  for (int p = 0; p < 2; p++)
    if (verify_module(cg, cg->prec[p].module) != 0)
      return -1;
  if (optimise(cg, cg->prec[0].module, opt_level, true) != 0 ||
      optimise(cg, cg->prec[1].module, opt_level < 1 ? opt_level : 1, false) != 0)
    return -1;
  LLVMBool failed = LLVMLinkModules2(cg->prec[0].module, cg->prec[1].module);
  cg->prec[1].module = NULL;   /* consumed by the linker either way */
  cg->mod = cg->prec[0].module;
  return failed ? cg_fail(cg, "internal error: cannot link the f64 functions") : 0;
}

static int write_outputs(Cg *cg, const char *ll_path, const char *obj_path) {
  char *msg = NULL;
  if (ll_path && LLVMPrintModuleToFile(cg->mod, ll_path, &msg)) {
    cg_fail(cg, "%s: %s", ll_path, msg);
    LLVMDisposeMessage(msg);
    return -1;
  }
  if (LLVMTargetMachineEmitToFile(cg->tm, cg->mod, (char *)obj_path, LLVMObjectFile, &msg)) {
    cg_fail(cg, "%s: %s", obj_path, msg);
    LLVMDisposeMessage(msg);
    return -1;
  }
  return 0;
}

int cg_emit_object(const IrModule *mod, const CgOptions *opt, const char *obj_path,
                   char *err, int errlen) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, init_llvm);
  CgOptions o = opt ? *opt : (CgOptions){.opt_level = 2};
  if (o.opt_level < 0 || o.opt_level > 3)
    o.opt_level = 2;
  Cg cg;
  cg_open(&cg, err, errlen);
  int rc = make_target(&cg, o.opt_level);
  if (rc == 0 && o.descriptor)
    rc = check_sources(&cg, mod);
  if (rc == 0)
    rc = emit_functions(&cg, mod, o.descriptor);
  if (rc == 0 && o.descriptor)
    emit_descriptor(&cg, mod);
  if (rc == 0)
    rc = optimise_all(&cg, o.opt_level);
  if (rc == 0)
    rc = write_outputs(&cg, o.emit_llvm, obj_path);
  cg_close(&cg);
  return rc;
}
