/*
 * lower.c — from the checked Model to the tensor IR.
 *
 * For every data source the model gets its entry points (ir.h, IrSourceFns):
 * the forward pass over one window of the region graph (docs/semantics.md)
 * through the source's readout head, and the source's loss with its gradient
 * (autodiff of the loss with respect to the parameters it reaches), and
 * when the window reads the state before it, loss_held for gradcheck
 * (ir.h); unless lowered without specialisation, every source also gets
 * loss_grad_spec, which evaluates each region of its window with that
 * region's (region, subject) folded into the weights, and the AUNNs of those
 * regions spec and spec_vjp, which fold and unfold them once per step
 * (docs/specialisation.md). One more function, the prior, holds the
 * edge priors and l2 terms. Every entry point takes all parameters, in
 * IrModule.params order, so the runtime passes one argument vector to all.
 *
 * Parameters of an AUNN named A:
 *   A.emb.module [regions, Em]   A.emb.subject [subjects, Es]   (normal 0,1; absent
 *                             when the size is 0: A is the same for all regions/subjects)
 *   A.fcL.w [in, out]  A.fcL.b [out]                             (uniform 1/sqrt(in))
 *   A.fc0.w_module [Em, out]  A.fc0.w_subject [Es, out]          (concat only: the
 *                             rows of fc0 that read the embeddings; fc0.w reads the encoding)
 *   A.fc0.w_input [input, out]                                   (the rows of fc0 that
 *                             read the region input u, when A has an input)
 *   A.filmL.w [Em+Es, 2*out]  A.filmL.b [2*out]                  (film only)
 *   A.latent.w [H, latent]  A.latent.b [latent]                  (when latent > 0)
 *   A.embed.w [latent or H, embed]  A.embed.b [embed]            (when embed > 0: from
 *                             the activity, so what a region sends is what its data pin down)
 * of each source S: head.S.w [in, channels], head.S.b [channels] (head.R:P.w/b,
 * shared, for the sources of region R that name probe P); and of all
 * edges their gates: gates [nedges] (constant 1), edge e's in element e.
 *
 * Windows are lowered with the W steps stacked as rows: a value over steps
 * [k0, k1) is [(k1 - k0) * B, n], step k's batch in rows (k - k0) * B ...
 * A region outside every cycle of the graph is evaluated for all steps at
 * once; the regions of a cycle (which runs through a delay) step by step,
 * sharing the first layer's product with the encoding.
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/lobe_model.h"
#include "ir.h"

typedef struct AunnParams {
  int emb_module, emb_subject;
  int w[MODEL_MAX_LAYERS], b[MODEL_MAX_LAYERS];
  int film_w[MODEL_MAX_LAYERS], film_b[MODEL_MAX_LAYERS];  /* film only */
  int w_module, w_subject;         /* concat only: fc0's embedding rows */
  int w_input;                     /* fc0's input rows, or -1 */
  int latent_w, latent_b;          /* -1 without a latent layer */
  int embed_w, embed_b;            /* -1 without an embedding */
  int width;                       /* features the readout heads see */
} AunnParams;

typedef struct Lowering {
  const Model *model;
  IrModule *mod;
  AunnParams *aunn;                /* per Model.aunns */
  int *head_w, *head_b;            /* per Model.sources */
  int *in_start, *in_edges;        /* edges into region v: in_edges[in_start[v]..in_start[v+1]) */
} Lowering;

static char *fmt_name(const char *fmt, const char *a, const char *b) {
  int n = snprintf(NULL, 0, fmt, a, b);
  char *s = ir_xcalloc(n + 1, 1);
  snprintf(s, n + 1, fmt, a, b);
  return s;
}

static int aunn_of(const Lowering *L, int region) { return L->model->regions[region].aunn; }

/* ---- parameters ------------------------------------------------------------ */

static int add_param(IrModule *mod, char *name, int rows, int cols, int init,
                     double scale) {
  mod->params = realloc(mod->params, (mod->nparams + 1) * sizeof *mod->params);
  mod->params[mod->nparams] = (IrParam){name, 2, rows, cols, init, scale};
  return mod->nparams++;
}

static int add_vector_param(IrModule *mod, char *name, int n, int init, double scale) {
  int p = add_param(mod, name, 1, n, init, scale);
  mod->params[p].rank = 1;
  return p;
}

/* A dense layer's weight and bias, initialised like torch.nn.Linear. */
static void add_dense(IrModule *mod, const char *prefix, const char *layer,
                      int in, int out, int *w, int *b) {
  double bound = 1.0 / sqrt(in);
  *w = add_param(mod, fmt_name("%s.%s.w", prefix, layer), in, out,
                 LOBE_INIT_UNIFORM, bound);
  *b = add_vector_param(mod, fmt_name("%s.%s.b", prefix, layer), out,
                        LOBE_INIT_UNIFORM, bound);
}

static int encoding_width(const AunnDef *a) {
  return a->encoding == ENC_BINARY ? a->bits : 2 * a->bands;
}

/* fc0 reads [encoding, e_module, e_subject] (concat), and the region input u
 * when the AUNN has one; its weight is kept as blocks of rows, one per part
 * (fc0.w holds the encoding's), so that each part can be treated apart. All
 * blocks share the bound of the whole layer's fan-in. */
static void declare_fc0_rows(IrModule *mod, const AunnDef *a, AunnParams *p) {
  bool concat = a->condition != COND_FILM;
  int fan_in = encoding_width(a) + a->input;
  if (concat)
    fan_in += a->module_dim + a->subject_dim;
  double bound = 1.0 / sqrt(fan_in);
  mod->params[p->w[0]].scale = mod->params[p->b[0]].scale = bound;
  int rows[3] = {concat ? a->module_dim : 0, concat ? a->subject_dim : 0, a->input};
  const char *names[3] = {"fc0.w_module", "fc0.w_subject", "fc0.w_input"};
  int *ids[3] = {&p->w_module, &p->w_subject, &p->w_input};
  for (int k = 0; k < 3; k++)
    *ids[k] = rows[k] > 0 ? add_param(mod, fmt_name("%s.%s", a->name, names[k]), rows[k],
                                      a->hidden[0], LOBE_INIT_UNIFORM, bound)
                          : -1;
}

/* The hidden layers; with film each has its map of the conditioning to
 * [gamma, beta]. Returns the width of the last. */
static int declare_hidden_params(IrModule *mod, const AunnDef *a, AunnParams *p) {
  int cond = a->module_dim + a->subject_dim;
  bool film = a->condition == COND_FILM;
  int in = encoding_width(a);
  for (int l = 0; l < a->nhidden; l++) {
    char layer[16];
    snprintf(layer, sizeof layer, "fc%d", l);
    add_dense(mod, a->name, layer, in, a->hidden[l], &p->w[l], &p->b[l]);
    if (l == 0)
      declare_fc0_rows(mod, a, p);
    if (film) {
      snprintf(layer, sizeof layer, "film%d", l);
      add_dense(mod, a->name, layer, cond, 2 * a->hidden[l], &p->film_w[l],
                &p->film_b[l]);
    }
    in = a->hidden[l];
  }
  return in;
}

static void declare_aunn_params(Lowering *L, int ai) {
  const AunnDef *a = &L->model->aunns[ai];
  AunnParams *p = &L->aunn[ai];
  IrModule *mod = L->mod;
  /* a size of 0: the AUNN does not depend on the region (or subject) */
  p->emb_module = a->module_dim > 0 ? add_param(mod, fmt_name("%s.%s", a->name, "emb.module"),
                                                L->model->nregions, a->module_dim,
                                                LOBE_INIT_NORMAL, 1.0)
                                    : -1;
  p->emb_subject = a->subject_dim > 0
                       ? add_param(mod, fmt_name("%s.%s", a->name, "emb.subject"),
                                   L->model->nsubjects, a->subject_dim, LOBE_INIT_NORMAL, 1.0)
                       : -1;
  int hidden = declare_hidden_params(mod, a, p);
  p->latent_w = p->latent_b = p->embed_w = p->embed_b = -1;
  p->width = hidden;
  if (a->latent > 0) {
    add_dense(mod, a->name, "latent", hidden, a->latent, &p->latent_w, &p->latent_b);
    p->width = a->latent;
  }
  if (a->embed > 0)
    add_dense(mod, a->name, "embed", p->width, a->embed, &p->embed_w, &p->embed_b);
}

/* The source with the same probe on the same region declared first, or -1. */
static int probe_owner(const Model *m, int s) {
  const Source *src = &m->sources[s];
  for (int k = 0; src->probe && k < s; k++)
    if (m->sources[k].probe && m->sources[k].region == src->region &&
        strcmp(m->sources[k].probe, src->probe) == 0)
      return k;
  return -1;
}

/* head.S.w/b, or head.REGION:PROBE.w/b shared by the sources of a probe. */
static void declare_head(Lowering *L, int s) {
  const Model *m = L->model;
  const Source *src = &m->sources[s];
  int owner = probe_owner(m, s);
  if (owner >= 0) {
    L->head_w[s] = L->head_w[owner];
    L->head_b[s] = L->head_b[owner];
    return;
  }
  int in = L->aunn[aunn_of(L, src->region)].width;
  char *name = src->probe ? fmt_name("%s:%s", m->regions[src->region].name, src->probe)
                          : fmt_name("%s%s", src->name, "");
  add_dense(L->mod, "head", name, in, src->channels, &L->head_w[s], &L->head_b[s]);
  free(name);
}

/* eeg: NAME.gain [1] (the lead field's units are arbitrary); bold: that and
 * NAME.offset [N] (each region's baseline). */
static void declare_observation(Lowering *L, int i) {
  const Observation *o = &L->model->observations[i];
  IrObsFns *fns = &L->mod->obs_fns[i];
  fns->gain = fns->offset = -1;
  if (o->kind == OBS_FC)
    return;
  fns->gain = add_vector_param(L->mod, fmt_name("%s.%s", o->name, "gain"), 1,
                               LOBE_INIT_CONSTANT, 1.0);
  if (o->kind == OBS_BOLD)
    fns->offset = add_vector_param(L->mod, fmt_name("%s.%s", o->name, "offset"),
                                   o->nregions, LOBE_INIT_ZEROS, 0.0);
}

static void declare_params(Lowering *L) {
  const Model *m = L->model;
  for (int ai = 0; ai < m->naunns; ai++)
    declare_aunn_params(L, ai);
  for (int s = 0; s < m->nsources; s++)
    declare_head(L, s);
  for (int o = 0; o < m->nobservations; o++)
    declare_observation(L, o);
  L->mod->gate_params = ir_xcalloc(m->nedges, sizeof *L->mod->gate_params);
  int gates = m->nedges > 0 ? add_vector_param(L->mod, fmt_name("%s%s", "gates", ""),
                                               m->nedges, LOBE_INIT_CONSTANT, 1.0)
                            : -1;
  for (int e = 0; e < m->nedges; e++)
    L->mod->gate_params[e] = gates;
}

/* ---- checking the graph ------------------------------------------------------ */
/* Sema guarantees all of this; a violation is a compiler bug, reported here
 * rather than as a malformed instruction deep in lowering. */

