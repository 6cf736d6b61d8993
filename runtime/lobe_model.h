/*
 * lobe_model.h — the ABI between a compiled model and the runtime.
 *
 * lobec emits one object that defines `lobe_model_desc`; the runtime library
 * (which holds main) drives it and knows nothing model-specific. Every entry
 * point has the signature lobe_fn: args[] holds pointers to the inputs in
 * order, then to the outputs. Real buffers are float (the _f32 functions) or
 * double (_f64); id buffers are int32_t. All tensors are dense, row-major.
 *
 * Per data source, with P = nparams, B = batch, C = channels, W = window:
 *   forward:   params[0..P), t[B], module[B], subject[B]        -> out[B,W*C]
 *   loss_grad: params[0..P), t[B], module[B], subject[B], y[B,W*C]
 *                -> loss[1], grad[k] for k < ngrad (shape of params[grad_params[k]])
 * Batch element b is a window of W time steps of the source's own sample
 * period: step j is at time t[b] + j / rate, and its C values are columns
 * [j*C, (j+1)*C) of row b, so W consecutive rows of a recording are one row
 * of y. Times are seconds; module is the source's region index (for every b),
 * subject the subject index; the other regions of the window's graph are
 * evaluated for the same subject (docs/semantics.md).
 * The loss is the mean over the batch of the source's loss kind: mse on
 * standardised values, or poisson on raw counts (out is the log rate).
 *
 * Specialised (docs/specialisation.md), when loss_grad_spec_f32 is not NULL.
 * A region's AUNN folds one (region, subject) into theta'_{r,s}: one tensor
 * per folded[k] of the region's row, shaped like params[folded[k]]:
 *   spec:           params[0..P), module[1], subject[1] -> theta'[k] for k < nfolded
 *   spec_vjp:       params[0..P), module[1], subject[1], dtheta'[k] for k < nfolded
 *                     -> pairing[1], grad[k] for k < nvjp (d params[vjp_params[k]])
 * A source's window evaluates each region v of spec_regions (its own
 * included) at theta'_{v,subject}:
 *   loss_grad_spec: params[0..P), t[B], y[B,W*C], theta'_{v,k} for v in
 *                   spec_regions, k < nfolded(v)
 *                     -> loss[1], grad[k] for k < nspec_grad (d params[spec_grad_params[k]]),
 *                        dtheta'_{v,k} in the same order
 * (the folded slots of params are not read). d loss / d params is
 * loss_grad_spec's gradients plus, per region v, spec_vjp of v's dtheta'
 * (vjp being linear, the dtheta' of all sources of a step that share
 * (v, subject) may be summed first). The source's own spec_* / folded /
 * vjp_params repeat those of its region's row.
 *
 * A window that reads the state before it (a delayed edge reaching back past
 * its first step) passes no gradient through that state; for gradcheck's
 * finite differences to see the same function, such a source also has
 *   loss_held_f64: params[0..P), held[0..P), t[B], module[B], subject[B], y[B,W*C] -> loss[1]
 * its loss with the state before the window computed from held (call it
 * with the unperturbed parameters there) and the rest from params.
 *
 * The prior (NULL when the model has no regulariser): gate priors of the
 * edges and l2 loss terms, added once per step:
 *   prior: params[0..P) -> loss[1], grad[k] for k < nprior_grad
 *                          (d params[prior_grad_params[k]])
 * Observations (v6; docs/observations.md): a global measurement of one
 * subject sees N regions of one AUNN together, over a window of T steps of the
 * recording's sample period, through its operator. With C = channels:
 *   forward:   params[0..P), t[1], module[N], subject[N] -> out[T,C]
 *   loss_grad: params[0..P), t[1], module[N], subject[N], y -> loss[1],
 *                grad[k] for k < ngrad (d params[grad_params[k]])
 *   loss_held_f64: params[0..P), held[0..P), t[1], module[N], subject[N], y -> loss[1]
 *                (NULL when nothing before the window is read)
 * t is the time of the window's first step; module[i] = regions[i] and
 * subject[i] = subject. Steps before the window that delays and the
 * haemodynamics read are evaluated without input and pass no gradient (as a
 * source's window does). out is the predicted recording: eeg the C channels
 * (gain * L' activity, L' the average-referenced lead field), bold and fc the
 * N regions' BOLD signal (bold: gain * BOLD + offset; fc: BOLD). y and the loss:
 *   eeg:  y[T,C], the recording's channels in lead field order, each row minus
 *         its mean over channels, all divided by one scale (the std of those
 *         values over the whole recording); loss mean((out - y)^2)
 *   bold: y[T,N], each column standardised over the whole recording;
 *         loss mean((out - y)^2)
 *   fc:   y[N,N], the Pearson correlations of the whole recording's columns;
 *         loss the mean over i < j of (corr(out)[i][j] - y[i][j])^2, corr over
 *         the window's T rows
 * Functions are not reentrant (each owns a static workspace).
 */
