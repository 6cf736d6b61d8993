/* Unit tests of `lobec fmt` (fmt.c) and of the comments the lexer records for
 * it: exact canonical forms of messy inputs, and over each of them the two
 * properties fmt promises: it is idempotent and it keeps the AST. */
#include <check.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"
#include "test_util.h"

typedef struct Case {
  const char *input, *canonical;
} Case;

static const Case cases[] = {
    {/* spacing of statements */
     "import  std . encodings\n"
     "subjects   m1 ,m2,m3\n"
     "region V1,V2:cortex\n"
     "data V1 of m1=csv( \"a \\\"b\\\".csv\" ,rate:0.1kHz, t0 : 2.50s , )\n"
     "loss mse(V1)+0.5*( mse(V2) )/4\n",
     "import std.encodings\n"
     "subjects m1, m2, m3\n"
     "region V1, V2 : cortex\n"
     "data V1 of m1 = csv(\"a \\\"b\\\".csv\", rate: 0.1kHz, t0: 2.50s)\n"
     "loss mse(V1) + 0.5 * (mse(V2)) / 4\n"},
    {/* blocks: one item per line, values aligned */
     "aunn cortex { index fourier(bands:16,max_period:10s)\n"
     "mlp 64x2 , silu\n"
     "    condition   film( module:8 )\n"
     "latent 8 }\n"
     "train { steps: 3000, batch: 256, optimizer: adam(lr: 2e-3,), seed: 1 }\n"
     "train {}\n",
     "aunn cortex {\n"
     "  index     fourier(bands: 16, max_period: 10s)\n"
     "  mlp       64 x 2, silu\n"
     "  condition film(module: 8)\n"
     "  latent    8\n"
     "}\n"
     "train {\n"
     "  steps:     3000\n"
     "  batch:     256\n"
     "  optimizer: adam(lr: 2e-3)\n"
     "  seed:      1\n"
     "}\n"
     "train {\n"
     "}\n"},
    {/* signs, and x as an operator or a name */
     "loss - 1 - -x*-(2) x x(x)\n"
     "aunn a {\n"
     "  x  - 3 ,[ 1,2, ]\n"
     "  mlp x x 2\n"
     "}\n",
     "loss -1 - -x * -(2) x x(x)\n"
     "aunn a {\n"
     "  x   -3, [1, 2]\n"
     "  mlp x x 2\n"
     "}\n"},
    {/* blank lines: at most one, none at the ends of the file or a block */
     "\n\n\nsubjects a\n\n\n\nsubjects b\nsubjects c\n"
     "aunn n {\n\n  latent 1\n\n\n  mlp 2\n\n}\n\n\n",
     "subjects a\n\nsubjects b\nsubjects c\n"
     "aunn n {\n  latent 1\n\n  mlp    2\n}\n"},
    {/* comments everywhere */
     "# head\n"
     "\n"
     "\n"
     "subjects m1   # trailing   \n"
     "aunn c {   # after the brace\n"
     "  # first\n"
     "  index f(a: 1,   # inside a call\n"
     "     # on a line of its own\n"
     "     b: 2)  # after the call\n"
     "\n"
     "  # before the brace\n"
     "}  # after the brace\n"
     "train { steps: 1, # after steps\n"
     "  seed: 2, batch: 3 }# at the end\n"
     "# tail\n"
     "\n",
     "# head\n"
     "\n"
     "subjects m1  # trailing\n"
     "aunn c {  # after the brace\n"
     "  # first\n"
     "  # inside a call\n"
     "  # on a line of its own\n"
     "  index f(a: 1, b: 2)  # after the call\n"
     "\n"
     "  # before the brace\n"
     "}  # after the brace\n"
     "train {\n"
     "  steps: 1  # after steps\n"
     "  seed:  2\n"
     "  batch: 3\n"
     "}  # at the end\n"
     "# tail\n"},
    {/* line ends of other systems, no line end at the end */
     "subjects a,b\r\n# c\r\nloss mse(a)", "subjects a, b\n# c\nloss mse(a)\n"},
    {/* the statements of the brain graph */
     "import  shared . areas   as   areas\n"
     "import std.priors as p\n"
     "let fast=fourier( bands:32 ,max_period:10s )\n"
     "let   w =p.wiring\n"
     "region LGN:cortex   at[ 0mm ,-20mm,5mm, ]\n"
     "region V1,V2:areas.cortex at pos(x: 1mm)\n"
     "connect LGN->V1\n"
     "connect   V1->[ V2,MT, ]delay 10ms   prior   sparse( l1:1e-3 )\n"
     "connect V2->V1 prior w delay tract(length:40mm,speed:2m/1s)\n"
     "connect all -> all delay -2ms\n",
     "import shared.areas as areas\n"
     "import std.priors as p\n"
     "let fast = fourier(bands: 32, max_period: 10s)\n"
     "let w = p.wiring\n"
     "region LGN : cortex at [0mm, -20mm, 5mm]\n"
     "region V1, V2 : areas.cortex at pos(x: 1mm)\n"
     "connect LGN -> V1\n"
     "connect V1 -> [V2, MT] delay 10ms prior sparse(l1: 1e-3)\n"
     "connect V2 -> V1 prior w delay tract(length: 40mm, speed: 2m / 1s)\n"
     "connect all -> all delay -2ms\n"},
    {/* comments around and inside them; a list over several lines */
     "# presets\n"
     "let w = sparse(l1: 1e-3,  # per edge\n"
     "   distance: 1e-4)   # per mm\n"
     "\n\n"
     "# the pathway\n"
     "connect LGN -> [V1,\n"
     "  # feedforward\n"
     "  V2] prior w  # wired\n"
     "region V1 : c at [1mm,\n"
     "   2mm, 3mm]\n"
     "import a.b as c   # last\n",
     "# presets\n"
     "# per edge\n"
     "let w = sparse(l1: 1e-3, distance: 1e-4)  # per mm\n"
     "\n"
     "# the pathway\n"
     "# feedforward\n"
     "connect LGN -> [V1, V2] prior w  # wired\n"
     "region V1 : c at [1mm, 2mm, 3mm]\n"
     "import a.b as c  # last\n"},
    {"", ""},
    {"\n# only\n\n\n# comments\n", "# only\n\n# comments\n"},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

/* ---- helpers ------------------------------------------------------------------ */

/* fmt_source of text; the diagnostics, if any, to *messages. */
static char *format(const char *text, char **messages) {
  MemText o;
  Diag *d = diag_new(memtext_open(&o), false);
  char *canonical = fmt_source(d, diag_add_source(d, "t.lobe", text));
  diag_flush(d);
  diag_free(d);
  char *m = memtext_close(&o);
  if (messages)
    *messages = m;
  else
    free(m);
  return canonical;
}

static char *format_ok(const char *text) {
  char *messages;
  char *canonical = format(text, &messages);
  ck_assert_msg(canonical, "fmt failed on:\n%s\n%s", text, messages);
  ck_assert_str_eq(messages, "");
  free(messages);
  return canonical;
}

/* Drops the "LINE:COL " after the indentation of each line of an AST dump. */
static void drop_positions(char *dump) {
  char *w = dump;
  for (char *r = dump; *r;) {
    while (*r == ' ')
      *w++ = *r++;
    size_t n = strspn(r, "0123456789:");
    if (n && r[n] == ' ')
      r += n + 1;
    while (*r && *r != '\n')
      *w++ = *r++;
    if (*r)
      *w++ = *r++;
  }
  *w = 0;
}

/* The AST dump, without the positions (they move). */
static char *ast_text(const char *text) {
  MemText dump;
  memtext_open(&dump);
  Diag *d = diag_new(stderr, false);
  Program *p = parse_file(d, diag_add_source(d, "t.lobe", text));
  ck_assert_int_eq(diag_errors(d), 0);
  if (p)
    ast_dump(dump.stream, p);
  ast_free(p);
  diag_free(d);
  char *s = memtext_close(&dump);
  drop_positions(s);
  return s;
}

/* ---- tests -------------------------------------------------------------------- */

START_TEST(canonical_forms) {
  char *canonical = format_ok(cases[_i].input);
  ck_assert_str_eq(canonical, cases[_i].canonical);
  free(canonical);
}
END_TEST

START_TEST(idempotent) {
  char *once = format_ok(cases[_i].input);
  char *twice = format_ok(once);
  ck_assert_str_eq(twice, once);
  free(once);
  free(twice);
}
END_TEST

START_TEST(keeps_the_ast) {
  char *canonical = format_ok(cases[_i].input);
  char *before = ast_text(cases[_i].input), *after = ast_text(canonical);
  ck_assert_str_eq(after, before);
  free(canonical);
  free(before);
  free(after);
}
END_TEST

/* The position filter above must not hide a real difference. */
START_TEST(ast_text_sees_changes) {
  char *a = ast_text("loss 1 + 2 * 3\n"), *b = ast_text("loss (1 + 2) * 3\n");
  ck_assert_str_ne(a, b);
  ck_assert_ptr_null(strstr(a, "1:1"));
  ck_assert_ptr_nonnull(strstr(a, "loss (1 + (2 * 3))"));
  free(a);
  free(b);
}
END_TEST

START_TEST(syntax_errors_are_not_formatted) {
  char *messages;
  ck_assert_ptr_null(format("subjects a\nregion V1 cortex\n", &messages));
  ck_assert_ptr_nonnull(strstr(messages, "t.lobe:2:"));
  free(messages);
  ck_assert_ptr_null(format("aunn a {\n  mlp 2\n", &messages));
  ck_assert_ptr_nonnull(strstr(messages, "expected '}'"));
  free(messages);
  ck_assert_ptr_null(format("subjects a # ok\nsubjects $b\n", &messages));
  free(messages);
}
END_TEST

/* Meaning errors are sema's business: fmt formats them. */
START_TEST(unknown_names_are_formatted) {
  char *canonical = format_ok("region V1:nowhere\n");
  ck_assert_str_eq(canonical, "region V1 : nowhere\n");
  free(canonical);
}
END_TEST

START_TEST(long_sum) {
  enum { TERMS = 1000 };
  char *text = malloc(TERMS * 12 + 16), *p = text;
  p += sprintf(p, "loss ");
  for (int i = 0; i < TERMS; i++)
    p += sprintf(p, "%smse(r%d)", i ? "+" : "", i);
  sprintf(p, "\n");
  char *canonical = format_ok(text);
  ck_assert_int_eq((int)strlen(canonical), (int)strlen(text) + 2 * (TERMS - 1));
  ck_assert_ptr_nonnull(strstr(canonical, "mse(r998) + mse(r999)\n"));
  free(canonical);
  free(text);
}
END_TEST

/* ---- the specs of the source tree ---------------------------------------------- */

typedef struct Paths {
  char **v;
  int n;
} Paths;

static bool is_spec(const char *name) {
  size_t n = strlen(name);
  return n > 5 && strcmp(name + n - 5, ".lobe") == 0;
}

/* Every .lobe file under dir, at any depth (none if dir does not exist). */
static void find_specs(const char *dir, Paths *out) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (is_spec(e->d_name)) {
      out->v = realloc(out->v, (size_t)(out->n + 1) * sizeof *out->v);
      out->v[out->n++] = strdup(path);
    } else
      find_specs(path, out);     /* opendir fails on a file: nothing */
  }
  closedir(d);
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f, "cannot read %s", path);
  MemText m;
  FILE *out = memtext_open(&m);
  int c;
  while ((c = getc(f)) != EOF)
    putc(c, out);
  fclose(f);
  return memtext_close(&m);
}

