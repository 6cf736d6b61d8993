/*
 * eval.c — `brain eval`: the trained model over every row of every source,
 * tiled into windows (rt_tile) and run in chunks of the model's batch.
 * Reports per source the mean squared error in data units and on the
 * standardised (training) scale, and R^2 per channel (1 - SSE/SST) averaged
 * over the channels that vary. With --heldout, also cells without data: a
 * recording of region R in subject S predicted through the head of another
 * source on R, against the baseline of the other subjects' recordings of R.
 * Per observation: its loss over consecutive disjoint windows covering the
 * recording (a last partial one dropped), and correlations over the rows
 * they cover: of prediction and target per channel (eeg, bold), and of the
 * FC of the stitched predictions with the recorded FC (bold, fc).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rt.h"

typedef struct EvalResult {
  double mse, mse_std, r2;   /* r2 is NAN when no channel varies */
} EvalResult;

typedef struct Evaluator {
  const lobe_model *m;
  RtState st;
  DataTable *tables;         /* per source */
  DataTable *held;           /* per --heldout */
  int *heads;                /* per --heldout: the source it is read through */
  int *others;               /* the sources of one held-out cell's baseline */
  RtBatch batch;
  void **args;
  int64_t *starts;           /* [B]: the batch's tiles */
  double *sse, *base_sse, *sst, *mean, *pooled;   /* per channel of the widest source */
  EvalResult *res;           /* per source */
} Evaluator;

/* ---- the model over a recording ---------------------------------------- */

/* Adds the squared errors of tiles first..first+n, in data units. */
static void add_errors(Evaluator *ev, int s, const DataTable *t, int64_t first, int n,
                       double *sse_std) {
  const lobe_source *src = &ev->m->sources[s];
  size_t cols = (size_t)t->cols, W = (size_t)ev->batch.window;
  for (int i = 0; i < n; i++) {
    int64_t start;
    int step;
    rt_tile((int)W, first + i, &start, &step);
    for (size_t j = (size_t)step; j < W; j++)
      for (size_t c = 0; c < cols; c++) {
        float out = ev->batch.out[((size_t)i * W + j) * cols + c];
        double sd = ev->st.std[s][c];
        double pred = rt_data_units(src, out, ev->st.mean[s][c], sd);
        double err = pred - t->values[((size_t)start + j) * cols + c];
        ev->sse[c] += err * err;
        *sse_std += err * err / (sd * sd);
      }
  }
}

/* Source s's head, for `subject`, against every row of t: the squared errors
 * per channel into ev->sse; returns their sum on the standardised scale. */
static double tile_errors(Evaluator *ev, int s, int subject, const DataTable *t) {
  const lobe_source *src = &ev->m->sources[s];
  int B = ev->batch.size;
  int64_t tiles = rt_tile_count(t->rows, ev->batch.window);
  double sse_std = 0;
  memset(ev->sse, 0, (size_t)t->cols * sizeof *ev->sse);
  for (int64_t first = 0; first < tiles; first += B) {
    int n = tiles - first < B ? (int)(tiles - first) : B;
    for (int i = 0; i < n; i++) {
      int step;
      rt_tile(ev->batch.window, first + i, &ev->starts[i], &step);
    }
    rt_batch_windows(&ev->batch, src, subject, ev->starts, n);
    src->forward_f32(ev->args);
    add_errors(ev, s, t, first, n, &sse_std);
  }
  return sse_std;
}

/* The scores of squared errors sse (per channel) against t; R^2 averaged
 * over the channels of t that vary. */
static EvalResult summarise(Evaluator *ev, const DataTable *t, const double *sse,
                            double sse_std) {
  size_t cols = (size_t)t->cols, count = (size_t)t->rows * cols;
  double total = 0, r2 = 0;
  int varying = 0;
  rt_channel_moments(t, ev->mean, ev->sst);   /* SST per channel */
  for (size_t c = 0; c < cols; c++) {
    total += sse[c];
    if (ev->sst[c] > 0) {
      r2 += 1 - sse[c] / ev->sst[c];
      varying++;
    }
  }
  return (EvalResult){total / (double)count, sse_std / (double)count,
                      varying ? r2 / varying : NAN};
}

static EvalResult eval_source(Evaluator *ev, int s) {
  const DataTable *t = &ev->tables[s];
  double sse_std = tile_errors(ev, s, ev->m->sources[s].subject, t);
  return summarise(ev, t, ev->sse, sse_std);
}

/* "n/a" for an undefined value (NAN), else x with format fmt. */
static void format_value(char *buf, size_t len, const char *fmt, double x) {
  if (isnan(x))
    snprintf(buf, len, "n/a");
  else
    snprintf(buf, len, fmt, x);
}

