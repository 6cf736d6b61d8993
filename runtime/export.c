/*
 * export.c — `brain export`: the trained model specialised to one (region,
 * subject) as a standalone object. spec folds the cell's conditioning into
 * theta' (docs/specialisation.md); we write a C file holding the parameters
 * the source's export kernel reads (theta' in the folded slots) as constant
 * arrays, the kernel lobec printed into the descriptor, and a wrapper
 * NAME_forward that feeds it chunks of EB times and returns data units; then
 * the system C compiler makes PATH.o of it. PATH.h declares the wrapper.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rt.h"
#include "c_literal.h"

extern char **environ;

typedef struct Export {
  const lobe_model *m;
  const RtOptions *o;
  int region, subject, source;
  char name[128];            /* the C prefix */
  char *base;                /* PATH without .o; PATH.c, .o, .h follow */
  char *c_path, *o_path, *h_path;
  float **theta;             /* [export_nfolded] */
} Export;

/* ---- what to export ----------------------------------------------------- */

static bool is_identifier(const char *s) {
  if (!*s || isdigit((unsigned char)*s))
    return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_')
      return false;
  return true;
}

/* R_S with every other character than a letter, digit or _ made _. */
static void default_name(Export *e) {
  snprintf(e->name, sizeof e->name, "%s%s_%s",
           isdigit((unsigned char)e->m->regions[e->region].name[0]) ? "_" : "",
           e->m->regions[e->region].name, e->m->subjects[e->subject]);
  for (char *p = e->name; *p; p++)
    if (!isalnum((unsigned char)*p))
      *p = '_';
}

static int pick_name(Export *e) {
  if (!e->o->name) {
    default_name(e);
    return RT_OK;
  }
  if (!is_identifier(e->o->name) || strlen(e->o->name) >= sizeof e->name - 16) {
    rt_error("--name %s: expected a C identifier (letters, digits, _) of at most %d characters",
             e->o->name, (int)sizeof e->name - 17);
    return RT_EUSAGE;
  }
  snprintf(e->name, sizeof e->name, "%s", e->o->name);
  return RT_OK;
}

static char *with_suffix(const char *base, const char *suffix) {
  size_t n = strlen(base) + strlen(suffix) + 1;
  char *s = malloc(n);
  if (s)
    snprintf(s, n, "%s%s", base, suffix);
  return s;
}

static int pick_paths(Export *e) {
  const char *out = e->o->out;
  size_t n = out ? strlen(out) : 0;
  if (n > 2 && strcmp(out + n - 2, ".o") == 0)
    n -= 2;
  if (!n || out[n - 1] == '/') {
    rt_error("export needs -o PATH naming a file (PATH.o and PATH.h are written)");
    return RT_EUSAGE;
  }
  e->base = strndup(out, n);
  e->c_path = e->base ? with_suffix(e->base, ".c") : NULL;
  e->o_path = e->base ? with_suffix(e->base, ".o") : NULL;
  e->h_path = e->base ? with_suffix(e->base, ".h") : NULL;
  if (!e->c_path || !e->o_path || !e->h_path) {
    rt_error("out of memory");
    return RT_FAIL;
  }
  return RT_OK;
}

/* An export kernel whose tables are consistent with the model. */
static bool kernel_ok(const lobe_model *m, const lobe_source *src) {
  if (!src->export_c || !src->export_spec_f32 || src->export_batch < 1 ||
      src->export_inputs < 0 || src->export_nfolded < 0 || src->export_nparams < 0)
    return false;
  for (int k = 0; k < src->export_nfolded; k++)
    if (src->export_folded[k] < 0 || src->export_folded[k] >= m->nparams)
      return false;
  for (int k = 0; k < src->export_nparams; k++)
    if (src->export_params[k] < 0 || src->export_params[k] >= m->nparams)
      return false;
  return true;
}

