/*
 * cli.c — the command line of a generated executable: `brain COMMAND
 * [OPTIONS]`. Parsing is our own (not getopt) so that rt_main can run many
 * times in one process, as the tests do.
 */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

static char prog[64] = "brain";

void rt_error(const char *fmt, ...) {
  va_list ap;
  fflush(stdout);
  fprintf(stderr, "%s: ", prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* ---- options ----------------------------------------------------------- */

enum OptId {
  O_STEPS, O_SEED, O_THREADS, O_DATA, O_CKPT, O_RESUME, O_LOG_EVERY, O_CKPT_EVERY,
  O_REGION, O_SUBJECT, O_FROM, O_TO, O_SOURCE, O_OUT, O_HELDOUT, O_HEAD, O_HELP,
  O_NAME, O_KEEP_SOURCE, O_FC_OUT,
};

typedef struct OptSpec {
  const char *name;
  enum OptId id;
  int has_value;
} OptSpec;

static const OptSpec opt_specs[] = {
  {"--steps", O_STEPS, 1},        {"--seed", O_SEED, 1},
  {"--threads", O_THREADS, 1},    {"--data", O_DATA, 1},
  {"--checkpoint", O_CKPT, 1},    {"--resume", O_RESUME, 0},
  {"--log-every", O_LOG_EVERY, 1}, {"--checkpoint-every", O_CKPT_EVERY, 1},
  {"--region", O_REGION, 1},      {"--subject", O_SUBJECT, 1},
  {"--from", O_FROM, 1},          {"--to", O_TO, 1},
  {"--source", O_SOURCE, 1},      {"-o", O_OUT, 1},
  {"--output", O_OUT, 1},         {"--heldout", O_HELDOUT, 1},
  {"--head", O_HEAD, 1},          {"--help", O_HELP, 0},
  {"-h", O_HELP, 0},               {"--name", O_NAME, 1},
  {"--keep-source", O_KEEP_SOURCE, 0}, {"--fc-out", O_FC_OUT, 1},
};

#define BIT(id) (1u << (id))

typedef struct Command {
  const char *name;
  int (*run)(const lobe_model *, const RtOptions *);
  unsigned options;
  const char *usage;
  const char *help;
} Command;

static const Command commands[] = {
  {"train", rt_cmd_train,
   BIT(O_STEPS) | BIT(O_SEED) | BIT(O_THREADS) | BIT(O_DATA) | BIT(O_CKPT) | BIT(O_RESUME) |
   BIT(O_LOG_EVERY) | BIT(O_CKPT_EVERY),
   "train [--steps N] [--seed S] [--threads T] [--data NAME=PATH]... [--checkpoint DIR]\n"
   "            [--resume] [--log-every N] [--checkpoint-every N]",
   "Trains the model on its data sources with Adam and writes a checkpoint.\n"
   "  --steps N             total steps (default: the spec's); with --resume, the total\n"
   "                        to reach, counting the steps already done\n"
   "  --seed S              seed for initialisation and batches (default: the spec's)\n"
   "  --threads T           OpenBLAS threads (default 1)\n"
   "  --data NAME=PATH      read source or observation NAME from PATH instead of the\n"
   "                        compiled path\n"
   "  --checkpoint DIR      checkpoint directory (default: ./PROG.ckpt)\n"
   "  --resume              continue from the checkpoint in DIR, exactly\n"
   "  --log-every N         progress line every N steps when not on a terminal\n"
   "                        (default: about 20 lines per run)\n"
   "  --checkpoint-every N  also checkpoint every N steps (default: the spec's; 0: only\n"
   "                        at the end and on SIGINT/SIGTERM)\n"},
  {"eval", rt_cmd_eval,
   BIT(O_DATA) | BIT(O_CKPT) | BIT(O_THREADS) | BIT(O_HELDOUT) | BIT(O_HEAD) | BIT(O_FC_OUT),
   "eval [--data NAME=PATH]... [--checkpoint DIR] [--threads T]\n"
   "            [--heldout R.S=PATH [--head SOURCE]]... [--fc-out DIR]",
   "Runs the trained model over every row of every source and prints per source\n"
   "the mean squared error in data units (mse), on the standardised training scale\n"
   "(mse_std) and R^2 averaged over channels; per observation, over disjoint windows\n"
   "covering its recording, the mean loss, the correlation r of prediction and\n"
   "target (eeg, bold) and fc_r, that of the predicted and the recorded FC (bold, fc).\n"
   "  --fc-out DIR          write DIR/NAME.fc.csv per bold or fc observation: the\n"
   "                        predicted N x N FC matrix, header the region names\n"
   "  --heldout R.S=PATH    also predict region R of subject S, a cell the model has\n"
   "                        no training data for, and compare with the recording in\n"
   "                        PATH; one line 'heldout R.S head=... r2=... baseline_r2=...'\n"
   "                        each, the baseline being the other subjects' recordings of R\n"
   "  --head SOURCE         the source on R whose head, rate and scale read the\n"
   "                        --heldout before it (default: R's first source)\n"},
  {"predict", rt_cmd_predict,
   BIT(O_REGION) | BIT(O_SUBJECT) | BIT(O_FROM) | BIT(O_TO) | BIT(O_SOURCE) | BIT(O_OUT) |
   BIT(O_CKPT) | BIT(O_THREADS),
   "predict --region R --subject S --from T0 --to T1 [--source NAME] [-o FILE.csv]\n"
   "            [--checkpoint DIR] [--threads T]",
   "Writes the trained model's output for region R of subject S from T0 to T1\n"
   "seconds as CSV (header t,<channels>; data units), sampled at the source's rate.\n"
   "The source (channels and rate) is --source, else the one of cell (R, S), else\n"
   "the first on region R. Output goes to FILE (-o) or standard output.\n"},
  {"gradcheck", rt_cmd_gradcheck, BIT(O_DATA) | BIT(O_SEED) | BIT(O_CKPT) | BIT(O_THREADS),
   "gradcheck [--data NAME=PATH]... [--seed S] [--checkpoint DIR] [--threads T]",
   "Compares the compiled f64 gradients with central differences on one batch per\n"
   "source and one window per observation (parameters from the checkpoint if there\n"
   "is one, else freshly initialised).\n"
   "Last line: gradcheck: max_rel_err=X params=N. Exit status 1 if X > 1e-3.\n"},
  {"export", rt_cmd_export,
   BIT(O_REGION) | BIT(O_SUBJECT) | BIT(O_SOURCE) | BIT(O_OUT) | BIT(O_NAME) | BIT(O_CKPT) |
   BIT(O_KEEP_SOURCE),
   "export --region R --subject S -o PATH [--source NAME] [--name NAME]\n"
   "            [--checkpoint DIR] [--keep-source]",
   "Writes PATH.o and PATH.h: the trained model specialised to region R of subject S\n"
   "as a standalone object a C program links with -lm alone, defining\n"
   "  void NAME_forward(const float *t, int n, const float *inputs, float *out)\n"
   "(out[n, channels] in data units at the n times t, in seconds; see PATH.h).\n"
   "The source whose head, channels and scale it reads is chosen as for predict.\n"
   "Compiles with cc (or $CC) -std=c99 -O2 -fPIC -c.\n"
   "  --name NAME           the C prefix (default: R_S made an identifier)\n"
   "  --keep-source         keep the generated PATH.c beside the object\n"},
  {"info", rt_cmd_info, BIT(O_CKPT), "info [--checkpoint DIR]",
   "Prints the training settings, parameters, regions, subjects, edges, data sources,\n"
   "observations and which (region, subject) cells have data, through which\n"
   "modalities. Edge gates show their trained value when DIR holds a checkpoint,\n"
   "else their initial one.\n"},
};

enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void print_usage(FILE *f) {
  fprintf(f, "usage: %s COMMAND [OPTIONS]\n\ncommands:\n", prog);
  for (int i = 0; i < NCOMMANDS; i++)
    fprintf(f, "  %s %s\n", prog, commands[i].usage);
  fprintf(f, "\n'%s COMMAND --help' describes a command; docs/cli.md has the details.\n", prog);
}

static void print_command_help(const Command *c) {
  printf("usage: %s %s\n\n%s", prog, c->usage, c->help);
}

/* ---- values ------------------------------------------------------------ */

static int parse_int(const char *opt, const char *s, int64_t min, int64_t max, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (!*s || *end || errno || v < min || v > max) {
    rt_error("%s: expected an integer from %lld to %lld, found '%s'", opt, (long long)min,
             (long long)max, s);
    return RT_EUSAGE;
  }
  *out = v;
  return RT_OK;
}

static int parse_seed(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (*s < '0' || *s > '9' || *end || errno) {
    rt_error("--seed: expected a non-negative integer below 2^64, found '%s'", s);
    return RT_EUSAGE;
  }
  *out = v;
  return RT_OK;
}

static int parse_seconds(const char *opt, const char *s, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (!*s || *end || !isfinite(v)) {
    rt_error("%s: expected a time in seconds, found '%s'", opt, s);
    return RT_EUSAGE;
  }
  *out = v;
  return RT_OK;
}

/* --data NAME=PATH; the name is copied because argv stays untouched. */
static int parse_data(const lobe_model *m, RtOptions *o, const char *s) {
  const char *eq = strchr(s, '=');
  if (!eq || eq == s || !eq[1]) {
    rt_error("--data: expected NAME=PATH, found '%s'", s);
    return RT_EUSAGE;
  }
  char *name = strndup(s, (size_t)(eq - s));
  if (!name) {
    rt_error("out of memory");
    return RT_FAIL;
  }
  RtDataArg *d = &o->data[o->ndata++];
  d->name = name;
  d->path = eq + 1;
  if (rt_find(m, RT_DATA, name) < 0) {
    rt_error_unknown(m, m->nobservations ? RT_DATA : RT_SOURCE, name);
    return RT_EUSAGE;
  }
  for (int i = 0; i + 1 < o->ndata; i++)
    if (strcmp(o->data[i].name, name) == 0) {
      rt_error("--data: '%s' given twice", name);
      return RT_EUSAGE;
    }
  return RT_OK;
}

/* --heldout R.S=PATH; its --head, if any, follows it. */
static int parse_heldout(const lobe_model *m, RtOptions *o, const char *s) {
  const char *eq = strchr(s, '=');
  char *cell = eq && eq != s && eq[1] ? strndup(s, (size_t)(eq - s)) : NULL;
  RtHeldout *h = &o->heldout[o->nheldout];
  if (!cell) {
    rt_error("--heldout: expected REGION.SUBJECT=PATH, found '%s'", s);
    return RT_EUSAGE;
  }
  int rc = rt_find_cell(m, cell, &h->region, &h->subject);
  if (rc != RT_OK)
    rt_error("--heldout: '%s' is not REGION.SUBJECT of this model (see '%s info')", cell,
             prog);
  free(cell);
  h->path = eq + 1;
  h->head = -1;
  o->nheldout += rc == RT_OK;
  return rc == RT_OK ? RT_OK : RT_EUSAGE;
}

static int parse_head(const lobe_model *m, RtOptions *o, const char *name) {
  RtHeldout *h = o->nheldout ? &o->heldout[o->nheldout - 1] : NULL;
  if (!h || h->head >= 0) {
    rt_error("--head %s: expected after a --heldout, one per --heldout", name);
    return RT_EUSAGE;
  }
  if ((h->head = rt_find(m, RT_SOURCE, name)) < 0) {
    rt_error_unknown(m, RT_SOURCE, name);
    return RT_EUSAGE;
  }
  return RT_OK;
}

static int apply(const lobe_model *m, RtOptions *o, const OptSpec *spec, const char *v) {
  int64_t n = 0;
  int rc = RT_OK;
  switch (spec->id) {
  case O_STEPS: rc = parse_int(spec->name, v, 1, INT64_MAX / 2, &o->steps); break;
  case O_SEED: rc = parse_seed(v, &o->seed); o->have_seed = 1; break;
  case O_THREADS: rc = parse_int(spec->name, v, 1, 1024, &n); o->threads = (int)n; break;
  case O_DATA: rc = parse_data(m, o, v); break;
  case O_CKPT: o->ckpt_dir = v; break;
  case O_RESUME: o->resume = 1; break;
  case O_LOG_EVERY: rc = parse_int(spec->name, v, 1, INT64_MAX / 2, &o->log_every); break;
  case O_CKPT_EVERY: rc = parse_int(spec->name, v, 0, INT64_MAX / 2, &o->checkpoint_every);
    break;
  case O_REGION: o->region = v; break;
  case O_SUBJECT: o->subject = v; break;
  case O_FROM: rc = parse_seconds(spec->name, v, &o->from); o->have_from = 1; break;
  case O_TO: rc = parse_seconds(spec->name, v, &o->to); o->have_to = 1; break;
  case O_SOURCE: o->source = v; break;
  case O_OUT: o->out = v; break;
  case O_HELDOUT: rc = parse_heldout(m, o, v); break;
  case O_HEAD: rc = parse_head(m, o, v); break;
  case O_NAME: o->name = v; break;
  case O_KEEP_SOURCE: o->keep_source = 1; break;
  case O_FC_OUT: o->fc_out = v; break;
  case O_HELP: break;
  }
  return rc;
}

/* ---- arguments --------------------------------------------------------- */

static const OptSpec *find_option(const char *arg, size_t len) {
  for (size_t i = 0; i < sizeof opt_specs / sizeof opt_specs[0]; i++)
    if (strlen(opt_specs[i].name) == len && strncmp(opt_specs[i].name, arg, len) == 0)
      return &opt_specs[i];
  return NULL;
}

/* Finds argv[*i]'s option and its value (--opt VALUE or --opt=VALUE). */
static const OptSpec *take_option(const Command *c, int argc, char **argv, int *i,
                                  const char **value) {
  const char *arg = argv[*i], *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
  const OptSpec *spec = find_option(arg, eq ? (size_t)(eq - arg) : strlen(arg));
  if (!spec) {
    rt_error("%s '%s' for '%s' (see '%s %s --help')",
             arg[0] == '-' ? "unknown option" : "unexpected argument", arg, c->name, prog,
             c->name);
    return NULL;
  }
  if (spec->id != O_HELP && !(c->options & BIT(spec->id))) {
    rt_error("option %s does not apply to '%s' (see '%s %s --help')", spec->name, c->name,
             prog, c->name);
    return NULL;
  }
  *value = eq ? eq + 1 : NULL;
  if (spec->has_value && !eq && *i + 1 < argc)
    *value = argv[++*i];
  if (spec->has_value && !*value) {
    rt_error("option %s needs a value", spec->name);
    return NULL;
  }
  if (!spec->has_value && eq) {
    rt_error("option %s takes no value", spec->name);
    return NULL;
  }
  return spec;
}

static int parse_args(const lobe_model *m, const Command *c, int argc, char **argv,
                      RtOptions *o, int *help) {
  for (int i = 2; i < argc; i++) {
    const char *value;
    const OptSpec *spec = take_option(c, argc, argv, &i, &value);
    if (!spec)
      return RT_EUSAGE;
    *help |= spec->id == O_HELP;
    int rc = apply(m, o, spec, value);
    if (rc != RT_OK)
      return rc;
  }
  return RT_OK;
}

/* ---- main -------------------------------------------------------------- */

static void set_prog(const char *argv0) {
  const char *base = argv0 && *argv0 ? strrchr(argv0, '/') : NULL;
  base = base ? base + 1 : argv0 && *argv0 ? argv0 : "brain";
  snprintf(prog, sizeof prog, "%s", *base ? base : "brain");
}

static const Command *find_command(const char *name) {
  for (int i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

static int run_command(const lobe_model *m, const Command *c, int argc, char **argv) {
  char default_dir[sizeof prog + 8];
  snprintf(default_dir, sizeof default_dir, "%s.ckpt", prog);
  RtOptions o = {.threads = 1, .ckpt_dir = default_dir, .checkpoint_every = -1};
  int help = 0, rc = RT_FAIL;
  o.data = calloc((size_t)argc, sizeof *o.data);
  o.heldout = calloc((size_t)argc, sizeof *o.heldout);
  if (!o.data || !o.heldout)
    rt_error("out of memory");
  else if ((rc = parse_args(m, c, argc, argv, &o, &help)) == RT_OK && help)
    print_command_help(c);
  else if (rc == RT_OK) {
    openblas_set_num_threads(o.threads);
    rc = c->run(m, &o);
  }
  for (int i = 0; i < o.ndata; i++)
    free(o.data[i].name);
  free(o.data);
  free(o.heldout);
  return rc;
}

static int dispatch(const lobe_model *m, int argc, char **argv) {
  if (argc < 2) {
    print_usage(stderr);
    return RT_EUSAGE;
  }
  const char *name = argv[1];
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
    print_usage(stdout);
    return RT_OK;
  }
  const Command *c = find_command(name);
  if (!c) {
    rt_error("unknown command '%s' (expected train, eval, predict, export, gradcheck or info; "
             "see '%s --help')", name, prog);
    return RT_EUSAGE;
  }
  if (rt_model_check(m) != RT_OK)
    return RT_FAIL;
  return run_command(m, c, argc, argv);
}

int rt_main(const lobe_model *m, int argc, char **argv) {
  set_prog(argc > 0 ? argv[0] : NULL);
  int rc = dispatch(m, argc, argv);
  fflush(stdout);
  fflush(stderr);
  return rc;
}
