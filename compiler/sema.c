/*
 * sema.c — semantic analysis: from the Program to a checked Model.
 *
 * Three passes over the declarations, so that order does not matter:
 *   1. declare: subjects, aunns and regions get their names (duplicates are
 *      errors, with a note at the first definition);
 *   2. resolve: aunn items, the aunn of each region, data sources;
 *   3. finish: the loss, the train settings, warnings.
 * Every error names what was expected and, for a misspelt name, the closest
 * known one. Sema goes on after an error but never reports the same mistake
 * twice: an unknown aunn is reported where it is named, not again for each
 * region using it; expressions the parser already reported are skipped.
 */
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "front.h"

enum {
  MAX_SIZE = 1 << 16,              /* widths, embedding sizes, channels */
  MAX_BANDS = 4096,
  MAX_BITS = 24,                   /* f32 holds sample indices exactly below 2^24 */
  MAX_BATCH = 1 << 20,
  MAX_SUGGEST_CANDIDATES = 20000,  /* more names than this: no "did you mean" */
  MAX_SUGGEST_ERRORS = 200         /* after this many errors: none either */
};

#define MAX_EXACT_INT 9007199254740992.0 /* 2^53: integers a double holds exactly */

/* ---- name tables ------------------------------------------------------------ */

/* Name -> index into one of the Model's arrays, and where it was defined.
 * Keys are the Model's strings. */
typedef struct Entry {
  const char *key;
  int value;
  SrcPos pos;
} Entry;

typedef struct NameTable {
  Entry *slots;
  int cap, n;
} NameTable;

static uint32_t hash_name(const char *s, int len) {
  uint32_t h = 2166136261u;
  for (int i = 0; i < len; i++)
    h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

static Entry *table_slot(const NameTable *t, const char *s, int len) {
  uint32_t mask = (uint32_t)t->cap - 1, i = hash_name(s, len) & mask;
  while (t->slots[i].key &&
         !(strncmp(t->slots[i].key, s, len) == 0 && t->slots[i].key[len] == 0))
    i = (i + 1) & mask;
  return &t->slots[i];
}

/* The entry for a name, or NULL. */
static const Entry *table_find(const NameTable *t, const char *s, int len) {
  if (t->cap == 0)
    return NULL;
  const Entry *e = table_slot(t, s, len);
  return e->key ? e : NULL;
}

static void table_put(NameTable *t, Entry entry) {
  if (2 * (t->n + 1) > t->cap) {
    NameTable bigger = {calloc(t->cap ? 2 * t->cap : 16, sizeof(Entry)),
                        t->cap ? 2 * t->cap : 16, 0};
    for (int i = 0; i < t->cap; i++)
      if (t->slots[i].key)
        table_put(&bigger, t->slots[i]);
    free(t->slots);
    *t = bigger;
  }
  *table_slot(t, entry.key, (int)strlen(entry.key)) = entry;
  t->n++;
}

/* ---- state ---------------------------------------------------------------------- */

typedef struct Sema {
  Diag *d;
  const Program *prog;
  Model *m;
  NameTable aunns, regions, subjects, sources;
  const Decl **aunn_decls;         /* per Model.aunns */
  const Decl **region_decls;       /* per Model.regions */
  bool *region_has_data;           /* per Model.regions: named by a data statement */
  int *first_source;               /* per Model.regions: its first source, or -1 */
  int *next_source;                /* per Model.sources: the next of its region, or -1 */
  int *term_of_source;             /* per Model.sources: its loss term, or -1 */
  const Decl *loss, *train;
  char *folder;                    /* the spec's folder, absolute */
  int errors_before;
} Sema;

/* Appends one zeroed element to an array of n, doubling its capacity. */
static void *grow(void *array, int n, size_t size) {
  if (n == 0 || (n & (n - 1)) == 0)
    array = realloc(array, (size_t)(n ? 2 * n : 1) * size);
  memset((char *)array + (size_t)n * size, 0, size);
  return array;
}

static char *name_dup(Name n) {
  return strndup(n.start, n.len);
}

static bool name_is(Name n, const char *word) {
  return (int)strlen(word) == n.len && strncmp(n.start, word, n.len) == 0;
}

static int word_index(Name n, const char *const *words, int count) {
  for (int i = 0; i < count; i++)
    if (name_is(n, words[i]))
      return i;
  return -1;
}

/* ---- did you mean --------------------------------------------------------- */

/* The candidate closest to `name` if it is a likely typo (a few edits, and
 * not all of it replaced), else NULL. The candidates are the first field
 * (char *) of count structs, stride apart. */
static const char *closest(const Sema *s, Name name, const void *base, int count,
                           size_t stride) {
  if (count > MAX_SUGGEST_CANDIDATES ||
      diag_errors(s->d) - s->errors_before > MAX_SUGGEST_ERRORS)
    return NULL;
  int limit = name.len / 3 > 1 ? name.len / 3 : 1;
  const char *best = NULL;
  for (int i = 0; i < count; i++) {
    const char *cand = *(const char *const *)((const char *)base + i * stride);
    int dist = ast_edit_distance(name.start, name.len, cand, limit);
    if (dist <= limit && dist < name.len && dist < (int)strlen(cand)) {
      best = cand;
      limit = dist - 1;            /* keep the first of the closest */
      if (limit < 0)
        break;
    }
  }
  return best;
}

enum { MAX_LISTED = 8 };            /* known names listed when none is close */

/* "a, b, c" from the first field (char *) of count structs, stride apart. */
static void list_names(char *buf, size_t size, const void *base, int count,
                       size_t stride) {
  buf[0] = 0;
  for (int i = 0; i < count; i++) {
    const char *name = *(const char *const *)((const char *)base + i * stride);
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "%s%s", i ? ", " : "", name);
  }
}