static int pick_target(Export *e) {
  const lobe_model *m = e->m;
  const RtOptions *o = e->o;
  if (!o->region || !o->subject || !o->out) {
    rt_error("export needs --region, --subject and -o (see export --help)");
    return RT_EUSAGE;
  }
  if (rt_pick_cell(m, o, &e->region, &e->subject, &e->source) != RT_OK)
    return RT_EUSAGE;
  if (!kernel_ok(m, &m->sources[e->source])) {
    rt_error("source '%s' has no export kernel: its region has in-edges and film "
             "conditioning, no source of its AUNN is specialised, or the model was built "
             "with --no-specialize or an older lobec", m->sources[e->source].name);
    return RT_FAIL;
  }
  int rc = pick_name(e);
  return rc == RT_OK ? pick_paths(e) : rc;
}

/* ---- theta' ------------------------------------------------------------- */

/* spec for (region, subject) at the checkpoint's parameters. */
static int fold(Export *e, RtParams *p) {
  const lobe_source *src = &e->m->sources[e->source];
  int np = e->m->nparams, nf = src->export_nfolded;
  int32_t module[1] = {e->region}, subject[1] = {e->subject};
  void **args = calloc((size_t)(np + 2 + nf), sizeof *args);
  e->theta = calloc((size_t)nf + 1, sizeof *e->theta);
  bool ok = args && e->theta;
  for (int k = 0; ok && k < nf; k++)
    ok = (e->theta[k] = calloc(p->numel[src->export_folded[k]], sizeof(float))) != NULL;
  if (ok) {
    for (int i = 0; i < np; i++)
      args[i] = p->value[i];
    args[np] = module;
    args[np + 1] = subject;
    for (int k = 0; k < nf; k++)
      args[np + 2 + k] = e->theta[k];
    src->export_spec_f32(args);
  } else
    rt_error("out of memory");
  free(args);
  return ok ? RT_OK : RT_FAIL;
}

/* Parameter i as the kernel reads it: theta' where spec folded it. */
static const float *kernel_value(const Export *e, const RtParams *p, int i) {
  const lobe_source *src = &e->m->sources[e->source];
  for (int k = 0; k < src->export_nfolded; k++)
    if (src->export_folded[k] == i)
      return e->theta[k];
  return p->value[i];
}

/* ---- the C file ---------------------------------------------------------- */

static void write_array(FILE *f, const char *decl, const float *x, size_t n) {
  fprintf(f, "%s[%zu] = {", decl, n);
  for (size_t i = 0; i < n; i++) {
    fputs(i == 0 ? "\n  " : i % 6 ? ", " : ",\n  ", f);
    c_float_literal(f, x[i]);
  }
  fputs("};\n", f);
}

static void write_params(FILE *f, const Export *e, const RtParams *p) {
  const lobe_source *src = &e->m->sources[e->source];
  for (int k = 0; k < src->export_nparams; k++) {
    int i = src->export_params[k];
    char decl[96];
    snprintf(decl, sizeof decl, "/* %.60s */\nstatic const float lobe_p%d", e->m->params[i].name,
             i);
    write_array(f, decl, kernel_value(e, p, i), p->numel[i]);
  }
}

/* out = std * y + mean per channel, or exp(y) for a poisson source. */
static void write_units(FILE *f, const Export *e, const RtState *st) {
  const lobe_source *src = &e->m->sources[e->source];
  int C = src->channels;
  if (src->loss_kind == LOBE_LOSS_POISSON) {
    fputs("#define LOBE_UNITS(y, c) ((float)exp((double)(y)))\n", f);
    return;
  }
  fprintf(f, "static const double lobe_mean[%d] = {", C);
  for (int c = 0; c < C; c++)
    fprintf(f, "%s%.17g", c ? ", " : "", st->mean[e->source][c]);
  fprintf(f, "};\nstatic const double lobe_std[%d] = {", C);
  for (int c = 0; c < C; c++)
    fprintf(f, "%s%.17g", c ? ", " : "", st->std[e->source][c]);
  fputs("};\n#define LOBE_UNITS(y, c) ((float)((y) * lobe_std[c] + lobe_mean[c]))\n", f);
}

