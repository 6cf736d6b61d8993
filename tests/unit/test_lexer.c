/* Unit tests of the lexer (lexer.re) and of the diagnostics it reports
 * (diag.c): token kinds, text, positions, NEWLINE rules, numbers and units,
 * strings, keywords and qualified names, bad input, and the gcc-style
 * output. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "front.h"
#include "grammar.h"
#include "test_util.h"

enum { MAX_TOKENS = 256 };

typedef struct Lexed {
  Captured cap;
  Token t[MAX_TOKENS];
  int n;                           /* tokens before the end */
} Lexed;

static void lex_file(Lexed *x, SrcFile *f) {
  Lexer lx;
  lex_init(&lx, x->cap.diag, f);
  x->n = 0;
  while (x->n < MAX_TOKENS && lex_next(&lx, &x->t[x->n]) != 0)
    x->n++;
}

static Lexed *lexed_new(void) {
  Lexed *x = calloc(1, sizeof *x);
  captured_open(&x->cap);
  return x;
}

static Lexed *lex_text(const char *text) {
  Lexed *x = lexed_new();
  lex_file(x, diag_add_source(x->cap.diag, "t.lobe", text));
  return x;
}

static const char *flushed(Lexed *x) { return captured_text(&x->cap); }

static void lexed_free(Lexed *x) {
  captured_close(&x->cap);
  free(x);
}

static void assert_kinds(const Lexed *x, const int *kinds, int n) {
  ck_assert_int_eq(x->n, n);
  for (int i = 0; i < n; i++)
    ck_assert_msg(x->t[i].kind == kinds[i], "token %d is %s, expected %s", i,
                  lex_kind_name(x->t[i].kind), lex_kind_name(kinds[i]));
}

static void assert_text(const Token *t, const char *text) {
  ck_assert_int_eq(t->len, (int)strlen(text));
  ck_assert_mem_eq(t->start, text, t->len);
}

START_TEST(statement_tokens) {
  Lexed *x = lex_text("region LGN, V2 : cortex\n");
  static const int kinds[] = {TK_REGION, TK_IDENT, TK_COMMA, TK_IDENT, TK_COLON,
                              TK_IDENT, TK_NEWLINE};
  assert_kinds(x, kinds, 7);
  assert_text(&x->t[1], "LGN");
  assert_text(&x->t[5], "cortex");
  ck_assert_int_eq(x->t[3].pos.line, 1);
  ck_assert_int_eq(x->t[3].pos.col, 13);
  ck_assert_int_eq(x->t[3].pos.len, 2);
  ck_assert_int_eq(x->t[6].pos.col, 24); /* NEWLINE: just past the last token */
  ck_assert_int_eq(diag_errors(x->cap.diag), 0);
  lexed_free(x);
}
END_TEST

START_TEST(keywords_and_names) {
  Lexed *x = lex_text("import imports subjects aunn region data of loss train connect "
                      "delay x x2 _a9 dataset");
  static const int kinds[] = {TK_IMPORT, TK_IDENT, TK_SUBJECTS, TK_AUNN, TK_REGION,
                              TK_DATA, TK_OF, TK_LOSS, TK_TRAIN, TK_CONNECT, TK_DELAY,
                              TK_X, TK_IDENT, TK_IDENT, TK_IDENT, TK_NEWLINE};
  assert_kinds(x, kinds, 16);
  assert_text(&x->t[12], "x2");
  lexed_free(x);
}
END_TEST

START_TEST(graph_keywords) {
  Lexed *x = lex_text("connect delay prior let as at simulate observe all priors lets");
  static const int kinds[] = {TK_CONNECT, TK_DELAY, TK_PRIOR, TK_LET, TK_AS, TK_AT,
                              TK_SIMULATE, TK_OBSERVE, TK_IDENT, TK_IDENT, TK_IDENT,
                              TK_NEWLINE};
  assert_kinds(x, kinds, 12);
  ck_assert_int_eq(diag_errors(x->cap.diag), 0);  /* reserved words are the parser's */
  lexed_free(x);
}
END_TEST

/* A qualified name is one token, keywords after its dots included; with
 * blanks it is three. */
