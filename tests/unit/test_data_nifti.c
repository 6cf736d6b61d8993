/*
 * test_data_nifti.c — region time series from NIfTI images: the real AAL2
 * atlas (big-endian NIfTI-1, int16) with a 4-D series written here through
 * niftilib whose values are a function of the label, so every region mean is
 * known exactly; small synthetic volumes for scaling, names and bad input;
 * truncated and flipped copies of the atlas. Failures must name the file.
 */
#include <check.h>
#include <math.h>
#include <nifti2_io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"
#include "test_data_util.h"
#include "test_util.h"

#define AAL2 SHARED_DATA "atlas/AAL2.nii"

static char series[256], labels[256];
static char err[512];

static void make_tmpdir(void) {
  tmpdir_make("nifti");
  snprintf(series, sizeof series, "%s/series.nii", tmpdir);
  snprintf(labels, sizeof labels, "%s/labels.nii", tmpdir);
}

/* ---- writing images through niftilib --------------------------------------- */

static nifti_image *new_image(int64_t nx, int64_t ny, int64_t nz, int64_t nt, int datatype,
                              double voxel_mm) {
  int64_t dims[8] = {nt > 1 ? 4 : 3, nx, ny, nz, nt, 1, 1, 1};
  nifti_image *nim = nifti_make_new_nim(dims, datatype, 1);
  ck_assert_ptr_nonnull(nim);
  nim->dx = nim->dy = nim->dz = voxel_mm;
  nim->pixdim[1] = nim->pixdim[2] = nim->pixdim[3] = voxel_mm;
  nim->dt = nim->pixdim[4] = 2;        /* TR 2 s */
  nim->xyz_units = NIFTI_UNITS_MM;
  nim->time_units = NIFTI_UNITS_SEC;
  return nim;
}

static void write_image(nifti_image *nim, const char *path) {
  ck_assert_int_eq(nifti_set_filenames(nim, path, 0, 1), 0);
  nifti_image_write(nim);
  nifti_image_free(nim);
  ck_assert_int_eq(access(path, R_OK), 0);
}

/* 4 x 3 x 2 labels: voxel i has label i % 3 (0 is background). */
static void write_small_labels(int datatype) {
  nifti_image *nim = new_image(4, 3, 2, 1, datatype, 2);
  for (int i = 0; i < 24; i++) {
    if (datatype == DT_FLOAT32)
      ((float *)nim->data)[i] = (float)(i % 3);
    else
      ((short *)nim->data)[i] = (short)(i % 3);
  }
  write_image(nim, labels);
}

/* Frame t, voxel i holds i + 1000 t, stored with scl_slope 2, scl_inter 1. */
static void write_small_series(double voxel_mm, int64_t nx) {
  nifti_image *nim = new_image(nx, 3, 2, 2, DT_FLOAT64, voxel_mm);
  double *v = nim->data;
  for (int64_t i = 0; i < nim->nvox; i++)
    v[i] = (double)(i % (nx * 6)) + 1000.0 * (double)(i / (nx * 6));
  nim->scl_slope = 2;
  nim->scl_inter = 1;
  write_image(nim, series);
}

/* ---- reading --------------------------------------------------------------- */

static const char *reduce_bad(const char *names[], int nnames, const char *culprit) {
  DataTable t;
  double rate;
  err[0] = '\0';
  ck_assert_int_eq(data_read_nifti_regions(series, labels, names, nnames, &t, &rate, err,
                                           sizeof err), -1);
  ck_assert_ptr_null(t.values);
  ck_assert_ptr_null(t.names);
  ck_assert_has(err, culprit);
  return err;
}

START_TEST(small_means_scaled_and_named) {
  write_small_labels(DT_INT16);
  write_small_series(2, 4);
  const char *names[] = {"V1", "V2"};
  DataTable t;
  double rate = 0;
  ck_assert_msg(data_read_nifti_regions(series, labels, names, 2, &t, &rate, err,
                                        sizeof err) == 0, "%s", err);
  ck_assert_int_eq(t.rows, 2);
  ck_assert_int_eq(t.cols, 2);
  ck_assert_str_eq(t.names[0], "V1");
  ck_assert_str_eq(t.names[1], "V2");
  /* Label 1 holds voxels 1, 4, ..., 22 (mean 11.5); label 2 holds 2, 5, ..., 23. */
  ck_assert_float_eq(t.values[0], 2 * 11.5 + 1);
  ck_assert_float_eq(t.values[1], 2 * 12.5 + 1);
  ck_assert_float_eq(t.values[2], 2 * 1011.5 + 1);
  ck_assert_float_eq(t.values[3], 2 * 1012.5 + 1);
  ck_assert_double_eq(rate, 0.5);
  data_free(&t);
}
END_TEST

