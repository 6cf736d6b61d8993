/*
 * data.c — dispatch from a source kind to its reader, and what the readers
 * share: freeing tables, generated channel names, quoting bad input.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "lobe_model.h"
#include "rt.h"

/* A required option the caller left out: a bug of the caller, not of the
 * file, but still an error rather than a crash. */
static int missing(const char *path, const char *what, char *err, size_t errlen) {
  snprintf(err, errlen, "%s: no %s given to read it by", path, what);
  return -1;
}

static int read_edf(const char *path, const DataOptions *o, int header_only,
                    DataTable *out, DataClock *clk, char *err, size_t errlen) {
  DataEdf e;
  if (data_read_edf(path, o->select, o->nselect, header_only, &e, err, errlen) != 0)
    return -1;
  *out = e.table;
  clk->rate = e.rate;
  e.table.values = NULL;             /* taken over; cols stays, to free the units */
  e.table.names = NULL;
  data_edf_free(&e);
  return 0;
}

static int read_nwb_units(const char *path, const DataOptions *o, DataTable *out,
                          DataClock *clk, char *err, size_t errlen) {
  if (!(o->bin > 0))
    return missing(path, "bin width", err, errlen);
  if (data_read_nwb_units(path, o->bin, 0, 0, out, err, errlen) != 0)
    return -1;
  clk->rate = 1 / o->bin;
  return 0;
}

static int read_nwb_series(const char *path, const DataOptions *o, DataTable *out,
                           DataClock *clk, char *err, size_t errlen) {
  if (!o->series)
    return missing(path, "series", err, errlen);
  return data_read_nwb_series(path, o->series, out, &clk->t0, &clk->rate, err, errlen);
}

static int read_nifti(const char *path, const DataOptions *o, DataTable *out,
                      DataClock *clk, char *err, size_t errlen) {
  if (!o->atlas)
    return missing(path, "atlas image", err, errlen);
  return data_read_nifti_regions(path, o->atlas, NULL, 0, out, &clk->rate, err, errlen);
}

/* The formats that take options; o is never NULL here. */
static int read_other(int kind, const char *path, const DataOptions *o, int header_only,
                      DataTable *out, DataClock *clk, char *err, size_t errlen) {
  if (kind == LOBE_SRC_EDF)
    return read_edf(path, o, header_only, out, clk, err, errlen);
  if (kind == LOBE_SRC_MAT)
    return o->var ? data_read_mat(path, o->var, o->transposed, header_only, out, err, errlen)
                  : missing(path, "variable", err, errlen);
  if (kind == LOBE_SRC_NWB_UNITS)
    return read_nwb_units(path, o, out, clk, err, errlen);
  if (kind == LOBE_SRC_NWB_SERIES)
    return read_nwb_series(path, o, out, clk, err, errlen);
  if (kind == LOBE_SRC_NIFTI)
    return read_nifti(path, o, out, clk, err, errlen);
  snprintf(err, errlen, "%s: unknown data kind %d", path, kind);
  return -1;
}

static int read_table(int kind, const char *path, const DataOptions *opt, int header_only,
                      DataTable *out, DataClock *clock, char *err, size_t errlen) {
  static const DataOptions none = {0};
  DataClock unused;
  DataClock *clk = clock ? clock : &unused;
  memset(out, 0, sizeof *out);
  *clk = (DataClock){0};
  if (!path || !*path) {
    snprintf(err, errlen, "no data file given");
    return -1;
  }
  if (kind == LOBE_SRC_CSV)
    return data_read_csv(path, header_only, out, err, errlen);
  if (kind == LOBE_SRC_NPY)
    return data_read_npy(path, header_only, out, err, errlen);
  int rc = read_other(kind, path, opt ? opt : &none, header_only, out, clk, err, errlen);
  if (rc != 0)
    data_free(out);
  return rc;
}

int data_load(int kind, const char *path, DataTable *out, char *err, size_t errlen) {
  return read_table(kind, path, NULL, 0, out, NULL, err, errlen);
}

int data_probe(int kind, const char *path, DataTable *out, char *err, size_t errlen) {
  return read_table(kind, path, NULL, 1, out, NULL, err, errlen);
}

int data_load_with(int kind, const char *path, const DataOptions *opt, DataTable *out,
                   DataClock *clock, char *err, size_t errlen) {
  return read_table(kind, path, opt, 0, out, clock, err, errlen);
}

int data_probe_with(int kind, const char *path, const DataOptions *opt, DataTable *out,
                    DataClock *clock, char *err, size_t errlen) {
  return read_table(kind, path, opt, 1, out, clock, err, errlen);
}

void data_free(DataTable *t) {
  if (t->names)
    for (int i = 0; i < t->cols; i++)
      free(t->names[i]);
  free(t->names);
  free(t->values);
  memset(t, 0, sizeof *t);
}

/* Each name is its own allocation: callers may take names over one by one. */
int data_default_names(DataTable *t) {
  t->names = calloc((size_t)t->cols, sizeof *t->names);
  if (!t->names)
    return -1;
  for (int i = 0; i < t->cols; i++) {
    char buf[24];
    snprintf(buf, sizeof buf, "ch%d", i);
    t->names[i] = strdup(buf);
    if (!t->names[i])
      return -1;
  }
  return 0;
}

void data_vfail(char *err, size_t errlen, const char *path, long line,
                const char *fmt, va_list ap) {
  int n = line > 0 ? snprintf(err, errlen, "%s:%ld: ", path, line)
                   : snprintf(err, errlen, "%s: ", path);
  if (n >= 0 && (size_t)n < errlen)
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

/* Writes src[0..len) in double quotes, shortened and with control and
 * non-ASCII bytes escaped, so that binary garbage prints as something a
 * terminal shows and a user can recognise. */
void data_quote(char *dst, size_t dstlen, const char *src, size_t len) {
  size_t n = 0, shown = len < 40 ? len : 40;
  if (dstlen < 16) {
    if (dstlen)
      dst[0] = '\0';
    return;
  }
  dst[n++] = '"';
  /* Each byte takes at most 4 chars; stop with room for `..."` and NUL. */
  for (size_t i = 0; i < shown && n + 9 < dstlen; i++) {
    unsigned char c = (unsigned char)src[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
      dst[n++] = (char)c;
    else
      n += (size_t)snprintf(dst + n, dstlen - n, "\\x%02x", c);
  }
  if (shown < len) {
    memcpy(dst + n, "...", 3);
    n += 3;
  }
  dst[n++] = '"';
  dst[n] = '\0';
}
