/*
 * train.c — `brain train`: Adam over random windows of every source with a
 * non-zero loss weight plus the model's prior once per step; checkpoints at
 * the end, every checkpoint_every steps and on SIGINT/SIGTERM. A source with
 * specialised entry points trains through them (spec.c: each (region,
 * subject) its windows read folded once per step), one without through
 * loss_grad; a model may mix both. An observation with a non-zero weight
 * adds its batch of windows, one loss_grad call each, weighted by
 * loss_weight / batch. The batch of step k is drawn from a stream keyed by
 * (seed, k, source or observation), so a resumed run repeats an
 * uninterrupted one exactly.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

typedef struct Trainer {
  const lobe_model *m;
  const RtOptions *o;
  RtState st;
  DataTable *tables;
  RtBatch batch;
  int *active;               /* sources with a non-zero loss weight */
  int nactive;
  void ***args;              /* loss_grad arguments per active source */
  RtSpec spec;               /* the specialised sources and their groups */
  int *obs_active;           /* observations with a non-zero loss weight */
  int nobs_active;
  RtObsWindow *obs_win;      /* per active observation */
  void **prior_args;         /* NULL: the model has no prior */
  float prior_loss;
  double *src_loss;          /* per active source, active observation, then the prior */
  int64_t total;
} Trainer;

/* ---- signals: the handler only records; the loop acts between steps --- */

static volatile sig_atomic_t pending_signal;

static void on_signal(int sig) { pending_signal = sig; }

typedef struct SavedSignals {
  struct sigaction old_int, old_term;
} SavedSignals;

static void catch_signals(SavedSignals *saved) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  pending_signal = 0;
  sigaction(SIGINT, &sa, &saved->old_int);
  sigaction(SIGTERM, &sa, &saved->old_term);
}

static void restore_signals(const SavedSignals *saved) {
  sigaction(SIGINT, &saved->old_int, NULL);
  sigaction(SIGTERM, &saved->old_term, NULL);
}

/* ---- setup ------------------------------------------------------------- */

static int start_state(Trainer *tr) {
  const RtOptions *o = tr->o;
  if (!o->resume) {
    if (rt_state_fresh(&tr->st, o->have_seed ? o->seed : tr->m->seed, tr->tables) == RT_OK)
      return RT_OK;
    rt_error("out of memory");
    return RT_FAIL;
  }
  int rc = rt_ckpt_load(&tr->st, o->ckpt_dir);
  if (rc == RT_NOCKPT)
    rt_error("no checkpoint at %s to resume from; run train without --resume first",
             o->ckpt_dir);
  if (rc == RT_OK && o->have_seed && o->seed != tr->st.seed)
    fprintf(stderr, "note: resuming with the checkpoint's seed %llu, not --seed %llu\n",
            (unsigned long long)tr->st.seed, (unsigned long long)o->seed);
  return rc == RT_OK ? RT_OK : RT_FAIL;
}

static int prepare_source(Trainer *tr, const lobe_source *src, int a) {
  RtParams *p = &tr->st.params;
  if (src->loss_grad_spec_f32)
    return RT_OK;
  tr->args[a] = rt_loss_grad_args(tr->m, src, p, &tr->batch);
  return tr->args[a] ? RT_OK : RT_FAIL;
}

static int find_active_observations(Trainer *tr) {
  const lobe_model *m = tr->m;
  tr->obs_active = calloc((size_t)m->nobservations + 1, sizeof *tr->obs_active);
  tr->obs_win = calloc((size_t)m->nobservations + 1, sizeof *tr->obs_win);
  if (!tr->obs_active || !tr->obs_win)
    return RT_FAIL;
  for (int k = 0; k < m->nobservations; k++)
    if (m->observations[k].loss_weight > 0) {
      int j = tr->nobs_active++;
      tr->obs_active[j] = k;
      if (rt_obs_window_alloc(&tr->obs_win[j], m, &m->observations[k], &tr->st.params,
                              tr->st.obs_stat[k]) != RT_OK)
        return RT_FAIL;
    }
  return RT_OK;
}

