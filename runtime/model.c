/*
 * model.c — what the runtime needs to know about a model descriptor: that it
 * is sane (a compiler bug must give a message, not a crash), and its names.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

enum { RT_MAX_NUMEL = 1 << 30, RT_MAX_BATCH = 1 << 24, RT_MAX_WINDOW = 1 << 20 };

size_t rt_param_numel(const lobe_param *p) {
  return (size_t)p->rows * (size_t)p->cols;
}

int rt_max_channels(const lobe_model *m) {
  int c = 1;
  for (int s = 0; s < m->nsources; s++)
    if (m->sources[s].channels > c)
      c = m->sources[s].channels;
  return c;
}

static int bad(const char *what, int index, const char *problem) {
  rt_error("broken model descriptor: %s %d: %s (rebuild with lobec)", what, index, problem);
  return RT_FAIL;
}

static int check_param(const lobe_param *p, int k) {
  if (!p->name)
    return bad("parameter", k, "no name");
  if (p->rows < 1 || p->cols < 1 || (double)p->rows * p->cols > RT_MAX_NUMEL)
    return bad("parameter", k, "shape out of range");
  if (p->init < LOBE_INIT_ZEROS || p->init > LOBE_INIT_CONSTANT || !isfinite(p->scale))
    return bad("parameter", k, "unknown initialiser");
  return RT_OK;
}

/* n distinct parameter ids; NULL problem when they are. */
static const char *id_list_problem(const lobe_model *m, const int32_t *ids, int32_t n) {
  if (n < 0 || n > m->nparams || (n > 0 && !ids))
    return "parameter list out of range";
  for (int i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= m->nparams)
      return "list names an unknown parameter";
    for (int j = 0; j < i; j++)
      if (ids[j] == ids[i])
        return "parameter listed twice";
  }
  return NULL;
}

/* A prior or loss weight is a non-negative finite number. */
static bool is_weight(double x) { return x >= 0 && isfinite(x); }

static bool lists_has(const int32_t *ids, int32_t n, int32_t v) {
  for (int i = 0; i < n; i++)
    if (ids[i] == v)
      return true;
  return false;
}

/* A region's spec and spec_vjp come together, with what they fold; the
 * f64 pair (for gradcheck) only with the f32 one. */
static int check_region_spec(const lobe_model *m, const lobe_region *r, int k) {
  bool f32 = r->spec_f32 && r->spec_vjp_f32, f64 = r->spec_f64 && r->spec_vjp_f64;
  bool any = r->spec_f32 || r->spec_vjp_f32 || r->spec_f64 || r->spec_vjp_f64;
  bool paired = f64 == (r->spec_f64 || r->spec_vjp_f64);
  if (any != f32 || !paired || (f32 && r->nfolded < 1) || (!f32 && (r->nfolded || r->nvjp)))
    return bad("region", k, "incomplete specialised entry points");
  const char *problem = id_list_problem(m, r->folded, r->nfolded);
  if (!problem)
    problem = id_list_problem(m, r->vjp_params, r->nvjp);
  return problem ? bad("region", k, problem) : RT_OK;
}

/* Distinct regions, each with a spec (in f64 too when the source has
 * loss_grad_spec_f64), the source's own among them. */
static const char *spec_regions_problem(const lobe_model *m, const lobe_source *s) {
  if (s->nspec_regions < 1 || s->nspec_regions > m->nregions || !s->spec_regions)
    return "specialised regions out of range";
  for (int i = 0; i < s->nspec_regions; i++) {
    int32_t v = s->spec_regions[i];
    if (v < 0 || v >= m->nregions || lists_has(s->spec_regions, i, v))
      return "specialised regions out of range";
    if (!m->regions[v].spec_f32 || (s->loss_grad_spec_f64 && !m->regions[v].spec_f64))
      return "a specialised region without spec";
  }
  if (!lists_has(s->spec_regions, s->nspec_regions, s->region))
    return "its own region is not specialised";
  return NULL;
}

/* loss_grad_spec comes with its regions (and in f64 only with f32). */
static int check_spec(const lobe_model *m, const lobe_source *s, int k) {
  bool any = s->loss_grad_spec_f32 || s->loss_grad_spec_f64 || s->nspec_regions;
  if (any != (s->loss_grad_spec_f32 != NULL))
    return bad("source", k, "incomplete specialised entry points");
  if (!any)
    return RT_OK;
  const char *problem = spec_regions_problem(m, s);
  if (!problem)
    problem = id_list_problem(m, s->spec_grad_params, s->nspec_grad);
  return problem ? bad("source", k, problem) : RT_OK;
}

static int check_grads(const lobe_model *m, const lobe_source *s, int k) {
  const char *problem = id_list_problem(m, s->grad_params, s->ngrad);
  return problem ? bad("source", k, problem) : check_spec(m, s, k);
}