static void write_wrapper(FILE *f, const Export *e) {
  const lobe_source *src = &e->m->sources[e->source];
  int np = e->m->nparams, EB = src->export_batch, I = src->export_inputs, C = src->channels;
  fprintf(f, "\nvoid %s_forward(const float *t, int n, const float *inputs, float *out) {\n",
          e->name);
  fprintf(f, "  static float tb[%d], ub[%d], ob[%d];\n", EB, I > 0 ? EB * I : 1, EB * C);
  fprintf(f, "  const void *in[%d] = {0};\n  void *res[1] = {ob};\n", np + 2);
  for (int k = 0; k < src->export_nparams; k++)
    fprintf(f, "  in[%d] = lobe_p%d;\n", src->export_params[k], src->export_params[k]);
  fprintf(f, "  in[%d] = tb;\n  in[%d] = ub;\n", np, np + 1);
  fprintf(f, "  for (int first = 0; first < n; first += %d) {\n", EB);
  fprintf(f, "    int m = n - first < %d ? n - first : %d;\n", EB, EB);
  fprintf(f, "    for (int i = 0; i < %d; i++) {\n", EB);
  fputs("      long row = first + (i < m ? i : 0);   /* padding repeats the first */\n", f);
  fputs("      tb[i] = t[row];\n", f);
  fprintf(f, "      for (int c = 0; c < %d; c++)\n", I);
  fprintf(f, "        ub[i * %d + c] = inputs ? inputs[row * %d + c] : 0.0f;\n", I, I);
  fputs("    }\n    lobe_export_kernel(in, res);\n    for (int i = 0; i < m; i++)\n", f);
  fprintf(f, "      for (int c = 0; c < %d; c++)\n", C);
  fprintf(f, "        out[(long)(first + i) * %d + c] = LOBE_UNITS(ob[i * %d + c], c);\n", C,
          C);
  fputs("  }\n}\n", f);
}

static void write_source(FILE *f, const Export *e, const RtState *st) {
  const lobe_source *src = &e->m->sources[e->source];
  fprintf(f, "/* Generated by `brain export` from model %s: region %s of subject %s read\n"
             " * through source %s. See %s_forward in the header. */\n",
          e->m->name, e->m->regions[e->region].name, e->m->subjects[e->subject], src->name,
          e->name);
  fputs("#include <math.h>\n#include <stdint.h>\n#include <string.h>\n\n", f);
  fprintf(f, "void %s_forward(const float *t, int n, const float *inputs, float *out);\n\n",
          e->name);
  write_params(f, e, &st->params);
  fputs("\n", f);
  fputs(src->export_c, f);
  fputs("\n", f);
  write_units(f, e, st);
  write_wrapper(f, e);
}

/* ---- the header ------------------------------------------------------------ */

/* A name inside a C comment: no comment end, no control characters. */
static void write_comment_text(FILE *f, const char *s) {
  for (char prev = 0; *s; prev = *s++)
    fputc(iscntrl((unsigned char)*s) || (*s == '/' && prev == '*') ? '?' : *s, f);
}

static void write_channels(FILE *f, const lobe_source *src) {
  fputs(" * channels:", f);
  for (int c = 0; c < src->channels; c++) {
    fputs(c % 8 ? " " : "\n *   ", f);
    if (src->channel_names && src->channel_names[c])
      write_comment_text(f, src->channel_names[c]);
    else
      fprintf(f, "ch%d", c);
  }
  fputs("\n", f);
}

static void write_header(FILE *f, const Export *e) {
  const lobe_source *src = &e->m->sources[e->source];
  bool poisson = src->loss_kind == LOBE_LOSS_POISSON;
  fputs("/* ", f);
  write_comment_text(f, e->name);
  fputs(" - generated by `brain export` from model ", f);
  write_comment_text(f, e->m->name);
  fputs(":\n * region ", f);
  write_comment_text(f, e->m->regions[e->region].name);
  fputs(" of subject ", f);
  write_comment_text(f, e->m->subjects[e->subject]);
  fputs(" read through the head of source ", f);
  write_comment_text(f, src->name);
  fprintf(f, ".\n *\n * void %s_forward(const float *t, int n, const float *inputs, float *out)\n"
             " *   t       n times in seconds (the data's clock)\n"
             " *   inputs  [n, %s_INPUTS] row-major: the region's input u, the sum over its\n"
             " *           in-edges of gate * the sending region's embedding; NULL when\n"
             " *           %s_INPUTS is 0 (NULL otherwise means u = 0)\n"
             " *   out     [n, %s_CHANNELS] row-major, in data units (%s)\n"
             " * Not reentrant (static buffers). Link with -lm.\n",
          e->name, e->name, e->name, e->name,
          poisson ? "the rate exp(y) of the poisson source" : "the source's scale");
  write_channels(f, src);
  fprintf(f, " */\n#ifndef %s_H\n#define %s_H\n\n", e->name, e->name);
  fprintf(f, "#define %s_CHANNELS %d\n#define %s_INPUTS %d\n\n", e->name, src->channels,
          e->name, src->export_inputs);
  fputs("#ifdef __cplusplus\nextern \"C\" {\n#endif\n", f);
  fprintf(f, "void %s_forward(const float *t, int n, const float *inputs, float *out);\n",
          e->name);
  fputs("#ifdef __cplusplus\n}\n#endif\n\n#endif\n", f);
}

