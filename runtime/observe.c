/*
 * observe.c — the data of observations (lobe_model.h, v6): loading, the
 * targets computed once from the whole recording (eeg: average reference and
 * one global scale; bold: per-column z-scores; fc: the Pearson matrix), the
 * windows that train, eval and gradcheck pass to an observation's entry
 * points, and the correlations eval reports.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

size_t rt_obs_stat_count(const lobe_observation *ob) {
  size_t c = (size_t)ob->channels;
  if (ob->kind == LOBE_OBS_EEG)
    return 1;
  return ob->kind == LOBE_OBS_BOLD ? 2 * c : c * c;
}

size_t rt_obs_y_count(const lobe_observation *ob) {
  size_t c = (size_t)ob->channels;
  return ob->kind == LOBE_OBS_FC ? c * c : (size_t)ob->window * c;
}

const char *rt_obs_kind_name(int kind) {
  static const char *const names[] = {"eeg", "bold", "fc"};
  return names[kind];
}

/* ---- loading ----------------------------------------------------------- */

/* The recording is read as a source named like the observation, so that
 * messages name what --data rebinds. */
int rt_obs_load(const lobe_observation *ob, const char *path, DataTable *t) {
  lobe_source data = ob->data;
  data.name = ob->name;
  int rc = rt_table_read(&data, "observation", path, t);
  if (rc == RT_OK && t->rows < ob->window) {
    rt_error("%s: expected at least %d rows for observation '%s' (one window, window: %d), "
             "found %d", path, ob->window, ob->name, ob->window, t->rows);
    return RT_EDATA;
  }
  return rc;
}

/* ---- targets ----------------------------------------------------------- */

static double row_mean(const float *row, int cols) {
  double sum = 0;
  for (int c = 0; c < cols; c++)
    sum += row[c];
  return sum / cols;
}

/* Average-referenced rows have mean 0, so their std is the root mean square;
 * a recording that is flat after referencing keeps scale 1. */
static double eeg_scale(const DataTable *t) {
  double sumsq = 0;
  for (int64_t r = 0; r < t->rows; r++) {
    const float *row = t->values + r * t->cols;
    double mean = row_mean(row, t->cols);
    for (int c = 0; c < t->cols; c++)
      sumsq += (row[c] - mean) * (row[c] - mean);
  }
  return sumsq > 0 ? sqrt(sumsq / ((double)t->rows * t->cols)) : 1;
}

int rt_obs_stats_compute(const lobe_observation *ob, const DataTable *t, double *stat) {
  int cols = t->cols;
  switch (ob->kind) {
  case LOBE_OBS_EEG:
    stat[0] = eeg_scale(t);
    return RT_OK;
  case LOBE_OBS_BOLD:
    rt_channel_moments(t, stat, stat + cols);
    for (int c = 0; c < cols; c++)
      stat[cols + c] = stat[cols + c] > 0 ? sqrt(stat[cols + c] / t->rows) : 1;
    return RT_OK;
  default:
    return rt_pearson(t->values, t->rows, cols, stat);
  }
}

void rt_obs_targets(const lobe_observation *ob, DataTable *t, const double *stat) {
  if (ob->kind == LOBE_OBS_BOLD)
    rt_standardise(t, stat, stat + t->cols);
  if (ob->kind != LOBE_OBS_EEG)
    return;
  for (int64_t r = 0; r < t->rows; r++) {
    float *row = t->values + r * t->cols;
    double mean = row_mean(row, t->cols);
    for (int c = 0; c < t->cols; c++)
      row[c] = (float)((row[c] - mean) / stat[0]);
  }
}

/* ---- correlations ------------------------------------------------------ */

/* r[i][j] for i < j: the centred cross products. */
static void cross_products(const float *x, int64_t rows, int cols, const double *mean,
                           double *d, double *r) {
  for (int64_t t = 0; t < rows; t++) {
    for (int c = 0; c < cols; c++)
      d[c] = x[t * cols + c] - mean[c];
    for (int i = 0; i < cols; i++)
      for (int j = i + 1; j < cols; j++)
        r[i * cols + j] += d[i] * d[j];
  }
}

int rt_pearson(const float *x, int64_t rows, int cols, double *r) {
  double *mean = calloc(2 * (size_t)cols, sizeof *mean);
  if (!mean)
    return RT_FAIL;
  double *d = mean + cols;
  memset(r, 0, (size_t)cols * (size_t)cols * sizeof *r);
  DataTable view = {.rows = (int)rows, .cols = cols, .values = (float *)x};
  rt_channel_moments(&view, mean, d);   /* d: the diagonal's sums of squares */
  for (int c = 0; c < cols; c++)
    r[c * cols + c] = d[c];
  cross_products(x, rows, cols, mean, d, r);
  for (int c = 0; c < cols; c++)
    d[c] = r[c * cols + c] > 0 ? 1 / sqrt(r[c * cols + c]) : 0;
  for (int i = 0; i < cols; i++)
    for (int j = i; j < cols; j++)
      r[i * cols + j] = r[j * cols + i] = r[i * cols + j] * d[i] * d[j];
  free(mean);
  return RT_OK;
}

