/*
 * edf.c — EDF, EDF+ and BDF(+) recordings through EDFlib. A file holds
 * signals, each with a label, a physical unit and its own number of samples
 * per data record (its rate). We read a chosen set of signals that share one
 * rate, in physical units, as samples x signals. Annotation signals (EDF+
 * event lists) are skipped: EDFlib hides them from the signal list.
 */
#include <ctype.h>
#include <edflib.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data.h"
#include "rt.h"

enum { EDF_CHUNK = 1 << 16, EDF_LIST_MAX = 1200 };

typedef struct EdfReader {
  const char *path;
  struct edf_hdr_struct *hdr;     /* ~200 KB: on the heap */
  char (*labels)[20];             /* each signal's label, trimmed */
  int *sel;                       /* indices of the selected signals */
  int nsel;
  char *err;
  size_t errlen;
} EdfReader;

static int edf_fail(EdfReader *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  data_vfail(r->err, r->errlen, r->path, 0, fmt, ap);
  va_end(ap);
  return -1;
}

/* Copies s without leading and trailing blanks into buf[cap]. */
static void trim(char *buf, size_t cap, const char *s) {
  while (isspace((unsigned char)*s))
    s++;
  size_t len = strlen(s);
  while (len > 0 && isspace((unsigned char)s[len - 1]))
    len--;
  if (len >= cap)
    len = cap - 1;
  memcpy(buf, s, len);
  buf[len] = '\0';
}

/* ---- opening ----------------------------------------------------------- */

static const char *open_problem(int code) {
  switch (code) {
  case EDFLIB_MALLOC_ERROR: return "out of memory";
  case EDFLIB_NO_SUCH_FILE_OR_DIRECTORY: return "cannot open the file";
  case EDFLIB_FILE_CONTAINS_FORMAT_ERRORS:
    return "expected a valid EDF, EDF+ or BDF header whose record count matches the "
           "file size, found format errors (corrupt or truncated)";
  case EDFLIB_MAXFILES_REACHED: return "too many EDF files open at once";
  case EDFLIB_FILE_READ_ERROR:
    return "expected a complete EDF header, found the file ending early (truncated?)";
  case EDFLIB_FILE_ALREADY_OPENED: return "the file is already open";
  case EDFLIB_FILE_IS_DISCONTINUOUS:
    return "expected a continuous recording (EDF+C), found EDF+D (discontinuous)";
  default: return "EDFlib could not read the file";
  }
}

static int edf_open(EdfReader *r) {
  struct stat st;
  if (stat(r->path, &st) != 0)
    return edf_fail(r, "cannot open: %s", strerror(errno));
  if (!S_ISREG(st.st_mode))
    return edf_fail(r, "expected a regular file, found something else");
  r->hdr = calloc(1, sizeof *r->hdr);
  if (!r->hdr)
    return edf_fail(r, "out of memory");
  if (edfopen_file_readonly(r->path, r->hdr, EDFLIB_DO_NOT_READ_ANNOTATIONS) != 0) {
    int code = r->hdr->filetype;
    free(r->hdr);
    r->hdr = NULL;
    return edf_fail(r, "%s (EDFlib error %d)", open_problem(code), code);
  }
  if (r->hdr->edfsignals <= 0)
    return edf_fail(r, "expected at least one signal besides annotations, found %d",
                    r->hdr->edfsignals);
  if (r->hdr->datarecord_duration <= 0 || r->hdr->datarecords_in_file <= 0)
    return edf_fail(r, "expected data records of positive duration, found none");
  r->labels = malloc((size_t)r->hdr->edfsignals * sizeof *r->labels);
  if (!r->labels)
    return edf_fail(r, "out of memory");
  for (int i = 0; i < r->hdr->edfsignals; i++)
    trim(r->labels[i], sizeof r->labels[i], r->hdr->signalparam[i].label);
  return 0;
}

/* ---- labels ------------------------------------------------------------ */

/* The last blank-separated word: EDF+ labels are "TYPE SPEC" ("EEG O1"). */
static const char *last_word(const char *label) {
  const char *sp = strrchr(label, ' ');
  return sp ? sp + 1 : label;
}

