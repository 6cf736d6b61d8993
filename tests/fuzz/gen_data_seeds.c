/*
 * gen_data_seeds.c — writes tests/fuzz/corpus_data: one tiny valid file per
 * reader and variant, made with the format's own library and prefixed with
 * the byte that makes fuzz_data.c pick that reader. Not part of the build;
 * rerun it when a reader learns something new:
 *   cc -std=c11 -D_GNU_SOURCE -I/usr/include/nifti \
 *      $(pkg-config --cflags matio hdf5 libzip) tests/fuzz/gen_data_seeds.c \
 *      -ledf -lnifti2 -lznz $(pkg-config --libs matio hdf5 libzip) -lm \
 *      -o /tmp/gen_data_seeds && /tmp/gen_data_seeds tests/fuzz/corpus_data
 */
#include <edflib.h>
#include <hdf5.h>
#include <matio.h>
#include <nifti2_io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

/* The format numbers of fuzz_data.c. */
enum { FMT_CSV, FMT_NPY, FMT_EDF, FMT_MAT, FMT_NWB, FMT_NIFTI, FMT_ZIP };

static const char *out_dir;

static void die(const char *what) {
  fprintf(stderr, "gen_data_seeds: %s failed\n", what);
  exit(1);
}

static char *scratch_path(const char *name) {
  static char path[4096];
  snprintf(path, sizeof path, "%s/.tmp.%s", out_dir, name);
  return path;
}

/* Writes the seed NAME: the selector byte, then the bytes of file SRC. */
static void seed_from_file(const char *name, int selector, const char *src) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", out_dir, name);
  FILE *in = fopen(src, "rb"), *out = fopen(path, "wb");
  if (!in || !out)
    die(name);
  fputc(selector, out);
  int c;
  while ((c = fgetc(in)) != EOF)
    fputc(c, out);
  fclose(in);
  if (fclose(out) != 0)
    die(name);
  remove(src);
}

static void seed_from_bytes(const char *name, int selector, const void *bytes, size_t n) {
  char *tmp = scratch_path(name);
  FILE *f = fopen(tmp, "wb");
  if (!f || fwrite(bytes, 1, n, f) != n || fclose(f) != 0)
    die(name);
  seed_from_file(name, selector, tmp);
}

static void write_text_seeds(void) {
  static const char csv[] = "t,O1,O2\n0,1.5,-2\n0.5,3e-1,4\n1,-0.25,1e3\n";
  static const char csv_plain[] = "1,2\n3,4\n";
  seed_from_bytes("csv_header", FMT_CSV, csv, sizeof csv - 1);
  seed_from_bytes("csv_plain", FMT_CSV, csv_plain, sizeof csv_plain - 1);
}

/* A 3 x 2 float32 array, little-endian, C order: NPY 1.0 pads to 64 bytes. */
static void write_npy_seed(void) {
  char file[64 + 6 * 4];
  const char *dict = "{'descr':'<f4','fortran_order':False,'shape':(3,2)}";
  memset(file, ' ', 64);
  memcpy(file, "\x93NUMPY\x01\x00\x36\x00", 10);
  memcpy(file + 10, dict, strlen(dict));
  file[63] = '\n';
  float values[6] = {1, -2, 0.5f, 4, 8, -16};
  memcpy(file + 64, values, sizeof values);
  seed_from_bytes("npy_f4", FMT_NPY, file, sizeof file);
}

/* Two signals at 4 Hz, one one-second record, as EDF+ or BDF+ (24-bit):
 * EDFlib writes only those. */
static void write_edf_seed(const char *name, int filetype, int selector) {
  char *tmp = scratch_path(name);
  int h = edfopen_file_writeonly(tmp, filetype, 2);
  if (h < 0)
    die("edfopen_file_writeonly");
  static const char *const labels[] = {"EEG Fpz-Cz", "EEG O1"};
  for (int s = 0; s < 2; s++)
    if (edf_set_samplefrequency(h, s, 4) || edf_set_physical_maximum(h, s, 100) ||
        edf_set_physical_minimum(h, s, -100) || edf_set_digital_maximum(h, s, 2047) ||
        edf_set_digital_minimum(h, s, -2048) || edf_set_label(h, s, labels[s]) ||
        edf_set_physical_dimension(h, s, "uV"))
      die("edf_set_*");
  double samples[4] = {-50, 0, 25, 99};
  for (int s = 0; s < 2; s++)
    if (edfwrite_physical_samples(h, samples))
      die("edfwrite_physical_samples");
  edfclose_file(h);
  seed_from_file(name, selector, tmp);
}

static void write_mat_seed(const char *name, enum mat_ft version) {
  char *tmp = scratch_path(name);
  mat_t *mat = Mat_CreateVer(tmp, NULL, version);
  if (!mat)
    die("Mat_CreateVer");
  double values[6] = {1, 2, 3, 4, 5, 6};
  size_t dims[2] = {3, 2};
  matvar_t *var = Mat_VarCreate("data", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, values, 0);
  if (!var || Mat_VarWrite(mat, var, MAT_COMPRESSION_NONE) != 0)
    die("Mat_VarWrite");
  Mat_VarFree(var);
  Mat_Close(mat);
  seed_from_file(name, FMT_MAT, tmp);
}

static void h5_write(hid_t loc, const char *name, hid_t type, int rank, hsize_t *dims,
                     const void *values) {
  hid_t space = H5Screate_simple(rank, dims, NULL);
  hid_t ds = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (ds < 0 || H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0)
    die(name);
  H5Dclose(ds);
  H5Sclose(space);
}

