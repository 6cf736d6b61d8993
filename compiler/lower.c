/*
 * lower.c — from the checked Model to the tensor IR.
 *
 * For every data source the model gets two entry points (ir.h, IrSourceFns):
 * the forward pass of the source's region through its AUNN and the source's
 * readout head, and the source's loss with its gradient (autodiff of the loss
 * with respect to the parameters the source reaches); unless lowered without
 * specialisation, also spec, loss_grad_spec and spec_vjp, which
 * fold the source's constant (region, subject) into the weights once per step
 * (docs/specialisation.md).
 * Every entry point takes all parameters, in IrModule.params order, so the
 * runtime passes one argument vector to all of them.
 *
 * Parameters of an AUNN named A:
 *   A.emb.module [regions, Em]   A.emb.subject [subjects, Es]   (normal 0,1)
 *   A.fcL.w [in, out]  A.fcL.b [out]                             (uniform 1/sqrt(in))
 *   A.fc0.w_module [Em, out]  A.fc0.w_subject [Es, out]          (concat only: the
 *                             rows of fc0 that read the embeddings; fc0.w reads the encoding)
 *   A.filmL.w [Em+Es, 2*out]  A.filmL.b [2*out]                  (film only)
 *   A.latent.w [H, latent]  A.latent.b [latent]                  (when latent > 0)
 * and of each source S: head.S.w [in, channels], head.S.b [channels].
 */
#include <math.h>
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
  int spec_fn, vjp_fn;             /* spec and spec_vjp, shared by its sources */
  int latent_w, latent_b;          /* -1 without a latent layer */
  int width;                       /* features the readout heads see */
} AunnParams;

typedef struct Lowering {
  const Model *model;
  IrModule *mod;
  AunnParams *aunn;                /* per Model.aunns */
  int *head_w, *head_b;            /* per Model.sources */
} Lowering;

static char *fmt_name(const char *fmt, const char *a, const char *b) {
  int n = snprintf(NULL, 0, fmt, a, b);
  char *s = malloc(n + 1);
  snprintf(s, n + 1, fmt, a, b);
  return s;
}

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

/* With concat conditioning fc0 reads [encoding, e_module, e_subject]; its
 * weight is kept as three blocks of rows, one per part (fc0.w holds the
 * encoding's), so that lower_concat_input can treat each part apart. */
static void declare_concat_rows(IrModule *mod, const AunnDef *a, AunnParams *p) {
  int rows[2] = {a->module_dim, a->subject_dim};
  const char *names[2] = {"fc0.w_module", "fc0.w_subject"};
  int *ids[2] = {&p->w_module, &p->w_subject};
  double bound = 1.0 / sqrt(encoding_width(a) + a->module_dim + a->subject_dim);
  mod->params[p->w[0]].scale = mod->params[p->b[0]].scale = bound;
  for (int k = 0; k < 2; k++)
    *ids[k] = add_param(mod, fmt_name("%s.%s", a->name, names[k]), rows[k],
                        a->hidden[0], LOBE_INIT_UNIFORM, bound);
}

/* The hidden layers; with film each has its map of the conditioning to
 * [gamma, beta]. Returns the width of the last. */