START_TEST(qualified_names) {
  Lexed *x = lex_text("areas.cortex std.observe a.b.c_9 a . b x.y a. 1.5 V1.x2");
  static const int kinds[] = {TK_QNAME, TK_QNAME, TK_QNAME, TK_IDENT, TK_DOT, TK_IDENT,
                              TK_QNAME, TK_IDENT, TK_DOT, TK_NUMBER, TK_QNAME,
                              TK_NEWLINE};
  assert_kinds(x, kinds, 12);
  assert_text(&x->t[0], "areas.cortex");
  assert_text(&x->t[2], "a.b.c_9");
  assert_text(&x->t[10], "V1.x2");
  ck_assert_int_eq(x->t[1].pos.col, 14);
  ck_assert_int_eq(x->t[1].pos.len, 11);
  lexed_free(x);
}
END_TEST

START_TEST(let_closes_a_block) {
  Lexed *x = lex_text("aunn a {\n  latent 8\nlet w = 1\n");
  static const int kinds[] = {TK_AUNN, TK_IDENT, TK_LBRACE, TK_NEWLINE, TK_IDENT,
                              TK_NUMBER, TK_NEWLINE, TK_RBRACE, TK_NEWLINE, TK_LET,
                              TK_IDENT, TK_EQ, TK_NUMBER, TK_NEWLINE};
  assert_kinds(x, kinds, 14);
  ck_assert_ptr_nonnull(strstr(flushed(x), "expected '}' before 'let'"));
  lexed_free(x);
}
END_TEST

START_TEST(punctuation) {
  Lexed *x = lex_text("{ } ( ) [ ] , : . = -> + - * /");
  static const int kinds[] = {TK_LBRACE, TK_RBRACE, TK_LPAREN, TK_RPAREN, TK_LBRACKET,
                              TK_RBRACKET, TK_COMMA, TK_COLON, TK_DOT, TK_EQ, TK_ARROW,
                              TK_PLUS, TK_MINUS, TK_STAR, TK_SLASH, TK_NEWLINE};
  assert_kinds(x, kinds, 16);
  lexed_free(x);
}
END_TEST

START_TEST(lines_and_columns) {
  Lexed *x = lex_text("# comment\n\n  subjects m1,\tm2   # trailing\n\n\ntrain\n");
  ck_assert_int_eq(x->n, 7);
  ck_assert_int_eq(x->t[0].pos.line, 3);
  ck_assert_int_eq(x->t[0].pos.col, 3);
  ck_assert_int_eq(x->t[3].pos.col, 16);  /* col counts bytes: a tab is one */
  ck_assert_int_eq(x->t[4].kind, TK_NEWLINE);
  ck_assert_int_eq(x->t[4].pos.line, 3);
  ck_assert_int_eq(x->t[5].pos.line, 6);
  lexed_free(x);
}
END_TEST

START_TEST(no_newline_inside_brackets) {
  Lexed *x = lex_text("data V1 of m1 = csv(\"a.csv\",\n   rate: [1,\n 2])\nloss\n");
  int newlines = 0;
  for (int i = 0; i < x->n; i++)
    newlines += x->t[i].kind == TK_NEWLINE;
  ck_assert_int_eq(newlines, 2);
  ck_assert_int_eq(x->t[x->n - 4].kind, TK_RPAREN);
  lexed_free(x);
}
END_TEST

START_TEST(newline_inside_braces) {
  Lexed *x = lex_text("aunn a {\n  latent 8\n}");
  static const int kinds[] = {TK_AUNN, TK_IDENT, TK_LBRACE, TK_NEWLINE, TK_IDENT,
                              TK_NUMBER, TK_NEWLINE, TK_RBRACE, TK_NEWLINE};
  assert_kinds(x, kinds, 9);
  lexed_free(x);
}
END_TEST

START_TEST(numbers_and_units) {
  Lexed *x = lex_text("12 1.5 1e-3 10s 20ms 0.1kHz 5mm 2E+2Hz 1e");
  static const double values[] = {12, 1.5, 1e-3, 10, 20, 0.1, 5, 200, 1};
  static const char *const units[] = {"", "", "", "s", "ms", "kHz", "mm", "Hz", "e"};
  ck_assert_int_eq(x->n, 10);
  for (int i = 0; i < 9; i++) {
    double v;
    int digits;
    ck_assert_int_eq(x->t[i].kind, TK_NUMBER);
    ck_assert(lex_number_value(&x->t[i], &v, &digits));
    ck_assert_double_eq_tol(v, values[i], 1e-12);
    ck_assert_int_eq(x->t[i].len - digits, (int)strlen(units[i]));
    ck_assert(strncmp(x->t[i].start + digits, units[i], strlen(units[i])) == 0);
  }
  lexed_free(x);
}
END_TEST

