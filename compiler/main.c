/*
 * main.c — the lobec driver. The pipeline, in order:
 *
 *   parse -> sema -> bind data -> lower -> passes -> codegen -> link
 *
 *   lobec check SPEC                      diagnostics only
 *   lobec build SPEC [-o OUT] [--emit=ast|ir|llvm|obj|exe] [--dump-after=PASS|all]
 *   lobec fmt SPEC [-o OUT | --check]     the canonical form (fmt.c)
 *   lobec graph SPEC [-o OUT.dot|.svg|.png]  the region graph (graph.c)
 *   lobec explain CODE | --list [--markdown]  what a diagnostic code means
 */
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runtime/lobe_model.h"
#include "backend.h"
#include "data.h"
#include "ir.h"

#define LOBE_VERSION "0.1.0"

typedef enum { EMIT_AST, EMIT_IR, EMIT_LLVM, EMIT_OBJ, EMIT_EXE } Emit;
/* What `lobec graph -o OUT` writes, from OUT's extension. */
typedef enum { PICTURE_DOT, PICTURE_SVG, PICTURE_PNG } Picture;

typedef struct Options {
  const char *command;
  const char *spec;
  const char *out;
  const char *dump_after;
  Emit emit;
  Picture picture;        /* graph */
  bool check;             /* fmt --check */
  bool no_specialize;     /* build --no-specialize */
} Options;

static void usage(FILE *to) {
  fputs("usage: lobec check SPEC.lobe\n"
        "       lobec build SPEC.lobe [-o OUT] [--emit=ast|ir|llvm|obj|exe]\n"
        "                             [--dump-after=PASS|all] [--no-specialize]\n"
        "       lobec fmt SPEC.lobe [-o OUT | --check]\n"
        "       lobec graph SPEC.lobe [-o OUT.dot|OUT.svg|OUT.png]\n"
        "       lobec explain CODE | --list [--markdown]\n"
        "       lobec --version\n"
        "\n"
        "build compiles SPEC into an executable (default: SPEC's base name) that\n"
        "trains the model: run `OUT --help` for its commands. --emit stops early\n"
        "and writes that stage's form to OUT (default: standard output for ast and\n"
        "ir). --dump-after prints the IR after the named pass to standard error.\n"
        "--no-specialize leaves out the per-source specialised entry points, so\n"
        "the executable trains unspecialised (docs/specialisation.md).\n"
        "fmt writes SPEC in canonical form to OUT (default: standard output);\n"
        "--check instead names SPEC and exits with 1 if it is not canonical.\n"
        "graph checks SPEC and draws its regions, data and connections as\n"
        "Graphviz dot text (default: standard output); .svg and .png run\n"
        "Graphviz's `dot` (docs/graph.md).\n"
        "explain prints what the code of a diagnostic (E0020 in error[E0020])\n"
        "means, with an example; --list lists every code, --markdown as\n"
        "docs/errors.md.\n",
        to);
}

static int parse_emit(const char *s, Emit *e) {
  static const char *const names[] = {"ast", "ir", "llvm", "obj", "exe"};
  for (int i = 0; i < 5; i++)
    if (strcmp(s, names[i]) == 0) {
      *e = (Emit)i;
      return 0;
    }
  return -1;
}

/* The picture `lobec graph -o OUT` writes, from OUT's extension; -1 for an
 * extension it does not know (a usage error). No -o, or -o -: dot text. */
static int parse_picture(const char *out, Picture *p) {
  static const struct { const char *ext; Picture picture; } exts[] = {
    {".dot", PICTURE_DOT}, {".gv", PICTURE_DOT}, {".svg", PICTURE_SVG}, {".png", PICTURE_PNG},
  };
  *p = PICTURE_DOT;
  if (!out || strcmp(out, "-") == 0)
    return 0;
  size_t len = strlen(out);
  for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
    size_t n = strlen(exts[i].ext);
    if (len > n && strcmp(out + len - n, exts[i].ext) == 0) {
      *p = exts[i].picture;
      return 0;
    }
  }
  fprintf(stderr, "lobec: graph writes OUT.dot, OUT.gv, OUT.svg or OUT.png, not '%s'\n", out);
  return -1;
}