/* " (known: a, b)", "; did you mean 'a'?" or nothing, after "unknown X 'y'". */
static void unknown_hint(const Sema *s, char *buf, size_t size, Name name,
                         const void *base, int count, size_t stride) {
  const char *close = closest(s, name, base, count, stride);
  char known[256];
  buf[0] = 0;
  if (close)
    snprintf(buf, size, "; did you mean '%s'?", close);
  else if (count > 0 && count <= MAX_LISTED) {
    list_names(known, sizeof known, base, count, stride);
    snprintf(buf, size, " (known: %s)", known);
  }
}

static void report_unknown(Sema *s, DiagCode code, Name name, const char *what,
                           const void *base, int count, size_t stride) {
  char hint[300];
  unknown_hint(s, hint, sizeof hint, name, base, count, stride);
  diag_error(s->d, code, name.pos, "unknown %s '%.*s'%s", what, name.len,
             name.start, hint);
}

/* An index into words, or -1 after reporting "unknown WHAT". */
static int lookup_word(Sema *s, DiagCode code, Name name, const char *what,
                       const char *const *words, int count) {
  int i = word_index(name, words, count);
  if (i < 0)
    report_unknown(s, code, name, what, words, count, sizeof *words);
  return i;
}

static void report_duplicate(Sema *s, SrcPos again, SrcPos first, const char *what,
                             Name name) {
  diag_error(s->d, DIAG_DUPLICATE, again, "%s '%.*s' is already defined", what,
             name.len, name.start);
  diag_note(s->d, first, "first defined here");
}

/* ---- constant expressions and units ------------------------------------------------ */

typedef enum { DIM_NONE, DIM_TIME, DIM_RATE, DIM_DISTANCE } Dim;

typedef struct Quantity {
  double value;                    /* in seconds, Hz or metres */
  Dim dim;
} Quantity;

typedef struct Unit {
  const char *name;                /* first: see closest() */
  Dim dim;
  double scale;
} Unit;

static const Unit units[] = {
  {"s", DIM_TIME, 1}, {"ms", DIM_TIME, 1e-3}, {"us", DIM_TIME, 1e-6},
  {"Hz", DIM_RATE, 1}, {"kHz", DIM_RATE, 1e3},
  {"mm", DIM_DISTANCE, 1e-3}, {"cm", DIM_DISTANCE, 1e-2}, {"m", DIM_DISTANCE, 1},
};
enum { NUNITS = sizeof units / sizeof *units };

static const char *const dim_names[] = {"a plain number", "a time", "a rate",
                                        "a distance"};
static const char *const dim_units[] = {"", "s, ms or us", "Hz or kHz", "mm, cm or m"};
static const char *const dim_examples[] = {"", "10ms", "100Hz", "5mm"};

/* What an expression is, for "expected X, found Y". */
static void describe(char *buf, size_t size, const Expr *e) {
  switch (e->kind) {
  case EXPR_STRING: snprintf(buf, size, "a string"); break;
  case EXPR_NAME: snprintf(buf, size, "the name '%.*s'", e->name.len, e->name.start); break;
  case EXPR_CALL: snprintf(buf, size, "a call to '%.*s'", e->name.len, e->name.start); break;
  case EXPR_LIST: snprintf(buf, size, "a list"); break;
  case EXPR_NUMBER: snprintf(buf, size, "the number %g%.*s", e->number, e->unit.len,
                             e->unit.start); break;
  default: snprintf(buf, size, "an expression"); break;
  }
}

static void report_expected(Sema *s, const Expr *e, const char *expected) {
  char found[128];
  describe(found, sizeof found, e);
  diag_error(s->d, DIAG_WRONG_KIND, e->pos, "expected %s, found %s", expected, found);
}

static bool number_quantity(Sema *s, const Expr *e, Quantity *q) {
  *q = (Quantity){e->number, DIM_NONE};
  if (e->unit.len == 0)
    return true;
  for (int i = 0; i < NUNITS; i++)
    if (name_is(e->unit, units[i].name)) {
      *q = (Quantity){e->number * units[i].scale, units[i].dim};
      if (isfinite(q->value))
        return true;
      diag_error(s->d, DIAG_NUMBER_RANGE, e->pos, "value out of range");
      return false;
    }
  report_unknown(s, DIAG_UNKNOWN_UNIT, e->unit, "unit", units, NUNITS, sizeof *units);
  return false;
}

static bool eval(Sema *s, const Expr *e, Quantity *q);

/* Units of a / b: like / like is plain, 1 / time is a rate and back. */
static bool divide(Quantity a, Quantity b, Quantity *q) {
  q->value = a.value / b.value;
  if (b.dim == DIM_NONE || a.dim == b.dim)
    q->dim = b.dim == DIM_NONE ? a.dim : DIM_NONE;
  else if (a.dim == DIM_NONE && (b.dim == DIM_TIME || b.dim == DIM_RATE))
    q->dim = b.dim == DIM_TIME ? DIM_RATE : DIM_TIME;
  else
    return false;
  return true;
}

static bool combine(char op, Quantity a, Quantity b, Quantity *q) {
  switch (op) {
  case '+': case '-':
    *q = (Quantity){op == '+' ? a.value + b.value : a.value - b.value, a.dim};
    return a.dim == b.dim;
  case '*':
    *q = (Quantity){a.value * b.value, a.dim == DIM_NONE ? b.dim : a.dim};
    return a.dim == DIM_NONE || b.dim == DIM_NONE;
  default:
    return divide(a, b, q);
  }
}

static void report_mismatch(Sema *s, const Expr *e, Dim a, Dim b) {
  if (e->op == '+')
    diag_error(s->d, DIAG_UNIT_MISMATCH, e->pos, "cannot add %s and %s", dim_names[a],
               dim_names[b]);
  else if (e->op == '-')
    diag_error(s->d, DIAG_UNIT_MISMATCH, e->pos, "cannot subtract %s from %s",
               dim_names[b], dim_names[a]);
  else
    diag_error(s->d, DIAG_UNIT_MISMATCH, e->pos, "cannot %s %s by %s",
               e->op == '*' ? "multiply" : "divide", dim_names[a], dim_names[b]);
}

