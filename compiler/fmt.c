/*
 * fmt.c — `lobec fmt`: the canonical form of a spec.
 *
 * Works on the token stream, not the AST, so that numbers, strings and the
 * parentheses written survive exactly and comments (which the lexer records
 * on request) keep their place. The file must first parse without errors:
 * the tokens are then known to form statements, and formatting only changes
 * the blanks between tokens and the line breaks outside ( ) and [ ], and
 * drops commas that separate train items or trail in a list.
 *
 * The output is a sequence of lines, each either one comment or one "unit":
 * a statement, a block's header (`aunn cortex {`), an item of a block or its
 * closing `}`. Comments inside a unit that spans lines move above it; the
 * comment after the last token of a line stays at the end of that line.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"
#include "grammar.h"

typedef struct Span {
  int first, last;         /* tokens first..last of Fmt.toks */
} Span;

typedef struct Fmt {
  FILE *out;
  Token *toks;             /* every token but the end, NEWLINEs included */
  int ntoks;
  const Token *comments;
  int ncomments;
  int next_comment;        /* the first one not written yet */
  int last_line;           /* source line of the last line written */
  bool fresh;              /* at the start of the file or of a block */
  int indent;
} Fmt;

enum { NO_KEY = -1 };

/* ---- tokens to text -------------------------------------------------------- */

/* `from` too: it is a name wherever an operand can be. */
static bool ends_operand(int kind) {
  return kind == TK_NUMBER || kind == TK_STRING || kind == TK_IDENT ||
         kind == TK_QNAME || kind == TK_RPAREN || kind == TK_RBRACKET ||
         kind == TK_FROM;
}

/* spaced_colon: the colon of `region V1 : cortex`, not of `rate: 1Hz`. */
static bool space_before(const Token *prev, bool prev_unary, bool prev_operand,
                         const Token *t, bool spaced_colon) {
  switch (t->kind) {
  case TK_COMMA: case TK_RPAREN: case TK_RBRACKET: case TK_DOT: return false;
  case TK_COLON: return spaced_colon;
  case TK_LPAREN:
    if (prev_operand)
      return false;                         /* a call */
    break;
  }
  return !(prev->kind == TK_LPAREN || prev->kind == TK_LBRACKET ||
           prev->kind == TK_DOT || prev_unary);
}

/* A comma just before ) or ] adds nothing. */
static bool trailing_comma(const Fmt *f, int i, Span s) {
  return f->toks[i].kind == TK_COMMA && i < s.last &&
         (f->toks[i + 1].kind == TK_RPAREN || f->toks[i + 1].kind == TK_RBRACKET);
}

/* Writes tokens s with canonical spacing. After an operand `x` and `-` are
 * binary operators, elsewhere `x` is a name and `-` a sign (as the parser
 * reads them): s must start where an expression or a statement may. */
static void render(const Fmt *f, Span s) {
  bool region = f->toks[s.first].kind == TK_REGION;
  const Token *prev = NULL;
  bool prev_unary = false, prev_operand = false;
  int depth = 0;                            /* open ( and [ */
  for (int i = s.first; i <= s.last; i++) {
    const Token *t = &f->toks[i];
    depth -= t->kind == TK_RPAREN || t->kind == TK_RBRACKET;
    if (trailing_comma(f, i, s))
      continue;
    if (prev && space_before(prev, prev_unary, prev_operand, t, region && depth == 0))
      fputc(' ', f->out);
    fwrite(t->start, 1, (size_t)t->len, f->out);
    depth += t->kind == TK_LPAREN || t->kind == TK_LBRACKET;
    prev_unary = t->kind == TK_MINUS && !prev_operand;
    prev_operand = ends_operand(t->kind) || (t->kind == TK_X && !prev_operand);
    prev = t;
  }
}

/* ---- comments and blank lines ---------------------------------------------- */

static bool before(SrcPos a, SrcPos b) {
  return a.line < b.line || (a.line == b.line && a.col < b.col);
}

static const Token *pending_comment(const Fmt *f) {
  return f->next_comment < f->ncomments ? &f->comments[f->next_comment] : NULL;
}

/* The comment as written, without the blanks that end its line. */
static void write_comment_text(Fmt *f, const Token *c) {
  int len = c->len;
  while (len > 1 && strchr(" \t\r\v\f", c->start[len - 1]))
    len--;
  fwrite(c->start, 1, (size_t)len, f->out);
  f->next_comment++;
}

static void write_indent(Fmt *f) {
  fprintf(f->out, "%*s", f->indent, "");
}

/* Blank lines in the source between two lines written become one. */
static void keep_blank_line(Fmt *f, int line) {
  if (!f->fresh && line > f->last_line + 1)
    fputc('\n', f->out);
  f->fresh = false;
}

static void write_comment_line(Fmt *f, const Token *c) {
  write_indent(f);
  write_comment_text(f, c);
  fputc('\n', f->out);
}

/* The comments on lines of their own before pos. */
static void write_comments_before(Fmt *f, SrcPos pos) {
  const Token *c;
  while ((c = pending_comment(f)) && before(c->pos, pos)) {
    keep_blank_line(f, c->pos.line);
    write_comment_line(f, c);
    f->last_line = c->pos.line;
  }
}

/* The token after i that starts the next unit (ntoks at the end). */
static int next_unit_token(const Fmt *f, int i) {
  while (i < f->ntoks && (f->toks[i].kind == TK_NEWLINE || f->toks[i].kind == TK_COMMA))
    i++;
  return i;
}

/* The comment ending the line of token `last`, unless the next unit starts on
 * that line and so gets it. */