static void print_table(const lobe_model *m, const DataTable *tables, const EvalResult *res) {
  int w = 6;
  for (int s = 0; s < m->nsources; s++)
    if ((int)strlen(m->sources[s].name) > w)
      w = (int)strlen(m->sources[s].name);
  printf("%-*s %10s %8s %12s %12s %8s\n", w, "source", "rows", "channels", "mse", "mse_std",
         "r2");
  for (int s = 0; s < m->nsources; s++) {
    char r2[32];
    format_value(r2, sizeof r2, "%.4f", res[s].r2);
    printf("%-*s %10d %8d %12.6g %12.6g %8s\n", w, m->sources[s].name, tables[s].rows,
           tables[s].cols, res[s].mse, res[s].mse_std, r2);
  }
}

/* ---- held-out cells ----------------------------------------------------- */

/* The other subjects' sources on region r with `cols` channels. */
static int baseline_sources(const Evaluator *ev, const RtHeldout *h, int cols, int *others) {
  int n = 0;
  for (int s = 0; s < ev->m->nsources; s++) {
    const lobe_source *src = &ev->m->sources[s];
    if (src->region == h->region && src->subject != h->subject && src->channels == cols)
      others[n++] = s;
  }
  return n;
}

/* Per channel: the mean over every row of the given sources. */
static void pooled_means(Evaluator *ev, const int *others, int n, size_t cols) {
  double rows = 0;
  memset(ev->pooled, 0, cols * sizeof *ev->pooled);
  for (int i = 0; i < n; i++) {
    const DataTable *o = &ev->tables[others[i]];
    rows += o->rows;
    for (size_t k = 0; k < (size_t)o->rows * cols; k++)
      ev->pooled[k % cols] += o->values[k];
  }
  for (size_t c = 0; c < cols; c++)
    ev->pooled[c] /= rows;
}

/* The baseline's squared errors per channel into sse: at row k, the mean of
 * the others' rows k where they have one, else of all their rows. */
static void baseline_errors(Evaluator *ev, const int *others, int n, const DataTable *t,
                            double *sse) {
  size_t cols = (size_t)t->cols;
  pooled_means(ev, others, n, cols);
  memset(sse, 0, cols * sizeof *sse);
  for (int64_t k = 0; k < t->rows; k++)
    for (size_t c = 0; c < cols; c++) {
      double sum = 0;
      int have = 0;
      for (int i = 0; i < n; i++)
        if (k < ev->tables[others[i]].rows) {
          sum += ev->tables[others[i]].values[(size_t)k * cols + c];
          have++;
        }
      double err = (have ? sum / have : ev->pooled[c]) - t->values[(size_t)k * cols + c];
      sse[c] += err * err;
    }
}

static void eval_heldout(Evaluator *ev, const RtHeldout *h, int head, const DataTable *t) {
  const lobe_model *m = ev->m;
  EvalResult model = summarise(ev, t, ev->sse, tile_errors(ev, head, h->subject, t));
  int n = baseline_sources(ev, h, t->cols, ev->others);
  EvalResult base = {NAN, NAN, NAN};
  if (n > 0) {
    baseline_errors(ev, ev->others, n, t, ev->base_sse);
    base = summarise(ev, t, ev->base_sse, 0);
  }
  char r2[32], base_mse[32], base_r2[32];
  format_value(r2, sizeof r2, "%.4f", model.r2);
  format_value(base_mse, sizeof base_mse, "%.6g", base.mse);
  format_value(base_r2, sizeof base_r2, "%.4f", base.r2);
  printf("heldout %s.%s head=%s rows=%d channels=%d mse=%.6g r2=%s baseline_sources=%d "
         "baseline_mse=%s baseline_r2=%s\n", m->regions[h->region].name,
         m->subjects[h->subject], m->sources[head].name, t->rows, t->cols, model.mse, r2, n,
         base_mse, base_r2);
}

/* A trained cell is not held out. */
static int check_cell(const lobe_model *m, const RtHeldout *h) {
  for (int s = 0; s < m->nsources; s++)
    if (m->sources[s].region == h->region && m->sources[s].subject == h->subject &&
        m->sources[s].loss_weight != 0) {
      rt_error("--heldout %s.%s: the model trains on this cell (source '%s'); held-out "
               "cells are ones without training data", m->regions[h->region].name,
               m->subjects[h->subject], m->sources[s].name);
      return RT_EUSAGE;
    }
  return RT_OK;
}

/* --head, which must read region R, else R's first source. */
static int pick_head(const lobe_model *m, const RtHeldout *h) {
  const char *region = m->regions[h->region].name;
  if (h->head >= 0 && m->sources[h->head].region != h->region) {
    rt_error("--head %s: a source on region '%s', not on '%s'", m->sources[h->head].name,
             m->regions[m->sources[h->head].region].name, region);
    return -1;
  }
  for (int s = 0; h->head < 0 && s < m->nsources; s++)
    if (m->sources[s].region == h->region)
      return s;
  if (h->head < 0)
    rt_error("--heldout %s.%s: region '%s' has no data source to read it through", region,
             m->subjects[h->subject], region);
  return h->head;
}

