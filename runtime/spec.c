/*
 * spec.c — training a source through its specialised entry points
 * (docs/specialisation.md): spec folds the source's constant (region,
 * subject) into theta' once per step, loss_grad_spec runs the batch without
 * ids, gathers or film, and spec_vjp maps d theta' back to the parameters.
 */
#include <stdlib.h>
#include <string.h>

#include "rt.h"

static float *alloc_like(const lobe_model *m, int param) {
  return calloc(rt_param_numel(&m->params[param]), sizeof(float));
}

static int alloc_buffers(RtSpec *sp, const lobe_model *m) {
  const lobe_source *s = sp->src;
  sp->theta = calloc((size_t)s->nfolded, sizeof *sp->theta);
  sp->vjp_grad = calloc((size_t)s->nvjp + 1, sizeof *sp->vjp_grad);
  if (!sp->theta || !sp->vjp_grad)
    return RT_FAIL;
  for (int k = 0; k < s->nfolded; k++)
    if (!(sp->theta[k] = alloc_like(m, s->folded[k])))
      return RT_FAIL;
  for (int k = 0; k < s->nvjp; k++)
    if (!(sp->vjp_grad[k] = alloc_like(m, s->vjp_params[k])))
      return RT_FAIL;
  return RT_OK;
}

/* params..., module[1], subject[1]: the head of spec's and spec_vjp's args. */
static void **ids_args(const lobe_model *m, RtSpec *sp, RtParams *p, size_t extra) {
  size_t np = (size_t)m->nparams;
  void **a = malloc((np + 2 + extra) * sizeof *a);
  if (!a)
    return NULL;
  for (size_t k = 0; k < np; k++)
    a[k] = p->value[k];
  a[np] = sp->module;
  a[np + 1] = sp->subject;
  return a;
}

static int spec_args(const lobe_model *m, RtSpec *sp, RtParams *p) {
  const lobe_source *s = sp->src;
  void **a = ids_args(m, sp, p, (size_t)s->nfolded);
  if (!a)
    return RT_FAIL;
  for (int k = 0; k < s->nfolded; k++)
    a[m->nparams + 2 + k] = sp->theta[k];
  sp->spec_args = a;
  return RT_OK;
}

/* loss_grad_spec's d theta'_k lands in the folded parameter's scratch, which
 * spec_vjp then reads; its own outputs go to buffers of their own. */
static int vjp_args(const lobe_model *m, RtSpec *sp, RtParams *p) {
  const lobe_source *s = sp->src;
  void **a = ids_args(m, sp, p, (size_t)s->nfolded + 1 + (size_t)s->nvjp);
  if (!a)
    return RT_FAIL;
  size_t at = (size_t)m->nparams + 2;
  for (int k = 0; k < s->nfolded; k++)
    a[at++] = p->scratch[s->folded[k]];
  a[at++] = &sp->pairing;
  for (int k = 0; k < s->nvjp; k++)
    a[at++] = sp->vjp_grad[k];
  sp->vjp_args = a;
  return RT_OK;
}

/* params' (theta'_k in place of params[folded[k]]), t, y, loss, gradients. */
static int loss_args(const lobe_model *m, RtSpec *sp, RtParams *p, RtBatch *b) {
  const lobe_source *s = sp->src;
  size_t np = (size_t)m->nparams;
  void **a = malloc((np + 3 + (size_t)s->nspec_grad) * sizeof *a);
  if (!a)
    return RT_FAIL;
  for (size_t k = 0; k < np; k++)
    a[k] = p->value[k];
  for (int k = 0; k < s->nfolded; k++)
    a[s->folded[k]] = sp->theta[k];
  a[np] = b->t;
  a[np + 1] = b->y;
  a[np + 2] = &b->loss;
  for (int k = 0; k < s->nspec_grad; k++)
    a[np + 3 + k] = p->scratch[s->spec_grad_params[k]];
  sp->loss_args = a;
  return RT_OK;
}

int rt_spec_alloc(RtSpec *sp, const lobe_model *m, const lobe_source *s, RtParams *p,
                  RtBatch *b) {
  memset(sp, 0, sizeof *sp);
  sp->src = s;
  sp->module[0] = s->region;
  sp->subject[0] = s->subject;
  if (alloc_buffers(sp, m) != RT_OK || spec_args(m, sp, p) != RT_OK ||
      vjp_args(m, sp, p) != RT_OK || loss_args(m, sp, p, b) != RT_OK)
    return RT_FAIL;
  return RT_OK;
}

void rt_spec_free(RtSpec *sp) {
  const lobe_source *s = sp->src;
  for (int k = 0; s && sp->theta && k < s->nfolded; k++)
    free(sp->theta[k]);
  for (int k = 0; s && sp->vjp_grad && k < s->nvjp; k++)
    free(sp->vjp_grad[k]);
  free(sp->theta);
  free(sp->vjp_grad);
  free(sp->spec_args);
  free(sp->loss_args);
  free(sp->vjp_args);
  memset(sp, 0, sizeof *sp);
}

void rt_spec_loss_grad(RtSpec *sp) {
  sp->src->spec_f32(sp->spec_args);
  sp->src->loss_grad_spec_f32(sp->loss_args);
  sp->src->spec_vjp_f32(sp->vjp_args);
}

static bool is_folded(const lobe_source *s, int param) {
  for (int k = 0; k < s->nfolded; k++)
    if (s->folded[k] == param)
      return true;
  return false;
}

static void axpy(float *restrict y, const float *restrict x, float a, size_t n) {
  for (size_t i = 0; i < n; i++)
    y[i] += a * x[i];
}

/* The params loss_grad_spec reaches directly, then those reached through theta'. */
void rt_spec_accumulate(const RtSpec *sp, RtParams *p, float w) {
  const lobe_source *s = sp->src;
  for (int i = 0; i < s->nspec_grad; i++) {
    int k = s->spec_grad_params[i];
    if (!is_folded(s, k))
      axpy(p->grad[k], p->scratch[k], w, p->numel[k]);
  }
  for (int i = 0; i < s->nvjp; i++) {
    int k = s->vjp_params[i];
    axpy(p->grad[k], sp->vjp_grad[i], w, p->numel[k]);
  }
}