static const Token *trailing_comment(const Fmt *f, int last) {
  const Token *c = pending_comment(f);
  if (!c || c->pos.line != f->toks[last].pos.line)
    return NULL;
  int next = next_unit_token(f, last + 1);
  return next == f->ntoks || f->toks[next].pos.line > c->pos.line ? c : NULL;
}

/* ---- units ------------------------------------------------------------------- */

/* One output line for tokens s. Items of blocks have a key (tokens up to
 * key_last) padded to key_width, so that their values line up. */
static void write_unit(Fmt *f, Span s, int key_last, int key_width, bool may_blank) {
  SrcPos first = f->toks[s.first].pos, last = f->toks[s.last].pos;
  write_comments_before(f, first);
  if (may_blank)
    keep_blank_line(f, first.line);
  f->fresh = false;
  const Token *c;
  while ((c = pending_comment(f)) && before(c->pos, last))
    write_comment_line(f, c);              /* inside the unit: moved above it */
  write_indent(f);
  if (key_last == NO_KEY)
    render(f, s);
  else {
    render(f, (Span){s.first, key_last});
    int key_len = f->toks[s.first].len + (key_last - s.first);   /* and a ':' */
    fprintf(f->out, "%*s", key_width - key_len + 1, "");
    render(f, (Span){key_last + 1, s.last});
  }
  if ((c = trailing_comment(f, s.last))) {
    fputs("  ", f->out);
    write_comment_text(f, c);
  }
  fputc('\n', f->out);
  f->last_line = last.line;
}

/* ---- blocks ------------------------------------------------------------------ */

/* The last token of the item starting at i: an aunn item ends at the end of
 * its line, a train item also at a comma; either at the block's '}'. */
static int item_end(const Fmt *f, int i, bool train) {
  int depth = 0;
  for (;; i++) {
    int k = f->toks[i].kind;
    depth += (k == TK_LPAREN || k == TK_LBRACKET) - (k == TK_RPAREN || k == TK_RBRACKET);
    int next = f->toks[i + 1].kind;
    if (next == TK_NEWLINE || next == TK_RBRACE || (train && depth == 0 && next == TK_COMMA))
      return i;
  }
}

/* Collects the items between the '{' at open and its '}'; returns the '}'. */
static int block_items(const Fmt *f, int open, bool train, Span **items, int *n) {
  int i = open + 1, cap = 0;
  *items = NULL;
  *n = 0;
  while (f->toks[i].kind != TK_RBRACE) {
    if (f->toks[i].kind == TK_NEWLINE || f->toks[i].kind == TK_COMMA) {
      i++;
      continue;
    }
    if (*n == cap) {
      cap = cap ? 2 * cap : 8;
      *items = realloc(*items, (size_t)cap * sizeof **items);
    }
    int last = item_end(f, i, train);
    (*items)[(*n)++] = (Span){i, last};
    i = last + 1;
  }
  return i;
}

/* `aunn NAME {` or `train {`, one item per line, then `}`. */
static int format_block(Fmt *f, int i) {
  bool train = f->toks[i].kind == TK_TRAIN;
  int open = i;
  while (f->toks[open].kind != TK_LBRACE)
    open++;
  write_unit(f, (Span){i, open}, NO_KEY, 0, true);
  Span *items;
  int n;
  int close = block_items(f, open, train, &items, &n);
  int key_len = train ? 1 : 0;             /* the key, and a train key's ':' */
  int width = 0;
  for (int k = 0; k < n; k++)
    if (f->toks[items[k].first].len + key_len > width)
      width = f->toks[items[k].first].len + key_len;
  f->indent = 2;
  f->fresh = true;
  for (int k = 0; k < n; k++)
    write_unit(f, items[k], items[k].first + key_len, width, true);
  write_comments_before(f, f->toks[close].pos);
  f->indent = 0;
  write_unit(f, (Span){close, close}, NO_KEY, 0, false);
  free(items);
  return close + 1;
}

static int format_statement(Fmt *f, int i) {
  int end = i;
  while (end < f->ntoks && f->toks[end].kind != TK_NEWLINE)
    end++;
  write_unit(f, (Span){i, end - 1}, NO_KEY, 0, true);
  return end;
}

static void format_tokens(Fmt *f) {
  int i = 0;
  while (i < f->ntoks) {
    int k = f->toks[i].kind;
    if (k == TK_NEWLINE)
      i++;
    else if (k == TK_AUNN || k == TK_TRAIN)
      i = format_block(f, i);
    else
      i = format_statement(f, i);
  }
  write_comments_before(f, (SrcPos){.line = INT_MAX});
}

/* ---- driver ------------------------------------------------------------------ */

/* Every token of the file but the end, and its comments. */
static void lex_all(Fmt *f, Lexer *lx) {
  Token t;
  int cap = 0;
  while (lex_next(lx, &t)) {
    if (f->ntoks == cap) {
      cap = cap ? 2 * cap : 64;
      f->toks = realloc(f->toks, (size_t)cap * sizeof *f->toks);
    }
    f->toks[f->ntoks++] = t;
  }
  f->comments = lx->comments;
  f->ncomments = lx->ncomments;
}

char *fmt_source(Diag *d, SrcFile *file) {
  int errors = diag_errors(d);
  ast_free(parse_file(d, file));
  if (diag_errors(d) > errors)
    return NULL;
  Lexer lx;
  lex_init(&lx, d, file);
  lx.keep_comments = true;
  char *text = NULL;
  size_t size = 0;
  Fmt f = {.out = open_memstream(&text, &size), .fresh = true};
  lex_all(&f, &lx);
  format_tokens(&f);
  fclose(f.out);
  free(f.toks);
  free(lx.comments);
  return text;
}
