/*
 * sources.c — data bound to the model's sources: loading (compiled path or
 * --data) and checking, per-channel standardisation, windows of consecutive
 * rows in the lobe_fn layout, and the tiling that evaluation predicts with.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rt.h"

const char *rt_data_path(const RtOptions *o, const char *name, const char *compiled) {
  for (int i = 0; i < o->ndata; i++)
    if (strcmp(o->data[i].name, name) == 0)
      return o->data[i].path;
  return compiled;
}

/* A rebound csv or npy file may change format: trust its extension over the
 * compiled kind. The other formats keep theirs: their options name what to read. */
static int source_kind(const lobe_source *s, const char *path) {
  if (s->kind != LOBE_SRC_CSV && s->kind != LOBE_SRC_NPY)
    return s->kind;
  const char *dot = strrchr(path, '.');
  if (dot && strcasecmp(dot, ".npy") == 0)
    return LOBE_SRC_NPY;
  if (dot && strcasecmp(dot, ".csv") == 0)
    return LOBE_SRC_CSV;
  return s->kind;
}

/* Poisson targets are counts: a negative one has no likelihood. Finite is
 * already guaranteed by the readers. */
static int check_counts(const lobe_source *s, const char *path, const DataTable *t) {
  size_t cols = (size_t)t->cols;
  for (size_t i = 0; i < (size_t)t->rows * cols; i++) {
    if (t->values[i] >= 0)
      continue;
    long long row = (long long)(i / cols);
    int col = (int)(i % cols);
    if (source_kind(s, path) == LOBE_SRC_CSV)   /* line 1 is the header */
      rt_error("%s:%lld: field %d (\"%s\"): expected a non-negative count for poisson "
               "source '%s', found %g", path, row + 2, col + 1, t->names[col], s->name,
               t->values[i]);
    else
      rt_error("%s: row %lld, column %d: expected a non-negative count for poisson source "
               "'%s', found %g", path, row, col, s->name, t->values[i]);
    return RT_EDATA;
  }
  return RT_OK;
}

static int check_table(const lobe_source *s, const char *what, const char *path,
                       const DataTable *t, const DataClock *clk) {
  if (t->cols != s->channels) {
    rt_error("%s: expected %d channel%s for %s '%s', found %d", path, s->channels,
             s->channels == 1 ? "" : "s", what, s->name, t->cols);
    return RT_EDATA;
  }
  if (clk->rate > 0 && fabs(clk->rate - s->rate) > 1e-6 * s->rate) {
    rt_error("%s: expected a rate of %g Hz for %s '%s', found %g Hz", path, s->rate, what,
             s->name, clk->rate);
    return RT_EDATA;
  }
  return RT_OK;
}

static DataOptions source_options(const lobe_source *s) {
  return (DataOptions){.select = s->select, .nselect = s->nselect, .var = s->var,
                       .transposed = s->transposed, .bin = s->bin, .series = s->series,
                       .atlas = s->atlas};
}

int rt_table_read(const lobe_source *s, const char *what, const char *path, DataTable *t) {
  char err[1024];
  if (!path || !*path) {
    rt_error("%s '%s' has no data file; pass --data %s=PATH", what, s->name, s->name);
    return RT_EDATA;
  }
  DataOptions opt = source_options(s);
  DataClock clk;
  if (data_load_with(source_kind(s, path), path, &opt, t, &clk, err, sizeof err) != 0) {
    rt_error("%s", err);
    return RT_EDATA;
  }
  return check_table(s, what, path, t, &clk);
}

int rt_source_load(const lobe_model *m, const lobe_source *s, const char *path, DataTable *t) {
  int rc = rt_table_read(s, "source", path, t);
  if (rc == RT_OK && t->rows < m->window) {
    rt_error("%s: expected at least %d rows for source '%s' (one window, train { window: "
             "%d }), found %d", path, m->window, s->name, m->window, t->rows);
    return RT_EDATA;
  }
  if (rc == RT_OK && s->loss_kind == LOBE_LOSS_POISSON)
    return check_counts(s, path, t);
  return rc;
}

int rt_ntables(const lobe_model *m) {
  return m->nsources + m->nobservations;
}

int rt_tables_load(const lobe_model *m, const RtOptions *o, DataTable *tables) {
  for (int s = 0; s < m->nsources; s++) {
    const lobe_source *src = &m->sources[s];
    if (rt_source_load(m, src, rt_data_path(o, src->name, src->path), &tables[s]) != RT_OK)
      return RT_EDATA;
  }
  for (int k = 0; k < m->nobservations; k++) {
    const lobe_observation *ob = &m->observations[k];
    const char *path = rt_data_path(o, ob->name, ob->data.path);
    if (rt_obs_load(ob, path, &tables[m->nsources + k]) != RT_OK)
      return RT_EDATA;
  }
  return RT_OK;
}

void rt_tables_free(const lobe_model *m, DataTable *tables) {
  for (int s = 0; tables && s < rt_ntables(m); s++)
    data_free(&tables[s]);
  free(tables);
}

/* ---- standardisation --------------------------------------------------- */

void rt_channel_moments(const DataTable *t, double *mean, double *sumsq) {
  size_t rows = (size_t)t->rows, cols = (size_t)t->cols;
  for (size_t c = 0; c < cols; c++)
    mean[c] = sumsq[c] = 0;
  for (size_t r = 0; r < rows; r++)
    for (size_t c = 0; c < cols; c++)
      mean[c] += t->values[r * cols + c];
  for (size_t c = 0; c < cols; c++)
    mean[c] /= (double)rows;
  for (size_t r = 0; r < rows; r++)
    for (size_t c = 0; c < cols; c++) {
      double d = t->values[r * cols + c] - mean[c];
      sumsq[c] += d * d;
    }
}