static bool fail_model(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static bool fail_model(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("lobe: internal error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return false;
}

static bool edge_ok(const Model *m, const Edge *e) {
  if (e->from < 0 || e->from >= m->nregions || e->to < 0 || e->to >= m->nregions)
    return fail_model("an edge names no region");
  const AunnDef *from = &m->aunns[m->regions[e->from].aunn];
  const AunnDef *to = &m->aunns[m->regions[e->to].aunn];
  if (from->embed <= 0 || from->embed != to->input || !(e->delay >= 0))
    return fail_model("edge %s -> %s: embedding widths or delay do not fit",
                      m->regions[e->from].name, m->regions[e->to].name);
  return true;
}

static bool model_ok(const Model *m) {
  if (m->train.window < 1 || m->train.batch < 1)
    return fail_model("window or batch below 1");
  for (int e = 0; e < m->nedges; e++)
    if (!edge_ok(m, &m->edges[e]))
      return false;
  return true;
}

/* in_edges lists the edges into each region, grouped by region. */
static void index_in_edges(Lowering *L) {
  const Model *m = L->model;
  L->in_start = ir_xcalloc(m->nregions + 1, sizeof *L->in_start);
  L->in_edges = ir_xcalloc(m->nedges, sizeof *L->in_edges);
  for (int e = 0; e < m->nedges; e++)
    L->in_start[m->edges[e].to + 1]++;
  for (int v = 0; v < m->nregions; v++)
    L->in_start[v + 1] += L->in_start[v];
  int *next = ir_xcalloc(m->nregions, sizeof *next);
  for (int e = 0; e < m->nedges; e++) {
    int v = m->edges[e].to;
    L->in_edges[L->in_start[v] + next[v]++] = e;
  }
  free(next);
}

#define FOR_IN_EDGES(L, v, e)                                                     \
  for (int e##_at = (L)->in_start[v], e = 0;                                      \
       e##_at < (L)->in_start[(v) + 1] && ((e = (L)->in_edges[e##_at]), 1); e##_at++)

/* Kahn's algorithm over the undelayed edges, from the regions that feed
 * none: every region gets removed unless some lie on a cycle. */
static bool undelayed_acyclic(const Lowering *L) {
  const Model *m = L->model;
  int *pending = ir_xcalloc(m->nregions, sizeof *pending);
  int *queue = ir_xcalloc(m->nregions, sizeof *queue), n = 0;
  for (int e = 0; e < m->nedges; e++)
    pending[m->edges[e].from] += m->edges[e].delay == 0;
  for (int v = 0; v < m->nregions; v++)
    if (pending[v] == 0)
      queue[n++] = v;
  for (int i = 0; i < n; i++)
    FOR_IN_EDGES(L, queue[i], e)
      if (m->edges[e].delay == 0 && --pending[m->edges[e].from] == 0)
        queue[n++] = m->edges[e].from;
  free(pending);
  free(queue);
  return n == m->nregions || fail_model("a cycle of edges without delay");
}

/* ---- the window of a source ---------------------------------------------------- */

/* Steps [lo, hi) before the window (hi <= 0) at which a region is read. */
typedef struct PreBlock {
  int region, lo, hi;
} PreBlock;

typedef struct Graph {
  int region;              /* the source's region r */
  int subject;             /* the source's subject: the edges' structural weights */
  int steps;               /* W */
  double rate;             /* the source's: a step is 1 / rate seconds */
  bool *reads;             /* per region: r depends on it (r included) */
  bool *cyclic;            /* per region: on a cycle of edges, so through a delay */
  int *component;          /* per region read: where its component starts in order */
  int *delay;              /* per edge: in steps; 0 within the step */
  int *order, norder;      /* the regions read, each strongly connected
                              component contiguous and after those it reads */
  PreBlock *pre;           /* sorted by region, then steps */
  int npre;
  int *pre_start;          /* region v's blocks: pre[pre_start[v]..pre_start[v+1]) */
} Graph;

/* d = max(1, round(delay * rate)) steps; bounded so that step arithmetic
 * stays in int for any delay. */
static int delay_steps(double delay, double rate) {
  if (delay <= 0)
    return 0;
  double d = round(delay * rate);
  return d < 1 ? 1 : d > INT_MAX / 4 ? INT_MAX / 4 : (int)d;
}

/* Tarjan's strongly connected components over the edges read backwards
 * (from a region to those it reads), from r: it visits exactly the regions
 * r depends on, and closes each component after the components it reads,
 * which is an evaluation order. */
typedef struct Tarjan {
  const Lowering *L;
  Graph *g;
  int *index, *low, *stack, nstack, counter;
  bool *on_stack;
} Tarjan;

static void close_component(Tarjan *t, int v, bool self_edge) {
  Graph *g = t->g;
  int start = g->norder, w;
  do {
    w = t->stack[--t->nstack];
    t->on_stack[w] = false;
    g->order[g->norder++] = w;
    g->component[w] = start;
  } while (w != v);
  for (int i = start; i < g->norder; i++)
    g->cyclic[g->order[i]] = g->norder - start > 1 || self_edge;
}

static void strong_connect(Tarjan *t, int v) {
  t->index[v] = t->low[v] = t->counter++;
  t->stack[t->nstack++] = v;
  t->on_stack[v] = true;
  bool self_edge = false;
  FOR_IN_EDGES(t->L, v, e) {
    int w = t->L->model->edges[e].from;
    self_edge = self_edge || w == v;
    if (t->index[w] < 0) {
      strong_connect(t, w);
      t->low[v] = t->low[w] < t->low[v] ? t->low[w] : t->low[v];
    } else if (t->on_stack[w] && t->index[w] < t->low[v]) {
      t->low[v] = t->index[w];
    }
  }
  if (t->low[v] == t->index[v])
    close_component(t, v, self_edge);
}

static void find_components(const Lowering *L, Graph *g) {
  int n = L->model->nregions;
  Tarjan t = {L, g, ir_xcalloc(n, sizeof(int)), ir_xcalloc(n, sizeof(int)),
              ir_xcalloc(n, sizeof(int)), 0, 0, ir_xcalloc(n, sizeof(bool))};
  for (int v = 0; v < n; v++)
    t.index[v] = -1;
  strong_connect(&t, g->region);
  for (int v = 0; v < n; v++)
    g->reads[v] = t.index[v] >= 0;
  free(t.index);
  free(t.low);
  free(t.stack);
  free(t.on_stack);
}

static int component_end(const Graph *g, int start) {
  int end = start;
  while (end < g->norder && g->component[g->order[end]] == start)
    end++;
  return end;
}

/* Are v's undelayed inputs from its own component all placed? */
static bool inputs_placed(const Lowering *L, const Graph *g, int v, const bool *placed) {
  FOR_IN_EDGES(L, v, e) {
    int w = L->model->edges[e].from;
    if (g->delay[e] == 0 && g->component[w] == g->component[v] && !placed[w])
      return false;
  }
  return true;
}

/* A cycle's regions in topological order of its undelayed edges, so that
 * each step evaluates a region after those it reads within the step. Every
 * sweep places one at least: the undelayed edges are acyclic (model_ok). */
static void order_component(const Lowering *L, Graph *g, int start, int end) {
  int n = end - start, done = 0;
  int *block = ir_xcalloc(n, sizeof *block);
  memcpy(block, g->order + start, n * sizeof *block);
  bool *placed = ir_xcalloc(L->model->nregions, sizeof *placed);
  while (done < n)
    for (int k = 0; k < n; k++)
      if (!placed[block[k]] && inputs_placed(L, g, block[k], placed)) {
        placed[block[k]] = true;
        g->order[start + done++] = block[k];
      }
  free(block);
  free(placed);
}

static int by_region_then_steps(const void *a, const void *b) {
  const PreBlock *x = a, *y = b;
  if (x->region != y->region)
    return x->region - y->region;
  return (x->lo > y->lo) - (x->lo < y->lo);
}

/* Edge e = (w -> x, d steps) reads w before the window at steps
 * [-d, min(0, W - d)); overlapping ranges of one region merge into blocks. */
static void find_pre_blocks(const Lowering *L, Graph *g) {
  const Model *m = L->model;
  g->pre = ir_xcalloc(m->nedges, sizeof *g->pre);
  int n = 0;
  for (int e = 0; e < m->nedges; e++) {
    int d = g->delay[e];
    if (d > 0 && g->reads[m->edges[e].to])
      g->pre[n++] = (PreBlock){m->edges[e].from, -d, d <= g->steps ? 0 : g->steps - d};
  }
  qsort(g->pre, n, sizeof *g->pre, by_region_then_steps);
  g->npre = 0;
  for (int i = 0; i < n; i++) {
    PreBlock *last = g->npre > 0 ? &g->pre[g->npre - 1] : NULL;
    if (last && last->region == g->pre[i].region && g->pre[i].lo <= last->hi)
      last->hi = g->pre[i].hi > last->hi ? g->pre[i].hi : last->hi;
    else
      g->pre[g->npre++] = g->pre[i];
  }
  g->pre_start = ir_xcalloc(m->nregions + 1, sizeof *g->pre_start);
  for (int i = 0; i < g->npre; i++)
    g->pre_start[g->pre[i].region + 1]++;
  for (int v = 0; v < m->nregions; v++)
    g->pre_start[v + 1] += g->pre_start[v];
}

static Graph graph_new(const Lowering *L, int s) {
  const Model *m = L->model;
  int n = m->nregions;
  Graph g = {.region = m->sources[s].region, .subject = m->sources[s].subject,
             .steps = m->train.window, .rate = m->sources[s].rate};
  g.reads = ir_xcalloc(n, sizeof *g.reads);
  g.cyclic = ir_xcalloc(n, sizeof *g.cyclic);
  g.component = ir_xcalloc(n, sizeof *g.component);
  g.order = ir_xcalloc(n, sizeof *g.order);
  g.delay = ir_xcalloc(m->nedges, sizeof *g.delay);
  for (int e = 0; e < m->nedges; e++)
    g.delay[e] = delay_steps(m->edges[e].delay, g.rate);
  find_components(L, &g);
  for (int i = 0; i < g.norder; i = component_end(&g, i))
    if (g.cyclic[g.order[i]])
      order_component(L, &g, i, component_end(&g, i));
  find_pre_blocks(L, &g);
  return g;
}

static void graph_free(Graph *g) {
  free(g->reads);
  free(g->cyclic);
  free(g->component);
  free(g->order);
  free(g->delay);
  free(g->pre);
  free(g->pre_start);
}

static bool has_input(const Lowering *L, int v) { return L->in_start[v] < L->in_start[v + 1]; }

/* ---- building one function ------------------------------------------------ */

/* What one region has computed so far in the function being built (-1: not
 * yet), so that no (region, step) value is computed twice. */
typedef struct RegionValues {
  int ids;                         /* its module ids i32[B] (other regions than r) */
  int film_c;                      /* film: [E_m[region], E_s[subject]] */
  int cond[2];                     /* concat: (E_m W0m)[region], (E_s W0s)[subject] */
  int scale[MODEL_MAX_LAYERS];     /* film: 1 + gamma_l */
  int shift[MODEL_MAX_LAYERS];     /* film: beta_l */
  int base;                        /* on a cycle: layer 0 without its input, all steps */
  int h_window, z_window;          /* last hidden layer, embedding: all steps */
  int *h_step, *z_step;            /* on a cycle: per step */
} RegionValues;

/* Values of steps [k0, k1) that depend on the steps and the AUNN alone, so
 * that the regions of one AUNN share them. */
typedef enum { CACHE_TIMES, CACHE_ENCODING, CACHE_LAYER0 } CacheKind;

typedef struct Cached {
  CacheKind kind;
  int aunn, k0, k1, value;   /* aunn: -1 for the times */
} Cached;

typedef struct Builder {
  const Lowering *L;
  const Graph *g;                  /* the window; NULL in spec functions */
  IrFunc *f;
  int *param;                      /* value id of each parameter input */
  int t, module, subject;          /* batch inputs (-1 where absent) */
  int batch;
  bool specialised;                /* conditioning folded into the params */
  int **view;                      /* loss_spec: per region read, the param values
                                      with its theta' in the folded slots */
  RegionValues *rv;                /* per region */
  int (*rows)[2];                  /* per AUNN, concat: E_m W0m, E_s W0s */
  int gate_column;                 /* the gates as a column [nedges, 1], or -1 */
  int *gate;                       /* per edge: its gate as a scalar */
  int *pre;                        /* per g->pre block: the detached embedding */
  Cached *cache;
  int ncache;
  struct Builder *state;           /* evaluates the state before the window: NULL
                                      for this one, else one reading held params */
} Builder;

static IrShape param_shape(const IrParam *p) {
  return p->rank == 1 ? IR_VEC(p->cols) : IR_MAT(p->rows, p->cols);
}

static IrShape shape_of(const Builder *b, int v) { return b->f->ins[v].shape; }

/* A function whose first inputs are the parameters. */
static Builder begin_params(const Lowering *L, const char *name) {
  Builder b = {.L = L, .t = -1, .module = -1, .subject = -1, .gate_column = -1};
  b.f = ir_func_new(name);
  b.batch = L->model->train.batch;
  b.param = ir_xcalloc(L->mod->nparams, sizeof *b.param);
  for (int i = 0; i < L->mod->nparams; i++)
    b.param[i] = ir_input(b.f, L->mod->params[i].name, TY_REAL,
                          param_shape(&L->mod->params[i]));
  return b;
}

static void add_ids(Builder *b, int n) {
  b->module = ir_input(b->f, "module", TY_I32, IR_VEC(n));
  b->subject = ir_input(b->f, "subject", TY_I32, IR_VEC(n));
}

static void fill(int *v, int n) {
  for (int i = 0; i < n; i++)
    v[i] = -1;
}

static RegionValues no_values(void) {
  RegionValues rv = {.ids = -1, .film_c = -1, .cond = {-1, -1}, .base = -1,
                     .h_window = -1, .z_window = -1};
  fill(rv.scale, MODEL_MAX_LAYERS);
  fill(rv.shift, MODEL_MAX_LAYERS);
  return rv;
}

/* The caches of one evaluation of the network (they depend on its params). */
static void begin_caches(Builder *b) {
  const Model *m = b->L->model;
  b->rv = ir_xcalloc(m->nregions, sizeof *b->rv);
  for (int v = 0; v < m->nregions; v++)
    b->rv[v] = no_values();
  b->rows = ir_xcalloc(m->naunns, sizeof *b->rows);
  for (int ai = 0; ai < m->naunns; ai++)
    fill(b->rows[ai], 2);
  b->gate_column = -1;
  b->gate = ir_xcalloc(m->nedges, sizeof *b->gate);
  fill(b->gate, m->nedges);
  b->pre = ir_xcalloc(b->g->npre, sizeof *b->pre);
  b->cache = NULL;
  b->ncache = 0;
}

/* The parameters once more, as inputs "held.NAME" after the params. */
static int *add_held_params(Builder *b) {
  const IrModule *mod = b->L->mod;
  int *held = ir_xcalloc(mod->nparams, sizeof *held);
  for (int i = 0; i < mod->nparams; i++) {
    char *name = fmt_name("%s.%s", "held", mod->params[i].name);
    held[i] = ir_input(b->f, name, TY_REAL, param_shape(&mod->params[i]));
    free(name);
  }
  return held;
}

/* kind.SOURCE over the window g: with `held`, the params once more; then t
 * and, unless specialised (the ids are then in the params), the ids. */
static Builder begin_window(const Lowering *L, const Graph *g, const char *kind, int s,
                            bool specialised, int **held) {
  char *name = fmt_name("%s.%s", kind, L->model->sources[s].name);
  Builder b = begin_params(L, name);
  free(name);
  if (held)
    *held = add_held_params(&b);
  b.t = ir_input(b.f, "t", TY_REAL, IR_VEC(b.batch));
  if (!specialised)
    add_ids(&b, b.batch);
  b.specialised = specialised;
  b.g = g;
  begin_caches(&b);
  return b;
}

/* A builder of the same function evaluating the network at the held params
 * (their own caches): the state before the window of loss_held. */
static Builder held_builder(const Builder *b, int *held) {
  Builder h = *b;
  h.param = held;
  begin_caches(&h);
  return h;
}


static IrFunc *finish(Builder *b) {
  for (int v = 0; b->rv && v < b->L->model->nregions; v++) {
    free(b->rv[v].h_step);
    free(b->rv[v].z_step);
  }
  for (int v = 0; b->view && v < b->L->model->nregions; v++)
    free(b->view[v]);
  free(b->view);
  free(b->rv);
  free(b->rows);
  free(b->gate);
  free(b->pre);
  free(b->cache);
  free(b->param);
  return b->f;
}

static int cached(const Builder *b, CacheKind kind, int aunn, int k0, int k1) {
  for (int i = 0; i < b->ncache; i++) {
    const Cached *c = &b->cache[i];
    if (c->kind == kind && c->aunn == aunn && c->k0 == k0 && c->k1 == k1)
      return c->value;
  }
  return -1;
}

static int remember(Builder *b, CacheKind kind, int aunn, int k0, int k1, int value) {
  b->cache = realloc(b->cache, (b->ncache + 1) * sizeof *b->cache);
  b->cache[b->ncache++] = (Cached){kind, aunn, k0, k1, value};
  return value;
}

/* n copies of x stacked as rows: one step's value for n steps. */
static int tile_rows(Builder *b, int x, int n) {
  if (n == 1)
    return x;
  int *parts = ir_xcalloc(n, sizeof *parts);
  for (int k = 0; k < n; k++)
    parts[k] = x;
  int tiled = ir_concat_rows(b->f, parts, n);
  free(parts);
  return tiled;
}

/* Rows [start, start + len) of x; x itself when that is all of it. */
static int rows_of(Builder *b, int x, int start, int len) {
  if (start == 0 && len == shape_of(b, x).dim[0])
    return x;
  return ir_slice_rows(b->f, x, start, len);
}

/* ---- time and encodings -------------------------------------------------------- */

/* The times of steps [k0, k1), stacked: step k's batch at t + k / rate. */
static int lower_times(Builder *b, int k0, int k1) {
  IrFunc *f = b->f;
  int n = k1 - k0, rows = b->batch;
  double rate = b->g->rate;
  if (n == 1)
    return k0 == 0 ? b->t : ir_binary(f, IR_ADD, b->t, ir_const(f, k0 / rate, IR_VEC(rows)));
  int column = ir_bcast(f, b->t, 1, IR_MAT(rows, 1));
  int *parts = ir_xcalloc(n, sizeof *parts);
  for (int k = k0; k < k1; k++)
    parts[k - k0] = k == 0 ? column
                           : ir_binary(f, IR_ADD, column, ir_const(f, k / rate, IR_MAT(rows, 1)));
  int times = ir_sum(f, ir_concat_rows(f, parts, n), 1);
  free(parts);
  return times;
}

/* The fastest rate of the sources and observations AUNN ai reads; 0 if it
 * reads none. */
static double fastest_rate(const Model *m, int ai) {
  double rate = 0;
  for (int s = 0; s < m->nsources; s++)
    if (m->regions[m->sources[s].region].aunn == ai && m->sources[s].rate > rate)
      rate = m->sources[s].rate;
  for (int o = 0; o < m->nobservations; o++)
    if (m->regions[m->observations[o].regions[0]].aunn == ai &&
        m->observations[o].data.rate > rate)
      rate = m->observations[o].data.rate;
  return rate;
}

/* Angular frequencies 2*pi*f_k, geometric from 1/max_period to 1/min_period.
 * Without a min_period the fastest band sits at the Nyquist period of the
 * fastest source the AUNN reads. */
static void fourier_frequencies(const Model *m, int ai, double *omega) {
  const AunnDef *a = &m->aunns[ai];
  double min_period = a->min_period;
  if (min_period <= 0) {
    double rate = fastest_rate(m, ai);
    min_period = rate > 0 ? 2.0 / rate : a->max_period / 1000.0;
  }
  double lo = 1.0 / a->max_period, hi = 1.0 / min_period;
  for (int k = 0; k < a->bands; k++) {
    double frac = a->bands > 1 ? (double)k / (a->bands - 1) : 0.0;
    omega[k] = 2.0 * M_PI * lo * pow(hi / lo, frac);
  }
}

/* [sin(t * omega), cos(t * omega)] of times t[n]: [n, 2*bands] */
static int lower_fourier(Builder *b, int ai, int t) {
  int bands = b->L->model->aunns[ai].bands;
  double *omega = ir_xcalloc(bands, sizeof *omega);
  fourier_frequencies(b->L->model, ai, omega);
  IrShape phase_shape = IR_MAT(shape_of(b, t).dim[0], bands);
  int w = ir_bcast(b->f, ir_tensor(b->f, omega, IR_VEC(bands)), 0, phase_shape);
  int tt = ir_bcast(b->f, t, 1, phase_shape);
  free(omega);
  int phase = ir_binary(b->f, IR_MUL, tt, w);
  int parts[2] = {ir_unary(b->f, IR_SIN, phase), ir_unary(b->f, IR_COS, phase)};
  return ir_concat(b->f, parts, 2);
}

/* The bits of the sample index n = round(t * rate), bit k in column k:
 *   bit_k(n) = step(-sin(pi (t * rate + 1/2) / 2^k)).
 * For integer n, (n + 1/2) / 2^k lies in (2j, 2j + 1) when bit k is 0 (the
 * sine is positive) and in (2j + 1, 2j + 2) when it is 1 (negative), at least
 * 1/2^(k+1) from a zero of the sine, so rounding t * rate by less than 1/2
 * changes no bit. In f32 the phase is exact to well within that margin for
 * n < 2^21 (the compiled sine reduces its argument in double); the
 * interpreter works in double. Without a rate, n counts the samples of the
 * fastest source the AUNN reads (it reads one: it is lowered for a source).
 * No gradient flows (STEP): the encoding depends on t alone. */
static int lower_binary(Builder *b, int ai, int t) {
  const AunnDef *a = &b->L->model->aunns[ai];
  double rate = a->rate > 0 ? a->rate : fastest_rate(b->L->model, ai);
  IrFunc *f = b->f;
  int rows = shape_of(b, t).dim[0];
  IrShape vec = IR_VEC(rows), phase_shape = IR_MAT(rows, a->bits);
  double *scale = ir_xcalloc(a->bits, sizeof *scale);
  for (int k = 0; k < a->bits; k++)
    scale[k] = M_PI / ldexp(1.0, k);
  int samples = ir_binary(f, IR_MUL, t, ir_const(f, rate, vec));
  int half = ir_binary(f, IR_ADD, samples, ir_const(f, 0.5, vec));
  int w = ir_bcast(f, ir_tensor(f, scale, IR_VEC(a->bits)), 0, phase_shape);
  free(scale);
  int phase = ir_binary(f, IR_MUL, ir_bcast(f, half, 1, phase_shape), w);
  return ir_unary(f, IR_STEP, ir_unary(f, IR_NEG, ir_unary(f, IR_SIN, phase)));
}

/* AUNN ai's encoding of steps [k0, k1); the regions of one AUNN share it. */
static int lower_encoding(Builder *b, int ai, int k0, int k1) {
  int x = cached(b, CACHE_ENCODING, ai, k0, k1);
  if (x >= 0)
    return x;
  int t = cached(b, CACHE_TIMES, -1, k0, k1);
  if (t < 0)
    t = remember(b, CACHE_TIMES, -1, k0, k1, lower_times(b, k0, k1));
  if (b->L->model->aunns[ai].encoding == ENC_BINARY)
    x = lower_binary(b, ai, t);
  else
    x = lower_fourier(b, ai, t);
  return remember(b, CACHE_ENCODING, ai, k0, k1, x);
}

/* ---- one region's network ----------------------------------------------------- */

/* Param k's value as region v reads it: its own theta' when specialised. */
static int region_param(const Builder *b, int v, int k) {
  return b->view && b->view[v] ? b->view[v][k] : b->param[k];
}

static int dense_values(Builder *b, int x, int w, int bias) {
  int y = ir_matmul(b->f, x, w, false, false);
  int bb = ir_bcast(b->f, bias, 0, b->f->ins[y].shape);
  return ir_binary(b->f, IR_ADD, y, bb);
}

static int lower_dense(Builder *b, int x, int w, int bias) {
  return dense_values(b, x, b->param[w], b->param[bias]);
}

/* A layer of region v's AUNN that spec may fold. */
static int region_dense(Builder *b, int v, int x, int w, int bias) {
  return dense_values(b, x, region_param(b, v, w), region_param(b, v, bias));
}

/* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the tanh approximation,
 * as h + h tanh(x (c1 + c2 x^2)) with h = x / 2. */
static int lower_gelu(Builder *b, int x) {
  IrFunc *f = b->f;
  IrShape shape = f->ins[x].shape;
  double c1 = sqrt(2.0 / M_PI), c2 = 0.044715 * c1;
  int x2 = ir_binary(f, IR_MUL, x, x);
  int poly = ir_binary(f, IR_ADD, ir_const(f, c1, shape),
                       ir_binary(f, IR_MUL, ir_const(f, c2, shape), x2));
  int th = ir_unary(f, IR_TANH, ir_binary(f, IR_MUL, x, poly));
  int h = ir_binary(f, IR_MUL, ir_const(f, 0.5, shape), x);
  return ir_binary(f, IR_ADD, h, ir_binary(f, IR_MUL, h, th));
}

static int lower_activation(Builder *b, Activation act, int x) {
  switch (act) {
  case ACT_SILU:
    return ir_binary(b->f, IR_MUL, x, ir_unary(b->f, IR_SIGMOID, x));
  case ACT_RELU:
    return ir_unary(b->f, IR_RELU, x);
  case ACT_TANH:
    return ir_unary(b->f, IR_TANH, x);
  case ACT_SIGMOID:
    return ir_unary(b->f, IR_SIGMOID, x);
  case ACT_SINE:
    return ir_unary(b->f, IR_SIN, x);
  case ACT_GELU:
    return lower_gelu(b, x);
  }
  abort();
}

/* [emb_module(module), emb_subject(subject)] per sample, leaving out a table
 * of size 0 (film has at least one). */
static int lower_embeddings(Builder *b, const AunnParams *p, int module) {
  int parts[2], n = 0;
  if (p->emb_module >= 0)
    parts[n++] = ir_gather(b->f, b->param[p->emb_module], module);
  if (p->emb_subject >= 0)
    parts[n++] = ir_gather(b->f, b->param[p->emb_subject], b->subject);
  return n == 1 ? parts[0] : ir_concat(b->f, parts, n);
}

/* The source's own region reads the module input; the others of its window
 * are constant. */
static int region_ids(Builder *b, int v) {
  if (v == b->g->region)
    return b->module;
  if (b->rv[v].ids < 0)
    b->rv[v].ids = ir_const_i32(b->f, v, IR_VEC(b->batch));
  return b->rv[v].ids;
}

static const AunnParams *region_params(const Builder *b, int v) {
  return &b->L->aunn[aunn_of(b->L, v)];
}

static int film_conditioning(Builder *b, int v) {
  if (b->rv[v].film_c < 0)
    b->rv[v].film_c = lower_embeddings(b, region_params(b, v), region_ids(b, v));
  return b->rv[v].film_c;
}

/* FiLM of layer l's pre-activation z over n steps: (1 + gamma) * z + beta,
 * with [gamma, beta] = c F + f from region v's conditioning c, computed once
 * per region; the 1 makes a zero map leave the layer unchanged, as in the
 * torch peer. */
static int lower_film(Builder *b, int v, int l, int z, int n) {
  IrFunc *f = b->f;
  RegionValues *rv = &b->rv[v];
  if (rv->scale[l] < 0) {
    const AunnParams *p = region_params(b, v);
    int width = shape_of(b, z).dim[1];
    int gamma_beta = lower_dense(b, film_conditioning(b, v), p->film_w[l], p->film_b[l]);
    int gamma = ir_slice(f, gamma_beta, 0, width);
    rv->shift[l] = ir_slice(f, gamma_beta, width, width);
    rv->scale[l] = ir_binary(f, IR_ADD, ir_const(f, 1.0, shape_of(b, gamma)), gamma);
  }
  int scaled = ir_binary(f, IR_MUL, tile_rows(b, rv->scale[l], n), z);
  return ir_binary(f, IR_ADD, scaled, tile_rows(b, rv->shift[l], n));
}

/* Concat conditioning's first layer, by blocks of rows:
 *   [x, E_m[module], E_s[subject]] W0 + b0
 *     = x W0x + (E_m W0m)[module] + (E_s W0s)[subject] + b0
 * Each table goes through the layer before the gather: [regions, H] and
 * [subjects, H] products (once per AUNN) instead of [B, H] ones, and no
 * gradient is formed for the encoding's columns, which have none to
 * receive. Term k of region v, once per region. */
static int concat_term(Builder *b, int v, int k) {
  RegionValues *rv = &b->rv[v];
  if (rv->cond[k] >= 0)
    return rv->cond[k];
  int ai = aunn_of(b->L, v);
  const AunnParams *p = &b->L->aunn[ai];
  if (b->rows[ai][k] < 0) {
    int table = k ? p->emb_subject : p->emb_module, w = k ? p->w_subject : p->w_module;
    b->rows[ai][k] = ir_matmul(b->f, b->param[table], b->param[w], false, false);
  }
  rv->cond[k] = ir_gather(b->f, b->rows[ai][k], k ? b->subject : region_ids(b, v));
  return rv->cond[k];
}

/* Layer 0's pre-activation over steps [k0, k1), without the region input
 * and before film: x W0 + b0 (the same for all regions of the AUNN), with
 * concat the conditioning added. Film's conditioning comes first: it does
 * not depend on the steps. */
static int first_layer(Builder *b, int v, int k0, int k1) {
  int ai = aunn_of(b->L, v);
  bool film = b->L->model->aunns[ai].condition == COND_FILM;
  const AunnParams *p = &b->L->aunn[ai];
  int x = lower_encoding(b, ai, k0, k1);
  if (film && !b->specialised)
    film_conditioning(b, v);
  int key = b->view ? b->L->model->naunns + v : ai;   /* folded: b0' is the region's */
  int z = cached(b, CACHE_LAYER0, key, k0, k1);
  if (z < 0)
    z = remember(b, CACHE_LAYER0, key, k0, k1, region_dense(b, v, x, p->w[0], p->b[0]));
  int tables[2] = {p->emb_module, p->emb_subject};
  for (int k = 0; k < 2 && !film && !b->specialised; k++)
    if (tables[k] >= 0)
      z = ir_binary(b->f, IR_ADD, z, tile_rows(b, concat_term(b, v, k), k1 - k0));
  return z;
}

/* u W_in: the region input u's rows of layer 0 */
static int input_term(Builder *b, int v, int u) {
  return ir_matmul(b->f, u, region_param(b, v, region_params(b, v)->w_input), false, false);
}

/* From layer 0's pre-activation z over n steps: film (unless specialised),
 * activation, the other layers; returns the last hidden layer. */
static int hidden_layers(Builder *b, int v, int z, int n) {
  const AunnDef *a = &b->L->model->aunns[aunn_of(b->L, v)];
  const AunnParams *p = region_params(b, v);
  bool film = a->condition == COND_FILM && !b->specialised;
  int x = z;
  for (int l = 0; l < a->nhidden; l++) {
    if (l > 0)
      z = region_dense(b, v, x, p->w[l], p->b[l]);
    if (film)
      z = lower_film(b, v, l, z, n);
    x = lower_activation(b, a->activation, z);
  }
  return x;
}

/* Region v's last hidden layer over steps [k0, k1) given its input u
 * ([n*B, input]; -1 for none). */
static int region_hidden(Builder *b, int v, int k0, int k1, int u) {
  int z = first_layer(b, v, k0, k1);
  if (u >= 0)
    z = ir_binary(b->f, IR_ADD, z, input_term(b, v, u));
  return hidden_layers(b, v, z, k1 - k0);
}

/* Region v's activity from its last hidden layer h: the latent layer, when
 * there is one, else h itself. */
static int lower_activity(Builder *b, int v, int h) {
  const AunnParams *p = region_params(b, v);
  return p->latent_w >= 0 ? lower_dense(b, h, p->latent_w, p->latent_b) : h;
}

/* What region v sends along its edges: a map of its activity (the latent
 * layer, when there is one), which the data of the region constrain, rather
 * than of hidden units that nothing but the targets' fit constrains. */
static int lower_embed(Builder *b, int v, int h) {
  const AunnParams *p = region_params(b, v);
  return lower_dense(b, lower_activity(b, v, h), p->embed_w, p->embed_b);
}

/* ---- the window: the graph over W steps ---------------------------------------- */

static void internal_error(const char *what) {
  fprintf(stderr, "lobe: internal error: %s\n", what);
  abort();
}

/* Rows of region w's detached embedding at steps [k0, k1) before the window. */
static int pre_rows(Builder *b, int w, int k0, int k1) {
  const Graph *g = b->g;
  for (int i = g->pre_start[w]; i < g->pre_start[w + 1]; i++)
    if (g->pre[i].lo <= k0 && k1 <= g->pre[i].hi)
      return rows_of(b, b->pre[i], (k0 - g->pre[i].lo) * b->batch, (k1 - k0) * b->batch);
  internal_error("a read before the window outside its blocks");
  return -1;
}

static int stack_steps(Builder *b, const int *steps) {
  return b->g->steps == 1 ? steps[0] : ir_concat_rows(b->f, steps, b->g->steps);
}

/* Region w's embedding over the window's steps. */
static int window_embedding(Builder *b, int w) {
  RegionValues *rv = &b->rv[w];
  if (rv->z_window < 0)   /* a cycle's: stack its steps */
    rv->z_window = stack_steps(b, rv->z_step);
  return rv->z_window;
}

/* Region w's embedding d steps earlier, for every step of the window. */
static int shifted(Builder *b, int w, int d) {
  int steps = b->g->steps;
  if (d == 0)
    return window_embedding(b, w);
  int parts[2] = {pre_rows(b, w, -d, d <= steps ? 0 : steps - d)};
  if (d >= steps)
    return parts[0];
  parts[1] = rows_of(b, window_embedding(b, w), 0, (steps - d) * b->batch);
  return ir_concat_rows(b->f, parts, 2);
}

/* Region w's embedding at step k of the window (k < 0: before it). */
static int step_embedding(Builder *b, int w, int k) {
  if (k < 0)
    return pre_rows(b, w, k, k + 1);
  if (b->g->cyclic[w])
    return b->rv[w].z_step[k];
  return rows_of(b, window_embedding(b, w), k * b->batch, b->batch);
}

/* Edge e's structural weight in `subject` (docs/semantics.md): 1 without
 * a structure. */
static double edge_weight(const Model *m, int e, int subject) {
  return m->edges[e].weight ? m->edges[e].weight[subject] : 1.0;
}

/* The gates parameter as a column: edge e's gate in row e. One parameter
 * for all edges keeps a connectome's thousands of gates one input and one
 * gather rather than thousands of scalar moves. */
static int gate_column(Builder *b) {
  if (b->gate_column < 0)
    b->gate_column = ir_bcast(b->f, b->param[b->L->mod->gate_params[0]], 1,
                              IR_MAT(b->L->model->nedges, 1));
  return b->gate_column;
}

/* gate_e w_e z, w_e the edge's structural weight in the window's subject */
static int gated(Builder *b, int e, int z) {
  if (b->gate[e] < 0) {
    b->gate[e] = ir_sum(b->f, ir_slice_rows(b->f, gate_column(b), e, 1), -1);
    double w = edge_weight(b->L->model, e, b->g->subject);
    if (w != 1.0)
      b->gate[e] = ir_binary(b->f, IR_MUL, b->gate[e], ir_const(b->f, w, IR_SCALAR));
  }
  return ir_binary(b->f, IR_MUL, ir_bcast(b->f, b->gate[e], -1, shape_of(b, z)), z);
}

static int add_term(Builder *b, int sum, int term) {
  return sum < 0 ? term : ir_binary(b->f, IR_ADD, sum, term);
}

/* u = sum over edges e into v of gate_e * z_from(t - d_e): over the whole
 * window, or at step j. */
static int window_input(Builder *b, int v) {
  int u = -1;
  FOR_IN_EDGES(b->L, v, e)
    u = add_term(b, u, gated(b, e, shifted(b, b->L->model->edges[e].from, b->g->delay[e])));
  return u;
}

static int step_input(Builder *b, int v, int j) {
  int u = -1;
  FOR_IN_EDGES(b->L, v, e) {
    int from = b->L->model->edges[e].from;
    u = add_term(b, u, gated(b, e, step_embedding(b, from, j - b->g->delay[e])));
  }
  return u;
}

/* Block i of steps before the window: its region without input, through
 * which no gradient flows. */
static void lower_pre(Builder *b, int i) {
  const PreBlock *pb = &b->g->pre[i];
  Builder *state = b->state ? b->state : b;
  int h = region_hidden(state, pb->region, pb->lo, pb->hi, -1);
  b->pre[i] = ir_unary(b->f, IR_DETACH, lower_embed(state, pb->region, h));
}

/* A region without input whose block i ends where the window starts: one
 * evaluation covers both, as u = 0 in either (unless the state before the
 * window reads other params). */
static void lower_joined(Builder *b, int v, int i) {
  const PreBlock *pb = &b->g->pre[i];
  int before = -pb->lo * b->batch;
  int z = lower_embed(b, v, region_hidden(b, v, pb->lo, b->g->steps, -1));
  b->pre[i] = ir_unary(b->f, IR_DETACH, ir_slice_rows(b->f, z, 0, before));
  b->rv[v].z_window = ir_slice_rows(b->f, z, before, b->g->steps * b->batch);
}

/* A region on no cycle: all steps at once. */
static void lower_acyclic(Builder *b, int v) {
  const Graph *g = b->g;
  int joined = -1;
  for (int i = g->pre_start[v]; i < g->pre_start[v + 1]; i++) {
    if (!has_input(b->L, v) && g->pre[i].hi == 0 && !b->state)
      joined = i;
    else
      lower_pre(b, i);
  }
  if (joined >= 0) {
    lower_joined(b, v, joined);
    return;
  }
  RegionValues *rv = &b->rv[v];
  rv->h_window = region_hidden(b, v, 0, g->steps, window_input(b, v));
  if (v != g->region)
    rv->z_window = lower_embed(b, v, rv->h_window);
}

static void lower_step(Builder *b, int v, int j) {
  RegionValues *rv = &b->rv[v];
  int z = rows_of(b, rv->base, j * b->batch, b->batch);
  z = ir_binary(b->f, IR_ADD, z, input_term(b, v, step_input(b, v, j)));
  rv->h_step[j] = hidden_layers(b, v, z, 1);
  rv->z_step[j] = lower_embed(b, v, rv->h_step[j]);
}

/* The regions of a cycle, order[start..end): step by step, each step in
 * topological order of the undelayed edges; layer 0's product with the
 * encoding does not depend on the input, so all steps share one. */
static void lower_cycle(Builder *b, int start, int end) {
  const Graph *g = b->g;
  for (int i = start; i < end; i++) {
    int v = g->order[i];
    for (int k = g->pre_start[v]; k < g->pre_start[v + 1]; k++)
      lower_pre(b, k);
    b->rv[v].base = first_layer(b, v, 0, g->steps);
    b->rv[v].h_step = ir_xcalloc(g->steps, sizeof(int));
    b->rv[v].z_step = ir_xcalloc(g->steps, sizeof(int));
  }
  for (int j = 0; j < g->steps; j++)
    for (int i = start; i < end; i++)
      lower_step(b, g->order[i], j);
}

/* Every region the source's region r reads, then r's activity over the
 * window: [W*B, width]. */
static int lower_window(Builder *b) {
  const Graph *g = b->g;
  for (int i = 0; i < g->norder; i = component_end(g, i)) {
    if (g->cyclic[g->order[i]])
      lower_cycle(b, i, component_end(g, i));
    else
      lower_acyclic(b, g->order[i]);
  }
  int r = g->region;
  int h = g->cyclic[r] ? stack_steps(b, b->rv[r].h_step) : b->rv[r].h_window;
  return lower_activity(b, r, h);
}

static int lower_readout(Builder *b, int s) {
  return lower_dense(b, lower_window(b), b->L->head_w[s], b->L->head_b[s]);
}

/* ---- losses and entry points -------------------------------------------------- */

/* y[B, W*C], step j in columns j*C.. -> [W*B, C], step j in rows j*B.. */
static int steps_to_rows(Builder *b, int y, int channels) {
  int steps = b->g->steps;
  if (steps == 1)
    return y;
  int *parts = ir_xcalloc(steps, sizeof *parts);
  for (int j = 0; j < steps; j++)
    parts[j] = ir_slice(b->f, y, j * channels, channels);
  int rows = ir_concat_rows(b->f, parts, steps);
  free(parts);
  return rows;
}

/* the converse, for forward's output */
static int rows_to_steps(Builder *b, int out) {
  int steps = b->g->steps;
  if (steps == 1)
    return out;
  int *parts = ir_xcalloc(steps, sizeof *parts);
  for (int j = 0; j < steps; j++)
    parts[j] = ir_slice_rows(b->f, out, j * b->batch, b->batch);
  int cols = ir_concat(b->f, parts, steps);
  free(parts);
  return cols;
}

static int mean_all(Builder *b, int x) {
  int total = ir_sum(b->f, x, -1);
  return ir_binary(b->f, IR_MUL, total,
                   ir_const(b->f, 1.0 / (double)ir_numel(shape_of(b, x)), IR_SCALAR));
}

/* mean((out - y)^2) over the batch, steps and channels */
static int lower_mse(Builder *b, int out, int y) {
  int d = ir_binary(b->f, IR_SUB, out, y);
  return mean_all(b, ir_binary(b->f, IR_MUL, d, d));
}

/* mean(exp(out) - y * out): the Poisson negative log-likelihood of counts y
 * at log rate out, without the log(y!) that does not depend on the model */
static int lower_poisson(Builder *b, int out, int y) {
  int rate = ir_unary(b->f, IR_EXP, out);
  return mean_all(b, ir_binary(b->f, IR_SUB, rate, ir_binary(b->f, IR_MUL, y, out)));
}

/* A source's loss kind: that of the first term naming it. */
static LossKind source_loss(const Model *m, int s) {
  for (int l = 0; l < m->nlosses; l++)
    if (m->losses[l].source == s && m->losses[l].kind != LOSS_L2)
      return m->losses[l].kind;
  return LOSS_MSE;
}

static IrFunc *lower_forward(const Lowering *L, const Graph *g, int s) {
  Builder b = begin_window(L, g, "forward", s, false, NULL);
  ir_output(b.f, rows_to_steps(&b, lower_readout(&b, s)));
  return finish(&b);
}

/* The source's loss (ir.h); specialised; or held: the state before the
 * window computed from a second set of params, held still by gradcheck's
 * finite differences, which then see what loss_grad differentiates. */
typedef enum { LOSS_PLAIN, LOSS_SPECIALISED, LOSS_HELD } LossForm;

/* loss_spec's theta'_{v,k} inputs, for every region v of the window in
 * index order (ir.h), and v's view of the params with them in place. */
static void add_theta_inputs(Builder *b) {
  const Lowering *L = b->L;
  int nregions = L->model->nregions;
  b->view = ir_xcalloc(nregions, sizeof *b->view);
  for (int v = 0; v < nregions; v++) {
    if (!b->g->reads[v])
      continue;
    const IrAunnSpec *as = &L->mod->aunn_spec[aunn_of(L, v)];
    b->view[v] = ir_xcalloc(L->mod->nparams, sizeof *b->view[v]);
    memcpy(b->view[v], b->param, L->mod->nparams * sizeof *b->param);
    for (int k = 0; k < as->nfolded; k++) {
      const IrParam *p = &L->mod->params[as->folded[k]];
      char *name = fmt_name("%s:%s", L->model->regions[v].name, p->name);
      b->view[v][as->folded[k]] = ir_input(b->f, name, TY_REAL, param_shape(p));
      free(name);
    }
  }
}

static IrFunc *lower_loss(const Lowering *L, const Graph *g, int s, LossForm form) {
  static const char *const kinds[] = {"loss", "loss_spec", "loss_held"};
  const Source *src = &L->model->sources[s];
  int *held = NULL;
  Builder b = begin_window(L, g, kinds[form], s, form == LOSS_SPECIALISED,
                           form == LOSS_HELD ? &held : NULL);
  Builder state;
  if (held) {
    state = held_builder(&b, held);
    b.state = &state;
  }
  int y = ir_input(b.f, "y", TY_REAL, IR_MAT(b.batch, g->steps * src->channels));
  if (form == LOSS_SPECIALISED)
    add_theta_inputs(&b);
  int out = lower_readout(&b, s);
  y = steps_to_rows(&b, y, src->channels);
  bool poisson = source_loss(L->model, s) == LOSS_POISSON;
  ir_output(b.f, poisson ? lower_poisson(&b, out, y) : lower_mse(&b, out, y));
  if (held)
    finish(&state);
  return finish(&b);
}

/* The parameters with a differentiable path to output 0 of f (not through
 * step or detach), in id order: what its gradient is taken with respect
 * to. Parameters are inputs 0..nparams-1. */
static int reached_params(const IrFunc *f, int nparams, int *out) {
  bool *reached = ir_xcalloc(f->nins, sizeof *reached);
  reached[f->outputs[0]] = true;
  for (int v = f->nins - 1; v >= 0; v--) {
    const IrInstr *in = &f->ins[v];
    for (int k = 0; reached[v] && in->op != IR_STEP && in->op != IR_DETACH && k < in->nargs;
         k++)
      reached[in->args[k]] = true;
  }
  bool *param = ir_xcalloc(nparams, sizeof *param);
  for (int v = 0; v < f->nins; v++)
    if (f->ins[v].op == IR_INPUT && f->ins[v].index < nparams && reached[v])
      param[f->ins[v].index] = true;
  int n = 0;
  for (int p = 0; p < nparams; p++)
    if (param[p])
      out[n++] = p;
  free(reached);
  free(param);
  return n;
}

/* The gradient of loss with respect to the params listed, named kind.OWNER
 * (kind alone without an owner). */
static int add_grad(Lowering *L, IrFunc *loss, const int *wrt, int n, const char *kind,
                    const char *owner) {
  char *name = owner ? fmt_name("%s.%s", kind, owner) : fmt_name("%s%s", kind, "");
  IrFunc *grad = ad_grad(loss, wrt, n, name);
  free(name);
  ir_func_free(loss);
  return ir_module_add(L->mod, grad);
}

/* ---- specialisation (docs/specialisation.md) ------------------------------ */

/* What spec replaces by theta': concat fc0.b; film every hidden layer's w,
 * b and layer 0's input rows (film scales them too). */
static int folded_params(const Lowering *L, int ai, int *out) {
  const AunnDef *a = &L->model->aunns[ai];
  const AunnParams *p = &L->aunn[ai];
  if (a->condition != COND_FILM) {
    out[0] = p->b[0];
    return 1;
  }
  int n = 0;
  for (int l = 0; l < a->nhidden; l++) {
    out[n++] = p->w[l];
    out[n++] = p->b[l];
    if (l == 0 && p->w_input >= 0)
      out[n++] = p->w_input;
  }
  return n;
}

/* Row 0 of a [1, n] value as a vector [n]. */
static int row_vector(IrFunc *f, int row) { return ir_sum(f, row, 0); }

/* b0' = b0 + E_m[r] W0m + E_s[s] W0s: the first layer's concat terms for
 * the one (region, subject), added to the bias once. */
static void spec_concat(Builder *b, const AunnParams *p, int *theta) {
  IrFunc *f = b->f;
  int tables[2][3] = {{p->emb_module, p->w_module, b->module},
                      {p->emb_subject, p->w_subject, b->subject}};
  int bias = b->param[p->b[0]];
  for (int k = 0; k < 2; k++) {
    if (tables[k][0] < 0)
      continue;                    /* a size of 0: no term */
    int e = ir_gather(f, b->param[tables[k][0]], tables[k][2]);
    int row = ir_matmul(f, e, b->param[tables[k][1]], false, false);
    bias = ir_binary(f, IR_ADD, bias, row_vector(f, row));
  }
  theta[0] = bias;
}

/* W diag(scale): W's columns scaled. */
static int scale_columns(Builder *b, int param, int scale) {
  IrShape shape = b->f->ins[b->param[param]].shape;
  return ir_binary(b->f, IR_MUL, b->param[param], ir_bcast(b->f, scale, 0, shape));
}

/* (1 + g) * (h W + u W_in + b) + beta = h W' + u W_in' + b' with
 * [g, beta] constant for one (region, subject): W' and W_in' scale the
 * columns by 1 + g, b' = (1 + g) * b + beta. Returns the tensors made. */
static int spec_film_layer(Builder *b, const AunnParams *p, int l, int c, int *theta) {
  IrFunc *f = b->f;
  int width = f->ins[b->param[p->b[l]]].shape.dim[0];
  int gamma_beta = lower_dense(b, c, p->film_w[l], p->film_b[l]);
  int gamma = row_vector(f, ir_slice(f, gamma_beta, 0, width));
  int beta = row_vector(f, ir_slice(f, gamma_beta, width, width));
  int scale = ir_binary(f, IR_ADD, ir_const(f, 1.0, IR_VEC(width)), gamma);
  theta[0] = scale_columns(b, p->w[l], scale);
  theta[1] = ir_binary(f, IR_ADD, ir_binary(f, IR_MUL, scale, b->param[p->b[l]]), beta);
  if (l > 0 || p->w_input < 0)
    return 2;
  theta[2] = scale_columns(b, p->w_input, scale);
  return 3;
}

/* theta' of AUNN ai (in folded_params order) from the params and the ids. */
static int spec_body(const Lowering *L, Builder *b, int ai, int *theta) {
  const AunnDef *a = &L->model->aunns[ai];
  const AunnParams *p = &L->aunn[ai];
  if (a->condition != COND_FILM) {
    spec_concat(b, p, theta);
    return 1;
  }
  int c = lower_embeddings(b, p, b->module), n = 0;
  for (int l = 0; l < a->nhidden; l++)
    n += spec_film_layer(b, p, l, c, theta + n);
  return n;
}

/* A function kind.A of the parameters and the ids of one (region, subject). */
static Builder begin_spec(const Lowering *L, const char *kind, int ai) {
  char *name = fmt_name("%s.%s", kind, L->model->aunns[ai].name);
  Builder b = begin_params(L, name);
  free(name);
  add_ids(&b, 1);
  return b;
}

static IrFunc *lower_spec(const Lowering *L, int ai, int *theta) {
  Builder b = begin_spec(L, "spec", ai);
  int n = spec_body(L, &b, ai, theta);
  for (int k = 0; k < n; k++)
    ir_output(b.f, theta[k]);
  return finish(&b);
}

/* sum_k <d theta'_k, theta'_k>: its gradient with respect to the params is
 * the vector-Jacobian product of spec with d theta'. */
static IrFunc *lower_spec_pairing(const Lowering *L, int ai, const IrAunnSpec *as,
                                  int *theta) {
  Builder b = begin_spec(L, "spec_pairing", ai);
  int *d = ir_xcalloc(as->nfolded, sizeof *d);
  for (int k = 0; k < as->nfolded; k++) {
    const IrParam *p = &L->mod->params[as->folded[k]];
    char *name = fmt_name("%s.%s", "d", p->name);
    d[k] = ir_input(b.f, name, TY_REAL, param_shape(p));
    free(name);
  }
  spec_body(L, &b, ai, theta);
  int total = -1;
  for (int k = 0; k < as->nfolded; k++)
    total = add_term(&b, total, ir_sum(b.f, ir_binary(b.f, IR_MUL, d[k], theta[k]), -1));
  free(d);
  ir_output(b.f, total);
  return finish(&b);
}

/* spec and spec_vjp of AUNN ai, once: they depend on the AUNN only (the
 * ids are their inputs), so all its regions share them. */
static void lower_aunn_spec(Lowering *L, int ai) {
  IrAunnSpec *as = &L->mod->aunn_spec[ai];
  if (as->spec >= 0)
    return;
  int np = L->mod->nparams;
  int *theta = ir_xcalloc(np, sizeof *theta);
  as->folded = ir_xcalloc(np, sizeof *as->folded);
  as->nfolded = folded_params(L, ai, as->folded);
  as->spec = ir_module_add(L->mod, lower_spec(L, ai, theta));
  IrFunc *pairing = lower_spec_pairing(L, ai, as, theta);
  as->vjp_params = ir_xcalloc(np, sizeof *as->vjp_params);
  as->nvjp = reached_params(pairing, np, as->vjp_params);
  as->spec_vjp = add_grad(L, pairing, as->vjp_params, as->nvjp, "spec_vjp",
                          L->model->aunns[ai].name);
  free(theta);
}

/* The source's own AUNN's spec in its row (ir.h). */
static void copy_aunn_spec(IrSourceFns *fns, const IrAunnSpec *as) {
  fns->spec = as->spec;
  fns->spec_vjp = as->spec_vjp;
  fns->nfolded = as->nfolded;
  memcpy(fns->folded, as->folded, as->nfolded * sizeof *fns->folded);
  fns->nvjp = as->nvjp;
  memcpy(fns->vjp_params, as->vjp_params, as->nvjp * sizeof *fns->vjp_params);
}

/* loss_grad_spec: d loss / d the params it reads, then / d theta'_{v,k}
 * (its inputs after params, t and y). */
static void lower_source_spec(Lowering *L, const Graph *g, int s) {
  IrSourceFns *fns = &L->mod->source_fns[s];
  int np = L->mod->nparams, nwrt = 0;
  for (int v = 0; v < L->model->nregions; v++)
    if (g->reads[v]) {
      lower_aunn_spec(L, aunn_of(L, v));
      fns->spec_regions[fns->nspec_regions++] = v;
      nwrt += L->mod->aunn_spec[aunn_of(L, v)].nfolded;
    }
  copy_aunn_spec(fns, &L->mod->aunn_spec[aunn_of(L, g->region)]);
  IrFunc *loss = lower_loss(L, g, s, LOSS_SPECIALISED);
  fns->nspec_grad = reached_params(loss, np, fns->spec_grad_params);
  int *wrt = ir_xcalloc(fns->nspec_grad + nwrt, sizeof *wrt);
  memcpy(wrt, fns->spec_grad_params, fns->nspec_grad * sizeof *wrt);
  for (int k = 0; k < nwrt; k++)
    wrt[fns->nspec_grad + k] = np + 2 + k;
  fns->loss_grad_spec = add_grad(L, loss, wrt, fns->nspec_grad + nwrt, "loss_grad_spec",
                                 L->model->sources[s].name);
  free(wrt);
}

/* ---- export: one step of a region, for `brain export` ------------------- */

enum { EXPORT_BATCH = 64 };   /* rows per kernel call; the wrapper pads the last */

/* out[EB, C] = head(activity(t, u)) of source s's region with the params'
 * of spec: no ids, no window, u an input when the region has in-edges. */
static IrFunc *lower_export(const Lowering *L, const Graph *g, int s) {
  char *name = fmt_name("%s.%s", "export", L->model->sources[s].name);
  Builder b = begin_params(L, name);
  free(name);
  b.batch = EXPORT_BATCH;
  b.t = ir_input(b.f, "t", TY_REAL, IR_VEC(b.batch));
  int v = g->region, u = -1;
  if (has_input(L, v)) {
    const IrParam *w_in = &L->mod->params[region_params(&b, v)->w_input];
    u = ir_input(b.f, "u", TY_REAL, IR_MAT(b.batch, w_in->rows));
  }
  b.specialised = true;
  b.g = g;
  begin_caches(&b);
  int a = lower_activity(&b, v, region_hidden(&b, v, 0, 1, u));
  ir_output(b.f, lower_dense(&b, a, L->head_w[s], L->head_b[s]));
  return finish(&b);
}

/* When folding theta' is exact for the source's region: film scales the
 * input's rows too, which spec does not fold, so film needs a region
 * without in-edges; and spec must exist for the AUNN (some source of it
 * is specialised). */
static void lower_source_export(Lowering *L, int s) {
  IrSourceFns *fns = &L->mod->source_fns[s];
  int region = L->model->sources[s].region;
  const AunnDef *a = &L->model->aunns[aunn_of(L, region)];
  const IrAunnSpec *as = &L->mod->aunn_spec[aunn_of(L, region)];
  if (as->spec < 0 || (a->condition == COND_FILM && has_input(L, region)))
    return;
  Graph g = graph_new(L, s);
  fns->export_fn = lower_export(L, &g, s);
  graph_free(&g);
  fns->export_spec = as->spec;
  fns->nexport_folded = as->nfolded;
  memcpy(fns->export_folded, as->folded, as->nfolded * sizeof *fns->export_folded);
}

/* ---- the prior -------------------------------------------------------------- */

/* The weight matrices of AUNN ai (not biases, not embedding tables). */
static int weight_matrices(const Lowering *L, int ai, int *out) {
  const AunnDef *a = &L->model->aunns[ai];
  const AunnParams *p = &L->aunn[ai];
  int n = 0;
  for (int l = 0; l < a->nhidden; l++) {
    out[n++] = p->w[l];
    if (a->condition == COND_FILM)
      out[n++] = p->film_w[l];
  }
  int more[5] = {p->w_module, p->w_subject, p->w_input, p->latent_w, p->embed_w};
  for (int k = 0; k < 5; k++)
    if (more[k] >= 0)
      out[n++] = more[k];
  return n;
}

static int sum_of_squares(Builder *b, int ai) {
  int w[2 * MODEL_MAX_LAYERS + 5];
  int n = weight_matrices(b->L, ai, w), total = -1;
  for (int k = 0; k < n; k++) {
    int x = b->param[w[k]];
    total = add_term(b, total, ir_sum(b->f, ir_binary(b->f, IR_MUL, x, x), -1));
  }
  return total;
}

static int weighted(Builder *b, double weight, int x) {
  return ir_binary(b->f, IR_MUL, ir_const(b->f, weight, IR_SCALAR), x);
}

/* sum over edges of (l1 + distance * length) * |gate| plus, per l2 term,
 * its weight times the sum of squares of its AUNN's weight matrices; NULL
 * when there is no such term. */
static IrFunc *lower_prior(const Lowering *L) {
  const Model *m = L->model;
  Builder b = begin_params(L, "prior");
  int total = -1;
  double *cost = ir_xcalloc(m->nedges, sizeof *cost);
  bool any = false;
  for (int e = 0; e < m->nedges; e++) {
    cost[e] = m->edges[e].l1 + m->edges[e].distance * m->edges[e].length;
    any |= cost[e] > 0;
  }
  if (any) {
    int gates = ir_unary(b.f, IR_ABS, b.param[L->mod->gate_params[0]]);
    int costs = ir_tensor(b.f, cost, IR_VEC(m->nedges));
    total = ir_sum(b.f, ir_binary(b.f, IR_MUL, costs, gates), -1);
  }
  free(cost);
  for (int l = 0; l < m->nlosses; l++) {
    const LossTerm *t = &m->losses[l];
    if (t->kind == LOSS_L2 && t->aunn >= 0 && t->aunn < m->naunns && t->weight != 0)
      total = add_term(&b, total, weighted(&b, t->weight, sum_of_squares(&b, t->aunn)));
  }
  if (total >= 0)
    ir_output(b.f, total);
  IrFunc *f = finish(&b);
  if (total >= 0)
    return f;
  ir_func_free(f);
  return NULL;
}

static void lower_model_prior(Lowering *L) {
  IrFunc *prior = lower_prior(L);
  if (!prior)
    return;
  IrModule *mod = L->mod;
  mod->prior_params = ir_xcalloc(mod->nparams, sizeof *mod->prior_params);
  mod->nprior = reached_params(prior, mod->nparams, mod->prior_params);
  mod->prior = add_grad(L, prior, mod->prior_params, mod->nprior, "prior", NULL);
}

/* ---- observations (docs/observations.md) ------------------------------------ */

/* An observation evaluates its N regions, all of one AUNN, as the N rows of
 * one batch (module[i] = regions[i]), so that one evaluation of the network
 * per step covers them all. The edges among them act per delay d (in steps):
 *   U_k = sum_d scatter_add_to(gate_e * gather_from(Z_{k-d}))
 * Z_k [N, embed] being what the regions send at step k: each edge reads the
 * row of its source and adds, scaled by its gate, into the row of its target.
 * Steps before the window (k < 0) are evaluated without input and detached,
 * as a source's are (docs/semantics.md): the delays and the haemodynamics
 * read them. */
typedef struct DelayClass {
  int steps;
  int *edges, nedges;
} DelayClass;

typedef struct ObsWindow {
  const Observation *o;
  Graph g;                 /* region: the first observed, standing for all; steps; rate */
  int before;              /* steps evaluated before the window */
  int *local;              /* per model region: its row, or -1 if not observed */
  DelayClass *classes;
  int nclasses;
} ObsWindow;

static int observed_aunn(const Lowering *L, const Observation *o) {
  return aunn_of(L, o->regions[0]);
}

static void add_to_class(ObsWindow *w, int steps, int e) {
  int c = 0;
  while (c < w->nclasses && w->classes[c].steps != steps)
    c++;
  if (c == w->nclasses) {
    w->classes = realloc(w->classes, (c + 1) * sizeof *w->classes);
    w->classes[w->nclasses++] = (DelayClass){.steps = steps};
  }
  DelayClass *dc = &w->classes[c];
  dc->edges = realloc(dc->edges, (dc->nedges + 1) * sizeof *dc->edges);
  dc->edges[dc->nedges++] = e;
}

/* The steps of history the haemodynamics read: the HRF's support. */
static int haemo_steps(const Observation *o) {
  return o->kind == OBS_EEG ? 0 : (int)floor(obs_hrf_span() * o->data.rate);
}

/* Sema guarantees that every edge into an observed region comes from one,
 * through a delay. */
static bool obs_window_new(const Lowering *L, const Observation *o, ObsWindow *w) {
  const Model *m = L->model;
  *w = (ObsWindow){.o = o, .g = {.region = o->regions[0], .subject = o->subject,
                                 .steps = o->window, .rate = o->data.rate}};
  w->local = ir_xcalloc(m->nregions, sizeof *w->local);
  fill(w->local, m->nregions);
  for (int i = 0; i < o->nregions; i++)
    w->local[o->regions[i]] = i;
  w->before = haemo_steps(o);
  for (int i = 0; i < o->nregions; i++)
    FOR_IN_EDGES(L, o->regions[i], e) {
      int d = delay_steps(m->edges[e].delay, o->data.rate);
      if (w->local[m->edges[e].from] < 0 || d == 0)
        return fail_model("observation %s: edge %s -> %s leaves its regions or has no delay",
                          o->name, m->regions[m->edges[e].from].name, m->regions[o->regions[i]].name);
      add_to_class(w, d, e);
      if (d > w->before)
        w->before = d;
    }
  return true;
}

static void obs_window_free(ObsWindow *w) {
  for (int c = 0; c < w->nclasses; c++)
    free(w->classes[c].edges);
  free(w->classes);
  free(w->local);
}

/* What an observation function evaluates: its network values by step. */
typedef struct ObsValues {
  int pre_act;             /* activity before the window, detached: [K*N, 1] */
  int pre_z;               /* the embedding there, detached, when there are edges */
  int *z_step;             /* per window step: [N, embed] */
  int *gates, *from, *to;  /* per delay class: gates [E_d, embed], row indices */
} ObsValues;

/* The gates of class c, times the subject's structural weights, spread over
 * the embedding's columns; and the rows its edges read and write. */
static void class_gates(Builder *b, const ObsWindow *w, int c, ObsValues *v) {
  const DelayClass *dc = &w->classes[c];
  const Model *m = b->L->model;
  int n = dc->nedges, embed = m->aunns[observed_aunn(b->L, w->o)].embed;
  int *from = ir_xcalloc(n, sizeof *from), *to = ir_xcalloc(n, sizeof *to);
  double *weight = ir_xcalloc(n, sizeof *weight);
  for (int i = 0; i < n; i++) {
    const Edge *e = &m->edges[dc->edges[i]];
    from[i] = w->local[e->from];
    to[i] = w->local[e->to];
    weight[i] = edge_weight(m, dc->edges[i], w->o->subject);
  }
  int rows = ir_gather(b->f, gate_column(b), ir_tensor_i32(b->f, dc->edges, IR_VEC(n)));
  int g = ir_binary(b->f, IR_MUL, ir_sum(b->f, rows, 1), ir_tensor(b->f, weight, IR_VEC(n)));
  v->gates[c] = ir_bcast(b->f, g, 1, IR_MAT(n, embed));
  v->from[c] = ir_tensor_i32(b->f, from, IR_VEC(n));
  v->to[c] = ir_tensor_i32(b->f, to, IR_VEC(n));
  free(from);
  free(to);
  free(weight);
}

/* Z at step k of the window (k < 0: before it). */
static int obs_embedding(Builder *b, const ObsWindow *w, const ObsValues *v, int k) {
  int n = w->o->nregions;
  return k < 0 ? ir_slice_rows(b->f, v->pre_z, (k + w->before) * n, n) : v->z_step[k];
}

/* U_k: what the regions receive at window step k. */
static int obs_input(Builder *b, const ObsWindow *w, const ObsValues *v, int k) {
  int u = -1;
  for (int c = 0; c < w->nclasses; c++) {
    int z = obs_embedding(b, w, v, k - w->classes[c].steps);
    int sent = ir_binary(b->f, IR_MUL, ir_gather(b->f, z, v->from[c]), v->gates[c]);
    u = add_term(b, u, ir_scatter_add(b->f, sent, v->to[c], w->o->nregions));
  }
  return u;
}

/* A region's activity is column 0 of lower_activity: its first latent unit
 * (first hidden unit without a latent layer). [rows, 1] of hidden rows h. */
static int activity_column(Builder *b, int h) {
  return ir_slice(b->f, lower_activity(b, b->g->region, h), 0, 1);
}

/* The steps before the window, input-free and detached, from `state`'s
 * params (the held ones in loss_held). */
static void obs_before(Builder *b, Builder *state, const ObsWindow *w, ObsValues *v) {
  int rep = w->g.region;
  v->pre_act = v->pre_z = -1;
  if (w->before == 0)
    return;
  int h = region_hidden(state, rep, -w->before, 0, -1);
  v->pre_act = ir_unary(b->f, IR_DETACH, activity_column(state, h));
  if (w->nclasses > 0)
    v->pre_z = ir_unary(b->f, IR_DETACH, lower_embed(state, rep, h));
}

/* The activity act [steps*N, 1] (steps stacked, N rows each) as a signal
 * [steps, N]. */
static int obs_signal(Builder *b, int act, int steps) {
  int n = b->batch;
  int *rows = ir_xcalloc(steps, sizeof *rows);
  for (int k = 0; k < steps; k++) {
    int column = ir_sum(b->f, rows_of(b, act, k * n, n), 1);
    rows[k] = ir_bcast(b->f, column, 0, IR_MAT(1, n));
  }
  int signal = steps == 1 ? rows[0] : ir_concat_rows(b->f, rows, steps);
  free(rows);
  return signal;
}

/* The window's last hidden layer, step by step when the regions read each
 * other, else all steps at once: [T*N, H]. */
static int obs_window_hidden(Builder *b, const ObsWindow *w, ObsValues *v) {
  int rep = w->g.region, steps = w->g.steps, n = w->o->nregions;
  if (w->nclasses == 0)
    return region_hidden(b, rep, 0, steps, -1);
  int base = first_layer(b, rep, 0, steps);
  int *h = ir_xcalloc(steps, sizeof *h);
  v->z_step = ir_xcalloc(steps, sizeof *v->z_step);
  for (int k = 0; k < steps; k++) {
    int z = ir_binary(b->f, IR_ADD, rows_of(b, base, k * n, n),
                      input_term(b, rep, obs_input(b, w, v, k)));
    h[k] = hidden_layers(b, rep, z, 1);
    v->z_step[k] = lower_embed(b, rep, h[k]);
  }
  int stacked = stack_steps(b, h);
  free(h);
  return stacked;
}

/* The activity over the steps before and in the window: [K + T, N]. */
static int obs_activity(Builder *b, Builder *state, const ObsWindow *w) {
  ObsValues v = {0};
  int nc = w->nclasses;
  v.gates = ir_xcalloc(3 * (size_t)nc + 1, sizeof *v.gates);
  v.from = v.gates + nc;
  v.to = v.from + nc;
  for (int c = 0; c < nc; c++)
    class_gates(b, w, c, &v);
  obs_before(b, state, w, &v);
  int window = obs_signal(b, activity_column(b, obs_window_hidden(b, w, &v)), w->g.steps);
  free(v.gates);
  free(v.z_step);
  if (v.pre_act < 0)
    return window;
  int parts[2] = {obs_signal(b, v.pre_act, w->before), window};
  return ir_concat_rows(b->f, parts, 2);
}

static int scalar_param(Builder *b, int param) { return ir_sum(b->f, b->param[param], -1); }

/* The predicted recording [T, C] (lobe_model.h). */
static int obs_out(Builder *b, Builder *state, const ObsWindow *w) {
  const Observation *o = w->o;
  const IrObsFns *fns = &b->L->mod->obs_fns[o - b->L->model->observations];
  IrFunc *f = b->f;
  int act = obs_activity(b, state, w), y;
  double dt = 1.0 / o->data.rate;
  if (o->kind == OBS_EEG)
    y = obs_leadfield(f, act, o->lead, o->data.channels);
  else if (o->haemo == HAEMO_BALLOON)   /* a neural drive that cannot go negative */
    y = obs_balloon(f, ir_unary(f, IR_SIGMOID, act), dt);
  else
    y = obs_hrf(f, act, dt);
  y = rows_of(b, y, w->before, w->g.steps);
  IrShape shape = shape_of(b, y);
  if (fns->gain >= 0)
    y = ir_binary(f, IR_MUL, ir_bcast(f, scalar_param(b, fns->gain), -1, shape), y);
  if (fns->offset >= 0)
    y = ir_binary(f, IR_ADD, y, ir_bcast(f, b->param[fns->offset], 0, shape));
  return y;
}

static Builder begin_observation(const Lowering *L, const ObsWindow *w, const char *kind,
                                 int **held) {
  char *name = fmt_name("%s.%s", kind, w->o->name);
  Builder b = begin_params(L, name);
  free(name);
  if (held)
    *held = add_held_params(&b);
  b.batch = w->o->nregions;
  int t = ir_input(b.f, "t", TY_REAL, IR_VEC(1));
  b.t = ir_bcast(b.f, ir_sum(b.f, t, -1), -1, IR_VEC(b.batch));
  add_ids(&b, b.batch);
  b.g = &w->g;
  begin_caches(&b);
  return b;
}

static IrFunc *lower_obs_forward(const Lowering *L, const ObsWindow *w) {
  Builder b = begin_observation(L, w, "forward", NULL);
  ir_output(b.f, obs_out(&b, &b, w));
  return finish(&b);
}

/* The observation's loss (lobe_model.h); held: the steps before the window
 * from a second set of params, as a source's loss_held. */
static IrFunc *lower_obs_loss(const Lowering *L, const ObsWindow *w, bool held_form) {
  const Observation *o = w->o;
  int *held = NULL;
  Builder b = begin_observation(L, w, held_form ? "loss_held" : "loss", held_form ? &held : NULL);
  Builder held_state, *state = &b;
  if (held) {
    held_state = held_builder(&b, held);
    state = &held_state;
  }
  int n = o->nregions;
  IrShape y_shape = o->kind == OBS_FC ? IR_MAT(n, n) : IR_MAT(w->g.steps, o->data.channels);
  int y = ir_input(b.f, "y", TY_REAL, y_shape);
  int out = obs_out(&b, state, w);
  ir_output(b.f, o->kind == OBS_FC ? obs_upper_mse(b.f, obs_pearson(b.f, out), y)
                                   : lower_mse(&b, out, y));
  if (held)
    finish(&held_state);
  return finish(&b);
}

static bool lower_observation(Lowering *L, int i) {
  const Observation *o = &L->model->observations[i];
  IrObsFns *fns = &L->mod->obs_fns[i];
  ObsWindow w;
  fns->grad_params = ir_xcalloc(L->mod->nparams, sizeof *fns->grad_params);
  if (!obs_window_new(L, o, &w)) {
    obs_window_free(&w);
    return false;
  }
  fns->forward = ir_module_add(L->mod, lower_obs_forward(L, &w));
  IrFunc *loss = lower_obs_loss(L, &w, false);
  fns->ngrad = reached_params(loss, L->mod->nparams, fns->grad_params);
  fns->loss_grad = add_grad(L, loss, fns->grad_params, fns->ngrad, "loss_grad", o->name);
  if (w.before > 0)
    fns->loss_held = ir_module_add(L->mod, lower_obs_loss(L, &w, true));
  obs_window_free(&w);
  return true;
}

/* ---- the module ------------------------------------------------------------- */

/* One block holds the six lists (ir.h). */
static void alloc_lists(IrSourceFns *fns, int nparams, int nregions) {
  fns->grad_params = ir_xcalloc(5 * (size_t)nparams + nregions, sizeof *fns->grad_params);
  fns->folded = fns->grad_params + nparams;
  fns->spec_grad_params = fns->folded + nparams;
  fns->vjp_params = fns->spec_grad_params + nparams;
  fns->export_folded = fns->vjp_params + nparams;
  fns->spec_regions = fns->export_folded + nparams;
}

static void lower_source(Lowering *L, int s, bool specialise) {
  IrSourceFns *fns = &L->mod->source_fns[s];
  alloc_lists(fns, L->mod->nparams, L->model->nregions);
  fns->loss = source_loss(L->model, s);
  Graph g = graph_new(L, s);
  fns->forward = ir_module_add(L->mod, lower_forward(L, &g, s));
  IrFunc *loss = lower_loss(L, &g, s, LOSS_PLAIN);
  fns->ngrad = reached_params(loss, L->mod->nparams, fns->grad_params);
  fns->loss_grad = add_grad(L, loss, fns->grad_params, fns->ngrad, "loss_grad",
                            L->model->sources[s].name);
  fns->loss_held = g.npre > 0 ? ir_module_add(L->mod, lower_loss(L, &g, s, LOSS_HELD)) : -1;
  fns->spec = fns->loss_grad_spec = fns->spec_vjp = fns->export_spec = -1;
  if (specialise)
    lower_source_spec(L, &g, s);
  graph_free(&g);
}

IrModule *lower_model_with(const Model *m, bool specialise) {
  if (!model_ok(m))
    return NULL;
  Lowering L = {.model = m};
  index_in_edges(&L);
  if (!undelayed_acyclic(&L)) {
    free(L.in_start);
    free(L.in_edges);
    return NULL;
  }
  L.mod = ir_module_new(m);
  L.aunn = ir_xcalloc(m->naunns, sizeof *L.aunn);
  L.head_w = ir_xcalloc(m->nsources, sizeof *L.head_w);
  L.head_b = ir_xcalloc(m->nsources, sizeof *L.head_b);
  L.mod->obs_fns = ir_xcalloc(m->nobservations, sizeof *L.mod->obs_fns);
  declare_params(&L);
  L.mod->source_fns = ir_xcalloc(m->nsources, sizeof *L.mod->source_fns);
  if (specialise) {
    L.mod->aunn_spec = ir_xcalloc(m->naunns, sizeof *L.mod->aunn_spec);
    for (int ai = 0; ai < m->naunns; ai++)
      L.mod->aunn_spec[ai].spec = L.mod->aunn_spec[ai].spec_vjp = -1;
  }
  for (int s = 0; s < m->nsources; s++)
    lower_source(&L, s, specialise);
  for (int s = 0; s < m->nsources && specialise; s++)
    lower_source_export(&L, s);
  bool ok = true;
  for (int o = 0; o < m->nobservations && ok; o++)
    ok = lower_observation(&L, o);
  lower_model_prior(&L);
  free(L.aunn);
  free(L.head_w);
  free(L.head_b);
  free(L.in_start);
  free(L.in_edges);
  if (!ok) {
    ir_module_free(L.mod);
    return NULL;
  }
  return L.mod;
}

IrModule *lower_model(const Model *m) { return lower_model_with(m, true); }
