/*
 * front.h — the front end: source files and diagnostics, the re2c lexer, the
 * Lemon parser and its AST, and semantic analysis producing a checked Model.
 * Public names carry the prefix of their file: diag_, lex_, parse_, ast_, sema_.
 */
#ifndef LOBE_FRONT_H
#define LOBE_FRONT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------- diag.c */

typedef struct SrcFile {
  char *path;     /* as given on the command line or resolved by import */
  char *text;     /* whole file, NUL-terminated */
  long len;
} SrcFile;

typedef struct SrcPos {
  const SrcFile *file;
  int line, col;  /* 1-based; col counts bytes */
  int len;        /* length of the underlined span, >= 1 */
} SrcPos;

/* Every error and warning has a stable code (codes.def): E0001... for errors,
 * W0001... for warnings. */
typedef enum {
#define DIAG_CODE(id, code, title, explanation, wrong, right) id,
#include "codes.def"
#undef DIAG_CODE
  DIAG_NCODES
} DiagCode;

/* Diagnostics are collected, then printed sorted by position by diag_flush, as
 *   file:line:col: error[E0020]: message
 *     <source line>
 *         ^~~~
 * A note (no code) attaches to the diagnostic reported just before it. */
typedef struct Diag Diag;

Diag *diag_new(FILE *out, bool color);
void diag_free(Diag *d);
SrcFile *diag_load_file(Diag *d, const char *path); /* NULL + error if unreadable */
SrcFile *diag_add_source(Diag *d, const char *path, const char *text); /* for tests */
void diag_error(Diag *d, DiagCode code, SrcPos pos, const char *fmt, ...)   /* an E code */
    __attribute__((format(printf, 4, 5)));
void diag_warning(Diag *d, DiagCode code, SrcPos pos, const char *fmt, ...) /* a W code */
    __attribute__((format(printf, 4, 5)));
