/*
 * mutate.c — the helper of the mutation test (run_mutate.sh): the front end
 * must survive broken versions of every spec.
 *
 * For each FILE it makes deterministic mutants: truncations at evenly spaced
 * offsets, then random edits (bit flips, deleted, duplicated and swapped
 * lines, swapped tokens, deleted spans, inserted brackets, quotes, arrows and
 * keywords) from a generator seeded by the file's text. Each mutant goes
 * through the front end in-process as `lobec check`, `lobec graph` and
 * `lobec fmt` do, and every failure must come with at least one error.
 * Crashes, leaks and undefined behaviour show under the sanitizers.
 *
 * Doing this in-process keeps it fast: lobec spends ~20 ms starting (the
 * LLVM it links), minutes over every mutant. With -w DIR every Kth mutant
 * (default 20) is also written to DIR as sample-N.lobe for the script to
 * run through the lobec executable, and each mutant that breaks the rules
 * as failed-N.lobe.
 *
 * Usage: lobe_mutate [-w DIR [-k K]] FILE...   exit status 1 on a failure
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"

enum { TRUNCATIONS = 20, MUTATIONS = 40, MAX_EDITS = 3 };

typedef struct Text {
  char *s;                 /* NUL-terminated */
  size_t len;
} Text;

typedef struct Run {
  const char *dir;         /* -w, or NULL */
  int every;               /* -k */
  int mutants;             /* made so far, over all files */
  int failures;
} Run;

/* ---- a deterministic generator (Knuth's MMIX LCG) ------------------------- */

static uint64_t lcg_state;

static uint32_t lcg_next(void) {
  lcg_state = lcg_state * 6364136223846793005u + 1442695040888963407u;
  return (uint32_t)(lcg_state >> 33);  /* the high bits are the random ones */
}

static size_t lcg_below(size_t n) {
  return n ? lcg_next() % n : 0;
}

/* FNV-1a: each file's mutants depend on its text only. */
static uint64_t text_hash(const Text *t) {
  uint64_t h = 14695981039346656037u;
  for (size_t i = 0; i < t->len; i++)
    h = (h ^ (unsigned char)t->s[i]) * 1099511628211u;
  return h;
}

/* ---- editing ------------------------------------------------------------- */

static Text text_copy(const char *s, size_t len) {
  Text t = {malloc(len + 1), len};
  memcpy(t.s, s, len);
  t.s[len] = 0;
  return t;
}

/* Replaces t[at, at + del) by ins[0, n). */
static void splice(Text *t, size_t at, size_t del, const char *ins, size_t n) {
  char *s = malloc(t->len - del + n + 1);
  memcpy(s, t->s, at);
  memcpy(s + at, ins, n);
  memcpy(s + at + n, t->s + at + del, t->len - at - del + 1);
  free(t->s);
  t->s = s;
  t->len = t->len - del + n;
}

static size_t line_start(const Text *t, size_t at) {
  while (at > 0 && t->s[at - 1] != '\n')
    at--;
  return at;
}

/* Just past the line's '\n' (or the end of the text). */
static size_t line_end(const Text *t, size_t at) {
  while (at < t->len && t->s[at++] != '\n')
    ;
  return at;
}

static bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The token (a run of non-blanks) at or after `at`: [*start, *end). */
static bool token_from(const Text *t, size_t at, size_t *start, size_t *end) {
  while (at < t->len && is_blank(t->s[at]))
    at++;
  *start = at;
  while (at < t->len && !is_blank(t->s[at]))
    at++;
  *end = at;
  return *end > *start;
}

/* Swaps t[a, a + alen) with the later t[b, b + blen); the later first, so
 * that a stays where it is. */
static void swap_spans(Text *t, size_t a, size_t alen, size_t b, size_t blen) {
  Text first = text_copy(t->s + a, alen), second = text_copy(t->s + b, blen);
  splice(t, b, blen, first.s, first.len);
  splice(t, a, alen, second.s, second.len);
  free(first.s);
  free(second.s);
}