static int check_source(const lobe_model *m, const lobe_source *s, int k) {
  if (!s->name)
    return bad("source", k, "no name");
  if (s->region < 0 || s->region >= m->nregions || s->subject < 0 ||
      s->subject >= m->nsubjects)
    return bad("source", k, "region or subject out of range");
  if (s->channels < 1)
    return bad("source", k, "no channels");
  if (!(s->rate > 0) || !isfinite(s->rate) || !isfinite(s->t0) || !isfinite(s->loss_weight))
    return bad("source", k, "rate, t0 or loss weight out of range");
  if (s->loss_kind != LOBE_LOSS_MSE && s->loss_kind != LOBE_LOSS_POISSON)
    return bad("source", k, "unknown loss kind");
  if (s->kind < LOBE_SRC_CSV || s->kind > LOBE_SRC_NIFTI)
    return bad("source", k, "unknown data format");
  if (s->nselect < 0 || (s->nselect > 0 && !s->select))
    return bad("source", k, "channel selection out of range");
  if (!s->forward_f32 || !s->loss_grad_f32)
    return bad("source", k, "missing entry points");
  return check_grads(m, s, k);
}

/* ---- observations ------------------------------------------------------ */

/* n distinct regions of the model. */
static bool regions_ok(const lobe_model *m, const int32_t *regions, int32_t n) {
  if (n < 1 || n > m->nregions || !regions)
    return false;
  for (int i = 0; i < n; i++)
    if (regions[i] < 0 || regions[i] >= m->nregions || lists_has(regions, i, regions[i]))
      return false;
  return true;
}

/* The recording: read as a source, with its clock and the observation's width. */
static const char *obs_data_problem(const lobe_observation *o) {
  const lobe_source *d = &o->data;
  if (d->kind < LOBE_SRC_CSV || d->kind > LOBE_SRC_NIFTI)
    return "unknown data format";
  if (!(d->rate > 0) || !isfinite(d->rate) || !isfinite(d->t0))
    return "rate or t0 out of range";
  if (d->channels != o->channels || (d->nselect < 0 || (d->nselect > 0 && !d->select)))
    return "data channels do not match";
  return NULL;
}

static const char *obs_shape_problem(const lobe_model *m, const lobe_observation *o) {
  if (o->kind < LOBE_OBS_EEG || o->kind > LOBE_OBS_FC)
    return "unknown measure";
  if (o->subject < 0 || o->subject >= m->nsubjects || !regions_ok(m, o->regions, o->nregions))
    return "subject or regions out of range";
  if (o->window < 1 || o->window > RT_MAX_WINDOW || o->batch < 1 || o->batch > RT_MAX_BATCH)
    return "window or batch out of range";
  if (o->channels < 1 || (o->kind != LOBE_OBS_EEG && o->channels != o->nregions))
    return "channels out of range";
  if ((double)o->window * o->channels > RT_MAX_NUMEL ||
      (double)o->channels * o->channels > RT_MAX_NUMEL)
    return "window x channels too large";
  if (!is_weight(o->loss_weight))
    return "loss weight out of range";
  return obs_data_problem(o);
}

static int check_observation(const lobe_model *m, const lobe_observation *o, int k) {
  if (!o->name)
    return bad("observation", k, "no name");
  const char *problem = obs_shape_problem(m, o);
  if (!problem && (!o->forward_f32 || !o->loss_grad_f32 ||
                   (o->loss_held_f64 && !o->loss_grad_f64)))
    problem = "missing entry points";
  if (!problem)
    problem = id_list_problem(m, o->grad_params, o->ngrad);
  return problem ? bad("observation", k, problem) : RT_OK;
}

static int check_observations(const lobe_model *m) {
  if (m->nobservations < 0 || (m->nobservations && !m->observations))
    return bad("model", 0, "negative observation count or missing table");
  for (int k = 0; k < m->nobservations; k++)
    if (check_observation(m, &m->observations[k], k) != RT_OK)
      return RT_FAIL;
  return RT_OK;
}

static int check_names(const lobe_model *m) {
  for (int r = 0; r < m->nregions; r++) {
    if (!m->regions[r].name)
      return bad("region", r, "no name");
    if (check_region_spec(m, &m->regions[r], r) != RT_OK)
      return RT_FAIL;
  }
  for (int s = 0; s < m->nsubjects; s++)
    if (!m->subjects[s])
      return bad("subject", s, "no name");
  return RT_OK;
}

static bool edge_has_prior(const lobe_edge *e) {
  return e->l1 > 0 || e->distance * e->length > 0;
}

/* A gate penalised by the prior must get the prior's gradient. */
static int check_edge(const lobe_model *m, const lobe_edge *e, int k) {
  if (e->from < 0 || e->from >= m->nregions || e->to < 0 || e->to >= m->nregions)
    return bad("edge", k, "region out of range");
  if (!is_weight(e->delay) || (e->from == e->to && e->delay == 0))
    return bad("edge", k, "delay out of range (a self-edge needs a delay)");
  if (e->gate < 0 || e->gate >= m->nparams ||
      rt_param_numel(&m->params[e->gate]) != (size_t)m->nedges)
    return bad("edge", k, "gate is not a parameter of one element per edge");
  if (!is_weight(e->l1) || !is_weight(e->distance) || !is_weight(e->length))
    return bad("edge", k, "prior weights or length out of range");
  if (edge_has_prior(e) &&
      !(m->prior_f32 && lists_has(m->prior_grad_params, m->nprior_grad, e->gate)))
    return bad("edge", k, "its prior has no gradient for its gate");
  return RT_OK;
}

