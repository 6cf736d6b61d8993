/*
 * ast.c — the syntax tree: construction (for the parser), freeing, and the
 * readable dump behind `lobec build --emit=ast`.
 */
#include <stdlib.h>
#include <string.h>

#include "front.h"

/* ---- construction ---------------------------------------------------------- */

/* Room for element n of an array of n, doubling the capacity: lists can be
 * long (a file of 20000 regions), and realloc per element is quadratic. */
static void *grow(void *array, int n, size_t size) {
  if (n == 0 || (n & (n - 1)) == 0)
    array = realloc(array, (size_t)(n ? 2 * n : 1) * size);
  return array;
}

Program *ast_program_new(const SrcFile *file) {
  Program *p = calloc(1, sizeof *p);
  p->file = file;
  return p;
}

void ast_program_add(Program *p, Decl decl) {
  p->decls = grow(p->decls, p->ndecls, sizeof *p->decls);
  p->decls[p->ndecls++] = decl;
}

SrcPos ast_span(SrcPos first, SrcPos last) {
  if (first.file == last.file && first.line == last.line && last.col >= first.col)
    first.len = last.col + last.len - first.col;
  return first;
}

Expr *ast_leaf(ExprKind kind, SrcPos pos) {
  Expr *e = calloc(1, sizeof *e);
  e->kind = kind;
  e->pos = pos;
  e->depth = 1;
  return e;
}

/* An operation on an expression already reported is itself reported. */
static Expr *absorb_error(Expr *a, Expr *b, SrcPos pos) {
  ast_expr_free(a);
  ast_expr_free(b);
  return ast_leaf(EXPR_ERROR, pos);
}

Expr *ast_binary(char op, Expr *lhs, Expr *rhs) {
  SrcPos pos = ast_span(lhs->pos, rhs->pos);
  if (lhs->kind == EXPR_ERROR || rhs->kind == EXPR_ERROR)
    return absorb_error(lhs, rhs, pos);
  Expr *e = ast_leaf(EXPR_BINARY, pos);
  e->op = op;
  e->lhs = lhs;
  e->rhs = rhs;
  e->depth = 1 + (lhs->depth > rhs->depth ? lhs->depth : rhs->depth);
  return e;
}

Expr *ast_neg(SrcPos minus, Expr *operand) {
  SrcPos pos = ast_span(minus, operand->pos);
  if (operand->kind == EXPR_ERROR)
    return absorb_error(operand, NULL, pos);
  Expr *e = ast_leaf(EXPR_NEG, pos);
  e->lhs = operand;
  e->depth = 1 + operand->depth;
  return e;
}

static int args_depth(Args args) {
  int depth = 0;
  for (int i = 0; i < args.n; i++)
    if (args.v[i].value->depth > depth)
      depth = args.v[i].value->depth;
  return depth;
}

Expr *ast_call(Name callee, Args args, SrcPos close) {
  Expr *e = ast_leaf(EXPR_CALL, ast_span(callee.pos, close));
  e->name = callee;
  e->args = args;
  e->depth = 1 + args_depth(args);
  return e;
}

Expr *ast_list(SrcPos open, Args items, SrcPos close) {
  Expr *e = ast_leaf(EXPR_LIST, ast_span(open, close));
  e->args = items;
  e->depth = 1 + args_depth(items);
  return e;
}

Args ast_args_add(Args list, Name name, Expr *value) {
  list.v = grow(list.v, list.n, sizeof *list.v);
  list.v[list.n++] = (Arg){name, value};
  return list;
}

Name *ast_names_add(Name *names, int n, Name name) {
  names = grow(names, n, sizeof *names);
  names[n] = name;
  return names;
}

Item *ast_items_add(Item *items, int n, Item item) {
  items = grow(items, n, sizeof *items);
  items[n] = item;
  return items;
}

/* The lexer has checked the escapes; the first unescaped quote like the
 * opening one closes the string (an unterminated one has none). */
