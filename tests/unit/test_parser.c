/* Unit tests of the parser (grammar.y) and the AST (ast.c): the example spec
 * and variations, the tree's shape, ast_dump, syntax errors and recovery,
 * and inputs built to break it (deep nesting, long inputs). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"
#include "test_util.h"

static const char *const example =
    "import std.encodings\n"
    "subjects m1, m2, m3\n"
    "\n"
    "aunn cortex {\n"
    "  index     fourier(bands: 16, max_period: 10s)   # optional min_period\n"
    "  condition concat(module: 8, subject: 4)\n"
    "  mlp       64 x 2, silu\n"
    "  latent    8\n"
    "}\n"
    "\n"
    "region V1 : cortex\n"
    "region LGN, V2 : cortex\n"
    "\n"
    "data V1 of m1 = csv(\"v1_m1.csv\", rate: 100Hz)\n"
    "data V1 of m2 = npy(\"data/v1_m2.npy\", rate: 0.1kHz, t0: 2s, channels: 4)\n"
    "\n"
    "loss mse(V1) + 0.5 * mse(LGN)\n"
    "train { steps: 2000, batch: 256, optimizer: adam(lr: 1e-3), seed: 1, "
    "checkpoint_every: 500 }\n";

typedef struct Parsed {
  Captured cap;
  Program *prog;
} Parsed;

static Parsed *parse_text(const char *text) {
  Parsed *p = calloc(1, sizeof *p);
  captured_open(&p->cap);
  p->prog = parse_file(p->cap.diag, diag_add_source(p->cap.diag, "t.lobe", text));
  return p;
}

/* Parses text, which must give exactly `errors` errors. */
static Parsed *parse_errors(const char *text, int errors) {
  Parsed *p = parse_text(text);
  ck_assert_int_eq(diag_errors(p->cap.diag), errors);
  return p;
}

static const char *messages(Parsed *p) { return captured_text(&p->cap); }

static void parsed_free(Parsed *p) {
  ast_free(p->prog);
  captured_close(&p->cap);
  free(p);
}

static bool name_is(Name n, const char *s) {
  return n.len == (int)strlen(s) && strncmp(n.start, s, n.len) == 0;
}

/* ast_expr_print into a string. */
static char *expr_text(const Expr *e) {
  MemText m;
  ast_expr_print(memtext_open(&m), e);
  return memtext_close(&m);
}

static void assert_expr(const Expr *e, const char *text) {
  char *got = expr_text(e);
  ck_assert_str_eq(got, text);
  free(got);
}

START_TEST(example_parses) {
  Parsed *p = parse_errors(example, 0);
  ck_assert_ptr_nonnull(p->prog);
  ck_assert_int_eq(p->prog->ndecls, 9);
  static const DeclKind kinds[] = {DECL_IMPORT, DECL_SUBJECTS, DECL_AUNN, DECL_REGION,
                                   DECL_REGION, DECL_DATA, DECL_DATA, DECL_LOSS,
                                   DECL_TRAIN};
  for (int i = 0; i < 9; i++)
    ck_assert_int_eq(p->prog->decls[i].kind, kinds[i]);
  parsed_free(p);
}
END_TEST

START_TEST(example_decls) {
  Parsed *p = parse_text(example);
  const Decl *d = p->prog->decls;
  ck_assert_str_eq(d[0].module, "std.encodings");
  ck_assert_int_eq(d[1].nnames, 3);
  ck_assert(name_is(d[1].names[2], "m3"));
  ck_assert(name_is(d[2].name, "cortex"));
  ck_assert_int_eq(d[2].nitems, 4);
  ck_assert(name_is(d[2].items[2].key, "mlp"));
  ck_assert_int_eq(d[2].items[2].values.n, 2);
  ck_assert_int_eq(d[4].nnames, 2);
  ck_assert(name_is(d[4].names[0], "LGN"));
  ck_assert(name_is(d[4].ref, "cortex"));
  ck_assert(name_is(d[6].name, "V1"));
  ck_assert(name_is(d[6].ref, "m2"));
  ck_assert_int_eq(d[8].nitems, 5);
  ck_assert(name_is(d[8].items[4].key, "checkpoint_every"));
  ck_assert_int_eq(d[6].pos.line, 15);
  ck_assert_int_eq(d[6].pos.col, 1);
  parsed_free(p);
}
END_TEST

START_TEST(expressions) {
  Parsed *p = parse_text(example);
  const Decl *d = p->prog->decls;
  const Expr *loss = d[7].value;
  ck_assert_int_eq(loss->kind, EXPR_BINARY);
  ck_assert_int_eq(loss->op, '+');
  ck_assert_int_eq(loss->rhs->op, '*');       /* * binds tighter than + */
  ck_assert_int_eq(loss->pos.col, 6);
  ck_assert_int_eq(loss->pos.len, 24);        /* the whole sum */
  const Expr *source = d[6].value;
  ck_assert_int_eq(source->kind, EXPR_CALL);
  ck_assert_int_eq(source->args.n, 4);
  ck_assert_int_eq(source->args.v[0].name.len, 0);
  ck_assert_str_eq(source->args.v[0].value->string, "data/v1_m2.npy");
  ck_assert(name_is(source->args.v[1].name, "rate"));
  const Expr *rate = source->args.v[1].value;
  ck_assert_double_eq_tol(rate->number, 0.1, 1e-12);
  ck_assert(name_is(rate->unit, "kHz"));
  assert_expr(d[2].items[2].values.v[0].value, "(64 x 2)");
  parsed_free(p);
}
END_TEST

