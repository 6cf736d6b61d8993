/*
 * test_data_nwb.c — the NWB readers: spike units binned on the real pynapple
 * recording, small NWB-like files written here with the HDF5 API for time
 * series and for each kind of damage, and truncated or flipped copies of the
 * real file. Every failure must name the file.
 */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "test_data_util.h"
#include "test_util.h"

#define REAL_NWB SHARED_DATA "nwb/A8604-211122.nwb"

static char path[256];
static char err[512];

static void make_tmpdir(void) {
  tmpdir_make("nwb");
  snprintf(path, sizeof path, "%s/test.nwb", tmpdir);
}

/* ---- writing NWB-like files --------------------------------------------- */

static hid_t create_file(void) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ck_assert_int_ge(f, 0);
  return f;
}

static hid_t make_group(hid_t loc, const char *name) {
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t g = H5Gcreate2(loc, name, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Pclose(lcpl);
  ck_assert_int_ge(g, 0);
  return g;
}

/* Writes a dataset of `rank` dims with file type ftype from memory type mtype. */
static void write_dataset(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank,
                          const hsize_t *dims, const void *values) {
  hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
  hid_t ds = H5Dcreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ck_assert_int_ge(ds, 0);
  ck_assert_int_ge(H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, values), 0);
  H5Dclose(ds);
  H5Sclose(space);
}

static void write_doubles(hid_t loc, const char *name, size_t n, const double *v) {
  hsize_t dims[1] = {n};
  write_dataset(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, dims, v);
}

static void write_ints(hid_t loc, const char *name, size_t n, const int *v) {
  hsize_t dims[1] = {n};
  write_dataset(loc, name, H5T_STD_I32LE, H5T_NATIVE_INT, 1, dims, v);
}

static void write_attr(hid_t loc, const char *obj, const char *name, double v) {
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate_by_name(loc, obj, name, H5T_IEEE_F64LE, space, H5P_DEFAULT,
                              H5P_DEFAULT, H5P_DEFAULT);
  ck_assert_int_ge(a, 0);
  ck_assert_int_ge(H5Awrite(a, H5T_NATIVE_DOUBLE, &v), 0);
  H5Aclose(a);
  H5Sclose(space);
}

/* Two units: 10 fires at 0.05, 0.15, 0.17; 20 at 0.5 and 1.0 s. */
static const double spikes[] = {0.05, 0.15, 0.17, 1.0, 0.5};

static void write_units(const int *ends, int nunits, int with_ids) {
  static const int ids[] = {10, 20, 30};
  hid_t f = create_file(), g = make_group(f, "units");
  write_doubles(g, "spike_times", 5, spikes);
  write_ints(g, "spike_times_index", (size_t)nunits, ends);
  if (with_ids)
    write_ints(g, "id", (size_t)nunits, ids);
  H5Gclose(g);
  H5Fclose(f);
}

static void write_good_units(void) {
  static const int ends[] = {3, 5};
  write_units(ends, 2, 1);
}

/* /acquisition/lfp: 3 samples x 2 channels of int16, conversion 0.5, offset 1. */
static hid_t write_lfp_data(void) {
  static const short data[3][2] = {{2, -4}, {6, 8}, {0, 10}};
  hsize_t dims[2] = {3, 2};
  hid_t f = create_file(), g = make_group(f, "acquisition/lfp");
  write_dataset(g, "data", H5T_STD_I16LE, H5T_NATIVE_SHORT, 2, dims, data);
  write_attr(g, "data", "conversion", 0.5);
  write_attr(g, "data", "offset", 1);
  H5Gclose(g);
  return f;
}

static void write_lfp_with_rate(double start, double rate) {
  hid_t f = write_lfp_data(), g = H5Gopen2(f, "acquisition/lfp", H5P_DEFAULT);
  write_dataset(g, "starting_time", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, NULL, &start);
  write_attr(g, "starting_time", "rate", rate);
  H5Gclose(g);
  H5Fclose(f);
}

static void write_lfp_with_timestamps(const double *ts, size_t n) {
  hid_t f = write_lfp_data(), g = H5Gopen2(f, "acquisition/lfp", H5P_DEFAULT);
  write_doubles(g, "timestamps", n, ts);
  H5Gclose(g);
  H5Fclose(f);
}

/* ---- reading ------------------------------------------------------------- */