char *ast_decode_string(const char *quoted, int len) {
  char *s = malloc(len + 1), *out = s;
  for (int i = 1; i < len && quoted[i] != quoted[0]; i++) {
    if (quoted[i] == '\\' && i + 1 < len && (quoted[i + 1] == '"' || quoted[i + 1] == '\\'))
      i++;
    *out++ = quoted[i];
  }
  *out = 0;
  return s;
}

/* Optimal string alignment: insertions, deletions, substitutions and swaps of
 * neighbours ("stpes") cost 1. Rows i-2, i-1 and i of the usual table. */
int ast_edit_distance(const char *a, int alen, const char *b, int limit) {
  int blen = (int)strlen(b);
  if (alen - blen > limit || blen - alen > limit || alen > 64 || blen > 64)
    return limit + 1;
  int rows[3][65];
  for (int j = 0; j <= blen; j++)
    rows[0][j] = j;               /* row r lives in rows[r % 3] */
  for (int i = 1; i <= alen; i++) {
    int *cur = rows[i % 3], *one = rows[(i + 2) % 3], *two = rows[(i + 1) % 3];
    cur[0] = i;
    for (int j = 1; j <= blen; j++) {
      int best = one[j - 1] + (a[i - 1] != b[j - 1]);
      best = one[j] + 1 < best ? one[j] + 1 : best;
      best = cur[j - 1] + 1 < best ? cur[j - 1] + 1 : best;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          two[j - 2] + 1 < best)
        best = two[j - 2] + 1;
      cur[j] = best;
    }
  }
  int dist = rows[alen % 3][blen];
  return dist > limit ? limit + 1 : dist;
}

/* ---- freeing ----------------------------------------------------------------- */

void ast_args_free(Args list) {
  for (int i = 0; i < list.n; i++)
    ast_expr_free(list.v[i].value);
  free(list.v);
}

void ast_expr_free(Expr *e) {
  if (!e)
    return;
  ast_expr_free(e->lhs);
  ast_expr_free(e->rhs);
  ast_args_free(e->args);
  free(e->string);
  free(e);
}

void ast_items_free(Item *items, int n) {
  for (int i = 0; i < n; i++)
    ast_args_free(items[i].values);
  free(items);
}

static void decl_free(Decl *d) {
  free(d->module);
  free(d->names);
  ast_expr_free(d->value);
  ast_expr_free(d->position);
  ast_expr_free(d->from);
  ast_expr_free(d->to);
  ast_expr_free(d->delay);
  ast_expr_free(d->prior);
  ast_items_free(d->items, d->nitems);
}

void ast_free(Program *p) {
  if (!p)
    return;
  for (int i = 0; i < p->ndecls; i++)
    decl_free(&p->decls[i]);
  free(p->decls);
  free(p);
}

/* ---- printing ---------------------------------------------------------------- */

static void print_string(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      fputc('\\', out);
    fputc(*s, out);
  }
  fputc('"', out);
}

static void print_args(FILE *out, Args args) {
  for (int i = 0; i < args.n; i++) {
    if (i)
      fputs(", ", out);
    if (args.v[i].name.len)
      fprintf(out, "%.*s: ", args.v[i].name.len, args.v[i].name.start);
    ast_expr_print(out, args.v[i].value);
  }
}

void ast_expr_print(FILE *out, const Expr *e) {
  switch (e->kind) {
  case EXPR_ERROR: fputs("<error>", out); break;
  case EXPR_NUMBER:
    fprintf(out, "%.15g%.*s", e->number, e->unit.len, e->unit.start);
    break;
  case EXPR_STRING: print_string(out, e->string); break;
  case EXPR_NAME: fprintf(out, "%.*s", e->name.len, e->name.start); break;
  case EXPR_CALL:
    fprintf(out, "%.*s(", e->name.len, e->name.start);
    print_args(out, e->args);
    fputc(')', out);
    break;
  case EXPR_LIST:
    fputc('[', out);
    print_args(out, e->args);
    fputc(']', out);
    break;
  case EXPR_BINARY:
    fputc('(', out);
    ast_expr_print(out, e->lhs);
    fprintf(out, " %c ", e->op);
    ast_expr_print(out, e->rhs);
    fputc(')', out);
    break;
  case EXPR_NEG:
    fputc('-', out);
    ast_expr_print(out, e->lhs);
    break;
  }
}

