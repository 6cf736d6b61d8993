/*
 * test_data_connectome.c — TVB connectivity zips: the two real ones from
 * tvb-data, small zips written here with libzip for each kind of bad text,
 * and truncated or bit-flipped copies of the real 76-region zip. Failures
 * must name the zip, and the member and line when the text is at fault.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "data.h"
#include "test_data_util.h"
#include "test_util.h"

#define TVB SHARED_DATA "tvb/"

static char path[256];
static char err[512];

static void make_tmpdir(void) {
  tmpdir_make("conn");
  snprintf(path, sizeof path, "%s/conn.zip", tmpdir);
}

/* Writes a zip of (name, text) pairs; a NULL name ends the list. */
static void write_zip(const char *const *members) {
  int code;
  zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &code);
  ck_assert_ptr_nonnull(z);
  for (int i = 0; members[i]; i += 2) {
    zip_source_t *src = zip_source_buffer(z, members[i + 1], strlen(members[i + 1]), 0);
    ck_assert_ptr_nonnull(src);
    ck_assert_int_ge(zip_file_add(z, members[i], src, ZIP_FL_OVERWRITE), 0);
  }
  ck_assert_int_eq(zip_close(z), 0);
}

static const char *centres3 = "A 1 2 3\nB 4 5 6\n\nC 7 8 9\n";
static const char *weights3 = "0 1 2\n3 0 4\n5 6 0\n";
static const char *lengths3 = "0 10.5 20\n10.5 0 30\n20 30 0";

static void write_three(const char *centres, const char *weights, const char *lengths) {
  const char *members[] = {"centres.txt", centres, "weights.txt", weights,
                           "tract_lengths.txt", lengths, NULL};
  write_zip(members);
}

static const char *read_bad(const char *file) {
  DataConnectome g;
  err[0] = '\0';
  ck_assert_int_eq(data_read_connectome(file, &g, err, sizeof err), -1);
  ck_assert_int_eq(g.n, 0);
  ck_assert_ptr_null(g.labels);
  ck_assert_ptr_null(g.weights);
  ck_assert_has(err, file);
  return err;
}

START_TEST(real_76) {
  if (!shared_file(TVB "connectivity_76.zip"))
    return;
  DataConnectome g;
  ck_assert_msg(data_read_connectome(TVB "connectivity_76.zip", &g, err, sizeof err) == 0,
                "%s", err);
  ck_assert_int_eq(g.n, 76);
  ck_assert_str_eq(g.labels[0], "rA1");
  ck_assert_double_eq_tol(g.centres[0], -9.885591, 1e-12);
  ck_assert_double_eq_tol(g.centres[2], -3.139360, 1e-12);
  ck_assert_double_eq(g.weights[0], 2);     /* first row: 2 2 0 2 ... */
  ck_assert_double_eq(g.weights[2], 0);
  ck_assert_double_eq(g.weights[76], 3);    /* second row starts with 3 */
  for (int i = 0; i < 76 * 76; i++) {
    ck_assert_double_ge(g.weights[i], 0);
    ck_assert_double_le(g.weights[i], 3);
  }
  data_connectome_free(&g);
  ck_assert_ptr_null(g.labels);
}
END_TEST

START_TEST(real_66_with_extra_column) {
  if (!shared_file(TVB "connectivity_66.zip"))
    return;
  DataConnectome g;
  ck_assert_msg(data_read_connectome(TVB "connectivity_66.zip", &g, err, sizeof err) == 0,
                "%s", err);
  ck_assert_int_eq(g.n, 66);
  ck_assert_str_eq(g.labels[0], "rBSTS");                  /* "rBSTS x y z None" */
  ck_assert_double_eq_tol(g.centres[0], 85.8218821, 1e-9);
  ck_assert_double_eq_tol(g.weights[0], 0.4830560569890778311, 1e-15);
  ck_assert_double_eq_tol(g.tract_lengths[0], 16.10872672949413342, 1e-12);
  data_connectome_free(&g);
}
END_TEST