/* A constant channel sums exactly, so its squared deviations are exactly 0
 * and it gets std 1 rather than a division by zero. */
void rt_stats_compute(const lobe_source *s, const DataTable *t, double *mean, double *std) {
  size_t rows = (size_t)t->rows, cols = (size_t)t->cols;
  if (s->loss_kind == LOBE_LOSS_POISSON) {
    for (size_t c = 0; c < cols; c++) {
      mean[c] = 0;
      std[c] = 1;
    }
    return;
  }
  rt_channel_moments(t, mean, std);
  for (size_t c = 0; c < cols; c++)
    std[c] = std[c] > 0 ? sqrt(std[c] / (double)rows) : 1;
}

void rt_standardise(DataTable *t, const double *mean, const double *std) {
  size_t rows = (size_t)t->rows, cols = (size_t)t->cols;
  for (size_t r = 0; r < rows; r++)
    for (size_t c = 0; c < cols; c++) {
      float *x = &t->values[r * cols + c];
      *x = (float)((*x - mean[c]) / std[c]);
    }
}

double rt_row_time(const lobe_source *s, int64_t row) {
  return s->t0 + (double)row / s->rate;
}

double rt_data_units(const lobe_source *s, float out, double mean, double std) {
  if (s->loss_kind == LOBE_LOSS_POISSON)
    return exp((double)out);
  return out * std + mean;
}

/* ---- evaluation tiles -------------------------------------------------- */

int64_t rt_tile_count(int64_t rows, int window) {
  return rows - window + 1;
}

void rt_tile(int window, int64_t i, int64_t *start, int *first_step) {
  *start = i;
  *first_step = i == 0 ? 0 : window - 1;
}

/* ---- batches ----------------------------------------------------------- */

int rt_batch_alloc(RtBatch *b, const lobe_model *m) {
  memset(b, 0, sizeof *b);
  size_t n = (size_t)m->batch, ny = n * (size_t)m->window * (size_t)rt_max_channels(m);
  b->size = m->batch;
  b->window = m->window;
  b->t = calloc(n, sizeof *b->t);
  b->module = calloc(n, sizeof *b->module);
  b->subject = calloc(n, sizeof *b->subject);
  b->y = calloc(ny, sizeof *b->y);
  b->out = calloc(ny, sizeof *b->out);
  b->rows = calloc(n, sizeof *b->rows);
  return b->t && b->module && b->subject && b->y && b->out && b->rows ? RT_OK : RT_FAIL;
}

void rt_batch_free(RtBatch *b) {
  free(b->t);
  free(b->module);
  free(b->subject);
  free(b->y);
  free(b->out);
  free(b->rows);
  memset(b, 0, sizeof *b);
}

/* The windows start at random rows, so a large table misses the cache on
 * each: all of them are prefetched before any is copied, so that the misses
 * overlap. A window's W rows are contiguous in the table and in y. */
void rt_batch_draw(RtBatch *b, const lobe_source *s, const DataTable *t, uint64_t stream) {
  size_t span = (size_t)b->window * (size_t)s->channels;
  uint64_t starts = (uint64_t)t->rows - (uint64_t)b->window + 1;
  for (int i = 0; i < b->size; i++) {
    b->rows[i] = (int64_t)rt_rng_below(stream, (uint64_t)i, starts);
    const char *at = (const char *)(t->values + (size_t)b->rows[i] * (size_t)s->channels);
    for (size_t off = 0; off < span * sizeof *t->values; off += 64)
      __builtin_prefetch(at + off);
  }
  rt_batch_windows(b, s, s->subject, b->rows, b->size);
  for (int i = 0; i < b->size; i++)
    memcpy(b->y + (size_t)i * span, t->values + (size_t)b->rows[i] * (size_t)s->channels,
           span * sizeof *b->y);
}

void rt_batch_windows(RtBatch *b, const lobe_source *s, int subject, const int64_t *starts,
                      int n) {
  for (int i = 0; i < b->size; i++) {
    b->t[i] = (float)rt_row_time(s, starts[i < n ? i : 0]);
    b->module[i] = s->region;
    b->subject[i] = subject;
  }
}

/* ---- argument vectors (see lobe_model.h) ------------------------------- */

void **rt_forward_args(const lobe_model *m, RtParams *p, RtBatch *b) {
  void **a = malloc(((size_t)m->nparams + 4) * sizeof *a);
  if (!a)
    return NULL;
  for (int k = 0; k < m->nparams; k++)
    a[k] = p->value[k];
  a[m->nparams] = b->t;
  a[m->nparams + 1] = b->module;
  a[m->nparams + 2] = b->subject;
  a[m->nparams + 3] = b->out;
  return a;
}

void **rt_loss_grad_args(const lobe_model *m, const lobe_source *s, RtParams *p, RtBatch *b) {
  size_t np = (size_t)m->nparams;
  void **a = malloc((np + 5 + (size_t)s->ngrad) * sizeof *a);
  if (!a)
    return NULL;
  for (size_t k = 0; k < np; k++)
    a[k] = p->value[k];
  a[np] = b->t;
  a[np + 1] = b->module;
  a[np + 2] = b->subject;
  a[np + 3] = b->y;
  a[np + 4] = &b->loss;
  for (int k = 0; k < s->ngrad; k++)
    a[np + 5 + k] = p->scratch[s->grad_params[k]];
  return a;
}
