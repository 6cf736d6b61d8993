/*
 * sema.c — semantic analysis: from the Program, and the modules it imports,
 * to a checked Model.
 *
 * Passes over the declarations, so that order does not matter:
 *   1. modules: import.c loads every file the spec imports;
 *   2. declare: subjects, regions, aunns and lets get their names, each in
 *      the scope of its file (duplicates are errors, with a note at the
 *      first); lets are checked for cycles;
 *   3. resolve: aunn items, the aunn and position of each region, data
 *      sources, structure statements (connectomes read through the
 *      StructureReader; `region from` ones are read while declaring), and
 *      the edges of connect statements, with their structural weights;
 *   4. the graph: embedding widths, cycles without a delay;
 *   5. finish: the loss, the train settings, warnings.
 * Every value is read through value(), which follows names bound by let, so
 * every check sees through lets. The scope of a name is the module of the
 * file it is written in. Every error names what was expected and, for a
 * misspelt name, the closest known one. Sema goes on after an error but
 * never reports the same mistake twice: an unknown aunn is reported where it
 * is named, not again for each region using it; an unknown region in a
 * connect is reported once and its edges skipped; expressions the parser
 * already reported are skipped.
 */
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
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
  MAX_WINDOW = 4096,
  MAX_EDGES = 1 << 20,
  MAX_CYCLE_REPORTS = 8,           /* cycles without delay reported per run */
  MAX_CYCLE_SHOWN = 12,            /* regions printed of a long cycle */
  MAX_LET_SIZE = 1 << 16,          /* nodes of a let's value with its lets written out */
  MAX_SUGGEST_CANDIDATES = 20000,  /* more names than this: no "did you mean" */
  MAX_SUGGEST_ERRORS = 200         /* after this many errors: none either */
};

#define MAX_EXACT_INT 9007199254740992.0 /* 2^53: integers a double holds exactly */
#define MAX_DELAY 1e6                    /* seconds: keeps delay_key() in range */

/* ---- name tables ------------------------------------------------------------ */

/* Name -> index into one of the arrays, and where it was defined. Keys are
 * strings owned by the Model or by Sema. */
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

typedef struct Let {
  char *name;                      /* first: see closest() */
  const Decl *decl;
  int module;
  int *refs;                       /* the lets its value names, as often as named */
  int nrefs;
  int depth, size;                 /* of its value, with those lets written out */
  bool bad;                        /* in a cycle, too deep, or naming what is not there */
  bool used;
} Let;

typedef struct AunnSlot {
  AunnDef def;                     /* checked; its name unqualified */
  const Decl *decl;
  int module;
  int model;                       /* index into Model.aunns, or -1 */
  bool has_regions;
} AunnSlot;

/* The names one module defines. */
typedef struct Scope {
  NameTable lets;                  /* -> Sema.lets */
  NameTable aunns;                 /* -> Sema.slots */
} Scope;

/* A structure statement, read (docs/semantics.md#structure). */
typedef struct Structure {
  const Decl *decl;
  bool failed;                     /* reported; the rest is not to be used */
  const char *file;                /* the zip or weights, as the spec names it */
  Connectome c;
  double scale;                    /* 1 / the largest weight */
  int *row;                        /* per Model.regions: its row and column of c */
} Structure;

/* What sema keeps of an edge to report about it. */
typedef struct EdgeInfo {
  const Decl *decl;                /* the first connect statement declaring it */
  const Expr *prior;               /* the prior it was given, or NULL */
} EdgeInfo;

typedef struct Sema {
  Diag *d;
  const Program *prog;
  const StructureReader *reader;   /* NULL: connectomes are not read */
  ModuleSet *mods;
  Scope *scopes;                   /* per module */
  Model *m;
  NameTable regions, subjects, sources, observations;
  Let *lets;
  int nlets;
  AunnSlot *slots;
  int nslots;
  const Decl **region_decls;       /* per Model.regions */
  bool *region_has_data;           /* per Model.regions: named by a data statement */
  int *first_source;               /* per Model.regions: its first source, or -1 */
  int *next_source;                /* per Model.sources: the next of its region, or -1 */
  int *source_term[2];             /* per Model.sources: its mse, poisson term, or -1 */
  int *aunn_term;                  /* per Model.aunns: its l2 term, or -1 */
  int *observation_term;           /* per Model.observations: its term, or -1 */
  EdgeInfo *edge_info;             /* per Model.edges */
  int *edge_keys;                  /* hash of (from, to, delay) -> edge + 1 */
  int edge_keys_cap;
  bool edges_lost;                 /* a connect statement had errors */
  Structure *structures;
  int nstructures;
  int *subject_structure;          /* per Model.subjects: index into structures */
  int all_structure;               /* `structure of all`, or -1 */
  bool structure_failed;           /* a structure statement had errors */
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

/* Appends to the string in buf, as much as fits. */
static void append(char *buf, size_t size, const char *fmt, ...) {
  size_t used = strlen(buf);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + used, size - used, fmt, ap);
  va_end(ap);
}

