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

static int read_table(int kind, const char *path, int header_only,
                      DataTable *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!path || !*path) {
    snprintf(err, errlen, "no data file given");
    return -1;
  }
  if (kind == LOBE_SRC_CSV)
    return data_read_csv(path, header_only, out, err, errlen);
  if (kind == LOBE_SRC_NPY)
    return data_read_npy(path, header_only, out, err, errlen);
  snprintf(err, errlen, "%s: unknown data kind %d (expected csv or npy)", path, kind);
  return -1;
}

int data_load(int kind, const char *path, DataTable *out, char *err, size_t errlen) {
  return read_table(kind, path, 0, out, err, errlen);
}

int data_probe(int kind, const char *path, DataTable *out, char *err, size_t errlen) {
  return read_table(kind, path, 1, out, err, errlen);
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
