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
  O_REGION, O_SUBJECT, O_FROM, O_TO, O_SOURCE, O_OUT, O_HELP,
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
  {"--output", O_OUT, 1},         {"--help", O_HELP, 0},
  {"-h", O_HELP, 0},
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
   "  --data NAME=PATH      read source NAME from PATH instead of the compiled path\n"
   "  --checkpoint DIR      checkpoint directory (default: ./PROG.ckpt)\n"
   "  --resume              continue from the checkpoint in DIR, exactly\n"
   "  --log-every N         progress line every N steps when not on a terminal\n"
   "                        (default: about 20 lines per run)\n"
   "  --checkpoint-every N  also checkpoint every N steps (default: the spec's; 0: only\n"
   "                        at the end and on SIGINT/SIGTERM)\n"},
  {"eval", rt_cmd_eval, BIT(O_DATA) | BIT(O_CKPT) | BIT(O_THREADS),
   "eval [--data NAME=PATH]... [--checkpoint DIR] [--threads T]",
   "Runs the trained model over every row of every source and prints per source\n"
   "the mean squared error in data units (mse), on the standardised training scale\n"
   "(mse_std, the training loss) and R^2 averaged over channels.\n"},
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
   "source (parameters from the checkpoint if there is one, else freshly initialised).\n"
   "Last line: gradcheck: max_rel_err=X params=N. Exit status 1 if X > 1e-3.\n"},
  {"info", rt_cmd_info, 0, "info",
   "Prints the parameters, regions, subjects, data sources and which (region,\n"
   "subject) cells have data.\n"},
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