/* ---- the mutations -------------------------------------------------------- */

static const char *const snippets[] = {
  "(", ")", "[", "]", "{", "}", "\"", "'", "->", " -> ", ",", ":", ".", "=",
  "#", "\n", "\\", "*", "/", "-", " x ", "1e999", "0", "10ms", "2m / 1s", "@",
  "connect ", "delay ", "prior ", "let ", " as ", " at ", "all ", "import ",
  "region ", "aunn ", "data ", "loss ", "train ", "subjects ", "of ", "tract(",
  "sparse(", "poisson(", "l2(", "embed ", "window: ", "\xc3\xa9", "\xff",
};
enum { NSNIPPETS = sizeof snippets / sizeof snippets[0] };

static const char *random_snippet(void) {
  return snippets[lcg_below(NSNIPPETS)];
}

static void flip_bit(Text *t) {
  if (t->len > 0)
    t->s[lcg_below(t->len)] ^= (char)(1u << lcg_below(8));
}

static void delete_line(Text *t) {
  size_t at = line_start(t, lcg_below(t->len));
  splice(t, at, line_end(t, at) - at, "", 0);
}

static void duplicate_line(Text *t) {
  size_t at = line_start(t, lcg_below(t->len));
  Text line = text_copy(t->s + at, line_end(t, at) - at);
  splice(t, at, 0, line.s, line.len);
  free(line.s);
}

static void swap_lines(Text *t) {
  size_t a = line_start(t, lcg_below(t->len)), b = line_end(t, a);
  size_t c = line_end(t, b);
  if (c > b)
    swap_spans(t, a, b - a, b, c - b);
}

static void swap_tokens(Text *t) {
  size_t a, a_end, b, b_end;
  if (token_from(t, lcg_below(t->len), &a, &a_end) && token_from(t, a_end, &b, &b_end))
    swap_spans(t, a, a_end - a, b, b_end - b);
}

static void insert_snippet(Text *t) {
  const char *s = random_snippet();
  splice(t, lcg_below(t->len + 1), 0, s, strlen(s));
}

static void replace_token(Text *t) {
  size_t a, end;
  const char *s = random_snippet();
  if (token_from(t, lcg_below(t->len), &a, &end))
    splice(t, a, end - a, s, strlen(s));
}

static void delete_span(Text *t) {
  size_t at = lcg_below(t->len), n = 1 + lcg_below(16);
  splice(t, at, n < t->len - at ? n : t->len - at, "", 0);
}

static void (*const mutations[])(Text *) = {
  flip_bit, delete_line, duplicate_line, swap_lines, swap_tokens,
  insert_snippet, replace_token, delete_span,
};
enum { NMUTATIONS = sizeof mutations / sizeof mutations[0] };

/* ---- the rules ------------------------------------------------------------ */

static FILE *devnull;

/* What `lobec check` then `lobec graph` do with text (main.c): NULL when
 * they keep the rules, else the rule broken. *checked: the spec passed. */
static const char *check_rules(const char *path, const Text *t, bool *checked) {
  char *printed = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&printed, &len);
  Diag *d = diag_new(out, false);
  Program *p = parse_file(d, diag_add_source(d, path, t->s));
  Model *m = p && diag_errors(d) == 0 ? sema_check(d, p) : NULL;
  if (m)
    graph_write_dot(devnull, m, path);
  diag_flush(d);
  fflush(out);
  const char *broken = NULL;
  if (!m && (diag_errors(d) == 0 || !strstr(printed, "error")))
    broken = "check failed without printing an error";
  else if (m && diag_errors(d) > 0)
    broken = "check returned a model despite errors";
  *checked = m != NULL;
  sema_free(m);
  ast_free(p);
  diag_free(d);
  fclose(out);
  free(printed);
  return broken;
}

