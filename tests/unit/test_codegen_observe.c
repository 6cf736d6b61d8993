/*
 * test_codegen_observe.c — observations through the pipeline: a spec with
 * eeg, bold (HRF and Balloon) and fc observations of regions that read each
 * other through delays is checked and lowered; each observation's gradient
 * is checked against central differences of its loss_held in the
 * interpreter (double precision), and the compiled code (f32 and f64)
 * against the interpreter.
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

static const char *const spec =
    "subjects e1, h1, h2\n"
    "aunn cortex {\n"
    "  index     fourier(bands: 3, max_period: 40s)\n"
    "  condition %s\n"
    "  mlp       6 x 2, silu\n"
    "  latent    2\n"
    "  embed     3\n"
    "}\n"
    "region A, B, C : cortex\n"
    "connect A -> B delay 100ms\n"
    "connect B -> A delay 300ms\n"
    "connect all -> C delay 2s\n"
    "observe scalp of e1 = eeg(csv(\"e.csv\", rate: 10Hz, channels: 4), regions: all,\n"
    "                          leadfield: \"lf.csv\", window: 4)\n"
    "observe rest of h1 = bold(csv(\"b.csv\", rate: 1Hz, channels: 3), regions: all,\n"
    "                          window: 3)\n"
    "observe slow of h2 = bold(csv(\"s.csv\", rate: 1Hz, channels: 2), regions: [A, B],\n"
    "                          model: balloon, window: 2)\n"
    "observe conn of h2 = fc(csv(\"c.csv\", rate: 1Hz, channels: 3), regions: all,\n"
    "                        window: 4)\n"
    "train { steps: 10 }\n";

/* The spec checked, its eeg lead field bound as lobec's bind stage would,
 * and lowered. */
static Lowered build(const char *condition) {
  char text[2048];
  snprintf(text, sizeof text, spec, condition);
  Lowered fx = {.diag = diag_new(stderr, false)};
  fx.prog = parse_file(fx.diag, diag_add_source(fx.diag, "obs.lobe", text));
  ck_assert_ptr_nonnull(fx.prog);
  fx.model = sema_check(fx.diag, fx.prog);
  diag_flush(fx.diag);
  ck_assert_ptr_nonnull(fx.model);
  ck_assert_int_eq(fx.model->nobservations, 4);
  Observation *eeg = &fx.model->observations[0];
  eeg->lead = calloc(3 * 4, sizeof *eeg->lead);
  unsigned seed = 5;
  for (int i = 0; i < 12; i++)
    eeg->lead[i] = test_uniform(&seed);
  fx.mod = lower_model(fx.model);
  ck_assert_ptr_nonnull(fx.mod);
  return fx;
}

/* Arguments of an observation function: params in [-1, 1), held params a
 * copy of them, t, the observation's regions and subject, a target. */
static double **make_inputs(const Lowered *fx, const Observation *o, const IrFunc *f,
                            unsigned seed) {
  int np = fx->mod->nparams;
  double **in = calloc(f->ninputs, sizeof *in);
  for (int k = 0; k < f->ninputs; k++) {
    const IrInstr *x = &f->ins[ir_input_value(f, k)];
    long n = ir_numel(x->shape);
    in[k] = malloc(n * sizeof **in);
    for (long i = 0; i < n; i++) {
      if (strcmp(x->name, "module") == 0)
        in[k][i] = o->regions[i];
      else if (strcmp(x->name, "subject") == 0)
        in[k][i] = o->subject;
      else if (strcmp(x->name, "t") == 0)
        in[k][i] = 7.5;
      else if (k >= np && k < 2 * np && strncmp(x->name, "held.", 5) == 0)
        in[k][i] = in[k - np][i];
      else
        in[k][i] = test_uniform(&seed);
    }
  }
  return in;
}

/* loss_grad's gradient against central differences of loss_held, whose
 * steps before the window stay at the held params (as loss_grad's pass
 * no gradient). */