static bool eval_binary(Sema *s, const Expr *e, Quantity *q) {
  if (e->op == 'x') {
    diag_error(s->d, DIAG_MISPLACED_X, e->pos,
               "'x' only counts layers, as in 'mlp 64 x 2'");
    return false;
  }
  Quantity a, b;
  if (!eval(s, e->lhs, &a) || !eval(s, e->rhs, &b))
    return false;
  if (e->op == '/' && b.value == 0) {
    diag_error(s->d, DIAG_DIVISION_BY_ZERO, e->rhs->pos, "division by zero");
    return false;
  }
  if (!combine(e->op, a, b, q)) {
    report_mismatch(s, e, a.dim, b.dim);
    return false;
  }
  if (!isfinite(q->value)) {
    diag_error(s->d, DIAG_NUMBER_RANGE, e->pos, "value out of range");
    return false;
  }
  return true;
}

/* Evaluates a constant; false after reporting why not (or quietly for what the
 * parser has reported). */
static bool eval(Sema *s, const Expr *e, Quantity *q) {
  switch (e->kind) {
  case EXPR_ERROR: return false;
  case EXPR_NUMBER: return number_quantity(s, e, q);
  case EXPR_NEG:
    if (!eval(s, e->lhs, q))
      return false;
    q->value = -q->value;
    return true;
  case EXPR_BINARY: return eval_binary(s, e, q);
  default: report_expected(s, e, "a number"); return false;
  }
}

/* A value of dimension `dim` (converted to seconds, Hz or metres). */
static bool want_quantity(Sema *s, const Expr *e, Dim dim, const char *what, double *out) {
  Quantity q;
  if (!eval(s, e, &q))
    return false;
  if (q.dim == dim) {
    *out = q.value;
    return true;
  }
  if (q.dim == DIM_NONE)
    diag_error(s->d, DIAG_WRONG_UNIT, e->pos, "'%s' needs a unit (%s), as in %s", what,
               dim_units[dim], dim_examples[dim]);
  else if (dim == DIM_NONE)
    diag_error(s->d, DIAG_WRONG_UNIT, e->pos, "'%s' is a plain number, not %s", what,
               dim_names[q.dim]);
  else
    diag_error(s->d, DIAG_WRONG_UNIT, e->pos, "'%s' must be %s (%s), not %s", what,
               dim_names[dim], dim_units[dim], dim_names[q.dim]);
  return false;
}

/* A positive value of dimension `dim`. */
static bool want_positive(Sema *s, const Expr *e, Dim dim, const char *what, double *out) {
  if (!want_quantity(s, e, dim, what, out))
    return false;
  if (*out > 0)
    return true;
  diag_error(s->d, DIAG_OUT_OF_BOUNDS, e->pos, "'%s' must be positive", what);
  return false;
}

/* A whole number in [lo, hi]. */
static bool want_integer(Sema *s, const Expr *e, const char *what, double lo, double hi,
                         double *out) {
  if (!want_quantity(s, e, DIM_NONE, what, out))
    return false;
  if (*out != floor(*out)) {
    diag_error(s->d, DIAG_NOT_WHOLE, e->pos, "'%s' must be a whole number, not %g", what,
               *out);
    return false;
  }
  if (*out >= lo && *out <= hi)
    return true;
  diag_error(s->d, DIAG_OUT_OF_BOUNDS, e->pos, "'%s' must be between %.0f and %.0f, not %g",
             what, lo, hi, *out);
  return false;
}

static void set_int(Sema *s, const Expr *e, const char *what, double lo, double hi,
                    int *field) {
  double v;
  if (want_integer(s, e, what, lo, hi, &v))
    *field = (int)v;
}

/* ---- calls with options ------------------------------------------------------- */

/* `name(args)` or a bare `name` (no arguments); false for anything else. */
static bool as_call(const Expr *e, Name *name, Args *args) {
  if (e->kind != EXPR_CALL && e->kind != EXPR_NAME)
    return false;
  *name = e->name;
  *args = e->kind == EXPR_CALL ? e->args : (Args){NULL, 0};
  return true;
}

/* An argument without a name: the next positional option, if any is left. */
static bool bind_positional(Sema *s, Name callee, const Arg *arg, int index,
                            const char *const *options, int noptions, int npositional,
                            const Arg **out) {
  char names[256];
  if (index < npositional) {
    out[index] = arg;
    return true;
  }
  if (npositional > 0)
    diag_error(s->d, DIAG_UNNAMED_ARGUMENT, arg->value->pos,
               "too many unnamed arguments to '%.*s' (it takes %d)", callee.len,
               callee.start, npositional);
  else {
    list_names(names, sizeof names, options, noptions, sizeof *options);
    diag_error(s->d, DIAG_UNNAMED_ARGUMENT, arg->value->pos,
               "'%.*s' takes named options only (%s), as in %s: VALUE", callee.len,
               callee.start, names, options[0]);
  }
  return false;
}

static void report_unknown_option(Sema *s, Name callee, const Arg *arg,
                                  const char *const *options, int noptions) {
  char hint[300];
  unknown_hint(s, hint, sizeof hint, arg->name, options, noptions, sizeof *options);
  diag_error(s->d, DIAG_UNKNOWN_OPTION, arg->name.pos, "'%.*s' has no option '%.*s'%s",
             callee.len, callee.start, arg->name.len, arg->name.start, hint);
}

/* Matches a call's arguments to its options: out[i] is the argument for
 * options[i] or NULL. The first npositional options may also be given without
 * their names, in order. Reports unknown, misplaced and repeated options;
 * returns false if there was an unknown or misplaced one (then a missing
 * option is likely that one, and not worth a second error). */
static bool bind_options(Sema *s, Name callee, Args args, const char *const *options,
                         int noptions, int npositional, const Arg **out) {
  memset(out, 0, noptions * sizeof *out);
  int positional = 0;
  bool all_placed = true;
  for (int i = 0; i < args.n; i++) {
    const Arg *arg = &args.v[i];
    int k = arg->name.len ? word_index(arg->name, options, noptions) : -1;
    if (arg->name.len == 0)
      all_placed &= bind_positional(s, callee, arg, positional++, options, noptions,
                                    npositional, out);
    else if (k < 0) {
      report_unknown_option(s, callee, arg, options, noptions);
      all_placed = false;
    } else if (out[k]) {
      diag_error(s->d, DIAG_GIVEN_TWICE, arg->name.pos, "option '%s' is given twice",
                 options[k]);
      diag_note(s->d, out[k]->name.len ? out[k]->name.pos : out[k]->value->pos,
                "first given here");
    } else
      out[k] = arg;
  }
  return all_placed;
}

