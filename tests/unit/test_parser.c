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

/* The surface syntax of the brain graph (issue 3). */
static const char *const graph =
    "import std.priors\n"
    "import shared.areas as areas\n"
    "let fast = fourier(bands: 32, max_period: 10s)\n"
    "subjects m1\n"
    "aunn cortex {\n"
    "  index fast\n"
    "  embed 16\n"
    "}\n"
    "region LGN : cortex at [0mm, -20mm, 5mm]\n"
    "region V1, V2 : areas.cortex\n"
    "connect LGN -> V1\n"
    "connect V1 -> [V2, MT]\n"
    "connect V2 -> V1 delay 10ms\n"
    "connect V1 -> V2 delay tract(length: 40mm, speed: 2m / 1s)\n"
    "connect all -> all delay 20ms prior sparse(l1: 1e-3, distance: 1e-4)\n"
    "connect V1 -> V2 prior priors.wiring delay 5ms\n"
    "loss mse(V1) + 2 * poisson(LGN) + 1e-4 * l2(areas.cortex)\n";

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

START_TEST(graph_parses) {
  Parsed *p = parse_errors(graph, 0);
  ck_assert_int_eq(p->prog->ndecls, 14);
  static const DeclKind kinds[] = {DECL_IMPORT, DECL_IMPORT, DECL_LET, DECL_SUBJECTS,
                                   DECL_AUNN, DECL_REGION, DECL_REGION, DECL_CONNECT,
                                   DECL_CONNECT, DECL_CONNECT, DECL_CONNECT,
                                   DECL_CONNECT, DECL_CONNECT, DECL_LOSS};
  for (int i = 0; i < 14; i++)
    ck_assert_int_eq(p->prog->decls[i].kind, kinds[i]);
  parsed_free(p);
}
END_TEST

START_TEST(imports_and_lets) {
  Parsed *p = parse_text(graph);
  const Decl *d = p->prog->decls;
  ck_assert_str_eq(d[0].module, "std.priors");
  ck_assert_int_eq(d[0].alias.len, 0);
  ck_assert_str_eq(d[1].module, "shared.areas");
  ck_assert(name_is(d[1].alias, "areas"));
  ck_assert_int_eq(d[1].alias.pos.col, 24);
  ck_assert_int_eq(d[1].module_pos.col, 8);
  ck_assert_int_eq(d[1].module_pos.len, 12);
  ck_assert(name_is(d[2].name, "fast"));
  ck_assert_int_eq(d[2].name.pos.col, 5);
  assert_expr(d[2].value, "fourier(bands: 32, max_period: 10s)");
  ck_assert_int_eq(d[2].pos.line, 3);
  parsed_free(p);
  p = parse_errors("import std . encodings as enc\n", 0);
  ck_assert_str_eq(p->prog->decls[0].module, "std.encodings");
  ck_assert(name_is(p->prog->decls[0].alias, "enc"));
  parsed_free(p);
}
END_TEST

START_TEST(regions_with_positions) {
  Parsed *p = parse_text(graph);
  const Decl *d = p->prog->decls;
  ck_assert(name_is(d[5].ref, "cortex"));
  ck_assert_ptr_nonnull(d[5].position);
  ck_assert_int_eq(d[5].position->kind, EXPR_LIST);
  assert_expr(d[5].position, "[0mm, -20mm, 5mm]");
  ck_assert_int_eq(d[6].nnames, 2);
  ck_assert(name_is(d[6].ref, "areas.cortex"));  /* one Name spans the dotted text */
  ck_assert_int_eq(d[6].ref.pos.col, 17);
  ck_assert_int_eq(d[6].ref.pos.len, 12);
  ck_assert_ptr_null(d[6].position);
  parsed_free(p);
}
END_TEST

START_TEST(connects) {
  Parsed *p = parse_text(graph);
  const Decl *d = p->prog->decls;
  ck_assert_int_eq(d[7].from->kind, EXPR_NAME);
  ck_assert(name_is(d[7].from->name, "LGN"));
  ck_assert(name_is(d[7].to->name, "V1"));
  ck_assert_int_eq(d[7].arrow.line, 11);
  ck_assert_int_eq(d[7].arrow.col, 13);
  ck_assert_int_eq(d[7].arrow.len, 2);
  ck_assert_ptr_null(d[7].delay);
  ck_assert_ptr_null(d[7].prior);
  ck_assert_int_eq(d[8].to->kind, EXPR_LIST);
  assert_expr(d[8].to, "[V2, MT]");
  ck_assert_int_eq(d[8].to->pos.col, 15);
  ck_assert_int_eq(d[8].to->pos.len, 8);
  assert_expr(d[9].delay, "10ms");
  assert_expr(d[10].delay, "tract(length: 40mm, speed: (2m / 1s))");
  ck_assert(name_is(d[11].from->name, "all"));   /* `all` is a name to sema */
  assert_expr(d[11].delay, "20ms");
  assert_expr(d[11].prior, "sparse(l1: 0.001, distance: 0.0001)");
  assert_expr(d[12].delay, "5ms");               /* prior first: same fields */
  assert_expr(d[12].prior, "priors.wiring");
  ck_assert_int_eq(d[12].prior->kind, EXPR_NAME);
  ck_assert_int_eq(d[12].prior->pos.len, 13);
  parsed_free(p);
}
END_TEST

