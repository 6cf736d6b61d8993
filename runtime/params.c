/*
 * params.c — the parameter store and Adam. One float array per parameter
 * and role, 64-byte aligned so that the update loop vectorises cleanly.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

enum { ROLES = 5 };

/* The per-parameter arrays of one role: value, grad, m, v or scratch. */
static float ***role(RtParams *p, int r) {
  float ***all[ROLES] = {&p->value, &p->grad, &p->m, &p->v, &p->scratch};
  return all[r];
}

static float *alloc_floats(size_t n) {
  size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
  float *p = aligned_alloc(64, bytes);
  if (p)
    memset(p, 0, bytes);
  return p;
}

/* On failure the store is left for rt_params_free. */
int rt_params_alloc(RtParams *p, const lobe_model *m) {
  memset(p, 0, sizeof *p);
  size_t slots = m->nparams ? (size_t)m->nparams : 1;
  p->numel = calloc(slots, sizeof *p->numel);
  int ok = p->numel != NULL;
  for (int r = 0; r < ROLES; r++)
    ok &= (*role(p, r) = calloc(slots, sizeof(float *))) != NULL;
  if (!ok)
    return RT_FAIL;
  p->n = m->nparams;
  for (int k = 0; k < p->n; k++) {
    p->numel[k] = rt_param_numel(&m->params[k]);
    for (int r = 0; r < ROLES; r++)
      if (!((*role(p, r))[k] = alloc_floats(p->numel[k])))
        return RT_FAIL;
  }
  return RT_OK;
}

void rt_params_free(RtParams *p) {
  for (int r = 0; r < ROLES; r++) {
    float **arrays = *role(p, r);
    for (int k = 0; arrays && k < p->n; k++)
      free(arrays[k]);
    free(arrays);
  }
  free(p->numel);
  memset(p, 0, sizeof *p);
}

/* Each parameter has its own stream, so adding one leaves the others as they were. */
void rt_params_init(RtParams *p, const lobe_model *m, uint64_t seed) {
  for (int k = 0; k < p->n; k++) {
    const lobe_param *d = &m->params[k];
    uint64_t stream = rt_rng_stream(seed, RT_RNG_INIT, (uint64_t)k, 0);
    float *w = p->value[k];
    for (size_t i = 0; i < p->numel[k]; i++) {
      double x = 0;
      if (d->init == LOBE_INIT_NORMAL)
        x = d->scale * rt_rng_normal(stream, i);
      else if (d->init == LOBE_INIT_UNIFORM)
        x = d->scale * (2 * rt_rng_uniform(stream, i) - 1);
      else if (d->init == LOBE_INIT_CONSTANT)
        x = d->scale;
      w[i] = (float)x;
    }
    memset(p->m[k], 0, p->numel[k] * sizeof(float));
    memset(p->v[k], 0, p->numel[k] * sizeof(float));
  }
}

void rt_params_zero_grad(RtParams *p) {
  for (int k = 0; k < p->n; k++)
    memset(p->grad[k], 0, p->numel[k] * sizeof(float));
}

void rt_axpy(float *restrict y, const float *restrict x, float a, size_t n) {
  for (size_t i = 0; i < n; i++)
    y[i] += a * x[i];
}

void rt_params_accumulate(RtParams *p, const int32_t *ids, int n, float w) {
  for (int i = 0; i < n; i++)
    rt_axpy(p->grad[ids[i]], p->scratch[ids[i]], w, p->numel[ids[i]]);
}

void **rt_prior_args(const lobe_model *m, RtParams *p, float *loss) {
  size_t np = (size_t)m->nparams;
  void **a = malloc((np + 1 + (size_t)m->nprior_grad) * sizeof *a);
  if (!a)
    return NULL;
  for (size_t k = 0; k < np; k++)
    a[k] = p->value[k];
  a[np] = loss;
  for (int k = 0; k < m->nprior_grad; k++)
    a[np + 1 + k] = p->scratch[m->prior_grad_params[k]];
  return a;
}

/* Vectorises with -O3 -fno-math-errno (errno keeps sqrtf a scalar call). */
static void adam_update(float *restrict w, const float *restrict g, float *restrict m,
                        float *restrict v, size_t n, float b1, float b2, float lr, float eps) {
  for (size_t i = 0; i < n; i++) {
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    w[i] -= lr * m[i] / (sqrtf(v[i]) + eps);
  }
}

/* Bias correction folded into the step size and epsilon (Kingma & Ba, 2.1). */
void rt_adam_step(RtParams *p, const lobe_model *m, int64_t t) {
  double c1 = 1 - pow(m->beta1, (double)t), c2 = 1 - pow(m->beta2, (double)t);
  float lr = (float)(m->lr * sqrt(c2) / c1), eps = (float)(m->eps * sqrt(c2));
  for (int k = 0; k < p->n; k++)
    adam_update(p->value[k], p->grad[k], p->m[k], p->v[k], p->numel[k], (float)m->beta1,
                (float)m->beta2, lr, eps);
}