START_TEST(small_default_names_and_float_labels) {
  write_small_labels(DT_FLOAT32);
  write_small_series(2, 4);
  DataTable t;
  double rate;
  ck_assert_int_eq(data_read_nifti_regions(series, labels, NULL, 0, &t, &rate, err,
                                           sizeof err), 0);
  ck_assert_str_eq(t.names[0], "label1");
  ck_assert_str_eq(t.names[1], "label2");
  data_free(&t);
}
END_TEST

START_TEST(small_rejections) {
  write_small_labels(DT_INT16);
  write_small_series(3, 4);
  ck_assert_has(reduce_bad(NULL, 0, series), "expected the voxel size of the labels");
  write_small_series(2, 5);
  ck_assert_has(reduce_bad(NULL, 0, series), "expected the grid of the labels");
  ck_assert_has(reduce_bad(NULL, 0, series), "4 x 3 x 2, found 5 x 3 x 2");
  write_small_series(2, 4);
  const char *three[] = {"a", "b", "c"};
  ck_assert_has(reduce_bad(three, 3, labels), "expected 2 names, one per label, found 3");

  nifti_image *nim = new_image(4, 3, 2, 1, DT_FLOAT32, 2);
  ((float *)nim->data)[5] = 1.5f;
  write_image(nim, labels);
  ck_assert_has(reduce_bad(NULL, 0, labels), "whole labels >= 0 in the label volume, found 1.5"
                " at voxel (1, 1, 0)");
  nim = new_image(4, 3, 2, 1, DT_INT16, 2);
  write_image(nim, labels);
  ck_assert_has(reduce_bad(NULL, 0, labels), "at least one nonzero label");
  nim = new_image(4, 3, 2, 2, DT_INT16, 2);
  write_image(nim, labels);
  ck_assert_has(reduce_bad(NULL, 0, labels), "expected a 3-D image, found 2 entries along "
                "dimension 4");
}
END_TEST

/* A 1-D label image: niftilib leaves ny and nz at 0 past dim[0], so the voxel
 * named in the message comes from dim[] (the fuzzer's division by zero). */
START_TEST(small_one_dimensional_labels) {
  int64_t dims[8] = {1, 6, 1, 1, 1, 1, 1, 1};
  nifti_image *nim = nifti_make_new_nim(dims, DT_FLOAT32, 1);
  ck_assert_ptr_nonnull(nim);
  ((float *)nim->data)[5] = 1.5f;
  write_image(nim, labels);
  write_small_series(2, 4);
  ck_assert_has(reduce_bad(NULL, 0, labels), "found 1.5 at voxel (5, 0, 0)");
}
END_TEST

/* niftilib itself turns stored NaN and Inf into 0 when it loads voxels, so
 * only scaling can make a value non-finite. */
START_TEST(small_overflow_inside_a_label) {
  write_small_labels(DT_INT16);
  nifti_image *nim = new_image(4, 3, 2, 2, DT_FLOAT64, 2);
  ((double *)nim->data)[24 + 0] = 1e300;   /* background: ignored */
  ((double *)nim->data)[24 + 7] = 1e300;   /* label 1, frame 1 */
  nim->scl_slope = 1e30;                    /* NIfTI-1 stores it as float32 */
  write_image(nim, series);
  ck_assert_has(reduce_bad(NULL, 0, series), "found inf at voxel (3, 1, 0) of frame 1");
}
END_TEST

START_TEST(missing_and_not_nifti) {
  write_small_labels(DT_INT16);
  ck_assert_has(reduce_bad(NULL, 0, series), "cannot open");
  FILE *f = fopen(series, "w");
  fputs("not an image\n", f);
  fclose(f);
  ck_assert_has(reduce_bad(NULL, 0, series), "expected a NIfTI-1 or NIfTI-2 image");
}
END_TEST