static int find_active(Trainer *tr) {
  const lobe_model *m = tr->m;
  tr->active = calloc((size_t)m->nsources + 1, sizeof *tr->active);
  tr->src_loss = calloc((size_t)rt_ntables(m) + 2, sizeof *tr->src_loss);
  tr->args = calloc((size_t)m->nsources + 1, sizeof *tr->args);
  if (!tr->active || !tr->src_loss || !tr->args ||
      rt_batch_alloc(&tr->batch, m) != RT_OK)
    return RT_FAIL;
  if (m->prior_f32 && !(tr->prior_args = rt_prior_args(m, &tr->st.params, &tr->prior_loss)))
    return RT_FAIL;
  for (int s = 0; s < m->nsources; s++)
    if (m->sources[s].loss_weight != 0) {
      int a = tr->nactive++;
      tr->active[a] = s;
      if (prepare_source(tr, &m->sources[s], a) != RT_OK)
        return RT_FAIL;
    }
  if (find_active_observations(tr) != RT_OK)
    return RT_FAIL;
  return rt_spec_alloc(&tr->spec, m, tr->active, tr->nactive, &tr->st.params, &tr->batch);
}

static int setup(Trainer *tr) {
  const lobe_model *m = tr->m;
  tr->tables = calloc((size_t)rt_ntables(m) + 1, sizeof *tr->tables);
  if (!tr->tables || rt_state_alloc(&tr->st, m) != RT_OK) {
    rt_error("out of memory");
    return RT_FAIL;
  }
  int rc = rt_tables_load(m, tr->o, tr->tables);
  if (rc == RT_OK)
    rc = start_state(tr);
  if (rc == RT_OK)
    rc = rt_ckpt_prepare(tr->o->ckpt_dir);
  if (rc != RT_OK)
    return rc;
  rt_state_standardise(&tr->st, tr->tables);
  if (find_active(tr) != RT_OK) {
    rt_error("out of memory");
    return RT_FAIL;
  }
  if (tr->nactive == 0 && tr->nobs_active == 0) {
    rt_error("no data source or observation has a non-zero loss weight: nothing to train");
    return RT_FAIL;
  }
  return RT_OK;
}

static void teardown(Trainer *tr) {
  for (int a = 0; tr->args && a < tr->nactive; a++)
    free(tr->args[a]);
  rt_spec_free(&tr->spec);
  for (int j = 0; tr->obs_win && j < tr->nobs_active; j++)
    rt_obs_window_free(&tr->obs_win[j]);
  free(tr->obs_win);
  free(tr->obs_active);
  free(tr->args);
  free(tr->prior_args);
  free(tr->active);
  free(tr->src_loss);
  rt_batch_free(&tr->batch);
  rt_tables_free(tr->m, tr->tables);
  rt_state_free(&tr->st);
}

/* ---- the loop ---------------------------------------------------------- */

static double sources_step(Trainer *tr, int64_t step) {
  RtParams *p = &tr->st.params;
  double loss = 0;
  rt_spec_begin(&tr->spec);
  for (int a = 0; a < tr->nactive; a++) {
    int s = tr->active[a];
    const lobe_source *src = &tr->m->sources[s];
    uint64_t stream = rt_rng_stream(tr->st.seed, RT_RNG_BATCH, (uint64_t)step, (uint64_t)s);
    rt_batch_draw(&tr->batch, src, &tr->tables[s], stream);
    if (src->loss_grad_spec_f32) {
      rt_spec_source(&tr->spec, a, p, (float)src->loss_weight);
    } else {
      src->loss_grad_f32(tr->args[a]);
      rt_params_accumulate(p, src->grad_params, src->ngrad, (float)src->loss_weight);
    }
    tr->src_loss[a] = tr->batch.loss;
    loss += src->loss_weight * tr->batch.loss;
  }
  rt_spec_end(&tr->spec, p);
  return loss;
}

/* Observation j's batch of windows: its mean loss. */
static double observation_step(Trainer *tr, int j, int64_t step) {
  int k = tr->obs_active[j];
  const lobe_observation *ob = &tr->m->observations[k];
  const DataTable *t = &tr->tables[tr->m->nsources + k];
  RtObsWindow *w = &tr->obs_win[j];
  uint64_t stream = rt_rng_stream(tr->st.seed, RT_RNG_OBS_BATCH, (uint64_t)step, (uint64_t)k);
  float weight = (float)(ob->loss_weight / ob->batch);
  double sum = 0;
  for (int b = 0; b < ob->batch; b++) {
    rt_obs_window_at(w, t, rt_obs_draw(ob, t, stream, (uint64_t)b));
    ob->loss_grad_f32(w->loss_args);
    rt_params_accumulate(&tr->st.params, ob->grad_params, ob->ngrad, weight);
    sum += w->loss;
  }
  return sum / ob->batch;
}

