/*
 * csv.c — comma-separated tables: a header line of channel names (optionally
 * double-quoted), then one line of numbers per sample. Strict on purpose: a
 * number that silently became 0 or NaN would train a model on garbage, so
 * every irregular cell is an error naming its line and field.
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "rt.h"

enum { CSV_MAX_LINE = 4 << 20, CSV_MAX_COLS = 1 << 16 };

typedef struct CsvReader {
  FILE *f;
  const char *path;
  char *line;           /* CSV_MAX_LINE + 1 bytes */
  long lineno;
  char *err;
  size_t errlen;
} CsvReader;

static int csv_fail_at(CsvReader *r, long lineno, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  data_vfail(r->err, r->errlen, r->path, lineno, fmt, ap);
  va_end(ap);
  return -1;
}

static int csv_fail(CsvReader *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  data_vfail(r->err, r->errlen, r->path, 0, fmt, ap);
  va_end(ap);
  return -1;
}

/* Reads the next line, without its "\n" or "\r\n", into r->line.
 * Returns 1, 0 at the end of the file, -1 on error. */
static int csv_next_line(CsvReader *r) {
  long lineno = r->lineno + 1;
  size_t n = 0;
  int c;
  while ((c = getc_unlocked(r->f)) != EOF && c != '\n') {
    if (c == '\0')
      return csv_fail_at(r, lineno, "expected text, found a NUL byte (is this a binary file?)");
    if (n == CSV_MAX_LINE)
      return csv_fail_at(r, lineno, "expected a line of at most %d bytes, found a longer one",
                         CSV_MAX_LINE);
    r->line[n++] = (char)c;
  }
  if (c == EOF && ferror(r->f))
    return csv_fail_at(r, lineno, "read error: %s", strerror(errno));
  if (c == EOF && n == 0)
    return 0;
  if (n > 0 && r->line[n - 1] == '\r')
    n--;
  r->line[n] = '\0';
  r->lineno = lineno;
  return 1;
}

static int is_blank(const char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  return *s == '\0';
}

static char *skip_space(char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  return s;
}

static void trim_end(char *start, char **end) {
  while (*end > start && ((*end)[-1] == ' ' || (*end)[-1] == '\t'))
    (*end)--;
}

/* ---- header ------------------------------------------------------------ */

/* A quoted name: "..." with "" standing for one quote. Unquotes in place;
 * returns the position after the closing quote, or NULL if there is none. */
static char *unquote(char *p, char **name_end) {
  char *out = p + 1, *in = p + 1;
  for (;;) {
    if (*in == '\0')
      return NULL;
    if (*in == '"' && in[1] == '"') {
      *out++ = '"';
      in += 2;
    } else if (*in == '"') {
      *name_end = out;
      return in + 1;
    } else
      *out++ = *in++;
  }
}

static int add_name(CsvReader *r, DataTable *t, const char *name, size_t len) {
  if (len == 0)
    return csv_fail_at(r, 1, "field %d: expected a channel name, found an empty field",
                       t->cols + 1);
  if (t->cols == CSV_MAX_COLS)
    return csv_fail_at(r, 1, "expected at most %d columns, found more", CSV_MAX_COLS);
  if ((t->cols & (t->cols - 1)) == 0) {
    size_t cap = t->cols ? 2 * (size_t)t->cols : 1;
    char **names = realloc(t->names, cap * sizeof *names);
    if (!names)
      return csv_fail(r, "out of memory reading the header");
    t->names = names;
  }
  t->names[t->cols] = strndup(name, len);
  if (!t->names[t->cols])
    return csv_fail(r, "out of memory reading the header");
  t->cols++;
  return 0;
}

/* Splits the header line into names; returns the next field's start. */
static char *header_field(CsvReader *r, DataTable *t, char *p) {
  char *start = skip_space(p), *end;
  if (*start == '"') {
    char *after = unquote(start, &end);
    if (!after) {
      csv_fail_at(r, 1, "field %d: expected a closing '\"', found the end of the line",
                  t->cols + 1);
      return NULL;
    }
    p = skip_space(after);
    if (*p != ',' && *p != '\0') {
      char q[200];
      data_quote(q, sizeof q, p, strlen(p));
      csv_fail_at(r, 1, "field %d: expected ',' after the quoted name, found %s",
                  t->cols + 1, q);
      return NULL;
    }
    start++;
  } else {
    p = start + strcspn(start, ",");
    end = p;
    trim_end(start, &end);
  }
  if (add_name(r, t, start, (size_t)(end - start)) != 0)
    return NULL;
  return p;
}

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int check_distinct(CsvReader *r, const DataTable *t) {
  char **sorted = malloc((size_t)t->cols * sizeof *sorted);
  if (!sorted)
    return csv_fail(r, "out of memory reading the header");
  memcpy(sorted, t->names, (size_t)t->cols * sizeof *sorted);
  qsort(sorted, (size_t)t->cols, sizeof *sorted, name_cmp);
  int rc = 0;
  for (int i = 1; i < t->cols && rc == 0; i++)
    if (strcmp(sorted[i - 1], sorted[i]) == 0) {
      char q[200];
      data_quote(q, sizeof q, sorted[i], strlen(sorted[i]));
      rc = csv_fail_at(r, 1, "expected distinct channel names, found %s twice", q);
    }
  free(sorted);
  return rc;
}

