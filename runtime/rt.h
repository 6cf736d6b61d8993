/*
 * rt.h — the runtime's internal header: the library every generated `brain`
 * executable links (main, CLI, parameter store, Adam, data binding, sampler,
 * training loop, checkpoints, progress, eval, predict, gradcheck, info).
 * One section per file.
 */
#ifndef LOBE_RT_H
#define LOBE_RT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "lobe_model.h"

/* ------------------------------------------------------------ data/data.c */
/* Fills t->names with "ch0", "ch1", ... for t->cols columns; -1 if out of memory. */
int data_default_names(DataTable *t);
/* Writes src[0..len) to dst as a short double-quoted, escaped string. */
void data_quote(char *dst, size_t dstlen, const char *src, size_t len);
/* Writes "PATH: message" (or "PATH:LINE: message" when line > 0) to err. */
void data_vfail(char *err, size_t errlen, const char *path, long line,
                const char *fmt, va_list ap);

/* ------------------------------------------------------------------ cli.c */
/* Exit codes of the executable. */
enum {
  RT_OK = 0,
  RT_FAIL = 1,          /* checkpoint, I/O, model or gradcheck failure */
  RT_EUSAGE = 2,        /* bad command line */
  RT_EDATA = 2,         /* bad data file */
  RT_NOCKPT = -1,       /* internal: no checkpoint in the directory */
};

typedef struct RtDataArg {   /* --data NAME=PATH */
  char *name;                /* owned */
  const char *path;          /* in argv */
} RtDataArg;

typedef struct RtHeldout {   /* eval --heldout R.S=PATH [--head SOURCE] */
  int region, subject;
  const char *path;          /* in argv */
  int head;                  /* source index; -1: the region's first that fits */
} RtHeldout;

typedef struct RtOptions {
  int64_t steps;             /* 0: the model's */
  uint64_t seed;
  int have_seed;
  int threads;
  int ndata;
  RtDataArg *data;
  int nheldout;
  RtHeldout *heldout;
  const char *fc_out;        /* eval --fc-out DIR */
  const char *ckpt_dir;
  int resume;
  int64_t log_every;         /* 0: about 20 lines per run */
  int64_t checkpoint_every;  /* -1: the model's; 0: only at the end */
  const char *region, *subject, *source, *out;
  const char *name;          /* export --name */
  int keep_source;           /* export --keep-source */
  double from, to;
  int have_from, have_to;
} RtOptions;

int rt_main(const lobe_model *m, int argc, char **argv);
/* Prints "PROG: message" on stderr. */
void rt_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---------------------------------------------------------------- model.c */
/* Checks the descriptor a compiled model hands us; RT_OK or RT_FAIL. */
int rt_model_check(const lobe_model *m);
/* RT_DATA: the keys of --data, sources then observations. */
typedef enum { RT_REGION, RT_SUBJECT, RT_SOURCE, RT_OBSERVATION, RT_DATA } RtNameKind;
/* The index of a region, subject, source or observation by name, or -1. */
int rt_find(const lobe_model *m, RtNameKind kind, const char *name);
/* Prints "unknown region 'X' (valid: a, b, c)". */
void rt_error_unknown(const lobe_model *m, RtNameKind kind, const char *name);
size_t rt_param_numel(const lobe_param *p);
int rt_max_channels(const lobe_model *m);
/* "REGION.SUBJECT" split where both halves are names (regions may hold dots). */
int rt_find_cell(const lobe_model *m, const char *cell, int *region, int *subject);

/* ------------------------------------------------------------------ rng.c */
/* Counter-based: every draw is a pure function of (seed, purpose, a, b, i),
 * so a batch at step k does not depend on what was drawn before. */
enum {
  RT_RNG_INIT = 1, RT_RNG_BATCH, RT_RNG_CHECK_BATCH, RT_RNG_CHECK_PICK,
  RT_RNG_OBS_BATCH, RT_RNG_CHECK_OBS,   /* observations' windows: (step, observation) */
};

uint64_t rt_rng_stream(uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b);
uint64_t rt_rng_u64(uint64_t stream, uint64_t i);
double rt_rng_uniform(uint64_t stream, uint64_t i);       /* [0, 1) */
double rt_rng_normal(uint64_t stream, uint64_t i);        /* N(0, 1) */
uint64_t rt_rng_below(uint64_t stream, uint64_t i, uint64_t n);

