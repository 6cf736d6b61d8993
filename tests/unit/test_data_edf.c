/*
 * test_data_edf.c — the EDF reader (edf.c) on files written here with
 * EDFlib, on the real EEG recording in ../shared/data (skipped when that
 * folder is absent) and on corrupted copies of it, each of which must be
 * refused with a message naming the file.
 */
#include <check.h>
#include <edflib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "test_data_util.h"
#include "test_util.h"

#define EEG_FILE SHARED_DATA "eegmat/Subject00_2.edf"

static char err[2048];

static DataEdf read_good(const char *path, const char *const *labels, int n) {
  DataEdf e;
  ck_assert_msg(data_read_edf(path, labels, n, 0, &e, err, sizeof err) == 0, "%s", err);
  return e;
}

/* Reads a file that must fail; checks the message names it. */
static const char *read_bad(const char *path, const char *const *labels, int n) {
  DataEdf e;
  err[0] = '\0';
  ck_assert_int_eq(data_read_edf(path, labels, n, 0, &e, err, sizeof err), -1);
  ck_assert_ptr_null(e.table.values);
  ck_assert_ptr_null(e.table.names);
  ck_assert_ptr_null(e.units);
  ck_assert_has(err, path);
  return err;
}

/* RejectCheck: the file, read with all its signals, is refused. */
static void reject_all_signals(const char *path) { read_bad(path, NULL, 0); }

/* ---- files written with EDFlib ------------------------------------------ */

/* Signals "EEG A" and "EEG B" at 100 Hz (A = i, B = -i/2 in uV) and
 * "Resp" at 50 Hz (mV), over 3 one-second records. */
static const char *write_edf(const char *name, int filetype) {
  const char *path = tmp_path(name);
  int h = edfopen_file_writeonly(path, filetype, 3);
  ck_assert_int_ge(h, 0);
  const char *labels[] = {"EEG A", "EEG B", "Resp"}, *units[] = {"uV", "uV", "mV"};
  int rates[] = {100, 100, 50};
  for (int s = 0; s < 3; s++) {
    ck_assert_int_eq(edf_set_samplefrequency(h, s, rates[s]), 0);
    ck_assert_int_eq(edf_set_physical_maximum(h, s, 1000), 0);
    ck_assert_int_eq(edf_set_physical_minimum(h, s, -1000), 0);
    ck_assert_int_eq(edf_set_digital_maximum(h, s, 20000), 0);
    ck_assert_int_eq(edf_set_digital_minimum(h, s, -20000), 0);
    ck_assert_int_eq(edf_set_label(h, s, labels[s]), 0);
    ck_assert_int_eq(edf_set_physical_dimension(h, s, units[s]), 0);
  }
  double buf[100];
  for (int rec = 0; rec < 3; rec++)
    for (int s = 0; s < 3; s++) {
      for (int i = 0; i < rates[s]; i++)
        buf[i] = s == 0 ? rec * 100 + i : s == 1 ? -(rec * 100 + i) / 2.0 : 7;
      ck_assert_int_eq(edfwrite_physical_samples(h, buf), 0);
    }
  ck_assert_int_eq(edfclose_file(h), 0);
  return path;
}

static void check_written(int filetype) {
  tmpdir_make("edf");
  const char *path = write_edf("w.edf", filetype);
  DataEdf e = read_good(path, NULL, 0);
  ck_assert_int_eq(e.table.rows, 300);
  ck_assert_int_eq(e.table.cols, 2);
  ck_assert_double_eq_tol(e.rate, 100, 1e-9);
  ck_assert_str_eq(e.table.names[1], "EEG B");
  ck_assert_str_eq(e.units[0], "uV");
  for (int row = 0; row < 300; row += 37) {
    ck_assert_float_eq_tol(e.table.values[row * 2], row, 0.06);
    ck_assert_float_eq_tol(e.table.values[row * 2 + 1], -row / 2.0, 0.06);
  }
  data_edf_free(&e);
  tmpdir_remove();
}

START_TEST(edf_written) { check_written(EDFLIB_FILETYPE_EDFPLUS); }
END_TEST

START_TEST(bdf_written) { check_written(EDFLIB_FILETYPE_BDFPLUS); }
END_TEST