/* "EEG Fp1, EEG Fp2, ..." into buf, shortened when long. */
static void list_labels(const EdfReader *r, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  for (int i = 0; i < r->hdr->edfsignals && n + 32 < cap; i++) {
    n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", r->labels[i]);
  }
  if (n + 32 >= cap)
    snprintf(buf + n, cap - n, ", ...");
}

static int missing_label(EdfReader *r, const char *want) {
  char q[200], list[EDF_LIST_MAX];
  data_quote(q, sizeof q, want, strlen(want));
  list_labels(r, list, sizeof list);
  return edf_fail(r, "expected a signal labelled %s, found none; the signals are: %s",
                  q, list);
}

/* Index of the one signal `want` names, preferring a whole-label match. */
static int find_signal(EdfReader *r, const char *want) {
  int whole = -1, word = -1, words = 0;
  for (int i = 0; i < r->hdr->edfsignals; i++) {
    if (strcasecmp(r->labels[i], want) == 0 && whole < 0)
      whole = i;
    else if (strcasecmp(last_word(r->labels[i]), want) == 0 && words++ == 0)
      word = i;
  }
  if (whole >= 0)
    return whole;
  if (words > 1) {
    char q[200];
    data_quote(q, sizeof q, want, strlen(want));
    return edf_fail(r, "expected one signal labelled %s, found %d signals ending in it; "
                    "give the whole label", q, words);
  }
  return word >= 0 ? word : missing_label(r, want);
}

/* ---- selection --------------------------------------------------------- */

static int select_labels(EdfReader *r, const char *const *labels, int nlabels) {
  for (int k = 0; k < nlabels; k++) {
    if (!labels[k])
      return edf_fail(r, "expected a signal label, found none");
    int sig = find_signal(r, labels[k]);
    if (sig < 0)
      return -1;
    for (int j = 0; j < r->nsel; j++)
      if (r->sel[j] == sig)
        return edf_fail(r, "expected each signal once, found \"%s\" selected twice",
                        r->labels[sig]);
    r->sel[r->nsel++] = sig;
  }
  return 0;
}

static int samples_per_record(const EdfReader *r, int sig) {
  return r->hdr->signalparam[sig].smp_in_datarecord;
}

/* Every signal whose rate is the most common one (ties: the earliest). */
static int select_default(EdfReader *r) {
  int best = 0, best_count = 0;
  for (int i = 0; i < r->hdr->edfsignals; i++) {
    int count = 0;
    for (int j = 0; j < r->hdr->edfsignals; j++)
      count += samples_per_record(r, j) == samples_per_record(r, i);
    if (count > best_count) {
      best = i;
      best_count = count;
    }
  }
  for (int i = 0; i < r->hdr->edfsignals; i++)
    if (samples_per_record(r, i) == samples_per_record(r, best))
      r->sel[r->nsel++] = i;
  return 0;
}

static double signal_rate(const EdfReader *r, int sig) {
  double seconds = r->hdr->datarecord_duration / (double)EDFLIB_TIME_DIMENSION;
  return samples_per_record(r, sig) / seconds;
}

/* One rate for all: the records share a duration, so equal counts suffice. */
static int check_rates(EdfReader *r) {
  int first = r->sel[0];
  for (int k = 1; k < r->nsel; k++) {
    int sig = r->sel[k];
    if (samples_per_record(r, sig) != samples_per_record(r, first))
      return edf_fail(r, "expected the selected signals to share one sampling rate, found "
                      "\"%s\" at %g Hz and \"%s\" at %g Hz",
                      r->labels[first], signal_rate(r, first),
                      r->labels[sig], signal_rate(r, sig));
  }
  if (samples_per_record(r, first) <= 0)
    return edf_fail(r, "expected samples in signal \"%s\", found none",
                    r->labels[first]);
  return 0;
}

/* ---- the table --------------------------------------------------------- */