static int parse_args(int argc, char **argv, Options *o) {
  *o = (Options){.emit = EMIT_EXE};
  if (argc < 2)
    return -1;
  o->command = argv[1];
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-o") == 0 && i + 1 < argc)
      o->out = argv[++i];
    else if (strncmp(a, "--emit=", 7) == 0) {
      if (parse_emit(a + 7, &o->emit) != 0) {
        fprintf(stderr, "lobec: unknown --emit value '%s'\n", a + 7);
        return -1;
      }
    } else if (strcmp(a, "--check") == 0 && strcmp(o->command, "fmt") == 0)
      o->check = true;
    else if (strcmp(a, "--no-specialize") == 0 && strcmp(o->command, "build") == 0)
      o->no_specialize = true;
    else if (strncmp(a, "--dump-after=", 13) == 0)
      o->dump_after = a + 13;
    else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "lobec: unknown option '%s'\n", a);
      return -1;
    } else if (!o->spec)
      o->spec = a;
    else {
      fprintf(stderr, "lobec: more than one spec file ('%s', '%s')\n", o->spec, a);
      return -1;
    }
  }
  if (!o->spec) {
    fprintf(stderr, "lobec: no spec file given\n");
    return -1;
  }
  if (o->check && o->out) {
    fprintf(stderr, "lobec: fmt takes -o or --check, not both\n");
    return -1;
  }
  if (strcmp(o->command, "graph") == 0)
    return parse_picture(o->out, &o->picture);
  return 0;
}

/* ---- front end ----------------------------------------------------------- */

static Model *check_spec(Diag *d, const char *path, Program **prog) {
  SrcFile *file = diag_load_file(d, path);
  if (!file)
    return NULL;
  *prog = parse_file(d, file);
  if (!*prog || diag_errors(d))
    return NULL;
  return sema_check_with(d, *prog, &structure_reader);
}

static DataOptions source_options(const Source *src) {
  return (DataOptions){.select = (const char *const *)src->select, .nselect = src->nselect,
                       .var = src->var, .transposed = src->transposed, .bin = src->bin,
                       .series = src->series, .atlas = src->atlas};
}

static int probe_source(const Source *src, DataTable *t, DataClock *clk, char *err,
                        size_t errlen) {
  DataOptions opt = source_options(src);
  /* SourceKind is in the order of LOBE_SRC_*. */
  return data_probe_with((int)src->kind, src->path, &opt, t, clk, err, errlen);
}

/* The file's rate (and t0) where it has one; a rate given must agree. */
static void bind_rate(Diag *d, Source *src, const DataClock *t) {
  if (t->rate > 0 && src->rate_given && fabs(src->rate - t->rate) > 1e-6 * t->rate)
    diag_error(d, DIAG_DATA_RATE, src->path_pos,
               "'%s' gives a rate of %g Hz but its data has %g Hz", src->name, src->rate,
               t->rate);
  else if (t->rate > 0)
    src->rate = t->rate;
  else if (!(src->rate > 0))
    diag_error(d, DIAG_MISSING_OPTION, src->path_pos,
               "'%s' needs 'rate': its file gives none", src->name);
  if (src->t0 == 0)
    src->t0 = t->t0;
}

/* Learns each source's channels (and rate, where the file has it) from its
 * file. A source that declares `channels: N` compiles without the file (it
 * is bound at train time with --data), but when the file is there it must
 * agree. */
static void bind_source(Diag *d, Source *src) {
  DataTable t = {0};
  DataClock clk;
  char err[512];
  if (probe_source(src, &t, &clk, err, sizeof err) != 0) {
    if (src->channels == 0)
      diag_error(d, DIAG_CANNOT_READ_DATA, src->path_pos,
                 "cannot read data for '%s': %s (give `channels: N` to compile "
                 "without the file)", src->name, err);
    else if (!(src->rate > 0))
      diag_error(d, DIAG_MISSING_OPTION, src->path_pos,
                 "'%s' needs 'rate' to compile without its file", src->name);
    return;
  }
  bind_rate(d, src, &clk);
  if (src->channels != 0 && src->channels != t.cols)
    diag_error(d, DIAG_CHANNEL_MISMATCH, src->path_pos,
               "'%s' declares %d channels but the file has %d", src->name,
               src->channels, t.cols);
  else {
    src->channels = t.cols;
    src->channel_names = t.names;
    t.names = NULL;
  }
  data_free(&t);
}