/* What run_fmt.sh checks through lobec, here without sema, so that modules
 * (stdlib, files an example imports) are covered too: every spec of the
 * stdlib and the examples formats, idempotently, to the same AST. */
START_TEST(source_tree_specs) {
  Paths specs = {0};
  find_specs(LOBE_SOURCE_DIR "/stdlib", &specs);
  find_specs(LOBE_SOURCE_DIR "/examples", &specs);
  ck_assert_int_gt(specs.n, 0);
  for (int i = 0; i < specs.n; i++) {
    char *text = read_text(specs.v[i]), *messages;
    char *once = format(text, &messages);
    ck_assert_msg(once, "%s: fmt failed:\n%s", specs.v[i], messages);
    free(messages);
    char *twice = format_ok(once), *before = ast_text(text), *after = ast_text(once);
    ck_assert_msg(strcmp(once, twice) == 0, "%s: fmt is not idempotent", specs.v[i]);
    ck_assert_msg(strcmp(before, after) == 0, "%s: fmt changed the AST", specs.v[i]);
    free(text);
    free(once);
    free(twice);
    free(before);
    free(after);
    free(specs.v[i]);
  }
  free(specs.v);
}
END_TEST

/* ---- the lexer's comments ------------------------------------------------------ */

static int count_comments(const char *text, bool keep, Token *first) {
  Diag *d = diag_new(stderr, false);
  Lexer lx;
  lex_init(&lx, d, diag_add_source(d, "t.lobe", text));
  lx.keep_comments = keep;
  Token t;
  while (lex_next(&lx, &t)) {
  }
  int n = lx.ncomments;
  if (n)
    *first = lx.comments[0];
  free(lx.comments);
  diag_free(d);
  return n;
}