static int load_heldout(Evaluator *ev, const RtOptions *o) {
  for (int i = 0; i < o->nheldout; i++) {
    const RtHeldout *h = &o->heldout[i];
    if (check_cell(ev->m, h) != RT_OK || (ev->heads[i] = pick_head(ev->m, h)) < 0)
      return RT_EUSAGE;
    const lobe_source *head = &ev->m->sources[ev->heads[i]];
    if (rt_source_load(ev->m, head, h->path, &ev->held[i]) != RT_OK)
      return RT_EDATA;
  }
  return RT_OK;
}

/* ---- observations ------------------------------------------------------ */

typedef struct ObsResult {
  int64_t rows, windows;     /* rows covered by the windows */
  double loss, r, fc_r;      /* NAN where undefined or not reported */
} ObsResult;

/* The windows' mean loss; their predictions stitched into pred. */
static double run_windows(const lobe_observation *ob, RtObsWindow *w, const DataTable *t,
                          int64_t windows, float *pred) {
  size_t span = (size_t)ob->window * (size_t)ob->channels;
  double sum = 0;
  for (int64_t i = 0; i < windows; i++) {
    rt_obs_window_at(w, t, i * ob->window);
    ob->forward_f32(w->forward_args);
    ob->loss_grad_f32(w->loss_args);
    sum += w->loss;
    memcpy(pred + (size_t)i * span, w->out, span * sizeof *pred);
  }
  return sum / (double)windows;
}

/* DIR/NAME.fc.csv: the header names the regions, then N rows of N. */
static int write_fc(const lobe_model *m, const lobe_observation *ob, const double *fc,
                    const char *dir) {
  char path[4096];
  int n = ob->channels;
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    rt_error("--fc-out: cannot create directory %s: %s", dir, strerror(errno));
    return RT_FAIL;
  }
  FILE *f = (size_t)snprintf(path, sizeof path, "%s/%s.fc.csv", dir, ob->name) < sizeof path
                ? fopen(path, "w") : NULL;
  if (!f) {
    rt_error("--fc-out: cannot write %s: %s", path, strerror(errno));
    return RT_FAIL;
  }
  for (int i = 0; i < n; i++)
    fprintf(f, "%s%s", i ? "," : "", m->regions[ob->regions[i]].name);
  for (int i = 0; i < n * n; i++)
    fprintf(f, "%s%.9g", i % n ? "," : "\n", fc[i]);
  fputc('\n', f);
  if ((ferror(f) | fclose(f)) != 0) {
    rt_error("--fc-out: cannot write %s", path);
    return RT_FAIL;
  }
  return RT_OK;
}

/* fc_r over the covered rows; the model's FC written to fc_out if given. */
static int fc_scores(const lobe_model *m, const lobe_observation *ob, const float *pred,
                     const DataTable *t, ObsResult *res, const char *fc_out) {
  size_t n = (size_t)ob->channels;
  double *model = malloc(2 * n * n * sizeof *model);
  int rc = model && rt_pearson(pred, res->rows, (int)n, model) == RT_OK &&
           rt_pearson(t->values, res->rows, (int)n, model + n * n) == RT_OK ? RT_OK : RT_FAIL;
  if (rc != RT_OK)
    rt_error("out of memory");
  else
    res->fc_r = rt_upper_r(model, model + n * n, (int)n);
  if (rc == RT_OK && fc_out)
    rc = write_fc(m, ob, model, fc_out);
  free(model);
  return rc;
}

static int eval_observation(Evaluator *ev, int k, const char *fc_out, ObsResult *res) {
  const lobe_observation *ob = &ev->m->observations[k];
  const DataTable *t = &ev->tables[ev->m->nsources + k];
  RtObsWindow w = {0};
  *res = (ObsResult){.windows = t->rows / ob->window, .r = NAN, .fc_r = NAN};
  res->rows = res->windows * ob->window;
  float *pred = malloc((size_t)res->rows * (size_t)ob->channels * sizeof *pred);
  int rc = pred ? rt_obs_window_alloc(&w, ev->m, ob, &ev->st.params, ev->st.obs_stat[k])
                : RT_FAIL;
  if (rc != RT_OK) {
    rt_error("out of memory");
  } else {
    res->loss = run_windows(ob, &w, t, res->windows, pred);
    if (ob->kind != LOBE_OBS_FC)
      res->r = rt_columns_r(pred, t->values, res->rows, ob->channels);
    if (ob->kind != LOBE_OBS_EEG)
      rc = fc_scores(ev->m, ob, pred, t, res, fc_out);
  }
  rt_obs_window_free(&w);
  free(pred);
  return rc;
}