START_TEST(precedence_and_forms) {
  Parsed *p = parse_errors("loss -a * (b + c) / 2 - [1, 2,] x f() + g(k: 1, 2,)\n", 0);
  /* x binds loosest: 2 * 32 x 3 + 1 is (2 * 32) x (3 + 1) */
  assert_expr(p->prog->decls[0].value,
              "((((-a * (b + c)) / 2) - [1, 2]) x (f() + g(k: 1, 2)))");
  parsed_free(p);
}
END_TEST

START_TEST(mlp_forms_and_x_as_name) {
  Parsed *p = parse_errors("aunn x {\n  mlp [128, 64], relu\n  mlp 32x3\n  latent 4 }\n"
                           "region x, y : x\n", 0);
  const Decl *d = p->prog->decls;
  ck_assert(name_is(d[0].name, "x"));
  ck_assert_int_eq(d[0].nitems, 3);           /* the last item may end at '}' */
  assert_expr(d[0].items[0].values.v[0].value, "[128, 64]");
  assert_expr(d[0].items[1].values.v[0].value, "(32 x 3)");
  ck_assert(name_is(d[1].names[0], "x"));
  ck_assert(name_is(d[1].ref, "x"));
  parsed_free(p);
}
END_TEST

START_TEST(train_separators) {
  Parsed *p = parse_errors("train {\n  steps: 10,\n  batch: 4\n\n"
                           "  seed: 2, checkpoint_every: 1,\n}\n", 0);
  ck_assert_int_eq(p->prog->decls[0].nitems, 4);
  parsed_free(p);
  p = parse_errors("train { }\ntrain {}\n", 0);
  ck_assert_int_eq(p->prog->ndecls, 2);
  parsed_free(p);
}
END_TEST

START_TEST(multiline_call) {
  Parsed *p = parse_errors("data V1 of m1 = csv(\n  \"a.csv\",\n  rate: 100Hz,\n)\n"
                           "loss mse(V1)", 0);
  ck_assert_int_eq(p->prog->ndecls, 2);
  ck_assert_int_eq(p->prog->decls[0].value->args.n, 2);
  parsed_free(p);
}
END_TEST

START_TEST(dump) {
  Parsed *p = parse_text("import std.observe\nsubjects a, b\naunn c {\n  mlp 8, tanh\n}\n"
                         "region r : c\ndata r of a = csv(\"x\\\"y.csv\", rate: 1.5kHz)\n"
                         "loss 2 * mse(r)\ntrain { optimizer: adam }\n");
  MemText m;
  ast_dump(memtext_open(&m), p->prog);
  char *buf = memtext_close(&m);
  ck_assert_str_eq(buf, "program t.lobe\n"
                        "  1:1 import std.observe\n"
                        "  2:1 subjects a, b\n"
                        "  3:1 aunn c\n"
                        "    4:3 mlp 8, tanh\n"
                        "  6:1 region r : c\n"
                        "  7:1 data r of a = csv(\"x\\\"y.csv\", rate: 1.5kHz)\n"
                        "  8:1 loss (2 * mse(r))\n"
                        "  9:1 train\n"
                        "    9:9 optimizer: adam\n");
  free(buf);
  parsed_free(p);
}
END_TEST

/* ---- syntax errors ------------------------------------------------------- */

START_TEST(error_message) {
  Parsed *p = parse_errors("region V1 cortex\n", 1);
  ck_assert_str_eq(messages(p), "t.lobe:1:11: error[E0008]: expected ',' or ':', found 'cortex'\n"
                                "    1 | region V1 cortex\n"
                                "      |           ^~~~~~\n");
  parsed_free(p);
}
END_TEST

START_TEST(several_errors_one_per_line) {
  Parsed *p = parse_errors("subjects m1 m2\n"
                           "region V1 : cortex\n"
                           "data V1 of m1 csv(\"a\", rate: 1Hz)\n"
                           "loss mse(V1) +\n"
                           "train { steps: 1 batch: 2 }\n"
                           "region V2 : cortex\n", 4);
  ck_assert_int_eq(p->prog->ndecls, 3);       /* the good lines are kept */
  ck_assert_int_eq(p->prog->decls[1].kind, DECL_TRAIN);
  parsed_free(p);
}
END_TEST

START_TEST(unknown_statement_suggests) {
  Parsed *p = parse_text("regoin V1 : c\n");
  ck_assert_ptr_nonnull(strstr(messages(p), "unknown statement 'regoin'; did you mean 'region'?"));
  parsed_free(p);
}
END_TEST