void diag_note(Diag *d, SrcPos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_plain_error(Diag *d, DiagCode code, const char *fmt, ...) /* no position */
    __attribute__((format(printf, 3, 4)));
int diag_errors(const Diag *d);
void diag_flush(Diag *d);

/* The code table, for `lobec explain`. */
typedef struct DiagCodeInfo {
  const char *code;        /* "E0020" */
  const char *title;       /* "unknown activation" */
  const char *explanation; /* lines joined by '\n' */
  const char *wrong, *right; /* spec excerpts, each line ending in '\n' */
} DiagCodeInfo;

const DiagCodeInfo *diag_code_info(DiagCode code);
/* The code named text ("E0020", any case), or -1. */
int diag_code_find(const char *text);
/* The codes (at most max) nearest in spelling to text, within a few edits;
 * their count. */
int diag_code_closest(const char *text, DiagCode *out, int max);
void diag_explain(FILE *out, DiagCode code);
/* Every code and title, one a line; as markdown, docs/errors.md. */
void diag_list_codes(FILE *out, bool markdown);

/* ------------------------------------------------------------- the Model */
/* What sema produces and lower consumes: the spec with every name resolved,
 * every unit converted (seconds, Hz) and every default filled in. */

enum { MODEL_MAX_LAYERS = 16 };

typedef enum {
  ACT_SILU, ACT_RELU, ACT_TANH, ACT_SIGMOID, ACT_SINE,
  ACT_GELU                 /* tanh approximation */
} Activation;
typedef enum { ENC_FOURIER, ENC_BINARY } EncodingKind;
/* concat: the region and subject embeddings join the encoding at the input;
 * film: they modulate every hidden layer (scale and shift), the input is the
 * encoding alone. */
typedef enum { COND_CONCAT, COND_FILM } ConditionKind;

typedef struct AunnDef {
  char *name;
  SrcPos pos;
  EncodingKind encoding;
  int bands;               /* fourier: 2*bands features, sin and cos */
  double max_period;       /* seconds: the slowest band */
  double min_period;       /* seconds: the fastest band; 0 = driver picks 2/rate */
  int bits;                /* binary: the bits of the sample index round(t * rate) */
  double rate;             /* Hz; 0 = the fastest source the AUNN reads */
  ConditionKind condition;
  int module_dim;          /* module (region) embedding size */
  int subject_dim;         /* subject embedding size */
  int nhidden;
  int hidden[MODEL_MAX_LAYERS];
  Activation activation;
  int latent;              /* 0: readout heads read the last hidden layer */
  int embed;               /* width of what its regions send along edges; 0: none */
  int input;               /* width of what its regions receive: the embed of the
                              AUNNs whose regions feed them (sema checks they agree);
                              0 when no region of this AUNN has an incoming edge */
} AunnDef;

typedef struct Region {
  char *name;
  SrcPos pos;
  int aunn;                /* index into Model.aunns */
  bool has_position;       /* `at [x, y, z]` given */
  double position[3];      /* metres */
} Region;

typedef struct Subject {
  char *name;
  SrcPos pos;
} Subject;

/* In the order of LOBE_SRC_* (runtime/lobe_model.h). */
typedef enum {
  SRC_CSV, SRC_NPY, SRC_EDF, SRC_MAT, SRC_NWB_UNITS, SRC_NWB_SERIES, SRC_NIFTI
} SourceKind;

typedef struct Source {
  char *name;              /* "REGION.SUBJECT": what --data NAME=PATH rebinds */
  SrcPos pos;              /* the data declaration */
  SrcPos path_pos;         /* the path string, for file errors */
  int region, subject;
  SourceKind kind;
  char *path;              /* resolved against the spec file's folder */
  double rate;             /* Hz; 0 until bound when the file gives it */
  double t0;               /* seconds: time of sample 0 */
  bool rate_given;         /* `rate:` written: the file's rate must agree */
  int channels;            /* from `channels: N`, else 0 until bound to the file */
  char **channel_names;    /* NULL until bound; then `channels` names */
  char *probe;             /* `probe: NAME`: sources of one region naming the same
                              probe share a readout head; NULL: a head of its own */
  SrcPos probe_pos;
  /* the format's options (docs/data.md) */
  char **select;           /* edf `channels: [O1, O2]`: labels to read */
  int nselect;
  char *var;               /* mat `var:` */
  bool transposed;         /* mat `layout: channels_x_time` */
  double bin;              /* nwb_units `bin:`, seconds */
  char *series;            /* nwb_series `series:` */
  char *atlas;             /* nifti `atlas:`, resolved */
} Source;

/* A directed edge u -> r of the region graph (docs/semantics.md): r receives
 * gate * z_u(t - delay). One Edge per (from, to, delay); statements naming
 * the same edge again merge into it. */
typedef struct Edge {
  int from, to;            /* indices into Model.regions */
  double delay;            /* seconds; 0: within the time step */
  SrcPos pos;              /* the first connect statement declaring it */
  /* prior on the gate: (l1 + distance * length) * |gate| per step */
  double l1;
  double distance;         /* per metre of length */
  double length;           /* metres: the structure's mean tract length when it
                              gives one, else between the regions' positions;
                              0 if unknown */
  double *weight;          /* Model.nsubjects structural weights w_s[from][to]
                              (docs/semantics.md#structure): r receives
                              gate * weight[s] * z_u(t - delay) in subject s;
                              NULL when the model has no structure statement
                              (every weight 1). Owned by the Model. */
} Edge;

/* A global measurement of one subject (docs/semantics.md#observations): the
 * activity of several regions (latent[0]) through an observation operator
 * (compiler/observe.c) against a recording. In the order of LOBE_OBS_*. */
typedef enum { OBS_EEG, OBS_BOLD, OBS_FC } ObsKind;
typedef enum { HAEMO_HRF, HAEMO_BALLOON } Haemodynamics;

typedef struct Observation {
  char *name;              /* "MEASURE.SUBJECT": what --data NAME=PATH rebinds */
  char *measure;           /* what loss terms name: eeg(MEASURE) */
  SrcPos pos;              /* the observe statement */
  ObsKind kind;
  int subject;
  int *regions;            /* eeg: the lead field's rows; bold, fc: the data's columns */
  int nregions;
  Source data;             /* the recording (its region is -1) */
  Haemodynamics haemo;     /* bold, fc: `model: hrf | balloon` */
  char *leadfield;         /* eeg: a CSV, regions x channels, header: channel labels */
  SrcPos leadfield_pos;
  double *lead;            /* eeg, once bound: the lead field, nregions x data.channels */
  int window;              /* steps per window, of 1 / data.rate */
  int batch;               /* windows per training step */
} Observation;

/* mse and poisson are local reconstruction terms of one source; l2 is a
 * regulariser on the weight matrices of one AUNN; eeg, bold and fc are
 * global terms of one observation. */
typedef enum { LOSS_MSE, LOSS_POISSON, LOSS_L2, LOSS_EEG, LOSS_BOLD, LOSS_FC } LossKind;

typedef struct LossTerm {
  LossKind kind;
  double weight;
  int source;              /* mse, poisson: index into Model.sources; else -1 */
  int aunn;                /* l2: index into Model.aunns; else -1 */
  int observation;         /* eeg, bold, fc: index into Model.observations; else -1 */
  SrcPos pos;
} LossTerm;

typedef struct TrainConfig {
  int steps;
  int batch;               /* windows drawn from each data source per step */
  int window;              /* time steps unrolled per window (>= 1; default 1) */
  double lr, beta1, beta2, eps;   /* adam */
  uint64_t seed;
  int checkpoint_every;    /* steps; 0 = only at the end and on signals */
} TrainConfig;

typedef struct Model {
  const char *spec_path;
  AunnDef *aunns;   int naunns;
  Region *regions;  int nregions;
  Subject *subjects; int nsubjects;
  Source *sources;  int nsources;
  Edge *edges;      int nedges;
  Observation *observations; int nobservations;
  LossTerm *losses; int nlosses;
  TrainConfig train;
} Model;

/* ---------------------------------------------------------------- ast.c */
/* The parser's output: a generic tree that sema interprets. Names point into
 * the source text (which the Diag owns), so a Program must not outlive it. */

typedef struct Name {
  const char *start;  /* into SrcFile.text; not NUL-terminated */
  int len;
  SrcPos pos;
} Name;

typedef enum {
  EXPR_ERROR,   /* a piece already reported (bad number); sema skips it quietly */
  EXPR_NUMBER,  /* 10ms: number + unit */
  EXPR_STRING,
  EXPR_NAME,
  EXPR_CALL,    /* name(args) */
  EXPR_LIST,    /* [args], all positional */
  EXPR_BINARY,  /* lhs op rhs, op one of + - * / x */
  EXPR_NEG      /* -lhs */
} ExprKind;

typedef struct Expr Expr;

typedef struct Arg {
  Name name;          /* len 0: positional */
  Expr *value;
} Arg;

typedef struct Args {
  Arg *v;
  int n;
} Args;

struct Expr {
  ExprKind kind;
  SrcPos pos;         /* the whole expression, clipped to its first line */
  int depth;          /* 1 for leaves; the parser bounds it by AST_MAX_DEPTH */
  double number;      /* NUMBER */
  Name unit;          /* NUMBER: the glued suffix, len 0 if none */
  char *string;       /* STRING: escapes decoded */
  Name name;          /* NAME; CALL: the callee */
  char op;            /* BINARY */
  Expr *lhs, *rhs;    /* BINARY; NEG uses lhs */
  Args args;          /* CALL, LIST */
};

/* `mlp 64 x 2, silu` inside aunn {} (values: 64 x 2 and silu) or
 * `steps: 100` inside train {} (one value). */
typedef struct Item {
  Name key;
  Args values;        /* all positional */
} Item;

typedef enum {
  DECL_IMPORT, DECL_SUBJECTS, DECL_AUNN, DECL_REGION, DECL_DATA, DECL_LOSS,
  DECL_TRAIN, DECL_CONNECT, DECL_LET, DECL_OBSERVE, DECL_STRUCTURE
} DeclKind;

/* Names that may be qualified by an import's namespace (`areas.cortex`) are
 * one Name spanning the whole dotted text; sema splits it at the dots. */
typedef struct Decl {
  DeclKind kind;
  SrcPos pos;         /* the keyword */
  char *module;       /* import: "std.encodings" (blanks removed) */
  SrcPos module_pos;
  Name alias;         /* import ... as NAME; len 0 if none */
  Name name;          /* aunn, let: its name; data: the region; observe: the measure */
  Name *names;        /* subjects, region: the names declared */
  int nnames;
  Name ref;           /* region: its aunn (maybe qualified); data, observe,
                         structure: the subject (or `all`) */
  Expr *value;        /* data: the source call; observe: the observation call;
                         structure, `region from`: the connectome call (nnames
                         is then 0); loss: the sum of terms; let: its value */
  Expr *position;     /* region ... at [x, y, z]; NULL if none */
  /* connect FROM -> TO [delay D] [prior P]: FROM and TO are a region name,
   * `all` (a name) or a list of names; delay and prior NULL when absent */
  Expr *from, *to, *delay, *prior;
  SrcPos arrow;       /* connect: the '->' */
  Item *items;        /* aunn, train */
  int nitems;
} Decl;

typedef struct Program {
  const SrcFile *file;
  Decl *decls;
  int ndecls;
} Program;

/* Deeper expressions are an error: the tree is walked recursively. A sum of
 * n terms is n deep, so this allows sums of about a thousand regions. */
enum { AST_MAX_DEPTH = 1024 };

void ast_dump(FILE *out, const Program *p);
/* The keyword of a statement kind: "import", "subjects", ... */
const char *ast_decl_keyword(DeclKind kind);
void ast_free(Program *p);

/* For the parser. */
Program *ast_program_new(const SrcFile *file);
void ast_program_add(Program *p, Decl decl);
Expr *ast_leaf(ExprKind kind, SrcPos pos);
Expr *ast_binary(char op, Expr *lhs, Expr *rhs);
Expr *ast_neg(SrcPos minus, Expr *operand);
Expr *ast_call(Name callee, Args args, SrcPos close);
Expr *ast_list(SrcPos open, Args items, SrcPos close);
void ast_expr_free(Expr *e);
Args ast_args_add(Args list, Name name, Expr *value);
void ast_args_free(Args list);
Name *ast_names_add(Name *names, int n, Name name);
Item *ast_items_add(Item *items, int n, Item item);
void ast_items_free(Item *items, int n);
char *ast_decode_string(const char *quoted, int len); /* drops quotes, unescapes */
SrcPos ast_span(SrcPos first, SrcPos last); /* first..last if on one line */
/* Edits (insert, delete, replace, swap neighbours) from a[0..alen) to b, or
 * limit + 1 when more (cheap for long names): for "did you mean". */
int ast_edit_distance(const char *a, int alen, const char *b, int limit);

/* Source-like text of an expression, binary operations in parentheses. */
void ast_expr_print(FILE *out, const Expr *e);

/* ------------------------------------------------------- lexer.re, parse */

/* Token kinds are the TK_* codes of the generated grammar.h; 0 ends input.
 * A qualified name written without blanks (`areas.cortex`) is one TK_QNAME
 * token, so that its Name spans exactly the dotted text. */
typedef struct Token {
  int kind;
  const char *start;  /* into the source text */
  int len;
  SrcPos pos;
} Token;

enum { LEX_MAX_OPEN = 32, LEX_QUEUE = 4 };

/* The lexer emits NEWLINE at the end of a line that had tokens, unless inside
 * ( ) or [ ]. A statement keyword starting a line closes what is still open:
 * parentheses quietly (the parser then reports the missing ')'), braces with
 * an error here, so that one missing bracket does not swallow the file. */
typedef struct Lexer {
  Diag *diag;
  const SrcFile *file;
  const unsigned char *cur, *end, *line_start;
  int line;
  int nest;                        /* open ( and [ */
  int braces;                      /* open { */
  SrcPos brace_pos[LEX_MAX_OPEN];  /* where they opened (the first LEX_MAX_OPEN) */
  bool line_has_token;
  SrcPos after_last;               /* just past the last token: NEWLINE's place */
  int error_line;                  /* the last line with a lexical error, or 0 */
  Token queue[LEX_QUEUE];          /* tokens made up to close brackets */
  int queued, next;
  /* With keep_comments set (after lex_init), every comment, from '#' to the
   * end of its line, is recorded here in order, as a token of kind 0; the
   * caller frees the array. */
  bool keep_comments;
  Token *comments;
  int ncomments;
} Lexer;

void lex_init(Lexer *lx, Diag *d, const SrcFile *file);
int lex_next(Lexer *lx, Token *t);
/* How messages name a token kind: "'{'", "a name", "end of line". */
const char *lex_kind_name(int kind);
bool lex_is_statement_keyword(int kind);
/* Whether the string s is one name token, not a keyword (but `x` and
 * `from`, which are names where no keyword fits): what a region declared
 * from a connectome's label must be. */
bool lex_is_name(const char *s);
/* The value of a NUMBER token and the length of its numeric part (the rest is
 * its unit); false if out of range (the lexer has reported it). */
bool lex_number_value(const Token *t, double *value, int *digits);

/* Parses one file; errors go to d. Returns NULL only when nothing usable was
 * parsed; a Program with errors reported is still returned for sema to skip. */
Program *parse_file(Diag *d, SrcFile *file);

/* ----------------------------------------------------------------- fmt.c */

/* The canonical form of a spec (`lobec fmt`), malloc'd; NULL if the file has
 * syntax errors (reported to d). Only blanks, line breaks outside ( ) and
 * [ ], and separating or trailing commas change: the AST stays the same. */
char *fmt_source(Diag *d, SrcFile *file);

/* -------------------------------------------------------------- import.c */
/* `import a.b.c [as n]` loads the file a/b/c.lobe, searched in the folder of
 * the importing file, then in the stdlib folder. Each file is loaded and
 * parsed once, whatever imports it under whatever name. A module may hold
 * only import, aunn and let statements. */

typedef struct Namespace {
  char *name;         /* the alias, else the last component of the module */
  SrcPos pos;         /* the alias, else the module name, in the import */
  int module;         /* index into ModuleSet.modules; -1 if it did not load */
} Namespace;

typedef struct Module {
  char *name;         /* "std.priors"; for the spec, its path */
  const Program *prog;
  Namespace *spaces;  /* its imports, in order */
  int nspaces;
  bool broken;        /* syntax errors: its names are not checked (quietly) */
} Module;

typedef struct ModuleSet {
  Module *modules;    /* modules[0] is the spec (its Program is the caller's) */
  int nmodules;
} ModuleSet;

/* Loads every module p imports, directly or not; reports missing modules
 * (with the paths searched), import cycles (with the chain), two imports
 * with one namespace and statements a module may not hold. */
ModuleSet *import_load(Diag *d, const Program *p);
void import_free(ModuleSet *set);
/* The namespace `name` (len bytes) of module m, or NULL. */
const Namespace *import_namespace(const ModuleSet *set, int m, const char *name,
                                  int len);
/* The stdlib folder, malloc'd: $LOBE_STDLIB if set, else
 * <folder of the program>/../share/lobe/stdlib if it exists, else the
 * source tree's stdlib/. */
char *import_stdlib_folder(void);

/* ----------------------------------------------------------- structure.c */
/* Structural connectomes read at compile time (docs/semantics.md#structure).
 * Sema reads them through a StructureReader, so that the front end alone
 * (the fuzzer) needs no file formats; structure_reader reads them through
 * the runtime's readers (lobe_data). Errors: -1 and a message in err naming
 * the file, what was expected and what was found. */

typedef struct Connectome {
  int n;                   /* regions: rows and columns */
  char **labels;           /* n labels, or NULL: a bare matrix */
  double *centres;         /* n x 3, millimetres; NULL without labels */
  double *weights;         /* n x n, >= 0: weights[u * n + r] for u -> r */
  double *lengths;         /* n x n, millimetres; NULL if not given */
} Connectome;

typedef struct StructureReader {
  /* A TVB connectivity zip: labels, centres, weights and tract lengths. */
  int (*read_zip)(const char *path, Connectome *out, char *err, size_t errlen);
  /* A square matrix of values >= 0 from a csv, npy or mat (variable var)
   * file: *out gets n x n values, malloc'd. */
  int (*read_matrix)(SourceKind kind, const char *path, const char *var, double **out,
                     int *n, char *err, size_t errlen);
} StructureReader;

extern const StructureReader structure_reader;

/* ---------------------------------------------------------------- sema.c */

/* Checks the program; on success returns a Model (errors reported to d
 * otherwise, and NULL). The Model owns its strings; free with sema_free. */
Model *sema_check(Diag *d, const Program *p);
/* The same, reading connectomes with reader; sema_check reads none (a
 * connectome is then an error). */
Model *sema_check_with(Diag *d, const Program *p, const StructureReader *reader);
/* Frees what a StructureReader put in c. */
void sema_connectome_free(Connectome *c);
/* Sources sharing a probe must agree on their channel count: checked by
 * sema for declared counts, and again by the driver once files are bound. */
void sema_check_probes(Diag *d, const Model *m);
void sema_source_free(Source *src);  /* its strings, not src itself */
/* How a spec names the format: "csv", "npy", ..., "nifti". */
const char *sema_format_name(SourceKind kind);
void sema_free(Model *m);

/* --------------------------------------------------------------- graph.c */

/* The region graph of m as Graphviz dot text (`lobec graph`, docs/graph.md):
 * a node per region with its AUNN, position and recorded subjects, an edge
 * per Edge, and `title` (the spec's path) over it. The same Model always
 * gives the same text. */
void graph_write_dot(FILE *out, const Model *m, const char *title);

#endif
