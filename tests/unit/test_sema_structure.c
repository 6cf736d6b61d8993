/* Unit tests of structural connectomes in sema.c and structure.c: regions
 * declared from a TVB zip, per-subject structure weights (normalised, zero
 * edges dropped), tract lengths and tract(speed:) delays. Small matrices are
 * written to a temporary folder; the real TVB and HCP files are read from
 * ../shared/data when it is there (the tests that need them skip otherwise). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "front.h"
#include "test_util.h"

#define SHARED_DATA LOBE_SOURCE_DIR "/../shared/data/"
#define TVB76 SHARED_DATA "tvb/connectivity_76.zip"
#define HCP SHARED_DATA "hcp/"

static const char *const head =
    "aunn cortex {\n"
    "  index fourier(bands: 2, max_period: 1s)\n"
    "  mlp 8\n"
    "  embed 2\n"
    "}\n";

typedef struct Checked {
  Captured cap;
  Program *prog;
  Model *model;
} Checked;

static char folder[] = "/tmp/lobe-structure-XXXXXX";

static void make_folder(void) {
  ck_assert_ptr_nonnull(mkdtemp(folder));
}

static void remove_folder(void) {
  test_remove_tree(folder);
  strcpy(folder, "/tmp/lobe-structure-XXXXXX");
}

static void write_file(const char *name, const char *text) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", folder, name);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

/* Checks head + text as a spec in the temporary folder. */
static Checked *check(const char *text) {
  Checked *c = calloc(1, sizeof *c);
  char path[256], *full;
  snprintf(path, sizeof path, "%s/brain.lobe", folder);
  ck_assert_int_ge(asprintf(&full, "%s%s", head, text), 0);
  captured_open(&c->cap);
  c->prog = parse_file(c->cap.diag, diag_add_source(c->cap.diag, path, full));
  free(full);
  ck_assert_ptr_nonnull(c->prog);
  ck_assert_int_eq(diag_errors(c->cap.diag), 0);
  c->model = sema_check_with(c->cap.diag, c->prog, &structure_reader);
  return c;
}

static Checked *check_ok(const char *text) {
  Checked *c = check(text);
  ck_assert_msg(c->model != NULL, "errors:\n%s", captured_text(&c->cap));
  return c;
}

static void checked_free(Checked *c) {
  sema_free(c->model);
  ast_free(c->prog);
  captured_close(&c->cap);
  free(c);
}

static const Edge *find_edge(const Model *m, int from, int to) {
  for (int e = 0; e < m->nedges; e++)
    if (m->edges[e].from == from && m->edges[e].to == to)
      return &m->edges[e];
  return NULL;
}

static bool have(const char *path) {
  if (access(path, R_OK) == 0)
    return true;
  printf("skipped: %s is absent (real data lives outside the repository)\n", path);
  return false;
}

/* ---- small matrices --------------------------------------------------------- */

START_TEST(weights_normalised_and_zero_edges_dropped) {
  make_folder();
  write_file("w1.csv", "a,b,c\n0,4,0\n2,0,0\n0,1,0\n");
  write_file("w2.csv", "a,b,c\n0,1,0\n0,0,0\n0,2,0\n");
  Checked *c = check_ok("subjects s1, s2\n"
                        "region A, B, C : cortex\n"
                        "data A of s1 = csv(\"none.csv\", rate: 10Hz, channels: 1)\n"
                        "structure of s1 = connectome(weights: csv(\"w1.csv\"))\n"
                        "structure of s2 = connectome(weights: csv(\"w2.csv\"))\n"
                        "connect all -> all delay 10ms\n");
  const Model *m = c->model;
  ck_assert_int_eq(m->nedges, 3);          /* A -> B, B -> A, C -> B; the rest are 0 */
  const Edge *ab = find_edge(m, 0, 1), *ba = find_edge(m, 1, 0), *cb = find_edge(m, 2, 1);
  ck_assert_ptr_nonnull(ab);
  ck_assert_ptr_nonnull(ba);
  ck_assert_ptr_nonnull(cb);
  ck_assert_double_eq_tol(ab->weight[0], 1.0, 1e-12);    /* 4 / 4 */
  ck_assert_double_eq_tol(ab->weight[1], 0.5, 1e-12);    /* 1 / 2 */
  ck_assert_double_eq_tol(ba->weight[0], 0.5, 1e-12);
  ck_assert_double_eq_tol(ba->weight[1], 0.0, 1e-12);
  ck_assert_double_eq_tol(cb->weight[0], 0.25, 1e-12);
  ck_assert_double_eq_tol(cb->weight[1], 1.0, 1e-12);
  ck_assert_double_eq(ab->length, 0);                    /* no lengths, no positions */
  checked_free(c);
  remove_folder();
}
END_TEST