#ifndef LOBE_MODEL_H
#define LOBE_MODEL_H

#include <stdint.h>

#define LOBE_ABI_VERSION 6

typedef void (*lobe_fn)(void *const *args);

enum {
  LOBE_INIT_ZEROS = 0,
  LOBE_INIT_NORMAL = 1,   /* normal(0, scale) */
  LOBE_INIT_UNIFORM = 2,  /* uniform(-scale, scale) */
  LOBE_INIT_CONSTANT = 3, /* every element = scale */
};

enum {
  LOBE_SRC_CSV = 0, LOBE_SRC_NPY = 1, LOBE_SRC_EDF = 2, LOBE_SRC_MAT = 3,
  LOBE_SRC_NWB_UNITS = 4, LOBE_SRC_NWB_SERIES = 5, LOBE_SRC_NIFTI = 6,
};
enum { LOBE_LOSS_MSE = 0, LOBE_LOSS_POISSON = 1 };
enum { LOBE_OBS_EEG = 0, LOBE_OBS_BOLD = 1, LOBE_OBS_FC = 2 };

typedef struct lobe_param {
  const char *name;
  int32_t rows, cols;       /* a vector has rows == 1 */
  int32_t init;
  double scale;
} lobe_param;

typedef struct lobe_region {
  const char *name;
  const char *aunn;
  /* its AUNN's specialisation (above); all NULL / 0 with --no-specialize */
  lobe_fn spec_f32, spec_vjp_f32;
  lobe_fn spec_f64, spec_vjp_f64;   /* for gradcheck */
  int32_t nfolded;
  const int32_t *folded;
  int32_t nvjp;
  const int32_t *vjp_params;
} lobe_region;

/* An edge of the region graph: to receives gate * z_from(t - delay). */
typedef struct lobe_edge {
  int32_t from, to;         /* region indices */
  double delay;             /* seconds; 0: within the time step */
  int32_t gate;             /* the gates parameter (one element per edge):
                               edge k's gate is its element k */
  double l1, distance;      /* prior weights; distance per metre */
  double length;            /* metres; 0 if unknown */
} lobe_edge;