/* eeg: the lead field (a CSV, one row per observed region in the order of
 * `regions:`, its header the channel labels); an edf recording that selects
 * no channels then reads the lead field's, in its order. Returns the
 * lead field's channels, or 0 after an error. */
static int bind_leadfield(Diag *d, Observation *o) {
  DataTable t = {0};
  char err[512];
  int channels = 0;
  if (data_load(LOBE_SRC_CSV, o->leadfield, &t, err, sizeof err) != 0)
    diag_error(d, DIAG_LEADFIELD, o->leadfield_pos, "cannot read the lead field of '%s': %s",
               o->name, err);
  else if (t.rows != o->nregions)
    diag_error(d, DIAG_LEADFIELD, o->leadfield_pos, "'%s' observes %d regions but its lead "
               "field has %d rows (one per region, in the order of `regions:`)", o->name,
               o->nregions, t.rows);
  else {
    channels = t.cols;
    o->lead = ir_xcalloc((size_t)t.rows * t.cols, sizeof *o->lead);
    for (long i = 0; i < (long)t.rows * t.cols; i++)
      o->lead[i] = t.values[i];
    if (o->data.kind == SRC_EDF && o->data.nselect == 0) {
      o->data.select = t.names;
      o->data.nselect = t.cols;
      t.names = NULL;
    }
  }
  data_free(&t);
  return channels;
}

/* An observation's recording: eeg one column per lead field channel, bold
 * and fc one per observed region. */
static void bind_observation(Diag *d, Observation *o) {
  int want = o->nregions;
  const char *what = "observed regions";
  if (o->kind == OBS_EEG) {
    want = bind_leadfield(d, o);
    what = "lead field channels";
    if (want == 0)
      return;
  }
  bind_source(d, &o->data);
  if (o->data.channels != 0 && o->data.channels != want)
    diag_error(d, DIAG_CHANNEL_MISMATCH, o->data.path_pos, "'%s' has %d %s but its "
               "recording has %d columns", o->name, want, what, o->data.channels);
}

static void bind_data(Diag *d, Model *m) {
  for (int s = 0; s < m->nsources; s++)
    bind_source(d, &m->sources[s]);
  for (int o = 0; o < m->nobservations; o++)
    bind_observation(d, &m->observations[o]);
}

/* ---- middle and back end ------------------------------------------------- */

static int optimise_one(IrFunc *f, const char *dump_after) {
  char err[512];
  pass_run_all(f, dump_after, stderr);
  if (ir_verify(f, err, sizeof err) == 0)
    return 0;
  fprintf(stderr, "lobec: internal error: %s: %s\n", f->name, err);
  return -1;
}

/* Every entry point; the export kernels too, which --dump-after leaves out
 * as --emit=ir does (they are not entry points of the executable). */
static int optimise(IrModule *mod, const char *dump_after) {
  for (int i = 0; i < mod->nfuncs; i++)
    if (optimise_one(mod->funcs[i], dump_after) != 0)
      return -1;
  for (int s = 0; s < mod->model->nsources; s++)
    if (mod->source_fns[s].export_fn && optimise_one(mod->source_fns[s].export_fn, NULL) != 0)
      return -1;
  return 0;
}

static FILE *open_out(const char *path) {
  if (!path || strcmp(path, "-") == 0)
    return stdout;
  FILE *f = fopen(path, "w");
  if (!f)
    perror(path);
  return f;
}

static int close_out(FILE *f) {
  return f == stdout ? fflush(f) : fclose(f);
}

/* Default executable name: the spec's base name without .lobe. */
static char *default_output(const char *spec) {
  char *copy = strdup(spec);
  char *base = strdup(basename(copy));
  free(copy);
  char *dot = strrchr(base, '.');
  if (dot && dot != base)
    *dot = 0;
  return base;
}