START_TEST(no_structure_no_weights) {
  make_folder();
  Checked *c = check_ok("subjects s1\n"
                        "region A, B : cortex\n"
                        "data A of s1 = csv(\"none.csv\", rate: 10Hz, channels: 1)\n"
                        "connect B -> A\n");
  ck_assert_int_eq(c->model->nedges, 1);
  ck_assert_ptr_null(c->model->edges[0].weight);
  checked_free(c);
  remove_folder();
}
END_TEST

/* Lengths: the mean over the subjects whose weight is not 0, in metres. */
START_TEST(tract_speed_delays) {
  make_folder();
  write_file("w1.csv", "a,b\n0,1\n1,0\n");
  write_file("l1.csv", "a,b\n0,30\n60,0\n");
  write_file("w2.csv", "a,b\n0,1\n0,0\n");
  write_file("l2.csv", "a,b\n0,50\n90,0\n");
  Checked *c = check_ok("subjects s1, s2\n"
                        "region A, B : cortex\n"
                        "data A of s1 = csv(\"none.csv\", rate: 1kHz, channels: 1)\n"
                        "structure of s1 = connectome(weights: csv(\"w1.csv\"),\n"
                        "                             lengths: csv(\"l1.csv\"))\n"
                        "structure of s2 = connectome(weights: csv(\"w2.csv\"),\n"
                        "                             lengths: csv(\"l2.csv\"))\n"
                        "connect all -> all delay tract(speed: 2m / 1s) "
                        "prior sparse(distance: 1)\n");
  const Model *m = c->model;
  ck_assert_int_eq(m->nedges, 2);
  const Edge *ab = find_edge(m, 0, 1), *ba = find_edge(m, 1, 0);
  ck_assert_double_eq_tol(ab->length, 0.040, 1e-12);   /* (30 + 50) / 2 mm */
  ck_assert_double_eq_tol(ab->delay, 0.020, 1e-12);    /* 40mm at 2m/s */
  ck_assert_double_eq_tol(ba->length, 0.060, 1e-12);   /* s2's weight is 0: s1's only */
  ck_assert_double_eq_tol(ba->delay, 0.030, 1e-12);
  ck_assert_double_eq_tol(ba->distance, 1000, 1e-9);
  checked_free(c);
  remove_folder();
}
END_TEST

/* Without labels a matrix is matched in declaration order; `all` covers
 * the subjects without a statement of their own. */
START_TEST(all_covers_the_rest) {
  make_folder();
  write_file("w1.csv", "a,b\n0,1\n0,0\n");
  write_file("g.csv", "a,b\n0,0\n3,0\n");
  Checked *c = check_ok("subjects s1, s2, s3\n"
                        "region A, B : cortex\n"
                        "data A of s1 = csv(\"none.csv\", rate: 10Hz, channels: 1)\n"
                        "structure of all = connectome(weights: csv(\"g.csv\"))\n"
                        "structure of s1 = connectome(weights: csv(\"w1.csv\"))\n"
                        "connect all -> all delay 100ms\n");
  const Model *m = c->model;
  ck_assert_int_eq(m->nedges, 2);
  const Edge *ab = find_edge(m, 0, 1), *ba = find_edge(m, 1, 0);
  ck_assert_double_eq(ab->weight[0], 1);
  ck_assert_double_eq(ab->weight[1], 0);
  ck_assert_double_eq(ba->weight[0], 0);
  ck_assert_double_eq(ba->weight[2], 1);
  checked_free(c);
  remove_folder();
}
END_TEST

