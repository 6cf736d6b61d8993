/*
 * info.c — `brain info`: what the executable was compiled from: training
 * settings, parameters, regions, subjects, the region graph's edges, data
 * sources, observations and which (region, subject) cells have data: how
 * many channels of local sources, and through which modalities. The gates of
 * the edges show their trained values when a checkpoint is there.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "rt.h"

/* kind is checked by rt_model_check. */
static const char *kind_name(int kind) {
  static const char *const names[] = {"csv", "npy", "edf", "mat", "nwb_units", "nwb_series",
                                      "nifti"};
  return names[kind];
}

static int max_width(int w, const char *s) {
  int n = (int)strlen(s);
  return n > w ? n : w;
}

static const char *init_name(int init) {
  static const char *const names[] = {"zeros", "normal", "uniform", "constant"};
  return names[init];
}

static void print_params(const lobe_model *m) {
  size_t total = 0;
  int w = 4;
  for (int k = 0; k < m->nparams; k++) {
    total += rt_param_numel(&m->params[k]);
    w = max_width(w, m->params[k].name);
  }
  printf("parameters: %d, %zu values\n", m->nparams, total);
  printf("  %-*s %12s %10s  %s\n", w, "name", "shape", "count", "init");
  for (int k = 0; k < m->nparams; k++) {
    const lobe_param *p = &m->params[k];
    char shape[32];
    snprintf(shape, sizeof shape, "%dx%d", p->rows, p->cols);
    printf("  %-*s %12s %10zu  %s", w, p->name, shape, rt_param_numel(p), init_name(p->init));
    if (p->init != LOBE_INIT_ZEROS)
      printf("(%g)", p->scale);
    printf("\n");
  }
}

static void print_regions_subjects(const lobe_model *m) {
  printf("regions: %d\n", m->nregions);
  for (int r = 0; r < m->nregions; r++)
    printf("  %-3d %s%s%s%s\n", r, m->regions[r].name, m->regions[r].aunn ? " (aunn " : "",
           m->regions[r].aunn ? m->regions[r].aunn : "", m->regions[r].aunn ? ")" : "");
  printf("subjects: %d\n", m->nsubjects);
  for (int s = 0; s < m->nsubjects; s++)
    printf("  %-3d %s\n", s, m->subjects[s]);
}

static void print_sources(const lobe_model *m) {
  int w = 4;
  for (int s = 0; s < m->nsources; s++)
    w = max_width(w, m->sources[s].name);
  printf("sources: %d\n", m->nsources);
  if (m->nsources)
    printf("  %-*s %4s %8s %10s %10s %7s %8s  %s\n", w, "name", "kind", "channels",
           "rate_hz", "t0_s", "loss", "weight", "path");
  for (int s = 0; s < m->nsources; s++) {
    const lobe_source *src = &m->sources[s];
    printf("  %-*s %4s %8d %10g %10g %7s %8g  %s\n", w, src->name,
           kind_name(src->kind), src->channels, src->rate, src->t0,
           src->loss_kind == LOBE_LOSS_POISSON ? "poisson" : "mse", src->loss_weight,
           src->path ? src->path : "(none: pass --data)");
  }
}

static void print_observations(const lobe_model *m) {
  int w = 4;
  if (m->nobservations == 0)
    return;
  for (int k = 0; k < m->nobservations; k++)
    w = max_width(w, m->observations[k].name);
  printf("observations: %d\n", m->nobservations);
  printf("  %-*s %7s %7s %8s %6s %5s %10s %8s  %s\n", w, "name", "measure", "regions",
         "channels", "window", "batch", "rate_hz", "weight", "path");
  for (int k = 0; k < m->nobservations; k++) {
    const lobe_observation *ob = &m->observations[k];
    printf("  %-*s %7s %7d %8d %6d %5d %10g %8g  %s%s\n", w, ob->name, rt_obs_kind_name(ob->kind),
           ob->nregions, ob->channels, ob->window, ob->batch, ob->data.rate, ob->loss_weight,
           ob->data.path ? ob->data.path : "(none: pass --data)",
           ob->loss_weight > 0 ? "" : " (eval only)");
  }
}

/* One cell: the channel counts of the sources there, joined by '+', or '.'. */
static void cell_text(const lobe_model *m, int r, int subj, char *buf, size_t len) {
  size_t n = 0;
  buf[0] = '\0';
  for (int s = 0; s < m->nsources && n < len; s++)
    if (m->sources[s].region == r && m->sources[s].subject == subj)
      n += (size_t)snprintf(buf + n, len - n, "%s%d", n ? "+" : "", m->sources[s].channels);
  if (n == 0)
    snprintf(buf, len, ".");
}

/* Whether name is one of the '+'-separated items of list. */
static bool has_item(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
    if ((p == list || p[-1] == '+') && (p[n] == '\0' || p[n] == '+'))
      return true;
  return false;
}

static void add_item(char *buf, size_t len, const char *name) {
  size_t n = strlen(buf);
  if (!has_item(buf, name) && n < len)
    snprintf(buf + n, len - n, "%s%s", n ? "+" : "", name);
}

/* A local source's modality: spikes and series by what they hold, else its format. */
static const char *source_modality(const lobe_source *s) {
  if (s->kind == LOBE_SRC_NWB_UNITS)
    return "spikes";
  return s->kind == LOBE_SRC_NWB_SERIES ? "series" : kind_name(s->kind);
}

