/*
 * ir.h — the tensor IR and everything that transforms it.
 *
 * A function is a list of instructions in SSA form: value %i is the result
 * of instruction i, and operands always name earlier values. Shapes are static
 * (rank 0, 1 or 2, row-major). Element type is TY_REAL (float32 or float64,
 * chosen only at codegen; the interpreter uses double) or TY_I32 (indices:
 * inputs and constants, read only as the index of gather and scatter_add).
 * Elementwise ops take operands of identical shape: broadcasting is explicit
 * (IR_BCAST), so every op's adjoint is local.
 *
 * Sections: ir.c (builder, verifier), print.c (text form), autodiff.c,
 * interp.c, observe.c, passes/ (one file per pass, order in passes/passes.c),
 * lower.c.
 */
#ifndef LOBE_IR_H
#define LOBE_IR_H

#include <stdbool.h>
#include <stdio.h>

#include "front.h"

typedef enum { TY_REAL, TY_I32 } IrType;

typedef struct IrShape {
  int rank;                /* 0, 1 or 2 */
  int dim[2];
} IrShape;

#define IR_SCALAR   ((IrShape){0, {1, 1}})
#define IR_VEC(n)   ((IrShape){1, {(n), 1}})
#define IR_MAT(m, n) ((IrShape){2, {(m), (n)}})

#define IR_OPS(X)                                                         \
  /* leaves */                                                           \
  X(INPUT, "input")     /* function argument `index` */                  \
  X(CONST, "const")     /* `value` in every element */                   \
  X(TENSOR, "tensor")   /* constant elements `data` (numel doubles; I32:   \
                           integers, for gather and scatter_add) */      \
  /* elementwise binary: same shapes */                                   \
  X(ADD, "add") X(SUB, "sub") X(MUL, "mul") X(DIV, "div")                \
  /* elementwise unary */                                                 \
  X(NEG, "neg") X(EXP, "exp") X(LOG, "log") X(SIN, "sin") X(COS, "cos")  \
  X(TANH, "tanh") X(SIGMOID, "sigmoid") X(RELU, "relu")                  \
  X(STEP, "step")       /* x > 0 ? 1 : 0; zero gradient */               \
  X(SQRT, "sqrt")                                                        \
  X(ABS, "abs")         /* |x|; adjoint sign(x) * dy, sign(0) = 0 */     \
  X(DETACH, "detach")   /* x, through which no gradient flows */         \
  /* shape */                                                             \
  X(BCAST, "bcast")     /* axis 0: [n]->[m,n]; 1: [m]->[m,n]; -1: []->any */ \
  X(SUM, "sum")         /* axis 0: [m,n]->[n]; 1: [m,n]->[m]; -1: any->[] */ \
  X(MATMUL, "matmul")   /* op(a)[m,k] x op(b)[k,n]; trans_a, trans_b */  \
  /* concat, slice, pad work on columns (axis 1) or rows (axis 0) */     \
  X(CONCAT, "concat")   /* n rank-2 operands side by side (equal rows) or \
                           stacked (equal columns) */                    \
  X(SLICE, "slice")     /* columns (rows) [start, start+len) */         \
  X(PAD, "pad")         /* [m,len] at column `start` of zeros [m,n]; rows: \
                           [len,n] at row `start` of zeros [m,n] */      \
  X(GATHER, "gather")   /* table[V,E], idx i32[m] -> [m,E] (rows) */     \
  X(SCATTER_ADD, "scatter_add") /* src[m,E], idx[m] -> zeros[V,E] += rows */

typedef enum {
#define IR_ENUM(name, text) IR_##name,
  IR_OPS(IR_ENUM)
#undef IR_ENUM
  IR_NOPS
} IrOp;

typedef struct IrInstr {
  IrOp op;
  IrType type;
  IrShape shape;
  int nargs;
  int *args;               /* operand value ids, each < this id */
  /* attributes; meaning depends on op */
  int index;               /* INPUT: argument number */
  int axis;                /* BCAST, SUM; CONCAT, SLICE, PAD: 1 columns, 0 rows */
  int start;               /* SLICE, PAD */
  bool trans_a, trans_b;   /* MATMUL */
  double value;            /* CONST (an integer when TY_I32) */
  double *data;            /* TENSOR: owned, numel elements */
  char *name;              /* optional: INPUT's argument name, debug names */
} IrInstr;

