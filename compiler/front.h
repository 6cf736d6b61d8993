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

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

/* Diagnostics are collected, then printed sorted by position by diag_flush, as
 *   file:line:col: error: message
 *     <source line>
 *         ^~~~
 * A note attaches to the diagnostic reported just before it. */
typedef struct Diag Diag;

Diag *diag_new(FILE *out, bool color);
void diag_free(Diag *d);
SrcFile *diag_load_file(Diag *d, const char *path); /* NULL + error if unreadable */
SrcFile *diag_add_source(Diag *d, const char *path, const char *text); /* for tests */
void diag_report(Diag *d, DiagLevel level, SrcPos pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void diag_plain_error(Diag *d, const char *fmt, ...) /* no position */
    __attribute__((format(printf, 2, 3)));
int diag_errors(const Diag *d);
void diag_flush(Diag *d);

/* ------------------------------------------------------------- the Model */
/* What sema produces and lower consumes: the spec with every name resolved,
 * every unit converted (seconds, Hz) and every default filled in. */

enum { MODEL_MAX_LAYERS = 16 };

typedef enum { ACT_SILU, ACT_RELU, ACT_TANH, ACT_SIGMOID, ACT_SINE } Activation;
typedef enum { ENC_FOURIER } EncodingKind;
typedef enum { COND_CONCAT } ConditionKind;

typedef struct AunnDef {
  char *name;
  SrcPos pos;
  EncodingKind encoding;
  int bands;               /* fourier: 2*bands features, sin and cos */
  double max_period;       /* seconds: the slowest band */
  double min_period;       /* seconds: the fastest band; 0 = driver picks 2/rate */
  ConditionKind condition;
  int module_dim;          /* module (region) embedding size */
  int subject_dim;         /* subject embedding size */
  int nhidden;
  int hidden[MODEL_MAX_LAYERS];
  Activation activation;
  int latent;              /* 0: readout heads read the last hidden layer */
} AunnDef;

typedef struct Region {
  char *name;
  SrcPos pos;
  int aunn;                /* index into Model.aunns */
} Region;

typedef struct Subject {
  char *name;
  SrcPos pos;
} Subject;

typedef enum { SRC_CSV, SRC_NPY } SourceKind;

typedef struct Source {
  char *name;              /* "REGION.SUBJECT": what --data NAME=PATH rebinds */
  SrcPos pos;              /* the data declaration */
  SrcPos path_pos;         /* the path string, for file errors */
  int region, subject;
  SourceKind kind;
  char *path;              /* resolved against the spec file's folder */
  double rate;             /* Hz */
  double t0;               /* seconds: time of sample 0 */
  int channels;            /* from `channels: N`, else 0 until bound to the file */
  char **channel_names;    /* NULL until bound; then `channels` names */
} Source;

typedef enum { LOSS_MSE } LossKind;

typedef struct LossTerm {
  LossKind kind;
  double weight;
  int source;              /* index into Model.sources */
  SrcPos pos;
} LossTerm;

typedef struct TrainConfig {
  int steps;
  int batch;               /* samples drawn from each data source per step */
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
  LossTerm *losses; int nlosses;
  TrainConfig train;
} Model;

/* ---------------------------------------------------------------- ast.c */
/* The AST is the parser's business (see ast.h-sections below once written);
 * other stages only see Program through parse_ and sema_ and ast_dump. */

typedef struct Program Program;

void ast_dump(FILE *out, const Program *p);
void ast_free(Program *p);

/* ------------------------------------------------------- lexer.re, parse */

/* Parses one file; errors go to d. Returns NULL only when nothing usable was
 * parsed; a Program with errors reported is still returned for sema to skip. */
Program *parse_file(Diag *d, SrcFile *file);

/* ---------------------------------------------------------------- sema.c */

/* Checks the program; on success returns a Model (errors reported to d
 * otherwise, and NULL). The Model owns its strings; free with sema_free. */
Model *sema_check(Diag *d, const Program *p);
void sema_free(Model *m);

#endif