START_TEST(layers_glued) {
  Lexed *x = lex_text("64x2 64 x 2");
  static const int kinds[] = {TK_NUMBER, TK_X, TK_NUMBER, TK_NUMBER, TK_X, TK_NUMBER,
                              TK_NEWLINE};
  assert_kinds(x, kinds, 7);
  assert_text(&x->t[0], "64");
  lexed_free(x);
}
END_TEST

START_TEST(number_out_of_range) {
  Lexed *x = lex_text("steps: 1e999");
  double v;
  int digits;
  ck_assert_int_eq(x->t[2].kind, TK_NUMBER);
  ck_assert(!lex_number_value(&x->t[2], &v, &digits));
  ck_assert_int_eq(diag_errors(x->cap.diag), 1);
  ck_assert_ptr_nonnull(strstr(flushed(x), "number '1e999' is out of range"));
  lexed_free(x);
}
END_TEST

START_TEST(strings) {
  Lexed *x = lex_text("\"a\\\"b\\\\c\" \"caf\xc3\xa9\" \"\"");
  ck_assert_int_eq(x->n, 4);
  assert_text(&x->t[0], "\"a\\\"b\\\\c\"");
  char *s = ast_decode_string(x->t[0].start, x->t[0].len);
  ck_assert_str_eq(s, "a\"b\\c");
  free(s);
  s = ast_decode_string(x->t[2].start, x->t[2].len);
  ck_assert_str_eq(s, "");
  free(s);
  ck_assert_int_eq(diag_errors(x->cap.diag), 0);
  lexed_free(x);
}
END_TEST

START_TEST(bad_strings) {
  Lexed *x = lex_text("\"a\\qb\" \"open\nnext 'single'");
  ck_assert_int_eq(x->t[0].kind, TK_STRING);
  ck_assert_int_eq(x->t[1].kind, TK_STRING);
  assert_text(&x->t[1], "\"open");  /* an unterminated string ends at its line */
  ck_assert_int_eq(x->t[2].kind, TK_NEWLINE);
  ck_assert_int_eq(x->t[4].kind, TK_STRING);
  ck_assert_int_eq(diag_errors(x->cap.diag), 3);
  const char *out = flushed(x);
  ck_assert_ptr_nonnull(strstr(out, "unknown escape '\\q'"));
  ck_assert_ptr_nonnull(strstr(out, "unterminated string"));
  ck_assert_ptr_nonnull(strstr(out, "double quotes"));
  lexed_free(x);
}
END_TEST

START_TEST(bad_characters_are_skipped) {
  Lexed *x = lex_text("a $ b \xff\xfe c \x01\x02 d \xc3\xa9 e ; f\x7f");
  static const int kinds[] = {TK_IDENT, TK_IDENT, TK_IDENT, TK_IDENT, TK_IDENT,
                              TK_IDENT, TK_NEWLINE};
  assert_kinds(x, kinds, 7);
  ck_assert_int_eq(diag_errors(x->cap.diag), 6);  /* runs of bad bytes are one error */
  const char *out = flushed(x);
  ck_assert_ptr_nonnull(strstr(out, "unexpected character '$'"));
  ck_assert_ptr_nonnull(strstr(out, "invalid UTF-8 (byte 0xff)"));
  ck_assert_ptr_nonnull(strstr(out, "unexpected character '\xc3\xa9'"));
  lexed_free(x);
}
END_TEST

START_TEST(nul_byte) {
  char path[] = "/tmp/lobe_test_lexer_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  FILE *f = fdopen(fd, "wb");
  fwrite("a\0b\n", 1, 4, f);
  fclose(f);
  Lexed *x = lexed_new();
  lex_file(x, diag_load_file(x->cap.diag, path));
  unlink(path);
  static const int kinds[] = {TK_IDENT, TK_IDENT, TK_NEWLINE};
  assert_kinds(x, kinds, 3);
  ck_assert_int_eq(diag_errors(x->cap.diag), 1);
  lexed_free(x);
}
END_TEST

