/*
 * test_data_util.h — helpers shared by the data reader tests (test_data*.c):
 * a scratch folder, whole files in and out of memory, the real recordings in
 * ../shared/data, and damaged copies that a reader must refuse. Header-only,
 * like test_util.h, because every test file is its own executable.
 */
#ifndef LOBE_TEST_DATA_UTIL_H
#define LOBE_TEST_DATA_UTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The real recordings live outside the repository, next to it. */
#define SHARED_DATA LOBE_SOURCE_DIR "/../shared/data/"

/* msg must contain part; the failure shows both. */
#define ck_assert_has(msg, part) ck_assert_msg(strstr(msg, part) != NULL, \
    "message \"%s\" lacks \"%s\"", msg, part)

/* The scratch folder of the running test: one per executable is enough. */
static char tmpdir[64];

/* Creates a fresh /tmp/lobe_test_TAG_XXXXXX as tmpdir. */
static inline void tmpdir_make(const char *tag) {
  int n = snprintf(tmpdir, sizeof tmpdir, "/tmp/lobe_test_%s_XXXXXX", tag);
  ck_assert_int_lt(n, (int)sizeof tmpdir);
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* Removes tmpdir and all it holds. */
static inline void tmpdir_remove(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  ck_assert_int_eq(system(cmd), 0);
}

/* tmpdir/name, in one of four rotating buffers, so a call may take a few. */
static inline const char *tmp_path(const char *name) {
  static char paths[4][256];
  static int slot;
  char *path = paths[slot++ % 4];
  snprintf(path, 256, "%s/%s", tmpdir, name);
  return path;
}

/* The whole file at path, malloc'd; its size goes to *len. */
static inline unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
  *len = (size_t)ftell(f);
  rewind(f);
  unsigned char *bytes = malloc(*len ? *len : 1);
  ck_assert_ptr_nonnull(bytes);
  ck_assert_uint_eq(fread(bytes, 1, *len, f), *len);
  fclose(f);
  return bytes;
}

/* Replaces the file at path with len bytes. */
static inline void write_bytes_at(const char *path, const void *bytes, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(bytes, 1, len, f), len);
  fclose(f);
}

/* Writes len bytes to tmpdir/name; returns that path (see tmp_path). */
static inline const char *write_bytes(const char *name, const void *bytes, size_t len) {
  const char *path = tmp_path(name);
  write_bytes_at(path, bytes, len);
  return path;
}

/* path when that real file is there, else NULL after saying the test skips. */
static inline const char *shared_file(const char *path) {
  if (access(path, R_OK) == 0)
    return path;
  printf("skipped: %s is absent (real data lives outside the repository)\n", path);
  return NULL;
}

/* Reads the file at path and asserts the reader refuses it, naming path. */
typedef void (*RejectCheck)(const char *path);

/* Each cut: the first cuts[i] bytes of bytes, written to path, refused. */
static inline void assert_cuts_rejected(const char *path, const unsigned char *bytes, size_t len,
                                        const size_t *cuts, size_t ncuts, RejectCheck check) {
  for (size_t i = 0; i < ncuts; i++) {
    ck_assert_uint_le(cuts[i], len);
    write_bytes_at(path, bytes, cuts[i]);
    check(path);
  }
}

/* Each spot in turn: the byte there flipped (xor 0x5a), written to path and
 * refused; bytes is left as it came. */
static inline void assert_flips_rejected(const char *path, unsigned char *bytes, size_t len,
                                         const size_t *spots, size_t nspots, RejectCheck check) {
  for (size_t i = 0; i < nspots; i++) {
    ck_assert_uint_lt(spots[i], len);
    bytes[spots[i]] ^= 0x5a;
    write_bytes_at(path, bytes, len);
    check(path);
    bytes[spots[i]] ^= 0x5a;
  }
}

/* n bytes of junk laid over a file at offset at. */
typedef struct Patch {
  size_t at, n;
  const char *junk;
} Patch;

/* Each patch on its own copy of bytes, written to path and refused. */
static inline void assert_patches_rejected(const char *path, const unsigned char *bytes,
                                           size_t len, const Patch *patches, size_t npatches,
                                           RejectCheck check) {
  for (size_t i = 0; i < npatches; i++) {
    ck_assert_uint_le(patches[i].at + patches[i].n, len);
    unsigned char *copy = malloc(len);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, bytes, len);
    memcpy(copy + patches[i].at, patches[i].junk, patches[i].n);
    write_bytes_at(path, copy, len);
    check(path);
    free(copy);
  }
}

#endif