typedef struct IrFunc {
  char *name;
  IrInstr *ins;
  int nins, cap;
  int ninputs;             /* INPUT instrs carry index 0..ninputs-1 */
  int *outputs;
  int noutputs;
} IrFunc;

/* Trainable parameter (function inputs named after it). init is LOBE_INIT_*
 * from runtime/lobe_model.h. */
typedef struct IrParam {
  char *name;
  int rank;                /* 1 (bias vectors: rows == 1) or 2 */
  int rows, cols;
  int init;
  double scale;
} IrParam;

/* The entry points lower builds for one data source; ids index IrModule.funcs.
 * A window has W = train.window steps; t is the time of its first step and
 * step j's C values are columns [j*C, (j+1)*C) of out and y
 * (docs/semantics.md, runtime/lobe_model.h).
 *   forward:   (params..., t[B], module[B], subject[B]) -> out[B,W*C]
 *   loss_grad: (params..., t[B], module[B], subject[B], y[B,W*C])
 *                -> loss[], d loss / d params[grad_params[i]]...
 * where the loss is `loss` (LOSS_MSE or LOSS_POISSON), the mean over the
 * batch of one window's loss. When the window reads the state before it
 * (a delayed edge reaching back past its first step), also
 *   loss_held: (params..., held params..., t[B], module[B], subject[B], y[B,W*C]) -> loss[]
 * the same loss with that state computed from the held params: what
 * loss_grad differentiates, for finite differences (-1 otherwise).
 * Specialised (docs/specialisation.md; the spec ids -1 and nfolded 0 when
 * lowered without specialisation): every region v of the window
 * (spec_regions, the source's own included) is evaluated with its
 * (v, subject) folded into theta'_v, one tensor per folded[k] of v's AUNN
 * (IrModule.aunn_spec), of that parameter's shape:
 *   loss_grad_spec: (params..., t[B], y[B,W*C], theta'_{v,k}... for v in
 *                    spec_regions, k < nfolded(v))
 *                     -> loss[], d loss / d params[spec_grad_params[i]]...,
 *                        d loss / d theta'_{v,k}... (in the same order)
 * the folded slots of params being unread. spec, spec_vjp, folded and
 * vjp_params here are those of the source's own region's AUNN.
 * For `brain export` (docs/specialisation.md), when lowered with
 * specialisation and the folding is exact for the source's region (no
 * in-edges, or concat conditioning) and its AUNN has a spec function:
 *   export_fn: (params'..., t[EB], u[EB,input] when the region has
 *               in-edges) -> out[EB,C]
 * one step of the source's region (no window) through its head, params'
 * with spec's theta' (export_spec, the AUNN's spec function) in place of
 * export_folded; printed as C (codegen_c.c), never compiled by LLVM, so
 * kept out of funcs and owned here (NULL: no export).
 * All six lists share one allocation, owned through grad_params. */
typedef struct IrSourceFns {
  LossKind loss;
  int forward, loss_grad, loss_held;
  int *grad_params;
  int ngrad;
  int spec, loss_grad_spec, spec_vjp;
  int *folded, *spec_grad_params, *vjp_params;
  int nfolded, nspec_grad, nvjp;
  IrFunc *export_fn;
  int export_spec;
  int *export_folded;
  int nexport_folded;
  int *spec_regions;
  int nspec_regions;
} IrSourceFns;

/* Per AUNN, when some window evaluates one of its regions specialised
 * (else spec is -1): theta' = spec(params, module, subject) replaces
 * params[folded[k]], and with the ids as inputs the regions share them:
 *   spec:     (params..., module[1], subject[1]) -> theta'...
 *   spec_vjp: (params..., module[1], subject[1], d theta'...)
 *               -> sum_k <d theta'_k, theta'_k>[], d / d params[vjp_params[i]]... */