START_TEST(edf_select_order_and_case) {
  tmpdir_make("edf");
  const char *path = write_edf("w.edf", EDFLIB_FILETYPE_BDFPLUS);
  const char *labels[] = {"b", "EEG A"};
  DataEdf e = read_good(path, labels, 2);
  ck_assert_int_eq(e.table.cols, 2);
  ck_assert_str_eq(e.table.names[0], "EEG B");
  ck_assert_str_eq(e.table.names[1], "EEG A");
  ck_assert_float_eq_tol(e.table.values[2 * 10], -5, 0.06);
  data_edf_free(&e);

  const char *resp[] = {"Resp"};
  e = read_good(path, resp, 1);
  ck_assert_int_eq(e.table.rows, 150);
  ck_assert_double_eq_tol(e.rate, 50, 1e-9);
  ck_assert_str_eq(e.units[0], "mV");
  ck_assert_float_eq_tol(e.table.values[149], 7, 0.06);
  data_edf_free(&e);
  tmpdir_remove();
}
END_TEST

START_TEST(edf_mixed_rates_refused) {
  tmpdir_make("edf");
  const char *path = write_edf("w.edf", EDFLIB_FILETYPE_EDFPLUS);
  const char *labels[] = {"A", "Resp"};
  const char *msg = read_bad(path, labels, 2);
  ck_assert_has(msg, "one sampling rate");
  ck_assert_has(msg, "EEG A\" at 100 Hz");
  ck_assert_has(msg, "Resp\" at 50 Hz");
  tmpdir_remove();
}
END_TEST

START_TEST(edf_bad_selections) {
  tmpdir_make("edf");
  const char *path = write_edf("w.edf", EDFLIB_FILETYPE_EDFPLUS);
  const char *twice[] = {"A", "EEG A"};
  ck_assert_has(read_bad(path, twice, 2), "selected twice");
  const char *none[] = {NULL};
  ck_assert_has(read_bad(path, none, 1), "expected a signal label");
  const char *annot[] = {"EDF Annotations"};
  const char *msg = read_bad(path, annot, 1);
  ck_assert_has(msg, "\"EDF Annotations\", found none");
  ck_assert_has(msg, "EEG A, EEG B, Resp");
  tmpdir_remove();
}
END_TEST

START_TEST(edf_not_a_file) {
  tmpdir_make("edf");
  ck_assert_has(read_bad(tmp_path("absent.edf"), NULL, 0), "cannot open");
  ck_assert_has(read_bad(tmpdir, NULL, 0), "regular file");
  ck_assert_has(read_bad(write_bytes("e.edf", "", 0), NULL, 0), "truncated");
  const char *text = "time,value\n0,1\n";
  ck_assert_has(read_bad(write_bytes("t.edf", text, strlen(text)), NULL, 0), "truncated");
  tmpdir_remove();
}
END_TEST

/* ---- the real recording ------------------------------------------------- */

/* Field `field` (bytes wide, at `at` after the 256-byte fixed header) of
 * signal sig, as a number: read independently of EDFlib. */
static double header_number(const unsigned char *b, int nsig, int at, int width, int sig) {
  char text[16] = {0};
  memcpy(text, b + 256 + at * nsig + width * sig, (size_t)width);
  return atof(text);
}

/* Physical value of sample 0 of signal sig, from the raw bytes. */
static double raw_first_sample(const unsigned char *b, int sig) {
  int nsig = atoi((const char *)b + 252);
  double pmin = header_number(b, nsig, 104, 8, sig), pmax = header_number(b, nsig, 112, 8, sig);
  double dmin = header_number(b, nsig, 120, 8, sig), dmax = header_number(b, nsig, 128, 8, sig);
  size_t at = 256 * (size_t)(nsig + 1);
  for (int s = 0; s < sig; s++)
    at += 2 * (size_t)header_number(b, nsig, 216, 8, s);
  int16_t dig = (int16_t)(b[at] | b[at + 1] << 8);
  return (dig - dmin) * (pmax - pmin) / (dmax - dmin) + pmin;
}

START_TEST(eeg_default) {
  const char *path = shared_file(EEG_FILE);
  if (!path)
    return;
  DataEdf e = read_good(path, NULL, 0);
  ck_assert_int_eq(e.table.rows, 62 * 500);
  ck_assert_int_eq(e.table.cols, 21);      /* 19 EEG, A2-A1 and ECG: all at 500 Hz */
  ck_assert_double_eq_tol(e.rate, 500, 1e-9);
  ck_assert_str_eq(e.table.names[0], "EEG Fp1");
  ck_assert_str_eq(e.table.names[20], "ECG ECG");
  ck_assert_str_eq(e.units[0], "uV");
  ck_assert_str_eq(e.units[20], "mV");
  size_t len;
  unsigned char *bytes = slurp(path, &len);
  for (int sig = 0; sig < 21; sig += 5)
    ck_assert_double_eq_tol(e.table.values[sig], raw_first_sample(bytes, sig), 1e-3);
  free(bytes);
  data_edf_free(&e);
}
END_TEST

