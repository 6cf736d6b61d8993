/*
 * checkpoint.c — DIR/checkpoint.bin, written atomically: a temporary file in
 * the same directory, flushed and fsynced, renamed over the old one, then the
 * directory fsynced. A crash leaves the old checkpoint or the new one, never
 * a mix. Layout (little-endian; docs/cli.md):
 *   "LOBECKPT" u32 version
 *   u32 nparams, per param: u32 len, name, i32 rows, i32 cols   (fingerprint)
 *   u32 nsources, per source: u32 len, name, i32 channels
 *   u32 nobservations, per observation: u32 len, name, i32 kind, i32 channels
 *   u64 step, u64 seed
 *   per param: f32 value[n], f32 adam_m[n], f32 adam_v[n]
 *   per source: f64 mean[c], f64 std[c]
 *   per observation: f64 stat[rt_obs_stat_count]
 *   u64 FNV-1a hash of everything before it
 * Version 2 added the observations (ABI v6); version 1 is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt.h"

enum { CKPT_VERSION = 2, CKPT_PATH_MAX = 4096, CKPT_CHUNK = 4096 };
static const char ckpt_magic[8] = {'L', 'O', 'B', 'E', 'C', 'K', 'P', 'T'};
static const char ckpt_name[] = "checkpoint.bin";

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3u;
  return h;
}

static const uint64_t fnv_basis = 0xcbf29ce484222325u;

static void le_store(unsigned char *b, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++)
    b[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t le_load(const unsigned char *b, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++)
    v |= (uint64_t)b[i] << (8 * i);
  return v;
}

/* ---- writing ----------------------------------------------------------- */

typedef struct Writer {
  FILE *f;
  uint64_t hash;
} Writer;

static void w_bytes(Writer *w, const void *p, size_t n) {
  w->hash = fnv1a(w->hash, p, n);
  fwrite(p, 1, n, w->f);
}

static void w_int(Writer *w, uint64_t v, int bytes) {
  unsigned char b[8];
  le_store(b, v, bytes);
  w_bytes(w, b, (size_t)bytes);
}

static void w_name(Writer *w, const char *s) {
  w_int(w, strlen(s), 4);
  w_bytes(w, s, strlen(s));
}

static void w_floats(Writer *w, const float *x, size_t n) {
  unsigned char buf[CKPT_CHUNK];
  for (size_t i = 0; i < n;) {
    size_t k = 0;
    for (; i < n && k < sizeof buf; i++, k += 4) {
      uint32_t u;
      memcpy(&u, &x[i], 4);
      le_store(buf + k, u, 4);
    }
    w_bytes(w, buf, k);
  }
}

static void w_doubles(Writer *w, const double *x, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint64_t u;
    memcpy(&u, &x[i], 8);
    w_int(w, u, 8);
  }
}

static void write_fingerprint(Writer *w, const lobe_model *m) {
  w_int(w, (uint32_t)m->nparams, 4);
  for (int k = 0; k < m->nparams; k++) {
    w_name(w, m->params[k].name);
    w_int(w, (uint32_t)m->params[k].rows, 4);
    w_int(w, (uint32_t)m->params[k].cols, 4);
  }
  w_int(w, (uint32_t)m->nsources, 4);
  for (int s = 0; s < m->nsources; s++) {
    w_name(w, m->sources[s].name);
    w_int(w, (uint32_t)m->sources[s].channels, 4);
  }
  w_int(w, (uint32_t)m->nobservations, 4);
  for (int k = 0; k < m->nobservations; k++) {
    w_name(w, m->observations[k].name);
    w_int(w, (uint32_t)m->observations[k].kind, 4);
    w_int(w, (uint32_t)m->observations[k].channels, 4);
  }
}

static void write_state(Writer *w, const RtState *st) {
  const lobe_model *m = st->model;
  w_bytes(w, ckpt_magic, sizeof ckpt_magic);
  w_int(w, CKPT_VERSION, 4);
  write_fingerprint(w, m);
  w_int(w, (uint64_t)st->step, 8);
  w_int(w, st->seed, 8);
  for (int k = 0; k < m->nparams; k++) {
    w_floats(w, st->params.value[k], st->params.numel[k]);
    w_floats(w, st->params.m[k], st->params.numel[k]);
    w_floats(w, st->params.v[k], st->params.numel[k]);
  }
  for (int s = 0; s < m->nsources; s++) {
    w_doubles(w, st->mean[s], (size_t)m->sources[s].channels);
    w_doubles(w, st->std[s], (size_t)m->sources[s].channels);
  }
  for (int k = 0; k < m->nobservations; k++)
    w_doubles(w, st->obs_stat[k], rt_obs_stat_count(&m->observations[k]));
  uint64_t hash = w->hash;
  w_int(w, hash, 8);
}