START_TEST(small_good_in_a_folder) {
  const char *members[] = {"conn/centres.txt", centres3, "conn/weights.txt", weights3,
                           "conn/tract_lengths.txt", lengths3, "conn/info.txt", "x", NULL};
  write_zip(members);
  DataConnectome g;
  ck_assert_msg(data_read_connectome(path, &g, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(g.n, 3);
  ck_assert_str_eq(g.labels[2], "C");
  ck_assert_double_eq(g.centres[7], 8);
  ck_assert_double_eq(g.weights[5], 4);
  ck_assert_double_eq(g.tract_lengths[1], 10.5);
  ck_assert_double_eq(g.tract_lengths[8], 0);
  data_connectome_free(&g);
}
END_TEST

START_TEST(missing_members_named) {
  const char *no_lengths[] = {"centres.txt", centres3, "weights.txt", weights3, NULL};
  write_zip(no_lengths);
  ck_assert_has(read_bad(path), "expected a member tract_lengths.txt in the archive");
  const char *no_centres[] = {"weights.txt", weights3, NULL};
  write_zip(no_centres);
  ck_assert_has(read_bad(path), "expected a member centres.txt in the archive");
}
END_TEST

START_TEST(bad_numbers_with_lines) {
  write_three(centres3, "0 1 2\n3 x 4\n5 6 0\n", lengths3);
  ck_assert_has(read_bad(path), "weights.txt:2: expected a finite number, found \"x\"");
  write_three(centres3, weights3, "0 1 2\n3 0 4\n5 6 nan\n");
  ck_assert_has(read_bad(path), "tract_lengths.txt:3: expected a finite number, found \"nan\"");
  write_three(centres3, "0 1 2\n3 0 -4\n5 6 0\n", lengths3);
  ck_assert_has(read_bad(path), "weights.txt:2: expected numbers >= 0, found -4 (column 3)");
  write_three("A 1 2 3\nB 4 5e999 6\nC 7 8 9\n", weights3, lengths3);
  ck_assert_has(read_bad(path), "centres.txt:2: expected a finite number, found \"5e999\"");
}
END_TEST

START_TEST(inconsistent_sizes) {
  write_three(centres3, "0 1 2\n3 0\n5 6 0\n", lengths3);
  ck_assert_has(read_bad(path), "weights.txt:2: expected 3 numbers (one per region of "
                "centres.txt), found 2");
  write_three(centres3, "0 1 2 7\n3 0 4\n5 6 0\n", lengths3);
  ck_assert_has(read_bad(path), "weights.txt:1: expected 3 numbers");
  write_three(centres3, "0 1 2\n3 0 4\n", lengths3);
  ck_assert_has(read_bad(path), "weights.txt: expected 3 rows (one per region of "
                "centres.txt), found 2");
  write_three(centres3, weights3, "0 1 2\n3 0 4\n5 6 0\n\n1 1 1\n");
  ck_assert_has(read_bad(path), "tract_lengths.txt:5: expected 3 rows");
  write_three("A 1 2 3\nB 4 5\nC 7 8 9\n", weights3, lengths3);
  ck_assert_has(read_bad(path), "centres.txt:2: expected \"label x y z\", found 3 fields");
  write_three("A 1 2 3\nB 4 5 6\nA 7 8 9\n", weights3, lengths3);
  ck_assert_has(read_bad(path), "centres.txt:3: expected distinct region labels, found A");
  write_three("\n\n", weights3, lengths3);
  ck_assert_has(read_bad(path), "centres.txt: expected 1 to 4096 regions (lines), found 0");
}
END_TEST

START_TEST(not_a_zip) {
  FILE *f = fopen(path, "w");
  fputs("0 1\n1 0\n", f);
  fclose(f);
  ck_assert_has(read_bad(path), "expected a zip archive");
  snprintf(path, sizeof path, "%s/absent.zip", tmpdir);
  ck_assert_has(read_bad(path), "cannot open");
}
END_TEST

/* ---- damaged copies of the real zip ---------------------------------------- */

/* RejectCheck: reading the zip is refused. */
static void reject_zip(const char *file) { read_bad(file); }

START_TEST(real_truncated) {
  if (!shared_file(TVB "connectivity_76.zip"))
    return;
  size_t len;
  unsigned char *bytes = slurp(TVB "connectivity_76.zip", &len);
  size_t cuts[] = {0, 10, 100, 5000, len / 2, len - 22, len - 1};   /* 22: the end record */
  assert_cuts_rejected(path, bytes, len, cuts, sizeof cuts / sizeof *cuts, reject_zip);
  free(bytes);
}
END_TEST

static int same_connectome(const DataConnectome *a, const DataConnectome *b) {
  size_t nn = (size_t)a->n * (size_t)a->n;
  if (a->n != b->n)
    return 0;
  for (int i = 0; i < a->n; i++)
    if (strcmp(a->labels[i], b->labels[i]) != 0)
      return 0;
  return memcmp(a->weights, b->weights, nn * sizeof(double)) == 0 &&
         memcmp(a->tract_lengths, b->tract_lengths, nn * sizeof(double)) == 0 &&
         memcmp(a->centres, b->centres, (size_t)a->n * 3 * sizeof(double)) == 0;
}

/* A flipped byte is either caught (CRC, deflate, structure) or lies where it
 * changes nothing read, such as areas.txt: never a silently different result. */
START_TEST(real_flipped_bytes) {
  if (!shared_file(TVB "connectivity_76.zip"))
    return;
  size_t len;
  unsigned char *bytes = slurp(TVB "connectivity_76.zip", &len);
  DataConnectome good, g;
  ck_assert_int_eq(data_read_connectome(TVB "connectivity_76.zip", &good, err, sizeof err), 0);
  int rejected = 0;
  for (size_t at = 0; at < len; at += 97) {
    bytes[at] ^= 0x5a;
    write_bytes_at(path, bytes, len);
    if (data_read_connectome(path, &g, err, sizeof err) == 0) {
      ck_assert_msg(same_connectome(&good, &g), "flip at byte %zu changed the result", at);
      data_connectome_free(&g);
    } else {
      ck_assert_has(err, path);
      rejected++;
    }
    bytes[at] ^= 0x5a;
  }
  ck_assert_int_gt(rejected, (int)(len / 97 / 2));
  data_connectome_free(&good);
  free(bytes);
}
END_TEST

int main(void) {
  Suite *s = suite_create("data_connectome");
  TCase *tc = tcase_create("connectome");
  tcase_add_checked_fixture(tc, make_tmpdir, tmpdir_remove);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, real_76);
  tcase_add_test(tc, real_66_with_extra_column);
  tcase_add_test(tc, small_good_in_a_folder);
  tcase_add_test(tc, missing_members_named);
  tcase_add_test(tc, bad_numbers_with_lines);
  tcase_add_test(tc, inconsistent_sizes);
  tcase_add_test(tc, not_a_zip);
  tcase_add_test(tc, real_truncated);
  tcase_add_test(tc, real_flipped_bytes);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
