/*
 * gradcheck.c — `brain gradcheck`: the compiled f64 gradients against
 * central differences of the compiled f64 loss, on one batch of windows per
 * source and on the prior, for up to GC_PICKS entries of every parameter the
 * term has gradients for:
 *   rel = |g - fd| / max(|g| + |fd|, 1e-6 * max(1, |loss|)),  h = 1e-5 * max(1, |p|)
 * The loss is a sum of B*W*C rounded terms, so finite differences carry
 * noise of about sqrt(B*W*C) 1e-16 |loss| / h: h balances it against the
 * O(h^2) truncation, and the floor keeps entries whose gradient is ~0 from
 * being judged by that noise alone.
 * A source whose window reads the state before it (detached: no gradient
 * flows there) is differentiated by its loss_held_f64, which computes that
 * state from a held copy of the parameters that the differences leave alone.
 * A specialised source also has its merged specialised gradient (spec and
 * spec_vjp of every region of its window, loss_grad_spec, in f64) compared
 * with the checked one. Every observation with loss_grad_f64 is checked the
 * same way on one window (by loss_held_f64 when it has one).
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

enum { GC_PICKS = 30 };
static const double gc_tolerance = 1e-3;
/* The specialised gradient is the same sum in another order: rounding only. */
static const double gc_spec_tolerance = 1e-9;

typedef struct Checker {
  const lobe_model *m;
  RtState st;
  DataTable *tables;
  RtBatch batch;
  double **p64, **g64, **scratch64;   /* per parameter */
  double **held64;                    /* per parameter: p64 as loss_held holds it */
  double *t64, *y64, loss64;
  double base_loss;                   /* at the parameters: scales the noise floor */
  double *max_err;                    /* per parameter; -1 until checked */
  double spec_err;                    /* specialised against unspecialised; -1: none */
  double prior_err;                   /* the prior's entries; -1: no prior */
  double obs_err;                     /* the observations' entries; -1: none */
  void **args, **fd_args;             /* analytic and finite-difference calls */
} Checker;

/* A differentiable scalar: one source's loss on its batch, or the prior. */
typedef struct Term {
  lobe_fn fn;
  void **fd_args;                     /* the finite-difference call; gradients into scratch64 */
  const int32_t *ids;                 /* the parameters it has gradients for */
  int nids;
  uint64_t key;                       /* picks its entries: source index, or nsources */
} Term;

