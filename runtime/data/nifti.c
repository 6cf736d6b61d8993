/*
 * nifti.c — region time series from NIfTI-1/2 images through niftilib: a
 * 4-D series (x y z t) averaged over the regions of a 3-D label volume (an
 * atlas such as AAL2). niftilib reads either version, either byte order and
 * .nii.gz; we check what it does not: the grids match, labels are whole
 * numbers, the data fit the file, and every labelled voxel is finite.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <nifti2_io.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "rt.h"

/* Far above any real image; keeps a corrupt header from a huge malloc. */
#define NII_MAX_BYTES ((double)(1ull << 32))

typedef struct Nii {
  char *err;
  size_t errlen;
} Nii;

static int nii_fail(Nii *r, const char *path, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  data_vfail(r->err, r->errlen, path, 0, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- voxels -------------------------------------------------------------- */

static int type_size(int datatype) {
  switch (datatype) {
  case DT_UINT8: case DT_INT8: return 1;
  case DT_INT16: case DT_UINT16: return 2;
  case DT_INT32: case DT_UINT32: case DT_FLOAT32: return 4;
  case DT_INT64: case DT_UINT64: case DT_FLOAT64: return 8;
  default: return 0;
  }
}

/* Voxel i as stored (niftilib has already swapped the bytes). */
static double raw_voxel(const nifti_image *nim, size_t i) {
  const unsigned char *p = (const unsigned char *)nim->data + i * (size_t)nim->nbyper;
  union { uint8_t u8; int8_t i8; int16_t i16; uint16_t u16; int32_t i32; uint32_t u32;
          int64_t i64; uint64_t u64; float f32; double f64; } v;
  memcpy(&v, p, (size_t)nim->nbyper);
  switch (nim->datatype) {
  case DT_UINT8: return v.u8;
  case DT_INT8: return v.i8;
  case DT_INT16: return v.i16;
  case DT_UINT16: return v.u16;
  case DT_INT32: return v.i32;
  case DT_UINT32: return v.u32;
  case DT_INT64: return (double)v.i64;
  case DT_UINT64: return (double)v.u64;
  case DT_FLOAT32: return v.f32;
  default: return v.f64;
  }
}

/* The voxel in physical units: scl_slope 0 means "no scaling". */
static double voxel(const nifti_image *nim, size_t i) {
  double v = raw_voxel(nim, i);
  return nim->scl_slope != 0 ? v * nim->scl_slope + nim->scl_inter : v;
}

/* ---- opening an image ---------------------------------------------------- */

/* Entries along dimension d (1..7); niftilib leaves nx, ny, ... unset past
 * dim[0], so everything here reads dim[] through this. */
static int64_t extent(const nifti_image *nim, int d) {
  return d <= nim->dim[0] ? nim->dim[d] : 1;
}

static int check_dims(Nii *r, const char *path, const nifti_image *nim, int maxdim) {
  double voxels = 1;
  for (int d = 1; d <= 7; d++) {
    int64_t n = extent(nim, d);
    if (n < 1)
      return nii_fail(r, path, "expected dimension %d to be at least 1, found %lld", d,
                      (long long)n);
    if (d > maxdim && n != 1)
      return nii_fail(r, path, "expected a %d-D image, found %lld entries along "
                      "dimension %d", maxdim, (long long)n, d);
    voxels *= (double)n;
  }
  if (voxels * nim->nbyper > NII_MAX_BYTES)
    return nii_fail(r, path, "expected at most %.0f bytes of voxels, found %.0f x %d",
                    NII_MAX_BYTES, voxels, nim->nbyper);
  if ((double)nim->nvox != voxels)
    return nii_fail(r, path, "expected %.0f voxels from the dimensions, found a header "
                    "giving %lld", voxels, (long long)nim->nvox);
  return 0;
}

/* An uncompressed file must hold every voxel the header promises. */
static int check_file_size(Nii *r, const char *path, const nifti_image *nim) {
  if (nifti_is_gzfile(nim->iname))
    return 0;
  int64_t have = nifti_get_filesize(nim->iname);
  int64_t want = nim->iname_offset + nim->nvox * nim->nbyper;
  if (have < want)
    return nii_fail(r, path, "truncated: expected %lld bytes (voxels from offset %lld), "
                    "found %lld", (long long)want, (long long)nim->iname_offset,
                    (long long)(have < 0 ? 0 : have));
  return 0;
}

static int check_header(Nii *r, const char *path, const nifti_image *nim, int maxdim) {
  if (nim->nifti_type == NIFTI_FTYPE_ANALYZE || nim->nifti_type == NIFTI_FTYPE_ASCII)
    return nii_fail(r, path, "expected a NIfTI-1 or NIfTI-2 header (magic \"n+1\", "
                    "\"ni1\", \"n+2\" or \"ni2\"), found none (ANALYZE 7.5 or damaged)");
  if (type_size(nim->datatype) == 0 || type_size(nim->datatype) != nim->nbyper)
    return nii_fail(r, path, "expected real numbers (integers or float32/64), found "
                    "datatype %s", nifti_datatype_string(nim->datatype));
  if (!isfinite(nim->scl_slope) || !isfinite(nim->scl_inter))
    return nii_fail(r, path, "expected finite scl_slope and scl_inter, found %g and %g",
                    nim->scl_slope, nim->scl_inter);
  if (check_dims(r, path, nim, maxdim) != 0)
    return -1;
  return check_file_size(r, path, nim);
}

/* Reads the image at path of at most maxdim dimensions, voxels included. */
static nifti_image *open_image(Nii *r, const char *path, int maxdim) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    nii_fail(r, path, "cannot open: %s", strerror(errno));
    return NULL;
  }
  fclose(f);
  nifti_set_debug_level(0);   /* niftilib would print to stderr; we report */
  nifti_image *nim = nifti_image_read(path, 0);
  if (!nim) {
    nii_fail(r, path, "expected a NIfTI-1 or NIfTI-2 image, found an unreadable header");
    return NULL;
  }
  int rc = check_header(r, path, nim, maxdim);
  if (rc == 0 && nifti_image_load(nim) != 0)
    rc = nii_fail(r, path, "cannot read the voxels (truncated or corrupt file?)");
  if (rc != 0) {
    nifti_image_free(nim);
    return NULL;
  }
  return nim;
}