START_TEST(lexer_records_comments) {
  const char *text = "# a\nsubjects m1  # b \naunn x {\n# c\n}\n";
  Token first = {0};
  ck_assert_int_eq(count_comments(text, true, &first), 3);
  ck_assert_int_eq(first.pos.line, 1);
  ck_assert_int_eq(first.pos.col, 1);
  ck_assert_int_eq(first.len, 3);
  ck_assert_int_eq(count_comments(text, false, &first), 0);
}
END_TEST

static Suite *fmt_suite(void) {
  Suite *s = suite_create("fmt");
  TCase *tc = tcase_create("cases");
  tcase_add_loop_test(tc, canonical_forms, 0, NCASES);
  tcase_add_loop_test(tc, idempotent, 0, NCASES);
  tcase_add_loop_test(tc, keeps_the_ast, 0, NCASES);
  tcase_add_test(tc, ast_text_sees_changes);
  suite_add_tcase(s, tc);
  TCase *te = tcase_create("edges");
  tcase_add_test(te, syntax_errors_are_not_formatted);
  tcase_add_test(te, unknown_names_are_formatted);
  tcase_add_test(te, long_sum);
  tcase_add_test(te, source_tree_specs);
  tcase_add_test(te, lexer_records_comments);
  suite_add_tcase(s, te);
  return s;
}

int main(void) {
  return test_run_suite(fmt_suite());
}