typedef struct IrAunnSpec {
  int spec, spec_vjp;
  int *folded, *vjp_params;
  int nfolded, nvjp;
} IrAunnSpec;

/* Per observation (lobe_model.h, v6), with N regions and T = its window:
 *   forward:   (params..., t[1], module[N], subject[N]) -> out[T, C]
 *   loss_grad: (params..., t[1], module[N], subject[N], y) -> loss[],
 *                d loss / d params[grad_params[i]]...
 *   loss_held: (params..., held params..., t[1], module[N], subject[N], y) -> loss[]
 *              (-1 when the window reads no step before it)
 * The N regions are the batch rows of one evaluation of their AUNN. */
typedef struct IrObsFns {
  int forward, loss_grad, loss_held;
  int *grad_params;
  int ngrad;
  int gain, offset;        /* eeg, bold: the parameters of out's affine map (-1: none) */
} IrObsFns;

/* The prior, when the model has a regulariser (else prior is -1):
 *   prior: (params...) -> loss[], d loss / d params[prior_params[i]]...
 * the gate priors of the edges and the l2 loss terms, added once per step. */
typedef struct IrModule {
  IrFunc **funcs;
  int nfuncs;
  IrParam *params;
  int nparams;
  const Model *model;      /* names, sources, train config for the descriptor */
  IrSourceFns *source_fns; /* one per model source */
  IrObsFns *obs_fns;       /* one per model observation */
  IrAunnSpec *aunn_spec;   /* one per model AUNN; NULL without specialisation */
  int *gate_params;        /* per model edge: the gates parameter (its element e) */
  int prior;               /* function id, or -1 */
  int *prior_params;
  int nprior;
} IrModule;

/* ---------------------------------------------------------------- ir.c */
/* Builder functions check shapes and types and abort on misuse: a bad
 * instruction is a compiler bug, never a user error. Each returns the id. */

/* calloc that aborts on exhaustion (n may be 0): the compiler's stages
 * share it rather than each keeping a copy. */
void *ir_xcalloc(size_t n, size_t size);

IrFunc *ir_func_new(const char *name);
void ir_func_free(IrFunc *f);
int ir_input(IrFunc *f, const char *name, IrType type, IrShape shape);
int ir_const(IrFunc *f, double value, IrShape shape);
int ir_const_i32(IrFunc *f, int value, IrShape shape);   /* an index constant */
int ir_tensor(IrFunc *f, const double *data, IrShape shape);
int ir_tensor_i32(IrFunc *f, const int *data, IrShape shape);  /* index constants */
int ir_binary(IrFunc *f, IrOp op, int a, int b);
int ir_unary(IrFunc *f, IrOp op, int a);
int ir_bcast(IrFunc *f, int a, int axis, IrShape to);
int ir_sum(IrFunc *f, int a, int axis);
int ir_matmul(IrFunc *f, int a, int b, bool trans_a, bool trans_b);
int ir_concat(IrFunc *f, const int *parts, int n);
int ir_slice(IrFunc *f, int a, int start, int len);
int ir_pad(IrFunc *f, int a, int start, int cols);
int ir_concat_rows(IrFunc *f, const int *parts, int n);
int ir_slice_rows(IrFunc *f, int a, int start, int len);
int ir_pad_rows(IrFunc *f, int a, int start, int rows);
int ir_gather(IrFunc *f, int table, int idx);
int ir_scatter_add(IrFunc *f, int src, int idx, int rows);
void ir_output(IrFunc *f, int value);

/* Appends a copy of instruction `in` with operands renamed through map
 * (map[old id] = new id); used by passes and autodiff. */
int ir_copy_instr(IrFunc *f, const IrInstr *in, const int *map);

long ir_numel(IrShape s);
bool ir_shape_eq(IrShape a, IrShape b);
bool ir_is_elementwise(IrOp op);
const char *ir_op_name(IrOp op);
int ir_input_value(const IrFunc *f, int index);   /* value id of argument */

/* Checks SSA order, shapes and types; returns 0, or -1 with a message. */
int ir_verify(const IrFunc *f, char *err, int errlen);

IrModule *ir_module_new(const Model *m);
int ir_module_add(IrModule *mod, IrFunc *f);       /* returns the func id */
void ir_module_free(IrModule *mod);