/* --------------------------------------------------------------- params.c */
/* Per parameter: value, gradient, Adam moments and a scratch buffer that a
 * source's loss_grad writes into; all 64-byte aligned float arrays. */
typedef struct RtParams {
  int n;
  size_t *numel;
  float **value, **grad, **m, **v, **scratch;
} RtParams;

int rt_params_alloc(RtParams *p, const lobe_model *m);
void rt_params_free(RtParams *p);
void rt_params_init(RtParams *p, const lobe_model *m, uint64_t seed);
void rt_params_zero_grad(RtParams *p);
/* y[0..n) += a * x[0..n). */
void rt_axpy(float *restrict y, const float *restrict x, float a, size_t n);
/* grad[ids[i]] += w * scratch[ids[i]]: the parameters a source or the prior
 * has gradients for. */
void rt_params_accumulate(RtParams *p, const int32_t *ids, int n, float w);
/* The prior's arguments (lobe_model.h): values, loss, scratch gradients. */
void **rt_prior_args(const lobe_model *m, RtParams *p, float *loss);
/* One bias-corrected Adam update; t counts from 1. */
void rt_adam_step(RtParams *p, const lobe_model *m, int64_t t);

/* ---------------------------------------------------------------- state.c */
/* Everything a checkpoint holds. Standardisation: y_std = (y - mean) / std. */
typedef struct RtState {
  const lobe_model *model;
  RtParams params;
  int64_t step;
  uint64_t seed;
  double **mean, **std;      /* per source, per channel */
  double **obs_stat;         /* per observation: rt_obs_stat_count values */
} RtState;

int rt_state_alloc(RtState *st, const lobe_model *m);
void rt_state_free(RtState *st);
/* Fresh parameters from seed and statistics from the data (rt_tables_load's);
 * RT_FAIL only when out of memory. */
int rt_state_fresh(RtState *st, uint64_t seed, const DataTable *tables);
/* Turns the tables into training targets with st's statistics. */
void rt_state_standardise(const RtState *st, DataTable *tables);

/* -------------------------------------------------------------- sources.c */
/* Sources, then observations: tables[nsources + k] is observation k's. */
int rt_ntables(const lobe_model *m);
/* Loads every source's and observation's table (compiled path or --data)
 * and checks it: the channel count, at least one window of rows, counts for
 * a poisson source; RT_OK, or RT_EDATA after printing why. tables[rt_ntables]
 * must be zeroed; free with rt_tables_free either way. */
int rt_tables_load(const lobe_model *m, const RtOptions *o, DataTable *tables);
void rt_tables_free(const lobe_model *m, DataTable *tables);
/* The file --data binds to name, else the compiled path. */
const char *rt_data_path(const RtOptions *o, const char *name, const char *compiled);
/* Reads s's file (a csv or npy one by its extension) and checks its channel
 * count and rate; what names s in messages ("source", "observation"). */
int rt_table_read(const lobe_source *s, const char *what, const char *path, DataTable *t);
/* One file read as source s's data (its format follows the extension) and
 * checked as above; *t must be zeroed and is freed by the caller. */
int rt_source_load(const lobe_model *m, const lobe_source *s, const char *path, DataTable *t);
/* Per channel: the mean and the sum of squared deviations from it. */
void rt_channel_moments(const DataTable *t, double *mean, double *sumsq);
/* Standardisation statistics of source s: per channel mean and std (1 for a
 * constant channel); 0 and 1 for a poisson source, whose counts stay raw. */
void rt_stats_compute(const lobe_source *s, const DataTable *t, double *mean, double *std);
void rt_standardise(DataTable *t, const double *mean, const double *std);
double rt_row_time(const lobe_source *s, int64_t row);
/* Source s's output in data units: the rate exp(out) of a poisson source,
 * else out on the scale given by the stored statistics. */
double rt_data_units(const lobe_source *s, float out, double mean, double std);

/* Evaluation predicts every row of a table (rows >= W) once, as the last
 * step of the window that ends there, so that delayed inputs have the whole
 * window of context; only rows 0..W-2, before any full window, come from
 * earlier steps of the first window. Tiles are windows starting at rows 0,
 * 1, ..., rows - W; W times the work of disjoint windows, for predictions
 * that do not depend on where a window happens to start. */
