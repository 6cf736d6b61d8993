/*
 * structure.c — structural connectomes read at compile time, for `region
 * from connectome(...)` and `structure of SUBJECT = connectome(...)`
 * (docs/semantics.md#structure). The readers are those of the runtime
 * (runtime/data): a TVB zip gives labels, centres, weights and tract
 * lengths; a csv, npy or mat file gives one square matrix and no labels.
 * Every failure is a message naming the file and what was expected and
 * found; sema places it at the path in the spec. Sema calls these through
 * structure_reader, which lobec passes to sema_check_with.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "front.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

/* Moves what the zip reader allocated into c: no copies of n x n matrices. */
static int read_zip(const char *path, Connectome *out, char *err, size_t errlen) {
  DataConnectome g;
  memset(out, 0, sizeof *out);
  if (data_read_connectome(path, &g, err, errlen) != 0)
    return -1;
  *out = (Connectome){.n = g.n, .labels = g.labels, .centres = g.centres,
                      .weights = g.weights, .lengths = g.tract_lengths};
  return 0;
}

/* A square matrix of n x n values >= 0 (rows: from, columns: to). SourceKind
 * is in the order of the runtime's LOBE_SRC_*. */
static int read_matrix(SourceKind kind, const char *path, const char *var, double **out,
                       int *n, char *err, size_t errlen) {
  DataOptions opt = {.var = var, .transposed = DATA_MAT_AS_STORED};
  DataTable t;
  *out = NULL;
  if (kind != SRC_CSV && kind != SRC_NPY && kind != SRC_MAT)
    return fail(err, errlen, "%s: expected a csv, npy or mat matrix", path);
  if (data_load_with((int)kind, path, &opt, &t, NULL, err, errlen) != 0)
    return -1;
  int rc = 0;
  if (t.rows != t.cols)
    rc = fail(err, errlen, "%s: expected a square matrix (one row and one column per "
              "region), found %d x %d", path, t.rows, t.cols);
  else if (!(*out = malloc((size_t)t.rows * (size_t)t.cols * sizeof **out)))
    rc = fail(err, errlen, "%s: out of memory", path);
  for (long i = 0; rc == 0 && i < (long)t.rows * t.cols; i++) {
    if (t.values[i] < 0)
      rc = fail(err, errlen, "%s: expected values >= 0, found %g (row %ld, column %ld)",
                path, t.values[i], i / t.cols + 1, i % t.cols + 1);
    (*out)[i] = t.values[i];
  }
  *n = t.rows;
  data_free(&t);
  if (rc != 0) {
    free(*out);
    *out = NULL;
  }
  return rc;
}

const StructureReader structure_reader = {read_zip, read_matrix};
