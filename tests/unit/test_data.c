/*
 * test_data.c — the CSV and NPY readers on good files and on each kind of
 * bad one; error messages must name the file, the place, expected and found.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "lobe_model.h"
#include "test_data_util.h"
#include "test_util.h"

static char err[512];

/* The scratch folder, made afresh for each test. */
static void make_tmpdir(void) { tmpdir_make("data"); }

/* Writes text to tmpdir/name; returns the path (see tmp_path). */
static const char *write_text(const char *name, const char *text) {
  return write_bytes(name, text, strlen(text));
}

/* Loads a file that must fail and returns the message. */
static const char *load_bad(int kind, const char *path) {
  DataTable t;
  err[0] = '\0';
  ck_assert_int_eq(data_load(kind, path, &t, err, sizeof err), -1);
  ck_assert_ptr_null(t.values);
  ck_assert_ptr_null(t.names);
  return err;
}

typedef int (*Reader)(int kind, const char *path, DataTable *out, char *err, size_t errlen);

/* Reads a good file with data_load or data_probe; checks it is rows x cols. */
static DataTable read_good(Reader read, int kind, const char *path, int rows, int cols) {
  DataTable t;
  ck_assert_msg(read(kind, path, &t, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(t.rows, rows);
  ck_assert_int_eq(t.cols, cols);
  return t;
}

/* ---- CSV ---------------------------------------------------------------- */

START_TEST(csv_good) {
  const char *path = write_text("good.csv",
      "\xef\xbb\xbf" "a, \"b, \"\"c\"\"\" ,ch2\r\n1,2,3\r\n4.5, -6e2 ,7\r\n\n  \n");
  DataTable t = read_good(data_load, LOBE_SRC_CSV, path, 2, 3);
  ck_assert_str_eq(t.names[0], "a");
  ck_assert_str_eq(t.names[1], "b, \"c\"");
  ck_assert_str_eq(t.names[2], "ch2");
  const float want[] = {1, 2, 3, 4.5f, -600, 7};
  for (int i = 0; i < 6; i++)
    ck_assert_float_eq(t.values[i], want[i]);
  data_free(&t);
  ck_assert_ptr_null(t.values);
}
END_TEST

START_TEST(csv_no_trailing_newline) {
  const char *path = write_text("last.csv", "x\n1\n2");
  DataTable t = read_good(data_load, LOBE_SRC_CSV, path, 2, 1);
  ck_assert_float_eq(t.values[1], 2);
  data_free(&t);
}
END_TEST

START_TEST(csv_probe) {
  const char *path = write_text("probe.csv", "x,y\n1,2\n3,4\n\n5,6\n");
  DataTable t = read_good(data_probe, LOBE_SRC_CSV, path, 3, 2);
  ck_assert_ptr_null(t.values);
  ck_assert_str_eq(t.names[1], "y");
  data_free(&t);
}
END_TEST

START_TEST(csv_not_a_number) {
  const char *path = write_text("v1.csv", "ch0,ch1,ch2\n1,2,3\n4,5,abc\n");
  const char *msg = load_bad(LOBE_SRC_CSV, path);
  ck_assert_has(msg, "v1.csv:3: field 3 (\"ch2\"): expected a number, found \"abc\"");
}
END_TEST

START_TEST(csv_empty_cell) {
  const char *path = write_text("v1.csv", "a,b\n1,\n");
  ck_assert_has(load_bad(LOBE_SRC_CSV, path),
                "v1.csv:2: field 2 (\"b\"): expected a number, found an empty cell");
}
END_TEST

START_TEST(csv_ragged) {
  const char *path = write_text("v1.csv", "a,b\n1,2\n1,2,3\n");
  ck_assert_has(load_bad(LOBE_SRC_CSV, path), "v1.csv:3: expected 2 fields");
  ck_assert_has(err, "found 3");
}
END_TEST

START_TEST(csv_nan_inf_range) {
  const char *bad[] = {"nan", "inf", "-Infinity", "1e39"};
  for (int i = 0; i < 4; i++) {
    char text[64];
    snprintf(text, sizeof text, "a\n1\n%s\n", bad[i]);
    const char *msg = load_bad(LOBE_SRC_CSV, write_text("v.csv", text));
    ck_assert_has(msg, "v.csv:3: field 1 (\"a\"): expected a finite number");
    ck_assert_has(msg, bad[i]);
  }
}
END_TEST

START_TEST(csv_no_rows) {
  ck_assert_has(load_bad(LOBE_SRC_CSV, write_text("h.csv", "a,b\n\n")),
                "h.csv: expected at least one data row after the header, found none");
  ck_assert_has(load_bad(LOBE_SRC_CSV, write_text("e.csv", "")),
                "e.csv: expected a header line of channel names, found an empty file");
}
END_TEST

START_TEST(csv_blank_line_inside) {
  ck_assert_has(load_bad(LOBE_SRC_CSV, write_text("b.csv", "a\n1\n\n2\n")),
                "b.csv:3: expected 1 fields, found an empty line");
}
END_TEST

START_TEST(csv_long_line) {
  size_t n = (5u << 20) + 10;
  char *text = malloc(n);
  memcpy(text, "a\n", 2);
  memset(text + 2, '1', n - 3);
  text[n - 1] = '\n';
  const char *path = write_bytes("long.csv", text, n);
  free(text);
  ck_assert_has(load_bad(LOBE_SRC_CSV, path), "long.csv:2: expected a line of at most");
}
END_TEST

START_TEST(csv_binary_and_header_errors) {
  ck_assert_has(load_bad(LOBE_SRC_CSV, write_bytes("nul.csv", "a\n1\0\n", 5)),
                "nul.csv:2: expected text, found a NUL byte");
  ck_assert_has(load_bad(LOBE_SRC_CSV, write_text("dup.csv", "a,b,a\n1,2,3\n")),
                "dup.csv:1: expected distinct channel names, found \"a\" twice");
  ck_assert_has(load_bad(LOBE_SRC_CSV, write_text("q.csv", "\"a,b\n1\n")),
                "q.csv:1: field 1: expected a closing '\"'");
  ck_assert_has(load_bad(LOBE_SRC_CSV, write_text("h.csv", "a,,b\n1,2,3\n")),
                "h.csv:1: field 2: expected a channel name, found an empty field");
  ck_assert_has(load_bad(LOBE_SRC_CSV, "/nonexistent/x.csv"), "/nonexistent/x.csv: cannot open");
}
END_TEST

/* ---- NPY ---------------------------------------------------------------- */

/* A .npy file with the given version and header dict, padded as NumPy does,
 * followed by nbytes of data. */
static const char *write_npy(const char *name, int major, const char *dict,
                             const void *data, size_t nbytes) {
  size_t pre = major == 1 ? 10 : 12, dlen = strlen(dict);
  size_t hlen = ((pre + dlen + 1 + 63) / 64) * 64 - pre;
  unsigned char *buf = calloc(1, pre + hlen + nbytes);
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (unsigned char)major;
  buf[7] = 0;
  if (major == 1) {
    buf[8] = hlen & 0xff;
    buf[9] = (unsigned char)(hlen >> 8);
  } else
    for (int i = 0; i < 4; i++)
      buf[8 + i] = (unsigned char)(hlen >> (8 * i));
  memset(buf + pre, ' ', hlen);
  memcpy(buf + pre, dict, dlen);
  buf[pre + hlen - 1] = '\n';
  memcpy(buf + pre + hlen, data, nbytes);
  const char *path = write_bytes(name, buf, pre + hlen + nbytes);
  free(buf);
  return path;
}

START_TEST(npy_f32_2d) {
  const float v[6] = {1, 2, 3, 4, 5, 6};
  const char *path = write_npy("a.npy", 1,
      "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", v, sizeof v);
  DataTable t = read_good(data_load, LOBE_SRC_NPY, path, 3, 2);
  ck_assert_str_eq(t.names[0], "ch0");
  ck_assert_str_eq(t.names[1], "ch1");
  for (int i = 0; i < 6; i++)
    ck_assert_float_eq(t.values[i], v[i]);
  data_free(&t);
}
END_TEST

START_TEST(npy_f64_fortran_v2) {
  /* column-major 2 x 3: columns (1,4) (2,5) (3,6) */
  const double v[6] = {1, 4, 2, 5, 3, 6};
  const char *path = write_npy("f.npy", 2,
      "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", v, sizeof v);
  DataTable t = read_good(data_load, LOBE_SRC_NPY, path, 2, 3);
  for (int i = 0; i < 6; i++)
    ck_assert_float_eq(t.values[i], (float)(i + 1));
  data_free(&t);
}
END_TEST

START_TEST(npy_1d_v3_and_probe) {
  const double v[4] = {0.5, -1, 2, 1e10};
  const char *path = write_npy("one.npy", 3,
      "{\"descr\":\"<f8\",\"fortran_order\":False,\"shape\":(4,)}", v, sizeof v);
  DataTable t = read_good(data_load, LOBE_SRC_NPY, path, 4, 1);
  ck_assert_float_eq(t.values[3], 1e10f);
  data_free(&t);
  t = read_good(data_probe, LOBE_SRC_NPY, path, 4, 1);
  ck_assert_ptr_null(t.values);
  ck_assert_str_eq(t.names[0], "ch0");
  data_free(&t);
}
END_TEST

static const char *npy_error(const char *dict, const void *data, size_t n) {
  return load_bad(LOBE_SRC_NPY, write_npy("bad.npy", 1, dict, data, n));
}

/* The same, for a C-order header of the given dtype and shape. */
static const char *npy_error_of(const char *descr, const char *shape, const void *data,
                                size_t n) {
  char dict[128];
  snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr,
           shape);
  return npy_error(dict, data, n);
}

START_TEST(npy_bad_dtype_and_shape) {
  const double v[8] = {0};
  ck_assert_has(npy_error_of(">f8", "(2,)", v, 16),
                "bad.npy: expected little-endian float32 or float64 ('<f4' or '<f8'), found '>f8'");
  ck_assert_has(npy_error_of("<i4", "(2,)", v, 8),
                "bad.npy: expected float32 or float64 data ('<f4' or '<f8'), found '<i4'");
  ck_assert_has(npy_error_of("<f8", "(2, 2, 2)", v, 64),
                "expected a 1-D or 2-D array (samples x channels), found 3-D shape (2, 2, 2)");
  ck_assert_has(npy_error_of("<f8", "(0, 2)", v, 0),
                "expected at least one sample and one channel, found shape (0, 2)");
  ck_assert_has(npy_error("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }",
                          v, 8), "found a structured dtype");
}
END_TEST

START_TEST(npy_truncated_and_trailing) {
  const float v[4] = {1, 2, 3, 4};
  ck_assert_has(npy_error_of("<f4", "(2, 2)", v, 12),
                "bad.npy: truncated: expected 16 bytes of data for 2 x 2 values, found 12");
  ck_assert_has(npy_error_of("<f4", "(3,)", v, 16),
                "expected 12 bytes of data for 3 x 1 values, found 16 (trailing bytes)");
}
END_TEST

START_TEST(npy_corrupt_header) {
  const float v[2] = {1, 2};
  ck_assert_has(npy_error("{'descr': '<f4', 'fortran_order': False}", v, 8),
                "found only some of them");
  ck_assert_has(npy_error("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}", v, 8),
                "corrupt header: expected True or False, found \"Maybe");
  ck_assert_has(npy_error("{'descr': '<f4', 'fortran_order': False, 'shape': (2,) garbage", v, 8),
                "corrupt header: expected ',' or '}' in the header dict, found \"garbage");
  ck_assert_has(npy_error("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,)}",
                          v, 8), "expected a dimension below 2^31");
  ck_assert_has(load_bad(LOBE_SRC_NPY, write_text("t.npy", "\x93NUMPY")),
                "t.npy: expected a .npy file");
  ck_assert_has(load_bad(LOBE_SRC_NPY, write_text("c.npy", "a,b\n1,2\n")),
                "c.npy: expected a .npy file");
  ck_assert_has(load_bad(LOBE_SRC_NPY, write_bytes("v.npy", "\x93NUMPY\x07\x00\x10\x00", 10)),
                "v.npy: expected .npy format version 1, 2 or 3, found 7.0");
  ck_assert_has(load_bad(LOBE_SRC_NPY, write_bytes("s.npy", "\x93NUMPY\x01\x00\x40\x00{", 11)),
                "s.npy: truncated: expected a header of 64 bytes");
}
END_TEST

START_TEST(npy_non_finite) {
  const float v[4] = {1, 2, NAN, 4};
  ck_assert_has(npy_error_of("<f4", "(2, 2)", v, 16),
                "bad.npy: row 1, channel 0: expected a finite number, found nan");
  const double big[1] = {1e300};
  ck_assert_has(npy_error_of("<f8", "(1,)", big, 8),
                "row 0, channel 0: expected a number within float32 range, found 1e+300");
}
END_TEST

START_TEST(unknown_kind) {
  ck_assert_has(load_bad(7, "x.dat"), "x.dat: unknown data kind 7");
}
END_TEST

static Suite *data_suite(void) {
  Suite *s = suite_create("data");
  TCase *tc = tcase_create("readers");
  tcase_add_checked_fixture(tc, make_tmpdir, tmpdir_remove);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, csv_good);
  tcase_add_test(tc, csv_no_trailing_newline);
  tcase_add_test(tc, csv_probe);
  tcase_add_test(tc, csv_not_a_number);
  tcase_add_test(tc, csv_empty_cell);
  tcase_add_test(tc, csv_ragged);
  tcase_add_test(tc, csv_nan_inf_range);
  tcase_add_test(tc, csv_no_rows);
  tcase_add_test(tc, csv_blank_line_inside);
  tcase_add_test(tc, csv_long_line);
  tcase_add_test(tc, csv_binary_and_header_errors);
  tcase_add_test(tc, npy_f32_2d);
  tcase_add_test(tc, npy_f64_fortran_v2);
  tcase_add_test(tc, npy_1d_v3_and_probe);
  tcase_add_test(tc, npy_bad_dtype_and_shape);
  tcase_add_test(tc, npy_truncated_and_trailing);
  tcase_add_test(tc, npy_corrupt_header);
  tcase_add_test(tc, npy_non_finite);
  tcase_add_test(tc, unknown_kind);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(data_suite());
}
