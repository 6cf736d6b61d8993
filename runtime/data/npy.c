/*
 * npy.c — NumPy .npy files (format versions 1.0, 2.0 and 3.0): a magic
 * string, a header that is a Python dict literal
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (100, 3), }
 * then the raw array. We take 1-D (one channel) and 2-D (samples x channels)
 * arrays of little-endian float32 or float64 in either memory order.
 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data.h"
#include "rt.h"

enum { NPY_MAX_HEADER = 1 << 20, NPY_MAX_DIMS = 32, NPY_CHUNK = 1 << 16 };

typedef struct NpyHeader {
  char descr[32];
  int fortran;
  int ndim;                        /* -1 until 'shape' is seen */
  int64_t shape[NPY_MAX_DIMS];
  int seen_descr, seen_order;
} NpyHeader;

typedef struct NpyReader {
  FILE *f;
  const char *path;
  const char *p;                   /* header parse position (NUL-terminated) */
  long data_offset;
  char *err;
  size_t errlen;
} NpyReader;

static int npy_fail(NpyReader *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  data_vfail(r->err, r->errlen, r->path, 0, fmt, ap);
  va_end(ap);
  return -1;
}

/* "header: expected WHAT, found <the next few characters>". */
static int npy_expected(NpyReader *r, const char *what) {
  char q[200];
  size_t len = strlen(r->p);
  if (len == 0)
    return npy_fail(r, "corrupt header: expected %s, found the end of the header", what);
  data_quote(q, sizeof q, r->p, len < 20 ? len : 20);
  return npy_fail(r, "corrupt header: expected %s, found %s", what, q);
}

/* ---- the magic string and header length -------------------------------- */

static unsigned le16(const unsigned char *b) { return b[0] | (unsigned)b[1] << 8; }

