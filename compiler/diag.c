/*
 * diag.c — source files and diagnostics.
 *
 * Diagnostics are collected while the front end runs and printed by
 * diag_flush, sorted by position, in the format of gcc and clang:
 *
 *   spec.lobe:7:15: error[E0020]: unknown activation 'slu'; did you mean 'silu'?
 *       7 |   mlp 64 x 2, slu
 *         |               ^~~
 *
 * with the stable code of the mistake (codes.def), as rustc does. A note
 * belongs to the diagnostic reported just before it and is printed right
 * after it, wherever it points. The code table also serves `lobec explain`.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "front.h"

enum {
  DIAG_MAX_SHOWN = 50,             /* errors kept per flush; the rest are counted */
  DIAG_MAX_FILE = 16 << 20,        /* bytes: specs are small, fuzzers are not */
  DIAG_EXCERPT_BEFORE = 60,        /* columns shown left of the caret in long lines */
  DIAG_EXCERPT_WIDTH = 160
};

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

typedef struct Entry {
  DiagLevel level;
  int code;                        /* DiagCode; -1 for notes */
  SrcPos pos;
  char *msg;
  int head;                        /* the entry a note belongs to; itself otherwise */
  int seq;
} Entry;

static const DiagCodeInfo codes[DIAG_NCODES] = {
#define DIAG_CODE(id, code, title, explanation, wrong, right) \
  {code, title, explanation, wrong, right},
#include "codes.def"
#undef DIAG_CODE
};

typedef struct FileLines {
  SrcFile *file;
  long *starts;                    /* offset of each line; built when first needed */
  int nlines;
} FileLines;

struct Diag {
  FILE *out;
  bool color;
  FileLines *files;
  int nfiles;
  Entry *entries;
  int nentries, capacity;
  int errors;                      /* every error ever reported */
  int shown_errors;                /* errors kept since the last flush */
  int dropped;                     /* errors not kept since the last flush */
  bool dropping;                   /* the last diagnostic was dropped: so are its notes */
};

Diag *diag_new(FILE *out, bool color) {
  Diag *d = calloc(1, sizeof *d);
  d->out = out;
  d->color = color;
  return d;
}

static void free_entries(Diag *d) {
  for (int i = 0; i < d->nentries; i++)
    free(d->entries[i].msg);
  free(d->entries);
  d->entries = NULL;
  d->nentries = d->capacity = 0;
}

void diag_free(Diag *d) {
  if (!d)
    return;
  free_entries(d);
  for (int i = 0; i < d->nfiles; i++) {
    free(d->files[i].file->path);
    free(d->files[i].file->text);
    free(d->files[i].file);
    free(d->files[i].starts);
  }
  free(d->files);
  free(d);
}

/* ---- source files -------------------------------------------------------- */

/* The Diag owns its files: they outlive every position pointing into them. */
static SrcFile *add_file(Diag *d, const char *path, char *text, long len) {
  SrcFile *f = malloc(sizeof *f);
  *f = (SrcFile){strdup(path), text, len};
  d->files = realloc(d->files, (d->nfiles + 1) * sizeof *d->files);
  d->files[d->nfiles++] = (FileLines){f, NULL, 0};
  return f;
}

SrcFile *diag_add_source(Diag *d, const char *path, const char *text) {
  return add_file(d, path, strdup(text), (long)strlen(text));
}

/* Reads at most DIAG_MAX_FILE + 1 bytes, so a huge input costs nothing. */
static char *read_all(FILE *fp, long *len) {
  long cap = 4096, n = 0;
  char *buf = malloc(cap + 1);
  size_t got;
  while ((got = fread(buf + n, 1, cap - n, fp)) > 0) {
    n += (long)got;
    if (n > DIAG_MAX_FILE)
      break;
    if (n == cap) {
      cap *= 2;
      buf = realloc(buf, cap + 1);
    }
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

SrcFile *diag_load_file(Diag *d, const char *path) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    diag_plain_error(d, DIAG_CANNOT_READ_SPEC, "cannot read '%s': it is a directory",
                     path);
    return NULL;
  }
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    diag_plain_error(d, DIAG_CANNOT_READ_SPEC, "cannot read '%s': %s", path,
                     strerror(errno));
    return NULL;
  }
  long len;
  char *text = read_all(fp, &len);
  bool failed = ferror(fp);
  fclose(fp);
  if (!failed && len <= DIAG_MAX_FILE)
    return add_file(d, path, text, len);
  if (failed)
    diag_plain_error(d, DIAG_CANNOT_READ_SPEC, "cannot read '%s'", path);
  else
    diag_plain_error(d, DIAG_CANNOT_READ_SPEC,
                     "'%s' is too large for a spec (more than %d MiB)", path,
                     DIAG_MAX_FILE >> 20);
  free(text);
  return NULL;
}