START_TEST(errors_are_located) {
  make_folder();
  write_file("w.csv", "a,b\n0,1\n1,0\n");
  Checked *c = check("subjects s1, s2\n"
                     "region A, B, C : cortex\n"
                     "data A of s1 = csv(\"none.csv\", rate: 10Hz, channels: 1)\n"
                     "structure of s1 = connectome(weights: csv(\"w.csv\"))\n"
                     "structure of s2 = connectome(weights: csv(\"gone.csv\"))\n");
  const char *out = captured_text(&c->cap);
  ck_assert_ptr_null(c->model);
  ck_assert_msg(strstr(out, "brain.lobe:9:39: error[E0073]: expected a 3 x 3 matrix"), "%s",
                out);
  ck_assert_msg(strstr(out, "brain.lobe:10:43: error[E0069]: cannot read the connectome: "
                            "gone.csv: cannot open"), "%s", out);
  checked_free(c);
  remove_folder();
}
END_TEST

START_TEST(label_names) {
  ck_assert(lex_is_name("rA1"));
  ck_assert(lex_is_name("Precentral_L"));
  ck_assert(lex_is_name("x"));              /* names where no keyword fits */
  ck_assert(lex_is_name("from"));
  ck_assert(!lex_is_name("data"));
  ck_assert(!lex_is_name("structure"));
  ck_assert(!lex_is_name("ctx-lh-V1"));
  ck_assert(!lex_is_name("9a"));
  ck_assert(!lex_is_name("a.b"));
  ck_assert(!lex_is_name(""));
}
END_TEST

/* ---- real connectomes ------------------------------------------------------- */

START_TEST(tvb_zip_declares_regions) {
  if (!have(TVB76))
    return;
  make_folder();
  Checked *c = check_ok("subjects s1\n"
                        "region from connectome(\"" TVB76 "\") : cortex\n"
                        "data rA1 of s1 = csv(\"none.csv\", rate: 100Hz, channels: 1)\n");
  const Model *m = c->model;
  ck_assert_int_eq(m->nregions, 76);
  ck_assert_str_eq(m->regions[0].name, "rA1");
  ck_assert_str_eq(m->regions[75].name, "lCC");
  ck_assert(m->regions[0].has_position);
  ck_assert_double_eq_tol(m->regions[0].position[0], -9.885591e-3, 1e-12);
  ck_assert_double_eq_tol(m->regions[0].position[1], -47.084818e-3, 1e-12);
  ck_assert_double_eq_tol(m->regions[0].position[2], -3.139360e-3, 1e-12);
  ck_assert_int_eq(m->regions[75].aunn, 0);
  checked_free(c);
  remove_folder();
}
END_TEST

START_TEST(tvb_structure_and_tract_delays) {
  if (!have(TVB76))
    return;
  make_folder();
  Checked *c = check_ok("subjects s1\n"
                        "region from connectome(\"" TVB76 "\") : cortex\n"
                        "data rA1 of s1 = csv(\"none.csv\", rate: 1kHz, channels: 1)\n"
                        "structure of all = connectome(\"" TVB76 "\")\n"
                        "connect all -> all delay tract(speed: 3m / 1s)\n");
  Connectome tvb;
  char err[512];
  ck_assert_int_eq(structure_reader.read_zip(TVB76, &tvb, err, sizeof err), 0);
  double largest = 0;
  int nonzero = 0;
  for (int i = 0; i < 76 * 76; i++) {
    largest = fmax(largest, tvb.weights[i]);
    nonzero += tvb.weights[i] > 0 && i / 76 != i % 76;
  }
  const Model *m = c->model;
  ck_assert_int_eq(m->nedges, nonzero);
  for (int e = 0; e < m->nedges; e++) {
    const Edge *edge = &m->edges[e];
    int k = edge->from * 76 + edge->to;
    ck_assert_double_eq_tol(edge->weight[0], tvb.weights[k] / largest, 1e-12);
    ck_assert_double_eq_tol(edge->length, tvb.lengths[k] / 1000, 1e-12);
    ck_assert_double_eq_tol(edge->delay, tvb.lengths[k] / 1000 / 3, 1e-9);
  }
  sema_connectome_free(&tvb);
  checked_free(c);
  remove_folder();
}
END_TEST