int64_t rt_tile_count(int64_t rows, int window);
/* Tile i's first row and the first of its steps that is used. */
void rt_tile(int window, int64_t i, int64_t *start, int *first_step);

typedef struct RtBatch {
  int size, window;          /* the model's batch and window */
  float *t, *y, *out;        /* [B], [B*W*C], [B*W*C] for the widest source */
  int32_t *module, *subject;
  int64_t *rows;             /* [B]: the window starts rt_batch_draw picked */
  float loss;
} RtBatch;

int rt_batch_alloc(RtBatch *b, const lobe_model *m);
void rt_batch_free(RtBatch *b);
/* B windows of source s (starts uniform over [0, rows - W], with
 * replacement) drawn from stream: times, ids and targets. */
void rt_batch_draw(RtBatch *b, const lobe_source *s, const DataTable *t, uint64_t stream);
/* Times and ids of n <= B windows of source s's region in `subject`, first
 * rows starts[0..n); the rest of the batch repeats the first. */
void rt_batch_windows(RtBatch *b, const lobe_source *s, int subject, const int64_t *starts,
                      int n);
/* args for forward (out) or loss_grad (y, loss, scratch grads); caller frees. */
void **rt_forward_args(const lobe_model *m, RtParams *p, RtBatch *b);
void **rt_loss_grad_args(const lobe_model *m, const lobe_source *s, RtParams *p, RtBatch *b);

/* -------------------------------------------------------------- observe.c */
/* The statistics of an observation's targets (lobe_model.h): eeg [1] the
 * scale; bold [2C] the columns' means then stds; fc [C*C] the Pearson matrix. */
size_t rt_obs_stat_count(const lobe_observation *ob);
/* The values of one window's y: eeg, bold [T*C]; fc [C*C]. */
size_t rt_obs_y_count(const lobe_observation *ob);
/* "eeg", "bold" or "fc" for a LOBE_OBS_* kind. */
const char *rt_obs_kind_name(int kind);
/* Observation ob's recording from path, checked: RT_OK or RT_EDATA. */
int rt_obs_load(const lobe_observation *ob, const char *path, DataTable *t);
/* From the whole recording; RT_FAIL only when out of memory. */
int rt_obs_stats_compute(const lobe_observation *ob, const DataTable *t, double *stat);
/* Turns the recording into the targets y (eeg, bold); fc's y is its stat. */
void rt_obs_targets(const lobe_observation *ob, DataTable *t, const double *stat);
/* The Pearson correlations of the columns of x[rows, cols] into r[cols*cols];
 * a constant column correlates 0 with every column, itself included. */
int rt_pearson(const float *x, int64_t rows, int cols, double *r);
/* The Pearson correlation of a[i] and b[i], n of them; NAN when either is constant. */
double rt_correlation(const double *a, const double *b, int64_t n, int64_t stride);
/* The mean over the columns of a and b [rows, cols] of their Pearson
 * correlation, over the columns where both vary; NAN when none does. */
double rt_columns_r(const float *a, const float *b, int64_t rows, int cols);
/* The Pearson correlation over i < j of two n x n matrices; NAN if undefined. */
double rt_upper_r(const double *a, const double *b, int n);

/* One window of an observation, with the arguments of its entry points. */
typedef struct RtObsWindow {
  const lobe_observation *obs;
  float t[1], loss;
  int32_t *module, *subject;  /* [N]: regions, subject */
  float *y;                   /* [T*C]; fc [N*N]: the stat, fixed */
  float *out;                 /* [T*C]: forward's */
  void **loss_args;           /* loss_grad_f32: gradients into the scratch buffers */
  void **forward_args;
} RtObsWindow;

int rt_obs_window_alloc(RtObsWindow *w, const lobe_model *m, const lobe_observation *ob,
                        RtParams *p, const double *stat);
void rt_obs_window_free(RtObsWindow *w);
/* The window of rows [start, start + T) of the targets t: time and y. */
void rt_obs_window_at(RtObsWindow *w, const DataTable *t, int64_t start);
/* Draw i of stream: a window start uniform over [0, rows - T]. */
int64_t rt_obs_draw(const lobe_observation *ob, const DataTable *t, uint64_t stream,
                    uint64_t i);