static uint32_t le32(const unsigned char *b) {
  return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t le64(const unsigned char *b) {
  return le32(b) | (uint64_t)le32(b + 4) << 32;
}

/* Reads the preamble and returns the header text (caller frees) or NULL. */
static char *read_preamble(NpyReader *r) {
  unsigned char pre[12];
  if (fread(pre, 1, 10, r->f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
    npy_fail(r, "expected a .npy file (starting with \"\\x93NUMPY\"), found something else");
    return NULL;
  }
  int major = pre[6];
  if (major < 1 || major > 3) {
    npy_fail(r, "expected .npy format version 1, 2 or 3, found %d.%d", major, pre[7]);
    return NULL;
  }
  uint32_t hlen = le16(pre + 8);
  r->data_offset = 10;
  if (major >= 2) {
    if (fread(pre + 10, 1, 2, r->f) != 2) {
      npy_fail(r, "truncated: expected a header length, found the end of the file");
      return NULL;
    }
    hlen = le32(pre + 8);
    r->data_offset = 12;
  }
  if (hlen > NPY_MAX_HEADER) {
    npy_fail(r, "expected a header of at most %d bytes, found %" PRIu32, NPY_MAX_HEADER, hlen);
    return NULL;
  }
  char *text = malloc((size_t)hlen + 1);
  if (!text) {
    npy_fail(r, "out of memory");
    return NULL;
  }
  if (fread(text, 1, hlen, r->f) != hlen) {
    npy_fail(r, "truncated: expected a header of %" PRIu32 " bytes, found fewer", hlen);
    free(text);
    return NULL;
  }
  text[hlen] = '\0';
  r->data_offset += (long)hlen;
  return text;
}

/* ---- the header dict --------------------------------------------------- */

static void skip_ws(NpyReader *r) {
  while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')
    r->p++;
}

static int accept(NpyReader *r, char c) {
  skip_ws(r);
  if (*r->p != c)
    return 0;
  r->p++;
  return 1;
}

static int parse_string(NpyReader *r, char *buf, size_t cap) {
  skip_ws(r);
  char q = *r->p;
  if (q != '\'' && q != '"')
    return npy_expected(r, "a quoted string");
  const char *end = strchr(r->p + 1, q);
  if (!end)
    return npy_expected(r, "a closed string");
  size_t len = (size_t)(end - r->p - 1);
  if (len >= cap)
    return npy_expected(r, "a short string");
  memcpy(buf, r->p + 1, len);
  buf[len] = '\0';
  r->p = end + 1;
  return 0;
}

static int parse_bool(NpyReader *r, int *out) {
  skip_ws(r);
  if (strncmp(r->p, "True", 4) == 0 || strncmp(r->p, "False", 5) == 0) {
    *out = *r->p == 'T';
    r->p += *out ? 4 : 5;
    return 0;
  }
  return npy_expected(r, "True or False");
}

static int parse_dim(NpyReader *r, int64_t *out) {
  skip_ws(r);
  if (*r->p < '0' || *r->p > '9')
    return npy_expected(r, "a dimension (a non-negative integer)");
  int64_t v = 0;
  for (; *r->p >= '0' && *r->p <= '9'; r->p++) {
    v = v * 10 + (*r->p - '0');
    if (v > INT32_MAX)
      return npy_fail(r, "corrupt header: expected a dimension below 2^31, found a larger one");
  }
  if (*r->p == 'L')   /* Python 2 long literal, written by old NumPy */
    r->p++;
  *out = v;
  return 0;
}

static int parse_shape(NpyReader *r, NpyHeader *h) {
  if (!accept(r, '('))
    return npy_expected(r, "'(' starting the shape tuple");
  h->ndim = 0;
  while (!accept(r, ')')) {
    if (h->ndim == NPY_MAX_DIMS)
      return npy_fail(r, "corrupt header: expected at most %d dimensions, found more",
                      NPY_MAX_DIMS);
    if (parse_dim(r, &h->shape[h->ndim++]) != 0)
      return -1;
    if (!accept(r, ',') && (skip_ws(r), *r->p != ')'))
      return npy_expected(r, "',' or ')' in the shape tuple");
  }
  return 0;
}

static int parse_entry(NpyReader *r, NpyHeader *h) {
  char key[32];
  if (parse_string(r, key, sizeof key) != 0)
    return -1;
  if (!accept(r, ':'))
    return npy_expected(r, "':' after a key");
  if (strcmp(key, "descr") == 0) {
    h->seen_descr = 1;
    skip_ws(r);
    if (*r->p == '[')
      return npy_fail(r, "expected a plain float32 or float64 array, found a structured dtype");
    return parse_string(r, h->descr, sizeof h->descr);
  }
  if (strcmp(key, "fortran_order") == 0) {
    h->seen_order = 1;
    return parse_bool(r, &h->fortran);
  }
  if (strcmp(key, "shape") == 0)
    return parse_shape(r, h);
  return npy_fail(r, "corrupt header: expected the keys 'descr', 'fortran_order' and "
                  "'shape', found '%s'", key);
}

static int parse_dict(NpyReader *r, NpyHeader *h) {
  h->ndim = -1;
  if (!accept(r, '{'))
    return npy_expected(r, "'{' starting the header dict");
  while (!accept(r, '}')) {
    if (parse_entry(r, h) != 0)
      return -1;
    if (!accept(r, ',') && (skip_ws(r), *r->p != '}'))
      return npy_expected(r, "',' or '}' in the header dict");
  }
  skip_ws(r);
  if (*r->p != '\0')
    return npy_expected(r, "the end of the header after '}'");
  if (!h->seen_descr || !h->seen_order || h->ndim < 0)
    return npy_fail(r, "corrupt header: expected the keys 'descr', 'fortran_order' and "
                    "'shape', found only some of them");
  return 0;
}

/* ---- what the header describes ----------------------------------------- */

static int item_size(NpyReader *r, const char *descr) {
  if (strcmp(descr, "<f4") == 0)
    return 4;
  if (strcmp(descr, "<f8") == 0)
    return 8;
  if (strcmp(descr, ">f4") == 0 || strcmp(descr, ">f8") == 0)
    return npy_fail(r, "expected little-endian float32 or float64 ('<f4' or '<f8'), found "
                    "'%s' (big-endian; convert with arr.astype('<f4'))", descr);
  return npy_fail(r, "expected float32 or float64 data ('<f4' or '<f8'), found '%s'", descr);
}

static void format_shape(const NpyHeader *h, char *buf, size_t len) {
  size_t n = (size_t)snprintf(buf, len, "(");
  for (int i = 0; i < h->ndim && n < len; i++)
    n += (size_t)snprintf(buf + n, len - n, "%s%" PRId64, i ? ", " : "", h->shape[i]);
  if (n < len)
    snprintf(buf + n, len - n, "%s)", h->ndim == 1 ? "," : "");
}

static int table_shape(NpyReader *r, const NpyHeader *h, DataTable *t) {
  char shape[128];
  format_shape(h, shape, sizeof shape);
  if (h->ndim != 1 && h->ndim != 2)
    return npy_fail(r, "expected a 1-D or 2-D array (samples x channels), found %d-D shape %s",
                    h->ndim, shape);
  int64_t rows = h->shape[0], cols = h->ndim == 2 ? h->shape[1] : 1;
  if (rows == 0 || cols == 0)
    return npy_fail(r, "expected at least one sample and one channel, found shape %s", shape);
  if (rows * cols > INT32_MAX)
    return npy_fail(r, "expected at most %d values, found shape %s", INT32_MAX, shape);
  t->rows = (int)rows;
  t->cols = (int)cols;
  return 0;
}

static int check_size(NpyReader *r, const DataTable *t, int itemsize) {
  struct stat st;
  if (fstat(fileno(r->f), &st) != 0 || !S_ISREG(st.st_mode))
    return npy_fail(r, "expected a regular file, found something else");
  int64_t want = (int64_t)t->rows * t->cols * itemsize;
  int64_t have = (int64_t)st.st_size - r->data_offset;
  if (have < want)
    return npy_fail(r, "truncated: expected %" PRId64 " bytes of data for %d x %d values, "
                    "found %" PRId64, want, t->rows, t->cols, have < 0 ? 0 : have);
  if (have > want)
    return npy_fail(r, "expected %" PRId64 " bytes of data for %d x %d values, found %" PRId64
                    " (trailing bytes)", want, t->rows, t->cols, have);
  return 0;
}

/* ---- the values -------------------------------------------------------- */

static double decode(const unsigned char *b, int itemsize) {
  if (itemsize == 4) {
    uint32_t u = le32(b);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
  }
  uint64_t u = le64(b);
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

static int store(NpyReader *r, DataTable *t, int fortran, size_t j, double v) {
  size_t rows = (size_t)t->rows, cols = (size_t)t->cols;
  size_t row = fortran ? j % rows : j / cols, col = fortran ? j / rows : j % cols;
  if (!isfinite(v))
    return npy_fail(r, "row %zu, channel %zu: expected a finite number, found %g", row, col, v);
  if (fabs(v) > FLT_MAX)
    return npy_fail(r, "row %zu, channel %zu: expected a number within float32 range, "
                    "found %g", row, col, v);
  t->values[row * cols + col] = (float)v;
  return 0;
}

static int read_values(NpyReader *r, DataTable *t, int itemsize, int fortran) {
  size_t total = (size_t)t->rows * (size_t)t->cols;
  unsigned char *buf = malloc((size_t)NPY_CHUNK * 8);
  t->values = malloc(total * sizeof *t->values);
  if (!buf || !t->values) {
    free(buf);
    return npy_fail(r, "out of memory for %d x %d values", t->rows, t->cols);
  }
  int rc = 0;
  for (size_t j = 0; j < total && rc == 0;) {
    size_t n = total - j < NPY_CHUNK ? total - j : NPY_CHUNK;
    if (fread(buf, (size_t)itemsize, n, r->f) != n) {
      rc = npy_fail(r, "truncated: expected %zu values, found fewer", total);
      break;
    }
    for (size_t i = 0; i < n && rc == 0; i++, j++)
      rc = store(r, t, fortran, j, decode(buf + i * (size_t)itemsize, itemsize));
  }
  free(buf);
  return rc;
}

static int read_npy(NpyReader *r, int header_only, DataTable *t) {
  NpyHeader h = {0};
  char *text = read_preamble(r);
  if (!text)
    return -1;
  r->p = text;
  int rc = parse_dict(r, &h);
  free(text);
  if (rc != 0)
    return -1;
  int itemsize = item_size(r, h.descr);
  if (itemsize < 0 || table_shape(r, &h, t) != 0 || check_size(r, t, itemsize) != 0)
    return -1;
  if (data_default_names(t) != 0)
    return npy_fail(r, "out of memory");
  return header_only ? 0 : read_values(r, t, itemsize, h.fortran);
}

int data_read_npy(const char *path, int header_only, DataTable *out, char *err, size_t errlen) {
  NpyReader r = {.path = path, .err = err, .errlen = errlen};
  memset(out, 0, sizeof *out);
  r.f = fopen(path, "rb");
  if (!r.f) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  int rc = read_npy(&r, header_only, out);
  fclose(r.f);
  if (rc != 0)
    data_free(out);
  return rc;
}