static int emit_backend(const IrModule *mod, const Options *o) {
  char err[1024], obj[4096];
  char *exe = o->out ? strdup(o->out) : default_output(o->spec);
  CgOptions cg = {.opt_level = 2, .descriptor = true};
  if (o->emit == EMIT_LLVM)
    cg.emit_llvm = exe;
  if (o->emit == EMIT_OBJ)
    snprintf(obj, sizeof obj, "%s", exe);
  else
    snprintf(obj, sizeof obj, "%s.%d.o", exe, (int)getpid());
  int rc = cg_emit_object(mod, &cg, obj, err, sizeof err);
  if (rc == 0 && o->emit == EMIT_EXE)
    rc = link_executable(obj, exe, false, err, sizeof err);
  if (rc != 0)
    fprintf(stderr, "lobec: %s\n", err);
  if (o->emit != EMIT_OBJ)
    unlink(obj);
  free(exe);
  return rc;
}

/* --emit=ast: the parser's output, before sema (which reads connectomes). */
static int dump_ast(const Options *o) {
  Diag *d = diag_new(stderr, isatty(STDERR_FILENO));
  SrcFile *file = diag_load_file(d, o->spec);
  Program *prog = file ? parse_file(d, file) : NULL;
  int rc = 1;
  if (prog && diag_errors(d) == 0) {
    FILE *f = open_out(o->out);
    if (f) {
      ast_dump(f, prog);
      rc = close_out(f) ? 1 : 0;
    }
  }
  diag_flush(d);
  if (prog)
    ast_free(prog);
  diag_free(d);
  return rc;
}

static int build(const Options *o, Diag *d, Model *m) {
  bind_data(d, m);
  sema_check_probes(d, m);
  diag_flush(d);
  if (diag_errors(d))
    return 1;
  IrModule *mod = lower_model_with(m, !o->no_specialize);
  if (!mod)
    return 1;                        /* an internal error, already printed */
  int rc = optimise(mod, o->dump_after);
  if (rc == 0 && o->emit == EMIT_IR) {
    FILE *f = open_out(o->out);
    rc = f ? 0 : -1;
    if (f) {
      ir_print_module(f, mod);
      rc = close_out(f);
    }
  } else if (rc == 0)
    rc = emit_backend(mod, o);
  ir_module_free(mod);
  return rc ? 1 : 0;
}

/* ---- fmt --------------------------------------------------------------------- */

static int write_text(const char *path, const char *text) {
  FILE *f = open_out(path);
  if (!f)
    return 1;
  fputs(text, f);
  return close_out(f) ? 1 : 0;
}

/* Like `gofmt -l` under --check: the name of a file not in canonical form. */
static int format(const Options *o) {
  Diag *d = diag_new(stderr, isatty(STDERR_FILENO));
  SrcFile *file = diag_load_file(d, o->spec);
  char *text = file ? fmt_source(d, file) : NULL;
  diag_flush(d);
  int rc = 1;
  if (text && o->check) {
    rc = strcmp(text, file->text) != 0;
    if (rc)
      printf("%s\n", o->spec);
  } else if (text)
    rc = write_text(o->out, text);
  free(text);
  diag_free(d);
  return rc;
}

/* ---- graph ------------------------------------------------------------------- */

/* Channel counts for the picture, from the data files that can be read.
 * Unlike build, an unreadable file is no error: graph checks as check does,
 * and check does not read data. */
static void probe_channels(Model *m) {
  for (int s = 0; s < m->nsources; s++) {
    Source *src = &m->sources[s];
    DataTable t = {0};
    char err[512];
    if (src->channels == 0 && probe_source(src, &t, NULL, err, sizeof err) == 0)
      src->channels = t.cols;
    data_free(&t);
  }
}

/* Stops early when the reader has gone: its exit status then tells why. */
static void write_all(int fd, const char *text, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, text, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    text += n;
    len -= (size_t)n;
  }
}

static void dot_missing(const char *out) {
  fprintf(stderr, "lobec: error: cannot write '%s': Graphviz's `dot` is not installed "
          "(Debian package graphviz; scripts/install-deps.sh installs it); "
          "`-o NAME.dot` writes the dot text without it\n", out);
}