static void report_missing(Sema *s, Name callee, const char *option, const char *example) {
  diag_error(s->d, DIAG_MISSING_OPTION, callee.pos, "'%.*s' needs %s, as in %s",
             callee.len, callee.start, option, example);
}

/* ---- aunn items ----------------------------------------------------------------- */

/* In the order of Activation and ConditionKind. */
static const char *const activations[] = {"silu", "relu", "tanh", "sigmoid", "sine",
                                          "gelu"};
static const char *const conditions[] = {"concat", "film"};
static const char *const fourier_options[] = {"bands", "max_period", "min_period"};
static const char *const binary_options[] = {"bits", "rate"};
static const char *const condition_options[] = {"module", "subject"};

/* The one value of an item that takes one, or NULL after reporting. */
static const Expr *single_value(Sema *s, const Item *it, const char *example) {
  if (it->values.n == 1)
    return it->values.v[0].value;
  diag_error(s->d, DIAG_TOO_MANY_VALUES, it->values.v[1].value->pos,
             "'%.*s' takes one value, as in %s", it->key.len, it->key.start, example);
  return NULL;
}

static void check_fourier(Sema *s, Name callee, Args args, AunnDef *a) {
  const Arg *opt[3];
  bool known = bind_options(s, callee, args, fourier_options, 3, 0, opt);
  if (opt[0])
    set_int(s, opt[0]->value, "bands", 1, MAX_BANDS, &a->bands);
  else if (known)
    report_missing(s, callee, "'bands'", "fourier(bands: 16, max_period: 10s)");
  if (opt[1])
    want_positive(s, opt[1]->value, DIM_TIME, "max_period", &a->max_period);
  else if (known)
    report_missing(s, callee, "'max_period'", "fourier(bands: 16, max_period: 10s)");
  if (opt[2] && want_quantity(s, opt[2]->value, DIM_TIME, "min_period", &a->min_period)) {
    if (a->min_period < 0)
      diag_error(s->d, DIAG_OUT_OF_BOUNDS, opt[2]->value->pos,
                 "'min_period' must not be negative");
    else if (opt[1] && a->max_period > 0 && a->min_period >= a->max_period)
      diag_error(s->d, DIAG_OUT_OF_BOUNDS, opt[2]->value->pos,
                 "'min_period' must be shorter than 'max_period'");
  }
}

/* binary(bits: N, rate: R): the bits of the sample index round(t * R). */
static void check_binary(Sema *s, Name callee, Args args, AunnDef *a) {
  const Arg *opt[2];
  bool known = bind_options(s, callee, args, binary_options, 2, 0, opt);
  if (opt[0])
    set_int(s, opt[0]->value, "bits", 1, MAX_BITS, &a->bits);
  else if (known)
    report_missing(s, callee, "'bits'", "binary(bits: 16, rate: 100Hz)");
  if (opt[1])
    want_positive(s, opt[1]->value, DIM_RATE, "rate", &a->rate);
}

/* In the order of EncodingKind. */
static void check_index(Sema *s, const Item *it, AunnDef *a) {
  static const char *const encodings[] = {"fourier", "binary"};
  const Expr *e = single_value(s, it, "index fourier(bands: 16, max_period: 10s)");
  Name callee;
  Args args;
  if (!e)
    return;
  if (!as_call(e, &callee, &args)) {
    report_expected(s, e, "an encoding, as in fourier(bands: 16, max_period: 10s)");
    return;
  }
  int k = lookup_word(s, DIAG_UNKNOWN_ENCODING, callee, "encoding", encodings, 2);
  if (k < 0)
    return;
  a->encoding = (EncodingKind)k;
  if (k == ENC_FOURIER)
    check_fourier(s, callee, args, a);
  else
    check_binary(s, callee, args, a);
}

/* concat(module: M, subject: S) or film(...) with the same options. */
static void check_condition(Sema *s, const Item *it, AunnDef *a) {
  const Expr *e = single_value(s, it, "condition concat(module: 8, subject: 4)");
  Name callee;
  Args args;
  const Arg *opt[2];
  if (!e)
    return;
  if (!as_call(e, &callee, &args)) {
    report_expected(s, e, "a conditioning, as in concat(module: 8, subject: 4)");
    return;
  }
  int k = lookup_word(s, DIAG_UNKNOWN_CONDITIONING, callee, "conditioning", conditions, 2);
  if (k < 0)
    return;
  a->condition = (ConditionKind)k;
  bind_options(s, callee, args, condition_options, 2, 0, opt);
  if (opt[0])
    set_int(s, opt[0]->value, "module", 1, MAX_SIZE, &a->module_dim);
  if (opt[1])
    set_int(s, opt[1]->value, "subject", 1, MAX_SIZE, &a->subject_dim);
}

/* `W x D`, `[W1, W2, ...]` or `W`. */
static void check_layers(Sema *s, const Expr *e, AunnDef *a) {
  double width, depth;
  if (e->kind == EXPR_BINARY && e->op == 'x') {
    if (!want_integer(s, e->lhs, "layer width", 1, MAX_SIZE, &width) ||
        !want_integer(s, e->rhs, "layer count", 1, MODEL_MAX_LAYERS, &depth))
      return;
    a->nhidden = (int)depth;
    for (int l = 0; l < a->nhidden; l++)
      a->hidden[l] = (int)width;
  } else if (e->kind == EXPR_LIST) {
    if (e->args.n < 1 || e->args.n > MODEL_MAX_LAYERS) {
      diag_error(s->d, DIAG_OUT_OF_BOUNDS, e->pos, "an mlp has 1 to %d layers, not %d",
                 MODEL_MAX_LAYERS, e->args.n);
      return;
    }
    a->nhidden = e->args.n;
    for (int l = 0; l < e->args.n; l++)
      set_int(s, e->args.v[l].value, "layer width", 1, MAX_SIZE, &a->hidden[l]);
  } else if (want_integer(s, e, "layer width", 1, MAX_SIZE, &width)) {
    a->nhidden = 1;
    a->hidden[0] = (int)width;
  }
}

