/*
 * test_codegen_model.c — a whole model through the pipeline: a spec is
 * parsed, checked and lowered; its gradient function is checked against
 * finite differences in the interpreter, and the compiled code (f32 and f64)
 * against the interpreter; with concat and film conditioning and with the
 * fourier and binary encodings, over windows of three steps (no edges:
 * test_codegen_graph.c has the graph). The specialised entry points, merged
 * as the runtime merges them, give the unspecialised loss and gradient. The
 * binary encoding gives exactly the bits of the sample index.
 */
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "ir.h"
#include "lobe_model.h"
#include "test_util.h"

/* Conditionings: both embeddings, and one left out (size 0). */
static const char concat[] = "concat(module: 2, subject: 3)";
static const char film[] = "film(module: 2, subject: 3)";
static const char concat_shared[] = "concat(module: 2, subject: 0)";
static const char film_by_region[] = "film(module: 2, subject: 0)";

static const char *const spec =
    "subjects m1, m2, m3\n"
    "aunn cortex {\n"
    "  index     %s\n"
    "  condition %s\n"
    "  mlp       7 x 2, %s\n"
    "  latent    %d\n"
    "}\n"
    "region V1, V2 : cortex\n"
    "data V1 of m1 = csv(\"v1.csv\", rate: 100Hz, channels: 3)\n"
    "data V2 of m3 = npy(\"v2.npy\", rate: 50Hz, channels: 2)\n"
    "loss mse(V1) + 0.5 * mse(V2)\n"
    "train { batch: 5, steps: 10, window: 3 }\n";

static const char *const fourier = "fourier(bands: 3, max_period: 4s, min_period: 50ms)";
static const char *const binary = "binary(bits: 9)";

static Lowered build_text(const char *text) {
  Lowered fx = lowered_build("model.lobe", text);
  /* per source forward, loss_grad, loss_grad_spec; per AUNN spec, spec_vjp */
  ck_assert_int_eq(fx.mod->nfuncs, 3 * fx.model->nsources + 2 * fx.model->naunns);
  return fx;
}

static Lowered build(const char *index, const char *condition, const char *activation,
                     int latent) {
  char text[2048];
  snprintf(text, sizeof text, spec, index, condition, activation, latent);
  return build_text(text);
}

/* Random arguments for every input of f: reals in [-1, 1), ids in range. */
static double **make_inputs(const Lowered *fx, const IrFunc *f, unsigned seed) {
  double **in = calloc(f->ninputs, sizeof *in);
  for (int k = 0; k < f->ninputs; k++) {
    const IrInstr *x = &f->ins[ir_input_value(f, k)];
    long n = ir_numel(x->shape);
    in[k] = malloc(n * sizeof **in);
    int bound = strcmp(x->name, "module") == 0    ? fx->model->nregions
                : strcmp(x->name, "subject") == 0 ? fx->model->nsubjects
                                                  : 0;
    for (long i = 0; i < n; i++) {
      double u = test_uniform(&seed);
      in[k][i] = bound ? floor((u + 1) / 2 * bound) : u;
      if (strcmp(x->name, "t") == 0)
        in[k][i] = 3 * (u + 1);
    }
  }
  return in;
}

/* The lowered gradient against central differences of the lowered loss. */
static void check_gradients(const Lowered *fx, int s) {
  const IrSourceFns *fns = &fx->mod->source_fns[s];
  const IrFunc *grad = fx->mod->funcs[fns->loss_grad];
  /* every parameter but the other sources' heads (weight and bias) */
  ck_assert_int_eq(fns->ngrad, fx->mod->nparams - 2 * (fx->model->nsources - 1));
  double **in = make_inputs(fx, grad, 7 + s), **out = run_interp(grad, in);
  for (int g = 0; g < fns->ngrad; g++) {
    int p = fns->grad_params[g];
    long n = ir_numel(grad->ins[ir_input_value(grad, p)].shape);
    for (long i = 0; i < n; i++) {
      double keep = in[p][i], h = 1e-5;
      in[p][i] = keep + h;
      double up = test_interp_loss(grad, in);
      in[p][i] = keep - h;
      double down = test_interp_loss(grad, in);
      in[p][i] = keep;
      double fd = (up - down) / (2 * h), an = out[1 + g][i];
      ck_assert_msg(fabs(fd - an) <= 1e-6 * fmax(1e-3, fabs(fd) + fabs(an)),
                    "%s[%ld]: autodiff %.10g, finite differences %.10g",
                    fx->mod->params[p].name, i, an, fd);
    }
  }
  free_buffers(in, grad->ninputs);
  free_buffers(out, grad->noutputs);
}