/* The exit status of `dot`, or 127 when it could not be run. */
static int wait_dot(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return 127;
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

/* Starts `dot TYPE -o OUT` reading the pipe fds[0]; an errno value, or 0. */
static int spawn_dot(const int fds[2], char *type, const char *out, pid_t *pid) {
  char *argv[] = {"dot", type, "-o", (char *)out, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[0], STDIN_FILENO);
  if (fds[0] != STDIN_FILENO)
    posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  int err = posix_spawnp(pid, "dot", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  return err;
}

/* Runs `dot -Tsvg -o OUT` (or png) with the dot text on its standard input. */
static int render(const char *text, size_t len, const char *format, const char *out) {
  int fds[2];
  if (pipe(fds) != 0) {
    perror("lobec: pipe");
    return 1;
  }
  char type[16];
  snprintf(type, sizeof type, "-T%s", format);
  pid_t pid;
  int err = spawn_dot(fds, type, out, &pid);
  close(fds[0]);
  if (err == 0) {
    signal(SIGPIPE, SIG_IGN);  /* a `dot` that exits early must not kill lobec */
    write_all(fds[1], text, len);
  }
  close(fds[1]);
  int status = err ? 127 : wait_dot(pid);
  if (err && err != ENOENT)
    fprintf(stderr, "lobec: error: cannot run `dot`: %s\n", strerror(err));
  else if (status == 127)
    dot_missing(out);
  else if (status != 0)
    fprintf(stderr, "lobec: error: `dot %s -o %s` failed (exit status %d)\n", type, out,
            status);
  return status != 0;
}

static int graph(const Options *o, Model *m) {
  static const char *const formats[] = {"dot", "svg", "png"};
  probe_channels(m);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) {
    perror("lobec: graph");
    return 1;
  }
  graph_write_dot(f, m, o->spec);
  fclose(f);
  int rc = o->picture == PICTURE_DOT ? write_text(o->out, text)
                                     : render(text, len, formats[o->picture], o->out);
  free(text);
  return rc;
}

/* ---- explain ----------------------------------------------------------------- */

enum { EXPLAIN_SUGGESTIONS = 5 };

static int explain_unknown(const char *text) {
  DiagCode close[EXPLAIN_SUGGESTIONS];
  int n = diag_code_closest(text, close, EXPLAIN_SUGGESTIONS);
  fprintf(stderr, "lobec: error: unknown diagnostic code '%s'", text);
  for (int i = 0; i < n; i++)
    fprintf(stderr, "%s%s", i ? ", " : "; closest: ", diag_code_info(close[i])->code);
  fputs(n ? "\n" : " (`lobec explain --list` lists them)\n", stderr);
  return 2;
}

/* `lobec explain CODE`, `--list` or `--list --markdown`, as argv[2..]. */
static int explain(int argc, char **argv) {
  bool list = argc >= 3 && strcmp(argv[2], "--list") == 0;
  if (list && (argc == 3 || (argc == 4 && strcmp(argv[3], "--markdown") == 0))) {
    diag_list_codes(stdout, argc == 4);
    return 0;
  }
  if (argc != 3 || list || argv[2][0] == '-') {
    usage(stderr);
    return 2;
  }
  int code = diag_code_find(argv[2]);
  if (code < 0)
    return explain_unknown(argv[2]);
  diag_explain(stdout, (DiagCode)code);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--version") == 0) {
    printf("lobec %s\n", LOBE_VERSION);
    return 0;
  }
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    usage(stdout);
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "explain") == 0)
    return explain(argc, argv);
  Options o;
  if (parse_args(argc, argv, &o) != 0 ||
      (strcmp(o.command, "check") != 0 && strcmp(o.command, "build") != 0 &&
       strcmp(o.command, "fmt") != 0 && strcmp(o.command, "graph") != 0)) {
    usage(stderr);
    return 2;
  }
  if (strcmp(o.command, "fmt") == 0)
    return format(&o);
  if (strcmp(o.command, "build") == 0 && o.emit == EMIT_AST)
    return dump_ast(&o);
  Diag *d = diag_new(stderr, isatty(STDERR_FILENO));
  Program *prog = NULL;
  Model *m = check_spec(d, o.spec, &prog);
  diag_flush(d);
  int rc = 1;
  if (m && strcmp(o.command, "graph") == 0)
    rc = graph(&o, m);
  else if (m)
    rc = strcmp(o.command, "check") == 0 ? 0 : build(&o, d, m);
  if (m)
    sema_free(m);
  if (prog)
    ast_free(prog);
  diag_free(d);
  return rc;
}