static int declare_hidden_params(IrModule *mod, const AunnDef *a, AunnParams *p) {
  int cond = a->module_dim + a->subject_dim;
  bool film = a->condition == COND_FILM;
  int in = encoding_width(a);
  p->w_module = p->w_subject = -1;
  p->spec_fn = p->vjp_fn = -1;
  for (int l = 0; l < a->nhidden; l++) {
    char layer[16];
    snprintf(layer, sizeof layer, "fc%d", l);
    add_dense(mod, a->name, layer, in, a->hidden[l], &p->w[l], &p->b[l]);
    if (l == 0 && !film)
      declare_concat_rows(mod, a, p);
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
  p->emb_module = add_param(mod, fmt_name("%s.%s", a->name, "emb.module"),
                            L->model->nregions, a->module_dim, LOBE_INIT_NORMAL, 1.0);
  p->emb_subject = add_param(mod, fmt_name("%s.%s", a->name, "emb.subject"),
                             L->model->nsubjects, a->subject_dim, LOBE_INIT_NORMAL, 1.0);
  int in = declare_hidden_params(mod, a, p);
  p->latent_w = p->latent_b = -1;
  if (a->latent > 0) {
    add_dense(mod, a->name, "latent", in, a->latent, &p->latent_w, &p->latent_b);
    in = a->latent;
  }
  p->width = in;
}

static void declare_params(Lowering *L) {
  const Model *m = L->model;
  for (int ai = 0; ai < m->naunns; ai++)
    declare_aunn_params(L, ai);
  for (int s = 0; s < m->nsources; s++) {
    const Source *src = &m->sources[s];
    int in = L->aunn[m->regions[src->region].aunn].width;
    add_dense(L->mod, "head", src->name, in, src->channels, &L->head_w[s],
              &L->head_b[s]);
  }
}

/* ---- building one function ------------------------------------------------ */

typedef struct Builder {
  IrFunc *f;
  int *param;                      /* value id of each parameter input */
  int t, module, subject;          /* batch inputs (-1 where absent) */
  int batch;
  bool specialised;                /* conditioning folded into the params */
} Builder;

static IrShape param_shape(const IrParam *p) {
  return p->rank == 1 ? IR_VEC(p->cols) : IR_MAT(p->rows, p->cols);
}

/* A function kind.OWNER (a source or an AUNN) whose first inputs are the
 * parameters. */
static Builder begin_params(const Lowering *L, const char *kind, const char *owner) {
  Builder b = {.t = -1, .module = -1, .subject = -1};
  char *name = fmt_name("%s.%s", kind, owner);
  b.f = ir_func_new(name);
  free(name);
  b.batch = L->model->train.batch;
  b.param = malloc(L->mod->nparams * sizeof *b.param);
  for (int i = 0; i < L->mod->nparams; i++)
    b.param[i] = ir_input(b.f, L->mod->params[i].name, TY_REAL,
                          param_shape(&L->mod->params[i]));
  return b;
}

static void add_ids(Builder *b, int n) {
  b->module = ir_input(b->f, "module", TY_I32, IR_VEC(n));
  b->subject = ir_input(b->f, "subject", TY_I32, IR_VEC(n));
}

static Builder begin_function(const Lowering *L, const char *kind,
                              const Source *src) {
  Builder b = begin_params(L, kind, src->name);
  b.t = ir_input(b.f, "t", TY_REAL, IR_VEC(b.batch));
  add_ids(&b, b.batch);
  return b;
}

/* The specialised form: no ids, the conditioning lives in the params. */
static Builder begin_specialised(const Lowering *L, const char *kind,
                                 const Source *src) {
  Builder b = begin_params(L, kind, src->name);
  b.t = ir_input(b.f, "t", TY_REAL, IR_VEC(b.batch));
  b.specialised = true;
  return b;
}

/* The fastest rate of the sources AUNN ai reads; 0 if it reads none. */
static double fastest_rate(const Model *m, int ai) {
  double rate = 0;
  for (int s = 0; s < m->nsources; s++)
    if (m->regions[m->sources[s].region].aunn == ai && m->sources[s].rate > rate)
      rate = m->sources[s].rate;
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

/* [sin(t * omega), cos(t * omega)]: [B, 2*bands] */
static int lower_fourier(const Lowering *L, Builder *b, int ai) {
  int bands = L->model->aunns[ai].bands;
  double *omega = malloc(bands * sizeof *omega);
  fourier_frequencies(L->model, ai, omega);
  IrShape phase_shape = IR_MAT(b->batch, bands);
  int w = ir_bcast(b->f, ir_tensor(b->f, omega, IR_VEC(bands)), 0, phase_shape);
  int t = ir_bcast(b->f, b->t, 1, phase_shape);
  free(omega);
  int phase = ir_binary(b->f, IR_MUL, t, w);
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
static int lower_binary(const Lowering *L, Builder *b, int ai) {
  const AunnDef *a = &L->model->aunns[ai];
  double rate = a->rate > 0 ? a->rate : fastest_rate(L->model, ai);
  IrFunc *f = b->f;
  IrShape vec = IR_VEC(b->batch), phase_shape = IR_MAT(b->batch, a->bits);
  double *scale = malloc(a->bits * sizeof *scale);
  for (int k = 0; k < a->bits; k++)
    scale[k] = M_PI / ldexp(1.0, k);
  int samples = ir_binary(f, IR_MUL, b->t, ir_const(f, rate, vec));
  int half = ir_binary(f, IR_ADD, samples, ir_const(f, 0.5, vec));
  int w = ir_bcast(f, ir_tensor(f, scale, IR_VEC(a->bits)), 0, phase_shape);
  free(scale);
  int phase = ir_binary(f, IR_MUL, ir_bcast(f, half, 1, phase_shape), w);
  return ir_unary(f, IR_STEP, ir_unary(f, IR_NEG, ir_unary(f, IR_SIN, phase)));
}

static int lower_encoding(const Lowering *L, Builder *b, int ai) {
  if (L->model->aunns[ai].encoding == ENC_BINARY)
    return lower_binary(L, b, ai);
  return lower_fourier(L, b, ai);
}

static int lower_dense(Builder *b, int x, int w, int bias) {
  int y = ir_matmul(b->f, x, b->param[w], false, false);
  int bb = ir_bcast(b->f, b->param[bias], 0, b->f->ins[y].shape);
  return ir_binary(b->f, IR_ADD, y, bb);
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

/* [emb_module(module), emb_subject(subject)] per sample */
static int lower_embeddings(Builder *b, const AunnParams *p) {
  int parts[2] = {ir_gather(b->f, b->param[p->emb_module], b->module),
                  ir_gather(b->f, b->param[p->emb_subject], b->subject)};
  return ir_concat(b->f, parts, 2);
}

/* Concat conditioning's first layer, by blocks of rows:
 *   [x, E_m[module], E_s[subject]] W0 + b0
 *     = x W0x + (E_m W0m)[module] + (E_s W0s)[subject] + b0
 * Each table goes through the layer before the gather: [regions, H] and
 * [subjects, H] products instead of [B, H] ones, and no gradient is formed
 * for the encoding's columns, which have none to receive. */
static int lower_concat_input(Builder *b, const AunnParams *p, int x) {
  IrFunc *f = b->f;
  int tables[2][3] = {{p->emb_module, p->w_module, b->module},
                      {p->emb_subject, p->w_subject, b->subject}};
  int z = lower_dense(b, x, p->w[0], p->b[0]);
  for (int k = 0; k < 2; k++) {
    int rows = ir_matmul(f, b->param[tables[k][0]], b->param[tables[k][1]], false, false);
    z = ir_binary(f, IR_ADD, z, ir_gather(f, rows, tables[k][2]));
  }
  return z;
}

/* FiLM of a layer's pre-activation z by the conditioning c:
 * (1 + gamma) * z + beta, with [gamma, beta] = c F + f; the 1 makes a zero
 * map leave the layer unchanged, as in the torch peer. */
static int lower_film(Builder *b, int z, int c, int w, int bias) {
  IrShape shape = b->f->ins[z].shape;
  int width = shape.dim[1];
  int gamma_beta = lower_dense(b, c, w, bias);
  int gamma = ir_slice(b->f, gamma_beta, 0, width);
  int beta = ir_slice(b->f, gamma_beta, width, width);
  int scale = ir_binary(b->f, IR_ADD, ir_const(b->f, 1.0, shape), gamma);
  return ir_binary(b->f, IR_ADD, ir_binary(b->f, IR_MUL, scale, z), beta);
}

/* The AUNN trunk for region r: the encoding, conditioning (concat: the
 * embeddings join the input; film: they modulate every hidden layer; none
 * when specialised), hidden layers, optional linear latent layer. */
static int lower_trunk(const Lowering *L, Builder *b, int ai) {
  const AunnDef *a = &L->model->aunns[ai];
  const AunnParams *p = &L->aunn[ai];
  bool film = a->condition == COND_FILM && !b->specialised;
  bool concat = a->condition != COND_FILM && !b->specialised;
  int x = lower_encoding(L, b, ai);
  int c = film ? lower_embeddings(b, p) : -1;
  for (int l = 0; l < a->nhidden; l++) {
    int z = l == 0 && concat ? lower_concat_input(b, p, x)
                             : lower_dense(b, x, p->w[l], p->b[l]);
    if (film)
      z = lower_film(b, z, c, p->film_w[l], p->film_b[l]);
    x = lower_activation(b, a->activation, z);
  }
  if (p->latent_w >= 0)
    x = lower_dense(b, x, p->latent_w, p->latent_b);
  return x;
}

static int lower_readout(const Lowering *L, Builder *b, int s) {
  int ai = L->model->regions[L->model->sources[s].region].aunn;
  int x = lower_trunk(L, b, ai);
  return lower_dense(b, x, L->head_w[s], L->head_b[s]);
}

/* mean((out - y)^2) over the batch and channels */
static int lower_mse(Builder *b, int out, int y) {
  IrShape shape = b->f->ins[out].shape;
  int d = ir_binary(b->f, IR_SUB, out, y);
  int sse = ir_sum(b->f, ir_binary(b->f, IR_MUL, d, d), -1);
  int inv_n = ir_const(b->f, 1.0 / (double)ir_numel(shape), IR_SCALAR);
  return ir_binary(b->f, IR_MUL, sse, inv_n);
}

static IrFunc *finish(Builder *b) {
  free(b->param);
  return b->f;
}

static IrFunc *lower_forward(const Lowering *L, int s) {
  Builder b = begin_function(L, "forward", &L->model->sources[s]);
  ir_output(b.f, lower_readout(L, &b, s));
  return finish(&b);
}

static IrFunc *lower_loss(const Lowering *L, int s, bool specialised) {
  const Source *src = &L->model->sources[s];
  Builder b = specialised ? begin_specialised(L, "loss_spec", src)
                          : begin_function(L, "loss", src);
  int y = ir_input(b.f, "y", TY_REAL, IR_MAT(b.batch, src->channels));
  ir_output(b.f, lower_mse(&b, lower_readout(L, &b, s), y));
  return finish(&b);
}

/* The parameters source s reaches: its AUNN's and its own head's. With
 * `specialised`, only those the specialised trunk reads (no embeddings, no
 * embedding rows, no film maps). */
static int grad_params(const Lowering *L, int s, bool specialised, int *out) {
  int ai = L->model->regions[L->model->sources[s].region].aunn;
  const AunnParams *p = &L->aunn[ai];
  const AunnDef *a = &L->model->aunns[ai];
  int n = 0;
  if (!specialised) {
    out[n++] = p->emb_module;
    out[n++] = p->emb_subject;
  }
  for (int l = 0; l < a->nhidden; l++) {
    out[n++] = p->w[l];
    out[n++] = p->b[l];
    if (l == 0 && p->w_module >= 0 && !specialised) {
      out[n++] = p->w_module;
      out[n++] = p->w_subject;
    }
    if (a->condition == COND_FILM && !specialised) {
      out[n++] = p->film_w[l];
      out[n++] = p->film_b[l];
    }
  }
  if (p->latent_w >= 0) {
    out[n++] = p->latent_w;
    out[n++] = p->latent_b;
  }
  out[n++] = L->head_w[s];
  out[n++] = L->head_b[s];
  return n;
}

/* ---- specialisation (docs/specialisation.md) ------------------------------ */

static const AunnParams *source_aunn(const Lowering *L, int s, const AunnDef **a) {
  int ai = L->model->regions[L->model->sources[s].region].aunn;
  *a = &L->model->aunns[ai];
  return &L->aunn[ai];
}

/* What spec replaces by theta': concat fc0.b; film every hidden layer's w, b. */
static int folded_params(const Lowering *L, int s, int *out) {
  const AunnDef *a;
  const AunnParams *p = source_aunn(L, s, &a);
  if (a->condition != COND_FILM) {
    out[0] = p->b[0];
    return 1;
  }
  int n = 0;
  for (int l = 0; l < a->nhidden; l++) {
    out[n++] = p->w[l];
    out[n++] = p->b[l];
  }
  return n;
}

/* What spec reads: the embeddings, then concat fc0.b and its embedding rows,
 * or film every layer's w, b and map. */
static int vjp_params(const Lowering *L, int s, int *out) {
  const AunnDef *a;
  const AunnParams *p = source_aunn(L, s, &a);
  int n = 0;
  out[n++] = p->emb_module;
  out[n++] = p->emb_subject;
  if (a->condition != COND_FILM) {
    out[n++] = p->b[0];
    out[n++] = p->w_module;
    out[n++] = p->w_subject;
    return n;
  }
  for (int l = 0; l < a->nhidden; l++) {
    out[n++] = p->w[l];
    out[n++] = p->b[l];
    out[n++] = p->film_w[l];
    out[n++] = p->film_b[l];
  }
  return n;
}

/* Row 0 of a [1, n] value as a vector [n]. */
static int row_vector(IrFunc *f, int row) { return ir_sum(f, row, 0); }

/* b0' = b0 + E_m[r] W0m + E_s[s] W0s: lower_concat_input's embedding terms
 * for the one (region, subject), added to the bias once. */
static void spec_concat(Builder *b, const AunnParams *p, int *theta) {
  IrFunc *f = b->f;
  int tables[2][3] = {{p->emb_module, p->w_module, b->module},
                      {p->emb_subject, p->w_subject, b->subject}};
  int bias = b->param[p->b[0]];
  for (int k = 0; k < 2; k++) {
    int e = ir_gather(f, b->param[tables[k][0]], tables[k][2]);
    int row = ir_matmul(f, e, b->param[tables[k][1]], false, false);
    bias = ir_binary(f, IR_ADD, bias, row_vector(f, row));
  }
  theta[0] = bias;
}

/* (1 + g) * (h W + b) + beta = h (W diag(1 + g)) + ((1 + g) * b + beta), with
 * [g, beta] constant for one (region, subject): W' scales W's columns. */
static void spec_film_layer(Builder *b, const AunnParams *p, int l, int c, int *theta) {
  IrFunc *f = b->f;
  IrShape w_shape = f->ins[b->param[p->w[l]]].shape;
  int width = w_shape.dim[1];
  int gamma_beta = lower_dense(b, c, p->film_w[l], p->film_b[l]);
  int gamma = row_vector(f, ir_slice(f, gamma_beta, 0, width));
  int beta = row_vector(f, ir_slice(f, gamma_beta, width, width));
  int scale = ir_binary(f, IR_ADD, ir_const(f, 1.0, IR_VEC(width)), gamma);
  theta[0] = ir_binary(f, IR_MUL, b->param[p->w[l]], ir_bcast(f, scale, 0, w_shape));
  theta[1] = ir_binary(f, IR_ADD, ir_binary(f, IR_MUL, scale, b->param[p->b[l]]), beta);
}

/* theta' of source s (in folded_params order) from the params and the ids. */
static int spec_body(const Lowering *L, Builder *b, int s, int *theta) {
  const AunnDef *a;
  const AunnParams *p = source_aunn(L, s, &a);
  if (a->condition != COND_FILM) {
    spec_concat(b, p, theta);
    return 1;
  }
  int c = lower_embeddings(b, p);
  for (int l = 0; l < a->nhidden; l++)
    spec_film_layer(b, p, l, c, theta + 2 * l);
  return 2 * a->nhidden;
}

static IrFunc *lower_spec(const Lowering *L, int s, int *theta) {
  const AunnDef *a;
  source_aunn(L, s, &a);
  Builder b = begin_params(L, "spec", a->name);
  add_ids(&b, 1);
  int n = spec_body(L, &b, s, theta);
  for (int k = 0; k < n; k++)
    ir_output(b.f, theta[k]);
  return finish(&b);
}

/* sum_k <d theta'_k, theta'_k>: its gradient with respect to the params is
 * the vector-Jacobian product of spec with d theta'. */
static IrFunc *lower_spec_pairing(const Lowering *L, int s, const int *folded,
                                  int nfolded, int *theta) {
  const AunnDef *a;
  source_aunn(L, s, &a);
  Builder b = begin_params(L, "spec_pairing", a->name);
  add_ids(&b, 1);
  int *d = malloc(nfolded * sizeof *d);
  for (int k = 0; k < nfolded; k++) {
    const IrParam *p = &L->mod->params[folded[k]];
    char *name = fmt_name("%s.%s", "d", p->name);
    d[k] = ir_input(b.f, name, TY_REAL, param_shape(p));
    free(name);
  }
  spec_body(L, &b, s, theta);
  int total = ir_sum(b.f, ir_binary(b.f, IR_MUL, d[0], theta[0]), -1);
  for (int k = 1; k < nfolded; k++) {
    int dot = ir_sum(b.f, ir_binary(b.f, IR_MUL, d[k], theta[k]), -1);
    total = ir_binary(b.f, IR_ADD, total, dot);
  }
  free(d);
  ir_output(b.f, total);
  return finish(&b);
}

/* The gradient of loss with respect to the params listed, named kind.OWNER. */
static int add_grad(Lowering *L, IrFunc *loss, const int *wrt, int n, const char *kind,
                    const char *owner) {
  char *name = fmt_name("%s.%s", kind, owner);
  IrFunc *grad = ad_grad(loss, wrt, n, name);
  free(name);
  ir_func_free(loss);
  return ir_module_add(L->mod, grad);
}

/* spec and spec_vjp depend on the AUNN only (the ids are their inputs), so
 * the sources of one AUNN share them. */
static void lower_aunn_spec(Lowering *L, int s, const IrSourceFns *fns) {
  AunnParams *p = &L->aunn[L->model->regions[L->model->sources[s].region].aunn];
  if (p->spec_fn >= 0)
    return;
  int *theta = malloc(L->mod->nparams * sizeof *theta);
  const AunnDef *a;
  source_aunn(L, s, &a);
  p->spec_fn = ir_module_add(L->mod, lower_spec(L, s, theta));
  p->vjp_fn = add_grad(L, lower_spec_pairing(L, s, fns->folded, fns->nfolded, theta),
                       fns->vjp_params, fns->nvjp, "spec_vjp", a->name);
  free(theta);
}

static void lower_source_spec(Lowering *L, int s) {
  IrSourceFns *fns = &L->mod->source_fns[s];
  const AunnDef *a;
  const AunnParams *p = source_aunn(L, s, &a);
  fns->nfolded = folded_params(L, s, fns->folded);
  fns->nspec_grad = grad_params(L, s, true, fns->spec_grad_params);
  fns->nvjp = vjp_params(L, s, fns->vjp_params);
  lower_aunn_spec(L, s, fns);
  fns->spec = p->spec_fn;
  fns->spec_vjp = p->vjp_fn;
  fns->loss_grad_spec = add_grad(L, lower_loss(L, s, true), fns->spec_grad_params,
                                 fns->nspec_grad, "loss_grad_spec", L->model->sources[s].name);
}

/* One block holds the four parameter lists (ir.h). */
static void alloc_lists(IrSourceFns *fns, int nparams) {
  fns->grad_params = malloc(4 * (size_t)nparams * sizeof *fns->grad_params);
  fns->folded = fns->grad_params + nparams;
  fns->spec_grad_params = fns->folded + nparams;
  fns->vjp_params = fns->spec_grad_params + nparams;
}

static void lower_source(Lowering *L, int s, bool specialise) {
  IrSourceFns *fns = &L->mod->source_fns[s];
  alloc_lists(fns, L->mod->nparams);
  /* parameters are inputs 0..nparams-1, so input numbers are param ids */
  fns->ngrad = grad_params(L, s, false, fns->grad_params);
  fns->forward = ir_module_add(L->mod, lower_forward(L, s));
  fns->loss_grad = add_grad(L, lower_loss(L, s, false), fns->grad_params, fns->ngrad,
                            "loss_grad", L->model->sources[s].name);
  fns->spec = fns->loss_grad_spec = fns->spec_vjp = -1;
  if (specialise)
    lower_source_spec(L, s);
}

IrModule *lower_model_with(const Model *m, bool specialise) {
  Lowering L = {.model = m, .mod = ir_module_new(m)};
  L.aunn = calloc(m->naunns ? m->naunns : 1, sizeof *L.aunn);
  L.head_w = calloc(m->nsources ? m->nsources : 1, sizeof *L.head_w);
  L.head_b = calloc(m->nsources ? m->nsources : 1, sizeof *L.head_b);
  declare_params(&L);
  L.mod->source_fns = calloc(m->nsources ? m->nsources : 1, sizeof *L.mod->source_fns);
  for (int s = 0; s < m->nsources; s++)
    lower_source(&L, s, specialise);
  free(L.aunn);
  free(L.head_w);
  free(L.head_b);
  return L.mod;
}

IrModule *lower_model(const Model *m) { return lower_model_with(m, true); }
