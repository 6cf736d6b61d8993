/*
 * fc_report.c — how well one HCP subject's functional connectivity (FC) is
 * predicted by its structural connectivity (SC), by the other subjects' mean
 * FC, and optionally by a model's predicted BOLD series. Each figure is a
 * Pearson r over the upper triangle (i < j) of the region x region matrices,
 * printed one per line as "NAME VALUE" (README.md, "FC baselines").
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

enum { EXIT_BAD = 2, MAX_TRAIN = 64, PATH_LEN = 4096, ERR_LEN = 1024, MIN_FRAMES = 3 };

typedef struct Options {
  const char *data, *test, *predicted;
  char *train_list;            /* owned copy of --train, cut at the commas */
  const char *train[MAX_TRAIN];
  int ntrain;
} Options;

static const char usage_text[] =
  "usage: fc_report --data DIR --test ID --train ID,ID... [--predicted FILE.csv]\n"
  "  Reads DIR/hcp/ID/TC_rsfMRI_REST1_LR.mat (tc: regions x frames) of every\n"
  "  subject and DIR/hcp/TEST/DTI_CM.mat (sc: regions x regions), and prints\n"
  "  Pearson r over the region pairs i<j with the test subject's FC:\n"
  "    sc_fc      r(SC, FC)\n"
  "    sc_log_fc  r(log(1+SC), FC)    the structural baseline\n"
  "    group_fc   r(mean FC of the train subjects, FC)\n"
  "    model_fc   r(FC of the predicted series, FC)    with --predicted: a CSV\n"
  "               with a header of one name per region and a row per frame\n";

static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("fc_report: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return -1;
}

/* ---- command line -------------------------------------------------------- */

static int split_train(Options *o, const char *list) {
  o->train_list = strdup(list);
  if (!o->train_list)
    return fail("out of memory");
  for (char *id = o->train_list, *next; id; id = next) {
    next = strchr(id, ',');
    if (next)
      *next++ = '\0';
    if (!*id)
      return fail("--train: expected subject ids separated by commas, found an empty id in "
                  "\"%s\"", list);
    if (o->ntrain == MAX_TRAIN)
      return fail("--train: expected at most %d subjects", MAX_TRAIN);
    if (o->test && strcmp(id, o->test) == 0)
      return fail("--train: the test subject %s must not be a train subject", id);
    o->train[o->ntrain++] = id;
  }
  return 0;
}

static int set_option(Options *o, const char *flag, const char *value) {
  if (strcmp(flag, "--data") == 0)
    o->data = value;
  else if (strcmp(flag, "--test") == 0)
    o->test = value;
  else if (strcmp(flag, "--predicted") == 0)
    o->predicted = value;
  else
    return fail("unknown option \"%s\"\n%s", flag, usage_text);
  return 0;
}

static int parse_args(Options *o, int argc, char **argv) {
  const char *train = NULL;
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 == argc)
      return fail("%s: expected a value after it, found none", argv[i]);
    if (strcmp(argv[i], "--train") == 0)
      train = argv[i + 1];
    else if (set_option(o, argv[i], argv[i + 1]) != 0)
      return -1;
  }
  if (!o->data || !o->test || !train)
    return fail("expected --data, --test and --train\n%s", usage_text);
  return split_train(o, train);
}

/* ---- reading ------------------------------------------------------------- */

static int subject_path(char *buf, const Options *o, const char *id, const char *file) {
  int len = snprintf(buf, PATH_LEN, "%s/hcp/%s/%s", o->data, id, file);
  return len < PATH_LEN ? 0 : fail("%s/hcp/%s/%s: path too long", o->data, id, file);
}

/* A table that fails its checks is not returned: free it. */
static int keep_if_valid(int rc, DataTable *t) {
  if (rc != 0)
    data_free(t);
  return rc;
}

/* A series: frames x regions, `regions` columns (0: any) and enough frames
 * for a correlation (the readers have refused values that are not finite). */
static int check_series(const char *path, const DataTable *t, int regions) {
  if (regions && t->cols != regions)
    return fail("%s: expected %d regions, found %d", path, regions, t->cols);
  if (t->rows < MIN_FRAMES)
    return fail("%s: expected at least %d frames, found %d", path, MIN_FRAMES, t->rows);
  return 0;
}

