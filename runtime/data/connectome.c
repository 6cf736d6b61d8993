/*
 * connectome.c — structural connectomes as The Virtual Brain ships them: a
 * zip (read through libzip) of whitespace-separated text files:
 *   centres.txt        one "label x y z" line per region (later fields ignored:
 *                      some tvb-data zips append a "None" column)
 *   weights.txt        n lines of n connection strengths
 *   tract_lengths.txt  n lines of n fibre lengths in mm
 * Other members (areas.txt, cortical.txt, ...) are not read. libzip checks
 * the archive's structure and each member's CRC; we check the text.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "data.h"
#include "rt.h"

enum { CONN_MAX_REGIONS = 4096, CONN_MAX_MEMBER = 256 << 20, CONN_CHUNK = 1 << 16 };

typedef struct Conn {
  const char *path;
  zip_t *zip;
  char *err;
  size_t errlen;
} Conn;

/* One member's text, cut into lines in place. */
typedef struct Text {
  const char *member;
  char *data;                 /* NUL-terminated */
  size_t len, pos;
  long line;
} Text;

static int conn_fail(Conn *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  data_vfail(c->err, c->errlen, c->path, 0, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- the archive --------------------------------------------------------- */

static int conn_open(Conn *c) {
  int code = 0;
  FILE *f = fopen(c->path, "rb");
  if (!f)
    return conn_fail(c, "cannot open: %s", strerror(errno));
  fclose(f);
  c->zip = zip_open(c->path, ZIP_RDONLY | ZIP_CHECKCONS, &code);
  if (!c->zip) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, code);
    conn_fail(c, "expected a zip archive, found a damaged or different file (%s)",
              zip_error_strerror(&ze));
    zip_error_fini(&ze);
    return -1;
  }
  return 0;
}

static int read_member_bytes(Conn *c, zip_file_t *zf, Text *t) {
  size_t cap = 0;
  for (;;) {
    if (t->len + CONN_CHUNK + 1 > cap) {
      cap = cap ? 2 * cap : 4 * CONN_CHUNK;
      char *grown = realloc(t->data, cap);
      if (!grown)
        return conn_fail(c, "%s: out of memory", t->member);
      t->data = grown;
    }
    zip_int64_t n = zip_fread(zf, t->data + t->len, CONN_CHUNK);
    if (n < 0)
      return conn_fail(c, "%s: cannot read: %s (damaged archive?)", t->member,
                       zip_file_strerror(zf));
    if (n == 0)
      break;
    t->len += (size_t)n;
    if (t->len > CONN_MAX_MEMBER)
      return conn_fail(c, "%s: expected at most %d bytes, found more", t->member,
                       CONN_MAX_MEMBER);
  }
  if (memchr(t->data, '\0', t->len))
    return conn_fail(c, "%s: expected text, found a NUL byte", t->member);
  t->data[t->len] = '\0';
  return 0;
}

/* Reads member `name` wherever it sits among the archive's folders. */
static int read_member(Conn *c, const char *name, Text *t) {
  memset(t, 0, sizeof *t);
  t->member = name;
  zip_int64_t index = zip_name_locate(c->zip, name, ZIP_FL_NODIR);
  if (index < 0)
    return conn_fail(c, "expected a member %s in the archive, found none", name);
  zip_file_t *zf = zip_fopen_index(c->zip, (zip_uint64_t)index, 0);
  if (!zf)
    return conn_fail(c, "%s: cannot open: %s (damaged archive?)", name, zip_strerror(c->zip));
  int rc = read_member_bytes(c, zf, t);
  zip_fclose(zf);
  return rc;
}

/* ---- lines and numbers --------------------------------------------------- */

static int is_space(char ch) {
  return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* The next non-blank line, NUL-terminated in place; NULL at the end. */
static char *next_line(Text *t) {
  while (t->pos < t->len) {
    char *line = t->data + t->pos, *nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line) : t->len - t->pos;
    line[n] = '\0';
    t->pos += n + 1;
    t->line++;
    char *p = line;
    while (is_space(*p))
      p++;
    if (*p)
      return p;
  }
  return NULL;
}

/* Cuts the next whitespace-separated field off *p; NULL if none is left. */
static char *next_field(char **p) {
  char *s = *p;
  while (is_space(*s))
    s++;
  if (!*s)
    return NULL;
  char *e = s;
  while (*e && !is_space(*e))
    e++;
  *p = *e ? e + 1 : e;
  *e = '\0';
  return s;
}

static int parse_number(Conn *c, const Text *t, const char *field, double *out) {
  char *end, q[80];
  errno = 0;
  *out = strtod(field, &end);
  if (end != field && *end == '\0' && errno != ERANGE && isfinite(*out))
    return 0;
  data_quote(q, sizeof q, field, strlen(field));
  return conn_fail(c, "%s:%ld: expected a finite number, found %s", t->member, t->line, q);
}

