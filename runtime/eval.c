/*
 * eval.c — `brain eval`: the trained model over every row of every source,
 * in chunks of the model's batch. Reports per source the mean squared error
 * in data units and on the standardised (training) scale, and R^2 per
 * channel (1 - SSE/SST) averaged over the channels that vary.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

typedef struct EvalResult {
  double mse, mse_std, r2;   /* r2 is NAN when no channel varies */
} EvalResult;

typedef struct Evaluator {
  const lobe_model *m;
  RtState st;
  DataTable *tables;
  RtBatch batch;
  void **args;
  double *sse, *sst;         /* per channel of the widest source */
  EvalResult *res;           /* per source */
} Evaluator;

/* Adds the squared errors of one forward chunk, in data units. */
static void add_errors(Evaluator *ev, int s, const DataTable *t, int first, int n,
                       double *sse_std) {
  size_t cols = (size_t)t->cols;
  for (int i = 0; i < n; i++)
    for (size_t c = 0; c < cols; c++) {
      double pred = ev->batch.out[(size_t)i * cols + c] * ev->st.std[s][c] + ev->st.mean[s][c];
      double err = pred - t->values[(size_t)(first + i) * cols + c];
      ev->sse[c] += err * err;
      *sse_std += err * err / (ev->st.std[s][c] * ev->st.std[s][c]);
    }
}

static EvalResult eval_source(Evaluator *ev, int s) {
  const lobe_source *src = &ev->m->sources[s];
  const DataTable *t = &ev->tables[s];
  size_t cols = (size_t)t->cols, count = (size_t)t->rows * cols;
  double sse_std = 0, sse = 0, r2 = 0;
  int varying = 0;
  rt_channel_moments(t, ev->sst + cols, ev->sst);   /* SST per channel */
  memset(ev->sse, 0, cols * sizeof *ev->sse);
  for (int first = 0; first < t->rows; first += ev->batch.size) {
    int n = t->rows - first < ev->batch.size ? t->rows - first : ev->batch.size;
    rt_batch_rows(&ev->batch, src, t, first, n);
    src->forward_f32(ev->args);
    add_errors(ev, s, t, first, n, &sse_std);
  }
  for (size_t c = 0; c < cols; c++) {
    sse += ev->sse[c];
    if (ev->sst[c] > 0) {
      r2 += 1 - ev->sse[c] / ev->sst[c];
      varying++;
    }
  }
  return (EvalResult){sse / (double)count, sse_std / (double)count,
                      varying ? r2 / varying : NAN};
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
    if (isnan(res[s].r2))
      snprintf(r2, sizeof r2, "n/a");
    else
      snprintf(r2, sizeof r2, "%.4f", res[s].r2);
    printf("%-*s %10d %8d %12.6g %12.6g %8s\n", w, m->sources[s].name, tables[s].rows,
           tables[s].cols, res[s].mse, res[s].mse_std, r2);
  }
}

static int setup(Evaluator *ev, const RtOptions *o) {
  const lobe_model *m = ev->m;
  size_t widest = (size_t)rt_max_channels(m);
  ev->tables = calloc((size_t)m->nsources + 1, sizeof *ev->tables);
  ev->sse = calloc(widest, sizeof *ev->sse);
  ev->sst = calloc(2 * widest, sizeof *ev->sst);
  ev->res = calloc((size_t)m->nsources + 1, sizeof *ev->res);
  if (!ev->tables || !ev->sse || !ev->sst || !ev->res || rt_state_alloc(&ev->st, m) != RT_OK ||
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
  return rc == RT_OK ? rt_tables_load(m, o, ev->tables) : rc;
}

int rt_cmd_eval(const lobe_model *m, const RtOptions *o) {
  Evaluator ev;
  memset(&ev, 0, sizeof ev);
  ev.m = m;
  int rc = setup(&ev, o);
  if (rc == RT_OK) {
    for (int s = 0; s < m->nsources; s++)
      ev.res[s] = eval_source(&ev, s);
    print_table(m, ev.tables, ev.res);
  }
  free(ev.res);
  free(ev.args);
  free(ev.sse);
  free(ev.sst);
  rt_batch_free(&ev.batch);
  rt_tables_free(m, ev.tables);
  rt_state_free(&ev.st);
  return rc;
}