static const char *units_bad(const char *file, double bin, double t0, double t1) {
  DataTable t;
  err[0] = '\0';
  ck_assert_int_eq(data_read_nwb_units(file, bin, t0, t1, &t, err, sizeof err), -1);
  ck_assert_ptr_null(t.values);
  ck_assert_ptr_null(t.names);
  ck_assert_has(err, file);
  return err;
}

static const char *series_bad(const char *group) {
  DataTable t;
  double t0, rate;
  err[0] = '\0';
  ck_assert_int_eq(data_read_nwb_series(path, group, &t, &t0, &rate, err, sizeof err), -1);
  ck_assert_ptr_null(t.values);
  ck_assert_has(err, path);
  return err;
}

static double column_sum(const DataTable *t, int col) {
  double sum = 0;
  for (int i = 0; i < t->rows; i++)
    sum += t->values[(size_t)i * (size_t)t->cols + (size_t)col];
  return sum;
}

START_TEST(real_units_default_range) {
  if (!shared_file(REAL_NWB))
    return;
  DataTable t;
  ck_assert_msg(data_read_nwb_units(REAL_NWB, 1.0, 0, 0, &t, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(t.cols, 3);
  ck_assert_int_ge(t.rows, 1080);   /* ~1087 s in 1 s bins */
  ck_assert_int_le(t.rows, 1095);
  static const char *const ids[] = {"unit6", "unit191", "unit206"};
  double total = 0;
  for (int c = 0; c < t.cols; c++) {
    ck_assert_str_eq(t.names[c], ids[c]);
    total += column_sum(&t, c);
  }
  ck_assert_double_eq(total, 21354);
  /* A 4-10 Hz recording has some spikes in its last bin. */
  const float *last = t.values + (size_t)(t.rows - 1) * 3;
  ck_assert_float_gt(last[0] + last[1] + last[2], 0);
  data_free(&t);
}
END_TEST

START_TEST(real_units_window_splits_counts) {
  if (!shared_file(REAL_NWB))
    return;
  DataTable whole, fine;
  ck_assert_int_eq(data_read_nwb_units(REAL_NWB, 10, 100, 200, &whole, err, sizeof err), 0);
  ck_assert_int_eq(data_read_nwb_units(REAL_NWB, 0.01, 100, 200, &fine, err, sizeof err), 0);
  ck_assert_int_eq(whole.rows, 10);
  ck_assert_int_eq(fine.rows, 10000);
  for (int c = 0; c < 3; c++) {
    ck_assert_double_eq(column_sum(&whole, c), column_sum(&fine, c));
    ck_assert_double_gt(column_sum(&whole, c), 0);
  }
  data_free(&whole);
  data_free(&fine);
}
END_TEST

START_TEST(units_binned_exactly) {
  write_good_units();
  DataTable t;
  ck_assert_msg(data_read_nwb_units(path, 0.1, 0, 0, &t, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(t.rows, 11);            /* the last spike, 1.0 s, is in bin 10 */
  ck_assert_int_eq(t.cols, 2);
  ck_assert_str_eq(t.names[0], "unit10");
  ck_assert_str_eq(t.names[1], "unit20");
  static const float want[11][2] = {{1, 0}, {2, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 1},
                                    {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 1}};
  for (int i = 0; i < 11; i++)
    for (int c = 0; c < 2; c++)
      ck_assert_float_eq(t.values[i * 2 + c], want[i][c]);
  data_free(&t);
}
END_TEST

START_TEST(units_window_and_default_names) {
  static const int ends[] = {3, 5};
  write_units(ends, 2, 0);
  DataTable t;
  ck_assert_int_eq(data_read_nwb_units(path, 0.25, 0.1, 1.1, &t, err, sizeof err), 0);
  ck_assert_int_eq(t.rows, 4);             /* 1.1 - 0.1 is 4 bins, not 4.0000000000000009 */
  ck_assert_str_eq(t.names[0], "unit0");
  ck_assert_str_eq(t.names[1], "unit1");
  ck_assert_float_eq(t.values[0], 2);      /* 0.15, 0.17; 0.05 is before the start */
  ck_assert_float_eq(t.values[3], 1);      /* 0.5 in [0.35, 0.6) */
  ck_assert_float_eq(t.values[7], 1);      /* 1.0 in [0.85, 1.1) */
  ck_assert_float_eq(column_sum(&t, 0), 2);
  data_free(&t);
}
END_TEST

START_TEST(units_bad_arguments) {
  write_good_units();
  ck_assert_has(units_bad(path, 0, 0, 0), "bin width > 0");
  ck_assert_has(units_bad(path, NAN, 0, 0), "bin width > 0");
  ck_assert_has(units_bad(path, 0.1, 2, 1), "end time to follow the start");
  ck_assert_has(units_bad(path, 0.1, 5, 0), "found the last at 1 s");
  ck_assert_has(units_bad(path, 1e-9, 0, 1000), "bins x units");
  ck_assert_has(units_bad(path, 1e-300, 0, 1e300), "bins x units");
  ck_assert_has(units_bad(path, 1e-300, 0, 0), "bins x units");
}
END_TEST

START_TEST(units_index_damaged) {
  static const int falling[] = {3, 2, 5}, past[] = {3, 9}, short_[] = {2, 4}, neg[] = {-1, 5};
  write_units(falling, 3, 1);
  ck_assert_has(units_bad(path, 1, 0, 0), "non-decreasing ends, found 2 after 3 at unit 1");
  write_units(past, 2, 1);
  ck_assert_has(units_bad(path, 1, 0, 0), "index past the end");
  write_units(short_, 2, 1);
  ck_assert_has(units_bad(path, 1, 0, 0), "last end to be the number of spike times (5)");
  write_units(neg, 2, 0);
  ck_assert_has(units_bad(path, 1, 0, 0), "non-decreasing ends, found -1 after 0 at unit 0");
}
END_TEST

START_TEST(units_missing_or_mistyped) {
  static const int ends[] = {3, 5};
  hid_t f = create_file(), g = make_group(f, "units");
  write_doubles(g, "spike_times", 5, spikes);
  H5Gclose(g);
  H5Fclose(f);
  ck_assert_has(units_bad(path, 1, 0, 0),
                "expected a dataset /units/spike_times_index, found none");

  f = create_file();
  g = make_group(f, "units");
  write_ints(g, "spike_times", 2, ends);
  write_ints(g, "spike_times_index", 2, ends);
  H5Gclose(g);
  H5Fclose(f);
  ck_assert_has(units_bad(path, 1, 0, 0),
                "expected /units/spike_times to hold floating-point numbers, found integers");

  f = create_file();
  g = make_group(f, "units");
  hsize_t dims[2] = {5, 1};
  write_dataset(g, "spike_times", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dims, spikes);
  write_ints(g, "spike_times_index", 2, ends);
  H5Gclose(g);
  H5Fclose(f);
  ck_assert_has(units_bad(path, 1, 0, 0), "at most 1 dimension, found 2");

  f = create_file();
  H5Gclose(make_group(f, "units/spike_times"));
  H5Fclose(f);
  ck_assert_has(units_bad(path, 1, 0, 0), "expected /units/spike_times to be a dataset");

  f = create_file();
  H5Fclose(f);
  ck_assert_has(units_bad(path, 1, 0, 0), "expected a dataset /units/spike_times, found none");
}
END_TEST

START_TEST(units_ids_must_match) {
  static const int ends[] = {3, 5};
  static const int ids[] = {1, 2, 3};
  hid_t f = create_file(), g = make_group(f, "units");
  write_doubles(g, "spike_times", 5, spikes);
  write_ints(g, "spike_times_index", 2, ends);
  write_ints(g, "id", 3, ids);
  H5Gclose(g);
  H5Fclose(f);
  ck_assert_has(units_bad(path, 1, 0, 0), "/units/id: expected one id per unit (2), found 3");
}
END_TEST

START_TEST(series_with_rate) {
  write_lfp_with_rate(2.5, 100);
  DataTable t;
  double t0 = 0, rate = 0;
  ck_assert_msg(data_read_nwb_series(path, "/acquisition/lfp", &t, &t0, &rate, err,
                                     sizeof err) == 0, "%s", err);
  ck_assert_int_eq(t.rows, 3);
  ck_assert_int_eq(t.cols, 2);
  ck_assert_double_eq(t0, 2.5);
  ck_assert_double_eq(rate, 100);
  static const float want[6] = {2, -1, 4, 5, 1, 6};   /* data * 0.5 + 1 */
  for (int i = 0; i < 6; i++)
    ck_assert_float_eq(t.values[i], want[i]);
  ck_assert_str_eq(t.names[1], "ch1");
  data_free(&t);
}
END_TEST

START_TEST(series_with_timestamps) {
  static const double ts[3] = {10.0, 10.004, 10.008};
  write_lfp_with_timestamps(ts, 3);
  DataTable t;
  double t0 = 0, rate = 0;
  ck_assert_msg(data_read_nwb_series(path, "acquisition/lfp", &t, &t0, &rate, err,
                                     sizeof err) == 0, "%s", err);
  ck_assert_double_eq(t0, 10.0);
  ck_assert_double_eq_tol(rate, 250, 1e-6);
  data_free(&t);
}
END_TEST

START_TEST(series_timing_rejected) {
  static const double jitter[3] = {0, 1, 1.5}, falling[3] = {0, 2, 1}, two[2] = {0, 1};
  write_lfp_with_timestamps(jitter, 3);
  ck_assert_has(series_bad("/acquisition/lfp"), "timestamps to be uniform");
  write_lfp_with_timestamps(falling, 3);
  ck_assert_has(series_bad("/acquisition/lfp"), "to rise strictly, found 2 then 1");
  write_lfp_with_timestamps(two, 2);
  ck_assert_has(series_bad("/acquisition/lfp"), "one time per sample (3), found 2");
  write_lfp_with_rate(0, -5);
  ck_assert_has(series_bad("/acquisition/lfp"), "rate > 0 Hz, found -5");
  hid_t f = write_lfp_data();
  H5Fclose(f);
  ck_assert_has(series_bad("/acquisition/lfp"), "starting_time (with a rate) or "
                "/acquisition/lfp/timestamps, found neither");
}
END_TEST

START_TEST(series_wrong_names) {
  write_lfp_with_rate(0, 100);
  ck_assert_has(series_bad("/acquisition/eeg"), "expected a group /acquisition/eeg, found none");
  ck_assert_has(series_bad("/acquisition/lfp/data"), "to be a group");
  ck_assert_has(series_bad(""), "expected the path of a TimeSeries group");
  hid_t f = create_file(), g = make_group(f, "acquisition/lfp");
  static const double data[2][2][2] = {{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}};
  hsize_t dims[3] = {2, 2, 2};
  write_dataset(g, "data", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3, dims, data);
  H5Gclose(g);
  H5Fclose(f);
  ck_assert_has(series_bad("/acquisition/lfp"), "at most 2 dimensions, found 3");
}
END_TEST

/* ---- damaged copies of the real file --------------------------------------- */

/* RejectCheck: binning the units of the file is refused. */
static void reject_units(const char *file) { units_bad(file, 1, 0, 0); }

START_TEST(real_truncated) {
  if (!shared_file(REAL_NWB))
    return;
  size_t len;
  unsigned char *bytes = slurp(REAL_NWB, &len);
  size_t cuts[] = {0, 7, 100, 2048, len / 2, len - 1000, len - 1};
  assert_cuts_rejected(path, bytes, len, cuts, sizeof cuts / sizeof *cuts, reject_units);
  free(bytes);
}
END_TEST

START_TEST(real_header_flipped) {
  if (!shared_file(REAL_NWB))
    return;
  size_t len;
  unsigned char *bytes = slurp(REAL_NWB, &len);
  /* The signature, versions, sizes, base and end addresses, root group header. */
  size_t spots[] = {0, 3, 8, 13, 26, 41, 64, 72};
  assert_flips_rejected(path, bytes, len, spots, sizeof spots / sizeof *spots, reject_units);
  free(bytes);
}
END_TEST

START_TEST(not_hdf5) {
  FILE *f = fopen(path, "w");
  fputs("time,spikes\n1,2\n", f);
  fclose(f);
  ck_assert_has(units_bad(path, 1, 0, 0), "expected an NWB (HDF5) file");
  snprintf(path, sizeof path, "%s/absent.nwb", tmpdir);
  ck_assert_has(units_bad(path, 1, 0, 0), "cannot open");
}
END_TEST

int main(void) {
  Suite *s = suite_create("data_nwb");
  TCase *tc = tcase_create("nwb");
  tcase_add_checked_fixture(tc, make_tmpdir, tmpdir_remove);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, real_units_default_range);
  tcase_add_test(tc, real_units_window_splits_counts);
  tcase_add_test(tc, units_binned_exactly);
  tcase_add_test(tc, units_window_and_default_names);
  tcase_add_test(tc, units_bad_arguments);
  tcase_add_test(tc, units_index_damaged);
  tcase_add_test(tc, units_missing_or_mistyped);
  tcase_add_test(tc, units_ids_must_match);
  tcase_add_test(tc, series_with_rate);
  tcase_add_test(tc, series_with_timestamps);
  tcase_add_test(tc, series_timing_rejected);
  tcase_add_test(tc, series_wrong_names);
  tcase_add_test(tc, real_truncated);
  tcase_add_test(tc, real_header_flipped);
  tcase_add_test(tc, not_hdf5);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