static void print_names(FILE *out, const Name *names, int n) {
  for (int i = 0; i < n; i++)
    fprintf(out, "%s%.*s", i ? ", " : "", names[i].len, names[i].start);
}

static void dump_items(FILE *out, const Decl *d) {
  for (int i = 0; i < d->nitems; i++) {
    const Item *it = &d->items[i];
    fprintf(out, "    %d:%d %.*s%s", it->key.pos.line, it->key.pos.col, it->key.len,
            it->key.start, d->kind == DECL_TRAIN ? ": " : " ");
    print_args(out, it->values);
    fputc('\n', out);
  }
}

/* ` WORD expr`, if there is one. */
static void print_option(FILE *out, const char *word, const Expr *e) {
  if (!e)
    return;
  fprintf(out, " %s ", word);
  ast_expr_print(out, e);
}

static void dump_connect(FILE *out, const Decl *d) {
  fputc(' ', out);
  ast_expr_print(out, d->from);
  fputs(" -> ", out);
  ast_expr_print(out, d->to);
  print_option(out, "delay", d->delay);
  print_option(out, "prior", d->prior);
}

const char *ast_decl_keyword(DeclKind kind) {
  static const char *const keywords[] = {
      [DECL_IMPORT] = "import", [DECL_SUBJECTS] = "subjects", [DECL_AUNN] = "aunn",
      [DECL_REGION] = "region", [DECL_DATA] = "data",         [DECL_LOSS] = "loss",
      [DECL_TRAIN] = "train",   [DECL_CONNECT] = "connect",   [DECL_LET] = "let",
      [DECL_OBSERVE] = "observe", [DECL_STRUCTURE] = "structure"};
  return keywords[kind];
}

static void dump_decl(FILE *out, const Decl *d) {
  fprintf(out, "  %d:%d %s", d->pos.line, d->pos.col, ast_decl_keyword(d->kind));
  switch (d->kind) {
  case DECL_IMPORT:
    fprintf(out, " %s", d->module);
    if (d->alias.len)
      fprintf(out, " as %.*s", d->alias.len, d->alias.start);
    break;
  case DECL_SUBJECTS: fputc(' ', out); print_names(out, d->names, d->nnames); break;
  case DECL_AUNN: fprintf(out, " %.*s", d->name.len, d->name.start); break;
  case DECL_REGION:
    fputc(' ', out);
    print_names(out, d->names, d->nnames);
    if (d->value) {
      fputs("from ", out);
      ast_expr_print(out, d->value);
    }
    fprintf(out, " : %.*s", d->ref.len, d->ref.start);
    print_option(out, "at", d->position);
    break;
  case DECL_CONNECT: dump_connect(out, d); break;
  case DECL_LET:
    fprintf(out, " %.*s = ", d->name.len, d->name.start);
    ast_expr_print(out, d->value);
    break;
  case DECL_DATA:
  case DECL_OBSERVE:
    fprintf(out, " %.*s of %.*s = ", d->name.len, d->name.start, d->ref.len, d->ref.start);
    ast_expr_print(out, d->value);
    break;
  case DECL_STRUCTURE:
    fprintf(out, " of %.*s = ", d->ref.len, d->ref.start);
    ast_expr_print(out, d->value);
    break;
  case DECL_LOSS: fputc(' ', out); ast_expr_print(out, d->value); break;
  case DECL_TRAIN: break;
  }
  fputc('\n', out);
  dump_items(out, d);
}

void ast_dump(FILE *out, const Program *p) {
  fprintf(out, "program %s\n", p->file ? p->file->path : "?");
  for (int i = 0; i < p->ndecls; i++)
    dump_decl(out, &p->decls[i]);
}