static void check_mlp(Sema *s, const Item *it, AunnDef *a) {
  if (it->values.n > 2) {
    diag_error(s->d, DIAG_TOO_MANY_VALUES, it->values.v[2].value->pos,
               "'mlp' takes sizes and an activation, as in mlp 64 x 2, silu");
    return;
  }
  check_layers(s, it->values.v[0].value, a);
  if (it->values.n < 2)
    return;
  const Expr *act = it->values.v[1].value;
  if (act->kind != EXPR_NAME) {
    report_expected(s, act, "an activation (silu, relu, tanh, sigmoid, sine or gelu)");
    return;
  }
  int k = lookup_word(s, DIAG_UNKNOWN_ACTIVATION, act->name, "activation", activations, 6);
  if (k >= 0)
    a->activation = (Activation)k;
}

static void check_latent(Sema *s, const Item *it, AunnDef *a) {
  const Expr *e = single_value(s, it, "latent 8");
  if (e)
    set_int(s, e, "latent", 0, MAX_SIZE, &a->latent);
}

/* Which of words it->key is, or -1 after reporting a key that is unknown or
 * given twice; seen[] keeps the first item of each key. */
static int first_item(Sema *s, const Item *it, DiagCode unknown, const char *what,
                      const char *const *words, int count, const Item **seen) {
  int k = lookup_word(s, unknown, it->key, what, words, count);
  if (k < 0)
    return -1;
  if (seen[k]) {
    diag_error(s->d, DIAG_GIVEN_TWICE, it->key.pos, "'%s' is given twice", words[k]);
    diag_note(s->d, seen[k]->key.pos, "first given here");
    return -1;
  }
  seen[k] = it;
  return k;
}

static void check_aunn(Sema *s, const Decl *d, AunnDef *a) {
  static const char *const items[] = {"index", "condition", "mlp", "latent"};
  static void (*const checks[])(Sema *, const Item *, AunnDef *) = {
      check_index, check_condition, check_mlp, check_latent};
  const Item *seen[4] = {NULL};
  for (int i = 0; i < d->nitems; i++) {
    const Item *it = &d->items[i];
    int k = first_item(s, it, DIAG_UNKNOWN_ITEM, "aunn item", items, 4, seen);
    if (k >= 0)
      checks[k](s, it, a);
  }
  if (!seen[0])
    diag_error(s->d, DIAG_MISSING_ITEM, d->name.pos,
               "aunn '%s' needs an index, as in: index fourier(bands: 16, max_period: 10s)",
               a->name);
  if (!seen[2])
    diag_error(s->d, DIAG_MISSING_ITEM, d->name.pos,
               "aunn '%s' needs an mlp, as in: mlp 64 x 2, silu", a->name);
}

static void aunn_defaults(AunnDef *a) {
  a->encoding = ENC_FOURIER;
  a->condition = COND_CONCAT;
  a->module_dim = 8;
  a->subject_dim = 4;
  a->activation = ACT_SILU;
}

/* ---- declarations --------------------------------------------------------------- */

static int lookup_name(Sema *s, DiagCode code, const NameTable *t, Name n,
                       const char *what, const void *base, int count, size_t stride) {
  const Entry *e = table_find(t, n.start, n.len);
  if (!e)
    report_unknown(s, code, n, what, base, count, stride);
  return e ? e->value : -1;
}

static int lookup_region(Sema *s, Name n) {
  return lookup_name(s, DIAG_UNKNOWN_REGION, &s->regions, n, "region", s->m->regions,
                     s->m->nregions, sizeof *s->m->regions);
}

static int lookup_subject(Sema *s, Name n) {
  return lookup_name(s, DIAG_UNKNOWN_SUBJECT, &s->subjects, n, "subject", s->m->subjects,
                     s->m->nsubjects, sizeof *s->m->subjects);
}

static void check_import(Sema *s, const Decl *d) {
  static const char *const modules[] = {"std.encodings", "std.observe"};
  Name n = {d->module, (int)strlen(d->module), d->module_pos};
  lookup_word(s, DIAG_UNKNOWN_MODULE, n, "module", modules, 2);
}

/* Adds n -> index to the table and returns the copy of n it keys on (the
 * caller's to own); NULL, after reporting, if n is there already. */
static char *define(Sema *s, NameTable *t, const char *what, Name n, int index) {
  const Entry *prev = table_find(t, n.start, n.len);
  if (prev) {
    report_duplicate(s, n.pos, prev->pos, what, n);
    return NULL;
  }
  char *key = name_dup(n);
  table_put(t, (Entry){key, index, n.pos});
  return key;
}

static void declare_subjects(Sema *s, const Decl *d) {
  Model *m = s->m;
  for (int i = 0; i < d->nnames; i++) {
    Name n = d->names[i];
    char *name = define(s, &s->subjects, "subject", n, m->nsubjects);
    if (!name)
      continue;
    m->subjects = grow(m->subjects, m->nsubjects, sizeof *m->subjects);
    m->subjects[m->nsubjects++] = (Subject){name, n.pos};
  }
}

static void declare_aunn(Sema *s, const Decl *d) {
  Model *m = s->m;
  char *name = define(s, &s->aunns, "aunn", d->name, m->naunns);
  if (!name)
    return;
  s->aunn_decls = grow(s->aunn_decls, m->naunns, sizeof *s->aunn_decls);
  s->aunn_decls[m->naunns] = d;
  m->aunns = grow(m->aunns, m->naunns, sizeof *m->aunns);
  AunnDef *a = &m->aunns[m->naunns++];
  a->name = name;
  a->pos = d->name.pos;
  aunn_defaults(a);
}