/* What `lobec fmt` does: a spec that checks must format, and a failure
 * must print an error. */
static const char *fmt_rules(const char *path, const Text *t, bool checked) {
  char *printed = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&printed, &len);
  Diag *d = diag_new(out, false);
  char *formatted = fmt_source(d, diag_add_source(d, path, t->s));
  diag_flush(d);
  fflush(out);
  const char *broken = NULL;
  if (!formatted && checked)
    broken = "fmt failed on a spec that checks";
  else if (!formatted && !strstr(printed, "error"))
    broken = "fmt failed without printing an error";
  free(formatted);
  diag_free(d);
  fclose(out);
  free(printed);
  return broken;
}

static void write_mutant(const Run *run, const char *kind, const Text *t) {
  char name[4096];
  snprintf(name, sizeof name, "%s/%s-%05d.lobe", run->dir, kind, run->mutants);
  FILE *f = fopen(name, "wb");
  if (!f || fwrite(t->s, 1, t->len, f) != t->len || fclose(f) != 0) {
    perror(name);
    exit(2);
  }
}

/* Runs the rules on one mutant (consumed) named by what made it. */
static void try_mutant(Run *run, const char *path, Text t, const char *what) {
  bool checked;
  const char *broken = check_rules(path, &t, &checked);
  if (!broken)
    broken = fmt_rules(path, &t, checked);
  if (broken) {
    fprintf(stderr, "FAIL %s, %s (mutant %d): %s\n", path, what, run->mutants, broken);
    run->failures++;
  }
  if (run->dir && (broken || run->mutants % run->every == 0))
    write_mutant(run, broken ? "failed" : "sample", &t);
  run->mutants++;
  free(t.s);
}

/* ---- driver --------------------------------------------------------------- */

static bool read_file(const char *path, Text *t) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return false;
  char buf[65536];
  size_t n;
  *t = text_copy("", 0);
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    splice(t, t->len, 0, buf, n);
  bool ok = !ferror(f);
  fclose(f);
  return ok;
}

static void mutate_file(Run *run, const char *path) {
  Text orig;
  if (!read_file(path, &orig)) {
    perror(path);
    exit(2);
  }
  char what[64];
  for (int i = 0; i < TRUNCATIONS; i++) {
    size_t at = orig.len * (size_t)i / TRUNCATIONS;
    snprintf(what, sizeof what, "truncated at byte %zu", at);
    try_mutant(run, path, text_copy(orig.s, at), what);
  }
  lcg_state = text_hash(&orig);
  for (int i = 0; i < MUTATIONS; i++) {
    Text t = text_copy(orig.s, orig.len);
    int edits = 1 + (int)lcg_below(MAX_EDITS);
    for (int e = 0; e < edits; e++)
      mutations[lcg_below(NMUTATIONS)](&t);
    snprintf(what, sizeof what, "mutation %d", i);
    try_mutant(run, path, t, what);
  }
  free(orig.s);
}

static int usage(void) {
  fputs("usage: lobe_mutate [-w DIR [-k K]] FILE...\n", stderr);
  return 2;
}

int main(int argc, char **argv) {
  Run run = {.every = 20};
  int i = 1;
  for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
    if (strcmp(argv[i], "-w") == 0)
      run.dir = argv[i + 1];
    else if (strcmp(argv[i], "-k") == 0 && atoi(argv[i + 1]) > 0)
      run.every = atoi(argv[i + 1]);
    else
      return usage();
  }
  if (i >= argc)
    return usage();
  int files = argc - i;
  devnull = fopen("/dev/null", "w");
  if (!devnull) {
    perror("/dev/null");
    return 2;
  }
  for (; i < argc; i++)
    mutate_file(&run, argv[i]);
  fclose(devnull);
  printf("lobe_mutate: %d mutants of %d files, %d failures\n", run.mutants, files,
         run.failures);
  return run.failures ? 1 : 0;
}