static void *alloc_doubles(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

static int alloc_buffers(Checker *c) {
  const lobe_model *m = c->m;
  size_t np = (size_t)m->nparams + 1, nargs = np + 5 + (size_t)m->nparams;
  c->p64 = calloc(np, sizeof *c->p64);
  c->g64 = calloc(np, sizeof *c->g64);
  c->scratch64 = calloc(np, sizeof *c->scratch64);
  c->held64 = calloc(np, sizeof *c->held64);
  c->max_err = alloc_doubles(np);
  c->args = calloc(nargs, sizeof *c->args);
  c->fd_args = calloc(nargs, sizeof *c->fd_args);
  c->t64 = alloc_doubles((size_t)m->batch);
  c->y64 = alloc_doubles((size_t)m->batch * (size_t)m->window * (size_t)rt_max_channels(m));
  if (!c->p64 || !c->g64 || !c->scratch64 || !c->held64 || !c->max_err || !c->args || !c->fd_args ||
      !c->t64 || !c->y64)
    return RT_FAIL;
  for (int k = 0; k < m->nparams; k++) {
    size_t n = c->st.params.numel[k];
    c->max_err[k] = -1;
    if (!(c->p64[k] = alloc_doubles(n)) || !(c->g64[k] = alloc_doubles(n)) ||
        !(c->scratch64[k] = alloc_doubles(n)) || !(c->held64[k] = alloc_doubles(n)))
      return RT_FAIL;
    for (size_t i = 0; i < n; i++)
      c->p64[k][i] = c->held64[k][i] = c->st.params.value[k][i];
  }
  return RT_OK;
}

static void free_buffers(Checker *c) {
  for (int k = 0; k < c->m->nparams; k++) {
    free(c->p64 ? c->p64[k] : NULL);
    free(c->g64 ? c->g64[k] : NULL);
    free(c->scratch64 ? c->scratch64[k] : NULL);
    free(c->held64 ? c->held64[k] : NULL);
  }
  free(c->p64);
  free(c->g64);
  free(c->scratch64);
  free(c->held64);
  free(c->max_err);
  free(c->args);
  free(c->fd_args);
  free(c->t64);
  free(c->y64);
}

/* ---- the specialised path ---------------------------------------------- */

/* theta'_{v,k} and d theta'_{v,k} for v in spec_regions (lobe_model.h),
 * the gradients of loss_grad_spec and of one spec_vjp, and the merge. */
typedef struct SpecBuffers {
  double **theta, **dtheta, **lg, **merged;
  double **vjp;                       /* one spec_vjp's, while it runs */
  int ntheta, nvjp;
  double loss, pairing;
  void **args;                        /* room for the longest call */
} SpecBuffers;

static bool alloc_into(double **list, const Checker *c, const int32_t *ids, int n) {
  for (int k = 0; k < n; k++)
    if (!(list[k] = alloc_doubles(c->st.params.numel[ids[k]])))
      return false;
  return true;
}

static void free_list(double **b, int n) {
  for (int k = 0; b && k < n; k++)
    free(b[k]);
  free(b);
}

static int max_vjp(const lobe_model *m, const lobe_source *s) {
  int n = 0;
  for (int i = 0; i < s->nspec_regions; i++)
    if (m->regions[s->spec_regions[i]].nvjp > n)
      n = m->regions[s->spec_regions[i]].nvjp;
  return n;
}

static bool spec_alloc(Checker *c, const lobe_source *s, SpecBuffers *b) {
  const lobe_model *m = c->m;
  int np = m->nparams, nv = max_vjp(m, s);
  for (int i = 0; i < s->nspec_regions; i++)
    b->ntheta += m->regions[s->spec_regions[i]].nfolded;
  b->theta = calloc((size_t)b->ntheta + 1, sizeof *b->theta);
  b->dtheta = calloc((size_t)b->ntheta + 1, sizeof *b->dtheta);
  b->lg = calloc((size_t)s->nspec_grad + 1, sizeof *b->lg);
  b->vjp = calloc((size_t)nv + 1, sizeof *b->vjp);
  b->merged = calloc((size_t)np + 1, sizeof *b->merged);
  b->args = calloc((size_t)np + 4 + 2 * (size_t)b->ntheta + (size_t)(s->nspec_grad + nv),
                   sizeof *b->args);
  if (!b->theta || !b->dtheta || !b->lg || !b->vjp || !b->merged || !b->args)
    return false;
  for (int i = 0, at = 0; i < s->nspec_regions; i++) {
    const lobe_region *r = &m->regions[s->spec_regions[i]];
    if (!alloc_into(b->theta + at, c, r->folded, r->nfolded) ||
        !alloc_into(b->dtheta + at, c, r->folded, r->nfolded))
      return false;
    at += r->nfolded;
  }
  for (int k = 0; k < np; k++)
    if (!(b->merged[k] = alloc_doubles(c->st.params.numel[k])))
      return false;
  b->nvjp = nv;
  return alloc_into(b->lg, c, s->spec_grad_params, s->nspec_grad);
}

static void spec_free(const Checker *c, const lobe_source *s, SpecBuffers *b) {
  free_list(b->theta, b->ntheta);
  free_list(b->dtheta, b->ntheta);
  free_list(b->lg, s->nspec_grad);
  free_list(b->vjp, b->nvjp);
  free_list(b->merged, c->m->nparams);
  free(b->args);
}

static void add_into(double *y, const double *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    y[i] += x[i];
}

/* params..., module[1], subject[1]: the head of spec's and spec_vjp's args. */
static void **ids_args(Checker *c, SpecBuffers *b, int32_t *ids) {
  size_t np = (size_t)c->m->nparams;
  for (size_t k = 0; k < np; k++)
    b->args[k] = c->p64[k];
  b->args[np] = ids;
  b->args[np + 1] = ids + 1;
  return b->args + np + 2;
}

/* theta' of every region of s's window, at (v, s's subject). */
static void run_specs(Checker *c, const lobe_source *s, SpecBuffers *b) {
  for (int i = 0, at = 0; i < s->nspec_regions; i++) {
    const lobe_region *r = &c->m->regions[s->spec_regions[i]];
    int32_t ids[2] = {s->spec_regions[i], s->subject};
    void **a = ids_args(c, b, ids);
    for (int k = 0; k < r->nfolded; k++)
      a[k] = b->theta[at + k];
    r->spec_f64(b->args);
    at += r->nfolded;
  }
}

static void run_loss_grad(Checker *c, const lobe_source *s, SpecBuffers *b) {
  size_t np = (size_t)c->m->nparams, at = np + 2;
  for (size_t k = 0; k < np; k++)
    b->args[k] = c->p64[k];
  b->args[np] = c->t64;
  b->args[np + 1] = c->y64;
  for (int k = 0; k < b->ntheta; k++)
    b->args[at++] = b->theta[k];
  b->args[at++] = &b->loss;
  for (int k = 0; k < s->nspec_grad; k++)
    b->args[at++] = b->lg[k];
  for (int k = 0; k < b->ntheta; k++)
    b->args[at++] = b->dtheta[k];
  s->loss_grad_spec_f64(b->args);
  for (int k = 0; k < s->nspec_grad; k++)
    add_into(b->merged[s->spec_grad_params[k]], b->lg[k],
             c->st.params.numel[s->spec_grad_params[k]]);
}

/* spec_vjp of region i's d theta', added to the merge. */
static bool run_vjp(Checker *c, const lobe_source *s, SpecBuffers *b, int i, int at) {
  const lobe_region *r = &c->m->regions[s->spec_regions[i]];
  int32_t ids[2] = {s->spec_regions[i], s->subject};
  void **a = ids_args(c, b, ids);
  for (int k = 0; k < r->nfolded; k++)
    a[k] = b->dtheta[at + k];
  a[r->nfolded] = &b->pairing;
  for (int k = 0; k < r->nvjp; k++)
    if (!(a[r->nfolded + 1 + k] = b->vjp[k] =
              alloc_doubles(c->st.params.numel[r->vjp_params[k]])))
      return false;
  r->spec_vjp_f64(b->args);
  for (int k = 0; k < r->nvjp; k++) {
    add_into(b->merged[r->vjp_params[k]], b->vjp[k], c->st.params.numel[r->vjp_params[k]]);
    free(b->vjp[k]);
    b->vjp[k] = NULL;
  }
  return true;
}

static bool run_spec(Checker *c, const lobe_source *s, SpecBuffers *b) {
  run_specs(c, s, b);
  run_loss_grad(c, s, b);
  for (int i = 0, at = 0; i < s->nspec_regions; i++) {
    if (!run_vjp(c, s, b, i, at))
      return false;
    at += c->m->regions[s->spec_regions[i]].nfolded;
  }
  return true;
}

/* Every entry of the merged gradient against g64, just computed for s. */
static int check_spec(Checker *c, const lobe_source *s) {
  SpecBuffers b = {0};
  if (!spec_alloc(c, s, &b) || !run_spec(c, s, &b)) {
    spec_free(c, s, &b);
    return RT_FAIL;
  }
  double err = fabs(b.loss - c->loss64) / fmax(fabs(c->loss64), 1e-300);
  for (int g = 0; g < s->ngrad; g++) {
    int k = s->grad_params[g];
    for (size_t i = 0; i < c->st.params.numel[k]; i++) {
      double want = c->g64[k][i], d = fabs(b.merged[k][i] - want);
      err = fmax(err, isnan(d) ? INFINITY : d / fmax(fabs(want), 1e-6));
    }
  }
  c->spec_err = fmax(c->spec_err, err);
  spec_free(c, s, &b);
  return RT_OK;
}

/* ---- one source -------------------------------------------------------- */

/* What a loss function reads after the parameters: t, module, subject, y. */
typedef struct Inputs {
  void *t, *module, *subject, *y;
} Inputs;

static void **fill_inputs(void **args, const Inputs *in, double *loss) {
  args[0] = in->t;
  args[1] = in->module;
  args[2] = in->subject;
  args[3] = in->y;
  args[4] = loss;
  return args + 5;
}

/* params, inputs, loss, gradients of ids: loss_grad_f64's layout. */
static void fill_args(Checker *c, const Inputs *in, const int32_t *ids, int n, void **args,
                      double **grads) {
  size_t np = (size_t)c->m->nparams;
  for (size_t k = 0; k < np; k++)
    args[k] = c->p64[k];
  void **g = fill_inputs(args + np, in, &c->loss64);
  for (int k = 0; k < n; k++)
    g[k] = grads[ids[k]];
}

/* params, held params, inputs, loss: loss_held_f64's layout. */
static void fill_held_args(Checker *c, const Inputs *in, void **args) {
  size_t np = (size_t)c->m->nparams;
  for (size_t k = 0; k < np; k++) {
    args[k] = c->p64[k];
    args[np + k] = c->held64[k];
  }
  fill_inputs(args + 2 * np, in, &c->loss64);
}

/* Windows' times in double: the same starts as the float batch. */
static void draw_batch(Checker *c, int s) {
  const lobe_source *src = &c->m->sources[s];
  uint64_t stream = rt_rng_stream(c->st.seed, RT_RNG_CHECK_BATCH, 0, (uint64_t)s);
  rt_batch_draw(&c->batch, src, &c->tables[s], stream);
  for (int i = 0; i < c->batch.size; i++)
    c->t64[i] = rt_row_time(src, c->batch.rows[i]);
  size_t n = (size_t)c->batch.size * (size_t)c->batch.window * (size_t)src->channels;
  for (size_t i = 0; i < n; i++)
    c->y64[i] = c->batch.y[i];
}

static double fd_loss(Checker *c, const Term *term, double *p, double value) {
  *p = value;
  term->fn(term->fd_args);
  return c->loss64;
}

static double rel_error(Checker *c, const Term *term, int k, size_t i) {
  double *p = &c->p64[k][i], orig = *p, h = 1e-5 * fmax(1, fabs(orig));
  double up = orig + h, down = orig - h;
  double fd = (fd_loss(c, term, p, up) - fd_loss(c, term, p, down)) / (up - down);
  *p = orig;
  double g = c->g64[k][i];
  return fabs(g - fd) / fmax(fabs(g) + fabs(fd), 1e-6 * fmax(1, fabs(c->base_loss)));
}

/* The largest error over the checked entries of parameter k; NaN is the worst. */
static double check_param(Checker *c, const Term *term, int k) {
  size_t n = c->st.params.numel[k], picks = n < GC_PICKS ? n : GC_PICKS;
  uint64_t stream = rt_rng_stream(c->st.seed, RT_RNG_CHECK_PICK, term->key, (uint64_t)k);
  double worst = 0;
  for (size_t j = 0; j < picks; j++) {
    size_t i = n <= GC_PICKS ? j : (size_t)rt_rng_below(stream, j, n);
    double err = rel_error(c, term, k, i);
    worst = isnan(err) ? INFINITY : fmax(worst, err);
  }
  c->max_err[k] = fmax(c->max_err[k], worst);
  return worst;
}

/* Checks the gradients the term has just computed; its worst error. */
static double check_term(Checker *c, const Term *term) {
  double worst = 0;
  c->base_loss = c->loss64;
  for (int k = 0; k < term->nids; k++)
    worst = fmax(worst, check_param(c, term, term->ids[k]));
  return worst;
}

static int check_source(Checker *c, int s) {
  const lobe_source *src = &c->m->sources[s];
  Term term = {src->loss_held_f64 ? src->loss_held_f64 : src->loss_grad_f64, c->fd_args,
               src->grad_params, src->ngrad, (uint64_t)s};
  Inputs in = {c->t64, c->batch.module, c->batch.subject, c->y64};
  draw_batch(c, s);
  fill_args(c, &in, src->grad_params, src->ngrad, c->args, c->g64);
  if (src->loss_held_f64)
    fill_held_args(c, &in, c->fd_args);
  else
    fill_args(c, &in, src->grad_params, src->ngrad, c->fd_args, c->scratch64);
  src->loss_grad_f64(c->args);
  if (src->loss_grad_spec_f64 && check_spec(c, src) != RT_OK) {
    rt_error("out of memory");
    return RT_FAIL;
  }
  check_term(c, &term);
  return RT_OK;
}

/* ---- one observation --------------------------------------------------- */

/* One window drawn for observation k, its targets in double. */
static void draw_window(Checker *c, int k, RtObsWindow *w, double *t64, double *y64) {
  const lobe_observation *ob = &c->m->observations[k];
  const DataTable *t = &c->tables[c->m->nsources + k];
  uint64_t stream = rt_rng_stream(c->st.seed, RT_RNG_CHECK_OBS, 0, (uint64_t)k);
  int64_t start = rt_obs_draw(ob, t, stream, 0);
  rt_obs_window_at(w, t, start);
  *t64 = rt_row_time(&ob->data, start);
  for (size_t i = 0; i < rt_obs_y_count(ob); i++)
    y64[i] = w->y[i];
}

static void check_window(Checker *c, int k, const Inputs *in) {
  const lobe_observation *ob = &c->m->observations[k];
  Term term = {ob->loss_held_f64 ? ob->loss_held_f64 : ob->loss_grad_f64, c->fd_args,
               ob->grad_params, ob->ngrad, (uint64_t)(c->m->nsources + 1 + k)};
  fill_args(c, in, ob->grad_params, ob->ngrad, c->args, c->g64);
  if (ob->loss_held_f64)
    fill_held_args(c, in, c->fd_args);
  else
    fill_args(c, in, ob->grad_params, ob->ngrad, c->fd_args, c->scratch64);
  ob->loss_grad_f64(c->args);
  c->obs_err = fmax(c->obs_err, check_term(c, &term));
}

static int check_observation(Checker *c, int k) {
  const lobe_observation *ob = &c->m->observations[k];
  RtObsWindow w = {0};
  double t64 = 0, *y64 = alloc_doubles(rt_obs_y_count(ob));
  int rc = y64 ? rt_obs_window_alloc(&w, c->m, ob, &c->st.params, c->st.obs_stat[k]) : RT_FAIL;
  if (rc == RT_OK) {
    draw_window(c, k, &w, &t64, y64);
    check_window(c, k, &(Inputs){&t64, w.module, w.subject, y64});
  } else {
    rt_error("out of memory");
  }
  rt_obs_window_free(&w);
  free(y64);
  return rc;
}

/* params, loss, gradients: the prior's layout (lobe_model.h). */
static void fill_prior_args(Checker *c, void **args, double **grads) {
  const lobe_model *m = c->m;
  for (int k = 0; k < m->nparams; k++)
    args[k] = c->p64[k];
  args[m->nparams] = &c->loss64;
  for (int k = 0; k < m->nprior_grad; k++)
    args[m->nparams + 1 + k] = grads[m->prior_grad_params[k]];
}

static void check_prior(Checker *c) {
  const lobe_model *m = c->m;
  Term term = {m->prior_f64, c->fd_args, m->prior_grad_params, m->nprior_grad,
               (uint64_t)m->nsources};
  fill_prior_args(c, c->args, c->g64);
  fill_prior_args(c, c->fd_args, c->scratch64);
  m->prior_f64(c->args);
  c->prior_err = check_term(c, &term);
}

/* ---- the command ------------------------------------------------------- */

static int report(const Checker *c) {
  const lobe_model *m = c->m;
  double worst = 0;
  int checked = 0, w = 5;
  for (int k = 0; k < m->nparams; k++)
    if ((int)strlen(m->params[k].name) > w)
      w = (int)strlen(m->params[k].name);
  printf("%-*s %12s %12s\n", w, "param", "shape", "max_rel_err");
  for (int k = 0; k < m->nparams; k++) {
    if (c->max_err[k] < 0)
      continue;
    char shape[32];
    snprintf(shape, sizeof shape, "%dx%d", m->params[k].rows, m->params[k].cols);
    printf("%-*s %12s %12.3g\n", w, m->params[k].name, shape, c->max_err[k]);
    worst = fmax(worst, c->max_err[k]);
    checked++;
  }
  if (c->prior_err >= 0)
    printf("prior: max_rel_err=%.3g (included above)\n", c->prior_err);
  if (c->obs_err >= 0)
    printf("observations: max_rel_err=%.3g (included above)\n", c->obs_err);
  if (c->spec_err >= 0)
    printf("specialised: max_rel_err=%.3g (against the gradient above)\n", c->spec_err);
  printf("gradcheck: max_rel_err=%.3g params=%d\n", worst, checked);
  return worst > gc_tolerance || c->spec_err > gc_spec_tolerance ? RT_FAIL : RT_OK;
}

static int start_state(Checker *c, const RtOptions *o) {
  int rc = rt_ckpt_load(&c->st, o->ckpt_dir);
  if (rc == RT_NOCKPT &&
      rt_state_fresh(&c->st, o->have_seed ? o->seed : c->m->seed, c->tables) != RT_OK) {
    rt_error("out of memory");
    return RT_FAIL;
  }
  return rc == RT_FAIL ? RT_FAIL : RT_OK;
}

static int setup(Checker *c, const RtOptions *o) {
  const lobe_model *m = c->m;
  c->tables = calloc((size_t)rt_ntables(m) + 1, sizeof *c->tables);
  if (!c->tables || rt_state_alloc(&c->st, m) != RT_OK || rt_batch_alloc(&c->batch, m) != RT_OK) {
    rt_error("out of memory");
    return RT_FAIL;
  }
  int rc = rt_tables_load(m, o, c->tables);
  if (rc != RT_OK || (rc = start_state(c, o)) != RT_OK)
    return rc;
  rt_state_standardise(&c->st, c->tables);
  if (alloc_buffers(c) != RT_OK) {
    rt_error("out of memory");
    return RT_FAIL;
  }
  return RT_OK;
}

int rt_cmd_gradcheck(const lobe_model *m, const RtOptions *o) {
  Checker c;
  memset(&c, 0, sizeof c);
  c.m = m;
  c.spec_err = c.prior_err = c.obs_err = -1;
  int rc = setup(&c, o), terms = 0;
  for (int s = 0; rc == RT_OK && s < m->nsources; s++)
    if (m->sources[s].loss_grad_f64) {
      rc = check_source(&c, s);
      terms++;
    }
  for (int k = 0; rc == RT_OK && k < m->nobservations; k++)
    if (m->observations[k].loss_grad_f64) {
      rc = check_observation(&c, k);
      terms++;
    }
  if (rc == RT_OK && m->prior_f64)
    check_prior(&c);
  if (rc == RT_OK && terms == 0 && !m->prior_f64) {
    rt_error("no data source or observation has an f64 loss function and there is no f64 "
             "prior: nothing to check");
    rc = RT_FAIL;
  }
  if (rc == RT_OK)
    rc = report(&c);
  free_buffers(&c);
  rt_batch_free(&c.batch);
  rt_tables_free(m, c.tables);
  rt_state_free(&c.st);
  return rc;
}