/* ---- labels -------------------------------------------------------------- */

typedef struct Labels {
  size_t nvox;               /* voxels of one volume */
  int *column;               /* per voxel: the label's column, -1 for background */
  int64_t *values;           /* ncols ascending label values */
  size_t *counts;            /* ncols voxel counts */
  int ncols;
} Labels;

static void labels_free(Labels *l) {
  free(l->column);
  free(l->values);
  free(l->counts);
}

static int cmp_int64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static void voxel_xyz(const nifti_image *nim, size_t i, char *buf, size_t len) {
  size_t nx = (size_t)extent(nim, 1), ny = (size_t)extent(nim, 2);
  snprintf(buf, len, "(%zu, %zu, %zu)", i % nx, i / nx % ny, i / (nx * ny));
}

/* Stores each voxel's label in l->column for now; sorted distinct nonzero
 * labels go to l->values. */
static int collect_labels(Nii *r, const char *path, const nifti_image *nim, Labels *l,
                          int64_t *scratch) {
  size_t n = 0;
  for (size_t i = 0; i < l->nvox; i++) {
    double v = voxel(nim, i);
    if (!(v >= 0 && v <= INT32_MAX && v == floor(v))) {
      char at[80];
      voxel_xyz(nim, i, at, sizeof at);
      return nii_fail(r, path, "expected whole labels >= 0 in the label volume, found %g "
                      "at voxel %s", v, at);
    }
    l->column[i] = (int)v;
    if (v != 0)
      scratch[n++] = (int64_t)v;
  }
  qsort(scratch, n, sizeof *scratch, cmp_int64);
  for (size_t i = 0; i < n; i++)
    if (l->ncols == 0 || scratch[i] != l->values[l->ncols - 1])
      l->values[l->ncols++] = scratch[i];
  if (l->ncols == 0)
    return nii_fail(r, path, "expected at least one nonzero label, found only background");
  return 0;
}

/* Replaces each voxel's label by its column and counts voxels per column. */
static void assign_columns(Labels *l) {
  for (size_t i = 0; i < l->nvox; i++) {
    int64_t key = l->column[i];
    if (key == 0) {
      l->column[i] = -1;
      continue;
    }
    const int64_t *hit = bsearch(&key, l->values, (size_t)l->ncols, sizeof key, cmp_int64);
    l->column[i] = (int)(hit - l->values);
    l->counts[l->column[i]]++;
  }
}

static int read_labels(Nii *r, const char *path, const nifti_image *nim, Labels *l) {
  l->nvox = (size_t)nim->nvox;
  l->column = malloc(l->nvox * sizeof *l->column);
  l->values = malloc(l->nvox * sizeof *l->values);
  int64_t *scratch = malloc(l->nvox * sizeof *scratch);
  int rc = 0;
  if (!l->column || !l->values || !scratch)
    rc = nii_fail(r, path, "out of memory for %zu voxels", l->nvox);
  if (rc == 0)
    rc = collect_labels(r, path, nim, l, scratch);
  free(scratch);
  if (rc == 0 && !(l->counts = calloc((size_t)l->ncols, sizeof *l->counts)))
    rc = nii_fail(r, path, "out of memory");
  if (rc == 0)
    assign_columns(l);
  return rc;
}

/* ---- the series ---------------------------------------------------------- */