/* The file (named in path) holds tc as regions x frames; we want frames x
 * regions. */
static int read_tc(const Options *o, const char *id, int regions, char *path, DataTable *t) {
  char err[ERR_LEN];
  if (subject_path(path, o, id, "TC_rsfMRI_REST1_LR.mat") != 0)
    return -1;
  if (data_read_mat(path, "tc", DATA_MAT_TRANSPOSED, 0, t, err, sizeof err) != 0)
    return fail("%s", err);
  return keep_if_valid(check_series(path, t, regions), t);
}

static int check_sc(const char *path, const DataTable *t, int regions) {
  if (t->rows != regions || t->cols != regions)
    return fail("%s: sc: expected %d x %d (one row and column per region of tc), "
                "found %d x %d", path, regions, regions, t->rows, t->cols);
  for (long i = 0; i < (long)regions * regions; i++)
    if (t->values[i] < 0)
      return fail("%s: sc: expected weights >= 0, found %g at row %ld, column %ld",
                  path, t->values[i], i / regions + 1, i % regions + 1);
  return 0;
}

static int read_sc(const Options *o, int regions, DataTable *t) {
  char path[PATH_LEN], err[ERR_LEN];
  if (subject_path(path, o, o->test, "DTI_CM.mat") != 0)
    return -1;
  if (data_read_mat(path, "sc", DATA_MAT_AS_STORED, 0, t, err, sizeof err) != 0)
    return fail("%s", err);
  return keep_if_valid(check_sc(path, t, regions), t);
}

static int read_predicted(const char *path, int regions, DataTable *t) {
  char err[ERR_LEN];
  if (data_read_csv(path, 0, t, err, sizeof err) != 0)
    return fail("%s", err);
  return keep_if_valid(check_series(path, t, regions), t);
}

/* ---- statistics ---------------------------------------------------------- */

/* Centres column c of t in place of x and returns its sum of squares. */
static double centre_column(const DataTable *t, int c, double *x) {
  double mean = 0, ss = 0;
  for (int r = 0; r < t->rows; r++)
    mean += x[r] = t->values[(long)r * t->cols + c];
  mean /= t->rows;
  for (int r = 0; r < t->rows; r++) {
    x[r] -= mean;
    ss += x[r] * x[r];
  }
  return ss;
}

static double dot(const double *a, const double *b, long len) {
  double s = 0;
  for (long i = 0; i < len; i++)
    s += a[i] * b[i];
  return s;
}

/* fc (n x n) = the Pearson correlations between the columns of t. */
static int functional_connectivity(const char *path, const DataTable *t, double *fc) {
  int n = t->cols, rows = t->rows;
  double *x = malloc(sizeof *x * (size_t)n * rows), *ss = malloc(sizeof *ss * n);
  int rc = x && ss ? 0 : fail("out of memory");
  for (int c = 0; rc == 0 && c < n; c++) {
    ss[c] = centre_column(t, c, x + (long)c * rows);
    if (!(ss[c] > 0))
      rc = fail("%s: region %d (%s) is constant over all %d frames: no correlation", path,
                c + 1, t->names[c], rows);
  }
  for (int i = 0; rc == 0 && i < n; i++)
    for (int j = 0; j < n; j++)
      fc[(long)i * n + j] = dot(x + (long)i * rows, x + (long)j * rows, rows) /
                            sqrt(ss[i] * ss[j]);
  free(x);
  free(ss);
  return rc;
}