/* ---- the three members ----------------------------------------------------- */

static int count_lines(Text *t) {
  int n = 0;
  while (next_line(t))
    n++;
  t->pos = 0;
  t->line = 0;
  for (size_t i = 0; i < t->len; i++)   /* next_line cut lines: restore them */
    if (t->data[i] == '\0')
      t->data[i] = '\n';
  return n;
}

static int parse_centre(Conn *c, Text *t, char *line, DataConnectome *g, int i) {
  char *label = next_field(&line);
  for (int k = 0; k < 3; k++) {
    char *field = next_field(&line);
    if (!field)
      return conn_fail(c, "%s:%ld: expected \"label x y z\", found %d field%s", t->member,
                       t->line, k + 1, k ? "s" : "");
    if (parse_number(c, t, field, &g->centres[i * 3 + k]) != 0)
      return -1;
  }
  for (int j = 0; j < i; j++)
    if (strcmp(g->labels[j], label) == 0)
      return conn_fail(c, "%s:%ld: expected distinct region labels, found %s again",
                       t->member, t->line, label);
  if (!(g->labels[i] = strdup(label)))
    return conn_fail(c, "out of memory");
  return 0;
}

static int read_centres(Conn *c, DataConnectome *g) {
  Text t;
  int rc = read_member(c, "centres.txt", &t);
  int n = rc == 0 ? count_lines(&t) : 0;
  if (rc == 0 && (n < 1 || n > CONN_MAX_REGIONS))
    rc = conn_fail(c, "centres.txt: expected 1 to %d regions (lines), found %d",
                   CONN_MAX_REGIONS, n);
  if (rc == 0) {
    g->labels = calloc((size_t)n, sizeof *g->labels);
    g->centres = malloc((size_t)n * 3 * sizeof *g->centres);
    g->n = n;
    if (!g->labels || !g->centres)
      rc = conn_fail(c, "out of memory");
  }
  for (int i = 0; i < n && rc == 0; i++)
    rc = parse_centre(c, &t, next_line(&t), g, i);
  free(t.data);
  return rc;
}

static int parse_row(Conn *c, Text *t, char *line, int n, double *row) {
  char *field;
  int k = 0;
  while ((field = next_field(&line))) {
    if (k == n)
      return conn_fail(c, "%s:%ld: expected %d numbers (one per region of centres.txt), "
                       "found more", t->member, t->line, n);
    if (parse_number(c, t, field, &row[k]) != 0)
      return -1;
    if (row[k] < 0)
      return conn_fail(c, "%s:%ld: expected numbers >= 0, found %g (column %d)", t->member,
                       t->line, row[k], k + 1);
    k++;
  }
  if (k < n)
    return conn_fail(c, "%s:%ld: expected %d numbers (one per region of centres.txt), "
                     "found %d", t->member, t->line, n, k);
  return 0;
}

/* An n x n matrix, n taken from centres.txt. */
static int read_matrix(Conn *c, const char *name, int n, double **out) {
  Text t;
  if (read_member(c, name, &t) != 0) {
    free(t.data);
    return -1;
  }
  int rc = 0;
  if (!(*out = malloc((size_t)n * (size_t)n * sizeof **out)))
    rc = conn_fail(c, "%s: out of memory", name);
  for (int i = 0; i < n && rc == 0; i++) {
    char *line = next_line(&t);
    if (!line)
      rc = conn_fail(c, "%s: expected %d rows (one per region of centres.txt), found %d",
                     name, n, i);
    else
      rc = parse_row(c, &t, line, n, *out + (size_t)i * (size_t)n);
  }
  if (rc == 0 && next_line(&t))
    rc = conn_fail(c, "%s:%ld: expected %d rows (one per region of centres.txt), found "
                   "more", name, t.line, n);
  free(t.data);
  return rc;
}

int data_read_connectome(const char *path, DataConnectome *out, char *err, size_t errlen) {
  Conn c = {.path = path, .err = err, .errlen = errlen};
  memset(out, 0, sizeof *out);
  int rc = conn_open(&c);
  if (rc == 0)
    rc = read_centres(&c, out);
  if (rc == 0)
    rc = read_matrix(&c, "weights.txt", out->n, &out->weights);
  if (rc == 0)
    rc = read_matrix(&c, "tract_lengths.txt", out->n, &out->tract_lengths);
  if (c.zip)
    zip_discard(c.zip);
  if (rc != 0)
    data_connectome_free(out);
  return rc;
}

void data_connectome_free(DataConnectome *c) {
  if (c->labels)
    for (int i = 0; i < c->n; i++)
      free(c->labels[i]);
  free(c->labels);
  free(c->weights);
  free(c->tract_lengths);
  free(c->centres);
  memset(c, 0, sizeof *c);
}
