/*
 * state.c — the training state: parameters with their Adam moments, the
 * step, the seed, the per-channel standardisation of every source and the
 * target statistics of every observation. Nothing else influences training,
 * so a checkpoint of this resumes exactly.
 */
#include <stdlib.h>
#include <string.h>

#include "rt.h"

static int alloc_obs_stats(RtState *st, const lobe_model *m) {
  st->obs_stat = calloc((size_t)m->nobservations + 1, sizeof *st->obs_stat);
  if (!st->obs_stat)
    return RT_FAIL;
  for (int k = 0; k < m->nobservations; k++)
    if (!(st->obs_stat[k] = calloc(rt_obs_stat_count(&m->observations[k]), sizeof(double))))
      return RT_FAIL;
  return RT_OK;
}

int rt_state_alloc(RtState *st, const lobe_model *m) {
  memset(st, 0, sizeof *st);
  st->model = m;
  size_t n = m->nsources ? (size_t)m->nsources : 1;
  st->mean = calloc(n, sizeof *st->mean);
  st->std = calloc(n, sizeof *st->std);
  if (rt_params_alloc(&st->params, m) != RT_OK || !st->mean || !st->std ||
      alloc_obs_stats(st, m) != RT_OK)
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
  for (int k = 0; st->obs_stat && k < st->model->nobservations; k++)
    free(st->obs_stat[k]);
  free(st->mean);
  free(st->std);
  free(st->obs_stat);
  memset(st, 0, sizeof *st);
}

int rt_state_fresh(RtState *st, uint64_t seed, const DataTable *tables) {
  const lobe_model *m = st->model;
  st->step = 0;
  st->seed = seed;
  rt_params_init(&st->params, m, seed);
  for (int s = 0; s < m->nsources; s++)
    rt_stats_compute(&m->sources[s], &tables[s], st->mean[s], st->std[s]);
  for (int k = 0; k < m->nobservations; k++)
    if (rt_obs_stats_compute(&m->observations[k], &tables[m->nsources + k],
                             st->obs_stat[k]) != RT_OK)
      return RT_FAIL;
  return RT_OK;
}

void rt_state_standardise(const RtState *st, DataTable *tables) {
  const lobe_model *m = st->model;
  for (int s = 0; s < m->nsources; s++)
    rt_standardise(&tables[s], st->mean[s], st->std[s]);
  for (int k = 0; k < m->nobservations; k++)
    rt_obs_targets(&m->observations[k], &tables[m->nsources + k], st->obs_stat[k]);
}