static void check_all_gradients(const char *index, const char *condition) {
  static const char *const acts[] = {"silu", "tanh", "sigmoid", "sine", "gelu"};
  for (int a = 0; a < 5; a++) {
    Lowered fx = build(index, condition, acts[a], a % 2 ? 0 : 3);
    for (int s = 0; s < fx.model->nsources; s++)
      check_gradients(&fx, s);
    lowered_free(&fx);
  }
}

START_TEST(gradients_match_finite_differences) {
  check_all_gradients(fourier, concat);
}
END_TEST

START_TEST(binary_gradients_match_finite_differences) {
  check_all_gradients(binary, concat);
  check_all_gradients(binary, film);
}
END_TEST

START_TEST(film_gradients_match_finite_differences) {
  check_all_gradients(fourier, film);
  check_all_gradients(fourier, film_by_region);
  check_all_gradients(fourier, concat_shared);
}
END_TEST

/* ---- specialised against unspecialised ------------------------------------- */

/* Inputs of f: the first np from params, then by name: the source's ids,
 * or the batch's t and y. */
static double **spec_inputs(const IrFunc *f, int np, double **params, double **batch,
                            const Source *src) {
  double **in = calloc(f->ninputs, sizeof *in);
  for (int k = 0; k < f->ninputs; k++) {
    const IrInstr *x = &f->ins[ir_input_value(f, k)];
    long n = ir_numel(x->shape);
    in[k] = calloc(n, sizeof **in);
    const double *from = k < np                        ? params[k]
                         : strcmp(x->name, "t") == 0   ? batch[0]
                         : strcmp(x->name, "y") == 0   ? batch[1]
                                                       : NULL;
    for (long i = 0; i < n; i++)
      in[k][i] = from                                   ? from[i]
                 : strcmp(x->name, "module") == 0       ? src->region
                 : strcmp(x->name, "subject") == 0      ? src->subject
                                                        : 0;
  }
  return in;
}

static int index_of(const int *list, int n, int v) {
  for (int i = 0; i < n; i++)
    if (list[i] == v)
      return i;
  return -1;
}

/* d loss / d param p merged from loss_grad_spec's and spec_vjp's outputs
 * (loss_grad_spec does not read the folded slots). */
static double merged(const IrSourceFns *fns, double **lg, double **vjp, int p, long i) {
  double g = 0;
  int k = index_of(fns->spec_grad_params, fns->nspec_grad, p);
  ck_assert(k < 0 || index_of(fns->folded, fns->nfolded, p) < 0);
  if (k >= 0)
    g += lg[1 + k][i];
  k = index_of(fns->vjp_params, fns->nvjp, p);
  if (k >= 0)
    g += vjp[1 + k][i];
  return g;
}

/* spec_vjp's inputs: spec's, then loss_grad_spec's d theta' (its outputs
 * after the gradients of the params). */
static double **vjp_inputs(const IrSourceFns *fns, const IrFunc *vjp, double **spec_in,
                           int nspec_in, double **lg) {
  double **in = calloc(vjp->ninputs, sizeof *in);
  for (int k = 0; k < vjp->ninputs; k++) {
    long n = ir_numel(vjp->ins[ir_input_value(vjp, k)].shape);
    in[k] = malloc(n * sizeof **in);
    const double *from = k < nspec_in ? spec_in[k] : lg[1 + fns->nspec_grad + k - nspec_in];
    memcpy(in[k], from, n * sizeof **in);
  }
  return in;
}