/* -------------------------------------------------------------- print.c */
/*   func loss_V1.m1(%0: real[16,64] "fc0.w", ...) {
 *     %7 = matmul %5, %0 : real[256,64]
 *     ret %9, %12
 *   }                                                                    */
void ir_print(FILE *out, const IrFunc *f);
void ir_print_module(FILE *out, const IrModule *mod);

/* ----------------------------------------------------------- autodiff.c */
/* Reverse mode as an IR-to-IR transformation: copies f's forward
 * instructions, then walks them backwards keeping an adjoint table keyed by
 * value (missing = zero), accumulating with adds into fresh values. Output 0
 * of f must be a scalar. The result has f's inputs and outputs
 * (f's outputs..., d out0 / d input wrt[i]...). */
IrFunc *ad_grad(const IrFunc *f, const int *wrt, int nwrt, const char *name);

/* ------------------------------------------------------------- interp.c */
/* Reference evaluator in double precision. in[i] holds argument i (I32
 * arguments as doubles holding integers); out[i] must hold numel(output i).
 * Returns 0, or -1 with a message (e.g. an index out of range). */
int interp_run(const IrFunc *f, const double *const *in, double *const *out,
               char *err, int errlen);

/* ------------------------------------------------------------ observe.c */
/* The observation operators of global losses (docs/observations.md), built
 * into f from IR ops, so that autodiff differentiates them. A signal is
 * [T, N]: T time steps as rows, oldest first, of N regions' activity. */

/* act [T, N] times the lead field L (N x C, row r for region r, row-major,
 * copied) -> [T, C] channels, average-referenced: each row minus its mean
 * over the C channels. */
int obs_leadfield(IrFunc *f, int act, const double *leadfield, int channels);

/* Seconds of history obs_hrf reads (the canonical HRF's support). */
double obs_hrf_span(void);

/* BOLD of act [T, N] sampled every dt seconds -> [T, N]: the causal
 * convolution with the canonical double-gamma HRF sampled at dt (rows
 * before row 0 read as 0). */
int obs_hrf(IrFunc *f, int act, double dt);

/* BOLD of act [T, N] -> [T, N] by the Balloon-Windkessel model (Friston, Mechelli,
 * Turner and Price 2000 parameters), each region starting at rest at row 0, its neural
 * drive held at act's row for dt seconds, integrated by forward Euler in
 * ceil(dt * OBS_BALLOON_SUBSTEPS_PER_SECOND) equal sub-steps; row k is the
 * BOLD signal at the end of step k. */
enum { OBS_BALLOON_SUBSTEPS_PER_SECOND = 10 };
int obs_balloon(IrFunc *f, int act, double dt);

/* The Pearson correlations of x's N columns over its T rows: [N, N]. */
int obs_pearson(IrFunc *f, int x);

/* The mean over i < j of (a[i][j] - b[i][j])^2 of two [N, N] values: a
 * scalar (N >= 2). */
int obs_upper_mse(IrFunc *f, int a, int b);

/* ------------------------------------------------------------- passes/ */
/* Runs the optimisation pipeline in its fixed order; with dump_after set to
 * a pass name (or "all"), prints the function after that pass to dump. */
void pass_run_all(IrFunc *f, const char *dump_after, FILE *dump);
void pass_fold(IrFunc *f);   /* constant folding, algebraic identities */
void pass_cse(IrFunc *f);    /* common subexpressions */
void pass_dce(IrFunc *f);    /* dead values; renumbers */
const char *const *pass_names(void);  /* NULL-terminated, in order */

/* -------------------------------------------------------------- lower.c */
/* Builds every entry point of the model: per source forward and loss_grad
 * over its window of the region graph, with specialise the spec entry
 * points of the sources that read no other region, and the prior. Returns
 * NULL only on internal error (a Model sema should have rejected: an edge
 * whose embedding widths do not match, or a cycle without delay).
 * lower_model(m) is lower_model_with(m, true). */
IrModule *lower_model(const Model *m);
IrModule *lower_model_with(const Model *m, bool specialise);

#endif
