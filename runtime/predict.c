/*
 * predict.c — `brain predict`: the trained model's output for one (region,
 * subject) over a time range, sampled at a source's rate, as CSV in data
 * units. Any cell can be asked for, including ones without data: that is
 * the imputation the model exists for. The value at time t is the last step
 * of the window ending at t, so that delayed inputs have the whole window
 * of context; a batch holds B such windows.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

enum { PREDICT_MAX_ROWS = 100000000 };

typedef struct Query {
  int region, subject, source;
  int64_t rows;
} Query;

/* --source (which must be on the region), else the source of cell (region,
 * subject), else the region's first; -1 after printing why. */
static int pick_source(const lobe_model *m, const RtOptions *o, int region, int subject) {
  if (o->source) {
    int s = rt_find(m, RT_SOURCE, o->source);
    if (s < 0)
      rt_error_unknown(m, RT_SOURCE, o->source);
    else if (m->sources[s].region != region) {   /* its forward is region's graph */
      rt_error("--source %s: a source on region '%s', not on '%s'", o->source,
               m->regions[m->sources[s].region].name, m->regions[region].name);
      return -1;
    }
    return s;
  }
  for (int s = 0; s < m->nsources; s++)
    if (m->sources[s].region == region && m->sources[s].subject == subject)
      return s;
  for (int s = 0; s < m->nsources; s++)
    if (m->sources[s].region == region)
      return s;
  rt_error("region '%s' has no data source to take channels and rate from; pass --source NAME",
           m->regions[region].name);
  return -1;
}

int rt_pick_cell(const lobe_model *m, const RtOptions *o, int *region, int *subject,
                 int *source) {
  if ((*region = rt_find(m, RT_REGION, o->region)) < 0) {
    rt_error_unknown(m, RT_REGION, o->region);
    return RT_EUSAGE;
  }
  if ((*subject = rt_find(m, RT_SUBJECT, o->subject)) < 0) {
    rt_error_unknown(m, RT_SUBJECT, o->subject);
    return RT_EUSAGE;
  }
  *source = pick_source(m, o, *region, *subject);
  return *source < 0 ? RT_EUSAGE : RT_OK;
}

static int parse_query(const lobe_model *m, const RtOptions *o, Query *q) {
  if (!o->region || !o->subject || !o->have_from || !o->have_to) {
    rt_error("predict needs --region, --subject, --from and --to (see predict --help)");
    return RT_EUSAGE;
  }
  if (rt_pick_cell(m, o, &q->region, &q->subject, &q->source) != RT_OK)
    return RT_EUSAGE;
  /* [from, to): one second at 100 Hz is 100 rows; the epsilon forgives
   * rounding in (to - from) * rate. */
  double span = (o->to - o->from) * m->sources[q->source].rate;
  if (!(span > 1e-9) || span > PREDICT_MAX_ROWS) {
    rt_error("--from %g --to %g: expected from < to and at most %d samples at %g Hz",
             o->from, o->to, PREDICT_MAX_ROWS, m->sources[q->source].rate);
    return RT_EUSAGE;
  }
  q->rows = (int64_t)ceil(span - 1e-9);
  return RT_OK;
}

/* A channel name is quoted when it would break the CSV header; a model
 * compiled without names gets "ch0", "ch1", ... as data files without any. */
static void write_name(FILE *f, const lobe_source *src, int c) {
  char fallback[24];
  const char *name = src->channel_names ? src->channel_names[c] : NULL;
  if (!name) {
    snprintf(fallback, sizeof fallback, "ch%d", c);
    name = fallback;
  }
  if (!strpbrk(name, ",\"\r\n")) {
    fputs(name, f);
    return;
  }
  fputc('"', f);
  for (const char *p = name; *p; p++) {
    if (*p == '"')
      fputc('"', f);
    fputc(*p, f);
  }
  fputc('"', f);
}

static void write_rows(FILE *f, const RtState *st, const Query *q, const RtBatch *b,
                       int64_t first, int n, double from) {
  const lobe_source *src = &st->model->sources[q->source];
  size_t C = (size_t)src->channels, last = (size_t)b->window - 1;
  for (int i = 0; i < n; i++) {
    fprintf(f, "%.10g", from + (double)(first + i) / src->rate);
    for (size_t c = 0; c < C; c++)
      fprintf(f, ",%.7g", rt_data_units(src, b->out[((size_t)i * (last + 1) + last) * C + c],
                                        st->mean[q->source][c], st->std[q->source][c]));
    fputc('\n', f);
  }
}

/* Windows ending at rows first..first+n of the query; the rest repeat the first. */
static void fill_windows(RtBatch *b, const lobe_source *src, const Query *q, int64_t first,
                         int n, double from) {
  double lead = (double)(b->window - 1) / src->rate;
  for (int i = 0; i < b->size; i++) {
    b->t[i] = (float)(from + (double)(first + (i < n ? i : 0)) / src->rate - lead);
    b->module[i] = q->region;
    b->subject[i] = q->subject;
  }
}

static void predict(FILE *f, RtState *st, const Query *q, RtBatch *b, void **args,
                    double from) {
  const lobe_source *src = &st->model->sources[q->source];
  fputc('t', f);
  for (int c = 0; c < src->channels; c++) {
    fputc(',', f);
    write_name(f, src, c);
  }
  fputc('\n', f);
  for (int64_t first = 0; first < q->rows; first += b->size) {
    int n = q->rows - first < b->size ? (int)(q->rows - first) : b->size;
    fill_windows(b, src, q, first, n, from);
    src->forward_f32(args);
    write_rows(f, st, q, b, first, n, from);
  }
}

static int load(RtState *st, const lobe_model *m, const RtOptions *o) {
  if (rt_state_alloc(st, m) != RT_OK) {
    rt_error("out of memory");
    return RT_FAIL;
  }
  int rc = rt_ckpt_load(st, o->ckpt_dir);
  if (rc == RT_NOCKPT)
    rt_error("no checkpoint at %s; run train first", o->ckpt_dir);
  return rc == RT_OK ? RT_OK : RT_FAIL;
}

static int run(const lobe_model *m, const RtOptions *o, RtState *st, const Query *q) {
  RtBatch b;
  void **args = NULL;
  if (rt_batch_alloc(&b, m) != RT_OK || !(args = rt_forward_args(m, &st->params, &b))) {
    rt_batch_free(&b);
    rt_error("out of memory");
    return RT_FAIL;
  }
  int to_stdout = !o->out || strcmp(o->out, "-") == 0;
  FILE *f = to_stdout ? stdout : fopen(o->out, "w");
  int rc = RT_OK;
  if (!f) {
    rt_error("cannot write %s: %s", o->out, strerror(errno));
    rc = RT_FAIL;
  } else {
    predict(f, st, q, &b, args, o->from);
    if (ferror(f) | (to_stdout ? fflush(f) : fclose(f))) {
      rt_error("cannot write %s: %s", to_stdout ? "standard output" : o->out, strerror(errno));
      rc = RT_FAIL;
    }
  }
  free(args);
  rt_batch_free(&b);
  return rc;
}

int rt_cmd_predict(const lobe_model *m, const RtOptions *o) {
  Query q;
  int rc = parse_query(m, o, &q);
  if (rc != RT_OK)
    return rc;
  RtState st;
  rc = load(&st, m, o);
  if (rc == RT_OK)
    rc = run(m, o, &st, &q);
  rt_state_free(&st);
  return rc;
}