/* `region from CONNECTOME : AUNN` and `structure of SUBJECT = CONNECTOME`;
 * `from` stays a name elsewhere. */
START_TEST(connectome_statements) {
  Parsed *p = parse_text("region from connectome(\"tvb.zip\") : areas.cortex\n"
                         "structure of all = connectome(weights: csv(\"w.csv\"))\n"
                         "connect from -> x\n");
  const Decl *d = p->prog->decls;
  ck_assert_int_eq(p->prog->ndecls, 3);
  ck_assert_int_eq(d[0].kind, DECL_REGION);
  ck_assert_int_eq(d[0].nnames, 0);
  assert_expr(d[0].value, "connectome(\"tvb.zip\")");
  ck_assert(name_is(d[0].ref, "areas.cortex"));
  ck_assert_int_eq(d[1].kind, DECL_STRUCTURE);
  ck_assert(name_is(d[1].ref, "all"));
  assert_expr(d[1].value, "connectome(weights: csv(\"w.csv\"))");
  ck_assert(name_is(d[2].from->name, "from"));
  parsed_free(p);
}
END_TEST

/* The formatter prints them in their canonical form. */
START_TEST(connectome_statements_formatted) {
  Captured cap;
  captured_open(&cap);
  SrcFile *file = diag_add_source(cap.diag, "t.lobe",
                                  "region  from connectome( \"a.zip\" ):c\n"
                                  "structure of s1=connectome(weights:mat(\"w.mat\",var:w))\n"
                                  "let y = from-1\n");
  char *text = fmt_source(cap.diag, file);
  ck_assert_ptr_nonnull(text);
  ck_assert_str_eq(text, "region from connectome(\"a.zip\") : c\n"
                         "structure of s1 = connectome(weights: mat(\"w.mat\", var: w))\n"
                         "let y = from - 1\n");
  free(text);
  captured_close(&cap);
}
END_TEST

START_TEST(qualified_names_in_expressions) {
  Parsed *p = parse_text(graph);
  const Expr *l2 = p->prog->decls[13].value->rhs->rhs;
  ck_assert_int_eq(l2->kind, EXPR_CALL);
  ck_assert(name_is(l2->name, "l2"));
  ck_assert(name_is(l2->args.v[0].value->name, "areas.cortex"));
  parsed_free(p);
  p = parse_errors("aunn a {\n  index enc.eeg\n  mlp [w.n, 8] x 2, act.smooth\n}\n", 0);
  assert_expr(p->prog->decls[0].items[0].values.v[0].value, "enc.eeg");
  assert_expr(p->prog->decls[0].items[1].values.v[0].value, "([w.n, 8] x 2)");
  assert_expr(p->prog->decls[0].items[1].values.v[1].value, "act.smooth");
  parsed_free(p);
}
END_TEST

START_TEST(dump_graph) {
  Parsed *p = parse_text("import std.priors as p\nlet w = p.wiring\n"
                         "region A, B : c at [1mm, -2mm, 3mm]\nregion C : n.c\n"
                         "connect A -> [B, C] delay 1ms prior w\nconnect B -> A prior w\n");
  MemText m;
  ast_dump(memtext_open(&m), p->prog);
  char *buf = memtext_close(&m);
  ck_assert_str_eq(buf, "program t.lobe\n"
                        "  1:1 import std.priors as p\n"
                        "  2:1 let w = p.wiring\n"
                        "  3:1 region A, B : c at [1mm, -2mm, 3mm]\n"
                        "  4:1 region C : n.c\n"
                        "  5:1 connect A -> [B, C] delay 1ms prior w\n"
                        "  6:1 connect B -> A prior w\n");
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
  Parsed *p = parse_errors("simulate A\nregion simulate : c\nconnect A -> B\n", 2);
  const char *out = messages(p);
  ck_assert_ptr_nonnull(strstr(out, "1:1: error[E0011]: 'simulate' is reserved"));
  ck_assert_ptr_nonnull(strstr(out, "2:8: error[E0011]: 'simulate' is reserved"));
  ck_assert_int_eq(p->prog->ndecls, 1);
  parsed_free(p);
}
END_TEST