static void check_specialised(const Lowered *fx, int s) {
  const IrSourceFns *fns = &fx->mod->source_fns[s];
  const Source *src = &fx->model->sources[s];
  IrFunc *const *fn = fx->mod->funcs;
  int np = fx->mod->nparams;
  double **params = make_inputs(fx, fn[fns->spec], 5 + s);
  double **batch = make_inputs(fx, fn[fns->loss_grad_spec], 9 + s) + np;
  double **full_in = spec_inputs(fn[fns->loss_grad], np, params, batch, src);
  double **full = run_interp(fn[fns->loss_grad], full_in);
  double **spec_in = spec_inputs(fn[fns->spec], np, params, batch, src);
  double **theta = run_interp(fn[fns->spec], spec_in);
  double **lg_in = spec_inputs(fn[fns->loss_grad_spec], np, params, batch, src);
  ck_assert_int_eq(fns->nspec_regions, 1);   /* no edges: the window is its region */
  ck_assert_int_eq(fn[fns->loss_grad_spec]->ninputs, np + 2 + fns->nfolded);
  for (int k = 0; k < fns->nfolded; k++)   /* theta' after t and y */
    memcpy(lg_in[np + 2 + k], theta[k],
           ir_numel(fn[fns->spec]->ins[fn[fns->spec]->outputs[k]].shape) * sizeof **theta);
  double **lg = run_interp(fn[fns->loss_grad_spec], lg_in);
  ck_assert_msg(fabs(lg[0][0] - full[0][0]) <= 1e-12 * fabs(full[0][0]),
                "specialised loss %.15g, unspecialised %.15g", lg[0][0], full[0][0]);
  double **vjp_in = vjp_inputs(fns, fn[fns->spec_vjp], spec_in, fn[fns->spec]->ninputs, lg);
  double **vjp = run_interp(fn[fns->spec_vjp], vjp_in);
  for (int g = 0; g < fns->ngrad; g++) {
    int p = fns->grad_params[g];
    for (long i = 0; i < (long)fx->mod->params[p].rows * fx->mod->params[p].cols; i++) {
      double want = full[1 + g][i], got = merged(fns, lg, vjp, p, i);
      ck_assert_msg(fabs(got - want) <= 1e-10 * fmax(1e-3, fabs(want)),
                    "%s[%ld]: specialised %.15g, unspecialised %.15g",
                    fx->mod->params[p].name, i, got, want);
    }
  }
  free_buffers(vjp, fn[fns->spec_vjp]->noutputs);
  free_buffers(vjp_in, fn[fns->spec_vjp]->ninputs);
  free_buffers(lg, fn[fns->loss_grad_spec]->noutputs);
  free_buffers(lg_in, fn[fns->loss_grad_spec]->ninputs);
  free_buffers(theta, fn[fns->spec]->noutputs);
  free_buffers(spec_in, fn[fns->spec]->ninputs);
  free_buffers(full, fn[fns->loss_grad]->noutputs);
  free_buffers(full_in, fn[fns->loss_grad]->ninputs);
  free_buffers(batch - np, fn[fns->loss_grad_spec]->ninputs);
  free_buffers(params, fn[fns->spec]->ninputs);
}

static void check_all_specialised(const char *index, const char *condition) {
  Lowered fx = build(index, condition, "gelu", 3);
  for (int s = 0; s < fx.model->nsources; s++) {
    ck_assert_int_eq(fx.mod->source_fns[s].nfolded, strncmp(condition, "film", 4) ? 1 : 4);
    check_specialised(&fx, s);
  }
  lowered_free(&fx);
}

START_TEST(specialised_equals_unspecialised) {
  check_all_specialised(fourier, concat);
  check_all_specialised(fourier, film);
  check_all_specialised(binary, concat);
  check_all_specialised(binary, film);
  check_all_specialised(fourier, concat_shared);
  check_all_specialised(fourier, film_by_region);
}
END_TEST

START_TEST(no_specialise_leaves_them_out) {
  Lowered fx = build(fourier, film, "silu", 0);
  IrModule *plain = lower_model_with(fx.model, false);
  ck_assert_int_eq(plain->nfuncs, 2 * fx.model->nsources);
  for (int s = 0; s < fx.model->nsources; s++) {
    ck_assert_int_eq(plain->source_fns[s].nfolded, 0);
    ck_assert_int_eq(plain->source_fns[s].spec, -1);
  }
  ir_module_free(plain);
  lowered_free(&fx);
}
END_TEST

/* ---- compiled against interpreted ------------------------------------------ */

