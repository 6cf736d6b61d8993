/*
 * graph.c — `lobec graph`: the region graph of a checked Model in Graphviz
 * dot.
 *
 * One node per region: its name, its AUNN, its position, and one row per
 * subject saying whether that (region, subject) cell is recorded and by
 * which source. One edge per Model edge: solid within the time step, dashed
 * when delayed (labelled with the delay and, when known, the length), with
 * the gate's prior in the tooltip. A title names the spec, the subjects and
 * the training window. The text depends on the Model alone, in its order,
 * so it can be compared with golden files.
 */
#include <string.h>

#include "front.h"

/* Fill colours of the nodes, one per AUNN (cycling): regions that share
 * weights share a colour. */
static const char *const aunn_colours[] = {
  "#dbe9f6", "#fde2c8", "#d9f0d3", "#f2d7ee", "#fff2b3", "#e4e4e4",
};
enum { NCOLOURS = sizeof aunn_colours / sizeof aunn_colours[0] };

/* Text inside an HTML-like label: the markup characters as entities. */
static void put_html(FILE *out, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '&': fputs("&amp;", out); break;
    case '<': fputs("&lt;", out); break;
    case '>': fputs("&gt;", out); break;
    case '"': fputs("&quot;", out); break;
    case '\n': fputs("<BR/>", out); break;
    default: fputc(*s, out);
    }
  }
}

/* Text inside a double-quoted dot string: quotes and backslashes escaped,
 * line breaks as dot's \n. */
static void put_escaped(FILE *out, const char *s) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      fputc('\\', out);
    if (*s == '\n')
      fputs("\\n", out);
    else
      fputc(*s, out);
  }
}

static void put_quoted(FILE *out, const char *s) {
  fputc('"', out);
  put_escaped(out, s);
  fputc('"', out);
}

/* Millimetres, as the spec writes distances; + 0.0 turns -0 into 0. */
static double mm(double metres) {
  return metres * 1e3 + 0.0;
}

/* "npy 100 Hz, 12 ch"; the channel count only once known (declared, or
 * read from the file by the caller). */
static void put_source(FILE *out, const Source *src) {
  fprintf(out, "%s %g Hz", sema_format_name(src->kind), src->rate);
  if (src->channels > 0)
    fprintf(out, ", %d ch", src->channels);
}

static bool cell_recorded(const Model *m, int region, int subject) {
  for (int i = 0; i < m->nsources; i++)
    if (m->sources[i].region == region && m->sources[i].subject == subject)
      return true;
  return false;
}

static bool region_recorded(const Model *m, int region) {
  for (int s = 0; s < m->nsubjects; s++)
    if (cell_recorded(m, region, s))
      return true;
  return false;
}

/* One table row: `m1 ●  npy 100 Hz, 12 ch`, or `m2 ○  -` without data. */
static void write_coverage_row(FILE *out, const Model *m, int region, int subject) {
  bool recorded = cell_recorded(m, region, subject);
  fputs("    <TR><TD ALIGN=\"LEFT\">", out);
  put_html(out, m->subjects[subject].name);
  fputs(recorded ? " \u25cf" : " \u25cb", out);
  fputs("</TD><TD ALIGN=\"LEFT\">", out);
  const char *sep = "";
  for (int i = 0; i < m->nsources; i++) {
    const Source *src = &m->sources[i];
    if (src->region == region && src->subject == subject) {
      fputs(sep, out);
      put_source(out, src);
      sep = "; ";
    }
  }
  fputs(recorded ? "</TD></TR>\n" : "-</TD></TR>\n", out);
}