static void h5_attr(hid_t loc, const char *obj, const char *name, double value) {
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate_by_name(loc, obj, name, H5T_NATIVE_DOUBLE, space, H5P_DEFAULT,
                              H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0 || H5Awrite(a, H5T_NATIVE_DOUBLE, &value) < 0)
    die(name);
  H5Aclose(a);
  H5Sclose(space);
}

/* Two spike units and a 4 x 2 series at 2 Hz, in the latest (smallest)
 * HDF5 format. */
static void write_nwb_seed(void) {
  char *tmp = scratch_path("nwb");
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  if (f < 0)
    die("H5Fcreate");
  H5Gclose(H5Gcreate2(f, "/units", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5Gclose(H5Gcreate2(f, "/acquisition", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5Gclose(H5Gcreate2(f, "/acquisition/lfp", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  double spikes[5] = {0.1, 0.7, 1.2, 0.3, 1.9};
  long long ends[2] = {3, 5}, ids[2] = {7, 9};
  hsize_t n5 = 5, n2 = 2, n1 = 1, grid[2] = {4, 2};
  h5_write(f, "/units/spike_times", H5T_NATIVE_DOUBLE, 1, &n5, spikes);
  h5_write(f, "/units/spike_times_index", H5T_NATIVE_LLONG, 1, &n2, ends);
  h5_write(f, "/units/id", H5T_NATIVE_LLONG, 1, &n2, ids);
  double data[8] = {1, 2, 3, 4, 5, 6, 7, 8}, start = 0.5;
  h5_write(f, "/acquisition/lfp/data", H5T_NATIVE_DOUBLE, 2, grid, data);
  h5_write(f, "/acquisition/lfp/starting_time", H5T_NATIVE_DOUBLE, 1, &n1, &start);
  h5_attr(f, "/acquisition/lfp/data", "conversion", 0.001);
  h5_attr(f, "/acquisition/lfp/data", "offset", 0);
  h5_attr(f, "/acquisition/lfp/starting_time", "rate", 2);
  H5Fclose(f);
  H5Pclose(fapl);
  seed_from_file("nwb_units", FMT_NWB, tmp);
}

/* A 2 x 2 x 1 int16 image of labels 0, 1, 2: its own label volume. Written
 * as header, an empty extension flag and the voxels, because
 * nifti_image_write falls back to NIfTI-1 for a .nii name. */
static void write_nifti_seed(const char *name, int version) {
  int64_t dims[8] = {3, 2, 2, 1, 1, 1, 1, 1};
  nifti_image *nim = nifti_make_new_nim(dims, NIFTI_TYPE_INT16, 1);
  if (!nim)
    die("nifti_make_new_nim");
  short *v = nim->data;
  v[0] = 0, v[1] = 1, v[2] = 2, v[3] = 1;
  nifti_1_header h1;
  nifti_2_header h2;
  /* One file (magic n+1 / n+2), the voxels after header and extension flag. */
  nim->nifti_type = version == 1 ? NIFTI_FTYPE_NIFTI1_1 : NIFTI_FTYPE_NIFTI2_1;
  nim->iname_offset = (version == 1 ? (int64_t)sizeof h1 : (int64_t)sizeof h2) + 4;
  int bad = version == 1 ? nifti_convert_nim2n1hdr(nim, &h1) : nifti_convert_nim2n2hdr(nim, &h2);
  if (bad)
    die("nifti_convert_nim2n*hdr");
  const void *hdr = version == 1 ? (void *)&h1 : (void *)&h2;
  size_t hdr_size = version == 1 ? sizeof h1 : sizeof h2;
  char file[sizeof h2 + 4 + 8] = {0};
  memcpy(file, hdr, hdr_size);
  memcpy(file + hdr_size + 4, v, 8);
  seed_from_bytes(name, FMT_NIFTI, file, hdr_size + 4 + 8);
  nifti_image_free(nim);
}

static void zip_add_text(zip_t *z, const char *name, const char *text, int method) {
  zip_source_t *s = zip_source_buffer(z, text, strlen(text), 0);
  zip_int64_t i = s ? zip_file_add(z, name, s, ZIP_FL_OVERWRITE) : -1;
  if (i < 0 || zip_set_file_compression(z, (zip_uint64_t)i, method, 0) != 0)
    die(name);
}

/* Two regions; `method` stored keeps the text visible to the mutator. */
static void write_zip_seed(const char *name, int method) {
  char *tmp = scratch_path(name);
  int code;
  zip_t *z = zip_open(tmp, ZIP_CREATE | ZIP_TRUNCATE, &code);
  if (!z)
    die("zip_open");
  zip_add_text(z, "centres.txt", "lh_V1 -10 -80 5\nrh_V1 10 -80 5\n", method);
  zip_add_text(z, "weights.txt", "0 0.5\n0.5 0\n", method);
  zip_add_text(z, "tract_lengths.txt", "0 21.5\n21.5 0\n", method);
  if (zip_close(z) != 0)
    die("zip_close");
  seed_from_file(name, FMT_ZIP, tmp);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gen_data_seeds DIR\n");
    return 2;
  }
  out_dir = argv[1];
  write_text_seeds();
  write_npy_seed();
  write_edf_seed("edf", EDFLIB_FILETYPE_EDFPLUS, FMT_EDF);
  write_edf_seed("bdf", EDFLIB_FILETYPE_BDFPLUS, FMT_EDF | 4 << 3);
  write_mat_seed("mat_v5", MAT_FT_MAT5);
  write_mat_seed("mat_v4", MAT_FT_MAT4);
  write_nwb_seed();
  write_nifti_seed("nifti1", 1);
  write_nifti_seed("nifti2", 2);
  write_zip_seed("zip_stored", ZIP_CM_STORE);
  write_zip_seed("zip_deflated", ZIP_CM_DEFLATE);
  return 0;
}
