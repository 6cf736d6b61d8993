/* Unit tests of graph.c: the dot text of Models built by hand (nodes with
 * coverage and positions, undelayed and delayed edges, priors, escaping)
 * and of Models that sema made from a spec. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"
#include "test_util.h"

static AunnDef aunns[] = {{.name = "cortex"}, {.name = "areas.thalamus"}};
static Subject subjects[] = {{.name = "m1"}, {.name = "m2"}};

/* LGN -> V1 -> V2 with the feedback V2 -> V1 (10 ms); V1 recorded in m1
 * (npy, 12 channels), LGN in m2 (csv, channels not known yet), V2 dark. */
static Region chain_regions[] = {
  {.name = "LGN", .aunn = 1}, {.name = "V1", .aunn = 0}, {.name = "V2", .aunn = 0},
};
static Source chain_sources[] = {
  {.name = "V1.m1", .region = 1, .subject = 0, .kind = SRC_NPY, .rate = 100, .channels = 12},
  {.name = "LGN.m2", .region = 0, .subject = 1, .kind = SRC_CSV, .rate = 1000},
};
static Edge chain_edges[] = {
  {.from = 0, .to = 1}, {.from = 1, .to = 2}, {.from = 2, .to = 1, .delay = 0.01},
};

static Model chain_model(void) {
  return (Model){
    .aunns = aunns, .naunns = 2, .regions = chain_regions, .nregions = 3,
    .subjects = subjects, .nsubjects = 2, .sources = chain_sources, .nsources = 2,
    .edges = chain_edges, .nedges = 3, .train = {.window = 16},
  };
}

/* graph_write_dot's text; the caller frees it. */
static char *dot_of(const Model *m, const char *title) {
  MemText t;
  graph_write_dot(memtext_open(&t), m, title);
  return memtext_close(&t);
}

static void assert_contains(const char *text, const char *part) {
  ck_assert_msg(strstr(text, part) != NULL, "missing «%s» in:\n%s", part, text);
}

static int count_of(const char *text, const char *part) {
  int n = 0;
  for (const char *p = strstr(text, part); p; p = strstr(p + 1, part))
    n++;
  return n;
}

START_TEST(nodes_show_aunn_and_coverage) {
  Model m = chain_model();
  char *dot = dot_of(&m, "brain.lobe");
  assert_contains(dot, "\"V1\" [style=\"rounded,filled\", fillcolor=\"#dbe9f6\"");
  assert_contains(dot, "\"LGN\" [style=\"rounded,filled\", fillcolor=\"#fde2c8\"");
  assert_contains(dot, "<TD COLSPAN=\"2\">areas.thalamus</TD>");
  assert_contains(dot, "m1 \u25cf</TD><TD ALIGN=\"LEFT\">npy 100 Hz, 12 ch</TD>");
  assert_contains(dot, "m2 \u25cf</TD><TD ALIGN=\"LEFT\">csv 1000 Hz</TD>");
  ck_assert_int_eq(count_of(dot, "\u25cf</TD>"), 2);
  ck_assert_int_eq(count_of(dot, "\u25cb</TD><TD ALIGN=\"LEFT\">-</TD>"), 4);
  /* V2 has no data in any subject: drawn dashed. */
  assert_contains(dot, "\"V2\" [style=\"rounded,filled,dashed\"");
  free(dot);
}
END_TEST

START_TEST(edges_solid_or_dashed_with_delay) {
  Model m = chain_model();
  char *dot = dot_of(&m, "brain.lobe");
  assert_contains(dot, "\"LGN\" -> \"V1\" [tooltip=\"LGN -> V1: same time step, no prior\"];");
  assert_contains(dot, "\"V2\" -> \"V1\" [style=dashed, constraint=false, label=\"10 ms\", "
                       "tooltip=\"V2 -> V1: delay 10 ms, no prior\"];");
  ck_assert_int_eq(count_of(dot, "\" -> \""), 3);
  free(dot);
}
END_TEST

START_TEST(title_names_subjects_and_window) {
  Model m = chain_model();
  char *dot = dot_of(&m, "specs/brain.lobe");
  assert_contains(dot, "label=<<B>specs/brain.lobe</B><BR/>subjects m1, m2; window 16; "
                       "3 regions, 3 edges<BR/>");
  free(dot);
}
END_TEST