/* mkdir -p */
static int make_dirs(const char *dir) {
  char path[CKPT_PATH_MAX];
  struct stat sb;
  snprintf(path, sizeof path, "%s", dir);
  for (char *p = path + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return -1;
      *p = '/';
    }
  if (mkdir(path, 0777) != 0 && errno != EEXIST)
    return -1;
  if (stat(path, &sb) != 0)
    return -1;
  if (!S_ISDIR(sb.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}

static int sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

/* Writes st to fd and closes it; on failure errno says why. */
static int write_file(int fd, const RtState *st) {
  FILE *f = fchmod(fd, 0644) == 0 ? fdopen(fd, "wb") : NULL;
  if (!f) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  Writer w = {f, fnv_basis};
  write_state(&w, st);
  int rc = ferror(f) || fflush(f) != 0 || fsync(fd) != 0 ? -1 : 0;
  int e = errno;
  if (fclose(f) != 0 && rc == 0)
    return -1;
  errno = e;
  return rc;
}

int rt_ckpt_prepare(const char *dir) {
  if (make_dirs(dir) != 0 || access(dir, W_OK | X_OK) != 0) {
    rt_error("cannot use checkpoint directory %s: %s", dir, strerror(errno));
    return RT_FAIL;
  }
  return RT_OK;
}

int rt_ckpt_save(const RtState *st, const char *dir) {
  char tmp[CKPT_PATH_MAX], path[CKPT_PATH_MAX];
  if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, ckpt_name) >= sizeof path ||
      (size_t)snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, ckpt_name) >= sizeof tmp) {
    rt_error("checkpoint directory name too long: %s", dir);
    return RT_FAIL;
  }
  if (make_dirs(dir) != 0) {
    rt_error("cannot create checkpoint directory %s: %s", dir, strerror(errno));
    return RT_FAIL;
  }
  int fd = mkstemp(tmp);
  if (fd < 0) {
    rt_error("cannot create a file in %s: %s", dir, strerror(errno));
    return RT_FAIL;
  }
  if (write_file(fd, st) != 0 || rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    rt_error("cannot write checkpoint %s: %s", path, strerror(e));
    return RT_FAIL;
  }
  if (sync_dir(dir) != 0) {
    rt_error("cannot sync checkpoint directory %s: %s", dir, strerror(errno));
    return RT_FAIL;
  }
  return RT_OK;
}

/* ---- reading ----------------------------------------------------------- */

typedef struct Reader {
  const unsigned char *p;
  size_t len, pos;
  const char *path;
} Reader;

static const unsigned char *r_take(Reader *r, size_t n) {
  if (r->len - r->pos < n)
    return NULL;
  r->pos += n;
  return r->p + r->pos - n;
}

static int r_int(Reader *r, int bytes, uint64_t *v) {
  const unsigned char *b = r_take(r, (size_t)bytes);
  if (!b)
    return -1;
  *v = le_load(b, bytes);
  return 0;
}

static int r_name(Reader *r, const char **name, int *len) {
  uint64_t n;
  if (r_int(r, 4, &n) != 0 || n > 1u << 20 || !(*name = (const char *)r_take(r, n)))
    return -1;
  *len = (int)n;
  return 0;
}

static void r_floats(Reader *r, float *x, size_t n) {
  const unsigned char *b = r_take(r, 4 * n);
  for (size_t i = 0; i < n; i++) {
    uint32_t u = (uint32_t)le_load(b + 4 * i, 4);
    memcpy(&x[i], &u, 4);
  }
}

static void r_doubles(Reader *r, double *x, size_t n) {
  const unsigned char *b = r_take(r, 8 * n);
  for (size_t i = 0; i < n; i++) {
    uint64_t u = le_load(b + 8 * i, 8);
    memcpy(&x[i], &u, 8);
  }
}

