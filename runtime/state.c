/*
 * state.c — the training state: parameters with their Adam moments, the
 * step, the seed and the per-channel standardisation of every source.
 * Nothing else influences training, so a checkpoint of this resumes exactly.
 */
#include <stdlib.h>
#include <string.h>

#include "rt.h"

int rt_state_alloc(RtState *st, const lobe_model *m) {
  memset(st, 0, sizeof *st);
  st->model = m;
  size_t n = m->nsources ? (size_t)m->nsources : 1;
  st->mean = calloc(n, sizeof *st->mean);
  st->std = calloc(n, sizeof *st->std);
  if (rt_params_alloc(&st->params, m) != RT_OK || !st->mean || !st->std)
    return RT_FAIL;
  for (int s = 0; s < m->nsources; s++) {
    st->mean[s] = calloc((size_t)m->sources[s].channels, sizeof(double));
    st->std[s] = calloc((size_t)m->sources[s].channels, sizeof(double));
    if (!st->mean[s] || !st->std[s])
      return RT_FAIL;
    for (int c = 0; c < m->sources[s].channels; c++)
      st->std[s][c] = 1;
  }
  return RT_OK;
}

void rt_state_free(RtState *st) {
  rt_params_free(&st->params);
  for (int s = 0; st->model && s < st->model->nsources; s++) {
    if (st->mean)
      free(st->mean[s]);
    if (st->std)
      free(st->std[s]);
  }
  free(st->mean);
  free(st->std);
  memset(st, 0, sizeof *st);
}

void rt_state_fresh(RtState *st, uint64_t seed, const DataTable *tables) {
  st->step = 0;
  st->seed = seed;
  rt_params_init(&st->params, st->model, seed);
  for (int s = 0; s < st->model->nsources; s++)
    rt_stats_compute(&st->model->sources[s], &tables[s], st->mean[s], st->std[s]);
}
