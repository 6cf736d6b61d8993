/*
 * nwb.c — Neurodata Without Borders (NWB 2.x) files through the HDF5 C API:
 * sorted spike units binned into counts, and TimeSeries groups. An NWB file
 * is HDF5 with conventions; we read the few datasets a source needs and check
 * each one's presence, rank and type before trusting it, because HDF5
 * itself would happily convert strings or reshape nothing.
 */
#include <errno.h>
#include <float.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "rt.h"

/* Far above any real recording; keeps a corrupt shape from a huge malloc. */
enum { NWB_MAX_VALUES = 1 << 28 };

/* Timestamps may stray this many sample periods from a uniform grid. */
#define NWB_TIMESTAMP_TOLERANCE 0.01

typedef struct Nwb {
  const char *path;
  hid_t file;
  char *err;
  size_t errlen;
} Nwb;

/* A numeric dataset read as doubles: rank 0..2, dims[] padded with 1. */
typedef struct NwbArray {
  int rank;
  hsize_t dims[2];
  size_t count;
  double *values;
} NwbArray;

static int nwb_fail(Nwb *n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  data_vfail(n->err, n->errlen, n->path, 0, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- HDF5's own errors --------------------------------------------------- */

typedef struct Reason {
  char text[160];
} Reason;

static herr_t keep_innermost(unsigned depth, const H5E_error2_t *e, void *data) {
  Reason *r = data;
  if (depth == 0 && e->desc)
    snprintf(r->text, sizeof r->text, "%s", e->desc);
  return 0;
}

/* The most specific message on HDF5's error stack, after a failed call. */
static const char *h5_reason(Reason *r) {
  snprintf(r->text, sizeof r->text, "unknown HDF5 error");
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, r);
  return r->text;
}

/* ---- objects ------------------------------------------------------------- */

/* Whether every link on name's path exists: H5Lexists needs the parents. */
static int path_exists(hid_t loc, const char *name) {
  char prefix[512];
  size_t len = strlen(name);
  if (len >= sizeof prefix)
    return 0;
  for (size_t i = 1; i <= len; i++) {
    if (i < len && name[i] != '/')
      continue;
    memcpy(prefix, name, i);
    prefix[i] = '\0';
    if (strcmp(prefix, "/") != 0 && H5Lexists(loc, prefix, H5P_DEFAULT) <= 0)
      return 0;
  }
  return 1;
}

/* Opens name (relative to loc) when it exists and is of the given type;
 * returns 0 when it is absent and optional, -1 after an error. */
static hid_t open_object(Nwb *n, hid_t loc, const char *name, const char *shown,
                         H5I_type_t type, int optional) {
  Reason r;
  const char *what = type == H5I_GROUP ? "group" : "dataset";
  if (!path_exists(loc, name)) {
    if (optional)
      return 0;
    return nwb_fail(n, "expected a %s %s, found none", what, shown);
  }
  hid_t obj = H5Oopen(loc, name, H5P_DEFAULT);
  if (obj < 0)
    return nwb_fail(n, "cannot open %s: %s (corrupt file?)", shown, h5_reason(&r));
  if (H5Iget_type(obj) != type) {
    H5Oclose(obj);
    return nwb_fail(n, "expected %s to be a %s, found another kind of object", shown, what);
  }
  return obj;
}

static const char *class_name(H5T_class_t c) {
  switch (c) {
  case H5T_INTEGER: return "integers";
  case H5T_FLOAT: return "floating-point numbers";
  case H5T_STRING: return "strings";
  case H5T_COMPOUND: return "compound records";
  case H5T_REFERENCE: return "references";
  case H5T_ENUM: return "enums";
  case H5T_VLEN: return "variable-length sequences";
  case H5T_ARRAY: return "arrays";
  default: return "non-numeric values";
  }
}

/* want: H5T_INTEGER, H5T_FLOAT, or H5T_NO_CLASS for either. */
static int check_class(Nwb *n, hid_t type, const char *shown, H5T_class_t want) {
  H5T_class_t c = H5Tget_class(type);
  int numeric = c == H5T_INTEGER || c == H5T_FLOAT;
  if (want == H5T_NO_CLASS ? numeric : c == want)
    return 0;
  return nwb_fail(n, "expected %s to hold %s, found %s", shown,
                  want == H5T_NO_CLASS ? "numbers" : class_name(want), class_name(c));
}

static int check_shape(Nwb *n, hid_t space, const char *shown, int maxrank, NwbArray *a) {
  int rank = H5Sget_simple_extent_ndims(space);
  hsize_t dims[H5S_MAX_RANK];
  if (rank < 0 || H5Sget_simple_extent_dims(space, dims, NULL) < 0)
    return nwb_fail(n, "expected %s to have a simple shape, found none", shown);
  if (rank > maxrank)
    return nwb_fail(n, "expected %s to have at most %d dimension%s, found %d", shown,
                    maxrank, maxrank == 1 ? "" : "s", rank);
  a->rank = rank;
  a->dims[0] = rank > 0 ? dims[0] : 1;
  a->dims[1] = rank > 1 ? dims[1] : 1;
  double count = (double)a->dims[0] * (double)a->dims[1];
  if (count > NWB_MAX_VALUES)
    return nwb_fail(n, "expected %s to hold at most %d values, found %.0f", shown,
                    NWB_MAX_VALUES, count);
  a->count = (size_t)count;
  return 0;
}

static int read_values(Nwb *n, hid_t ds, hid_t space, const char *shown, NwbArray *a) {
  Reason r;
  a->values = malloc((a->count ? a->count : 1) * sizeof *a->values);
  if (!a->values)
    return nwb_fail(n, "out of memory for %s (%zu values)", shown, a->count);
  if (a->count == 0)
    return 0;
  if (H5Dread(ds, H5T_NATIVE_DOUBLE, space, space, H5P_DEFAULT, a->values) < 0)
    return nwb_fail(n, "cannot read %s: %s (corrupt or truncated file?)", shown,
                    h5_reason(&r));
  return 0;
}

/* Reads dataset name of rank <= maxrank and class want as doubles.
 * Returns 1, 0 when absent and optional, -1 after an error. */
static int read_array(Nwb *n, hid_t loc, const char *name, const char *shown,
                      H5T_class_t want, int maxrank, int optional, NwbArray *a) {
  memset(a, 0, sizeof *a);
  hid_t ds = open_object(n, loc, name, shown, H5I_DATASET, optional);
  if (ds <= 0)
    return (int)ds;
  hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
  int rc = type < 0 || space < 0 ? nwb_fail(n, "cannot read the type of %s", shown) : 0;
  if (rc == 0)
    rc = check_class(n, type, shown, want);
  if (rc == 0)
    rc = check_shape(n, space, shown, maxrank, a);
  if (rc == 0)
    rc = read_values(n, ds, space, shown, a);
  if (type >= 0)
    H5Tclose(type);
  if (space >= 0)
    H5Sclose(space);
  H5Oclose(ds);
  if (rc != 0) {
    free(a->values);
    a->values = NULL;
  }
  return rc == 0 ? 1 : -1;
}

/* A numeric scalar attribute; *out keeps its default when absent.
 * Returns 0 or -1. */
static int read_scalar_attr(Nwb *n, hid_t obj, const char *name, const char *shown,
                            double *out) {
  Reason r;
  htri_t exists = H5Aexists(obj, name);
  if (exists <= 0)
    return exists < 0 ? nwb_fail(n, "cannot look up %s: %s", shown, h5_reason(&r)) : 0;
  hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
  if (attr < 0)
    return nwb_fail(n, "cannot open %s: %s", shown, h5_reason(&r));
  hid_t type = H5Aget_type(attr), space = H5Aget_space(attr);
  int rc = type < 0 || space < 0 ? nwb_fail(n, "cannot read the type of %s", shown) : 0;
  if (rc == 0)
    rc = check_class(n, type, shown, H5T_NO_CLASS);
  if (rc == 0 && H5Sget_simple_extent_npoints(space) != 1)
    rc = nwb_fail(n, "expected %s to be a single number, found %lld values", shown,
                  (long long)H5Sget_simple_extent_npoints(space));
  if (rc == 0 && H5Aread(attr, H5T_NATIVE_DOUBLE, out) < 0)
    rc = nwb_fail(n, "cannot read %s: %s", shown, h5_reason(&r));
  if (rc == 0 && !isfinite(*out))
    rc = nwb_fail(n, "expected %s to be a finite number, found %g", shown, *out);
  if (type >= 0)
    H5Tclose(type);
  if (space >= 0)
    H5Sclose(space);
  H5Aclose(attr);
  return rc;
}

/* ---- opening the file ---------------------------------------------------- */

static int nwb_open(Nwb *n) {
  Reason r;
  FILE *f = fopen(n->path, "rb");
  if (!f)
    return nwb_fail(n, "cannot open: %s", strerror(errno));
  fclose(f);
  if (H5Fis_hdf5(n->path) <= 0)
    return nwb_fail(n, "expected an NWB (HDF5) file, found no HDF5 signature");
  n->file = H5Fopen(n->path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (n->file < 0)
    return nwb_fail(n, "cannot open as HDF5: %s (corrupt or truncated file?)",
                    h5_reason(&r));
  return 0;
}

/* Runs read(n, arg, out) on the open file with HDF5's printing of errors to
 * stderr turned off (we report them ourselves), then restores it. */
static int with_file(const char *path, int (*read)(Nwb *, const void *, DataTable *),
                     const void *arg, DataTable *out, char *err, size_t errlen) {
  Nwb n = {.path = path, .file = -1, .err = err, .errlen = errlen};
  H5E_auto2_t saved_func;
  void *saved_data;
  memset(out, 0, sizeof *out);
  H5Eget_auto2(H5E_DEFAULT, &saved_func, &saved_data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  int rc = nwb_open(&n);
  if (rc == 0)
    rc = read(&n, arg, out);
  if (n.file >= 0)
    H5Fclose(n.file);
  H5Eset_auto2(H5E_DEFAULT, saved_func, saved_data);
  if (rc != 0)
    data_free(out);
  return rc;
}

/* ---- units --------------------------------------------------------------- */

typedef struct UnitsArgs {
  double bin, t_start, t_end;
} UnitsArgs;

typedef struct Units {
  NwbArray times, ends, ids;
  int has_ids;
} Units;

static void units_free(Units *u) {
  free(u->times.values);
  free(u->ends.values);
  free(u->ids.values);
}

/* The ragged index must cut spike_times into consecutive runs: ends rise
 * and the last one is the number of spikes. */
static int check_index(Nwb *n, const Units *u) {
  double prev = 0, total = (double)u->times.count;
  for (size_t i = 0; i < u->ends.count; i++) {
    double end = u->ends.values[i];
    if (end < prev)
      return nwb_fail(n, "/units/spike_times_index: expected non-decreasing ends, found "
                      "%.0f after %.0f at unit %zu", end, prev, i);
    if (end > total)
      return nwb_fail(n, "/units/spike_times_index: expected ends within the %.0f spike "
                      "times, found %.0f at unit %zu (index past the end)", total, end, i);
    prev = end;
  }
  if (prev != total)
    return nwb_fail(n, "/units/spike_times_index: expected the last end to be the number "
                    "of spike times (%.0f), found %.0f", total, prev);
  return 0;
}

static int check_times(Nwb *n, const Units *u) {
  for (size_t i = 0; i < u->times.count; i++)
    if (!isfinite(u->times.values[i]))
      return nwb_fail(n, "/units/spike_times: expected finite times, found %g at spike %zu",
                      u->times.values[i], i);
  return 0;
}

static int read_units(Nwb *n, Units *u) {
  if (read_array(n, n->file, "/units/spike_times", "/units/spike_times", H5T_FLOAT, 1, 0,
                 &u->times) < 0 ||
      read_array(n, n->file, "/units/spike_times_index", "/units/spike_times_index",
                 H5T_INTEGER, 1, 0, &u->ends) < 0)
    return -1;
  if (u->times.rank != 1 || u->ends.rank != 1)
    return nwb_fail(n, "expected /units/spike_times and /units/spike_times_index to be "
                    "1-D, found a scalar");
  if (u->ends.count == 0)
    return nwb_fail(n, "/units/spike_times_index: expected at least one unit, found none");
  u->has_ids = read_array(n, n->file, "/units/id", "/units/id", H5T_INTEGER, 1, 1, &u->ids);
  if (u->has_ids < 0)
    return -1;
  if (u->has_ids && u->ids.count != u->ends.count)
    return nwb_fail(n, "/units/id: expected one id per unit (%zu), found %zu",
                    u->ends.count, u->ids.count);
  if (check_index(n, u) != 0 || check_times(n, u) != 0)
    return -1;
  return 0;
}

static double last_spike(const Units *u) {
  double last = -HUGE_VAL;
  for (size_t i = 0; i < u->times.count; i++)
    last = fmax(last, u->times.values[i]);
  return last;
}

/* Bins of width bin over [t_start, t_end); t_end <= 0: up to and including
 * the last spike. Returns the number of bins (a double: it may be absurd)
 * or -1. */
static double bin_count(Nwb *n, const Units *u, const UnitsArgs *a) {
  if (!(a->bin > 0) || !isfinite(a->bin) || !isfinite(a->t_start) || !isfinite(a->t_end))
    return nwb_fail(n, "expected a finite bin width > 0 and finite times, found bin %g s "
                    "over [%g, %g) s", a->bin, a->t_start, a->t_end);
  if (a->t_end <= 0) {
    if (u->times.count == 0)
      return nwb_fail(n, "/units/spike_times: expected spikes to find the end of the "
                      "recording, found none (give an end time)");
    double last = last_spike(u);
    if (last < a->t_start)
      return nwb_fail(n, "expected spikes at or after the start %g s, found the last at "
                      "%g s", a->t_start, last);
    return floor((last - a->t_start) / a->bin) + 1;
  }
  if (a->t_end <= a->t_start)
    return nwb_fail(n, "expected the end time to follow the start, found [%g, %g) s",
                    a->t_start, a->t_end);
  double bins = (a->t_end - a->t_start) / a->bin, whole = round(bins);
  /* A span of exactly k bins must not grow a k+1st from rounding error. */
  return fabs(bins - whole) <= 1e-9 * fmax(1, bins) ? whole : ceil(bins);
}

static int unit_names(Nwb *n, const Units *u, DataTable *t) {
  t->names = calloc((size_t)t->cols, sizeof *t->names);
  if (!t->names)
    return nwb_fail(n, "out of memory");
  for (int i = 0; i < t->cols; i++) {
    char buf[40];
    snprintf(buf, sizeof buf, "unit%.0f", u->has_ids ? u->ids.values[i] : (double)i);
    t->names[i] = strdup(buf);
    if (!t->names[i])
      return nwb_fail(n, "out of memory");
  }
  return 0;
}

static void count_spikes(const Units *u, const UnitsArgs *a, DataTable *t) {
  size_t begin = 0;
  for (int unit = 0; unit < t->cols; unit++) {
    size_t end = (size_t)u->ends.values[unit];
    for (size_t i = begin; i < end; i++) {
      double k = floor((u->times.values[i] - a->t_start) / a->bin);
      if (k >= 0 && k < t->rows)
        t->values[(size_t)k * (size_t)t->cols + (size_t)unit] += 1;
    }
    begin = end;
  }
}

static int bin_units(Nwb *n, const void *arg, DataTable *t) {
  const UnitsArgs *a = arg;
  Units u = {0};
  int rc = read_units(n, &u);
  double rows = rc == 0 ? bin_count(n, &u, a) : -1;
  if (rows < 0) {
    units_free(&u);
    return -1;
  }
  t->cols = (int)u.ends.count;
  if (rows < 1 || rows * t->cols > NWB_MAX_VALUES)
    rc = nwb_fail(n, "expected between 1 and %d bins x units, found %.0f bins x %d units "
                  "(bin width %g s)", NWB_MAX_VALUES, rows, t->cols, a->bin);
  else if (!(t->values = calloc((size_t)rows * (size_t)t->cols, sizeof *t->values)))
    rc = nwb_fail(n, "out of memory for %.0f bins", rows);
  else {
    t->rows = (int)rows;
    count_spikes(&u, a, t);
    rc = unit_names(n, &u, t);
  }
  units_free(&u);
  return rc;
}

int data_read_nwb_units(const char *path, double bin, double t_start, double t_end,
                        DataTable *out, char *err, size_t errlen) {
  UnitsArgs a = {bin, t_start, t_end};
  return with_file(path, bin_units, &a, out, err, errlen);
}

/* ---- time series --------------------------------------------------------- */

typedef struct SeriesArgs {
  const char *group;
  double *t0, *rate;
} SeriesArgs;

typedef struct Series {
  Nwb *n;
  hid_t group;
  const char *name;          /* the group path, for messages */
  char shown[600];           /* scratch: "GROUP/member" */
} Series;

static const char *member(Series *s, const char *name) {
  snprintf(s->shown, sizeof s->shown, "%s/%s", s->name, name);
  return s->shown;
}

/* starting_time with its rate attribute. Returns 1, 0 when absent, -1. */
static int timing_from_rate(Series *s, double *t0, double *rate) {
  NwbArray start;
  int rc = read_array(s->n, s->group, "starting_time", member(s, "starting_time"),
                      H5T_NO_CLASS, 1, 1, &start);
  if (rc <= 0)
    return rc;
  int single = start.count == 1;
  *t0 = single ? start.values[0] : NAN;
  free(start.values);
  if (!isfinite(*t0))
    return nwb_fail(s->n, "expected %s to be one finite number", s->shown);
  hid_t ds = H5Oopen(s->group, "starting_time", H5P_DEFAULT);
  *rate = 0;
  rc = read_scalar_attr(s->n, ds, "rate", member(s, "starting_time attribute 'rate'"), rate);
  H5Oclose(ds);
  if (rc != 0)
    return -1;
  if (!(*rate > 0))
    return nwb_fail(s->n, "expected %s to be a rate > 0 Hz, found %g", s->shown, *rate);
  return 1;
}

/* The worst distance from the grid t0 + k*dt, in sample periods. */
static double grid_error(const double *ts, size_t count, double dt, size_t *worst) {
  double max = 0;
  for (size_t k = 0; k < count; k++) {
    double off = fabs(ts[k] - (ts[0] + (double)k * dt)) / dt;
    if (!(off <= max)) {
      max = off;
      *worst = k;
    }
  }
  return max;
}

static int check_uniform(Series *s, const NwbArray *ts, double *t0, double *rate) {
  const double *v = ts->values;
  size_t count = ts->count, worst = 0;
  for (size_t k = 1; k < count; k++)
    if (!(v[k] > v[k - 1]) || !isfinite(v[k]))
      return nwb_fail(s->n, "expected %s to rise strictly, found %g then %g at sample %zu",
                      s->shown, v[k - 1], v[k], k);
  double dt = (v[count - 1] - v[0]) / (double)(count - 1);
  double off = grid_error(v, count, dt, &worst);
  if (off > NWB_TIMESTAMP_TOLERANCE)
    return nwb_fail(s->n, "expected %s to be uniform (within %g of a sample period of "
                    "t0 + k / %g Hz), found sample %zu at %g s, %.3g periods off the grid",
                    s->shown, NWB_TIMESTAMP_TOLERANCE, 1 / dt, worst, v[worst], off);
  *t0 = v[0];
  *rate = 1 / dt;
  return 0;
}

static int timing_from_timestamps(Series *s, int rows, double *t0, double *rate) {
  NwbArray ts;
  int rc = read_array(s->n, s->group, "timestamps", member(s, "timestamps"), H5T_NO_CLASS,
                      1, 1, &ts);
  if (rc == 0)
    return nwb_fail(s->n, "expected %s/starting_time (with a rate) or %s/timestamps, "
                    "found neither", s->name, s->name);
  if (rc < 0)
    return -1;
  if (ts.count != (size_t)rows)
    rc = nwb_fail(s->n, "expected %s to have one time per sample (%d), found %zu",
                  s->shown, rows, ts.count);
  else if (ts.count < 2 || !isfinite(ts.values[0]))
    rc = nwb_fail(s->n, "expected %s to have at least two finite times to give a rate, "
                  "found %zu", s->shown, ts.count);
  else
    rc = check_uniform(s, &ts, t0, rate);
  free(ts.values);
  return rc;
}

/* data * conversion + offset, the NWB way from stored to physical units. */
static int scale_data(Series *s, const NwbArray *d, DataTable *t) {
  double conversion = 1, offset = 0;
  hid_t ds = H5Oopen(s->group, "data", H5P_DEFAULT);
  int rc = read_scalar_attr(s->n, ds, "conversion", member(s, "data attribute 'conversion'"),
                            &conversion);
  if (rc == 0)
    rc = read_scalar_attr(s->n, ds, "offset", member(s, "data attribute 'offset'"), &offset);
  H5Oclose(ds);
  member(s, "data");
  for (size_t i = 0; i < d->count && rc == 0; i++) {
    double v = d->values[i] * conversion + offset;
    if (!isfinite(v) || fabs(v) > FLT_MAX)
      rc = nwb_fail(s->n, "%s: expected finite numbers within float32 range, found %g at "
                    "row %zu, channel %zu", s->shown, v, i / (size_t)t->cols,
                    i % (size_t)t->cols);
    else
      t->values[i] = (float)v;
  }
  return rc;
}

static int read_data(Series *s, DataTable *t) {
  NwbArray d;
  if (read_array(s->n, s->group, "data", member(s, "data"), H5T_NO_CLASS, 2, 0, &d) < 0)
    return -1;
  int rc = 0;
  if (d.rank == 0 || d.count == 0)
    rc = nwb_fail(s->n, "expected %s to be 1-D or 2-D (samples x channels) with at least "
                  "one value, found %s", s->shown, d.rank ? "no values" : "a scalar");
  else if (!(t->values = malloc(d.count * sizeof *t->values)))
    rc = nwb_fail(s->n, "out of memory for %s", s->shown);
  if (rc == 0) {
    t->rows = (int)d.dims[0];
    t->cols = (int)d.dims[1];
    rc = scale_data(s, &d, t);
  }
  free(d.values);
  return rc;
}

static int read_series(Nwb *n, const void *arg, DataTable *t) {
  const SeriesArgs *a = arg;
  Series s = {.n = n, .name = a->group};
  if (!a->group || !*a->group)
    return nwb_fail(n, "expected the path of a TimeSeries group, found none");
  s.group = open_object(n, n->file, a->group, a->group, H5I_GROUP, 0);
  if (s.group < 0)
    return -1;
  int rc = read_data(&s, t);
  if (rc == 0)
    rc = timing_from_rate(&s, a->t0, a->rate);
  if (rc == 0)
    rc = timing_from_timestamps(&s, t->rows, a->t0, a->rate);
  if (rc > 0)
    rc = 0;
  if (rc == 0 && data_default_names(t) != 0)
    rc = nwb_fail(n, "out of memory");
  H5Oclose(s.group);
  return rc;
}

int data_read_nwb_series(const char *path, const char *series, DataTable *out, double *t0,
                         double *rate, char *err, size_t errlen) {
  SeriesArgs a = {series, t0, rate};
  return with_file(path, read_series, &a, out, err, errlen);
}