static int mismatch(Reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int mismatch(Reader *r, const char *fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  rt_error("checkpoint %s was written for a different model: %s (pass another --checkpoint "
           "directory, or train without --resume to start over)", r->path, what);
  return RT_FAIL;
}

static int corrupt(Reader *r, const char *why) {
  rt_error("checkpoint %s is corrupt: %s", r->path, why);
  return RT_FAIL;
}

static int check_params(Reader *r, const lobe_model *m) {
  uint64_t n, rows, cols;
  if (r_int(r, 4, &n) != 0)
    return corrupt(r, "truncated fingerprint");
  if (n != (uint64_t)m->nparams)
    return mismatch(r, "it has %d parameters, this model has %d", (int)n, m->nparams);
  for (int k = 0; k < m->nparams; k++) {
    const lobe_param *p = &m->params[k];
    const char *name;
    int len;
    if (r_name(r, &name, &len) != 0 || r_int(r, 4, &rows) != 0 || r_int(r, 4, &cols) != 0)
      return corrupt(r, "truncated fingerprint");
    if ((size_t)len != strlen(p->name) || memcmp(name, p->name, (size_t)len) != 0 ||
        rows != (uint64_t)p->rows || cols != (uint64_t)p->cols)
      return mismatch(r, "parameter %d is '%.*s' %dx%d there, '%s' %dx%d here", k,
                      len < 200 ? len : 200, name, (int)rows, (int)cols, p->name, p->rows,
                      p->cols);
  }
  return RT_OK;
}

static int check_sources(Reader *r, const lobe_model *m) {
  uint64_t n, ch;
  if (r_int(r, 4, &n) != 0)
    return corrupt(r, "truncated fingerprint");
  if (n != (uint64_t)m->nsources)
    return mismatch(r, "it has %d data sources, this model has %d", (int)n, m->nsources);
  for (int s = 0; s < m->nsources; s++) {
    const lobe_source *src = &m->sources[s];
    const char *name;
    int len;
    if (r_name(r, &name, &len) != 0 || r_int(r, 4, &ch) != 0)
      return corrupt(r, "truncated fingerprint");
    if ((size_t)len != strlen(src->name) || memcmp(name, src->name, (size_t)len) != 0 ||
        ch != (uint64_t)src->channels)
      return mismatch(r, "source %d is '%.*s' with %d channels there, '%s' with %d here", s,
                      len < 200 ? len : 200, name, (int)ch, src->name, src->channels);
  }
  return RT_OK;
}

static int check_observations(Reader *r, const lobe_model *m) {
  uint64_t n, kind, ch;
  if (r_int(r, 4, &n) != 0)
    return corrupt(r, "truncated fingerprint");
  if (n != (uint64_t)m->nobservations)
    return mismatch(r, "it has %d observations, this model has %d", (int)n,
                    m->nobservations);
  for (int k = 0; k < m->nobservations; k++) {
    const lobe_observation *ob = &m->observations[k];
    const char *name;
    int len;
    if (r_name(r, &name, &len) != 0 || r_int(r, 4, &kind) != 0 || r_int(r, 4, &ch) != 0)
      return corrupt(r, "truncated fingerprint");
    if ((size_t)len != strlen(ob->name) || memcmp(name, ob->name, (size_t)len) != 0 ||
        kind != (uint64_t)ob->kind || ch != (uint64_t)ob->channels)
      return mismatch(r, "observation %d is '%.*s' (kind %d, %d channels) there, '%s' (kind "
                      "%d, %d channels) here", k, len < 200 ? len : 200, name, (int)kind,
                      (int)ch, ob->name, ob->kind, ob->channels);
  }
  return RT_OK;
}

/* The fingerprint matched, so the sizes of what follows are known. */
static size_t body_size(const lobe_model *m) {
  size_t n = 16;
  for (int k = 0; k < m->nparams; k++)
    n += 12 * rt_param_numel(&m->params[k]);
  for (int s = 0; s < m->nsources; s++)
    n += 16 * (size_t)m->sources[s].channels;
  for (int k = 0; k < m->nobservations; k++)
    n += 8 * rt_obs_stat_count(&m->observations[k]);
  return n;
}

/* A poisson source keeps raw counts (mean 0, std 1): other statistics mean
 * the checkpoint was trained with the source standardised, as mse. */
static int check_scale(Reader *r, const lobe_source *s, const double *mean, const double *std) {
  if (s->loss_kind != LOBE_LOSS_POISSON)
    return RT_OK;
  for (int c = 0; c < s->channels; c++)
    if (mean[c] != 0 || std[c] != 1)
      return mismatch(r, "source '%s' is standardised there (an mse loss), raw counts here "
                      "(poisson)", s->name);
  return RT_OK;
}

static int read_body(Reader *r, RtState *st) {
  const lobe_model *m = st->model;
  uint64_t step, seed;
  if (r->len - r->pos != body_size(m) || r_int(r, 8, &step) != 0 || r_int(r, 8, &seed) != 0)
    return corrupt(r, "its size does not match its parameters");
  if (step > INT64_MAX / 2)
    return corrupt(r, "step out of range");
  st->step = (int64_t)step;
  st->seed = seed;
  for (int k = 0; k < m->nparams; k++) {
    r_floats(r, st->params.value[k], st->params.numel[k]);
    r_floats(r, st->params.m[k], st->params.numel[k]);
    r_floats(r, st->params.v[k], st->params.numel[k]);
  }
  for (int s = 0; s < m->nsources; s++) {
    r_doubles(r, st->mean[s], (size_t)m->sources[s].channels);
    r_doubles(r, st->std[s], (size_t)m->sources[s].channels);
    if (check_scale(r, &m->sources[s], st->mean[s], st->std[s]) != RT_OK)
      return RT_FAIL;
  }
  for (int k = 0; k < m->nobservations; k++)
    r_doubles(r, st->obs_stat[k], rt_obs_stat_count(&m->observations[k]));
  return RT_OK;
}

static int parse(Reader *r, RtState *st) {
  uint64_t version, stored;
  if (r->len < sizeof ckpt_magic + 4 + 8 || memcmp(r->p, ckpt_magic, sizeof ckpt_magic) != 0)
    return corrupt(r, "not a lobe checkpoint (bad magic)");
  r->pos = sizeof ckpt_magic;
  version = le_load(r->p + r->pos, 4);
  r->pos += 4;
  if (version != CKPT_VERSION) {
    rt_error("checkpoint %s has format version %d, this runtime reads version %d (train "
             "again without --resume, or use the runtime that wrote it)", r->path,
             (int)version, CKPT_VERSION);
    return RT_FAIL;
  }
  stored = le_load(r->p + r->len - 8, 8);
  if (fnv1a(fnv_basis, r->p, r->len - 8) != stored)
    return corrupt(r, "checksum mismatch (damaged or truncated file)");
  r->len -= 8;
  if (check_params(r, st->model) != RT_OK || check_sources(r, st->model) != RT_OK ||
      check_observations(r, st->model) != RT_OK)
    return RT_FAIL;
  return read_body(r, st);
}

/* Reads the whole file: checkpoints are as large as the parameters, thrice. */
static unsigned char *slurp(FILE *f, const char *path, size_t *len) {
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    rt_error("checkpoint %s is not a regular file", path);
    return NULL;
  }
  unsigned char *data = malloc(sb.st_size ? (size_t)sb.st_size : 1);
  if (!data) {
    rt_error("out of memory reading checkpoint %s", path);
    return NULL;
  }
  *len = fread(data, 1, (size_t)sb.st_size, f);
  if (*len != (size_t)sb.st_size) {
    rt_error("cannot read checkpoint %s: %s", path, strerror(errno));
    free(data);
    return NULL;
  }
  return data;
}

int rt_ckpt_load(RtState *st, const char *dir) {
  char path[CKPT_PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, ckpt_name);
  FILE *f = fopen(path, "rb");
  if (!f && (errno == ENOENT || errno == ENOTDIR))
    return RT_NOCKPT;
  if (!f) {
    rt_error("cannot open checkpoint %s: %s", path, strerror(errno));
    return RT_FAIL;
  }
  Reader r = {.path = path};
  unsigned char *data = slurp(f, path, &r.len);
  fclose(f);
  if (!data)
    return RT_FAIL;
  r.p = data;
  int rc = parse(&r, st);
  free(data);
  return rc;
}