/* Each line: the text, and the message its one error must contain. */
static const char *const malformed[][2] = {
    {"connect V1 ->\n", "1:14: error[E0008]: expected a name or '[', found end of line"},
    {"connect -> V1\n", "1:9: error[E0008]: expected a name or '[', found '->'"},
    {"connect V1 V2\n", "1:12: error[E0008]: expected '->', found 'V2'"},
    {"connect V1 -> 3\n", "expected a name or '[', found '3'"},
    {"connect V1 -> V2 delay\n", "expected an expression, found end of line"},
    {"connect V1 -> V2 delay 1ms delay 2ms\n",
     "expected 'prior' or end of line, found 'delay'"},
    {"connect V1 -> V2 prior p prior q\n",
     "expected 'delay', '(' or end of line, found 'prior'"},
    {"connect [A, B -> C\n", "expected '(', ']' or ',', found '->'"},
    {"import a as\n", "1:12: error[E0008]: expected a name, found end of line"},
    {"import a as b c\n", "expected end of line, found 'c'"},
    {"import a as b.c\n", "expected a name, found 'b.c'"},
    {"let = 3\n", "expected a name, found '='"},
    {"let x 3\n", "expected '=', found '3'"},
    {"let x.y = 3\n", "expected a name, found 'x.y'"},
    {"region a.b : c\n", "1:8: error[E0008]: expected a name, found 'a.b'"},
    {"region A : c at\n", "expected an expression, found end of line"},
    {"region A : c [1, 2]\n", "expected 'at' or end of line, found '['"},
    {"loss mse(areas . cortex)\n",
     "1:16: error[E0008]: a qualified name has no blanks around its '.'"},
    {"loss mse(areas. cortex)\n", "a qualified name has no blanks"},
    {"loss a.b(1)\n", "expected end of line, found '('"},
    {"conect A -> B\n", "unknown statement 'conect'; did you mean 'connect'?"},
    {"lett x = 1\n", "unknown statement 'lett'; did you mean 'let'?"},
    {"loss .5\n", "expected an expression, found '.'"},
};
enum { NMALFORMED = sizeof malformed / sizeof malformed[0] };

START_TEST(malformed_statements) {
  Parsed *p = parse_errors(malformed[_i][0], 1);
  ck_assert_msg(strstr(messages(p), malformed[_i][1]), "%s gave:\n%s", malformed[_i][0],
                messages(p));
  parsed_free(p);
}
END_TEST

/* The statement keywords message lists the new ones too. */
START_TEST(statement_list) {
  Parsed *p = parse_errors("frobnicate\n", 1);
  ck_assert_ptr_nonnull(strstr(messages(p), "expected a statement (import, let, subjects, "
                                            "aunn, region, connect, data, observe, "
                                            "structure, loss or train)"));
  parsed_free(p);
}
END_TEST

/* Half-built connects, regions and lets are freed on every error path (the
 * sanitizer build checks for leaks); the good lines around them survive. */
START_TEST(errors_free_partial_statements) {
  Parsed *p = parse_errors("connect [A, f(1)] -> [B] delay g(2) prior h(3) ]\n"
                           "connect [A] -> [B] prior h(3) delay g(2) ]\n"
                           "connect [A] -> [f(B)] delay\n"
                           "connect [A] -> [B] prior s(1) (\n"
                           "region A : c at [1mm, 2mm] ]\n"
                           "let a = [f(1), 2] ]\n"
                           "import a.b as c d\n"
                           "connect A -> B\n", 7);
  ck_assert_int_eq(p->prog->ndecls, 1);
  ck_assert_int_eq(p->prog->decls[0].kind, DECL_CONNECT);
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

START_TEST(many_connects) {
  Parsed *p = parse_repeated("", "connect A -> [B, C] delay 1ms prior w\n", 20000, "", 0);
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
  tcase_add_test(tc, graph_parses);
  tcase_add_test(tc, imports_and_lets);
  tcase_add_test(tc, regions_with_positions);
  tcase_add_test(tc, connects);
  tcase_add_test(tc, connectome_statements);
  tcase_add_test(tc, connectome_statements_formatted);
  tcase_add_test(tc, qualified_names_in_expressions);
  tcase_add_test(tc, dump_graph);
  suite_add_tcase(s, tc);
  TCase *te = tcase_create("errors");
  tcase_add_test(te, error_message);
  tcase_add_test(te, several_errors_one_per_line);
  tcase_add_test(te, unknown_statement_suggests);
  tcase_add_test(te, lost_brace_is_one_error);
  tcase_add_test(te, errors_inside_blocks);
  tcase_add_test(te, reserved_keywords);
  tcase_add_loop_test(te, malformed_statements, 0, NMALFORMED);
  tcase_add_test(te, statement_list);
  tcase_add_test(te, errors_free_partial_statements);
  tcase_add_test(te, garbage_gives_null);
  suite_add_tcase(s, te);
  TCase *th = tcase_create("hostile");
  tcase_add_test(th, deep_expression);
  tcase_add_test(th, deep_brackets);
  tcase_add_test(th, many_statements);
  tcase_add_test(th, many_connects);
  tcase_add_test(th, many_errors_are_capped);
  suite_add_tcase(s, th);
  return s;
}

int main(void) {
  return test_run_suite(parser_suite());
}