static int same_grid(Nii *r, const char *series, const nifti_image *s, const char *labels,
                     const nifti_image *l) {
  int64_t sx = extent(s, 1), sy = extent(s, 2), sz = extent(s, 3);
  int64_t lx = extent(l, 1), ly = extent(l, 2), lz = extent(l, 3);
  if (sx != lx || sy != ly || sz != lz)
    return nii_fail(r, series, "expected the grid of the labels %s, %lld x %lld x %lld, "
                    "found %lld x %lld x %lld", labels, (long long)lx, (long long)ly,
                    (long long)lz, (long long)sx, (long long)sy, (long long)sz);
  for (int d = 1; d <= 3; d++) {
    double a = s->pixdim[d], b = l->pixdim[d];
    if (a > 0 && b > 0 && fabs(a - b) > 1e-3 * fmax(a, b))
      return nii_fail(r, series, "expected the voxel size of the labels %s, %g x %g x %g, "
                      "found %g x %g x %g", labels, l->pixdim[1], l->pixdim[2],
                      l->pixdim[3], s->pixdim[1], s->pixdim[2], s->pixdim[3]);
  }
  return 0;
}

static int average_frame(Nii *r, const char *path, const nifti_image *s, const Labels *l,
                         size_t frame, double *sums, float *row) {
  memset(sums, 0, (size_t)l->ncols * sizeof *sums);
  for (size_t i = 0; i < l->nvox; i++) {
    if (l->column[i] < 0)
      continue;
    double v = voxel(s, frame * l->nvox + i);
    if (!isfinite(v)) {
      char at[80];
      voxel_xyz(s, i, at, sizeof at);
      return nii_fail(r, path, "expected finite values inside the labels, found %g at "
                      "voxel %s of frame %zu", v, at, frame);
    }
    sums[l->column[i]] += v;
  }
  for (int c = 0; c < l->ncols; c++) {
    double mean = sums[c] / (double)l->counts[c];
    if (fabs(mean) > FLT_MAX)
      return nii_fail(r, path, "expected means within float32 range, found %g in frame %zu",
                      mean, frame);
    row[c] = (float)mean;
  }
  return 0;
}

static int average(Nii *r, const char *path, const nifti_image *s, const Labels *l,
                   DataTable *t) {
  int64_t frames = s->nvox / (int64_t)l->nvox;   /* dims past the 4th are 1 */
  if ((double)frames * l->ncols > INT32_MAX)
    return nii_fail(r, path, "expected at most %d frames x labels, found %lld x %d",
                    INT32_MAX, (long long)frames, l->ncols);
  t->rows = (int)frames;
  t->cols = l->ncols;
  double *sums = malloc((size_t)l->ncols * sizeof *sums);
  t->values = malloc((size_t)t->rows * (size_t)t->cols * sizeof *t->values);
  int rc = sums && t->values ? 0 : nii_fail(r, path, "out of memory");
  for (int f = 0; f < t->rows && rc == 0; f++)
    rc = average_frame(r, path, s, l, (size_t)f, sums, t->values + (size_t)f * (size_t)t->cols);
  free(sums);
  return rc;
}

static int name_columns(Nii *r, const char *path, const Labels *l, const char *const *names,
                        int nnames, DataTable *t) {
  if (nnames > 0 && nnames != l->ncols)
    return nii_fail(r, path, "expected %d names, one per label, found %d", l->ncols, nnames);
  t->names = calloc((size_t)l->ncols, sizeof *t->names);
  if (!t->names)
    return nii_fail(r, path, "out of memory");
  for (int c = 0; c < l->ncols; c++) {
    char buf[40];
    snprintf(buf, sizeof buf, "label%lld", (long long)l->values[c]);
    const char *name = nnames > 0 ? names[c] : buf;
    if (!name || !*name)
      return nii_fail(r, path, "expected a name for label %lld, found none",
                      (long long)l->values[c]);
    if (!(t->names[c] = strdup(name)))
      return nii_fail(r, path, "out of memory");
  }
  return 0;
}

static double frame_rate(const nifti_image *s) {
  double scale = s->time_units == NIFTI_UNITS_MSEC ? 1e-3
               : s->time_units == NIFTI_UNITS_USEC ? 1e-6 : 1;
  double seconds = s->dt * scale;
  return extent(s, 4) > 1 && seconds > 0 && isfinite(seconds) ? 1 / seconds : 0;
}

static int reduce(Nii *r, const char *series, const char *labels, const char *const *names,
                  int nnames, DataTable *t, double *rate) {
  Labels l = {0};
  nifti_image *lab = open_image(r, labels, 3), *s = NULL;
  int rc = lab ? read_labels(r, labels, lab, &l) : -1;
  if (rc == 0)
    rc = (s = open_image(r, series, 4)) ? same_grid(r, series, s, labels, lab) : -1;
  if (rc == 0)
    rc = average(r, series, s, &l, t);
  if (rc == 0)
    rc = name_columns(r, labels, &l, names, nnames, t);
  if (rc == 0)
    *rate = frame_rate(s);
  labels_free(&l);
  if (lab)
    nifti_image_free(lab);
  if (s)
    nifti_image_free(s);
  return rc;
}

int data_read_nifti_regions(const char *series, const char *labels,
                            const char *const *names, int nnames, DataTable *out,
                            double *rate, char *err, size_t errlen) {
  Nii r = {err, errlen};
  memset(out, 0, sizeof *out);
  int rc = reduce(&r, series, labels, names, nnames, out, rate);
  if (rc != 0)
    data_free(out);
  return rc;
}