START_TEST(priors_lengths_and_positions) {
  Region regions[] = {
    {.name = "A", .has_position = true, .position = {0, -0.02, 0.005}},
    {.name = "B", .has_position = true, .position = {0.04, -0.02, 0.005}},
  };
  Edge edges[] = {
    {.from = 0, .to = 1, .l1 = 1e-3, .distance = 0.1, .length = 0.04},
    {.from = 1, .to = 0, .delay = 0.02, .l1 = 1e-3, .distance = 0.1, .length = 0.04},
  };
  Model m = {.aunns = aunns, .naunns = 1, .regions = regions, .nregions = 2,
             .subjects = subjects, .nsubjects = 1, .edges = edges, .nedges = 2,
             .train = {.window = 1}};
  char *dot = dot_of(&m, "t.lobe");
  assert_contains(dot, "<TD COLSPAN=\"2\">cortex</TD></TR>\n"
                       "    <TR><TD COLSPAN=\"2\">at [0, -20, 5] mm</TD></TR>\n");
  assert_contains(dot, "<TD COLSPAN=\"2\">at [40, -20, 5] mm</TD>");
  assert_contains(dot, "\"A\" -> \"B\" [label=\"40 mm\", tooltip=\"A -> B: same time step, "
                       "length 40 mm, prior sparse(l1: 0.001, distance: 0.0001 per mm), "
                       "gate penalty 0.005\"];");
  assert_contains(dot, "[style=dashed, constraint=false, label=\"20 ms\\n40 mm\", ");
  assert_contains(dot, "subjects m1; window 1; 2 regions, 2 edges");
  free(dot);
}
END_TEST

START_TEST(no_edges_no_subjects) {
  Region regions[] = {{.name = "V1"}};
  Model m = {.aunns = aunns, .naunns = 1, .regions = regions, .nregions = 1,
             .train = {.window = 1}};
  char *dot = dot_of(&m, "t.lobe");
  ck_assert_ptr_null(strstr(dot, "\" -> \""));
  assert_contains(dot, "subjects; window 1; 1 region, 0 edges");
  assert_contains(dot, "<TR><TD COLSPAN=\"2\"><B>V1</B></TD></TR>");
  free(dot);
}
END_TEST

/* Names and titles are user text: quotes and markup must not end a dot
 * string or an HTML-like label early. */
START_TEST(escapes_user_text) {
  Region regions[] = {{.name = "a\"b\\c"}, {.name = "x<y>&z"}};
  Edge edges[] = {{.from = 0, .to = 1}};
  Model m = {.aunns = aunns, .naunns = 1, .regions = regions, .nregions = 2,
             .edges = edges, .nedges = 1, .train = {.window = 1}};
  char *dot = dot_of(&m, "dir/<\"a&b\">.lobe");
  assert_contains(dot, "<B>dir/&lt;&quot;a&amp;b&quot;&gt;.lobe</B>");
  assert_contains(dot, "\n  \"a\\\"b\\\\c\" [style=");
  assert_contains(dot, "<B>a&quot;b\\c</B>");
  assert_contains(dot, "<B>x&lt;y&gt;&amp;z</B>");
  assert_contains(dot, "tooltip=\"a\\\"b\\\\c -> x<y>&z: same time step");
  free(dot);
}
END_TEST

START_TEST(output_is_deterministic_and_closed) {
  Model m = chain_model();
  char *first = dot_of(&m, "brain.lobe");
  char *second = dot_of(&m, "brain.lobe");
  ck_assert_str_eq(first, second);
  ck_assert(strncmp(first, "digraph lobe {\n", 15) == 0);
  ck_assert_str_eq(first + strlen(first) - 2, "}\n");
  ck_assert_int_eq(count_of(first, "<TABLE"), 3);
  ck_assert_int_eq(count_of(first, "</TABLE>>];"), 3);
  free(first);
  free(second);
}
END_TEST

/* The dot text of spec as sema checks it (which must succeed); the caller
 * frees it. */