double rt_correlation(const double *a, const double *b, int64_t n, int64_t stride) {
  double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
  for (int64_t i = 0; i < n; i++) {
    ma += a[i * stride];
    mb += b[i * stride];
  }
  ma /= (double)n;
  mb /= (double)n;
  for (int64_t i = 0; i < n; i++) {
    double da = a[i * stride] - ma, db = b[i * stride] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : NAN;
}

double rt_columns_r(const float *a, const float *b, int64_t rows, int cols) {
  double *ab = malloc(2 * (size_t)rows * sizeof *ab), sum = 0;
  int varying = 0;
  for (int c = 0; ab && c < cols; c++) {
    for (int64_t r = 0; r < rows; r++) {
      ab[r] = a[r * cols + c];
      ab[rows + r] = b[r * cols + c];
    }
    double r = rt_correlation(ab, ab + rows, rows, 1);
    if (!isnan(r)) {
      sum += r;
      varying++;
    }
  }
  free(ab);
  return varying ? sum / varying : NAN;
}

double rt_upper_r(const double *a, const double *b, int n) {
  int64_t pairs = (int64_t)n * (n - 1) / 2, k = 0;
  double *ab = malloc(2 * (size_t)(pairs ? pairs : 1) * sizeof *ab);
  if (!ab || pairs < 2) {
    free(ab);
    return NAN;
  }
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++, k++) {
      ab[k] = a[i * n + j];
      ab[pairs + k] = b[i * n + j];
    }
  double r = rt_correlation(ab, ab + pairs, pairs, 1);
  free(ab);
  return r;
}

/* ---- windows ----------------------------------------------------------- */

/* params, t, module, subject: the head of both entry points' arguments. */
static void **head_args(const lobe_model *m, RtObsWindow *w, RtParams *p, size_t more) {
  size_t np = (size_t)m->nparams;
  void **a = malloc((np + 3 + more) * sizeof *a);
  if (!a)
    return NULL;
  for (size_t k = 0; k < np; k++)
    a[k] = p->value[k];
  a[np] = w->t;
  a[np + 1] = w->module;
  a[np + 2] = w->subject;
  return a;
}

static int build_args(const lobe_model *m, RtObsWindow *w, RtParams *p) {
  const lobe_observation *ob = w->obs;
  size_t np = (size_t)m->nparams;
  w->forward_args = head_args(m, w, p, 1);
  w->loss_args = head_args(m, w, p, 2 + (size_t)ob->ngrad);
  if (!w->forward_args || !w->loss_args)
    return RT_FAIL;
  w->forward_args[np + 3] = w->out;
  w->loss_args[np + 3] = w->y;
  w->loss_args[np + 4] = &w->loss;
  for (int k = 0; k < ob->ngrad; k++)
    w->loss_args[np + 5 + k] = p->scratch[ob->grad_params[k]];
  return RT_OK;
}

int rt_obs_window_alloc(RtObsWindow *w, const lobe_model *m, const lobe_observation *ob,
                        RtParams *p, const double *stat) {
  memset(w, 0, sizeof *w);
  w->obs = ob;
  size_t n = (size_t)ob->nregions;
  w->module = calloc(n, sizeof *w->module);
  w->subject = calloc(n, sizeof *w->subject);
  w->y = calloc(rt_obs_y_count(ob), sizeof *w->y);
  w->out = calloc((size_t)ob->window * (size_t)ob->channels, sizeof *w->out);
  if (!w->module || !w->subject || !w->y || !w->out)
    return RT_FAIL;
  for (size_t i = 0; i < n; i++) {
    w->module[i] = ob->regions[i];
    w->subject[i] = ob->subject;
  }
  for (size_t i = 0; ob->kind == LOBE_OBS_FC && i < rt_obs_y_count(ob); i++)
    w->y[i] = (float)stat[i];
  return build_args(m, w, p);
}

void rt_obs_window_free(RtObsWindow *w) {
  free(w->module);
  free(w->subject);
  free(w->y);
  free(w->out);
  free(w->loss_args);
  free(w->forward_args);
  memset(w, 0, sizeof *w);
}

void rt_obs_window_at(RtObsWindow *w, const DataTable *t, int64_t start) {
  const lobe_observation *ob = w->obs;
  w->t[0] = (float)rt_row_time(&ob->data, start);
  if (ob->kind != LOBE_OBS_FC)
    memcpy(w->y, t->values + start * t->cols, rt_obs_y_count(ob) * sizeof *w->y);
}

int64_t rt_obs_draw(const lobe_observation *ob, const DataTable *t, uint64_t stream,
                    uint64_t i) {
  uint64_t starts = (uint64_t)t->rows - (uint64_t)ob->window + 1;
  return (int64_t)rt_rng_below(stream, i, starts);
}
