/*
 * spec.c — training through the specialised entry points
 * (docs/specialisation.md). The (region, subject) groups that the windows
 * of the trained sources read are each folded into theta' once per step
 * (spec); every source's loss_grad_spec runs its batch at the theta' of
 * its window's regions, without ids, gathers or film; the d theta' of all
 * sources reading a group are summed, and spec_vjp maps the sum back to the
 * parameters once per group.
 */
#include <stdlib.h>
#include <string.h>

#include "rt.h"

static float *alloc_like(const lobe_model *m, int param) {
  return calloc(rt_param_numel(&m->params[param]), sizeof(float));
}

/* n buffers shaped like params[ids[k]]; NULL when out of memory. */
static float **alloc_list(const lobe_model *m, const int32_t *ids, int n) {
  float **list = calloc((size_t)n + 1, sizeof *list);
  for (int k = 0; list && k < n; k++)
    if (!(list[k] = alloc_like(m, ids[k]))) {
      for (int j = 0; j < k; j++)
        free(list[j]);
      free(list);
      return NULL;
    }
  return list;
}

static void free_list(float **list, int n) {
  for (int k = 0; list && k < n; k++)
    free(list[k]);
  free(list);
}

/* ---- groups ------------------------------------------------------------ */

static int find_group(const RtSpec *sp, int region, int subject) {
  for (int g = 0; g < sp->ngroups; g++)
    if (sp->group[g].module[0] == region && sp->group[g].subject[0] == subject)
      return g;
  return -1;
}

/* The group of (region, subject), added when new; -1 when out of memory. */
static int use_group(RtSpec *sp, const lobe_model *m, int region, int subject) {
  int g = find_group(sp, region, subject);
  if (g >= 0) {
    sp->group[g].users++;
    return g;
  }
  RtGroup *more = realloc(sp->group, ((size_t)sp->ngroups + 1) * sizeof *more);
  if (!more)
    return -1;
  sp->group = more;
  RtGroup *gr = &sp->group[sp->ngroups];
  memset(gr, 0, sizeof *gr);
  gr->reg = &m->regions[region];
  gr->module[0] = region;
  gr->subject[0] = subject;
  gr->users = 1;
  gr->weight = 1;
  return sp->ngroups++;
}

/* params..., module[1], subject[1], then `tail` (n pointers), then `more`
 * slots for the caller. */
static void **ids_args(const lobe_model *m, RtGroup *gr, RtParams *p, float **tail, int n,
                       int more) {
  size_t np = (size_t)m->nparams;
  void **a = malloc((np + 2 + (size_t)n + (size_t)more) * sizeof *a);
  if (!a)
    return NULL;
  for (size_t k = 0; k < np; k++)
    a[k] = p->value[k];
  a[np] = gr->module;
  a[np + 1] = gr->subject;
  for (int k = 0; k < n; k++)
    a[np + 2 + k] = tail[k];
  return a;
}

/* spec writes theta'; spec_vjp reads the summed d theta' and writes the
 * pairing, then its gradients. */
static int group_alloc(RtGroup *gr, const lobe_model *m, RtParams *p) {
  const lobe_region *r = gr->reg;
  gr->theta = alloc_list(m, r->folded, r->nfolded);
  gr->dtheta = alloc_list(m, r->folded, r->nfolded);
  gr->vjp_grad = alloc_list(m, r->vjp_params, r->nvjp);
  if (!gr->theta || !gr->dtheta || !gr->vjp_grad)
    return RT_FAIL;
  gr->spec_args = ids_args(m, gr, p, gr->theta, r->nfolded, 0);
  gr->vjp_args = ids_args(m, gr, p, gr->dtheta, r->nfolded, 1 + r->nvjp);
  if (!gr->spec_args || !gr->vjp_args)
    return RT_FAIL;
  void **out = gr->vjp_args + m->nparams + 2 + r->nfolded;
  out[0] = &gr->pairing;
  for (int k = 0; k < r->nvjp; k++)
    out[1 + k] = gr->vjp_grad[k];
  return RT_OK;
}

static void group_free(RtGroup *gr) {
  free_list(gr->theta, gr->reg->nfolded);
  free_list(gr->dtheta, gr->reg->nfolded);
  free_list(gr->vjp_grad, gr->reg->nvjp);
  free(gr->spec_args);
  free(gr->vjp_args);
}

/* ---- sources ----------------------------------------------------------- */

/* Slots of loss_grad_spec's theta' and d theta' lists (lobe_model.h). */
static int theta_count(const lobe_model *m, const lobe_source *s) {
  int n = 0;
  for (int i = 0; i < s->nspec_regions; i++)
    n += m->regions[s->spec_regions[i]].nfolded;
  return n;
}

/* A group only this source reads receives its d theta' directly (the
 * source's weight applied after spec_vjp, as for one region alone); a
 * shared one gets w * d theta' from a buffer of the source's own. */
static int source_dtheta(RtSpec *sp, RtSpecSource *ss, const lobe_model *m, void **out) {
  const lobe_source *s = ss->src;
  ss->dtheta = calloc((size_t)theta_count(m, s) + 1, sizeof *ss->dtheta);
  if (!ss->dtheta)
    return RT_FAIL;
  int at = 0;
  for (int i = 0; i < s->nspec_regions; i++) {
    RtGroup *gr = &sp->group[ss->groups[i]];
    for (int k = 0; k < gr->reg->nfolded; k++, at++) {
      bool direct = gr->users == 1;
      if (!direct && !(ss->dtheta[at] = alloc_like(m, gr->reg->folded[k])))
        return RT_FAIL;
      out[at] = direct ? gr->dtheta[k] : ss->dtheta[at];
    }
    if (gr->users == 1)
      gr->weight = (float)s->loss_weight;
  }
  return RT_OK;
}