static void declare_regions(Sema *s, const Decl *d) {
  Model *m = s->m;
  for (int i = 0; i < d->nnames; i++) {
    Name n = d->names[i];
    char *name = define(s, &s->regions, "region", n, m->nregions);
    if (!name)
      continue;
    s->region_decls = grow(s->region_decls, m->nregions, sizeof *s->region_decls);
    s->region_decls[m->nregions] = d;
    m->regions = grow(m->regions, m->nregions, sizeof *m->regions);
    m->regions[m->nregions++] = (Region){name, n.pos, -1};
  }
}

/* Only one loss and one train statement. */
static void declare_once(Sema *s, const Decl *d, const Decl **slot, const char *what) {
  if (*slot) {
    diag_error(s->d, DIAG_REPEATED_STATEMENT, d->pos, "only one '%s' statement is allowed%s",
               what, d->kind == DECL_LOSS ? "; add terms with '+'" : "");
    diag_note(s->d, (*slot)->pos, "first given here");
  } else
    *slot = d;
}

static void declare(Sema *s, const Decl *d) {
  switch (d->kind) {
  case DECL_IMPORT: check_import(s, d); break;
  case DECL_SUBJECTS: declare_subjects(s, d); break;
  case DECL_AUNN: declare_aunn(s, d); break;
  case DECL_REGION: declare_regions(s, d); break;
  case DECL_LOSS: declare_once(s, d, &s->loss, "loss"); break;
  case DECL_TRAIN: declare_once(s, d, &s->train, "train"); break;
  case DECL_DATA: break;
  }
}

/* A region statement names the aunn of all its regions: resolve (and report)
 * it once. Regions of one statement are consecutive. */
static void resolve_region_aunns(Sema *s) {
  Model *m = s->m;
  const Decl *last = NULL;
  int aunn = -1;
  for (int r = 0; r < m->nregions; r++) {
    if (s->region_decls[r] != last) {
      last = s->region_decls[r];
      aunn = lookup_name(s, DIAG_UNKNOWN_AUNN, &s->aunns, last->ref, "aunn", m->aunns,
                         m->naunns, sizeof *m->aunns);
    }
    m->regions[r].aunn = aunn;
  }
}

/* ---- data sources --------------------------------------------------------------- */

static const char *const formats[] = {"csv", "npy"};
static const char *const source_options[] = {"path", "rate", "t0", "channels"};

/* The folder of the spec, absolute, to resolve data paths against. The
 * folder exists unless the spec was given as text (tests). */
static char *spec_folder(const char *spec_path) {
  char *copy = strdup(spec_path);
  const char *dir = dirname(copy);
  char *folder = realpath(dir, NULL);
  if (!folder) {
    char cwd[PATH_MAX];
    if (dir[0] != '/' && getcwd(cwd, sizeof cwd) && asprintf(&folder, "%s/%s", cwd, dir) < 0)
      folder = NULL;
    if (!folder)
      folder = strdup(dir);
  }
  free(copy);
  return folder;
}

static char *resolve_path(const Sema *s, const char *path) {
  char *full;
  size_t n = strlen(s->folder);
  if (path[0] == '/')
    return strdup(path);
  if (asprintf(&full, "%s%s%s", s->folder, n && s->folder[n - 1] == '/' ? "" : "/",
               path) < 0)
    return strdup(path);
  return full;
}

static void set_path(Sema *s, const Expr *e, Source *src) {
  if (e->kind == EXPR_ERROR)
    return;
  if (e->kind != EXPR_STRING) {
    report_expected(s, e, "a file path in double quotes");
    return;
  }
  if (!e->string[0]) {
    diag_error(s->d, DIAG_EMPTY_PATH, e->pos, "the file path is empty");
    return;
  }
  src->path = resolve_path(s, e->string);
  src->path_pos = e->pos;
}

static void check_source_call(Sema *s, const Expr *e, Source *src) {
  static const char *const example = "csv(\"v1.csv\", rate: 100Hz)";
  Name callee;
  Args args;
  const Arg *opt[4];
  if (!as_call(e, &callee, &args)) {
    report_expected(s, e, "a data source, as in csv(\"v1.csv\", rate: 100Hz)");
    return;
  }
  int k = lookup_word(s, DIAG_UNKNOWN_FORMAT, callee, "data format", formats, 2);
  if (k < 0)
    return;
  src->kind = k == 0 ? SRC_CSV : SRC_NPY;
  bool known = bind_options(s, callee, args, source_options, 4, 1, opt);
  if (opt[0])
    set_path(s, opt[0]->value, src);
  else if (known)
    report_missing(s, callee, "a file path", example);
  if (opt[1])
    want_positive(s, opt[1]->value, DIM_RATE, "rate", &src->rate);
  else if (known)
    report_missing(s, callee, "'rate'", example);
  if (opt[2])
    want_quantity(s, opt[2]->value, DIM_TIME, "t0", &src->t0);
  if (opt[3])
    set_int(s, opt[3]->value, "channels", 1, MAX_SIZE, &src->channels);
}

/* Defines the source "REGION.SUBJECT"; NULL (after reporting) if defined. */
static char *source_name(Sema *s, const Decl *d, int region, int subject) {
  char *name;
  if (asprintf(&name, "%s.%s", s->m->regions[region].name,
               s->m->subjects[subject].name) < 0)
    return NULL;
  const Entry *prev = table_find(&s->sources, name, (int)strlen(name));
  if (!prev) {
    table_put(&s->sources, (Entry){name, s->m->nsources, d->pos});
    return name;
  }
  diag_error(s->d, DIAG_DUPLICATE_DATA, d->pos,
             "'%s' already has data (one source per region and subject)", name);
  diag_note(s->d, prev->pos, "first given here");
  free(name);
  return NULL;
}