START_TEST(keyword_closes_brackets) {
  /* An unclosed '(' ends at a statement keyword starting a line... */
  Lexed *x = lex_text("loss mse(V1\ntrain { }\n");
  static const int kinds[] = {TK_LOSS, TK_IDENT, TK_LPAREN, TK_IDENT, TK_NEWLINE,
                              TK_TRAIN, TK_LBRACE, TK_RBRACE, TK_NEWLINE};
  assert_kinds(x, kinds, 9);
  ck_assert_int_eq(diag_errors(x->cap.diag), 0);  /* the parser reports the ')' */
  lexed_free(x);
  /* ...and so does an unclosed '{', with an error and a note. */
  x = lex_text("aunn a {\n  latent 8\nregion V1 : a\n");
  static const int kinds2[] = {TK_AUNN, TK_IDENT, TK_LBRACE, TK_NEWLINE, TK_IDENT,
                               TK_NUMBER, TK_NEWLINE, TK_RBRACE, TK_NEWLINE, TK_REGION,
                               TK_IDENT, TK_COLON, TK_IDENT, TK_NEWLINE};
  assert_kinds(x, kinds2, 14);
  ck_assert_int_eq(diag_errors(x->cap.diag), 1);
  ck_assert_str_eq(flushed(x), "t.lobe:3:1: error[E0010]: expected '}' before 'region'\n"
                               "    3 | region V1 : a\n"
                               "      | ^~~~~~\n"
                               "t.lobe:1:8: note: to match this '{'\n"
                               "    1 | aunn a {\n"
                               "      |        ^\n");
  lexed_free(x);
}
END_TEST

START_TEST(brace_open_at_end) {
  Lexed *x = lex_text("train {\n steps: 1");
  ck_assert_int_eq(x->t[x->n - 2].kind, TK_RBRACE);
  ck_assert_int_eq(x->t[x->n - 1].kind, TK_NEWLINE);
  ck_assert_int_eq(diag_errors(x->cap.diag), 1);
  ck_assert_ptr_nonnull(strstr(flushed(x), "expected '}' at end of file"));
  lexed_free(x);
}
END_TEST

START_TEST(end_is_sticky) {
  Lexer lx;
  Token t;
  Diag *d = diag_new(stderr, false);
  lex_init(&lx, d, diag_add_source(d, "t.lobe", "a"));
  ck_assert_int_eq(lex_next(&lx, &t), TK_IDENT);
  ck_assert_int_eq(lex_next(&lx, &t), TK_NEWLINE);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(lex_next(&lx, &t), 0);
  diag_free(d);
}
END_TEST

START_TEST(kind_names) {
  ck_assert_str_eq(lex_kind_name(TK_NEWLINE), "end of line");
  ck_assert_str_eq(lex_kind_name(0), "end of file");
  ck_assert_str_eq(lex_kind_name(TK_LBRACE), "'{'");
  ck_assert_str_eq(lex_kind_name(TK_IDENT), "a name");
  ck_assert_str_eq(lex_kind_name(TK_QNAME), "a qualified name");
  ck_assert_str_eq(lex_kind_name(TK_PRIOR), "'prior'");
  ck_assert_str_eq(lex_kind_name(TK_OBSERVE), "'observe'");
  ck_assert(lex_is_statement_keyword(TK_DATA));
  ck_assert(lex_is_statement_keyword(TK_CONNECT));
  ck_assert(lex_is_statement_keyword(TK_LET));
  ck_assert(!lex_is_statement_keyword(TK_OF));
  ck_assert(!lex_is_statement_keyword(TK_AT));
  ck_assert(!lex_is_statement_keyword(TK_SIMULATE));
}
END_TEST

/* ---- diagnostics --------------------------------------------------------- */