static int table_shape(EdfReader *r, DataEdf *e) {
  long long rows = r->hdr->signalparam[r->sel[0]].smp_in_file;
  if (rows <= 0 || rows * r->nsel > INT32_MAX)
    return edf_fail(r, "expected between 1 and %d values, found %lld samples x %d signals",
                    INT32_MAX, rows, r->nsel);
  e->table.rows = (int)rows;
  e->table.cols = r->nsel;
  e->rate = signal_rate(r, r->sel[0]);
  return 0;
}

static int fill_names(EdfReader *r, DataEdf *e) {
  int cols = e->table.cols;
  e->table.names = calloc((size_t)cols, sizeof *e->table.names);
  e->units = calloc((size_t)cols, sizeof *e->units);
  if (!e->table.names || !e->units)
    return edf_fail(r, "out of memory");
  for (int k = 0; k < cols; k++) {
    char unit[12];
    trim(unit, sizeof unit, r->hdr->signalparam[r->sel[k]].physdimension);
    e->table.names[k] = strdup(r->labels[r->sel[k]]);
    e->units[k] = strdup(unit);
    if (!e->table.names[k] || !e->units[k])
      return edf_fail(r, "out of memory");
  }
  return 0;
}

static int read_column(EdfReader *r, DataTable *t, int col, double *buf) {
  int sig = r->sel[col];
  for (int row = 0; row < t->rows;) {
    int n = t->rows - row < EDF_CHUNK ? t->rows - row : EDF_CHUNK;
    if (edfread_physical_samples(r->hdr->handle, sig, n, buf) != n)
      return edf_fail(r, "signal \"%s\": truncated: expected %d samples, found fewer",
                      r->labels[sig], t->rows);
    for (int i = 0; i < n; i++, row++) {
      if (!isfinite(buf[i]) || fabs(buf[i]) > FLT_MAX)
        return edf_fail(r, "signal \"%s\", sample %d: expected a finite float32 value, "
                        "found %g", r->labels[sig], row, buf[i]);
      t->values[(size_t)row * (size_t)t->cols + (size_t)col] = (float)buf[i];
    }
  }
  return 0;
}

static int read_values(EdfReader *r, DataTable *t) {
  double *buf = malloc(EDF_CHUNK * sizeof *buf);
  t->values = malloc((size_t)t->rows * (size_t)t->cols * sizeof *t->values);
  int rc = 0;
  if (!buf || !t->values)
    rc = edf_fail(r, "out of memory for %d x %d values", t->rows, t->cols);
  for (int col = 0; col < t->cols && rc == 0; col++)
    rc = read_column(r, t, col, buf);
  free(buf);
  return rc;
}

static int read_edf(EdfReader *r, const char *const *labels, int nlabels, int header_only,
                    DataEdf *e) {
  if (edf_open(r) != 0)
    return -1;
  r->sel = malloc((size_t)(nlabels > 0 ? nlabels : r->hdr->edfsignals) * sizeof *r->sel);
  if (!r->sel)
    return edf_fail(r, "out of memory");
  if ((nlabels > 0 ? select_labels(r, labels, nlabels) : select_default(r)) != 0)
    return -1;
  if (check_rates(r) != 0 || table_shape(r, e) != 0 || fill_names(r, e) != 0)
    return -1;
  return header_only ? 0 : read_values(r, &e->table);
}

int data_read_edf(const char *path, const char *const *labels, int nlabels,
                  int header_only, DataEdf *out, char *err, size_t errlen) {
  EdfReader r = {.path = path, .err = err, .errlen = errlen};
  memset(out, 0, sizeof *out);
  if (nlabels < 0 || (nlabels > 0 && !labels)) {
    snprintf(err, errlen, "%s: expected a list of signal labels, found none", path);
    return -1;
  }
  int rc = read_edf(&r, labels, nlabels, header_only, out);
  if (r.hdr) {
    edfclose_file(r.hdr->handle);
    free(r.hdr);
  }
  free(r.labels);
  free(r.sel);
  if (rc != 0)
    data_edf_free(out);
  return rc;
}

void data_edf_free(DataEdf *e) {
  if (e->units)
    for (int i = 0; i < e->table.cols; i++)
      free(e->units[i]);
  free(e->units);
  data_free(&e->table);
  memset(e, 0, sizeof *e);
}