static void check_compiled(const char *index, const char *condition, const char *activation,
                           int latent) {
  char dir[] = "/tmp/lobe-test-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  Lowered fx = build(index, condition, activation, latent);
  void *lib = test_compile(&fx, dir);
  for (int i = 0; i < fx.mod->nfuncs; i++) {
    const IrFunc *f = fx.mod->funcs[i];
    double **in = make_inputs(&fx, f, 11 + i), **want = run_interp(f, in);
    double e32 = test_compiled_error(lib, f, in, want, false);
    double e64 = test_compiled_error(lib, f, in, want, true);
    ck_assert_msg(e32 < 1e-4, "%s f32: relative error %g", f->name, e32);
    ck_assert_msg(e64 < 1e-10, "%s f64: relative error %g", f->name, e64);
    free_buffers(in, f->ninputs);
    free_buffers(want, f->noutputs);
  }
  dlclose(lib);
  lowered_free(&fx);
  rmdir(dir);
}

START_TEST(compiled_matches_interpreter) {
  check_compiled(fourier, concat, "silu", 3);
}
END_TEST

START_TEST(binary_compiled_matches_interpreter) {
  check_compiled(binary, concat, "tanh", 3);
  check_compiled(binary, film, "silu", 0);
}
END_TEST

START_TEST(film_compiled_matches_interpreter) {
  check_compiled(fourier, film, "gelu", 0);
  check_compiled(fourier, film, "silu", 3);
}
END_TEST

/* ---- the binary encoding's bits ------------------------------------------- */

enum { NSAMPLES = 1001, NBITS = 10 };

static const char *const bits_spec =
    "subjects m1\n"
    "aunn a {\n"
    "  index     binary(bits: 10, rate: 100Hz)\n"
    "  condition concat(module: 1, subject: 1)\n"
    "  mlp       10, relu\n"
    "}\n"
    "region V1 : a\n"
    "data V1 of m1 = csv(\"v.csv\", rate: 100Hz, channels: 10)\n"
    "train { batch: 1001 }\n";

/* forward's inputs for t = n / rate, n = 0..1000, with parameters that pass
 * the encoding through: fc0.w and the head's weight the identity, all else
 * 0, so that the output is relu(encoding) = the encoding. */
static double **pass_through_inputs(const IrFunc *f) {
  double **in = calloc(f->ninputs, sizeof *in);
  for (int k = 0; k < f->ninputs; k++) {
    const IrInstr *x = &f->ins[ir_input_value(f, k)];
    in[k] = calloc(ir_numel(x->shape), sizeof **in);
    bool identity = strcmp(x->name, "a.fc0.w") == 0 || strcmp(x->name, "head.V1.m1.w") == 0;
    for (int i = 0; identity && i < NBITS; i++)
      in[k][i * NBITS + i] = 1;
    for (int n = 0; strcmp(x->name, "t") == 0 && n < NSAMPLES; n++)
      in[k][n] = n / 100.0;
  }
  return in;
}

START_TEST(binary_encoding_is_exact) {
  char dir[] = "/tmp/lobe-test-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  Lowered fx = build_text(bits_spec);
  const IrFunc *f = fx.mod->funcs[fx.mod->source_fns[0].forward];
  ck_assert_int_eq(ir_numel(f->ins[f->outputs[0]].shape), NSAMPLES * NBITS);
  double **in = pass_through_inputs(f), **out = run_interp(f, in);
  for (int n = 0; n < NSAMPLES; n++)
    for (int k = 0; k < NBITS; k++)
      ck_assert_msg(out[0][n * NBITS + k] == ((n >> k) & 1), "bit %d of %d is %g", k, n,
                    out[0][n * NBITS + k]);
  void *lib = test_compile(&fx, dir);
  ck_assert_msg(test_compiled_error(lib, f, in, out, false) == 0, "f32 bits differ");
  ck_assert_msg(test_compiled_error(lib, f, in, out, true) == 0, "f64 bits differ");
  dlclose(lib);
  free_buffers(in, f->ninputs);
  free_buffers(out, f->noutputs);
  lowered_free(&fx);
  rmdir(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("codegen_model");
  TCase *tc = tcase_create("model");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, gradients_match_finite_differences);
  tcase_add_test(tc, compiled_matches_interpreter);
  tcase_add_test(tc, film_gradients_match_finite_differences);
  tcase_add_test(tc, film_compiled_matches_interpreter);
  tcase_add_test(tc, specialised_equals_unspecialised);
  tcase_add_test(tc, no_specialise_leaves_them_out);
  tcase_add_test(tc, binary_gradients_match_finite_differences);
  tcase_add_test(tc, binary_compiled_matches_interpreter);
  tcase_add_test(tc, binary_encoding_is_exact);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