static char *dot_of_spec(const char *spec) {
  Captured cap;
  captured_open(&cap);
  Program *p = parse_file(cap.diag, diag_add_source(cap.diag, "/s/b.lobe", spec));
  Model *m = p ? sema_check(cap.diag, p) : NULL;
  ck_assert_msg(m != NULL, "%s", captured_text(&cap));
  char *dot = dot_of(m, "b.lobe");
  sema_free(m);
  ast_free(p);
  captured_close(&cap);
  return dot;
}

static const char *const aunn_spec =
    "subjects m1, m2\n"
    "aunn cortex {\n  index fourier(bands: 2, max_period: 1s)\n  mlp 8\n  embed 4\n}\n";

/* Coverage follows the spec's data lines. */
START_TEST(graph_of_checked_spec) {
  char spec[1024];
  snprintf(spec, sizeof spec, "%s%s", aunn_spec,
           "region V1, V2 : cortex\n"
           "data V1 of m2 = csv(\"v1.csv\", rate: 10Hz, channels: 3)\n"
           "data V2 of m1 = npy(\"v2.npy\", rate: 0.5kHz)\n"
           "loss mse(V1) + mse(V2)\n");
  char *dot = dot_of_spec(spec);
  assert_contains(dot, "m1 \u25cb</TD><TD ALIGN=\"LEFT\">-</TD></TR>\n"
                       "    <TR><TD ALIGN=\"LEFT\">m2 \u25cf</TD><TD ALIGN=\"LEFT\">"
                       "csv 10 Hz, 3 ch</TD>");
  assert_contains(dot, "m1 \u25cf</TD><TD ALIGN=\"LEFT\">npy 500 Hz</TD>");
  assert_contains(dot, "subjects m1, m2; window 1; 2 regions, 0 edges");
  free(dot);
}
END_TEST

/* Edges as sema makes them: groups, tract delays, all -> all with a prior
 * over positions, one arrow per merged edge. */
START_TEST(graph_of_checked_edges) {
  char spec[1024];
  snprintf(spec, sizeof spec, "%s%s", aunn_spec,
           "region A : cortex at [0mm, 0mm, 0mm]\n"
           "region B : cortex at [30mm, 40mm, 0mm]\n"
           "connect A -> B\n"
           "connect A -> [B]\n"
           "connect B -> A delay tract(length: 50mm, speed: 2m / 1s)\n"
           "connect all -> all delay 5ms prior sparse(l1: 1e-3, distance: 1e-4)\n"
           "data B of m1 = csv(\"b.csv\", rate: 1kHz, channels: 1)\n"
           "loss mse(B)\n"
           "train { steps: 1, batch: 1, window: 8, optimizer: adam(lr: 1e-3), seed: 1 }\n");
  char *dot = dot_of_spec(spec);
  ck_assert_int_eq(count_of(dot, "\" -> \""), 4);
  assert_contains(dot, "\"A\" -> \"B\" [label=\"50 mm\", tooltip=\"A -> B: same time step, "
                       "length 50 mm, no prior\"];");
  assert_contains(dot, "\"B\" -> \"A\" [style=dashed, constraint=false, "
                       "label=\"25 ms\\n50 mm\"");
  assert_contains(dot, "label=\"5 ms\\n50 mm\", tooltip=\"A -> B: delay 5 ms, length 50 mm, "
                       "prior sparse(l1: 0.001, distance: 0.0001 per mm), gate penalty 0.006\"");
  assert_contains(dot, "window 8; 2 regions, 4 edges");
  free(dot);
}
END_TEST

int main(void) {
  Suite *s = suite_create("graph");
  TCase *tc = tcase_create("dot");
  tcase_add_test(tc, nodes_show_aunn_and_coverage);
  tcase_add_test(tc, edges_solid_or_dashed_with_delay);
  tcase_add_test(tc, title_names_subjects_and_window);
  tcase_add_test(tc, priors_lengths_and_positions);
  tcase_add_test(tc, no_edges_no_subjects);
  tcase_add_test(tc, escapes_user_text);
  tcase_add_test(tc, output_is_deterministic_and_closed);
  suite_add_tcase(s, tc);
  TCase *checked = tcase_create("checked");
  tcase_add_test(checked, graph_of_checked_spec);
  tcase_add_test(checked, graph_of_checked_edges);
  suite_add_tcase(s, checked);
  return test_run_suite(s);
}