static void write_region(FILE *out, const Model *m, int r) {
  const Region *reg = &m->regions[r];
  const char *style = region_recorded(m, r) ? "rounded,filled" : "rounded,filled,dashed";
  fputs("  ", out);
  put_quoted(out, reg->name);
  fprintf(out, " [style=\"%s\", fillcolor=\"%s\", label=<\n", style,
          aunn_colours[reg->aunn % NCOLOURS]);
  fputs("    <TABLE BORDER=\"0\" CELLSPACING=\"0\" CELLPADDING=\"1\">\n"
        "    <TR><TD COLSPAN=\"2\"><B>", out);
  put_html(out, reg->name);
  fputs("</B></TD></TR>\n    <TR><TD COLSPAN=\"2\">", out);
  put_html(out, m->aunns[reg->aunn].name);
  fputs("</TD></TR>\n", out);
  if (reg->has_position)
    fprintf(out, "    <TR><TD COLSPAN=\"2\">at [%g, %g, %g] mm</TD></TR>\n",
            mm(reg->position[0]), mm(reg->position[1]), mm(reg->position[2]));
  for (int s = 0; s < m->nsubjects; s++)
    write_coverage_row(out, m, r, s);
  fputs("    </TABLE>>];\n", out);
}

/* The edge's label: its delay and length, what changes the picture's
 * meaning. */
static void put_edge_label(FILE *out, const Edge *e) {
  if (e->delay > 0)
    fprintf(out, "%g ms", e->delay * 1e3);
  if (e->delay > 0 && e->length > 0)
    fputs("\\n", out);
  if (e->length > 0)
    fprintf(out, "%.3g mm", mm(e->length));  /* the tooltip has all digits */
}

/* The tooltip says everything about the edge, the prior included
 * (docs/semantics.md: (l1 + distance * length) * |gate| per step). */
static void put_edge_tooltip(FILE *out, const Model *m, const Edge *e) {
  put_escaped(out, m->regions[e->from].name);
  fputs(" -> ", out);
  put_escaped(out, m->regions[e->to].name);
  if (e->delay > 0)
    fprintf(out, ": delay %g ms", e->delay * 1e3);
  else
    fputs(": same time step", out);
  if (e->length > 0)
    fprintf(out, ", length %g mm", mm(e->length));
  if (e->l1 > 0 || e->distance > 0)
    fprintf(out, ", prior sparse(l1: %g, distance: %g per mm), gate penalty %g",
            e->l1, e->distance * 1e-3, e->l1 + e->distance * e->length);
  else
    fputs(", no prior", out);
}

static void write_edge(FILE *out, const Model *m, const Edge *e) {
  fputs("  ", out);
  put_quoted(out, m->regions[e->from].name);
  fputs(" -> ", out);
  put_quoted(out, m->regions[e->to].name);
  /* A delayed edge is feedback in time: it must not rank the nodes, or the
   * undelayed flow would no longer read from left to right. */
  if (e->delay > 0)
    fputs(" [style=dashed, constraint=false, ", out);
  else
    fputs(" [", out);
  if (e->delay > 0 || e->length > 0) {
    fputs("label=\"", out);
    put_edge_label(out, e);
    fputs("\", ", out);
  }
  fputs("tooltip=\"", out);
  put_edge_tooltip(out, m, e);
  fputs("\"];\n", out);
}

/* The title: the spec, its subjects, its window and the key to the marks. */
static void write_title(FILE *out, const Model *m, const char *title) {
  fputs("  label=<<B>", out);
  put_html(out, title);
  fputs("</B><BR/>subjects", out);
  for (int s = 0; s < m->nsubjects; s++) {
    fputs(s ? ", " : " ", out);
    put_html(out, m->subjects[s].name);
  }
  fprintf(out, "; window %d; %d region%s, %d edge%s<BR/>"
          "\u25cf recorded, \u25cb not recorded; solid: same time step, "
          "dashed: delayed>;\n", m->train.window, m->nregions,
          m->nregions == 1 ? "" : "s", m->nedges, m->nedges == 1 ? "" : "s");
}

void graph_write_dot(FILE *out, const Model *m, const char *title) {
  fputs("digraph lobe {\n"
        "  rankdir=LR;\n"
        "  labelloc=t;\n"
        "  fontname=\"Helvetica\";\n"
        "  node [shape=box, fontname=\"Helvetica\", fontsize=11];\n"
        "  edge [fontname=\"Helvetica\", fontsize=9];\n", out);
  write_title(out, m, title);
  for (int r = 0; r < m->nregions; r++)
    write_region(out, m, r);
  for (int e = 0; e < m->nedges; e++)
    write_edge(out, m, &m->edges[e]);
  fputs("}\n", out);
}
