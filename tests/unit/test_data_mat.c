/*
 * test_data_mat.c — the MATLAB reader (mat.c) on v5 and v7.3 files written
 * here with matio, on the HCP recordings in ../shared/data (skipped when that
 * folder is absent) and on damaged copies, each refused with a message
 * naming the file.
 */
#include <check.h>
#include <math.h>
#include <matio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "test_data_util.h"
#include "test_util.h"

#define HCP_DIR SHARED_DATA "hcp/101309/"

static char err[2048];

static DataTable read_good(const char *path, const char *var, int orientation,
                           int rows, int cols) {
  DataTable t;
  ck_assert_msg(data_read_mat(path, var, orientation, 0, &t, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(t.rows, rows);
  ck_assert_int_eq(t.cols, cols);
  return t;
}

/* Reads a variable that must fail; checks the message names the file. */
static const char *read_bad(const char *path, const char *var) {
  DataTable t;
  err[0] = '\0';
  ck_assert_int_eq(data_read_mat(path, var, DATA_MAT_AS_STORED, 0, &t, err, sizeof err), -1);
  ck_assert_ptr_null(t.values);
  ck_assert_ptr_null(t.names);
  ck_assert_has(err, path);
  return err;
}

/* RejectChecks: reading variable m, or sc, is refused. */
static void reject_m(const char *path) { read_bad(path, "m"); }

static void reject_sc(const char *path) { read_bad(path, "sc"); }

/* ---- files written with matio ------------------------------------------- */

static void put(mat_t *mat, const char *name, enum matio_classes c, enum matio_types type,
                int rank, size_t *dims, void *data, int opt) {
  matvar_t *v = Mat_VarCreate(name, c, type, rank, dims, data, opt);
  ck_assert_ptr_nonnull(v);
  ck_assert_int_eq(Mat_VarWrite(mat, v, MAT_COMPRESSION_ZLIB), 0);
  Mat_VarFree(v);
}

/* m (2 x 3, column-major: m(r,c) = 10 r + c), its int16 and single copies,
 * and one variable of each kind the reader refuses. */
static const char *write_mat(const char *name, enum mat_ft version) {
  const char *path = tmp_path(name);
  mat_t *mat = Mat_CreateVer(path, NULL, version);
  if (!mat)
    return NULL;
  size_t d23[] = {2, 3}, d222[] = {2, 2, 2}, d03[] = {0, 3}, d11[] = {1, 1};
  double m[] = {11, 21, 12, 22, 13, 23}, re[] = {1, 2, 3, 4, 5, 6}, im[6] = {0};
  int16_t i16[] = {-11, 21, -12, 22, -13, 23};
  float f32[] = {0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f};
  double cube[8] = {0}, nan[] = {NAN};
  mat_complex_split_t z = {re, im};
  put(mat, "m", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d23, m, 0);
  put(mat, "i16", MAT_C_INT16, MAT_T_INT16, 2, d23, i16, 0);
  put(mat, "f32", MAT_C_SINGLE, MAT_T_SINGLE, 2, d23, f32, 0);
  put(mat, "z", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d23, &z, MAT_F_COMPLEX);
  put(mat, "cube", MAT_C_DOUBLE, MAT_T_DOUBLE, 3, d222, cube, 0);
  put(mat, "empty", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d03, NULL, 0);
  put(mat, "nan", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d11, nan, 0);
  put(mat, "text", MAT_C_CHAR, MAT_T_UINT8, 2, d23, "abcdef", 0);
  ck_assert_int_eq(Mat_Close(mat), 0);
  return path;
}

static void check_written(const char *path) {
  DataTable t = read_good(path, "m", DATA_MAT_AS_STORED, 2, 3);
  for (int r = 0; r < 2; r++)
    for (int c = 0; c < 3; c++)
      ck_assert_float_eq(t.values[r * 3 + c], 10 * (r + 1) + c + 1);
  ck_assert_str_eq(t.names[2], "ch2");
  data_free(&t);
  t = read_good(path, "m", DATA_MAT_TRANSPOSED, 3, 2);
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 2; c++)
      ck_assert_float_eq(t.values[r * 2 + c], 10 * (c + 1) + r + 1);
  data_free(&t);
  t = read_good(path, "i16", DATA_MAT_AS_STORED, 2, 3);
  ck_assert_float_eq(t.values[0], -11);
  ck_assert_float_eq(t.values[3], 21);
  data_free(&t);
  t = read_good(path, "f32", DATA_MAT_TRANSPOSED, 3, 2);
  ck_assert_float_eq(t.values[5], 5.5f);
  data_free(&t);
}

static void check_refusals(const char *path) {
  ck_assert_has(read_bad(path, "z"), "variable 'z': expected real numbers");
  ck_assert_has(read_bad(path, "cube"), "expected a 2-D matrix, found 3 dimensions");
  ck_assert_has(read_bad(path, "empty"), "expected a non-empty matrix, found 0 x 3");
  ck_assert_has(read_bad(path, "nan"), "element (1, 1): expected a finite");
  ck_assert_has(read_bad(path, "text"), "found a char array");
  const char *msg = read_bad(path, "tc");
  ck_assert_has(msg, "expected a variable 'tc', found none");
  ck_assert_has(msg, "'m'");
  ck_assert_has(msg, "'i16'");
  ck_assert_has(msg, "'text'");
}

START_TEST(mat5_written) {
  tmpdir_make("mat");
  const char *path = write_mat("w5.mat", MAT_FT_MAT5);
  ck_assert_ptr_nonnull(path);
  check_written(path);
  check_refusals(path);
  DataTable t;
  ck_assert_int_eq(data_read_mat(path, "m", DATA_MAT_TRANSPOSED, 1, &t, err, sizeof err), 0);
  ck_assert_int_eq(t.rows, 3);
  ck_assert_ptr_null(t.values);
  data_free(&t);
  tmpdir_remove();
}
END_TEST

START_TEST(mat73_written) {
  tmpdir_make("mat");
  const char *path = write_mat("w73.mat", MAT_FT_MAT73);
  if (!path) {
    printf("test_data_mat: this matio cannot write v7.3 files; skipping\n");
    tmpdir_remove();
    return;
  }
  check_written(path);
  check_refusals(path);
  size_t len;
  unsigned char *bytes = slurp(path, &len);
  size_t cuts[] = {0, 100, 600, len / 2, len - 1};
  assert_cuts_rejected(tmp_path("cut73.mat"), bytes, len, cuts, sizeof cuts / sizeof *cuts,
                       reject_m);
  free(bytes);
  tmpdir_remove();
}
END_TEST

static void write_special(const char *path) {
  mat_t *mat = Mat_CreateVer(path, NULL, MAT_FT_MAT5);
  ck_assert_ptr_nonnull(mat);
  size_t d22[] = {2, 2}, d11[] = {1, 1};
  mat_uint32_t ir[] = {0, 1}, jc[] = {0, 1, 2};
  double vals[] = {1, 2}, one = 1;
  mat_sparse_t sparse = {.nzmax = 2, .ir = ir, .nir = 2, .jc = jc, .njc = 3, .ndata = 2,
                         .data = vals};
  put(mat, "sp", MAT_C_SPARSE, MAT_T_DOUBLE, 2, d22, &sparse, 0);
  matvar_t *field = Mat_VarCreate("a", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d11, &one, 0);
  matvar_t *cell_items[] = {field, NULL};
  put(mat, "c", MAT_C_CELL, MAT_T_CELL, 2, d11, cell_items, 0);
  const char *fields[] = {"a"};
  matvar_t *st = Mat_VarCreateStruct("s", 2, d11, fields, 1);
  ck_assert_ptr_nonnull(st);
  Mat_VarSetStructFieldByName(st, "a", 0,
      Mat_VarCreate(NULL, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d11, &one, 0));
  ck_assert_int_eq(Mat_VarWrite(mat, st, MAT_COMPRESSION_NONE), 0);
  Mat_VarFree(st);
  ck_assert_int_eq(Mat_Close(mat), 0);
}

START_TEST(mat5_containers_refused) {
  tmpdir_make("mat");
  const char *path = tmp_path("special.mat");
  write_special(path);
  ck_assert_has(read_bad(path, "sp"), "found a sparse matrix");
  ck_assert_has(read_bad(path, "c"), "found a cell array");
  ck_assert_has(read_bad(path, "s"), "found a struct");
  tmpdir_remove();
}
END_TEST

/* An uncompressed matrix whose class byte says function handle: matio would
 * read sizes from memory it never set (the fuzzer's 32 GB request). */
START_TEST(mat5_function_handle_refused) {
  tmpdir_make("mat");
  const char *path = tmp_path("handle.mat");
  mat_t *mat = Mat_CreateVer(path, NULL, MAT_FT_MAT5);
  ck_assert_ptr_nonnull(mat);
  size_t d11[] = {1, 1};
  double one = 1;
  matvar_t *v = Mat_VarCreate("m", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d11, &one, 0);
  ck_assert_int_eq(Mat_VarWrite(mat, v, MAT_COMPRESSION_NONE), 0);
  Mat_VarFree(v);
  ck_assert_int_eq(Mat_Close(mat), 0);
  size_t len;
  unsigned char *bytes = slurp(path, &len);
  ck_assert_int_eq(bytes[128 + 16], MAT_C_DOUBLE);   /* the flags' class byte */
  bytes[128 + 16] = 16;
  write_bytes_at(path, bytes, len);
  free(bytes);
  ck_assert_has(read_bad(path, "m"), "the array at byte 128 is a function handle");
  tmpdir_remove();
}
END_TEST

START_TEST(mat_not_a_file) {
  tmpdir_make("mat");
  ck_assert_has(read_bad(tmp_path("absent.mat"), "x"), "cannot open");
  ck_assert_has(read_bad(tmpdir, "x"), "regular file");
  ck_assert_has(read_bad(write_bytes("e.mat", "", 0), "x"), "without variables");
  const char *text = "MATLAB? no: a,b\n1,2\n";
  ck_assert_has(read_bad(write_bytes("t.mat", text, strlen(text)), "x"),
                "expected a MATLAB .mat file");
  DataTable t;
  ck_assert_int_eq(data_read_mat("p.mat", "", 0, 0, &t, err, sizeof err), -1);
  ck_assert_has(err, "p.mat: expected the name of a variable");
  ck_assert_int_eq(data_read_mat("p.mat", "x", 7, 0, &t, err, sizeof err), -1);
  ck_assert_has(err, "p.mat: unknown orientation 7");
  tmpdir_remove();
}
END_TEST

/* ---- the HCP recordings ------------------------------------------------- */

START_TEST(hcp_time_course) {
  const char *path = shared_file(HCP_DIR "TC_rsfMRI_REST1_LR.mat");
  if (!path)
    return;
  DataTable stored = read_good(path, "tc", DATA_MAT_AS_STORED, 94, 1200);
  DataTable t = read_good(path, "tc", DATA_MAT_TRANSPOSED, 1200, 94);
  for (int frame = 0; frame < 1200; frame += 7)
    for (int region = 0; region < 94; region += 5)
      ck_assert_float_eq(t.values[frame * 94 + region], stored.values[region * 1200 + frame]);
  double sum = 0;
  for (int i = 0; i < 1200 * 94; i++)
    sum += fabs(t.values[i]);
  ck_assert(sum > 0);
  data_free(&stored);
  data_free(&t);
}
END_TEST

START_TEST(hcp_connectivity) {
  const char *path = shared_file(HCP_DIR "DTI_CM.mat");
  if (!path)
    return;
  DataTable sc = read_good(path, "sc", DATA_MAT_AS_STORED, 94, 94);
  int nonzero = 0;
  for (int i = 0; i < 94; i++)
    for (int j = 0; j < 94; j++) {
      ck_assert(sc.values[i * 94 + j] >= 0);
      nonzero += sc.values[i * 94 + j] != 0;
    }
  ck_assert_int_gt(nonzero, 94);
  data_free(&sc);
  const char *msg = read_bad(path, "SC");
  ck_assert_has(msg, "expected a variable 'SC', found none; the variables are: 'sc'");
}
END_TEST

START_TEST(hcp_truncated) {
  const char *path = shared_file(HCP_DIR "DTI_CM.mat");
  if (!path)
    return;
  tmpdir_make("mat");
  size_t len;
  unsigned char *bytes = slurp(path, &len);
  size_t cuts[] = {0, 10, 127, 128, 130, 136, 140, 1000, len / 2, len - 9, len - 1};
  assert_cuts_rejected(tmp_path("cut.mat"), bytes, len, cuts, sizeof cuts / sizeof *cuts,
                       reject_sc);
  free(bytes);
  tmpdir_remove();
}
END_TEST

/* Junk in the version, endianness, element tag, zlib header and stream. */
START_TEST(hcp_corrupt_header) {
  const char *path = shared_file(HCP_DIR "DTI_CM.mat");
  if (!path)
    return;
  tmpdir_make("mat");
  size_t len;
  unsigned char *bytes = slurp(path, &len);
  Patch patches[] = {
    {124, 2, "\x07\x07"}, {126, 2, "XX"}, {128, 1, "\x63"}, {129, 1, "\x01"},
    {132, 2, "\xff\xff"}, {134, 1, "\x01"}, {136, 2, "\x00\x00"}, {137, 1, "\x00"},
    {5000, 4, "\xff\xff\xff\xff"}, {20000, 3, "\x00\x13\x55"},
  };
  assert_patches_rejected(tmp_path("flip.mat"), bytes, len, patches,
                          sizeof patches / sizeof *patches, reject_sc);
  free(bytes);
  tmpdir_remove();
}
END_TEST

static Suite *mat_suite(void) {
  Suite *s = suite_create("data_mat");
  TCase *tc = tcase_create("mat");
  tcase_add_test(tc, mat5_written);
  tcase_add_test(tc, mat73_written);
  tcase_add_test(tc, mat5_containers_refused);
  tcase_add_test(tc, mat5_function_handle_refused);
  tcase_add_test(tc, mat_not_a_file);
  tcase_add_test(tc, hcp_time_course);
  tcase_add_test(tc, hcp_connectivity);
  tcase_add_test(tc, hcp_truncated);
  tcase_add_test(tc, hcp_corrupt_header);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(mat_suite()); }
