/* Unit tests of the diagnostic code table (codes.def) and what `lobec
 * explain` prints from it; docs/errors.md must be the table's markdown. */
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"
#include "test_util.h"

static bool well_formed(const char *code) {
  if (strlen(code) != 5 || (code[0] != 'E' && code[0] != 'W'))
    return false;
  for (int i = 1; i < 5; i++)
    if (!isdigit((unsigned char)code[i]))
      return false;
  return true;
}

static bool ends_with_newline(const char *s) {
  size_t n = strlen(s);
  return n > 0 && s[n - 1] == '\n';
}

/* Codes are numbered from 1 without gaps, errors first: a code once given
 * keeps its number. */
START_TEST(codes_numbered_in_order) {
  int next[2] = {1, 1};
  char seen_letter = 'E';
  for (int i = 0; i < DIAG_NCODES; i++) {
    const DiagCodeInfo *c = diag_code_info((DiagCode)i);
    ck_assert_msg(well_formed(c->code), "bad code '%s'", c->code);
    ck_assert_msg(c->code[0] >= seen_letter, "%s after a W code", c->code);
    seen_letter = c->code[0];
    int *n = &next[c->code[0] == 'W'];
    ck_assert_msg(atoi(c->code + 1) == *n, "%s: expected number %d", c->code, *n);
    ++*n;
  }
}
END_TEST

START_TEST(every_code_explained) {
  for (int i = 0; i < DIAG_NCODES; i++) {
    const DiagCodeInfo *c = diag_code_info((DiagCode)i);
    ck_assert_msg(c->title[0] && c->title[strlen(c->title) - 1] != '.', "%s: title",
                  c->code);
    ck_assert_msg(strlen(c->explanation) > 20 && !ends_with_newline(c->explanation),
                  "%s: explanation", c->code);
    ck_assert_msg(ends_with_newline(c->wrong) && ends_with_newline(c->right),
                  "%s: examples end with a line break", c->code);
    ck_assert_msg(strcmp(c->wrong, c->right) != 0, "%s: wrong == right", c->code);
  }
}
END_TEST

START_TEST(find_codes) {
  ck_assert_int_eq(diag_code_find("E0020"), DIAG_UNKNOWN_ACTIVATION);
  ck_assert_int_eq(diag_code_find("e0020"), DIAG_UNKNOWN_ACTIVATION);
  ck_assert_int_eq(diag_code_find("W0001"), DIAG_REGION_WITHOUT_DATA);
  ck_assert_int_eq(diag_code_find("E9999"), -1);
  ck_assert_int_eq(diag_code_find("E002"), -1);
  ck_assert_int_eq(diag_code_find(""), -1);
}
END_TEST

START_TEST(closest_codes) {
  DiagCode close[5];
  ck_assert_int_eq(diag_code_closest("E0077", close, 5), 5);
  ck_assert_str_eq(diag_code_info(close[0])->code, "E0007");
  ck_assert_str_eq(diag_code_info(close[1])->code, "E0017");
  ck_assert_int_eq(diag_code_closest("w001", close, 5), 1);  /* W0002 is 2 edits */
  ck_assert_str_eq(diag_code_info(close[0])->code, "W0001");
  ck_assert_int_eq(diag_code_closest("activation", close, 5), 0);
  ck_assert_int_eq(diag_code_closest("a-much-longer-word-than-any-code", close, 5), 0);
}
END_TEST

/* What the stream printed, after running print on it. */
static char *printed(void (*print)(FILE *, int), int arg) {
  MemText m;
  print(memtext_open(&m), arg);
  return memtext_close(&m);
}

static void print_explain(FILE *out, int code) { diag_explain(out, (DiagCode)code); }
static void print_list(FILE *out, int markdown) { diag_list_codes(out, markdown); }

START_TEST(explain_prints_examples) {
  char *out = printed(print_explain, DIAG_UNKNOWN_ACTIVATION);
  ck_assert_msg(strncmp(out, "E0020: unknown activation\n\n", 27) == 0, "%s", out);
  ck_assert_ptr_nonnull(strstr(out, "\nWrong:\n\n      mlp 64 x 2, slu\n"));
  ck_assert_ptr_nonnull(strstr(out, "\nRight:\n\n      mlp 64 x 2, silu\n"));
  free(out);
}
END_TEST

START_TEST(list_has_every_code) {
  char *out = printed(print_list, 0);
  int lines = 0;
  for (const char *p = out; (p = strchr(p, '\n')); p++)
    lines++;
  ck_assert_int_eq(lines, DIAG_NCODES);
  ck_assert_ptr_nonnull(strstr(out, "E0020  unknown activation\n"));
  free(out);
}
END_TEST

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  MemText m;
  FILE *s = memtext_open(&m);
  char buf[4096];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, f)) > 0)
    fwrite(buf, 1, got, s);
  fclose(f);
  return memtext_close(&m);
}

/* docs/errors.md is generated; regenerate it with
 * `lobec explain --list --markdown > docs/errors.md`. */
START_TEST(docs_match_table) {
  char *doc = read_file(LOBE_SOURCE_DIR "/docs/errors.md");
  char *out = printed(print_list, 1);
  ck_assert_msg(strcmp(doc, out) == 0,
                "docs/errors.md is stale: run lobec explain --list --markdown "
                "> docs/errors.md");
  free(doc);
  free(out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("diag_codes");
  TCase *t = tcase_create("codes");
  tcase_add_test(t, codes_numbered_in_order);
  tcase_add_test(t, every_code_explained);
  tcase_add_test(t, find_codes);
  tcase_add_test(t, closest_codes);
  tcase_add_test(t, explain_prints_examples);
  tcase_add_test(t, list_has_every_code);
  tcase_add_test(t, docs_match_table);
  suite_add_tcase(s, t);
  return test_run_suite(s);
}