/* params, t, y, theta'_{v,k}; loss, gradients, d theta'_{v,k}. */
static int source_args(RtSpec *sp, RtSpecSource *ss, const lobe_model *m, RtParams *p,
                       RtBatch *b) {
  const lobe_source *s = ss->src;
  size_t np = (size_t)m->nparams, nt = (size_t)theta_count(m, s);
  void **a = malloc((np + 3 + 2 * nt + (size_t)s->nspec_grad) * sizeof *a);
  if (!(ss->loss_args = a))
    return RT_FAIL;
  for (size_t k = 0; k < np; k++)
    a[k] = p->value[k];
  a[np] = b->t;
  a[np + 1] = b->y;
  size_t at = np + 2;
  for (int i = 0; i < s->nspec_regions; i++) {
    RtGroup *gr = &sp->group[ss->groups[i]];
    for (int k = 0; k < gr->reg->nfolded; k++)
      a[at++] = gr->theta[k];
  }
  a[at++] = &b->loss;
  for (int k = 0; k < s->nspec_grad; k++)
    a[at++] = p->scratch[s->spec_grad_params[k]];
  return source_dtheta(sp, ss, m, a + at);
}

static int find_groups(RtSpec *sp, RtSpecSource *ss, const lobe_model *m) {
  const lobe_source *s = ss->src;
  ss->groups = calloc((size_t)s->nspec_regions, sizeof *ss->groups);
  if (!ss->groups)
    return RT_FAIL;
  for (int i = 0; i < s->nspec_regions; i++)
    if ((ss->groups[i] = use_group(sp, m, s->spec_regions[i], s->subject)) < 0)
      return RT_FAIL;
  return RT_OK;
}

int rt_spec_alloc(RtSpec *sp, const lobe_model *m, const int *active, int nactive,
                  RtParams *p, RtBatch *b) {
  memset(sp, 0, sizeof *sp);
  sp->m = m;
  sp->nsources = nactive;
  if (!(sp->source = calloc((size_t)nactive + 1, sizeof *sp->source)))
    return RT_FAIL;
  for (int a = 0; a < nactive; a++) {
    const lobe_source *s = &m->sources[active[a]];
    if (s->loss_grad_spec_f32) {
      sp->source[a].src = s;
      if (find_groups(sp, &sp->source[a], m) != RT_OK)
        return RT_FAIL;
    }
  }
  for (int g = 0; g < sp->ngroups; g++)
    if (group_alloc(&sp->group[g], m, p) != RT_OK)
      return RT_FAIL;
  for (int a = 0; a < nactive; a++)
    if (sp->source[a].src && source_args(sp, &sp->source[a], m, p, b) != RT_OK)
      return RT_FAIL;
  return RT_OK;
}

void rt_spec_free(RtSpec *sp) {
  for (int g = 0; g < sp->ngroups; g++)
    group_free(&sp->group[g]);
  for (int a = 0; sp->source && a < sp->nsources; a++) {
    RtSpecSource *ss = &sp->source[a];
    if (ss->dtheta)
      free_list(ss->dtheta, theta_count(sp->m, ss->src));
    free(ss->groups);
    free(ss->loss_args);
  }
  free(sp->group);
  free(sp->source);
  memset(sp, 0, sizeof *sp);
}

/* ---- a step ------------------------------------------------------------ */

static size_t numel(const lobe_model *m, int param) {
  return rt_param_numel(&m->params[param]);
}

void rt_spec_begin(RtSpec *sp) {
  for (int g = 0; g < sp->ngroups; g++) {
    RtGroup *gr = &sp->group[g];
    gr->reg->spec_f32(gr->spec_args);
    for (int k = 0; gr->users > 1 && k < gr->reg->nfolded; k++)
      memset(gr->dtheta[k], 0, numel(sp->m, gr->reg->folded[k]) * sizeof(float));
  }
}

/* The shared groups' sums of w * d theta'. */
static void add_shared_dtheta(RtSpec *sp, const RtSpecSource *ss, float w) {
  const lobe_source *s = ss->src;
  int at = 0;
  for (int i = 0; i < s->nspec_regions; i++) {
    RtGroup *gr = &sp->group[ss->groups[i]];
    for (int k = 0; k < gr->reg->nfolded; k++, at++)
      if (gr->users > 1)
        rt_axpy(gr->dtheta[k], ss->dtheta[at], w, numel(sp->m, gr->reg->folded[k]));
  }
}

void rt_spec_source(RtSpec *sp, int a, RtParams *p, float w) {
  const RtSpecSource *ss = &sp->source[a];
  const lobe_source *s = ss->src;
  s->loss_grad_spec_f32(ss->loss_args);
  rt_params_accumulate(p, s->spec_grad_params, s->nspec_grad, w);
  add_shared_dtheta(sp, ss, w);
}

void rt_spec_end(RtSpec *sp, RtParams *p) {
  for (int g = 0; g < sp->ngroups; g++) {
    RtGroup *gr = &sp->group[g];
    gr->reg->spec_vjp_f32(gr->vjp_args);
    for (int i = 0; i < gr->reg->nvjp; i++) {
      int k = gr->reg->vjp_params[i];
      rt_axpy(p->grad[k], gr->vjp_grad[i], gr->weight, p->numel[k]);
    }
  }
}