START_TEST(eeg_select) {
  const char *path = shared_file(EEG_FILE);
  if (!path)
    return;
  const char *labels[] = {"O2", "O1"};
  DataEdf e = read_good(path, labels, 2);
  ck_assert_int_eq(e.table.rows, 31000);
  ck_assert_str_eq(e.table.names[0], "EEG O2");
  ck_assert_str_eq(e.table.names[1], "EEG O1");
  DataEdf all = read_good(path, NULL, 0);
  for (int row = 0; row < 31000; row += 997) {
    ck_assert_float_eq(e.table.values[row * 2], all.table.values[row * 21 + 15]);
    ck_assert_float_eq(e.table.values[row * 2 + 1], all.table.values[row * 21 + 14]);
  }
  data_edf_free(&all);
  data_edf_free(&e);

  DataEdf probe;
  ck_assert_msg(data_read_edf(path, labels, 2, 1, &probe, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(probe.table.rows, 31000);
  ck_assert_ptr_null(probe.table.values);
  data_edf_free(&probe);
}
END_TEST

START_TEST(eeg_missing_label) {
  const char *path = shared_file(EEG_FILE);
  if (!path)
    return;
  const char *labels[] = {"O1", "O2", "Oz"};
  const char *msg = read_bad(path, labels, 3);
  ck_assert_has(msg, "\"Oz\"");
  ck_assert_has(msg, "EEG Fp1, EEG Fp2, EEG F3");
  ck_assert_has(msg, "EEG O1, EEG O2, EEG Fz");
}
END_TEST

START_TEST(eeg_truncated) {
  const char *path = shared_file(EEG_FILE);
  if (!path)
    return;
  tmpdir_make("edf");
  size_t len;
  unsigned char *bytes = slurp(path, &len);
  size_t cuts[] = {1, 200, 256, 3000, 256 * 23, 256 * 23 + 1, len / 2, len - 1};
  assert_cuts_rejected(tmp_path("cut.edf"), bytes, len, cuts, sizeof cuts / sizeof *cuts,
                       reject_all_signals);
  free(bytes);
  tmpdir_remove();
}
END_TEST

/* Each header field replaced by junk: the copy must be refused. */
START_TEST(eeg_corrupt_header) {
  const char *path = shared_file(EEG_FILE);
  if (!path)
    return;
  tmpdir_make("edf");
  size_t len;
  unsigned char *bytes = slurp(path, &len);
  Patch patches[] = {
    {0, 1, "X"},                /* version "0       " */
    {184, 1, "x"},              /* header size */
    {236, 2, "-5"},             /* number of data records */
    {244, 1, "q"},              /* record duration */
    {252, 2, "99"},             /* number of signals */
    {256 + 22 * 104, 1, "?"},   /* physical minimum of the first signal */
    {256 + 22 * 120, 3, "abc"}, /* digital minimum of the first signal */
    {256 + 22 * 216, 1, "9"},   /* samples per record of the first signal */
  };
  assert_patches_rejected(tmp_path("flip.edf"), bytes, len, patches,
                          sizeof patches / sizeof *patches, reject_all_signals);
  free(bytes);
  tmpdir_remove();
}
END_TEST

static Suite *edf_suite(void) {
  Suite *s = suite_create("data_edf");
  TCase *tc = tcase_create("edf");
  tcase_add_test(tc, edf_written);
  tcase_add_test(tc, bdf_written);
  tcase_add_test(tc, edf_select_order_and_case);
  tcase_add_test(tc, edf_mixed_rates_refused);
  tcase_add_test(tc, edf_bad_selections);
  tcase_add_test(tc, edf_not_a_file);
  tcase_add_test(tc, eeg_default);
  tcase_add_test(tc, eeg_select);
  tcase_add_test(tc, eeg_missing_label);
  tcase_add_test(tc, eeg_truncated);
  tcase_add_test(tc, eeg_corrupt_header);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(edf_suite()); }