static double pearson(const double *a, const double *b, long len) {
  double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
  for (long i = 0; i < len; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= len;
  mb /= len;
  for (long i = 0; i < len; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return sab / sqrt(saa * sbb);
}

/* The n*(n-1)/2 entries above the diagonal, row by row. */
static void upper_triangle(const double *m, int n, double *v) {
  long k = 0;
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      v[k++] = m[(long)i * n + j];
}

/* ---- the figures ----------------------------------------------------------- */

enum { MAX_FIGURES = 4 };

typedef struct Work {
  int n;
  double *fc_upper;        /* the test subject's FC above the diagonal */
  double *matrix;          /* n x n scratch */
  double *scratch;         /* n*(n-1)/2 */
  const char *names[MAX_FIGURES];
  double figures[MAX_FIGURES];
  int nfigures;            /* printed only when all succeed: no partial report */
} Work;

/* Records r(m, the test FC) over the pairs i<j as figure `name`. */
static int figure(Work *w, const char *name, const double *m) {
  upper_triangle(m, w->n, w->scratch);
  double r = pearson(w->scratch, w->fc_upper, (long)w->n * (w->n - 1) / 2);
  if (!isfinite(r))
    return fail("%s: the matrix is constant over the region pairs: no correlation", name);
  w->names[w->nfigures] = name;
  w->figures[w->nfigures++] = r;
  return 0;
}

static int structural(const Options *o, Work *w) {
  DataTable sc;
  if (read_sc(o, w->n, &sc) != 0)
    return -1;
  long cells = (long)w->n * w->n;
  for (long i = 0; i < cells; i++)
    w->matrix[i] = sc.values[i];
  int rc = figure(w, "sc_fc", w->matrix);
  for (long i = 0; i < cells; i++)
    w->matrix[i] = log1p(w->matrix[i]);
  if (rc == 0)
    rc = figure(w, "sc_log_fc", w->matrix);
  data_free(&sc);
  return rc;
}

/* Adds subject id's FC to sum. */
static int add_subject_fc(const Options *o, const char *id, Work *w, double *sum) {
  DataTable tc;
  char path[PATH_LEN];
  if (read_tc(o, id, w->n, path, &tc) != 0)
    return -1;
  int rc = functional_connectivity(path, &tc, w->matrix);
  for (long i = 0; rc == 0 && i < (long)w->n * w->n; i++)
    sum[i] += w->matrix[i];
  data_free(&tc);
  return rc;
}

static int group(const Options *o, Work *w) {
  long cells = (long)w->n * w->n;
  double *sum = calloc((size_t)cells, sizeof *sum);
  if (!sum)
    return fail("out of memory");
  int rc = 0;
  for (int s = 0; rc == 0 && s < o->ntrain; s++)
    rc = add_subject_fc(o, o->train[s], w, sum);
  for (long i = 0; rc == 0 && i < cells; i++)
    sum[i] /= o->ntrain;
  if (rc == 0)
    rc = figure(w, "group_fc", sum);
  free(sum);
  return rc;
}

static int model(const Options *o, Work *w) {
  DataTable pred;
  if (read_predicted(o->predicted, w->n, &pred) != 0)
    return -1;
  int rc = functional_connectivity(o->predicted, &pred, w->matrix);
  if (rc == 0)
    rc = figure(w, "model_fc", w->matrix);
  data_free(&pred);
  return rc;
}

/* The test subject's FC, which sets the region count n. */
static int test_fc(const Options *o, Work *w) {
  DataTable tc;
  char path[PATH_LEN];
  if (read_tc(o, o->test, 0, path, &tc) != 0)
    return -1;
  if (tc.cols < 3) {
    data_free(&tc);
    return fail("%s: tc: expected at least 3 regions, found %d", path, tc.cols);
  }
  w->n = tc.cols;
  w->matrix = malloc(sizeof *w->matrix * (size_t)w->n * w->n);
  w->fc_upper = malloc(sizeof *w->fc_upper * (size_t)w->n * (w->n - 1) / 2);
  w->scratch = malloc(sizeof *w->scratch * (size_t)w->n * (w->n - 1) / 2);
  int rc = w->matrix && w->fc_upper && w->scratch ? functional_connectivity(path, &tc, w->matrix)
                                                  : fail("out of memory");
  if (rc == 0)
    upper_triangle(w->matrix, w->n, w->fc_upper);
  data_free(&tc);
  return rc;
}

static int run(const Options *o) {
  Work w = {0};
  int rc = test_fc(o, &w);
  if (rc == 0)
    rc = structural(o, &w);
  if (rc == 0)
    rc = group(o, &w);
  if (rc == 0 && o->predicted)
    rc = model(o, &w);
  for (int i = 0; rc == 0 && i < w.nfigures; i++)
    printf("%s %.4f\n", w.names[i], w.figures[i]);
  free(w.fc_upper);
  free(w.matrix);
  free(w.scratch);
  return rc;
}

int main(int argc, char **argv) {
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    fputs(usage_text, stdout);
    return 0;
  }
  Options o = {0};
  int rc = parse_args(&o, argc, argv) == 0 ? run(&o) : -1;
  free(o.train_list);
  return rc == 0 ? 0 : EXIT_BAD;
}