/* ----------------------------------------------------------------- spec.c */
/* One (region, subject) that a step specialises (lobe_model.h). */
typedef struct RtGroup {
  const lobe_region *reg;    /* its spec entry points and lists */
  int32_t module[1], subject[1];
  float **theta;             /* [nfolded], shaped like params[folded[k]] */
  float **dtheta;            /* [nfolded]: the step's d theta', summed over sources */
  float **vjp_grad;          /* [nvjp], shaped like params[vjp_params[k]] */
  float pairing;             /* spec_vjp's scalar output, unused */
  float weight;              /* on spec_vjp's gradients: the one reader's loss
                                weight, or 1 when dtheta holds weighted sums */
  int users;                 /* sources whose window reads it */
  void **spec_args, **vjp_args;
} RtGroup;

/* An active source trained through loss_grad_spec; .src NULL: it is not. */
typedef struct RtSpecSource {
  const lobe_source *src;
  int *groups;               /* per spec_regions[i] */
  float **dtheta;            /* per theta' slot: its own d theta' (NULL: direct) */
  void **loss_args;
} RtSpecSource;

typedef struct RtSpec {
  const lobe_model *m;
  RtGroup *group;
  int ngroups;
  RtSpecSource *source;      /* per active source */
  int nsources;
} RtSpec;

/* The groups of the active sources with loss_grad_spec_f32; free with
 * rt_spec_free either way. */
int rt_spec_alloc(RtSpec *sp, const lobe_model *m, const int *active, int nactive,
                  RtParams *p, RtBatch *b);
void rt_spec_free(RtSpec *sp);
/* A step: spec per group; per specialised source, after drawing its batch,
 * rt_spec_source (b->loss, grad += w * its direct gradients); then spec_vjp
 * per group (grad += the merged rest). */
void rt_spec_begin(RtSpec *sp);
void rt_spec_source(RtSpec *sp, int a, RtParams *p, float w);
void rt_spec_end(RtSpec *sp, RtParams *p);

/* ----------------------------------------------------------- checkpoint.c */
/* DIR/checkpoint.bin; see docs/cli.md for the format and guarantees. */
int rt_ckpt_save(const RtState *st, const char *dir);
/* Creates DIR if needed and checks that it is writable, before training. */
int rt_ckpt_prepare(const char *dir);
/* RT_OK, RT_NOCKPT (nothing there) or RT_FAIL after printing why. */
int rt_ckpt_load(RtState *st, const char *dir);

/* ------------------------------------------------------------- progress.c */
typedef struct RtProgress {
  const lobe_model *m;
  const int *active;         /* trained sources, nactive of them */
  const int *obs_active;     /* trained observations, nobs_active of them */
  int nactive, nobs_active, nterms;   /* nterms: both, plus 1 with a prior */
  int tty;
  int64_t first, total, log_every, samples_per_step;
  double t_start, t_drawn;
  double sum, *src_sum;      /* over the current interval */
  int64_t nsum;
  double last_loss, *last_src;   /* means of the last completed interval */
} RtProgress;

/* The terms shown are the active sources, the active observations, then the
 * prior if the model has one. */
int rt_progress_begin(RtProgress *p, const lobe_model *m, const int *active, int nactive,
                      const int *obs_active, int nobs_active, int64_t first, int64_t total,
                      int64_t log_every);
/* Called after each step with its total loss and the terms' losses. */
void rt_progress_step(RtProgress *p, int64_t step, double loss, const double *src_loss);
void rt_progress_end(RtProgress *p);

/* -------------------------------------------------------------- predict.c */
/* The cell of --region and --subject (both given) and the source read for it:
 * --source (which must be on the region), else the cell's, else the region's
 * first; RT_OK, or RT_EUSAGE after printing why. */
int rt_pick_cell(const lobe_model *m, const RtOptions *o, int *region, int *subject,
                 int *source);

/* ------------------------------------------- train.c eval.c predict.c ... */
int rt_cmd_train(const lobe_model *m, const RtOptions *o);
int rt_cmd_eval(const lobe_model *m, const RtOptions *o);
int rt_cmd_predict(const lobe_model *m, const RtOptions *o);
int rt_cmd_gradcheck(const lobe_model *m, const RtOptions *o);
int rt_cmd_info(const lobe_model *m, const RtOptions *o);
int rt_cmd_export(const lobe_model *m, const RtOptions *o);

#endif