START_TEST(diag_format_and_order) {
  Lexed *x = lex_text("aunn a {\n\tmlp 64 x 2, slu\n}\n");
  SrcFile *f = (SrcFile *)x->t[0].pos.file;
  diag_warning(x->cap.diag, DIAG_REGION_WITHOUT_DATA, (SrcPos){f, 3, 1, 1}, "later");
  diag_error(x->cap.diag, DIAG_UNKNOWN_ACTIVATION, (SrcPos){f, 2, 14, 3},
             "unknown activation '%s'", "slu");
  diag_note(x->cap.diag, (SrcPos){f, 1, 6, 1}, "aunn here");
  diag_plain_error(x->cap.diag, DIAG_NO_DATA, "no position");
  ck_assert_int_eq(diag_errors(x->cap.diag), 2);  /* warnings and notes do not count */
  ck_assert_str_eq(flushed(x), "lobec: error[E0046]: no position\n"
                               "t.lobe:2:14: error[E0020]: unknown activation 'slu'\n"
                               "    2 | \tmlp 64 x 2, slu\n"
                               "      | \t            ^~~\n"
                               "t.lobe:1:6: note: aunn here\n"
                               "    1 | aunn a {\n"
                               "      |      ^\n"
                               "t.lobe:3:1: warning[W0001]: later\n"
                               "    3 | }\n"
                               "      | ^\n");
  lexed_free(x);
}
END_TEST

START_TEST(diag_color) {
  MemText m;
  Diag *d = diag_new(memtext_open(&m), true);
  SrcFile *f = diag_add_source(d, "c.lobe", "x\n");
  diag_error(d, DIAG_SYNTAX, (SrcPos){f, 1, 1, 1}, "boom");
  diag_flush(d);
  diag_free(d);
  char *out = memtext_close(&m);
  ck_assert_ptr_nonnull(strstr(out, "\033[1;31merror[E0008]:"));
  free(out);
}
END_TEST

START_TEST(diag_unreadable_file) {
  Lexed *x = lex_text("");
  ck_assert_ptr_null(diag_load_file(x->cap.diag, "/nonexistent/spec.lobe"));
  ck_assert_ptr_null(diag_load_file(x->cap.diag, "/tmp"));
  ck_assert_int_eq(diag_errors(x->cap.diag), 2);
  const char *out = flushed(x);
  ck_assert_ptr_nonnull(strstr(out, "cannot read '/nonexistent/spec.lobe'"));
  ck_assert_ptr_nonnull(strstr(out, "is a directory"));
  lexed_free(x);
}
END_TEST

START_TEST(diag_long_line_is_clipped) {
  char text[4000];
  memset(text, 'a', sizeof text - 1);
  text[sizeof text - 1] = 0;
  Lexed *x = lex_text(text);
  SrcFile *f = (SrcFile *)x->t[0].pos.file;
  diag_error(x->cap.diag, DIAG_SYNTAX, (SrcPos){f, 1, 2000, 3}, "here");
  const char *out = flushed(x);
  ck_assert_int_lt((int)strlen(out), 500);
  ck_assert_ptr_nonnull(strstr(out, "| ..."));
  lexed_free(x);
}
END_TEST

Suite *lexer_suite(void) {
  Suite *s = suite_create("lexer");
  TCase *tc = tcase_create("tokens");
  tcase_add_test(tc, statement_tokens);
  tcase_add_test(tc, keywords_and_names);
  tcase_add_test(tc, graph_keywords);
  tcase_add_test(tc, qualified_names);
  tcase_add_test(tc, let_closes_a_block);
  tcase_add_test(tc, punctuation);
  tcase_add_test(tc, lines_and_columns);
  tcase_add_test(tc, no_newline_inside_brackets);
  tcase_add_test(tc, newline_inside_braces);
  tcase_add_test(tc, numbers_and_units);
  tcase_add_test(tc, layers_glued);
  tcase_add_test(tc, number_out_of_range);
  tcase_add_test(tc, strings);
  tcase_add_test(tc, bad_strings);
  tcase_add_test(tc, bad_characters_are_skipped);
  tcase_add_test(tc, nul_byte);
  tcase_add_test(tc, keyword_closes_brackets);
  tcase_add_test(tc, brace_open_at_end);
  tcase_add_test(tc, end_is_sticky);
  tcase_add_test(tc, kind_names);
  suite_add_tcase(s, tc);
  TCase *td = tcase_create("diagnostics");
  tcase_add_test(td, diag_format_and_order);
  tcase_add_test(td, diag_color);
  tcase_add_test(td, diag_unreadable_file);
  tcase_add_test(td, diag_long_line_is_clipped);
  suite_add_tcase(s, td);
  return s;
}

int main(void) {
  return test_run_suite(lexer_suite());
}