static bool observes(const lobe_observation *ob, int r, int subj) {
  for (int i = 0; ob->subject == subj && i < ob->nregions; i++)
    if (ob->regions[i] == r)
      return true;
  return false;
}

/* One cell: the modalities of the sources and observations there, or '-'. */
static void modality_text(const lobe_model *m, int r, int subj, char *buf, size_t len) {
  buf[0] = '\0';
  for (int s = 0; s < m->nsources; s++)
    if (m->sources[s].region == r && m->sources[s].subject == subj)
      add_item(buf, len, source_modality(&m->sources[s]));
  for (int k = 0; k < m->nobservations; k++)
    if (observes(&m->observations[k], r, subj))
      add_item(buf, len, rt_obs_kind_name(m->observations[k].kind));
  if (!buf[0])
    snprintf(buf, len, "-");
}

typedef void CellText(const lobe_model *m, int r, int subj, char *buf, size_t len);

/* One line per region, one column per subject. */
static void print_cells(const lobe_model *m, const char *title, CellText *text) {
  int w = 6, cw = 4;
  char cell[64];
  for (int r = 0; r < m->nregions; r++)
    w = max_width(w, m->regions[r].name);
  for (int s = 0; s < m->nsubjects; s++) {
    cw = max_width(cw, m->subjects[s]);
    for (int r = 0; r < m->nregions; r++) {
      text(m, r, s, cell, sizeof cell);
      cw = max_width(cw, cell);
    }
  }
  printf("%s:\n  %-*s", title, w, "");
  for (int s = 0; s < m->nsubjects; s++)
    printf(" %*s", cw, m->subjects[s]);
  printf("\n");
  for (int r = 0; r < m->nregions; r++) {
    printf("  %-*s", w, m->regions[r].name);
    for (int s = 0; s < m->nsubjects; s++) {
      text(m, r, s, cell, sizeof cell);
      printf(" %*s", cw, cell);
    }
    printf("\n");
  }
}

static void print_coverage(const lobe_model *m) {
  print_cells(m, "coverage (channels of data per region x subject; . = none)", cell_text);
  print_cells(m, "modalities (per region x subject: local formats, spikes, series, eeg, bold, "
              "fc; - = none)", modality_text);
}

/* The trained gate, or its initial value (random ones have none yet). */
static void gate_text(const lobe_model *m, const RtState *st, int edge, char *buf,
                      size_t len) {
  int gate = m->edges[edge].gate;
  const lobe_param *p = &m->params[gate];
  if (st)
    snprintf(buf, len, "%g", st->params.value[gate][edge]);
  else if (p->init == LOBE_INIT_CONSTANT || p->init == LOBE_INIT_ZEROS)
    snprintf(buf, len, "%g (init)", p->init == LOBE_INIT_ZEROS ? 0.0 : p->scale);
  else
    snprintf(buf, len, "%s (init)", init_name(p->init));
}

static void print_edges(const lobe_model *m, const RtState *st) {
  int w = 4;
  char gate[48];
  for (int r = 0; r < m->nregions; r++)
    w = max_width(w, m->regions[r].name);
  printf("edges: %d%s\n", m->nedges, m->nedges ? "" : " (the regions are independent)");
  if (m->nedges)
    printf("  %-*s    %-*s %10s %14s %10s %12s %10s\n", w, "from", w, "to", "delay_s", "gate",
           "l1", "distance_m", "length_m");
  for (int e = 0; e < m->nedges; e++) {
    const lobe_edge *d = &m->edges[e];
    gate_text(m, st, e, gate, sizeof gate);
    printf("  %-*s -> %-*s %10g %14s %10g %12g %10g\n", w, m->regions[d->from].name, w,
           m->regions[d->to].name, d->delay, gate, d->l1, d->distance, d->length);
  }
}

static void print_settings(const lobe_model *m) {
  printf("model: %s", m->name ? m->name : "(unnamed)");
  if (m->spec_path)
    printf(" (from %s)", m->spec_path);
  printf("\ntrain: batch %d, window %d, steps %d, adam(lr %g, beta1 %g, beta2 %g, eps %g), "
         "seed %llu\n", m->batch, m->window, m->steps, m->lr, m->beta1, m->beta2, m->eps,
         (unsigned long long)m->seed);
  if (m->checkpoint_every > 0)
    printf("checkpoints: every %d steps and at the end\n", m->checkpoint_every);
  else
    printf("checkpoints: at the end\n");
  printf("prior: %s\n", m->prior_f32 ? "edge gate priors and l2 terms, once per step" : "none");
}

/* Prints everything; an unusable checkpoint is reported and fails the command. */
int rt_cmd_info(const lobe_model *m, const RtOptions *o) {
  RtState st;
  int rc = RT_FAIL;
  if (rt_state_alloc(&st, m) == RT_OK)
    rc = rt_ckpt_load(&st, o->ckpt_dir);
  else
    rt_error("out of memory");
  print_settings(m);
  if (rc == RT_OK)
    printf("checkpoint: %s, step %lld\n", o->ckpt_dir, (long long)st.step);
  else
    printf("checkpoint: %s %s\n", rc == RT_NOCKPT ? "none at" : "unusable:", o->ckpt_dir);
  print_params(m);
  print_regions_subjects(m);
  print_edges(m, rc == RT_OK ? &st : NULL);
  print_sources(m);
  print_observations(m);
  print_coverage(m);
  rt_state_free(&st);
  return rc == RT_FAIL ? RT_FAIL : RT_OK;
}