typedef struct lobe_source {
  const char *name;         /* "REGION.SUBJECT", the key of --data */
  int32_t region, subject;
  int32_t kind;             /* LOBE_SRC_* */
  const char *path;         /* absolute, as bound at compile time */
  double rate, t0;          /* Hz, seconds */
  int32_t channels;
  const char *const *channel_names;
  int32_t loss_kind;        /* LOBE_LOSS_*: poisson sources are not standardised */
  double loss_weight;
  lobe_fn forward_f32;
  lobe_fn loss_grad_f32;
  lobe_fn loss_grad_f64;    /* for gradcheck */
  int32_t ngrad;
  const int32_t *grad_params;
  /* specialisation (all NULL / 0 when built with --no-specialize) */
  lobe_fn spec_f32, loss_grad_spec_f32, spec_vjp_f32;
  lobe_fn spec_f64, loss_grad_spec_f64, spec_vjp_f64;   /* for gradcheck */
  int32_t nfolded;
  const int32_t *folded;
  int32_t nspec_grad;
  const int32_t *spec_grad_params;
  int32_t nvjp;
  const int32_t *vjp_params;
  lobe_fn loss_held_f64;    /* NULL when the window reads no state before it */
  /* `brain export` (appended within v3; all NULL / 0 when the source has no
   * export kernel): export_c is the C99 text of
   *   static void lobe_export_kernel(const void *const *in, void *const *out)
   * with in = params'[0..P) (only export_params are read; the others may be
   * NULL), t[EB], u[EB, export_inputs] when export_inputs > 0; out = out[EB, C]:
   * one step of the source's region through its head, params' being params
   * with theta'[k] from export_spec_f32 (spec's signature) in place of
   * params[export_folded[k]]. */
  const char *export_c;
  lobe_fn export_spec_f32;
  int32_t export_nfolded;
  const int32_t *export_folded;
  int32_t export_nparams;
  const int32_t *export_params;
  int32_t export_batch;     /* EB */
  int32_t export_inputs;
  /* v4: the regions whose theta' loss_grad_spec takes, in order */
  int32_t nspec_regions;
  const int32_t *spec_regions;
  /* v5: the format's options (docs/data.md); NULL / 0 where it takes none */
  int32_t nselect;          /* edf: the channel labels to read, in order */
  const char *const *select;
  const char *var;          /* mat: the variable */
  int32_t transposed;       /* mat: the file holds channels x samples */
  double bin;               /* nwb_units: seconds per count */
  const char *series;       /* nwb_series: the TimeSeries group */
  const char *atlas;        /* nifti: the label image, absolute */
} lobe_source;

/* v6: a global measurement (above). */
typedef struct lobe_observation {
  const char *name;         /* "MEASURE.SUBJECT", the key of --data */
  int32_t kind;             /* LOBE_OBS_* */
  int32_t subject;
  int32_t nregions;         /* N */
  const int32_t *regions;   /* module[] */
  int32_t window;           /* T: steps of 1 / data.rate */
  int32_t batch;            /* windows per training step */
  int32_t channels;         /* C: eeg the lead field's columns; bold, fc N */
  double loss_weight;       /* summed over the loss terms naming it; 0: eval only */
  lobe_source data;         /* the recording, read as a source (region -1, no
                               functions): eeg its C channels in lead field order
                               (edf: select holds the lead field's labels), bold
                               and fc one column per region in regions order */
  lobe_fn forward_f32, loss_grad_f32;
  lobe_fn loss_grad_f64, loss_held_f64;   /* for gradcheck */
  int32_t ngrad;
  const int32_t *grad_params;
} lobe_observation;

typedef struct lobe_model {
  int32_t abi_version;      /* LOBE_ABI_VERSION */
  const char *name;         /* spec file's base name */
  const char *spec_path;
  int32_t nparams;
  const lobe_param *params;
  int32_t nregions;
  const lobe_region *regions;
  int32_t nsubjects;
  const char *const *subjects;
  int32_t nsources;
  const lobe_source *sources;
  int32_t nedges;
  const lobe_edge *edges;
  int32_t window;           /* W: time steps per window, >= 1 */
  lobe_fn prior_f32, prior_f64;   /* NULL: no prior */
  int32_t nprior_grad;
  const int32_t *prior_grad_params;
  /* train block defaults; the CLI may override steps and seed */
  int32_t batch;
  int32_t steps;
  double lr, beta1, beta2, eps;
  uint64_t seed;
  int32_t checkpoint_every;
  /* v6 */
  int32_t nobservations;
  const lobe_observation *observations;
} lobe_model;

extern const lobe_model lobe_model_desc;

#endif
