/*
 * mat.c — one variable of a MATLAB .mat file (v4, v5, v7.3) through matio:
 * a real, non-empty 2-D numeric array of any class, converted to float32.
 * MATLAB stores arrays column-major; the table is row-major, so reading
 * "as stored" transposes the memory order and reading "transposed" (a
 * channels x samples variable) copies it straight.
 */
#include <errno.h>
#include <float.h>
#include <hdf5.h>
#include <math.h>
#include <matio.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data.h"
#include "rt.h"

enum { MAT_LIST_MAX = 1200 };

typedef struct MatReader {
  const char *path;
  const char *var;
  mat_t *mat;
  long long file_size;
  char *err;
  size_t errlen;
} MatReader;

static int mat_fail(MatReader *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  data_vfail(r->err, r->errlen, r->path, 0, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- matio's complaints ------------------------------------------------ */

/* matio reports damage (a bad zlib stream, a short read) through its log,
 * sometimes while still returning a variable: we keep the first message of
 * each read and treat any message as failure. Not thread-safe, like matio. */
static char mat_complaint[256];

static void mat_log(int level, char *message) {
  if (!mat_complaint[0] && message)
    snprintf(mat_complaint, sizeof mat_complaint, "%s", message);
}

static void mat_quiet(void) {
  mat_complaint[0] = '\0';
  Mat_LogInitFunc("lobe", mat_log);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);   /* HDF5 would print its error stack */
}

static int complained(MatReader *r) {
  if (!mat_complaint[0])
    return 0;
  return mat_fail(r, "variable '%s': corrupt or truncated data (matio: %s)", r->var,
                  mat_complaint);
}

/* ---- the variable ------------------------------------------------------ */

static const char *class_name(enum matio_classes c) {
  switch (c) {
  case MAT_C_EMPTY: return "empty";
  case MAT_C_CELL: return "cell array";
  case MAT_C_STRUCT: return "struct";
  case MAT_C_OBJECT: return "object";
  case MAT_C_CHAR: return "char array";
  case MAT_C_SPARSE: return "sparse matrix";
  case MAT_C_FUNCTION: return "function handle";
  case MAT_C_OPAQUE: return "opaque object";
  default: return "numeric array";
  }
}

static int is_numeric(enum matio_classes c) {
  return c >= MAT_C_DOUBLE && c <= MAT_C_UINT64;
}

/* "'a', 'b', ..." into buf: the variables a user could have meant.
 * Returns how many there are. */
static size_t list_vars(MatReader *r, char *buf, size_t cap) {
  size_t n = 0, count = 0;
  char **names = Mat_GetDir(r->mat, &count);
  buf[0] = '\0';
  for (size_t i = 0; names && i < count && n + 48 < cap; i++)
    if (names[i])
      n += (size_t)snprintf(buf + n, cap - n, "%s'%.40s'", n ? ", " : "", names[i]);
  if (n + 48 >= cap)
    snprintf(buf + n, cap - n, ", ...");
  return names ? count : 0;
}

static int missing_var(MatReader *r) {
  char list[MAT_LIST_MAX];
  size_t count = list_vars(r, list, sizeof list);
  mat_complaint[0] = '\0';    /* listing a damaged file may complain too */
  if (count == 0)
    return mat_fail(r, "expected a variable '%s', found a file without variables "
                    "(empty or truncated?)", r->var);
  return mat_fail(r, "expected a variable '%s', found none; the variables are: %s",
                  r->var, list);
}

static int check_kind(MatReader *r, const matvar_t *v) {
  if (v->class_type == MAT_C_SPARSE || !is_numeric(v->class_type))
    return mat_fail(r, "variable '%s': expected a numeric matrix, found a %s", r->var,
                    class_name(v->class_type));
  if (v->isComplex)
    return mat_fail(r, "variable '%s': expected real numbers, found a complex array", r->var);
  if (v->rank != 2 || !v->dims)
    return mat_fail(r, "variable '%s': expected a 2-D matrix, found %d dimensions", r->var,
                    v->rank);
  if (v->dims[0] == 0 || v->dims[1] == 0)
    return mat_fail(r, "variable '%s': expected a non-empty matrix, found %zu x %zu", r->var,
                    v->dims[0], v->dims[1]);
  if (v->dims[0] > INT32_MAX || v->dims[1] > INT32_MAX ||
      v->dims[0] * v->dims[1] > INT32_MAX)
    return mat_fail(r, "variable '%s': expected at most %d values, found %zu x %zu", r->var,
                    INT32_MAX, v->dims[0], v->dims[1]);
  return 0;
}

static int table_shape(MatReader *r, const matvar_t *v, int orientation, DataTable *t) {
  if (check_kind(r, v) != 0)
    return -1;
  int d0 = (int)v->dims[0], d1 = (int)v->dims[1];
  t->rows = orientation == DATA_MAT_TRANSPOSED ? d1 : d0;
  t->cols = orientation == DATA_MAT_TRANSPOSED ? d0 : d1;
  return data_default_names(t) == 0 ? 0 : mat_fail(r, "out of memory");
}

/* ---- the values -------------------------------------------------------- */

static int element_size(enum matio_types type) {
  switch (type) {
  case MAT_T_INT8: case MAT_T_UINT8: return 1;
  case MAT_T_INT16: case MAT_T_UINT16: return 2;
  case MAT_T_INT32: case MAT_T_UINT32: case MAT_T_SINGLE: return 4;
  case MAT_T_INT64: case MAT_T_UINT64: case MAT_T_DOUBLE: return 8;
  default: return 0;
  }
}

static double element(const void *data, enum matio_types type, size_t i) {
  switch (type) {
  case MAT_T_INT8: return ((const int8_t *)data)[i];
  case MAT_T_UINT8: return ((const uint8_t *)data)[i];
  case MAT_T_INT16: return ((const int16_t *)data)[i];
  case MAT_T_UINT16: return ((const uint16_t *)data)[i];
  case MAT_T_INT32: return ((const int32_t *)data)[i];
  case MAT_T_UINT32: return ((const uint32_t *)data)[i];
  case MAT_T_SINGLE: return ((const float *)data)[i];
  case MAT_T_INT64: return (double)((const int64_t *)data)[i];
  case MAT_T_UINT64: return (double)((const uint64_t *)data)[i];
  default: return ((const double *)data)[i];
  }
}

/* Element i of the column-major d0 x d1 array goes to (i % d0, i / d0). */
static int store_all(MatReader *r, const matvar_t *v, int orientation, DataTable *t) {
  size_t d0 = v->dims[0], total = (size_t)t->rows * (size_t)t->cols;
  for (size_t i = 0; i < total; i++) {
    double x = element(v->data, v->data_type, i);
    size_t row = i % d0, col = i / d0;
    if (!isfinite(x) || fabs(x) > FLT_MAX)
      return mat_fail(r, "variable '%s', element (%zu, %zu): expected a finite float32 "
                      "value, found %g", r->var, row + 1, col + 1, x);
    size_t at = orientation == DATA_MAT_TRANSPOSED ? i : row * (size_t)t->cols + col;
    t->values[at] = (float)x;
  }
  return 0;
}

static int read_values(MatReader *r, const matvar_t *v, int orientation, DataTable *t) {
  size_t total = (size_t)t->rows * (size_t)t->cols;
  int size = element_size(v->data_type);
  if (!v->data || size == 0 || v->nbytes < total * (size_t)size)
    return mat_fail(r, "variable '%s': expected %zu stored values, found %s", r->var, total,
                    v->data ? "fewer or of an unknown type" : "no data");
  t->values = malloc(total * sizeof *t->values);
  if (!t->values)
    return mat_fail(r, "out of memory for %d x %d values", t->rows, t->cols);
  return store_all(r, v, orientation, t);
}

/* matio allocates what a variable's header declares before reading it, so
 * a corrupt header could ask for gigabytes. Every value takes at least one
 * stored byte, and zlib expands at most 1032-fold: check against those. */
static int check_fits(MatReader *r, const matvar_t *v) {
  long long room = r->file_size;
  if (v->compression != MAT_COMPRESSION_NONE || Mat_GetVersion(r->mat) == MAT_FT_MAT73)
    room *= 1032;
  if ((long long)(v->dims[0] * v->dims[1]) <= room)
    return 0;
  return mat_fail(r, "variable '%s': expected at most %lld values in a file of %lld bytes, "
                  "found %zu x %zu (corrupt header?)", r->var, room, r->file_size,
                  v->dims[0], v->dims[1]);
}

/* The data, once the header (`info`) has passed every check. */
static int read_data(MatReader *r, const matvar_t *info, int orientation, DataTable *t) {
  matvar_t *v = Mat_VarRead(r->mat, r->var);
  int rc = complained(r);
  if (rc == 0 && (!v || v->rank != 2 || v->dims[0] != info->dims[0] ||
                  v->dims[1] != info->dims[1]))
    rc = mat_fail(r, "variable '%s': corrupt data (its shape changed on reading)", r->var);
  if (rc == 0)
    rc = read_values(r, v, orientation, t);
  Mat_VarFree(v);
  return rc;
}

static int read_var(MatReader *r, int orientation, int header_only, DataTable *t) {
  matvar_t *v = Mat_VarReadInfo(r->mat, r->var);
  if (!v)
    return complained(r) ? -1 : missing_var(r);
  int rc = complained(r);
  if (rc == 0)
    rc = table_shape(r, v, orientation, t);
  if (rc == 0)
    rc = check_fits(r, v);
  if (rc == 0 && !header_only)
    rc = read_data(r, v, orientation, t);
  Mat_VarFree(v);
  return rc;
}

/* ---- v5 framing --------------------------------------------------------- */

static uint32_t u32(const unsigned char *b, int swap) {
  return swap ? (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]
              : b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Is the array at `at` a function handle (class 16 in the low byte of its
 * flags)? matio reads a corrupt one's sizes from memory it never set and
 * may then ask for gigabytes (found by fuzzing). */
static bool function_handle(FILE *f, long at, int swap) {
  unsigned char b[8];
  if (fseek(f, at + 16, SEEK_SET) != 0 || fread(b, 1, 8, f) != 8)
    return false;
  return (u32(b, swap) & 0xff) == 16;
}

/* The array's name follows its dimensions; matio allocates it by the byte
 * count of its tag, which must not exceed what is left of the array either
 * (found by fuzzing: a count of 3 GB). */
static int check_v5_name(MatReader *r, FILE *f, long at, uint32_t bytes, long name_at,
                         int swap) {
  unsigned char b[8];
  long end = at + 8 + (long)bytes;
  if (name_at + 8 > end || fseek(f, name_at, SEEK_SET) != 0 || fread(b, 1, 8, f) != 8)
    return 0;   /* no room for a name: matio reports that itself */
  uint32_t type = u32(b, swap), count = u32(b + 4, swap);
  if (type >> 16 == 0 && count > end - (name_at + 8))
    return mat_fail(r, "corrupt: the array at byte %ld declares a name of %u bytes, more "
                    "than the %ld bytes left of it", at, count, end - (name_at + 8));
  return 0;
}

/* matio allocates an array's dimensions by the byte count of their tag,
 * which follows the array's 8-byte tag and its 16 bytes of flags: a corrupt
 * count must not exceed the array. (Compressed arrays are not inflated here.) */
static int check_v5_dims(MatReader *r, FILE *f, long at, uint32_t bytes, int swap) {
  unsigned char b[8];
  if (bytes < 24 || fseek(f, at + 24, SEEK_SET) != 0 || fread(b, 1, 8, f) != 8)
    return 0;   /* too short to hold dimensions: matio reports that itself */
  uint32_t type = u32(b, swap), count = u32(b + 4, swap);
  if (function_handle(f, at, swap))
    return mat_fail(r, "unsupported: the array at byte %ld is a function handle (matio "
                    "misreads their sizes)", at);
  if (type >> 16 != 0)   /* small format: the dimensions are in the tag */
    return check_v5_name(r, f, at, bytes, at + 32, swap);
  if (count > bytes - 24)
    return mat_fail(r, "corrupt: the array at byte %ld declares %u bytes of dimensions, "
                    "more than its own %u bytes", at, count, bytes);
  return check_v5_name(r, f, at, bytes, at + 32 + (long)((count + 7) & ~7u), swap);
}

/* matio inflates a compressed variable without checking that its element is
 * complete, so a file cut inside the zlib checksum still reads. We walk the
 * top-level element tags (type, byte count) and require each to fit. */
static int check_v5_frames(MatReader *r, FILE *f, long size) {
  unsigned char b[128];
  if (fread(b, 1, 128, f) != 128)
    return mat_fail(r, "truncated: expected a 128-byte MAT v5 header, found %ld bytes", size);
  int swap = b[126] == 'M' && b[127] == 'I';
  for (long at = 128; at + 8 <= size;) {
    if (fseek(f, at, SEEK_SET) != 0 || fread(b, 1, 8, f) != 8)
      return mat_fail(r, "cannot read at byte %ld: %s", at, strerror(errno));
    uint32_t type = u32(b, swap), bytes = u32(b + 4, swap);
    if (type >> 16)     /* a small element packed into its own tag */
      bytes = 0;
    else if (type != MAT_T_COMPRESSED)
      bytes = (bytes + 7) & ~7u;
    if ((long long)at + 8 + bytes > size)
      return mat_fail(r, "truncated: the element at byte %ld needs %lld bytes, found %ld",
                      at, 8LL + bytes, size - at);
    if (type == MAT_T_MATRIX && check_v5_dims(r, f, at, bytes, swap) != 0)
      return -1;
    at += 8 + (long)bytes;
  }
  return 0;
}

/* ---- v4 framing --------------------------------------------------------- */

/* A v4 file is a list of variables, each a 20-byte header (type MOPT, rows,
 * columns, imaginary flag, name length) then the name and the values. matio
 * allocates the name and values as declared, so each must fit in the file. */
static int check_v4_frames(MatReader *r, FILE *f, long size) {
  static const int precision_size[6] = {8, 4, 4, 2, 2, 1};
  unsigned char b[20];
  for (long at = 0; at + 20 <= size;) {
    if (fseek(f, at, SEEK_SET) != 0 || fread(b, 1, 20, f) != 20)
      return mat_fail(r, "cannot read at byte %ld: %s", at, strerror(errno));
    int swap = u32(b, 0) > 9999;   /* a big-endian MOPT reads as a huge number */
    uint32_t type = u32(b, swap), rows = u32(b + 4, swap), cols = u32(b + 8, swap);
    uint32_t imaginary = u32(b + 12, swap), name = u32(b + 16, swap);
    unsigned precision = type / 10 % 10;
    if (type > 4052 || type / 100 % 10 != 0 || precision > 5 || type % 10 > 2)
      return 0;   /* not a v4 header: matio names the problem */
    unsigned long long values = (unsigned long long)rows * cols;
    if (values > (unsigned long long)size || name > (unsigned long long)size)
      return mat_fail(r, "truncated: the variable at byte %ld declares %u x %u values "
                      "and a %u-byte name, in a file of %ld bytes", at, rows, cols, name, size);
    long long need = 20 + (long long)name +
                     (long long)values * precision_size[precision] * (imaginary ? 2 : 1);
    if (at + need > size)
      return mat_fail(r, "truncated: the variable at byte %ld needs %lld bytes, found %ld",
                      at, need, size - at);
    at += (long)need;
  }
  return 0;
}

static int is_v5(FILE *f) {
  unsigned char b[128];
  return fread(b, 1, 128, f) == 128 &&
         ((b[126] == 'I' && b[127] == 'M') || (b[126] == 'M' && b[127] == 'I'));
}

/* matio tries a file without the v5 marker as v4, and Mat_Open already
 * allocates its first variable's name: check such files before opening. */
static int check_v4_unless_v5(MatReader *r, FILE *f, long size) {
  return is_v5(f) ? 0 : check_v4_frames(r, f, size);
}

/* Runs check on the file, whose size open_mat has taken already. */
static int check_file(MatReader *r, int (*check)(MatReader *, FILE *, long)) {
  FILE *f = fopen(r->path, "rb");
  if (!f)
    return mat_fail(r, "cannot open: %s", strerror(errno));
  int rc = check(r, f, (long)r->file_size);
  fclose(f);
  return rc;
}

static int open_mat(MatReader *r) {
  struct stat st;
  if (stat(r->path, &st) != 0)
    return mat_fail(r, "cannot open: %s", strerror(errno));
  if (!S_ISREG(st.st_mode))
    return mat_fail(r, "expected a regular file, found something else");
  r->file_size = (long long)st.st_size;
  if (check_file(r, check_v4_unless_v5) != 0)
    return -1;
  r->mat = Mat_Open(r->path, MAT_ACC_RDONLY);
  if (!r->mat)
    return mat_fail(r, "expected a MATLAB .mat file (v4, v5 or v7.3), found something "
                    "matio cannot open%s%s%s", mat_complaint[0] ? " (matio: " : "",
                    mat_complaint, mat_complaint[0] ? ")" : "");
  return Mat_GetVersion(r->mat) == MAT_FT_MAT5 ? check_file(r, check_v5_frames) : 0;
}

int data_read_mat(const char *path, const char *var, int orientation,
                  int header_only, DataTable *out, char *err, size_t errlen) {
  MatReader r = {.path = path, .var = var, .err = err, .errlen = errlen};
  memset(out, 0, sizeof *out);
  if (!var || !*var) {
    snprintf(err, errlen, "%s: expected the name of a variable to read, found none", path);
    return -1;
  }
  if (orientation != DATA_MAT_AS_STORED && orientation != DATA_MAT_TRANSPOSED) {
    snprintf(err, errlen, "%s: unknown orientation %d", path, orientation);
    return -1;
  }
  mat_quiet();
  int rc = open_mat(&r);
  if (rc == 0)
    rc = read_var(&r, orientation, header_only, out);
  if (r.mat)
    Mat_Close(r.mat);
  if (rc != 0)
    data_free(out);
  return rc;
}