START_TEST(lost_brace_is_one_error) {
  Parsed *p = parse_errors("aunn cortex\n  index fourier(bands: 8, max_period: 1s)\n"
                           "  mlp 8, silu\n  latent 2\n  condition concat()\n}\n"
                           "region V1 : cortex\n", 1);
  ck_assert_ptr_nonnull(strstr(messages(p), "expected '{', found end of line"));
  ck_assert_int_eq(p->prog->ndecls, 1);
  parsed_free(p);
}
END_TEST

START_TEST(errors_inside_blocks) {
  Parsed *p = parse_errors("aunn c {\n  mlp 8 silu\n  latent: 2\n  index f()\n}\n"
                           "train { steps 1, batch: 2 }\n", 3);
  ck_assert_int_eq(p->prog->ndecls, 2);
  ck_assert_int_eq(p->prog->decls[0].nitems, 1);   /* index survives */
  ck_assert_int_eq(p->prog->decls[1].nitems, 1);   /* batch survives */
  parsed_free(p);
}
END_TEST

START_TEST(reserved_keywords) {
  Parsed *p = parse_errors("connect A -> B\nregion delay : c\n", 2);
  ck_assert_ptr_nonnull(strstr(messages(p), "'delay' is reserved"));
  parsed_free(p);
}
END_TEST

START_TEST(garbage_gives_null) {
  Parsed *p = parse_text("}}} ((( ,,,\n");
  ck_assert_ptr_null(p->prog);
  ck_assert_int_ge(diag_errors(p->cap.diag), 1);
  parsed_free(p);
  p = parse_text("");
  ck_assert_ptr_nonnull(p->prog);              /* empty, but not an error here */
  ck_assert_int_eq(p->prog->ndecls, 0);
  parsed_free(p);
}
END_TEST

/* ---- hostile input ------------------------------------------------------- */

static char *repeat(const char *prefix, const char *unit, int n, const char *suffix) {
  size_t len = strlen(prefix) + strlen(unit) * n + strlen(suffix) + 1;
  char *s = malloc(len);
  strcpy(s, prefix);
  char *end = s + strlen(s);
  for (int i = 0; i < n; i++, end += strlen(unit))
    memcpy(end, unit, strlen(unit));
  strcpy(end, suffix);
  return s;
}

/* Parses prefix, n copies of unit, then suffix; checks the error count. */
static Parsed *parse_repeated(const char *prefix, const char *unit, int n, const char *suffix,
                              int errors) {
  char *text = repeat(prefix, unit, n, suffix);
  Parsed *p = parse_errors(text, errors);
  free(text);
  return p;
}

START_TEST(deep_expression) {
  Parsed *p = parse_repeated("loss m(a)", " + m(a)", 100000, "\nregion r : c\n", 1);
  ck_assert_ptr_nonnull(strstr(messages(p), "nested too deeply"));
  ck_assert_int_eq(p->prog->ndecls, 2);
  ck_assert_int_eq(p->prog->decls[0].value->kind, EXPR_ERROR);
  parsed_free(p);
}
END_TEST

START_TEST(deep_brackets) {
  Parsed *p = parse_repeated("loss ", "([", 5000, "\n", 1);
  ck_assert_ptr_nonnull(strstr(messages(p), "nesting too deep"));
  parsed_free(p);
}
END_TEST

START_TEST(many_statements) {
  Parsed *p = parse_repeated("", "region r : c\n", 20000, "", 0);
  ck_assert_int_eq(p->prog->ndecls, 20000);
  parsed_free(p);
}
END_TEST

START_TEST(many_errors_are_capped) {
  Parsed *p = parse_repeated("", "region : c\n", 5000, "", 5000);
  const char *out = messages(p);
  ck_assert_ptr_nonnull(strstr(out, "more errors not shown"));
  ck_assert_int_lt((int)strlen(out), 20000);
  parsed_free(p);
}
END_TEST

Suite *parser_suite(void) {
  Suite *s = suite_create("parser");
  TCase *tc = tcase_create("trees");
  tcase_add_test(tc, example_parses);
  tcase_add_test(tc, example_decls);
  tcase_add_test(tc, expressions);
  tcase_add_test(tc, precedence_and_forms);
  tcase_add_test(tc, mlp_forms_and_x_as_name);
  tcase_add_test(tc, train_separators);
  tcase_add_test(tc, multiline_call);
  tcase_add_test(tc, dump);
  suite_add_tcase(s, tc);
  TCase *te = tcase_create("errors");
  tcase_add_test(te, error_message);
  tcase_add_test(te, several_errors_one_per_line);
  tcase_add_test(te, unknown_statement_suggests);
  tcase_add_test(te, lost_brace_is_one_error);
  tcase_add_test(te, errors_inside_blocks);
  tcase_add_test(te, reserved_keywords);
  tcase_add_test(te, garbage_gives_null);
  suite_add_tcase(s, te);
  TCase *th = tcase_create("hostile");
  tcase_add_test(th, deep_expression);
  tcase_add_test(th, deep_brackets);
  tcase_add_test(th, many_statements);
  tcase_add_test(th, many_errors_are_capped);
  suite_add_tcase(s, th);
  return s;
}

int main(void) {
  return test_run_suite(parser_suite());
}