static void print_observations(const lobe_model *m, const ObsResult *res) {
  int w = 11;
  for (int k = 0; k < m->nobservations; k++)
    if ((int)strlen(m->observations[k].name) > w)
      w = (int)strlen(m->observations[k].name);
  printf("%-*s %4s %10s %8s %12s %8s %8s\n", w, "observation", "kind", "rows", "windows",
         "loss", "r", "fc_r");
  for (int k = 0; k < m->nobservations; k++) {
    char r[32], fc_r[32];
    format_value(r, sizeof r, "%.4f", res[k].r);
    format_value(fc_r, sizeof fc_r, "%.4f", res[k].fc_r);
    printf("%-*s %4s %10lld %8lld %12.6g %8s %8s\n", w, m->observations[k].name,
           rt_obs_kind_name(m->observations[k].kind), (long long)res[k].rows, (long long)res[k].windows,
           res[k].loss, r, fc_r);
  }
}

static int eval_observations(Evaluator *ev, const RtOptions *o) {
  const lobe_model *m = ev->m;
  ObsResult *res = calloc((size_t)m->nobservations + 1, sizeof *res);
  int rc = res ? RT_OK : RT_FAIL;
  for (int k = 0; rc == RT_OK && k < m->nobservations; k++)
    rc = eval_observation(ev, k, o->fc_out, &res[k]);
  if (rc == RT_OK && m->nobservations)
    print_observations(m, res);
  free(res);
  return rc;
}

/* ---- the command ------------------------------------------------------- */

static int setup(Evaluator *ev, const RtOptions *o) {
  const lobe_model *m = ev->m;
  size_t widest = (size_t)rt_max_channels(m);
  ev->tables = calloc((size_t)rt_ntables(m) + 1, sizeof *ev->tables);
  ev->held = calloc((size_t)o->nheldout + 1, sizeof *ev->held);
  ev->heads = calloc((size_t)o->nheldout + 1, sizeof *ev->heads);
  ev->others = calloc((size_t)m->nsources + 1, sizeof *ev->others);
  double **per_channel[] = {&ev->sse, &ev->base_sse, &ev->sst, &ev->mean, &ev->pooled};
  int ok = ev->tables && ev->held && ev->heads && ev->others;
  for (size_t i = 0; i < sizeof per_channel / sizeof *per_channel; i++)
    ok &= (*per_channel[i] = calloc(widest, sizeof(double))) != NULL;
  ev->res = calloc((size_t)m->nsources + 1, sizeof *ev->res);
  ev->starts = calloc((size_t)m->batch, sizeof *ev->starts);
  if (!ok || !ev->res || !ev->starts || rt_state_alloc(&ev->st, m) != RT_OK ||
      rt_batch_alloc(&ev->batch, m) != RT_OK ||
      !(ev->args = rt_forward_args(m, &ev->st.params, &ev->batch))) {
    rt_error("out of memory");
    return RT_FAIL;
  }
  int rc = rt_ckpt_load(&ev->st, o->ckpt_dir);
  if (rc == RT_NOCKPT) {
    rt_error("no checkpoint at %s; run train first", o->ckpt_dir);
    return RT_FAIL;
  }
  if (rc == RT_OK)
    rc = rt_tables_load(m, o, ev->tables);
  for (int k = 0; rc == RT_OK && k < m->nobservations; k++)
    rt_obs_targets(&m->observations[k], &ev->tables[m->nsources + k], ev->st.obs_stat[k]);
  return rc == RT_OK ? load_heldout(ev, o) : rc;
}

static void teardown(Evaluator *ev, const RtOptions *o) {
  for (int i = 0; ev->held && i < o->nheldout; i++)
    data_free(&ev->held[i]);
  free(ev->held);
  free(ev->heads);
  free(ev->others);
  free(ev->res);
  free(ev->args);
  free(ev->sse);
  free(ev->base_sse);
  free(ev->sst);
  free(ev->mean);
  free(ev->pooled);
  free(ev->starts);
  rt_batch_free(&ev->batch);
  rt_tables_free(ev->m, ev->tables);
  rt_state_free(&ev->st);
}

int rt_cmd_eval(const lobe_model *m, const RtOptions *o) {
  Evaluator ev;
  memset(&ev, 0, sizeof ev);
  ev.m = m;
  int rc = setup(&ev, o);
  if (rc == RT_OK) {
    for (int s = 0; s < m->nsources; s++)
      ev.res[s] = eval_source(&ev, s);
    if (m->nsources)
      print_table(m, ev.tables, ev.res);
    for (int i = 0; i < o->nheldout; i++)
      eval_heldout(&ev, &o->heldout[i], ev.heads[i], &ev.held[i]);
    rc = eval_observations(&ev, o);
  }
  teardown(&ev, o);
  return rc;
}