static int file_index(const Diag *d, const SrcFile *f) {
  for (int i = 0; i < d->nfiles; i++)
    if (d->files[i].file == f)
      return i;
  return -1;
}

static void index_lines(FileLines *fl) {
  const SrcFile *f = fl->file;
  int cap = 64;
  fl->starts = malloc(cap * sizeof *fl->starts);
  fl->starts[fl->nlines++] = 0;
  for (long i = 0; i < f->len; i++)
    if (f->text[i] == '\n') {
      if (fl->nlines == cap) {
        cap *= 2;
        fl->starts = realloc(fl->starts, cap * sizeof *fl->starts);
      }
      fl->starts[fl->nlines++] = i + 1;
    }
}

/* The text of line pos.line as [*begin, *end) offsets; false if unknown. */
static bool line_bounds(Diag *d, SrcPos pos, long *begin, long *end) {
  int fi = file_index(d, pos.file);
  if (fi < 0 || pos.line < 1)
    return false;
  FileLines *fl = &d->files[fi];
  if (!fl->starts)
    index_lines(fl);
  if (pos.line > fl->nlines)
    return false;
  *begin = fl->starts[pos.line - 1];
  *end = pos.line < fl->nlines ? fl->starts[pos.line] - 1 : fl->file->len;
  if (*end > *begin && fl->file->text[*end - 1] == '\r')
    --*end;                        /* CRLF line ends */
  return true;
}

/* ---- reporting ----------------------------------------------------------- */

static void add_entry(Diag *d, DiagLevel level, int code, SrcPos pos, const char *fmt,
                      va_list ap) {
  if (level == DIAG_ERROR)
    d->errors++;
  if (level != DIAG_NOTE)
    d->dropping = d->shown_errors >= DIAG_MAX_SHOWN;
  if (d->dropping) {
    d->dropped += level == DIAG_ERROR;
    return;
  }
  d->shown_errors += level == DIAG_ERROR;
  char *msg;
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = strdup("(out of memory formatting a message)");
  int head = d->nentries;
  if (level == DIAG_NOTE && d->nentries > 0)
    head = d->entries[d->nentries - 1].head;
  if (d->nentries == d->capacity) {
    d->capacity = d->capacity ? 2 * d->capacity : 16;
    d->entries = realloc(d->entries, d->capacity * sizeof *d->entries);
  }
  d->entries[d->nentries] = (Entry){level, code, pos, msg, head, d->nentries};
  d->nentries++;
}

void diag_error(Diag *d, DiagCode code, SrcPos pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  add_entry(d, DIAG_ERROR, code, pos, fmt, ap);
  va_end(ap);
}

void diag_warning(Diag *d, DiagCode code, SrcPos pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  add_entry(d, DIAG_WARNING, code, pos, fmt, ap);
  va_end(ap);
}

void diag_note(Diag *d, SrcPos pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  add_entry(d, DIAG_NOTE, -1, pos, fmt, ap);
  va_end(ap);
}

void diag_plain_error(Diag *d, DiagCode code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  add_entry(d, DIAG_ERROR, code, (SrcPos){0}, fmt, ap);
  va_end(ap);
}

int diag_errors(const Diag *d) { return d->errors; }