/* Does a come before b in the spec? */
static bool before(SrcPos a, SrcPos b) {
  return a.line < b.line || (a.line == b.line && a.col < b.col);
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
  diag_error(s->d, code, name.pos, "unknown %s '%.*s'%s", what, name.len, name.start,
             hint);
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

/* ---- modules, scopes and lets ---------------------------------------------------- */

/* The module a file belongs to: names written in it are looked up there. */
static int module_of(const Sema *s, const SrcFile *file) {
  for (int i = 1; i < s->mods->nmodules; i++)
    if (s->mods->modules[i].prog && s->mods->modules[i].prog->file == file)
      return i;
  return 0;
}

/* NAMESPACE.MEMBER, split at the last dot; false for a plain name. */
static bool split_qualified(Name n, Name *space, Name *member) {
  const char *dot = memrchr(n.start, '.', n.len);
  if (!dot)
    return false;
  int len = (int)(dot - n.start);
  *space = (Name){n.start, len, n.pos};
  space->pos.len = len > 0 ? len : 1;
  *member = (Name){dot + 1, n.len - len - 1, n.pos};
  member->pos.col += len + 1;
  member->pos.len = member->len > 0 ? member->len : 1;
  return true;
}

/* The module a namespace of module m stands for, or -1: after reporting an
 * unknown namespace (with report), quietly for a module that did not load
 * or has syntax errors (reported already). */
static int namespace_module(Sema *s, int m, Name space, bool report) {
  const Namespace *ns = import_namespace(s->mods, m, space.start, space.len);
  if (!ns && report) {
    const Module *mod = &s->mods->modules[m];
    char hint[300];
    unknown_hint(s, hint, sizeof hint, space, mod->spaces, mod->nspaces,
                 sizeof *mod->spaces);
    diag_error(s->d, DIAG_UNKNOWN_NAMESPACE, space.pos, "unknown namespace '%.*s'%s",
               space.len, space.start,
               hint[0] ? hint : "; import a module to use its names, as in "
                                "'import std.priors'");
  }
  if (!ns || ns->module < 0 || s->mods->modules[ns->module].broken)
    return -1;
  return ns->module;
}

/* "did you mean" over the lets (or aunns) of module m, written SPACE.NAME
 * (NAME when space is empty); member is the name not found. */
static void member_hint(Sema *s, char *buf, size_t size, Name member, Name space, int m,
                        bool lets) {
  int count = lets ? s->nlets : s->nslots, n = 0;
  const char **names = calloc(count + 1, sizeof *names);
  for (int i = 0; i < count; i++)
    if ((lets ? s->lets[i].module : s->slots[i].module) == m)
      names[n++] = lets ? s->lets[i].name : s->slots[i].def.name;
  const char *close = closest(s, member, names, n, sizeof *names);
  const char *dot = space.len ? "." : "";
  buf[0] = 0;
  if (close)
    snprintf(buf, size, "; did you mean '%.*s%s%s'?", space.len, space.start, dot, close);
  for (int i = 0; !close && n <= MAX_LISTED && i < n; i++)
    append(buf, size, "%s%.*s%s%s%s", i ? ", " : " (known: ", space.len, space.start, dot,
           names[i], i == n - 1 ? ")" : "");
  free(names);
}

/* The module a name refers to, and the name in it: the name itself in the
 * module of its file (space empty), or MEMBER in the module of SPACE. -1
 * if the namespace is not there (reported with report). */
static int name_scope(Sema *s, Name n, bool report, Name *space, Name *member) {
  int m = module_of(s, n.pos.file);
  if (split_qualified(n, space, member))
    return namespace_module(s, m, *space, report);
  *space = (Name){n.start, 0, n.pos};
  *member = n;
  return m;
}

typedef enum { NOT_A_LET, A_LET, LOOKUP_FAILED } LetLookup;

/* Whether n names a let (then *let is its index). A qualified name that
 * names nothing in its module is an error, reported with report. */
static LetLookup find_let(Sema *s, Name n, bool report, int *let) {
  Name space, member;
  int m = name_scope(s, n, report, &space, &member);
  if (m < 0)
    return LOOKUP_FAILED;
  const Entry *e = table_find(&s->scopes[m].lets, member.start, member.len);
  if (e) {
    *let = e->value;
    return A_LET;
  }
  if (space.len == 0 || table_find(&s->scopes[m].aunns, member.start, member.len))
    return NOT_A_LET;                /* a plain name, or an aunn: the caller says */
  if (report) {
    char hint[300];
    member_hint(s, hint, sizeof hint, member, space, m, true);
    diag_error(s->d, DIAG_UNKNOWN_NAME, member.pos, "module '%s' has no let or aunn '%.*s'%s",
               s->mods->modules[m].name, member.len, member.start, hint);
  }
  return LOOKUP_FAILED;
}

/* What an expression stands for: the value of the let it names, followed
 * through lets naming lets; the expression itself if it names no let. NULL
 * after an error: reported here, at the let if the let is bad, or by the
 * parser. This is the one place lets are resolved. */
static const Expr *value(Sema *s, const Expr *e) {
  int let;
  while (e->kind == EXPR_NAME) {
    LetLookup found = find_let(s, e->name, true, &let);
    if (found == LOOKUP_FAILED || (found == A_LET && s->lets[let].bad))
      return NULL;
    if (found == NOT_A_LET)
      return e;
    s->lets[let].used = true;
    e = s->lets[let].decl->value;
  }
  return e->kind == EXPR_ERROR ? NULL : e;
}

/* Like value(), without reporting: for a first look at what a name is. */
static const Expr *peek_value(Sema *s, const Expr *e) {
  int let;
  while (e->kind == EXPR_NAME && find_let(s, e->name, false, &let) == A_LET &&
         !s->lets[let].bad)
    e = s->lets[let].decl->value;
  return e;
}

/* ---- let declarations and their cycles ------------------------------------------- */

/* Names a let may not take: the builtins that values are made of. */
static const char *const builtins[] = {
    "all", "silu", "relu", "tanh", "sigmoid", "sine", "gelu", "fourier", "binary",
    "concat", "film", "csv", "npy", "mse", "poisson", "l2", "adam", "sparse", "tract"};
enum { NBUILTINS = sizeof builtins / sizeof *builtins };

static bool is_builtin(Sema *s, Name n) {
  if (word_index(n, builtins, NBUILTINS) < 0)
    return false;
  diag_error(s->d, DIAG_BUILTIN_NAME, n.pos, "'%.*s' is a builtin name; choose another "
             "name for the let", n.len, n.start);
  return true;
}

static void declare_let(Sema *s, int m, const Decl *d) {
  NameTable *lets = &s->scopes[m].lets;
  const Entry *prev = table_find(lets, d->name.start, d->name.len);
  if (is_builtin(s, d->name))
    return;
  if (prev) {
    report_duplicate(s, d->name.pos, prev->pos, "let", d->name);
    return;
  }
  s->lets = grow(s->lets, s->nlets, sizeof *s->lets);
  Let *let = &s->lets[s->nlets];
  *let = (Let){.name = name_dup(d->name), .decl = d, .module = m};
  table_put(lets, (Entry){let->name, s->nlets++, d->name.pos});
}

static void add_ref(Let *let, int ref) {
  let->refs = grow(let->refs, let->nrefs, sizeof *let->refs);
  let->refs[let->nrefs++] = ref;
}

/* Adds the lets e names to lets[i].refs and its nodes to lets[i].size;
 * false if a qualified name in it names nothing (reported). */
static bool collect_refs(Sema *s, int i, const Expr *e) {
  int ref;
  bool ok = true;
  if (!e)
    return true;
  s->lets[i].size++;
  if (e->kind == EXPR_NAME) {
    LetLookup found = find_let(s, e->name, true, &ref);
    if (found == A_LET) {
      add_ref(&s->lets[i], ref);
      s->lets[ref].used = true;    /* a let named by another one is used */
    }
    return found != LOOKUP_FAILED;
  }
  if (e->kind == EXPR_CALL || e->kind == EXPR_LIST) {
    for (int k = 0; k < e->args.n; k++)
      ok &= collect_refs(s, i, e->args.v[k].value);
    return ok;
  }
  ok = collect_refs(s, i, e->lhs);
  return collect_refs(s, i, e->rhs) && ok;
}

/* "a -> b -> a" for the lets of a cycle. */
static void print_let_cycle(const Sema *s, const int *members, int n, char *buf,
                            size_t size) {
  buf[0] = 0;
  for (int i = 0; i < n && i < MAX_CYCLE_SHOWN; i++)
    append(buf, size, "%s -> ", s->lets[members[i]].name);
  append(buf, size, "%s%s", n > MAX_CYCLE_SHOWN ? "... -> " : "", s->lets[members[0]].name);
}

/* A let naming another twice closes the same cycle twice: reported once. */
static void report_let_cycle(Sema *s, const int *members, int n) {
  char chain[1024];
  bool known = true;
  for (int i = 0; i < n; i++)
    known &= s->lets[members[i]].bad;
  if (known)
    return;
  print_let_cycle(s, members, n, chain, sizeof chain);
  diag_error(s->d, DIAG_LET_CYCLE, s->lets[members[0]].decl->name.pos,
             "let '%s' is defined in terms of itself: %s", s->lets[members[0]].name, chain);
  for (int i = 0; i < n; i++)
    s->lets[members[i]].bad = true;
}

/* After the lets it names: its depth and size written out (which bound the
 * work of every check reading it), and whether it is bad. */
static void finish_let(Sema *s, Let *let) {
  int deepest = 0;
  for (int i = 0; i < let->nrefs; i++) {
    const Let *ref = &s->lets[let->refs[i]];
    let->bad |= ref->bad;
    deepest = ref->depth > deepest ? ref->depth : deepest;
    let->size += ref->size;
    let->size = let->size > MAX_LET_SIZE ? MAX_LET_SIZE + 1 : let->size;
  }
  let->depth = let->decl->value->depth + deepest;
  if ((let->depth > AST_MAX_DEPTH || let->size > MAX_LET_SIZE) && !let->bad) {
    diag_error(s->d, DIAG_TOO_DEEP, let->decl->name.pos, "the value of '%s', with the "
               "lets it names written out, is %s %d %s", let->name,
               let->depth > AST_MAX_DEPTH ? "nested more than" : "larger than",
               let->depth > AST_MAX_DEPTH ? AST_MAX_DEPTH : MAX_LET_SIZE,
               let->depth > AST_MAX_DEPTH ? "levels deep" : "parts");
    let->bad = true;
  }
  if (let->depth > AST_MAX_DEPTH)
    let->depth = AST_MAX_DEPTH + 1;
}

/* Depth first over the lets each let names, with a stack of our own: a chain
 * of lets may be as long as the file. Each back edge closes one cycle. */
static void check_let_graph(Sema *s) {
  int n = s->nlets;
  int *state = calloc(n + 1, sizeof *state);   /* 0 new, 1 on the stack, 2 done */
  int *next = calloc(n + 1, sizeof *next), *at = calloc(n + 1, sizeof *at);
  int *stack = malloc((n + 1) * sizeof *stack);
  for (int i = 0; i < n; i++) {
    int sp = 0;
    if (state[i])
      continue;
    state[i] = 1;
    stack[sp++] = i;
    while (sp > 0) {
      int top = stack[sp - 1];
      Let *let = &s->lets[top];
      if (next[top] == let->nrefs) {
        finish_let(s, let);
        state[top] = 2;
        sp--;
        continue;
      }
      int ref = let->refs[next[top]++];
      if (state[ref] == 1)
        report_let_cycle(s, stack + at[ref], sp - at[ref]);
      else if (state[ref] == 0) {
        state[ref] = 1;
        at[ref] = sp;
        stack[sp++] = ref;
      }
    }
  }
  free(state);
  free(next);
  free(at);
  free(stack);
}

/* A let of the spec named like a region would be ambiguous in connect. */
static void check_let_names(Sema *s) {
  for (int i = 0; i < s->nlets; i++) {
    Let *let = &s->lets[i];
    const Entry *region = table_find(&s->regions, let->name, (int)strlen(let->name));
    if (let->module == 0 && region) {
      diag_error(s->d, DIAG_DUPLICATE, let->decl->name.pos,
                 "'%s' is already defined as a region", let->name);
      diag_note(s->d, region->pos, "first defined here");
      let->bad = true;
    }
  }
}

static void check_lets(Sema *s) {
  check_let_names(s);
  for (int i = 0; i < s->nlets; i++)
    if (!collect_refs(s, i, s->lets[i].decl->value))
      s->lets[i].bad = true;
  check_let_graph(s);
}

/* ---- constant expressions and units ------------------------------------------------ */

typedef enum { DIM_NONE, DIM_TIME, DIM_RATE, DIM_DISTANCE, DIM_SPEED, NDIMS } Dim;

/* The powers of metres and seconds of each dimension. */
static const int dim_powers[NDIMS][2] = {{0, 0}, {0, 1}, {0, -1}, {1, 0}, {1, -1}};

typedef struct Quantity {
  double value;                    /* in seconds, Hz, metres or metres per second */
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
                                        "a distance", "a speed"};
static const char *const dim_units[] = {"", "s, ms or us", "Hz or kHz", "mm, cm or m",
                                        "a distance over a time"};
static const char *const dim_examples[] = {"", "10ms", "100Hz", "5mm", "2m / 1s"};

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

/* "expected X, found Y" at `at`, the value as written, about v, what it
 * stands for (the value of a let when at names one). */
static void report_expected(Sema *s, const Expr *at, const Expr *v, const char *expected) {
  char found[160], what[128];
  describe(what, sizeof what, v);
  if (at != v && at->kind == EXPR_NAME)
    snprintf(found, sizeof found, "'%.*s', which is %s", at->name.len, at->name.start,
             what);
  else
    snprintf(found, sizeof found, "%s", what);
  diag_error(s->d, DIAG_WRONG_KIND, at->pos, "expected %s, found %s", expected, found);
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

/* The dimension with these powers of metres and seconds; false if none. */
static bool dim_with(int metres, int seconds, Dim *out) {
  for (int d = 0; d < NDIMS; d++)
    if (dim_powers[d][0] == metres && dim_powers[d][1] == seconds) {
      *out = (Dim)d;
      return true;
    }
  return false;
}

/* Like quantities add and subtract; products and quotients add or subtract
 * the powers of metres and seconds, and must give a dimension: 1 / time is
 * a rate, distance / time a speed, distance / speed a time. */
static bool combine(char op, Quantity a, Quantity b, Quantity *q) {
  int sign = op == '/' ? -1 : 1;
  if (op == '+' || op == '-') {
    *q = (Quantity){op == '+' ? a.value + b.value : a.value - b.value, a.dim};
    return a.dim == b.dim;
  }
  q->value = op == '*' ? a.value * b.value : a.value / b.value;
  return dim_with(dim_powers[a.dim][0] + sign * dim_powers[b.dim][0],
                  dim_powers[a.dim][1] + sign * dim_powers[b.dim][1], &q->dim);
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

/* A name in arithmetic: a let standing for a number. */
static bool eval_name(Sema *s, const Expr *e, Quantity *q) {
  const Expr *v = value(s, e);
  if (!v)
    return false;
  if (v != e && (v->kind == EXPR_NUMBER || v->kind == EXPR_NEG || v->kind == EXPR_BINARY))
    return eval(s, v, q);
  report_expected(s, e, v, "a number");
  return false;
}

/* Evaluates a constant; false after reporting why not (or quietly for what the
 * parser has reported). */
static bool eval(Sema *s, const Expr *e, Quantity *q) {
  switch (e->kind) {
  case EXPR_ERROR: return false;
  case EXPR_NUMBER: return number_quantity(s, e, q);
  case EXPR_NAME: return eval_name(s, e, q);
  case EXPR_NEG:
    if (!eval(s, e->lhs, q))
      return false;
    q->value = -q->value;
    return true;
  case EXPR_BINARY: return eval_binary(s, e, q);
  default: report_expected(s, e, e, "a number"); return false;
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

/* A plain number at least 0. */
static bool want_nonnegative(Sema *s, const Expr *e, const char *what, double *out) {
  if (!want_quantity(s, e, DIM_NONE, what, out))
    return false;
  if (*out >= 0)
    return true;
  diag_error(s->d, DIAG_OUT_OF_BOUNDS, e->pos, "'%s' must not be negative", what);
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

/* The call e stands for (through lets); false after reporting what else it is. */
static bool call_value(Sema *s, const Expr *e, const char *expected, Name *callee,
                       Args *args) {
  const Expr *v = value(s, e);
  if (!v)
    return false;
  if (as_call(v, callee, args))
    return true;
  report_expected(s, e, v, expected);
  return false;
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
  if (!e || !call_value(s, e, "an encoding, as in fourier(bands: 16, max_period: 10s)",
                        &callee, &args))
    return;
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
  if (!e || !call_value(s, e, "a conditioning, as in concat(module: 8, subject: 4)",
                        &callee, &args))
    return;
  int k = lookup_word(s, DIAG_UNKNOWN_CONDITIONING, callee, "conditioning", conditions, 2);
  if (k < 0)
    return;
  a->condition = (ConditionKind)k;
  bind_options(s, callee, args, condition_options, 2, 0, opt);
  /* 0: the AUNN is the same for every region (subject) */
  if (opt[0])
    set_int(s, opt[0]->value, "module", 0, MAX_SIZE, &a->module_dim);
  if (opt[1])
    set_int(s, opt[1]->value, "subject", 0, MAX_SIZE, &a->subject_dim);
  if (a->condition == COND_FILM && a->module_dim == 0 && a->subject_dim == 0)
    diag_error(s->d, DIAG_OUT_OF_BOUNDS, e->pos,
               "film needs an embedding to modulate the layers with: module and subject "
               "cannot both be 0 (use concat for an AUNN that is the same everywhere)");
}

/* `W x D`, `[W1, W2, ...]` or `W`. */
static void check_layers(Sema *s, const Expr *e, AunnDef *a) {
  double width, depth;
  const Expr *v = value(s, e);
  if (!v)
    return;
  if (v->kind == EXPR_BINARY && v->op == 'x') {
    if (!want_integer(s, v->lhs, "layer width", 1, MAX_SIZE, &width) ||
        !want_integer(s, v->rhs, "layer count", 1, MODEL_MAX_LAYERS, &depth))
      return;
    a->nhidden = (int)depth;
    for (int l = 0; l < a->nhidden; l++)
      a->hidden[l] = (int)width;
  } else if (v->kind == EXPR_LIST) {
    if (v->args.n < 1 || v->args.n > MODEL_MAX_LAYERS) {
      diag_error(s->d, DIAG_OUT_OF_BOUNDS, e->pos, "an mlp has 1 to %d layers, not %d",
                 MODEL_MAX_LAYERS, v->args.n);
      return;
    }
    a->nhidden = v->args.n;
    for (int l = 0; l < v->args.n; l++)
      set_int(s, v->args.v[l].value, "layer width", 1, MAX_SIZE, &a->hidden[l]);
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
  const Expr *act = it->values.v[1].value, *v = value(s, act);
  if (!v)
    return;
  if (v->kind != EXPR_NAME) {
    report_expected(s, act, v, "an activation (silu, relu, tanh, sigmoid, sine or gelu)");
    return;
  }
  int k = lookup_word(s, DIAG_UNKNOWN_ACTIVATION, v->name, "activation", activations, 6);
  if (k >= 0)
    a->activation = (Activation)k;
}

static void check_latent(Sema *s, const Item *it, AunnDef *a) {
  const Expr *e = single_value(s, it, "latent 8");
  if (e)
    set_int(s, e, "latent", 0, MAX_SIZE, &a->latent);
}

static void check_embed(Sema *s, const Item *it, AunnDef *a) {
  const Expr *e = single_value(s, it, "embed 16");
  if (e)
    set_int(s, e, "embed", 0, MAX_SIZE, &a->embed);
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
  static const char *const items[] = {"index", "condition", "mlp", "latent", "embed"};
  static void (*const checks[])(Sema *, const Item *, AunnDef *) = {
      check_index, check_condition, check_mlp, check_latent, check_embed};
  const Item *seen[5] = {NULL};
  for (int i = 0; i < d->nitems; i++) {
    const Item *it = &d->items[i];
    int k = first_item(s, it, DIAG_UNKNOWN_ITEM, "aunn item", items, 5, seen);
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

/* Every aunn of every module gets a slot; the Model gets those of the spec
 * and the imported ones that regions use. */
static void declare_aunn(Sema *s, int module, const Decl *d) {
  char *name = define(s, &s->scopes[module].aunns, "aunn", d->name, s->nslots);
  if (!name)
    return;
  s->slots = grow(s->slots, s->nslots, sizeof *s->slots);
  AunnSlot *slot = &s->slots[s->nslots++];
  *slot = (AunnSlot){.decl = d, .module = module, .model = -1};
  slot->def.name = name;
  slot->def.pos = d->name.pos;
  aunn_defaults(&slot->def);
}

static void add_region(Sema *s, const Decl *d, Region r) {
  Model *m = s->m;
  s->region_decls = grow(s->region_decls, m->nregions, sizeof *s->region_decls);
  s->region_decls[m->nregions] = d;
  m->regions = grow(m->regions, m->nregions, sizeof *m->regions);
  m->regions[m->nregions++] = r;
}

static void declare_connectome_regions(Sema *s, const Decl *d);

static void declare_regions(Sema *s, const Decl *d) {
  if (d->value) {
    declare_connectome_regions(s, d);
    return;
  }
  if (d->position && d->nnames > 1)
    diag_error(s->d, DIAG_SHARED_POSITION, d->position->pos,
               "'at' gives one position, but this statement declares %d regions; "
               "declare each region with a position in a statement of its own", d->nnames);
  for (int i = 0; i < d->nnames; i++) {
    Name n = d->names[i];
    if (name_is(n, "all")) {
      diag_error(s->d, DIAG_BUILTIN_NAME, n.pos, "'all' stands for every region in "
                 "connect; choose another name for the region");
      continue;
    }
    char *name = define(s, &s->regions, "region", n, s->m->nregions);
    if (name)
      add_region(s, d, (Region){.name = name, .pos = n.pos, .aunn = -1});
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

/* The statements of the spec (module 0); a module's other statements have
 * been reported by import.c. */
static void declare(Sema *s, int module, const Decl *d) {
  if (d->kind == DECL_AUNN)
    declare_aunn(s, module, d);
  else if (d->kind == DECL_LET)
    declare_let(s, module, d);
  else if (module > 0)
    return;
  else if (d->kind == DECL_SUBJECTS)
    declare_subjects(s, d);
  else if (d->kind == DECL_REGION)
    declare_regions(s, d);
  else if (d->kind == DECL_LOSS)
    declare_once(s, d, &s->loss, "loss");
  else if (d->kind == DECL_TRAIN)
    declare_once(s, d, &s->train, "train");
}

static void declare_all(Sema *s) {
  s->scopes = calloc(s->mods->nmodules, sizeof *s->scopes);
  for (int m = 0; m < s->mods->nmodules; m++) {
    const Module *mod = &s->mods->modules[m];
    for (int i = 0; mod->prog && !mod->broken && i < mod->prog->ndecls; i++)
      declare(s, m, &mod->prog->decls[i]);
  }
}

/* ---- regions: their aunn and position --------------------------------------------- */

/* The slot of the aunn a region statement names, maybe qualified by a
 * namespace; -1 after reporting. */
static int lookup_aunn(Sema *s, Name n) {
  Name space, member;
  char hint[300];
  int m = name_scope(s, n, true, &space, &member);
  if (m < 0)
    return -1;
  const Entry *e = table_find(&s->scopes[m].aunns, member.start, member.len);
  if (e)
    return e->value;
  member_hint(s, hint, sizeof hint, member, space, m, false);
  diag_error(s->d, DIAG_UNKNOWN_AUNN, n.pos, "unknown aunn '%.*s'%s", n.len, n.start, hint);
  return -1;
}

/* The Model's index of the aunn in slot i, added under `name` when first used. */
static int model_aunn(Sema *s, int i, const char *name, int len) {
  AunnSlot *slot = &s->slots[i];
  Model *m = s->m;
  if (slot->model < 0) {
    slot->model = m->naunns;
    m->aunns = grow(m->aunns, m->naunns, sizeof *m->aunns);
    m->aunns[m->naunns] = slot->def;
    m->aunns[m->naunns++].name = strndup(name, len);
  }
  return slot->model;
}

/* The spec's own aunns are all in the Model, in the order they are defined. */
static void add_spec_aunns(Sema *s) {
  for (int i = 0; i < s->nslots; i++)
    if (s->slots[i].module == 0)
      model_aunn(s, i, s->slots[i].def.name, (int)strlen(s->slots[i].def.name));
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
      int slot = lookup_aunn(s, last->ref);
      aunn = slot < 0 ? -1 : model_aunn(s, slot, last->ref.start, last->ref.len);
      if (slot >= 0)
        s->slots[slot].has_regions = true;
    }
    m->regions[r].aunn = aunn;
  }
}

/* `at [x, y, z]`: three distances. */
static void check_position(Sema *s, const Expr *e, Region *r) {
  const Expr *v = value(s, e);
  bool ok = true;
  if (!v)
    return;
  if (v->kind != EXPR_LIST || v->args.n != 3) {
    report_expected(s, e, v, "a position of three distances, as in [0mm, -20mm, 5mm]");
    return;
  }
  for (int i = 0; i < 3; i++)
    ok &= want_quantity(s, v->args.v[i].value, DIM_DISTANCE, "position", &r->position[i]);
  r->has_position = ok;
}

static void check_positions(Sema *s) {
  for (int r = 0; r < s->m->nregions; r++) {
    const Decl *d = s->region_decls[r];
    if (d->position && d->nnames == 1)
      check_position(s, d->position, &s->m->regions[r]);
  }
}

/* ---- data sources --------------------------------------------------------------- */

/* In the order of SourceKind. */
static const char *const formats[] = {"csv", "npy", "edf", "mat", "nwb_units", "nwb_series",
                                      "nifti"};
enum { NFORMATS = 7, NCOMMON = 5, NSOURCE_OPTIONS = 7 };
/* Every format takes the NCOMMON options first, then its own (NULL ends). */
static const char *const source_options[NFORMATS][NSOURCE_OPTIONS] = {
    {"path", "rate", "t0", "channels", "probe"},
    {"path", "rate", "t0", "channels", "probe"},
    {"path", "rate", "t0", "channels", "probe"},
    {"path", "rate", "t0", "channels", "probe", "var", "layout"},
    {"path", "rate", "t0", "channels", "probe", "bin"},
    {"path", "rate", "t0", "channels", "probe", "series"},
    {"path", "rate", "t0", "channels", "probe", "atlas"},
};
static const char *const source_examples[NFORMATS] = {
    "csv(\"v1.csv\", rate: 100Hz)",
    "npy(\"v1.npy\", rate: 100Hz)",
    "edf(\"s1.edf\", channels: [O1, O2])",
    "mat(\"tc.mat\", var: tc, rate: 1.4Hz)",
    "nwb_units(\"m2.nwb\", bin: 10ms)",
    "nwb_series(\"m3.nwb\", series: \"acquisition/lfp\")",
    "nifti(\"bold.nii\", atlas: \"atlas.nii\")",
};
/* In the order of the transposed flag. */
static const char *const layouts[] = {"samples_x_channels", "channels_x_time"};

const char *sema_format_name(SourceKind kind) {
  return formats[kind];
}

static int count_options(int format) {
  int n = 0;
  while (n < NSOURCE_OPTIONS && source_options[format][n])
    n++;
  return n;
}

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
  const Expr *v = value(s, e);
  if (!v)
    return;
  if (v->kind != EXPR_STRING) {
    report_expected(s, e, v, "a file path in double quotes");
    return;
  }
  if (!v->string[0]) {
    diag_error(s->d, DIAG_EMPTY_PATH, e->pos, "the file path is empty");
    return;
  }
  src->path = resolve_path(s, v->string);
  src->path_pos = e->pos;
}

/* `probe: NAME`: a plain name for the head sources of a region share. */
static void set_probe(Sema *s, const Expr *e, Source *src) {
  const Expr *v = value(s, e);
  if (!v)
    return;
  if (v->kind != EXPR_NAME || memchr(v->name.start, '.', v->name.len)) {
    report_expected(s, e, v, "a probe name, as in probe: utah96");
    return;
  }
  src->probe = name_dup(v->name);
  src->probe_pos = e->pos;
}

/* A string option (mat var may also be a plain name); NULL after reporting. */
static char *string_option(Sema *s, const Expr *e, bool name_ok, const char *expected) {
  const Expr *v = name_ok && e->kind == EXPR_NAME ? e : value(s, e);
  if (!v)
    return NULL;
  if (v->kind == EXPR_STRING && v->string[0])
    return strdup(v->string);
  if (name_ok && v->kind == EXPR_NAME)
    return name_dup(v->name);
  if (v->kind == EXPR_STRING)
    diag_error(s->d, DIAG_WRONG_KIND, e->pos, "expected %s, found an empty string", expected);
  else
    report_expected(s, e, v, expected);
  return NULL;
}

/* edf `channels: [O1, O2]` names the signals to read; other formats (and edf)
 * take `channels: N`. */
static void set_channels(Sema *s, const Expr *e, Source *src) {
  const Expr *v = value(s, e);
  if (!v || src->kind != SRC_EDF || v->kind != EXPR_LIST) {
    if (v)
      set_int(s, e, "channels", 1, MAX_SIZE, &src->channels);
    return;
  }
  src->select = calloc((size_t)v->args.n + 1, sizeof *src->select);
  for (int i = 0; i < v->args.n; i++) {
    const Expr *label = v->args.v[i].value;
    if (label->kind != EXPR_NAME && label->kind != EXPR_STRING) {
      report_expected(s, label, label, "a channel label, as in [O1, O2]");
      continue;
    }
    src->select[src->nselect++] =
        label->kind == EXPR_NAME ? name_dup(label->name) : strdup(label->string);
  }
}

static void set_layout(Sema *s, const Expr *e, Source *src) {
  if (e->kind != EXPR_NAME) {
    report_expected(s, e, e, "a layout, samples_x_channels or channels_x_time");
    return;
  }
  int k = lookup_word(s, DIAG_UNKNOWN_LAYOUT, e->name, "layout", layouts, 2);
  src->transposed = k == 1;
}

/* nwb_units counts in bins: its rate is 1 / bin, and a rate given must agree. */
static void set_bin(Sema *s, const Expr *e, Source *src) {
  if (!want_positive(s, e, DIM_TIME, "bin", &src->bin))
    return;
  if (src->rate_given && fabs(src->rate * src->bin - 1) > 1e-9)
    diag_error(s->d, DIAG_DATA_RATE, e->pos,
               "a bin of %g s counts at %g Hz, but 'rate' says %g Hz", src->bin,
               1 / src->bin, src->rate);
  src->rate = 1 / src->bin;
}

/* The options only some formats take; a missing required one is reported. */
static void format_options(Sema *s, Name callee, const Arg *const *opt, bool known,
                           Source *src) {
  const char *example = source_examples[src->kind];
  const Expr *own = opt[NCOMMON] ? opt[NCOMMON]->value : NULL;
  if (src->kind == SRC_MAT && own)
    src->var = string_option(s, own, true, "a variable name, as in var: tc");
  else if (src->kind == SRC_NWB_UNITS && own)
    set_bin(s, own, src);
  else if (src->kind == SRC_NWB_SERIES && own)
    src->series = string_option(s, own, false, "a series path in double quotes");
  else if (src->kind == SRC_NIFTI && own) {
    char *atlas = string_option(s, own, false, "an atlas image path in double quotes");
    src->atlas = atlas ? resolve_path(s, atlas) : NULL;
    free(atlas);
  } else if (src->kind >= SRC_MAT && known) {
    char option[32];
    snprintf(option, sizeof option, "'%s'", source_options[src->kind][NCOMMON]);
    report_missing(s, callee, option, example);
  }
  if (src->kind == SRC_MAT && opt[NCOMMON + 1])
    set_layout(s, opt[NCOMMON + 1]->value, src);
}

/* csv, npy and mat files carry no rate: those need `rate:`. */
static bool needs_rate(SourceKind k) {
  return k == SRC_CSV || k == SRC_NPY || k == SRC_MAT;
}

static void check_source_call(Sema *s, const Expr *e, Source *src) {
  Name callee;
  Args args;
  const Arg *opt[NSOURCE_OPTIONS] = {0};   /* bind_options fills only the format's */
  if (!call_value(s, e, "a data source, as in csv(\"v1.csv\", rate: 100Hz)", &callee,
                  &args))
    return;
  int k = lookup_word(s, DIAG_UNKNOWN_FORMAT, callee, "data format", formats, NFORMATS);
  if (k < 0)
    return;
  src->kind = (SourceKind)k;
  const char *example = source_examples[k];
  bool known = bind_options(s, callee, args, source_options[k], count_options(k), 1, opt);
  if (opt[0])
    set_path(s, opt[0]->value, src);
  else if (known)
    report_missing(s, callee, "a file path", example);
  if (opt[1])
    src->rate_given = want_positive(s, opt[1]->value, DIM_RATE, "rate", &src->rate);
  else if (known && needs_rate(src->kind))
    report_missing(s, callee, "'rate'", example);
  if (opt[2])
    want_quantity(s, opt[2]->value, DIM_TIME, "t0", &src->t0);
  if (opt[3])
    set_channels(s, opt[3]->value, src);
  if (opt[4])
    set_probe(s, opt[4]->value, src);
  format_options(s, callee, opt, known, src);
}

void sema_source_free(Source *src) {
  free(src->name);
  free(src->path);
  free(src->probe);
  for (int c = 0; src->channel_names && c < src->channels; c++)
    free(src->channel_names[c]);
  free(src->channel_names);
  for (int c = 0; c < src->nselect; c++)
    free(src->select[c]);
  free(src->select);
  free(src->var);
  free(src->series);
  free(src->atlas);
}

/* Sources of one region naming the same probe share its head; the probe of
 * a source on another region is another head (heads map one region's
 * activity). Each pair that disagrees on channels is reported once, at the
 * later source. */
void sema_check_probes(Diag *d, const Model *m) {
  for (int i = 0; i < m->nsources; i++) {
    const Source *a = &m->sources[i];
    for (int j = 0; a->probe && j < i; j++) {
      const Source *b = &m->sources[j];
      if (!b->probe || b->region != a->region || strcmp(a->probe, b->probe) != 0 ||
          !a->channels || !b->channels)
        continue;
      if (a->channels != b->channels) {
        diag_error(d, DIAG_PROBE_CHANNELS, a->probe_pos,
                   "'%s' has %d channels but shares probe '%s' with '%s', which has %d",
                   a->name, a->channels, a->probe, b->name, b->channels);
        diag_note(d, b->probe_pos, "'%s' reads probe '%s' here", b->name, b->probe);
      }
      break;                       /* the first source of the probe speaks for all */
    }
  }
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
    sema_source_free(&src);
    return;
  }
  m->sources = grow(m->sources, m->nsources, sizeof *m->sources);
  m->sources[m->nsources++] = src;
}


/* ---- structural connectomes: region from connectome(...), structure of ----------- */

static const char *const connectome_options[] = {"path", "weights", "lengths"};
static const char *const connectome_example =
    "connectome(\"tvb.zip\") or connectome(weights: mat(\"sc.mat\", var: sc))";
/* In the order of their SourceKind. */
static const char *const matrix_formats[] = {"csv", "npy", "mat"};
static const SourceKind matrix_kinds[] = {SRC_CSV, SRC_NPY, SRC_MAT};
static const char *const matrix_options[] = {"path", "var"};

/* What e stands for: through lets, unless literal (`region from` is read
 * while declaring, before lets are resolved). */
static const Expr *operand(Sema *s, const Expr *e, bool literal) {
  if (!literal)
    return value(s, e);
  return e->kind == EXPR_ERROR ? NULL : e;
}

/* A file path string, resolved; NULL after reporting. *written gets it as
 * written. */
static char *file_path(Sema *s, const Expr *e, bool literal, const char **written) {
  const Expr *v = operand(s, e, literal);
  if (!v)
    return NULL;
  if (v->kind != EXPR_STRING) {
    report_expected(s, e, v, "a file path in double quotes");
    return NULL;
  }
  if (!v->string[0]) {
    diag_error(s->d, DIAG_EMPTY_PATH, e->pos, "the file path is empty");
    return NULL;
  }
  *written = v->string;
  return resolve_path(s, v->string);
}

/* A reader's message names the file by its resolved path: name it as the
 * spec does instead, so that messages read the same on every machine. */
static void report_connectome(Sema *s, SrcPos at, const char *written, const char *path,
                              const char *err) {
  size_t n = strlen(path);
  if (strncmp(err, path, n) == 0)
    diag_error(s->d, DIAG_CANNOT_READ_CONNECTOME, at, "cannot read the connectome: %s%s",
               written, err + n);
  else
    diag_error(s->d, DIAG_CANNOT_READ_CONNECTOME, at, "cannot read the connectome: %s",
               err);
}

static int no_reader(char *err, size_t errlen, const char *path) {
  snprintf(err, errlen, "%s: this program reads no connectome files", path);
  return -1;
}

static bool read_zip(Sema *s, const Expr *e, bool literal, Connectome *c,
                     const char **written) {
  char err[1024];
  char *path = file_path(s, e, literal, written);
  if (!path)
    return false;
  int rc = s->reader ? s->reader->read_zip(path, c, err, sizeof err)
                     : no_reader(err, sizeof err, path);
  if (rc != 0)
    report_connectome(s, e->pos, *written, path, err);
  free(path);
  return rc == 0;
}

/* csv("w.csv"), npy("w.npy") or mat("w.mat", var: w): n x n values. */
static double *read_matrix(Sema *s, const Expr *e, int *n, const char **written) {
  static const char *const example = "mat(\"sc.mat\", var: sc)";
  Name callee;
  Args args;
  const Arg *opt[2];
  double *values = NULL;
  char err[1024];
  if (!call_value(s, e, "a matrix file, as in mat(\"sc.mat\", var: sc)", &callee, &args))
    return NULL;
  int k = lookup_word(s, DIAG_UNKNOWN_FORMAT, callee, "matrix format", matrix_formats, 3);
  if (k < 0 || !bind_options(s, callee, args, matrix_options, 2, 1, opt))
    return NULL;
  if (opt[1] && matrix_kinds[k] != SRC_MAT) {
    diag_error(s->d, DIAG_UNKNOWN_OPTION, opt[1]->name.pos,
               "'%.*s' has no option 'var' (only mat files hold named variables)",
               callee.len, callee.start);
    return NULL;
  }
  if (!opt[0] || (matrix_kinds[k] == SRC_MAT && !opt[1])) {
    report_missing(s, callee, opt[0] ? "'var'" : "a file path", example);
    return NULL;
  }
  char *var = opt[1] ? string_option(s, opt[1]->value, true, "a variable name, as in var: sc")
                     : NULL;
  char *path = file_path(s, opt[0]->value, false, written);
  if (path && (var || !opt[1]) &&
      (s->reader ? s->reader->read_matrix(matrix_kinds[k], path, var, &values, n, err,
                                          sizeof err)
                 : no_reader(err, sizeof err, path)) != 0)
    report_connectome(s, opt[0]->value->pos, *written, path, err);
  free(path);
  free(var);
  return values;
}

/* connectome(weights: M, lengths: M): lengths must match the weights. */
static bool read_matrices(Sema *s, const Expr *weights, const Expr *lengths, Connectome *c,
                          const char **written) {
  const char *lengths_file;
  int n = 0;
  if (!(c->weights = read_matrix(s, weights, &c->n, written)))
    return false;
  if (!lengths)
    return true;
  if (!(c->lengths = read_matrix(s, lengths, &n, &lengths_file)))
    return false;
  if (n == c->n)
    return true;
  diag_error(s->d, DIAG_CONNECTOME_SIZE, lengths->pos, "expected %d x %d tract lengths, "
             "like the weights, found %d x %d", c->n, c->n, n, n);
  return false;
}

/* connectome(PATH) or connectome(weights: M[, lengths: M]); *at and *file
 * get the place and name of its zip or weights, for errors about its
 * content. False after reporting (c is then to be freed all the same). */
static bool check_connectome(Sema *s, const Expr *e, bool literal, Connectome *c,
                             SrcPos *at, const char **file) {
  Name callee;
  Args args;
  const Arg *opt[3];
  const Expr *v = operand(s, e, literal);
  memset(c, 0, sizeof *c);
  if (!v)
    return false;
  if (!as_call(v, &callee, &args) || !name_is(callee, "connectome")) {
    report_expected(s, e, v, "a connectome, as in connectome(\"tvb.zip\")");
    return false;
  }
  if (!bind_options(s, callee, args, connectome_options, 3, 1, opt))
    return false;
  if (opt[0] && (opt[1] || opt[2])) {
    diag_error(s->d, DIAG_BAD_CONNECTOME, (opt[1] ? opt[1] : opt[2])->name.pos,
               "a connectome is either a TVB zip or 'weights:' matrices, not both");
    return false;
  }
  if (!opt[0] && !opt[1]) {
    if (opt[2])
      diag_error(s->d, DIAG_BAD_CONNECTOME, opt[2]->name.pos,
                 "tract lengths need 'weights:' beside them");
    else
      report_missing(s, callee, "a TVB zip or 'weights'", connectome_example);
    return false;
  }
  *at = (opt[0] ? opt[0] : opt[1])->value->pos;
  if (opt[0])
    return read_zip(s, opt[0]->value, literal, c, file);
  if (literal) {
    diag_error(s->d, DIAG_CONNECTOME_NO_LABELS, opt[1]->value->pos, "a matrix has no "
               "labels to name regions by; declare regions from a TVB zip (its "
               "centres.txt names them), or by name");
    return false;
  }
  return read_matrices(s, opt[1]->value, opt[2] ? opt[2]->value : NULL, c, file);
}

/* Row i of a connectome as a region of statement d (its centre in mm). */
static void declare_label(Sema *s, const Decl *d, const Connectome *c, int i, SrcPos at) {
  const char *label = c->labels[i];
  if (!lex_is_name(label) || strcmp(label, "all") == 0) {
    diag_error(s->d, DIAG_BAD_LABEL, at, "the connectome's label '%.64s' (region %d) is "
               "not a region name: a name is a letter or '_' followed by letters, "
               "digits and '_', and not a keyword or 'all'", label, i + 1);
    return;
  }
  Name n = {label, (int)strlen(label), at};
  char *name = define(s, &s->regions, "region", n, s->m->nregions);
  if (!name)
    return;
  Region r = {.name = name, .pos = at, .aunn = -1, .has_position = true};
  for (int k = 0; k < 3; k++)
    r.position[k] = c->centres[3 * i + k] / 1000;
  add_region(s, d, r);
}

static void declare_connectome_regions(Sema *s, const Decl *d) {
  Connectome c;
  SrcPos at;
  const char *file;
  if (check_connectome(s, d->value, true, &c, &at, &file))
    for (int i = 0; i < c.n; i++)
      declare_label(s, d, &c, i, at);
  sema_connectome_free(&c);
}

static int label_row(const Connectome *c, const char *name) {
  for (int i = 0; i < c->n; i++)
    if (strcmp(c->labels[i], name) == 0)
      return i;
  return -1;
}

/* Each region's row: by label when the connectome has labels, else by
 * declaration order. */
static bool match_rows(Sema *s, Structure *st, SrcPos at) {
  const Model *m = s->m;
  const Region *missing = NULL;
  int others = 0;
  st->row = calloc(m->nregions + 1, sizeof *st->row);
  if (!st->c.labels && st->c.n != m->nregions) {
    diag_error(s->d, DIAG_CONNECTOME_SIZE, at, "expected a %d x %d matrix (a row and a "
               "column per region, in declaration order), found %d x %d", m->nregions,
               m->nregions, st->c.n, st->c.n);
    return false;
  }
  for (int r = 0; r < m->nregions; r++) {
    st->row[r] = st->c.labels ? label_row(&st->c, m->regions[r].name) : r;
    if (st->row[r] < 0 && missing)
      others++;
    else if (st->row[r] < 0)
      missing = &m->regions[r];
  }
  if (!missing)
    return true;
  diag_error(s->d, DIAG_UNMATCHED_REGION, at, "the connectome has no region labelled "
             "'%s'%s", missing->name, others ? " (nor others of the model)" : "");
  diag_note(s->d, missing->pos, "'%s' is declared here", missing->name);
  return false;
}

/* Weights are scaled by 1 / the largest (they are >= 0). */
static bool set_scale(Sema *s, Structure *st, SrcPos at) {
  double largest = 0;
  for (long i = 0; i < (long)st->c.n * st->c.n; i++)
    largest = fmax(largest, st->c.weights[i]);
  if (largest > 0) {
    st->scale = 1 / largest;
    return true;
  }
  diag_error(s->d, DIAG_CANNOT_READ_CONNECTOME, at, "cannot read the connectome: %s: "
             "expected some weight above 0, found only zeros", st->file);
  return false;
}

/* Failed ones too, for "first given here". */
static void add_structure(Sema *s, const Decl *d, int *slot) {
  Structure st = {.decl = d};
  SrcPos at;
  st.failed = !check_connectome(s, d->value, false, &st.c, &at, &st.file) ||
              !match_rows(s, &st, at) || !set_scale(s, &st, at);
  s->structure_failed |= st.failed;
  s->structures = grow(s->structures, s->nstructures, sizeof *s->structures);
  *slot = s->nstructures;
  s->structures[s->nstructures++] = st;
}

static void check_structure(Sema *s, const Decl *d) {
  bool all = name_is(d->ref, "all");
  int subject = all ? -1 : lookup_subject(s, d->ref);
  if (!all && subject < 0) {
    s->structure_failed = true;
    return;
  }
  int *slot = all ? &s->all_structure : &s->subject_structure[subject];
  if (*slot < 0) {
    add_structure(s, d, slot);
    return;
  }
  diag_error(s->d, DIAG_DUPLICATE, d->ref.pos, "the structure of '%.*s' is already given",
             d->ref.len, d->ref.start);
  diag_note(s->d, s->structures[*slot].decl->pos, "first given here");
}

/* With structure statements every subject needs one: its own, or `all`'s. */
static void cover_subjects(Sema *s) {
  for (int i = 0; i < s->m->nsubjects; i++) {
    int *slot = &s->subject_structure[i];
    if (*slot < 0)
      *slot = s->all_structure;
    if (*slot >= 0 || s->structure_failed)
      continue;
    diag_error(s->d, DIAG_NO_STRUCTURE, s->m->subjects[i].pos, "subject '%s' has no "
               "structure statement, but others do; add `structure of %s = ...` or "
               "`structure of all = ...`", s->m->subjects[i].name, s->m->subjects[i].name);
    s->structure_failed = true;
  }
}

static void check_structures(Sema *s) {
  const Program *p = s->prog;
  s->all_structure = -1;
  s->subject_structure = malloc((s->m->nsubjects + 1) * sizeof *s->subject_structure);
  for (int i = 0; i < s->m->nsubjects; i++)
    s->subject_structure[i] = -1;
  for (int i = 0; i < p->ndecls; i++)
    if (p->decls[i].kind == DECL_STRUCTURE)
      check_structure(s, &p->decls[i]);
  if (s->nstructures > 0)
    cover_subjects(s);
}

/* Edges carry weights: there are structure statements, all read. */
static bool has_structure(const Sema *s) {
  return s->nstructures > 0 && !s->structure_failed;
}

/* ... and every one of them gives tract lengths. */
static bool has_tract_lengths(const Sema *s) {
  for (int i = 0; i < s->nstructures; i++)
    if (!s->structures[i].c.lengths)
      return false;
  return has_structure(s);
}

/* w_s[u][r], normalised. */
static double structure_weight(const Sema *s, int subject, int u, int r) {
  const Structure *st = &s->structures[s->subject_structure[subject]];
  return st->c.weights[(size_t)st->row[u] * st->c.n + st->row[r]] * st->scale;
}

static bool has_weight(const Sema *s, int u, int r) {
  for (int i = 0; i < s->m->nsubjects; i++)
    if (structure_weight(s, i, u, r) != 0)
      return true;
  return false;
}

/* Metres: the mean tract length of u -> r over the subjects whose weight for
 * it is not 0; 0 if none. */
static double tract_length(const Sema *s, int u, int r) {
  double sum = 0;
  int n = 0;
  for (int i = 0; i < s->m->nsubjects; i++) {
    const Structure *st = &s->structures[s->subject_structure[i]];
    if (structure_weight(s, i, u, r) == 0)
      continue;
    sum += st->c.lengths[(size_t)st->row[u] * st->c.n + st->row[r]];
    n++;
  }
  return n ? sum / n / 1000 : 0;
}

static double *edge_weights(const Sema *s, int u, int r) {
  if (!has_structure(s))
    return NULL;
  double *w = malloc(s->m->nsubjects * sizeof *w);
  for (int i = 0; i < s->m->nsubjects; i++)
    w[i] = structure_weight(s, i, u, r);
  return w;
}

/* ---- the graph: connect statements --------------------------------------------- */

/* The regions one side of a connect names. */
typedef struct Group {
  int *v;
  int n;
  bool all;                        /* it names `all`: no region feeds itself */
  bool too_big;
} Group;

static void group_add(Group *g, int region) {
  if (g->n >= MAX_EDGES) {
    g->too_big = true;
    return;
  }
  g->v = grow(g->v, g->n, sizeof *g->v);
  g->v[g->n++] = region;
}

/* Adds the regions e names to g: a region, `all`, a list of those, or a let
 * standing for one. False after reporting what is wrong. */
static bool add_group(Sema *s, const Expr *e, Group *g) {
  if (e->kind == EXPR_LIST) {
    bool ok = true;
    for (int i = 0; i < e->args.n; i++)
      ok &= add_group(s, e->args.v[i].value, g);
    return ok;
  }
  if (e->kind == EXPR_NAME && name_is(e->name, "all")) {
    for (int r = 0; r < s->m->nregions && !g->all; r++)
      group_add(g, r);
    g->all = true;
    return true;
  }
  const Entry *region = e->kind == EXPR_NAME
                            ? table_find(&s->regions, e->name.start, e->name.len) : NULL;
  if (region) {
    group_add(g, region->value);
    return true;
  }
  const Expr *v = value(s, e);
  if (!v)
    return false;
  if (v == e && e->kind == EXPR_NAME)
    return lookup_region(s, e->name) >= 0;   /* reports it */
  if (v != e && (v->kind == EXPR_NAME || v->kind == EXPR_LIST))
    return add_group(s, v, g);
  report_expected(s, e, v, "a region, a list of regions or 'all'");
  return false;
}

/* A delay: a time, or tract(length: L, speed: V), which takes L / V. Without
 * `length:` each edge takes its tract length from the structure statements:
 * *speed gets V and the delay is set per edge. */
static bool check_tract(Sema *s, Name callee, Args args, double *delay, double *speed) {
  static const char *const options[] = {"length", "speed"};
  static const char *const example = "tract(length: 40mm, speed: 2m / 1s)";
  const Arg *opt[2];
  double length = 0;
  bool known = bind_options(s, callee, args, options, 2, 0, opt), ok = known;
  bool from_structure = !opt[0] && has_tract_lengths(s);
  if (!opt[0] && known && !from_structure && !s->structure_failed)
    report_missing(s, callee, "'length' (or structure statements giving tract lengths)",
                   example);
  if (!opt[1] && known)
    report_missing(s, callee, "'speed'", example);
  ok &= from_structure ||
        (opt[0] && want_positive(s, opt[0]->value, DIM_DISTANCE, "length", &length));
  ok &= opt[1] && want_positive(s, opt[1]->value, DIM_SPEED, "speed", speed);
  *delay = ok && !from_structure ? length / *speed : 0;
  if (!from_structure)
    *speed = 0;
  return ok;
}

static bool check_delay(Sema *s, const Expr *e, double *delay, double *speed) {
  Quantity q;
  const Expr *v = value(s, e);
  if (!v)
    return false;
  if (v->kind == EXPR_CALL && !name_is(v->name, "tract")) {
    report_expected(s, e, v, "a time, as in 10ms, or tract(length: 40mm, speed: 2m / 1s)");
    return false;
  }
  if (v->kind == EXPR_CALL) {
    if (!check_tract(s, v->name, v->args, delay, speed))
      return false;
  } else if (!eval(s, e, &q))
    return false;
  else if (q.dim != DIM_TIME) {
    diag_error(s->d, DIAG_WRONG_UNIT, e->pos, "expected a time (s, ms or us) for the "
               "delay, found %s", dim_names[q.dim]);
    return false;
  } else
    *delay = q.value;
  if (*delay >= 0 && *delay <= MAX_DELAY)
    return true;
  diag_error(s->d, DIAG_OUT_OF_BOUNDS, e->pos, *delay < 0 ? "a delay must not be negative"
             : "a delay must be at most %gs", MAX_DELAY);
  return false;
}

/* sparse(l1: X, distance: Y): Y is per millimetre, stored per metre. */
static bool check_prior(Sema *s, const Expr *e, double *l1, double *distance) {
  static const char *const priors[] = {"sparse"};
  static const char *const options[] = {"l1", "distance"};
  Name callee;
  Args args;
  const Arg *opt[2];
  *l1 = *distance = 0;
  if (!call_value(s, e, "a prior, as in sparse(l1: 1e-3, distance: 1e-4)", &callee, &args) ||
      lookup_word(s, DIAG_UNKNOWN_PRIOR, callee, "prior", priors, 1) < 0)
    return false;
  bool ok = bind_options(s, callee, args, options, 2, 0, opt);
  if (opt[0])
    ok &= want_nonnegative(s, opt[0]->value, "l1", l1);
  if (opt[1])
    ok &= want_nonnegative(s, opt[1]->value, "distance", distance);
  *distance *= 1000;
  return ok;
}

/* One connect statement, checked. */
typedef struct Connect {
  const Decl *d;
  Group from, to;
  double delay;
  double speed;                    /* tract(speed: V) alone: delay = length / V */
  bool has_prior;
  double l1, distance;
  bool conflict_reported;
} Connect;

/* Edges are found by (from, to, delay in nanoseconds). */
static long long delay_key(double delay) {
  return llround(delay * 1e9);
}

static int *edge_slot(const Sema *s, int from, int to, double delay) {
  long long key = delay_key(delay);
  uint32_t mask = (uint32_t)s->edge_keys_cap - 1;
  uint32_t i = ((uint32_t)from * 2654435761u ^ (uint32_t)to * 40503u ^ (uint32_t)key) & mask;
  for (;; i = (i + 1) & mask) {
    int e = s->edge_keys[i] - 1;
    if (e < 0 || (s->m->edges[e].from == from && s->m->edges[e].to == to &&
                  delay_key(s->m->edges[e].delay) == key))
      return &s->edge_keys[i];
  }
}

static void rehash_edges(Sema *s) {
  free(s->edge_keys);
  s->edge_keys_cap = s->edge_keys_cap ? 2 * s->edge_keys_cap : 64;
  s->edge_keys = calloc(s->edge_keys_cap, sizeof *s->edge_keys);
  for (int e = 0; e < s->m->nedges; e++) {
    const Edge *edge = &s->m->edges[e];
    *edge_slot(s, edge->from, edge->to, edge->delay) = e + 1;
  }
}

/* A second statement naming an edge: it may give the prior the first left
 * out, but not another one. */
static void merge_prior(Sema *s, Connect *c, int e) {
  Edge *edge = &s->m->edges[e];
  EdgeInfo *info = &s->edge_info[e];
  if (!c->has_prior)
    return;
  if (!info->prior) {
    info->prior = c->d->prior;
    edge->l1 = c->l1;
    edge->distance = c->distance;
  } else if ((edge->l1 != c->l1 || edge->distance != c->distance) &&
             !c->conflict_reported) {
    diag_error(s->d, DIAG_PRIOR_CONFLICT, c->d->prior->pos,
               "the edge %s -> %s already has another prior", s->m->regions[edge->from].name,
               s->m->regions[edge->to].name);
    diag_note(s->d, info->prior->pos, "its prior is given here");
    c->conflict_reported = true;
  }
}

static void add_edge(Sema *s, Connect *c, int from, int to) {
  Model *m = s->m;
  if (2 * (m->nedges + 1) > s->edge_keys_cap)
    rehash_edges(s);
  int *slot = edge_slot(s, from, to, c->delay);
  if (*slot) {
    merge_prior(s, c, *slot - 1);
    return;
  }
  *slot = m->nedges + 1;
  s->edge_info = grow(s->edge_info, m->nedges, sizeof *s->edge_info);
  s->edge_info[m->nedges] = (EdgeInfo){c->d, c->has_prior ? c->d->prior : NULL};
  m->edges = grow(m->edges, m->nedges, sizeof *m->edges);
  m->edges[m->nedges++] = (Edge){.from = from, .to = to, .delay = c->delay, .pos = c->d->pos,
                                 .l1 = c->l1, .distance = c->distance,
                                 .weight = edge_weights(s, from, to)};
}

/* A distance prior weighs an edge by its length: both ends need positions. */
static bool positions_known(Sema *s, const Connect *c) {
  const Region *missing = NULL;
  int others = 0;
  if (has_tract_lengths(s))        /* lengths come from the structure */
    return true;
  for (int side = 0; side < 2 && c->distance > 0; side++) {
    const Group *g = side ? &c->to : &c->from;
    for (int i = 0; i < g->n; i++) {
      const Region *r = &s->m->regions[g->v[i]];
      if (r->has_position || r == missing)
        continue;
      others += missing != NULL;
      missing = missing ? missing : r;
    }
  }
  if (!missing)
    return true;
  diag_error(s->d, DIAG_NO_POSITION, c->d->prior->pos,
             "the distance prior needs the positions of the regions it connects, but "
             "'%s' has none%s", missing->name, others ? " (nor have others)" : "");
  diag_note(s->d, missing->pos, "give it one with 'at [x, y, z]'");
  return false;
}

static bool count_known(Sema *s, const Connect *c) {
  long long count = (long long)c->from.n * c->to.n;
  if (!c->from.too_big && !c->to.too_big && count + s->m->nedges <= MAX_EDGES)
    return true;
  diag_error(s->d, DIAG_OUT_OF_BOUNDS, c->d->arrow, "too many edges: a model has at "
             "most %d", MAX_EDGES);
  return false;
}

/* With structure statements an edge no subject's structure has is dropped. */
static void connect_pair(Sema *s, Connect *c, int from, int to) {
  if (has_structure(s) && !has_weight(s, from, to))
    return;
  if (c->speed > 0)
    c->delay = tract_length(s, from, to) / c->speed;
  add_edge(s, c, from, to);
}

static void check_connect(Sema *s, const Decl *d) {
  Connect c = {.d = d};
  bool ok = add_group(s, d->from, &c.from);
  ok &= add_group(s, d->to, &c.to);
  if (d->delay)
    ok &= check_delay(s, d->delay, &c.delay, &c.speed);
  if (d->prior)
    ok &= (c.has_prior = check_prior(s, d->prior, &c.l1, &c.distance));
  if (ok && count_known(s, &c) && positions_known(s, &c))
    for (int i = 0; i < c.from.n; i++)
      for (int k = 0; k < c.to.n; k++)
        if (c.from.v[i] != c.to.v[k] || !(c.from.all || c.to.all))
          connect_pair(s, &c, c.from.v[i], c.to.v[k]);
  free(c.from.v);
  free(c.to.v);
}

static void set_lengths(const Sema *s) {
  Model *m = s->m;
  for (int e = 0; e < m->nedges; e++) {
    const Region *a = &m->regions[m->edges[e].from], *b = &m->regions[m->edges[e].to];
    if (has_tract_lengths(s))
      m->edges[e].length = tract_length(s, m->edges[e].from, m->edges[e].to);
    else if (a->has_position && b->has_position)
      m->edges[e].length = hypot(hypot(a->position[0] - b->position[0],
                                       a->position[1] - b->position[1]),
                                 a->position[2] - b->position[2]);
  }
}

static void check_connects(Sema *s) {
  const Program *p = s->prog;
  int errors = diag_errors(s->d);
  for (int i = 0; i < p->ndecls; i++)
    if (p->decls[i].kind == DECL_CONNECT)
      check_connect(s, &p->decls[i]);
  s->edges_lost = diag_errors(s->d) != errors;
  set_lengths(s);
}

/* ---- the graph: widths and cycles ------------------------------------------------- */

static SrcPos edge_arrow(const Sema *s, int e) {
  return s->edge_info[e].decl->arrow;
}

static void report_no_embed(Sema *s, int e, const AunnDef *a) {
  diag_error(s->d, DIAG_NO_EMBED, edge_arrow(s, e), "'%s' has nothing to send along this "
             "edge: its aunn '%s' has no embed", s->m->regions[s->m->edges[e].from].name,
             a->name);
  diag_note(s->d, a->pos, "add 'embed N' to aunn '%s'", a->name);
}

static void report_width_mismatch(Sema *s, int e, int first) {
  const Model *m = s->m;
  const Edge *a = &m->edges[first], *b = &m->edges[e];
  const AunnDef *to = &m->aunns[m->regions[b->to].aunn];
  diag_error(s->d, DIAG_EMBED_MISMATCH, edge_arrow(s, e), "the regions of aunn '%s' "
             "would receive embeddings of width %d (from '%s') and %d (from '%s'): what "
             "feeds the regions of one aunn must have one width", to->name,
             m->aunns[m->regions[b->from].aunn].embed, m->regions[b->from].name,
             m->aunns[m->regions[a->from].aunn].embed, m->regions[a->from].name);
  diag_note(s->d, edge_arrow(s, first), "width %d comes in here",
            m->aunns[m->regions[a->from].aunn].embed);
}

/* Each edge needs an embedding at its source; all that feed the regions of
 * one aunn must have one width, its input. One error per aunn. */
static void check_widths(Sema *s) {
  Model *m = s->m;
  int *first = malloc((m->naunns + 1) * sizeof *first);
  bool *reported = calloc(m->naunns + 1, sizeof *reported);
  for (int a = 0; a < m->naunns; a++)
    first[a] = -1;
  for (int e = 0; e < m->nedges; e++) {
    int from = m->regions[m->edges[e].from].aunn, to = m->regions[m->edges[e].to].aunn;
    if (from < 0 || to < 0)
      continue;                    /* an unknown aunn, reported */
    int width = m->aunns[from].embed;
    if (width == 0 && !reported[from])
      report_no_embed(s, e, &m->aunns[from]);
    reported[from] |= width == 0;
    if (width == 0)
      continue;
    if (first[to] < 0) {
      first[to] = e;
      m->aunns[to].input = width;
    } else if (m->aunns[to].input != width && !reported[to]) {
      report_width_mismatch(s, e, first[to]);
      reported[to] = true;
    }
  }
  free(first);
  free(reported);
}

/* Edges by region in compressed rows: the edges out of (or into) region r
 * are edge[start[r] .. start[r + 1]). */
typedef struct Graph {
  int *start;
  int *edge;
} Graph;

/* The edges not skipped, by source (or by target, with by_target). */
static Graph make_graph(const Model *m, const bool *skip, bool by_target) {
  Graph g = {calloc(m->nregions + 2, sizeof *g.start),
             malloc((m->nedges + 1) * sizeof *g.edge)};
  for (int e = 0; e < m->nedges; e++)
    if (!skip || !skip[e])
      g.start[(by_target ? m->edges[e].to : m->edges[e].from) + 2]++;
  for (int r = 0; r < m->nregions; r++)
    g.start[r + 2] += g.start[r + 1];
  for (int e = 0; e < m->nedges; e++)
    if (!skip || !skip[e])
      g.edge[g.start[(by_target ? m->edges[e].to : m->edges[e].from) + 1]++] = e;
  return g;
}

static void free_graph(Graph *g) {
  free(g->start);
  free(g->edge);
}

/* Scratch arrays of Tarjan's algorithm, one element per region. */
typedef struct Tarjan {
  int *index, *low, *stack, *frames, *next;
  bool *on_stack;
  int counter, sp, fp, ncomps;
} Tarjan;

static void tarjan_visit(Tarjan *t, const Graph *g, int v) {
  t->index[v] = t->low[v] = t->counter++;
  t->stack[t->sp++] = v;
  t->on_stack[v] = true;
  t->frames[t->fp++] = v;
  t->next[v] = g->start[v];
}

/* After the edges out of v: v closes a component if nothing in it reaches
 * higher up the depth-first path. */
static void tarjan_leave(Tarjan *t, int v, int *comp) {
  int parent = --t->fp > 0 ? t->frames[t->fp - 1] : -1;
  if (parent >= 0 && t->low[v] < t->low[parent])
    t->low[parent] = t->low[v];
  if (t->low[v] != t->index[v])
    return;
  int w;
  do {
    w = t->stack[--t->sp];
    t->on_stack[w] = false;
    comp[w] = t->ncomps;
  } while (w != v);
  t->ncomps++;
}

/* The strongly connected components of g (Tarjan's algorithm with stacks of
 * our own: a chain of edges may be as long as the file). */
static void components(const Model *m, const Graph *g, int *comp) {
  int n = m->nregions + 1;
  Tarjan t = {.index = malloc(n * sizeof(int)), .low = malloc(n * sizeof(int)),
              .stack = malloc(n * sizeof(int)), .frames = malloc(n * sizeof(int)),
              .next = malloc(n * sizeof(int)), .on_stack = calloc(n, sizeof(bool))};
  for (int v = 0; v < m->nregions; v++)
    t.index[v] = -1;
  for (int root = 0; root < m->nregions; root++) {
    if (t.index[root] >= 0)
      continue;
    tarjan_visit(&t, g, root);
    while (t.fp > 0) {
      int v = t.frames[t.fp - 1];
      if (t.next[v] == g->start[v + 1]) {
        tarjan_leave(&t, v, comp);
        continue;
      }
      int w = m->edges[g->edge[t.next[v]++]].to;
      if (t.index[w] < 0)
        tarjan_visit(&t, g, w);
      else if (t.on_stack[w] && t.index[w] < t.low[v])
        t.low[v] = t.index[w];
    }
  }
  free(t.index);
  free(t.low);
  free(t.stack);
  free(t.frames);
  free(t.next);
  free(t.on_stack);
}

/* A shortest cycle through v inside its component, breadth first: its
 * edges in order into cycle[]; their count, 0 if there is none. prev[] is
 * -1 for every region and is left so. */
static int find_cycle(const Model *m, const Graph *g, const int *comp, int v, int *prev,
                      int *queue, int *cycle) {
  int head = 0, tail = 0, n = 0, last = -1;
  queue[tail++] = v;
  while (head < tail && last < 0) {
    int u = queue[head++];
    for (int i = g->start[u]; i < g->start[u + 1] && last < 0; i++) {
      int e = g->edge[i], w = m->edges[e].to;
      if (w == v)
        last = e;
      else if (comp[w] == comp[v] && prev[w] < 0) {
        prev[w] = e;
        queue[tail++] = w;
      }
    }
  }
  for (int e = last; e >= 0; e = m->edges[e].from == v ? -1 : prev[m->edges[e].from])
    cycle[n++] = e;
  for (int i = 0; i < tail; i++)
    prev[queue[i]] = -1;
  for (int i = 0; i < n / 2; i++) {
    int e = cycle[i];
    cycle[i] = cycle[n - 1 - i];
    cycle[n - 1 - i] = e;
  }
  return n;
}

/* Reports a cycle at its edge declared last; returns that edge. */
static int report_cycle(Sema *s, const int *cycle, int n) {
  const Model *m = s->m;
  int at = 0, earliest = 0;
  for (int i = 1; i < n; i++) {
    if (before(edge_arrow(s, cycle[at]), edge_arrow(s, cycle[i])))
      at = i;
    if (before(edge_arrow(s, cycle[i]), edge_arrow(s, cycle[earliest])))
      earliest = i;
  }
  char chain[1024] = "";
  for (int i = 0; i < n && i < MAX_CYCLE_SHOWN; i++)
    append(chain, sizeof chain, "%s -> ", m->regions[m->edges[cycle[(at + i) % n]].from].name);
  append(chain, sizeof chain, "%s%s", n > MAX_CYCLE_SHOWN ? "... -> " : "",
         m->regions[m->edges[cycle[at]].from].name);
  if (n == 1)
    diag_error(s->d, DIAG_GRAPH_CYCLE, edge_arrow(s, cycle[0]), "a region feeds itself "
               "without a delay: %s (add a delay to the edge)", chain);
  else {
    diag_error(s->d, DIAG_GRAPH_CYCLE, edge_arrow(s, cycle[at]),
               "these edges form a cycle without a delay: %s", chain);
    diag_note(s->d, edge_arrow(s, cycle[earliest]), "add a delay to one of these edges");
  }
  return cycle[at];
}

/* Reports one cycle of each component that has one, and leaves out the
 * statement reported from the next round: every cycle is reported once,
 * and a statement at most once. */
static int report_cycles(Sema *s, bool *skip, int budget) {
  const Model *m = s->m;
  int n = m->nregions + 1;
  Graph g = make_graph(m, skip, false);
  int *comp = malloc(n * sizeof *comp), *prev = malloc(n * sizeof *prev);
  int *queue = malloc(n * sizeof *queue), *cycle = malloc(n * sizeof *cycle);
  bool *done = calloc(n, sizeof *done);
  int reported = 0;
  components(m, &g, comp);
  for (int v = 0; v < m->nregions; v++)
    prev[v] = -1;
  for (int v = 0; v < m->nregions && reported < budget; v++) {
    int len = done[comp[v]] ? 0 : find_cycle(m, &g, comp, v, prev, queue, cycle);
    done[comp[v]] = true;
    if (len == 0)
      continue;
    const Decl *d = s->edge_info[report_cycle(s, cycle, len)].decl;
    for (int e = 0; e < m->nedges; e++)
      skip[e] |= s->edge_info[e].decl == d;
    reported++;
  }
  free_graph(&g);
  free(comp);
  free(prev);
  free(queue);
  free(cycle);
  free(done);
  return reported;
}

/* Within a time step the edges without delay must form a DAG. */
static void check_cycles(Sema *s) {
  const Model *m = s->m;
  bool *skip = malloc((m->nedges + 1) * sizeof *skip);
  for (int e = 0; e < m->nedges; e++)
    skip[e] = m->edges[e].delay > 0;
  int budget = MAX_CYCLE_REPORTS, found;
  while (budget > 0 && (found = report_cycles(s, skip, budget)) > 0)
    budget -= found;
  free(skip);
}

/* ---- warnings about the graph ---------------------------------------------------- */

/* Regions with data, and the regions that feed them, through edges at any
 * delay: breadth first against the edges. */
static bool *feeding_data(const Sema *s) {
  const Model *m = s->m;
  Graph into = make_graph(m, NULL, true);
  bool *seen = calloc(m->nregions + 1, sizeof *seen);
  int *queue = malloc((m->nregions + 1) * sizeof *queue), tail = 0;
  for (int o = 0; o < m->nobservations; o++)
    for (int i = 0; i < m->observations[o].nregions; i++)
      seen[m->observations[o].regions[i]] = true;
  for (int r = 0; r < m->nregions; r++)
    if (s->region_has_data[r] || seen[r]) {
      seen[r] = true;
      queue[tail++] = r;
    }
  for (int head = 0; head < tail; head++)
    for (int i = into.start[queue[head]]; i < into.start[queue[head] + 1]; i++) {
      int u = m->edges[into.edge[i]].from;
      if (!seen[u]) {
        seen[u] = true;
        queue[tail++] = u;
      }
    }
  free(queue);
  free_graph(&into);
  return seen;
}

static void warn_regions_without_data(Sema *s) {
  bool *feeds = feeding_data(s);
  for (int r = 0; r < s->m->nregions; r++)
    if (!feeds[r])
      diag_warning(s->d, DIAG_REGION_WITHOUT_DATA, s->m->regions[r].pos,
                   "region '%s' has no data and feeds no region with data, so nothing "
                   "trains it (regions without data learn through the recorded regions "
                   "they feed)", s->m->regions[r].name);
  free(feeds);
}

/* "15ms": a time in the unit that reads best. */
static void format_time(char *buf, size_t size, double seconds) {
  if (seconds >= 1)
    snprintf(buf, size, "%gs", seconds);
  else if (seconds >= 1e-3)
    snprintf(buf, size, "%gms", seconds * 1e3);
  else
    snprintf(buf, size, "%gus", seconds * 1e6);
}

/* A delayed edge read by a source of rate R waits max(1, round(d R)) of its
 * samples (docs/semantics.md): warn when that moves d by more than d / 4,
 * once per connect statement (all -> all would warn for every pair). */
static void check_quantised(Sema *s, int e, double rate, bool *warned) {
  const Edge *edge = &s->m->edges[e];
  const Decl *d = s->edge_info[e].decl;
  double delay = edge->delay, steps = fmax(1, round(delay * rate));
  char was[32], becomes[32], step[32];
  if (delay <= 0 || warned[d - s->prog->decls] || fabs(steps / rate - delay) <= delay / 4)
    return;
  format_time(was, sizeof was, delay);
  format_time(becomes, sizeof becomes, steps / rate);
  format_time(step, sizeof step, 1 / rate);
  diag_warning(s->d, DIAG_DELAY_QUANTISED, d->delay->pos,
               "the delay %s of %s -> %s becomes %s for the data at %gHz, whose steps "
               "are %s long", was, s->m->regions[edge->from].name,
               s->m->regions[edge->to].name, becomes, rate, step);
  warned[d - s->prog->decls] = true;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The rates of the sources, each once; their count. */
static int distinct_rates(const Model *m, double *rates) {
  int n = 0;
  for (int i = 0; i < m->nsources; i++)
    rates[i] = m->sources[i].rate;
  qsort(rates, m->nsources, sizeof *rates, compare_doubles);
  for (int i = 0; i < m->nsources; i++)
    if (n == 0 || rates[i] != rates[n - 1])
      rates[n++] = rates[i];
  return n;
}

/* The delayed edges among the regions that sources of rate R depend on:
 * breadth first against the edges from every region with such a source. */
static void check_rate(Sema *s, const Graph *into, double rate, int stamp, int *seen,
                       int *queue, bool *warned) {
  const Model *m = s->m;
  int tail = 0;
  if (!(rate > 0))
    return;                          /* taken from the file later, when it is read */
  for (int i = 0; i < m->nsources; i++)
    if (m->sources[i].rate == rate && seen[m->sources[i].region] != stamp) {
      seen[m->sources[i].region] = stamp;
      queue[tail++] = m->sources[i].region;
    }
  for (int head = 0; head < tail; head++)
    for (int k = into->start[queue[head]]; k < into->start[queue[head] + 1]; k++) {
      int e = into->edge[k], u = m->edges[e].from;
      check_quantised(s, e, rate, warned);
      if (seen[u] != stamp) {
        seen[u] = stamp;
        queue[tail++] = u;
      }
    }
}

static void warn_quantised_delays(Sema *s) {
  const Model *m = s->m;
  bool any = false;
  for (int e = 0; e < m->nedges; e++)
    any |= m->edges[e].delay > 0;
  if (!any)
    return;
  Graph into = make_graph(m, NULL, true);
  int *seen = calloc(m->nregions + 1, sizeof *seen);  /* the stamp of the rate */
  int *queue = malloc((m->nregions + 1) * sizeof *queue);
  bool *warned = calloc(s->prog->ndecls + 1, sizeof *warned);  /* per statement */
  double *rates = malloc((m->nsources + 1) * sizeof *rates);
  int nrates = distinct_rates(m, rates);
  for (int i = 0; i < nrates; i++)
    check_rate(s, &into, rates[i], i + 1, seen, queue, warned);
  free(seen);
  free(queue);
  free(warned);
  free(rates);
  free_graph(&into);
}

/* ---- observations --------------------------------------------------------------- */

/* In the order of ObsKind; the options each takes after the recording. */
static const char *const observation_kinds[] = {"eeg", "bold", "fc"};
enum { NOBS_KINDS = 3, NOBS_OPTIONS = 6 };
static const char *const observation_options[NOBS_KINDS][NOBS_OPTIONS] = {
  {"data", "regions", "leadfield", "window", "batch"},
  {"data", "regions", "model", "window", "batch"},
  {"data", "regions", "model", "window", "batch"},
};
static const char *const observation_examples[NOBS_KINDS] = {
  "eeg(edf(\"s1.edf\"), regions: all, leadfield: \"lf.csv\")",
  "bold(mat(\"tc.mat\", var: tc, rate: 1.3889Hz), regions: all, model: hrf)",
  "fc(mat(\"tc.mat\", var: tc, rate: 1.3889Hz), regions: all)",
};
static const char *const haemodynamics[] = {"hrf", "balloon"};
enum { OBS_DEFAULT_BATCH = 4 };

/* The observation's name "MEASURE.SUBJECT"; NULL (after reporting) if defined. */
static char *observation_name(Sema *s, const Decl *d, int subject) {
  char *name;
  if (asprintf(&name, "%.*s.%s", d->name.len, d->name.start,
               s->m->subjects[subject].name) < 0)
    return NULL;
  const Entry *prev = table_find(&s->observations, name, (int)strlen(name));
  if (!prev && !table_find(&s->sources, name, (int)strlen(name)))
    return name;
  diag_error(s->d, DIAG_DUPLICATE_DATA, d->pos,
             "'%s' is already observed (one observation per measure and subject)", name);
  if (prev)
    diag_note(s->d, prev->pos, "first given here");
  free(name);
  return NULL;
}

/* regions: a list or `all`, of one AUNN, each once. */
static void set_observed_regions(Sema *s, const Expr *e, Observation *o) {
  Group g = {0};
  if (!add_group(s, e, &g)) {
    free(g.v);
    return;
  }
  for (int i = 0; i < g.n; i++) {
    for (int j = 0; j < i; j++)
      if (g.v[j] == g.v[i]) {
        diag_error(s->d, DIAG_OBSERVED_REGIONS, e->pos, "region '%s' is listed twice",
                   s->m->regions[g.v[i]].name);
        free(g.v);
        return;
      }
    if (s->m->regions[g.v[i]].aunn != s->m->regions[g.v[0]].aunn) {
      diag_error(s->d, DIAG_OBSERVED_REGIONS, e->pos, "the regions of an observation "
                 "share one aunn: '%s' uses '%s', '%s' uses '%s'",
                 s->m->regions[g.v[0]].name, s->m->aunns[s->m->regions[g.v[0]].aunn].name,
                 s->m->regions[g.v[i]].name, s->m->aunns[s->m->regions[g.v[i]].aunn].name);
      free(g.v);
      return;
    }
  }
  o->regions = g.v;
  o->nregions = g.n;
}

static void set_observation_option(Sema *s, ObsKind kind, int k, const Expr *e,
                                   Observation *o) {
  const char *option = observation_options[kind][k];
  if (strcmp(option, "regions") == 0)
    set_observed_regions(s, e, o);
  else if (strcmp(option, "leadfield") == 0) {
    o->leadfield_pos = e->pos;
    char *path = string_option(s, e, false, "the path of a CSV file, as in \"lf.csv\"");
    o->leadfield = path ? resolve_path(s, path) : NULL;
    free(path);
  } else if (strcmp(option, "model") == 0) {
    const Expr *v = value(s, e);
    if (v && v->kind == EXPR_NAME) {
      int h = lookup_word(s, DIAG_UNKNOWN_OPTION, v->name, "haemodynamic model",
                          haemodynamics, 2);
      if (h >= 0)
        o->haemo = (Haemodynamics)h;
    } else if (v)
      report_expected(s, e, v, "hrf or balloon");
  } else if (strcmp(option, "window") == 0)
    set_int(s, e, "window", kind == OBS_FC ? 3 : 1, 4096, &o->window);
  else
    set_int(s, e, "batch", 1, 1 << 20, &o->batch);
}

/* The train block's window; at least 16 steps for fc, whose correlations
 * need rows to go on. */
static int default_window(const Model *m, const Observation *o) {
  enum { FC_MIN_DEFAULT_WINDOW = 16 };
  if (o->kind == OBS_FC && m->train.window < FC_MIN_DEFAULT_WINDOW)
    return FC_MIN_DEFAULT_WINDOW;
  return m->train.window;
}

static void check_observation_call(Sema *s, const Expr *e, Observation *o) {
  Name callee;
  Args args;
  const Arg *opt[NOBS_OPTIONS] = {0};
  if (!call_value(s, e, "an observation, as in bold(mat(\"tc.mat\", var: tc, rate: "
                  "1.3889Hz), regions: all)", &callee, &args))
    return;
  int k = lookup_word(s, DIAG_UNKNOWN_OBSERVATION, callee, "observation",
                      observation_kinds, NOBS_KINDS);
  if (k < 0)
    return;
  o->kind = (ObsKind)k;
  int nopts = 0;
  while (nopts < NOBS_OPTIONS && observation_options[k][nopts])
    nopts++;
  bool known = bind_options(s, callee, args, observation_options[k], nopts, 1, opt);
  if (opt[0])
    check_source_call(s, opt[0]->value, &o->data);
  else if (known)
    report_missing(s, callee, "the recording", observation_examples[k]);
  for (int i = 1; i < nopts; i++)
    if (opt[i])
      set_observation_option(s, o->kind, i, opt[i]->value, o);
  if (known && !opt[1])
    report_missing(s, callee, "'regions'", observation_examples[k]);
  if (known && k == OBS_EEG && !opt[2])
    report_missing(s, callee, "'leadfield'", observation_examples[k]);
}

static void observation_free(Observation *o) {
  free(o->name);
  free(o->measure);
  free(o->regions);
  sema_source_free(&o->data);
  free(o->leadfield);
  free(o->lead);
}

static void check_observe(Sema *s, const Decl *d) {
  Model *m = s->m;
  int subject = lookup_subject(s, d->ref);
  Observation o = {.pos = d->pos, .subject = subject, .batch = OBS_DEFAULT_BATCH, .data = {.region = -1, .subject = subject}};
  if (subject >= 0)
    o.name = observation_name(s, d, subject);
  o.measure = name_dup(d->name);
  o.data.pos = d->pos;
  check_observation_call(s, d->value, &o);
  if (!o.name || !o.regions) {
    observation_free(&o);
    return;
  }
  o.data.name = strdup(o.name);
  table_put(&s->observations, (Entry){o.name, m->nobservations, d->pos});
  m->observations = grow(m->observations, m->nobservations, sizeof *m->observations);
  m->observations[m->nobservations++] = o;
}

/* ---- the loss ---------------------------------------------------------------------- */

/* In the order of LossKind. */
static const char *const losses[] = {"mse", "poisson", "l2", "eeg", "bold", "fc"};

/* One term per (kind, source) or l2 aunn: naming one twice adds the weights. */
static void add_term(Sema *s, LossKind kind, int source, int aunn, double weight,
                     SrcPos pos) {
  Model *m = s->m;
  int *term = kind == LOSS_L2 ? &s->aunn_term[aunn] : &s->source_term[kind][source];
  if (*term >= 0) {
    m->losses[*term].weight += weight;  /* mse(V1) + mse(V1) weighs V1 twice */
    return;
  }
  *term = m->nlosses;
  m->losses = grow(m->losses, m->nlosses, sizeof *m->losses);
  m->losses[m->nlosses++] = (LossTerm){.kind = kind, .weight = weight, .source = source,
                                       .aunn = aunn, .observation = -1, .pos = pos};
}

/* mse(REGION), poisson(REGION): one term per data source of the region. */
static void add_local_term(Sema *s, LossKind kind, const Expr *e, Name region,
                           double weight) {
  int r = lookup_region(s, region);
  if (r < 0)
    return;
  for (int i = s->first_source[r]; i >= 0; i = s->next_source[i])
    add_term(s, kind, i, -1, weight, e->pos);
  if (s->first_source[r] < 0 && !s->region_has_data[r])
    diag_error(s->d, DIAG_LOSS_WITHOUT_DATA, region.pos,
               "region '%.*s' has no data, so %.*s(%.*s) has nothing to compare with",
               region.len, region.start, e->name.len, e->name.start, region.len,
               region.start);
}

/* l2(AUNN): the aunn's weight matrices. */
static void add_l2_term(Sema *s, const Expr *e, Name aunn, double weight) {
  int slot = lookup_aunn(s, aunn);
  if (slot < 0)
    return;
  if (!s->slots[slot].has_regions) {
    diag_error(s->d, DIAG_AUNN_UNUSED, aunn.pos, "no region uses aunn '%.*s', so it has "
               "no weights for l2 to penalise", aunn.len, aunn.start);
    return;
  }
  add_term(s, LOSS_L2, -1, s->slots[slot].model, weight, e->pos);
}

/* One term per observation: naming one twice adds the weights. */
static void add_observation_term(Sema *s, int o, double weight, SrcPos pos) {
  Model *m = s->m;
  if (s->observation_term[o] >= 0) {
    m->losses[s->observation_term[o]].weight += weight;
    return;
  }
  s->observation_term[o] = m->nlosses;
  m->losses = grow(m->losses, m->nlosses, sizeof *m->losses);
  m->losses[m->nlosses++] = (LossTerm){.kind = LOSS_EEG + m->observations[o].kind,
                                       .weight = weight, .source = -1, .aunn = -1,
                                       .observation = o, .pos = pos};
}

/* eeg(MEASURE), bold(MEASURE), fc(MEASURE): every subject's observation of
 * that measure, which must be of that kind. */
static void add_global_term(Sema *s, LossKind kind, const Expr *e, Name measure,
                            double weight) {
  const Model *m = s->m;
  bool found = false;
  for (int o = 0; o < m->nobservations; o++) {
    const Observation *ob = &m->observations[o];
    if (strlen(ob->measure) != (size_t)measure.len ||
        memcmp(ob->measure, measure.start, measure.len) != 0)
      continue;
    found = true;
    if (LOSS_EEG + ob->kind != kind) {
      diag_error(s->d, DIAG_LOSS_ARGUMENT, measure.pos, "'%s' is observed by %s, so "
                 "its loss term is %s(%s)", ob->name, observation_kinds[ob->kind],
                 observation_kinds[ob->kind], ob->measure);
      return;
    }
    add_observation_term(s, o, weight, e->pos);
  }
  if (!found)
    diag_error(s->d, DIAG_LOSS_ARGUMENT, measure.pos, "no observe statement measures "
               "'%.*s'", measure.len, measure.start);
}

static void add_loss_call(Sema *s, const Expr *e, double weight) {
  int k = lookup_word(s, DIAG_UNKNOWN_LOSS, e->name, "loss", losses, 6);
  if (k < 0)
    return;
  if (k >= LOSS_EEG) {
    const Arg *arg = e->args.n == 1 ? &e->args.v[0] : NULL;
    if (!arg || arg->name.len || arg->value->kind != EXPR_NAME)
      diag_error(s->d, DIAG_LOSS_ARGUMENT, e->pos, "'%.*s' takes the measure of an "
                 "observe statement, as in %s(eeg)", e->name.len, e->name.start, losses[k]);
    else
      add_global_term(s, (LossKind)k, e, arg->value->name, weight);
    return;
  }
  const Arg *arg = e->args.n == 1 ? &e->args.v[0] : NULL;
  if (!arg || arg->name.len || arg->value->kind != EXPR_NAME) {
    diag_error(s->d, DIAG_LOSS_ARGUMENT, e->pos, "'%.*s' takes one %s, as in %s",
               e->name.len, e->name.start, k == LOSS_L2 ? "aunn" : "region",
               k == LOSS_L2 ? "l2(cortex)" : k == LOSS_MSE ? "mse(V1)" : "poisson(V1)");
    return;
  }
  if (k == LOSS_L2)
    add_l2_term(s, e, arg->value->name, weight);
  else
    add_local_term(s, (LossKind)k, e, arg->value->name, weight);
}

/* Does e mention a loss term (a call, or a name that is no number) rather
 * than being a constant? */
static bool has_term(Sema *s, const Expr *e) {
  if (!e)
    return false;
  if (e->kind == EXPR_NAME) {
    const Expr *v = peek_value(s, e);
    return v == e || has_term(s, v);
  }
  return e->kind == EXPR_CALL || has_term(s, e->lhs) || has_term(s, e->rhs);
}

static void add_terms(Sema *s, const Expr *e, double weight);

/* NUMBER * TERM, TERM * NUMBER or TERM / NUMBER. */
static void add_scaled(Sema *s, const Expr *e, double weight) {
  bool left = has_term(s, e->lhs), right = has_term(s, e->rhs);
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

/* A name in the loss: a let standing for terms. */
static void add_named_terms(Sema *s, const Expr *e, double weight) {
  const Expr *v = value(s, e);
  if (v == e)
    report_expected(s, e, e, "a loss term, as in mse(V1)");
  else if (v)
    add_terms(s, v, weight);
}

static void add_terms(Sema *s, const Expr *e, double weight) {
  if (e->kind == EXPR_ERROR)
    return;
  if (e->kind == EXPR_CALL)
    add_loss_call(s, e, weight);
  else if (e->kind == EXPR_NAME)
    add_named_terms(s, e, weight);
  else if (e->kind == EXPR_BINARY && e->op == '+') {
    add_terms(s, e->lhs, weight);
    add_terms(s, e->rhs, weight);
  } else if (e->kind == EXPR_BINARY && (e->op == '*' || e->op == '/'))
    add_scaled(s, e, weight);
  else if ((e->kind == EXPR_BINARY && e->op == '-') || e->kind == EXPR_NEG)
    diag_error(s->d, DIAG_BAD_LOSS, e->pos,
               "loss terms can only be added: a subtracted error would grow");
  else
    report_expected(s, e, e, "a loss term, as in mse(V1)");
}

static int *minus_ones(int n) {
  int *v = malloc((n + 1) * sizeof *v);
  for (int i = 0; i < n; i++)
    v[i] = -1;
  return v;
}

/* Links the sources of each region, in order, for mse(REGION). */
static void index_sources(Sema *s) {
  const Model *m = s->m;
  s->first_source = minus_ones(m->nregions);
  s->next_source = minus_ones(m->nsources);
  s->source_term[LOSS_MSE] = minus_ones(m->nsources);
  s->source_term[LOSS_POISSON] = minus_ones(m->nsources);
  s->aunn_term = minus_ones(m->naunns);
  s->observation_term = minus_ones(m->nobservations);
  for (int i = m->nsources - 1; i >= 0; i--) {
    int r = m->sources[i].region;
    s->next_source[i] = s->first_source[r];
    s->first_source[r] = i;
  }
}

/* Sources the loss statement leaves out: they would be loaded and never
 * trained on. Not after errors, which may be the reason (a misspelt region
 * in the loss, a second loss statement). */
static void warn_unused_sources(Sema *s) {
  for (int i = 0; i < s->m->nsources; i++)
    if (s->source_term[LOSS_MSE][i] < 0 && s->source_term[LOSS_POISSON][i] < 0)
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
    add_term(s, LOSS_MSE, i, -1, 1.0, s->m->sources[i].pos);
  for (int o = 0; o < s->m->nobservations; o++)
    add_observation_term(s, o, 1.0, s->m->observations[o].pos);
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
  if (call_value(s, e, "an optimizer, as in adam(lr: 1e-3)", &callee, &args) &&
      lookup_word(s, DIAG_UNKNOWN_OPTIMIZER, callee, "optimizer", optimizers, 1) == 0)
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
  case 4: set_int(s, e, "checkpoint_every", 0, INT_MAX, &t->checkpoint_every); break;
  default: set_int(s, e, "window", 1, MAX_WINDOW, &t->window); break;
  }
}

static void check_train(Sema *s) {
  static const char *const settings[] = {"steps", "batch", "optimizer", "seed",
                                         "checkpoint_every", "window"};
  const Item *seen[6] = {NULL};
  for (int i = 0; s->train && i < s->train->nitems; i++) {
    const Item *it = &s->train->items[i];
    int k = first_item(s, it, DIAG_UNKNOWN_SETTING, "train setting", settings, 6, seen);
    if (k >= 0)
      check_setting(s, k, it->values.v[0].value, &s->m->train);
  }
}

static TrainConfig default_train(void) {
  return (TrainConfig){.steps = 1000, .batch = 256, .lr = 1e-3, .beta1 = 0.9,
                       .beta2 = 0.999, .eps = 1e-8, .seed = 1, .checkpoint_every = 0,
                       .window = 1};
}


/* ---- the whole program ----------------------------------------------------------- */

static void warn_unused_lets(Sema *s) {
  for (int i = 0; i < s->nlets; i++)
    if (s->lets[i].module == 0 && !s->lets[i].used && !s->lets[i].bad)
      diag_warning(s->d, DIAG_UNUSED_LET, s->lets[i].decl->name.pos,
                   "let '%s' is never used", s->lets[i].name);
}

static bool has_data_statement(const Program *p) {
  for (int i = 0; i < p->ndecls; i++)
    if (p->decls[i].kind == DECL_DATA || p->decls[i].kind == DECL_OBSERVE)
      return true;
  return false;
}

/* An observation evaluates its regions together (docs/observations.md): each
 * edge into one must come from another, through a delay. */
static void check_observed_edge(Sema *s, const Observation *o, const bool *in, const Edge *e) {
  const Model *m = s->m;
  const char *from = m->regions[e->from].name, *to = m->regions[e->to].name;
  if (!in[e->from])
    diag_error(s->d, DIAG_OBSERVED_REGIONS, o->pos, "'%s' observes '%s' but not '%s', "
               "which '%s' reads: an observation sees its regions alone, so it must list "
               "every region they read", o->name, to, from, to);
  else if (e->delay == 0)
    diag_error(s->d, DIAG_OBSERVED_REGIONS, o->pos, "'%s' observes '%s' and '%s', joined "
               "by an edge without delay: edges among observed regions need one", o->name,
               from, to);
  else
    return;
  diag_note(s->d, e->pos, "the edge %s -> %s", from, to);
}

static void check_observed_edges(Sema *s) {
  const Model *m = s->m;
  bool *in = calloc(m->nregions + 1, sizeof *in);
  for (int o = 0; o < m->nobservations; o++) {
    const Observation *ob = &m->observations[o];
    memset(in, 0, m->nregions * sizeof *in);
    for (int i = 0; i < ob->nregions; i++)
      in[ob->regions[i]] = true;
    int before = diag_errors(s->d);
    for (int e = 0; e < m->nedges && diag_errors(s->d) == before; e++)
      if (in[m->edges[e].to])
        check_observed_edge(s, ob, in, &m->edges[e]);
  }
  free(in);
}

/* The aunns of every module, each checked once whether a region uses it or
 * not; then the Model's. */
static void check_aunns(Sema *s) {
  for (int i = 0; i < s->nslots; i++)
    check_aunn(s, s->slots[i].decl, &s->slots[i].def);
  add_spec_aunns(s);
  resolve_region_aunns(s);
  check_positions(s);
}

static void check_data_statements(Sema *s) {
  const Program *p = s->prog;
  s->region_has_data = calloc(s->m->nregions + 1, sizeof *s->region_has_data);
  for (int i = 0; i < p->ndecls; i++)
    if (p->decls[i].kind == DECL_DATA)
      check_data(s, &p->decls[i]);
  for (int i = 0; i < p->ndecls; i++)
    if (p->decls[i].kind == DECL_OBSERVE)
      check_observe(s, &p->decls[i]);
}

static void check_all(Sema *s) {
  s->mods = import_load(s->d, s->prog);
  declare_all(s);
  check_lets(s);
  check_aunns(s);
  check_data_statements(s);
  sema_check_probes(s->d, s->m);
  check_structures(s);
  check_connects(s);
  check_observed_edges(s);
  check_widths(s);
  check_cycles(s);
  check_loss(s);
  check_train(s);
  for (int i = 0; i < s->m->nobservations; i++)   /* window: 0 until the train block's */
    if (s->m->observations[i].window == 0)
      s->m->observations[i].window = default_window(s->m, &s->m->observations[i]);
  if (!s->edges_lost)              /* the edges left out may be its way to data */
    warn_regions_without_data(s);
  warn_quantised_delays(s);
  if (diag_errors(s->d) == s->errors_before)
    warn_unused_lets(s);
  if (!has_data_statement(s->prog))
    diag_plain_error(s->d, DIAG_NO_DATA,
                     "%s: no data to train on (add a 'data' or an 'observe' statement)", s->m->spec_path);
}

/* Everything but the Model. */
static void release(Sema *s) {
  for (int i = 0; s->scopes && i < s->mods->nmodules; i++) {
    free(s->scopes[i].lets.slots);
    free(s->scopes[i].aunns.slots);
  }
  free(s->scopes);
  import_free(s->mods);
  for (int i = 0; i < s->nlets; i++) {
    free(s->lets[i].name);
    free(s->lets[i].refs);
  }
  free(s->lets);
  for (int i = 0; i < s->nslots; i++)
    free(s->slots[i].def.name);
  free(s->slots);
  free(s->regions.slots);
  free(s->subjects.slots);
  free(s->sources.slots);
  free(s->observations.slots);
  free(s->region_decls);
  free(s->region_has_data);
  free(s->first_source);
  free(s->next_source);
  free(s->source_term[0]);
  free(s->source_term[1]);
  free(s->aunn_term);
  free(s->observation_term);
  free(s->edge_info);
  free(s->edge_keys);
  for (int i = 0; i < s->nstructures; i++) {
    sema_connectome_free(&s->structures[i].c);
    free(s->structures[i].row);
  }
  free(s->structures);
  free(s->subject_structure);
  free(s->folder);
}

Model *sema_check(Diag *d, const Program *p) {
  return sema_check_with(d, p, NULL);
}

Model *sema_check_with(Diag *d, const Program *p, const StructureReader *reader) {
  Sema s = {.d = d, .prog = p, .reader = reader, .errors_before = diag_errors(d)};
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

void sema_connectome_free(Connectome *c) {
  for (int i = 0; c->labels && i < c->n; i++)
    free(c->labels[i]);
  free(c->labels);
  free(c->centres);
  free(c->weights);
  free(c->lengths);
  memset(c, 0, sizeof *c);
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
  for (int i = 0; i < m->nsources; i++)
    sema_source_free(&m->sources[i]);
  for (int i = 0; i < m->nobservations; i++)
    observation_free(&m->observations[i]);
  free(m->observations);
  free(m->aunns);
  free(m->regions);
  free(m->subjects);
  free(m->sources);
  for (int i = 0; i < m->nedges; i++)
    free(m->edges[i].weight);
  free(m->edges);
  free(m->losses);
  free((char *)m->spec_path);
  free(m);
}