static void check_gradients(const Lowered *fx, int i) {
  const Observation *o = &fx->model->observations[i];
  const IrObsFns *fns = &fx->mod->obs_fns[i];
  ck_assert_int_ge(fns->loss_held, 0);   /* every one reads steps before it */
  const IrFunc *grad = fx->mod->funcs[fns->loss_grad];
  const IrFunc *held = fx->mod->funcs[fns->loss_held];
  int np = fx->mod->nparams;
  double **in = make_inputs(fx, o, held, 31 + i);
  double **gin = calloc(grad->ninputs, sizeof *gin);
  for (int k = 0; k < grad->ninputs; k++)
    gin[k] = in[k < np ? k : k + np];
  double **out = run_interp(grad, gin);
  ck_assert_double_eq_tol(out[0][0], test_interp_loss(held, in), 1e-12);
  ck_assert_int_gt(fns->ngrad, 0);
  for (int g = 0; g < fns->ngrad; g++) {
    int p = fns->grad_params[g];
    long n = ir_numel(grad->ins[ir_input_value(grad, p)].shape);
    for (long e = 0; e < n; e++) {
      double keep = in[p][e], h = 1e-5;
      in[p][e] = keep + h;
      double up = test_interp_loss(held, in);
      in[p][e] = keep - h;
      double down = test_interp_loss(held, in);
      in[p][e] = keep;
      double fd = (up - down) / (2 * h), an = out[1 + g][e];
      ck_assert_msg(fabs(fd - an) <= 1e-6 * fmax(1e-3, fabs(fd) + fabs(an)),
                    "%s: %s[%ld]: autodiff %.10g, finite differences %.10g", o->name,
                    fx->mod->params[p].name, e, an, fd);
    }
  }
  free(gin);
  free_buffers(in, held->ninputs);
  free_buffers(out, grad->noutputs);
}

static void check_all_gradients(const char *condition) {
  Lowered fx = build(condition);
  for (int i = 0; i < fx.model->nobservations; i++)
    check_gradients(&fx, i);
  lowered_free(&fx);
}

START_TEST(gradients_match_finite_differences) {
  check_all_gradients("concat(module: 2, subject: 2)");
}
END_TEST

START_TEST(film_gradients_match_finite_differences) {
  check_all_gradients("film(module: 2, subject: 2)");
}
END_TEST

/* The gates reach every observation reading an edge: C's input is all
 * three regions 2 s earlier, A and B read each other. */
START_TEST(gates_and_own_parameters_are_reached) {
  Lowered fx = build("concat(module: 2, subject: 2)");
  const IrObsFns *rest = &fx.mod->obs_fns[1], *conn = &fx.mod->obs_fns[3];
  int gates = 0, own = 0;
  for (int g = 0; g < rest->ngrad; g++) {
    const char *name = fx.mod->params[rest->grad_params[g]].name;
    gates += strcmp(name, "gates") == 0;
    own += strncmp(name, "rest.h1.", 8) == 0;
  }
  ck_assert_int_eq(gates, 1);
  ck_assert_int_eq(own, 2);   /* gain and offset */
  for (int g = 0; g < conn->ngrad; g++)
    ck_assert_msg(strncmp(fx.mod->params[conn->grad_params[g]].name, "conn.", 5) != 0,
                  "fc has no parameters of its own");
  lowered_free(&fx);
}
END_TEST

START_TEST(compiled_matches_interpreter) {
  char dir[] = "/tmp/lobe-test-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  Lowered fx = build("film(module: 2, subject: 2)");
  void *lib = test_compile(&fx, dir);
  for (int i = 0; i < fx.model->nobservations; i++) {
    const IrObsFns *fns = &fx.mod->obs_fns[i];
    int ids[3] = {fns->forward, fns->loss_grad, fns->loss_held};
    for (int k = 0; k < 3; k++) {
      const IrFunc *f = fx.mod->funcs[ids[k]];
      double **in = make_inputs(&fx, &fx.model->observations[i], f, 11 + k);
      double **want = run_interp(f, in);
      double e32 = test_compiled_error(lib, f, in, want, false);
      double e64 = test_compiled_error(lib, f, in, want, true);
      ck_assert_msg(e32 < 1e-4, "%s f32: relative error %g", f->name, e32);
      ck_assert_msg(e64 < 1e-10, "%s f64: relative error %g", f->name, e64);
      free_buffers(in, f->ninputs);
      free_buffers(want, f->noutputs);
    }
  }
  dlclose(lib);
  lowered_free(&fx);
  rmdir(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("codegen_observe");
  TCase *tc = tcase_create("observe");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, gradients_match_finite_differences);
  tcase_add_test(tc, film_gradients_match_finite_differences);
  tcase_add_test(tc, gates_and_own_parameters_are_reached);
  tcase_add_test(tc, compiled_matches_interpreter);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