typedef void (*Writer)(FILE *f, const Export *e, const RtState *st);

static void header_writer(FILE *f, const Export *e, const RtState *st) {
  (void)st;
  write_header(f, e);
}

static int write_file(const char *path, Writer w, const Export *e, const RtState *st) {
  FILE *f = fopen(path, "w");
  if (!f) {
    rt_error("cannot write %s: %s", path, strerror(errno));
    return RT_FAIL;
  }
  w(f, e, st);
  if (ferror(f) | fclose(f)) {
    rt_error("cannot write %s: %s", path, strerror(errno));
    return RT_FAIL;
  }
  return RT_OK;
}

/* ---- compiling ------------------------------------------------------------- */

/* $CC (one word) or cc: -std=c99 -O2 -fPIC -c PATH.c -o PATH.o */
static int compile(const Export *e) {
  const char *cc = getenv("CC");
  if (!cc || !*cc || strchr(cc, ' '))
    cc = "cc";
  char *argv[] = {(char *)cc, "-std=c99", "-O2", "-fPIC", "-c", e->c_path, "-o", e->o_path,
                  NULL};
  pid_t pid;
  int err = posix_spawnp(&pid, cc, NULL, NULL, argv, environ), status = 0;
  if (err != 0) {
    rt_error("cannot run the C compiler '%s': %s (install one, or set CC)", cc, strerror(err));
    return RT_FAIL;
  }
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      rt_error("waiting for '%s': %s", cc, strerror(errno));
      return RT_FAIL;
    }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return RT_OK;
  rt_error("'%s' failed on %s (kept for inspection)", cc, e->c_path);
  return RT_FAIL;
}

/* ---- the command ------------------------------------------------------------ */

static int load(RtState *st, const lobe_model *m, const char *dir) {
  if (rt_state_alloc(st, m) != RT_OK) {
    rt_error("out of memory");
    return RT_FAIL;
  }
  int rc = rt_ckpt_load(st, dir);
  if (rc == RT_NOCKPT)
    rt_error("no checkpoint at %s; run train first", dir);
  return rc == RT_OK ? RT_OK : RT_FAIL;
}

static int run(Export *e) {
  RtState st;
  int rc = load(&st, e->m, e->o->ckpt_dir);
  if (rc == RT_OK)
    rc = fold(e, &st.params);
  if (rc == RT_OK)
    rc = write_file(e->c_path, write_source, e, &st);
  if (rc == RT_OK)
    rc = write_file(e->h_path, header_writer, e, &st);
  if (rc == RT_OK)
    rc = compile(e);
  if (rc == RT_OK && !e->o->keep_source)
    unlink(e->c_path);
  if (rc == RT_OK)
    printf("exported %s_forward (%d channels, %d inputs) to %s and %s\n", e->name,
           e->m->sources[e->source].channels, e->m->sources[e->source].export_inputs,
           e->o_path, e->h_path);
  rt_state_free(&st);
  return rc;
}

static void export_free(Export *e) {
  for (int k = 0; e->theta && k < e->m->sources[e->source].export_nfolded; k++)
    free(e->theta[k]);
  free(e->theta);
  free(e->base);
  free(e->c_path);
  free(e->o_path);
  free(e->h_path);
}

int rt_cmd_export(const lobe_model *m, const RtOptions *o) {
  Export e = {.m = m, .o = o, .source = -1};
  int rc = pick_target(&e);
  if (rc == RT_OK)
    rc = run(&e);
  export_free(&e);
  return rc;
}
