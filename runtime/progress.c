/*
 * progress.c — training progress on stderr. On a terminal: one line redrawn
 * at most ten times a second. Otherwise (logs, pipes): a plain line every
 * log_every steps. Losses are means over the steps since the previous line,
 * so a line does not depend on when the terminal happened to redraw.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "rt.h"

enum { BAR_WIDTH = 24 };

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Rows of data a step reads: B windows of W per source, batch of T per observation. */
static int64_t samples_per_step(const RtProgress *p) {
  int64_t n = (int64_t)p->nactive * p->m->batch * p->m->window;
  for (int j = 0; j < p->nobs_active; j++) {
    const lobe_observation *ob = &p->m->observations[p->obs_active[j]];
    n += (int64_t)ob->batch * ob->window;
  }
  return n;
}

int rt_progress_begin(RtProgress *p, const lobe_model *m, const int *active, int nactive,
                      const int *obs_active, int nobs_active, int64_t first, int64_t total,
                      int64_t log_every) {
  memset(p, 0, sizeof *p);
  p->m = m;
  p->active = active;
  p->nactive = nactive;
  p->obs_active = obs_active;
  p->nobs_active = nobs_active;
  p->nterms = nactive + nobs_active + (m->prior_f32 != NULL);
  p->tty = isatty(STDERR_FILENO);
  p->first = first;
  p->total = total;
  p->log_every = log_every > 0 ? log_every : ((total - first) + 19) / 20;
  if (p->log_every < 1)
    p->log_every = 1;
  p->samples_per_step = samples_per_step(p);
  p->t_start = now();
  p->last_loss = NAN;
  p->src_sum = calloc((size_t)p->nterms + 1, sizeof *p->src_sum);
  p->last_src = calloc((size_t)p->nterms + 1, sizeof *p->last_src);
  return p->src_sum && p->last_src ? RT_OK : RT_FAIL;
}

void rt_progress_end(RtProgress *p) {
  if (p->tty && p->t_drawn > 0)
    fputc('\n', stderr);
  free(p->src_sum);
  free(p->last_src);
  p->src_sum = p->last_src = NULL;
}

/* ---- rates ------------------------------------------------------------- */

static double elapsed(const RtProgress *p) { return now() - p->t_start; }

static double samples_per_s(const RtProgress *p, int64_t step) {
  double dt = elapsed(p);
  return dt > 0 ? (double)(step - p->first) * (double)p->samples_per_step / dt : 0;
}

static double eta_s(const RtProgress *p, int64_t step) {
  int64_t done = step - p->first;
  return done > 0 ? (double)(p->total - step) * elapsed(p) / (double)done : 0;
}

/* The running mean of the current interval, or the last one's if empty. */
static double shown_loss(const RtProgress *p, int a) {
  if (p->nsum == 0)
    return a < 0 ? p->last_loss : p->last_src[a];
  return (a < 0 ? p->sum : p->src_sum[a]) / (double)p->nsum;
}

static void close_interval(RtProgress *p) {
  p->last_loss = p->sum / (double)p->nsum;
  for (int a = 0; a < p->nterms; a++) {
    p->last_src[a] = p->src_sum[a] / (double)p->nsum;
    p->src_sum[a] = 0;
  }
  p->sum = 0;
  p->nsum = 0;
}

/* ---- output ------------------------------------------------------------ */

static const char *term_name(const RtProgress *p, int a) {
  if (a < p->nactive)
    return p->m->sources[p->active[a]].name;
  a -= p->nactive;
  return a < p->nobs_active ? p->m->observations[p->obs_active[a]].name : "prior";
}

static void log_line(const RtProgress *p, int64_t step) {
  fprintf(stderr, "step=%lld loss=%.6g samples_per_s=%.0f eta_s=%.0f", (long long)step,
          p->last_loss, samples_per_s(p, step), eta_s(p, step));
  for (int a = 0; p->nterms > 1 && a < p->nterms; a++)
    fprintf(stderr, " loss[%s]=%.6g", term_name(p, a), p->last_src[a]);
  fputc('\n', stderr);
}

static void format_eta(char *buf, size_t len, double s) {
  long t = (long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

static int terminal_width(void) {
  struct winsize ws;
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
    return ws.ws_col;
  return 80;
}

/* Cut to the terminal's width: a wrapped line could not be redrawn in place. */
static void draw(const RtProgress *p, int64_t step) {
  char line[1024], bar[BAR_WIDTH + 1], eta[32];
  size_t n = 0, cap = sizeof line;
  int filled = (int)((double)BAR_WIDTH * (double)step / (double)p->total);
  for (int i = 0; i < BAR_WIDTH; i++)
    bar[i] = i < filled ? '#' : '.';
  bar[BAR_WIDTH] = '\0';
  format_eta(eta, sizeof eta, eta_s(p, step));
  n += (size_t)snprintf(line, cap, "step %lld/%lld [%s] loss %.4g %.0f samples/s ETA %s",
                        (long long)step, (long long)p->total, bar, shown_loss(p, -1),
                        samples_per_s(p, step), eta);
  for (int a = 0; p->nterms > 1 && a < p->nterms && n < cap; a++)
    n += (size_t)snprintf(line + n, cap - n, "%s%s %.4g", a ? ", " : " | ", term_name(p, a),
                          shown_loss(p, a));
  int width = terminal_width() - 1;
  fprintf(stderr, "\r%.*s\033[K", width, line);
  fflush(stderr);
}

void rt_progress_step(RtProgress *p, int64_t step, double loss, const double *src_loss) {
  p->sum += loss;
  for (int a = 0; a < p->nterms; a++)
    p->src_sum[a] += src_loss[a];
  p->nsum++;
  int boundary = step % p->log_every == 0 || step == p->total;
  if (boundary) {
    close_interval(p);
    if (!p->tty)
      log_line(p, step);
  }
  if (p->tty) {
    double t = now();
    if (step == p->total || t - p->t_drawn >= 0.1) {
      draw(p, step);
      p->t_drawn = t;
    }
  }
}