/* AAL2's grid, frames t = 0..2: label L holds L / 2 + 100 t, background 7777. */
static nifti_image *write_aal2_series(void) {
  nifti_image *atlas = nifti_image_read(AAL2, 1);
  ck_assert_ptr_nonnull(atlas);
  ck_assert_int_eq(atlas->datatype, DT_INT16);
  nifti_image *nim = new_image(atlas->nx, atlas->ny, atlas->nz, 3, DT_FLOAT32, atlas->dx);
  const short *lab = atlas->data;
  float *v = nim->data;
  for (int64_t t = 0; t < 3; t++)
    for (int64_t i = 0; i < atlas->nvox; i++)
      v[t * atlas->nvox + i] = lab[i] ? (float)lab[i] / 2 + 100.0f * (float)t : 7777.0f;
  write_image(nim, series);
  return atlas;
}

static int count_labels(const nifti_image *atlas, short *first, short *last) {
  int seen[32768] = {0}, n = 0;
  const short *lab = atlas->data;
  for (int64_t i = 0; i < atlas->nvox; i++)
    if (lab[i] > 0 && !seen[lab[i]]++)
      n++;
  for (*first = 1; !seen[*first]; (*first)++) {}
  for (*last = 32767; !seen[*last]; (*last)--) {}
  return n;
}

START_TEST(aal2_means_exact) {
  if (!shared_file(AAL2))
    return;
  nifti_image *atlas = write_aal2_series();
  short first, last;
  int nlabels = count_labels(atlas, &first, &last);
  nifti_image_free(atlas);
  ck_assert_int_eq(nlabels, 120);
  DataTable t;
  double rate;
  ck_assert_msg(data_read_nifti_regions(series, AAL2, NULL, 0, &t, &rate, err,
                                        sizeof err) == 0, "%s", err);
  ck_assert_int_eq(t.rows, 3);
  ck_assert_int_eq(t.cols, 120);
  char name[32];
  snprintf(name, sizeof name, "label%d", first);
  ck_assert_str_eq(t.names[0], name);
  snprintf(name, sizeof name, "label%d", last);
  ck_assert_str_eq(t.names[119], name);
  for (int r = 0; r < 3; r++) {
    ck_assert_float_eq(t.values[r * 120], first / 2.0f + 100.0f * (float)r);
    ck_assert_float_eq(t.values[r * 120 + 119], last / 2.0f + 100.0f * (float)r);
    for (int c = 1; c < 120; c++)   /* ascending labels: ascending means */
      ck_assert_float_gt(t.values[r * 120 + c], t.values[r * 120 + c - 1]);
  }
  ck_assert_double_eq(rate, 0.5);
  data_free(&t);
}
END_TEST

/* ---- damaged copies of the atlas ------------------------------------------- */

/* RejectCheck: reducing the series over the labels at file is refused. */
static void reject_labels(const char *file) { reduce_bad(NULL, 0, file); }

START_TEST(aal2_truncated) {
  if (!shared_file(AAL2))
    return;
  nifti_image_free(write_aal2_series());
  size_t len;
  unsigned char *bytes = slurp(AAL2, &len);
  size_t cuts[] = {0, 100, 347, 352, 2000, len / 2, len - 1};
  assert_cuts_rejected(labels, bytes, len, cuts, sizeof cuts / sizeof *cuts, reject_labels);
  free(bytes);
}
END_TEST

START_TEST(aal2_header_flipped) {
  if (!shared_file(AAL2))
    return;
  nifti_image_free(write_aal2_series());
  size_t len;
  unsigned char *bytes = slurp(AAL2, &len);
  /* sizeof_hdr, dim[0], dim[1], dim[3], datatype, vox_offset (niftilib
   * ignores bitpix and a damaged magic, which change nothing here). */
  size_t spots[] = {3, 41, 43, 47, 71, 109};
  assert_flips_rejected(labels, bytes, len, spots, sizeof spots / sizeof *spots,
                        reject_labels);
  free(bytes);
}
END_TEST

int main(void) {
  Suite *s = suite_create("data_nifti");
  TCase *tc = tcase_create("nifti");
  tcase_add_checked_fixture(tc, make_tmpdir, tmpdir_remove);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, small_means_scaled_and_named);
  tcase_add_test(tc, small_default_names_and_float_labels);
  tcase_add_test(tc, small_rejections);
  tcase_add_test(tc, small_one_dimensional_labels);
  tcase_add_test(tc, small_overflow_inside_a_label);
  tcase_add_test(tc, missing_and_not_nifti);
  tcase_add_test(tc, aal2_means_exact);
  tcase_add_test(tc, aal2_truncated);
  tcase_add_test(tc, aal2_header_flipped);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