/* ---- printing ------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (at most avail bytes), else 0. */
static int utf8_len(const unsigned char *s, long avail) {
  int n = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
        : s[0] >= 0xe0 && s[0] <= 0xef ? 3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
  if (n == 0 || n > avail)
    return 0;
  for (int i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0;
  if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
      (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
    return 0;                      /* overlong, surrogate or beyond U+10FFFF */
  return n;
}

/* Bytes of the character at s as displayed: one column each way. */
static int char_bytes(const unsigned char *s, long avail) {
  int n = utf8_len(s, avail);
  return n ? n : 1;
}

/* Prints a line's bytes, with control characters and bad UTF-8 as '?', so
 * that every character takes one column (tabs excepted). */
static void put_display(FILE *out, const unsigned char *s, long n) {
  for (long i = 0; i < n;) {
    int k = utf8_len(s + i, n - i);
    if (k > 1 || (k == 1 && (s[i] >= 0x20 || s[i] == '\t') && s[i] != 0x7f))
      fwrite(s + i, 1, k, out);
    else
      fputc('?', out);
    i += k ? k : 1;
  }
}

/* Start of the shown part of a long line, on a character boundary. */
static long excerpt_start(const unsigned char *text, long begin, long at) {
  if (at - begin <= DIAG_EXCERPT_WIDTH - DIAG_EXCERPT_BEFORE)
    return begin;
  long from = at - DIAG_EXCERPT_BEFORE;
  while (from < at && (text[from] & 0xc0) == 0x80)
    from++;
  return from;
}

static long excerpt_end(const unsigned char *text, long from, long end) {
  if (end - from <= DIAG_EXCERPT_WIDTH)
    return end;
  long to = from + DIAG_EXCERPT_WIDTH;
  while (to > from && (text[to] & 0xc0) == 0x80)
    to--;
  return to;
}

static void put_caret(Diag *d, const unsigned char *text, long from, long at,
                      long to, int span) {
  for (long i = from; i < at; i += char_bytes(text + i, to - i))
    fputc(text[i] == '\t' ? '\t' : ' ', d->out);
  fputs(d->color ? "\033[1;32m^" : "^", d->out);
  long stop = at + span < to ? at + span : to;
  for (long i = at < to ? at + char_bytes(text + at, to - at) : at; i < stop;
       i += char_bytes(text + i, to - i))
    fputc('~', d->out);
  fputs(d->color ? "\033[0m\n" : "\n", d->out);
}

static void print_excerpt(Diag *d, SrcPos pos) {
  long begin, end;
  if (!line_bounds(d, pos, &begin, &end))
    return;
  const unsigned char *text = (const unsigned char *)pos.file->text;
  long at = begin + pos.col - 1;
  if (at > end)
    at = end;
  long from = excerpt_start(text, begin, at), to = excerpt_end(text, from, end);
  if (at > to)
    at = to;
  int width = snprintf(NULL, 0, "%d", pos.line);
  width = width < 5 ? 5 : width;
  fprintf(d->out, "%*d | %s", width, pos.line, from > begin ? "..." : "");
  put_display(d->out, text + from, to - from);
  fprintf(d->out, "%s\n%*s | %s", to < end ? "..." : "", width, "",
          from > begin ? "   " : "");
  put_caret(d, text, from, at, to, pos.len);
}

static const char *level_name(DiagLevel level) {
  return level == DIAG_ERROR ? "error" : level == DIAG_WARNING ? "warning" : "note";
}

static const char *level_color(DiagLevel level) {
  return level == DIAG_ERROR ? "\033[1;31m" : level == DIAG_WARNING ? "\033[1;35m"
                                                                    : "\033[1;36m";
}

static void print_entry(Diag *d, const Entry *e) {
  const char *bold = d->color ? "\033[1m" : "", *reset = d->color ? "\033[0m" : "";
  if (e->pos.file)
    fprintf(d->out, "%s%s:%d:%d: %s", bold, e->pos.file->path, e->pos.line,
            e->pos.col, reset);
  else
    fprintf(d->out, "%slobec: %s", bold, reset);
  fprintf(d->out, "%s%s", d->color ? level_color(e->level) : "", level_name(e->level));
  if (e->code >= 0)
    fprintf(d->out, "[%s]", codes[e->code].code);
  fprintf(d->out, ":%s %s\n", reset, e->msg);
  if (e->pos.file)
    print_excerpt(d, e->pos);
}

/* Order of flushing: by the position of the entry a note belongs to (entries
 * without a position first), then in order of reporting. */
static int compare_entries(const void *pa, const void *pb, void *diag) {
  const Diag *d = diag;
  const Entry *a = pa, *b = pb;
  const Entry *ha = &d->entries[a->head], *hb = &d->entries[b->head];
  int fa = file_index(d, ha->pos.file), fb = file_index(d, hb->pos.file);
  if (fa != fb)
    return fa < fb ? -1 : 1;
  if (ha->pos.line != hb->pos.line)
    return ha->pos.line < hb->pos.line ? -1 : 1;
  if (ha->pos.col != hb->pos.col)
    return ha->pos.col < hb->pos.col ? -1 : 1;
  if (a->head != b->head)
    return a->head < b->head ? -1 : 1;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The same message at the same place: one mistake found twice (a let with
 * a bad value read by two statements), printed once. */
static bool same_entry(const Entry *a, const Entry *b) {
  return a->level == b->level && a->code == b->code && a->pos.file == b->pos.file &&
         a->pos.line == b->pos.line && a->pos.col == b->pos.col &&
         a->pos.len == b->pos.len && strcmp(a->msg, b->msg) == 0;
}

void diag_flush(Diag *d) {
  Entry *sorted = malloc((d->nentries ? d->nentries : 1) * sizeof *sorted);
  const Entry *shown = NULL;       /* the last diagnostic printed, not a note */
  bool repeated = false;           /* the current diagnostic repeats it */
  if (d->nentries)
    memcpy(sorted, d->entries, d->nentries * sizeof *sorted);
  qsort_r(sorted, d->nentries, sizeof *sorted, compare_entries, d);
  for (int i = 0; i < d->nentries; i++) {
    if (sorted[i].level != DIAG_NOTE) {
      repeated = shown && same_entry(shown, &sorted[i]);
      shown = repeated ? shown : &sorted[i];
    }
    if (!repeated)
      print_entry(d, &sorted[i]);
  }
  if (d->dropped)
    fprintf(d->out, "lobec: %d more error%s not shown\n", d->dropped,
            d->dropped == 1 ? "" : "s");
  fflush(d->out);
  free(sorted);
  free_entries(d);
  d->shown_errors = d->dropped = 0;
  d->dropping = false;
}

/* ---- the code table: lobec explain --------------------------------------- */

const DiagCodeInfo *diag_code_info(DiagCode code) { return &codes[code]; }

int diag_code_find(const char *text) {
  for (int i = 0; i < DIAG_NCODES; i++)
    if (strcasecmp(text, codes[i].code) == 0)
      return i;
  return -1;
}

enum { DIAG_CLOSE_CODE = 2 };       /* edits at most, for "closest codes" */

int diag_code_closest(const char *text, DiagCode *out, int max) {
  char upper[16];
  int len = (int)strlen(text), n = 0;
  if (len >= (int)sizeof upper)
    return 0;                      /* no code is close to a long word */
  for (int i = 0; i <= len; i++)
    upper[i] = (char)toupper((unsigned char)text[i]);
  for (int dist = 0; dist <= DIAG_CLOSE_CODE && n == 0; dist++)
    for (int i = 0; i < DIAG_NCODES && n < max; i++)
      if (ast_edit_distance(upper, len, codes[i].code, DIAG_CLOSE_CODE) == dist)
        out[n++] = (DiagCode)i;
  return n;
}

/* Each line of text, prefixed. */
static void put_lines(FILE *out, const char *prefix, const char *text) {
  for (const char *p = text; *p;) {
    const char *end = strchr(p, '\n');
    int len = end ? (int)(end - p) : (int)strlen(p);
    fprintf(out, "%s%.*s\n", len ? prefix : "", len, p);
    p += len + (end != NULL);
  }
}

void diag_explain(FILE *out, DiagCode code) {
  const DiagCodeInfo *c = &codes[code];
  fprintf(out, "%s: %s\n\n%s\n\nWrong:\n\n", c->code, c->title, c->explanation);
  put_lines(out, "    ", c->wrong);
  fputs("\nRight:\n\n", out);
  put_lines(out, "    ", c->right);
}

static void markdown_entry(FILE *out, const DiagCodeInfo *c) {
  fprintf(out, "\n## %s\n\n*%s*\n\n%s\n\nWrong:\n\n```\n%s```\n\nRight:\n\n```\n%s```\n",
          c->code, c->title, c->explanation, c->wrong, c->right);
}

static void markdown_list(FILE *out) {
  fputs("# Diagnostic codes\n\n"
        "<!-- Generated by `lobec explain --list --markdown` from compiler/codes.def;\n"
        "     test_diag_codes fails when this file and the table differ. -->\n\n"
        "Every error and warning of `lobec` has a stable code, printed after its\n"
        "level: `error[E0020]: unknown activation 'slu'`. Errors are E codes,\n"
        "warnings W codes; notes have none. `lobec explain CODE` prints the\n"
        "explanation of a code, `lobec explain --list` lists them all.\n\n"
        "| code | title |\n|---|---|\n", out);
  for (int i = 0; i < DIAG_NCODES; i++)
    fprintf(out, "| [%s](#%c%s) | %s |\n", codes[i].code,
            tolower((unsigned char)codes[i].code[0]), codes[i].code + 1, codes[i].title);
  for (int i = 0; i < DIAG_NCODES; i++)
    markdown_entry(out, &codes[i]);
}

void diag_list_codes(FILE *out, bool markdown) {
  if (markdown) {
    markdown_list(out);
    return;
  }
  for (int i = 0; i < DIAG_NCODES; i++)
    fprintf(out, "%s  %s\n", codes[i].code, codes[i].title);
}