static int read_header(CsvReader *r, DataTable *t) {
  int k = csv_next_line(r);
  if (k < 0)
    return -1;
  if (k == 0)
    return csv_fail(r, "expected a header line of channel names, found an empty file");
  char *p = r->line;
  if (strncmp(p, "\xef\xbb\xbf", 3) == 0)   /* UTF-8 byte order mark (Excel) */
    p += 3;
  if (is_blank(p))
    return csv_fail_at(r, 1, "expected a header line of channel names, found an empty line");
  for (;;) {
    p = header_field(r, t, p);
    if (!p)
      return -1;
    if (*p == '\0')
      break;
    p++;
  }
  return check_distinct(r, t);
}

/* ---- data rows --------------------------------------------------------- */

static int count_fields(const char *s) {
  int n = 1;
  for (; *s; s++)
    n += *s == ',';
  return n;
}

static int cell_error(CsvReader *r, const DataTable *t, int field, const char *what,
                      const char *found) {
  char name[200];
  data_quote(name, sizeof name, t->names[field], strlen(t->names[field]));
  return csv_fail_at(r, r->lineno, "field %d (%s): expected %s, found %s", field + 1, name,
                     what, found);
}

static int parse_cell(CsvReader *r, const DataTable *t, int field, char *start, float *out) {
  char *end = start + strlen(start), *stop;
  start = skip_space(start);
  trim_end(start, &end);
  *end = '\0';
  if (start == end)
    return cell_error(r, t, field, "a number", "an empty cell");
  double v = strtod(start, &stop);
  char q[200];
  data_quote(q, sizeof q, start, (size_t)(end - start));
  if (stop != end)
    return cell_error(r, t, field, "a number", q);
  if (!isfinite(v) || fabs(v) > FLT_MAX)
    return cell_error(r, t, field, "a finite number within float32 range", q);
  *out = (float)v;
  return 0;
}

static int parse_row(CsvReader *r, const DataTable *t, float *row) {
  int n = count_fields(r->line);
  if (n != t->cols)
    return csv_fail_at(r, r->lineno, "expected %d fields (one per header column), found %d",
                       t->cols, n);
  char *p = r->line;
  for (int i = 0; i < n; i++) {
    char *comma = strchr(p, ',');
    if (comma)
      *comma = '\0';
    if (parse_cell(r, t, i, p, &row[i]) != 0)
      return -1;
    if (comma)
      p = comma + 1;
  }
  return 0;
}

static int grow_rows(CsvReader *r, DataTable *t, size_t *cap) {
  size_t cols = (size_t)t->cols;
  if ((size_t)t->rows < *cap)
    return 0;
  if (t->rows == INT_MAX || ((size_t)t->rows + 1) * cols > (size_t)INT32_MAX)
    return csv_fail_at(r, r->lineno, "expected at most %d values in a table, found more",
                       INT32_MAX);
  size_t newcap = *cap ? 2 * *cap : 1024;
  if (newcap * cols > (size_t)INT32_MAX)
    newcap = (size_t)INT32_MAX / cols;
  float *v = realloc(t->values, newcap * cols * sizeof *v);
  if (!v)
    return csv_fail(r, "out of memory after %d rows of %d columns", t->rows, t->cols);
  t->values = v;
  *cap = newcap;
  return 0;
}

static int read_rows(CsvReader *r, DataTable *t) {
  size_t cap = 0;
  long blank = 0;
  int k;
  while ((k = csv_next_line(r)) == 1) {
    if (is_blank(r->line)) {
      blank = blank ? blank : r->lineno;
      continue;
    }
    if (blank)   /* blank lines are only tolerated at the end of the file */
      return csv_fail_at(r, blank, "expected %d fields, found an empty line", t->cols);
    if (grow_rows(r, t, &cap) != 0 ||
        parse_row(r, t, t->values + (size_t)t->rows * (size_t)t->cols) != 0)
      return -1;
    t->rows++;
  }
  return k;
}

/* data_probe: counts the non-blank lines after the header without parsing. */
static int count_rows(CsvReader *r, DataTable *t) {
  long rows = 0;
  int c, nonblank = 0;
  while ((c = getc_unlocked(r->f)) != EOF) {
    if (c == '\n') {
      rows += nonblank;
      nonblank = 0;
    } else if (!isspace(c))
      nonblank = 1;
  }
  if (ferror(r->f))
    return csv_fail(r, "read error: %s", strerror(errno));
  rows += nonblank;
  if (rows > INT_MAX)
    return csv_fail(r, "expected at most %d rows, found %ld", INT_MAX, rows);
  t->rows = (int)rows;
  return 0;
}

static int read_csv(CsvReader *r, int header_only, DataTable *out) {
  if (read_header(r, out) != 0)
    return -1;
  if ((header_only ? count_rows(r, out) : read_rows(r, out)) != 0)
    return -1;
  if (out->rows == 0)
    return csv_fail(r, "expected at least one data row after the header, found none");
  return 0;
}

int data_read_csv(const char *path, int header_only, DataTable *out, char *err, size_t errlen) {
  CsvReader r = {.path = path, .err = err, .errlen = errlen};
  memset(out, 0, sizeof *out);
  r.f = fopen(path, "rb");
  if (!r.f) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  r.line = malloc(CSV_MAX_LINE + 1);
  int rc = r.line ? read_csv(&r, header_only, out) : csv_fail(&r, "out of memory");
  free(r.line);
  fclose(r.f);
  if (rc != 0)
    data_free(out);
  return rc;
}