/* 94 AAL2 regions named in declaration order, two people's DTI matrices. */
START_TEST(hcp_subjects_differ) {
  if (!have(HCP "101309/DTI_CM.mat") || !have(HCP "102311/DTI_CM.mat"))
    return;
  make_folder();
  char text[4096] = "subjects a, b\nregion r0";
  for (int i = 1; i < 94; i++)
    snprintf(text + strlen(text), sizeof text - strlen(text), ", r%d", i);
  strcat(text, " : cortex\n"
               "data r0 of a = csv(\"none.csv\", rate: 1Hz, channels: 1)\n"
               "structure of a = connectome(weights: mat(\"" HCP "101309/DTI_CM.mat\", var: sc),\n"
               "  lengths: mat(\"" HCP "101309/DTI_LEN.mat\", var: len))\n"
               "structure of b = connectome(weights: mat(\"" HCP "102311/DTI_CM.mat\", var: sc),\n"
               "  lengths: mat(\"" HCP "102311/DTI_LEN.mat\", var: len))\n"
               "connect all -> all delay tract(speed: 5m / 1s)\n");
  Checked *c = check_ok(text);
  const Model *m = c->model;
  int differ = 0;
  double largest[2] = {0, 0};
  ck_assert_int_gt(m->nedges, 1000);
  for (int e = 0; e < m->nedges; e++) {
    const double *w = m->edges[e].weight;
    differ += fabs(w[0] - w[1]) > 1e-6;
    largest[0] = fmax(largest[0], w[0]);
    largest[1] = fmax(largest[1], w[1]);
    ck_assert(w[0] > 0 || w[1] > 0);
    ck_assert_double_gt(m->edges[e].length, 0);
  }
  ck_assert_int_gt(differ, m->nedges / 2);
  ck_assert_double_eq_tol(largest[0], 1, 1e-12);
  ck_assert_double_eq_tol(largest[1], 1, 1e-12);
  checked_free(c);
  remove_folder();
}
END_TEST

START_TEST(hcp_wrong_variable) {
  if (!have(HCP "101309/DTI_CM.mat"))
    return;
  make_folder();
  Checked *c = check("subjects a\nregion A, B : cortex\n"
                     "data A of a = csv(\"none.csv\", rate: 1Hz, channels: 1)\n"
                     "structure of a = connectome(weights: mat(\"" HCP
                     "101309/DTI_CM.mat\", var: SC))\n");
  const char *out = captured_text(&c->cap);
  ck_assert_ptr_null(c->model);
  ck_assert_msg(strstr(out, "error[E0069]: cannot read the connectome: ") &&
                strstr(out, "DTI_CM.mat") && strstr(out, "SC"), "%s", out);
  checked_free(c);
  remove_folder();
}
END_TEST

static Suite *structure_suite(void) {
  Suite *s = suite_create("sema_structure");
  TCase *tc = tcase_create("structure");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, weights_normalised_and_zero_edges_dropped);
  tcase_add_test(tc, no_structure_no_weights);
  tcase_add_test(tc, tract_speed_delays);
  tcase_add_test(tc, all_covers_the_rest);
  tcase_add_test(tc, errors_are_located);
  tcase_add_test(tc, label_names);
  tcase_add_test(tc, tvb_zip_declares_regions);
  tcase_add_test(tc, tvb_structure_and_tract_delays);
  tcase_add_test(tc, hcp_subjects_differ);
  tcase_add_test(tc, hcp_wrong_variable);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(structure_suite());
}