static int check_graph(const lobe_model *m) {
  if (m->window < 1 || m->window > RT_MAX_WINDOW)
    return bad("model", 0, "window out of range");
  if (m->nedges < 0 || (m->nedges && !m->edges))
    return bad("model", 0, "negative edge count or missing edge table");
  const char *problem = id_list_problem(m, m->prior_grad_params, m->nprior_grad);
  if (problem)
    return bad("prior", 0, problem);
  if ((m->prior_f64 || m->nprior_grad > 0) && !m->prior_f32)
    return bad("prior", 0, "gradients or an f64 form without the f32 prior");
  for (int k = 0; k < m->nedges; k++)
    if (check_edge(m, &m->edges[k], k) != RT_OK)
      return RT_FAIL;
  return RT_OK;
}

static int check_counts(const lobe_model *m) {
  if (m->nparams < 0 || m->nregions < 0 || m->nsubjects < 0 || m->nsources < 0 ||
      (m->nparams && !m->params) || (m->nregions && !m->regions) ||
      (m->nsubjects && !m->subjects) || (m->nsources && !m->sources))
    return bad("model", 0, "negative counts or missing tables");
  if (m->batch < 1 || m->batch > RT_MAX_BATCH || m->steps < 0 || m->checkpoint_every < 0)
    return bad("model", 0, "batch, steps or checkpoint_every out of range");
  if (!(m->lr > 0) || !(m->beta1 >= 0 && m->beta1 < 1) || !(m->beta2 >= 0 && m->beta2 < 1) ||
      !(m->eps > 0))
    return bad("model", 0, "optimiser settings out of range");
  return RT_OK;
}

int rt_model_check(const lobe_model *m) {
  if (m->abi_version != LOBE_ABI_VERSION) {
    rt_error("model built for runtime ABI %d, this runtime has %d (rebuild with lobec)",
             m->abi_version, LOBE_ABI_VERSION);
    return RT_FAIL;
  }
  if (check_counts(m) != RT_OK || check_names(m) != RT_OK)
    return RT_FAIL;
  for (int k = 0; k < m->nparams; k++)
    if (check_param(&m->params[k], k) != RT_OK)
      return RT_FAIL;
  for (int k = 0; k < m->nsources; k++)
    if (check_source(m, &m->sources[k], k) != RT_OK)
      return RT_FAIL;
  if (check_graph(m) != RT_OK || check_observations(m) != RT_OK)
    return RT_FAIL;
  /* batch buffers hold B windows of the widest source */
  if ((double)m->batch * m->window * rt_max_channels(m) > RT_MAX_NUMEL)
    return bad("model", 0, "batch x window x channels too large");
  return RT_OK;
}

/* ---- names ------------------------------------------------------------- */

static int name_count(const lobe_model *m, RtNameKind kind) {
  switch (kind) {
  case RT_REGION: return m->nregions;
  case RT_SUBJECT: return m->nsubjects;
  case RT_SOURCE: return m->nsources;
  case RT_OBSERVATION: return m->nobservations;
  default: return m->nsources + m->nobservations;
  }
}

static const char *name_at(const lobe_model *m, RtNameKind kind, int i) {
  switch (kind) {
  case RT_REGION: return m->regions[i].name;
  case RT_SUBJECT: return m->subjects[i];
  case RT_SOURCE: return m->sources[i].name;
  case RT_OBSERVATION: return m->observations[i].name;
  default:
    return i < m->nsources ? m->sources[i].name : m->observations[i - m->nsources].name;
  }
}

int rt_find(const lobe_model *m, RtNameKind kind, const char *name) {
  for (int i = 0; i < name_count(m, kind); i++)
    if (strcmp(name_at(m, kind, i), name) == 0)
      return i;
  return -1;
}

int rt_find_cell(const lobe_model *m, const char *cell, int *region, int *subject) {
  for (const char *dot = strchr(cell, '.'); dot; dot = strchr(dot + 1, '.')) {
    char *name = strndup(cell, (size_t)(dot - cell));
    *region = name ? rt_find(m, RT_REGION, name) : -1;
    *subject = rt_find(m, RT_SUBJECT, dot + 1);
    free(name);
    if (*region >= 0 && *subject >= 0)
      return RT_OK;
  }
  return RT_FAIL;
}

void rt_error_unknown(const lobe_model *m, RtNameKind kind, const char *name) {
  static const char *const what[] = {"region", "subject", "source", "observation",
                                     "source or observation"};
  char valid[1024] = "";
  size_t n = 0;
  for (int i = 0; i < name_count(m, kind) && n < sizeof valid; i++)
    n += (size_t)snprintf(valid + n, sizeof valid - n, "%s%s", i ? ", " : "",
                          name_at(m, kind, i));
  rt_error("unknown %s '%s' (valid: %s)", what[kind], name, valid[0] ? valid : "none");
}