static double observations_step(Trainer *tr, int64_t step) {
  double loss = 0;
  for (int j = 0; j < tr->nobs_active; j++) {
    double mean = observation_step(tr, j, step);
    tr->src_loss[tr->nactive + j] = mean;
    loss += tr->m->observations[tr->obs_active[j]].loss_weight * mean;
  }
  return loss;
}

/* Regularisers count once per step, however many sources there are. */
static double prior_step(Trainer *tr) {
  const lobe_model *m = tr->m;
  if (!tr->prior_args)
    return 0;
  m->prior_f32(tr->prior_args);
  rt_params_accumulate(&tr->st.params, m->prior_grad_params, m->nprior_grad, 1);
  tr->src_loss[tr->nactive + tr->nobs_active] = tr->prior_loss;
  return tr->prior_loss;
}

static double train_step(Trainer *tr, int64_t step) {
  rt_params_zero_grad(&tr->st.params);
  double loss = sources_step(tr, step);
  loss += observations_step(tr, step);
  loss += prior_step(tr);
  rt_adam_step(&tr->st.params, tr->m, step + 1);
  return loss;
}

static int interrupted(Trainer *tr, RtProgress *pr) {
  int sig = pending_signal;
  rt_progress_end(pr);
  if (rt_ckpt_save(&tr->st, tr->o->ckpt_dir) != RT_OK)
    return RT_FAIL;
  rt_error("interrupted by %s at step %lld; checkpoint saved in %s (continue with --resume)",
           sig == SIGINT ? "SIGINT" : "SIGTERM", (long long)tr->st.step, tr->o->ckpt_dir);
  return 128 + sig;
}

static int64_t checkpoint_every(const Trainer *tr) {
  return tr->o->checkpoint_every >= 0 ? tr->o->checkpoint_every : tr->m->checkpoint_every;
}

static int run(Trainer *tr, RtProgress *pr) {
  RtState *st = &tr->st;
  int64_t every = checkpoint_every(tr);
  while (st->step < tr->total) {
    double loss = train_step(tr, st->step);
    if (!isfinite(loss)) {
      rt_progress_end(pr);
      rt_error("loss is %g at step %lld; stopping without a checkpoint (lower the learning "
               "rate?)", loss, (long long)st->step + 1);
      return RT_FAIL;
    }
    st->step++;
    rt_progress_step(pr, st->step, loss, tr->src_loss);
    if (pending_signal)
      return interrupted(tr, pr);
    if (every > 0 && st->step % every == 0 && st->step < tr->total &&
        rt_ckpt_save(st, tr->o->ckpt_dir) != RT_OK) {
      rt_progress_end(pr);
      return RT_FAIL;
    }
  }
  rt_progress_end(pr);
  if (rt_ckpt_save(st, tr->o->ckpt_dir) != RT_OK)
    return RT_FAIL;
  printf("trained steps=%lld loss=%.6g\n", (long long)st->step, pr->last_loss);
  return RT_OK;
}

static int train(Trainer *tr) {
  if (tr->st.step >= tr->total) {
    printf("checkpoint in %s is at step %lld, --steps is %lld: nothing to train\n",
           tr->o->ckpt_dir, (long long)tr->st.step, (long long)tr->total);
    return RT_OK;
  }
  RtProgress pr;
  if (rt_progress_begin(&pr, tr->m, tr->active, tr->nactive, tr->obs_active,
                        tr->nobs_active, tr->st.step, tr->total, tr->o->log_every) != RT_OK) {
    rt_progress_end(&pr);
    rt_error("out of memory");
    return RT_FAIL;
  }
  SavedSignals saved;
  catch_signals(&saved);
  int rc = run(tr, &pr);
  restore_signals(&saved);
  return rc;
}

int rt_cmd_train(const lobe_model *m, const RtOptions *o) {
  Trainer tr;
  memset(&tr, 0, sizeof tr);
  tr.m = m;
  tr.o = o;
  tr.total = o->steps > 0 ? o->steps : m->steps;
  int rc = setup(&tr);
  if (rc == RT_OK)
    rc = train(&tr);
  teardown(&tr);
  return rc;
}