static void check_data(Sema *s, const Decl *d) {
  Model *m = s->m;
  int region = lookup_region(s, d->name), subject = lookup_subject(s, d->ref);
  Source src = {.pos = d->pos, .region = region, .subject = subject};
  if (region >= 0)
    s->region_has_data[region] = true;
  if (region >= 0 && subject >= 0)
    src.name = source_name(s, d, region, subject);
  check_source_call(s, d->value, &src);
  if (!src.name) {
    free(src.path);
    return;
  }
  m->sources = grow(m->sources, m->nsources, sizeof *m->sources);
  m->sources[m->nsources++] = src;
}

/* ---- the loss ---------------------------------------------------------------------- */

static const char *const losses[] = {"mse"};

static void add_term(Sema *s, int source, double weight, SrcPos pos) {
  Model *m = s->m;
  int t = s->term_of_source[source];
  if (t >= 0) {
    m->losses[t].weight += weight;  /* mse(V1) + mse(V1) weighs V1 twice */
    return;
  }
  s->term_of_source[source] = m->nlosses;
  m->losses = grow(m->losses, m->nlosses, sizeof *m->losses);
  m->losses[m->nlosses++] = (LossTerm){LOSS_MSE, weight, source, pos};
}

/* mse(REGION): one term per data source of the region. */
static void add_loss_call(Sema *s, const Expr *e, double weight) {
  if (lookup_word(s, DIAG_UNKNOWN_LOSS, e->name, "loss", losses, 1) < 0)
    return;
  const Arg *arg = e->args.n == 1 ? &e->args.v[0] : NULL;
  if (!arg || arg->name.len || arg->value->kind != EXPR_NAME) {
    diag_error(s->d, DIAG_LOSS_ARGUMENT, e->pos, "'%.*s' takes one region, as in mse(V1)",
               e->name.len, e->name.start);
    return;
  }
  Name region = arg->value->name;
  int r = lookup_region(s, region);
  if (r < 0)
    return;
  for (int i = s->first_source[r]; i >= 0; i = s->next_source[i])
    add_term(s, i, weight, e->pos);
  if (s->first_source[r] < 0 && !s->region_has_data[r])
    diag_error(s->d, DIAG_LOSS_WITHOUT_DATA, region.pos,
               "region '%.*s' has no data, so %.*s(%.*s) has nothing to compare with",
               region.len, region.start, e->name.len, e->name.start, region.len,
               region.start);
}

/* Does e mention a loss (a call or a name) rather than being a constant? */
static bool has_term(const Expr *e) {
  if (!e)
    return false;
  return e->kind == EXPR_CALL || e->kind == EXPR_NAME || has_term(e->lhs) ||
         has_term(e->rhs);
}

static void add_terms(Sema *s, const Expr *e, double weight);

/* NUMBER * TERM, TERM * NUMBER or TERM / NUMBER. */
static void add_scaled(Sema *s, const Expr *e, double weight) {
  bool left = has_term(e->lhs), right = has_term(e->rhs);
  if (left == right || (e->op == '/' && right)) {
    diag_error(s->d, DIAG_BAD_LOSS, e->pos, left && right
               ? "loss terms can only be added, and weighted by numbers"
               : "expected a loss term, as in 0.5 * mse(V1)");
    return;
  }
  const Expr *term = left ? e->lhs : e->rhs, *factor = left ? e->rhs : e->lhs;
  double f;
  if (!want_quantity(s, factor, DIM_NONE, "loss weight", &f))
    return;
  if (e->op == '/' && f == 0) {
    diag_error(s->d, DIAG_DIVISION_BY_ZERO, factor->pos, "division by zero");
    return;
  }
  f = e->op == '/' ? 1 / f : f;
  if (!(f > 0) || !isfinite(f)) {
    diag_error(s->d, DIAG_OUT_OF_BOUNDS, factor->pos, "loss weights must be positive");
    return;
  }
  add_terms(s, term, weight * f);
}

static void add_terms(Sema *s, const Expr *e, double weight) {
  if (e->kind == EXPR_ERROR)
    return;
  if (e->kind == EXPR_CALL)
    add_loss_call(s, e, weight);
  else if (e->kind == EXPR_BINARY && e->op == '+') {
    add_terms(s, e->lhs, weight);
    add_terms(s, e->rhs, weight);
  } else if (e->kind == EXPR_BINARY && (e->op == '*' || e->op == '/'))
    add_scaled(s, e, weight);
  else if ((e->kind == EXPR_BINARY && e->op == '-') || e->kind == EXPR_NEG)
    diag_error(s->d, DIAG_BAD_LOSS, e->pos,
               "loss terms can only be added: a subtracted error would grow");
  else
    report_expected(s, e, "a loss term, as in mse(V1)");
}

/* Links the sources of each region, in order, for mse(REGION). */
static void index_sources(Sema *s) {
  const Model *m = s->m;
  s->first_source = malloc((m->nregions + 1) * sizeof *s->first_source);
  s->next_source = malloc((m->nsources + 1) * sizeof *s->next_source);
  s->term_of_source = malloc((m->nsources + 1) * sizeof *s->term_of_source);
  for (int r = 0; r < m->nregions; r++)
    s->first_source[r] = -1;
  for (int i = m->nsources - 1; i >= 0; i--) {
    int r = m->sources[i].region;
    s->next_source[i] = s->first_source[r];
    s->first_source[r] = i;
    s->term_of_source[i] = -1;
  }
}

/* Sources the loss statement leaves out: they would be loaded and never
 * trained on. Not after errors, which may be the reason (a misspelt region
 * in the loss, a second loss statement). */
static void warn_unused_sources(Sema *s) {
  for (int i = 0; i < s->m->nsources; i++)
    if (s->term_of_source[i] < 0)
      diag_warning(s->d, DIAG_UNUSED_DATA, s->m->sources[i].pos,
                   "data '%s' is not used by the loss", s->m->sources[i].name);
}

static void check_loss(Sema *s) {
  index_sources(s);
  if (s->loss) {
    add_terms(s, s->loss->value, 1.0);
    if (diag_errors(s->d) == s->errors_before)
      warn_unused_sources(s);
    return;
  }
  for (int i = 0; i < s->m->nsources; i++)
    add_term(s, i, 1.0, s->m->sources[i].pos);
}

/* ---- train { } ------------------------------------------------------------------ */

static void check_adam(Sema *s, Name callee, Args args, TrainConfig *t) {
  static const char *const options[] = {"lr", "beta1", "beta2", "eps"};
  double *fields[] = {&t->lr, &t->beta1, &t->beta2, &t->eps};
  const Arg *opt[4];
  bind_options(s, callee, args, options, 4, 0, opt);
  for (int i = 0; i < 4; i++) {
    if (!opt[i])
      continue;
    const Expr *e = opt[i]->value;
    bool beta = i == 1 || i == 2;
    if (!want_quantity(s, e, DIM_NONE, options[i], fields[i]))
      continue;
    if (beta && !(*fields[i] >= 0 && *fields[i] < 1))
      diag_error(s->d, DIAG_OUT_OF_BOUNDS, e->pos, "'%s' must be at least 0 and below 1",
                 options[i]);
    else if (!beta && !(*fields[i] > 0))
      diag_error(s->d, DIAG_OUT_OF_BOUNDS, e->pos, "'%s' must be positive", options[i]);
  }
}

static void check_optimizer(Sema *s, const Expr *e, TrainConfig *t) {
  static const char *const optimizers[] = {"adam"};
  Name callee;
  Args args;
  if (!as_call(e, &callee, &args))
    report_expected(s, e, "an optimizer, as in adam(lr: 1e-3)");
  else if (lookup_word(s, DIAG_UNKNOWN_OPTIMIZER, callee, "optimizer", optimizers, 1) == 0)
    check_adam(s, callee, args, t);
}

static void check_setting(Sema *s, int k, const Expr *e, TrainConfig *t) {
  double seed;
  switch (k) {
  case 0: set_int(s, e, "steps", 1, INT_MAX, &t->steps); break;
  case 1: set_int(s, e, "batch", 1, MAX_BATCH, &t->batch); break;
  case 2: check_optimizer(s, e, t); break;
  case 3:
    if (want_integer(s, e, "seed", 0, MAX_EXACT_INT, &seed))
      t->seed = (uint64_t)seed;
    break;
  default: set_int(s, e, "checkpoint_every", 0, INT_MAX, &t->checkpoint_every); break;
  }
}

static void check_train(Sema *s) {
  static const char *const settings[] = {"steps", "batch", "optimizer", "seed",
                                         "checkpoint_every"};
  const Item *seen[5] = {NULL};
  for (int i = 0; s->train && i < s->train->nitems; i++) {
    const Item *it = &s->train->items[i];
    int k = first_item(s, it, DIAG_UNKNOWN_SETTING, "train setting", settings, 5, seen);
    if (k >= 0)
      check_setting(s, k, it->values.v[0].value, &s->m->train);
  }
}

static TrainConfig default_train(void) {
  return (TrainConfig){.steps = 1000, .batch = 256, .lr = 1e-3, .beta1 = 0.9,
                       .beta2 = 0.999, .eps = 1e-8, .seed = 1, .checkpoint_every = 0};
}

/* ---- the whole program ----------------------------------------------------------- */

static void warn_regions_without_data(Sema *s) {
  for (int r = 0; r < s->m->nregions; r++)
    if (!s->region_has_data[r])
      diag_warning(s->d, DIAG_REGION_WITHOUT_DATA, s->m->regions[r].pos,
                   "region '%s' has no data in any subject", s->m->regions[r].name);
}

static bool has_data_statement(const Program *p) {
  for (int i = 0; i < p->ndecls; i++)
    if (p->decls[i].kind == DECL_DATA)
      return true;
  return false;
}

static void check_all(Sema *s) {
  const Program *p = s->prog;
  for (int i = 0; i < p->ndecls; i++)
    declare(s, &p->decls[i]);
  for (int i = 0; i < s->m->naunns; i++)
    check_aunn(s, s->aunn_decls[i], &s->m->aunns[i]);
  resolve_region_aunns(s);
  s->region_has_data = calloc(s->m->nregions + 1, sizeof *s->region_has_data);
  for (int i = 0; i < p->ndecls; i++)
    if (p->decls[i].kind == DECL_DATA)
      check_data(s, &p->decls[i]);
  check_loss(s);
  check_train(s);
  warn_regions_without_data(s);
  if (!has_data_statement(p))
    diag_plain_error(s->d, DIAG_NO_DATA,
                     "%s: no data to train on (add a 'data' statement)", s->m->spec_path);
}

/* Everything but the Model. */
static void release(Sema *s) {
  free(s->aunns.slots);
  free(s->regions.slots);
  free(s->subjects.slots);
  free(s->sources.slots);
  free(s->aunn_decls);
  free(s->region_decls);
  free(s->region_has_data);
  free(s->first_source);
  free(s->next_source);
  free(s->term_of_source);
  free(s->folder);
}

Model *sema_check(Diag *d, const Program *p) {
  Sema s = {.d = d, .prog = p, .errors_before = diag_errors(d)};
  s.m = calloc(1, sizeof *s.m);
  s.m->spec_path = strdup(p->file ? p->file->path : "");
  s.m->train = default_train();
  s.folder = spec_folder(s.m->spec_path);
  check_all(&s);
  release(&s);
  if (diag_errors(d) == s.errors_before)
    return s.m;
  sema_free(s.m);
  return NULL;
}

void sema_free(Model *m) {
  if (!m)
    return;
  for (int i = 0; i < m->naunns; i++)
    free(m->aunns[i].name);
  for (int i = 0; i < m->nregions; i++)
    free(m->regions[i].name);
  for (int i = 0; i < m->nsubjects; i++)
    free(m->subjects[i].name);
  for (int i = 0; i < m->nsources; i++) {
    Source *src = &m->sources[i];
    free(src->name);
    free(src->path);
    for (int c = 0; src->channel_names && c < src->channels; c++)
      free(src->channel_names[c]);
    free(src->channel_names);
  }
  free(m->aunns);
  free(m->regions);
  free(m->subjects);
  free(m->sources);
  free(m->losses);
  free((char *)m->spec_path);
  free(m);
}
