/*
 * lexer.re — the re2c lexer.
 *
 * Scans the NUL-terminated text of a SrcFile (no refilling: the whole file is
 * in memory). Tokens point into the text and carry their line and column.
 * Lexical errors are reported to the Diag and skipped, so the parser sees a
 * clean token stream: a bad character vanishes, an unterminated string ends at
 * the end of its line, a number out of range is still a NUMBER. Keywords are
 * reserved; a name with dots and no blanks (`areas.cortex`, `std.observe`)
 * is one QNAME token, whatever words it is made of.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"
#include "grammar.h"

/*!re2c
  re2c:define:YYCTYPE = "unsigned char";
  re2c:yyfill:enable = 0;

  utf8 = [\xc2-\xdf] [\x80-\xbf]
       | "\xe0" [\xa0-\xbf] [\x80-\xbf]
       | [\xe1-\xec\xee\xef] [\x80-\xbf]{2}
       | "\xed" [\x80-\x9f] [\x80-\xbf]
       | "\xf0" [\x90-\xbf] [\x80-\xbf]{2}
       | [\xf1-\xf3] [\x80-\xbf]{3}
       | "\xf4" [\x80-\x8f] [\x80-\xbf]{2};
  digits = [0-9]+;
  number = digits ("." digits)? ([eE] [+-]? digits)?;
  ident = [a-zA-Z_] [a-zA-Z0-9_]*;
  qualified = ident ("." ident)+;
  keyword = "import" | "subjects" | "aunn" | "region" | "data" | "of" | "loss"
          | "train" | "connect" | "delay" | "prior" | "let" | "as" | "at"
          | "simulate" | "observe" | "structure";
*/

void lex_init(Lexer *lx, Diag *d, const SrcFile *file) {
  *lx = (Lexer){.diag = d, .file = file, .line = 1};
  lx->cur = lx->line_start = (const unsigned char *)file->text;
  lx->end = lx->cur + file->len;
  lx->after_last = (SrcPos){file, 1, 1, 1};
}

static SrcPos pos_at(const Lexer *lx, const unsigned char *p, long len) {
  int col = (int)(p - lx->line_start) + 1;
  return (SrcPos){lx->file, lx->line, col, len < 1 ? 1 : (int)len};
}

static int make(Lexer *lx, Token *t, int kind, const unsigned char *start) {
  t->kind = kind;
  t->start = (const char *)start;
  t->len = (int)(lx->cur - start);
  t->pos = pos_at(lx, start, t->len);
  lx->after_last = t->pos;
  lx->after_last.col += t->len;
  lx->after_last.len = 1;
  lx->line_has_token = true;
  return kind;
}

/* A token the lexer makes up: it points at no text. */
static Token synthetic(int kind, SrcPos pos) {
  return (Token){kind, "", 0, pos};
}

/* A comment is no token, but `lobec fmt` must put it back where it was. */
static void keep_comment(Lexer *lx, const unsigned char *start) {
  if (!lx->keep_comments)
    return;
  int n = lx->ncomments;
  if (n == 0 || (n & (n - 1)) == 0)   /* doubling: a file may have many */
    lx->comments = realloc(lx->comments, (size_t)(n ? 2 * n : 1) * sizeof *lx->comments);
  long len = lx->cur - start;
  lx->comments[lx->ncomments++] =
      (Token){0, (const char *)start, (int)len, pos_at(lx, start, len)};
}

/* ---- numbers -------------------------------------------------------------- */

static int numeric_prefix(const char *s, int len) {
  int i = 0;
  while (i < len && s[i] >= '0' && s[i] <= '9')
    i++;
  if (i + 1 < len && s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9')
    for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
    }
  if (i + 1 < len && (s[i] == 'e' || s[i] == 'E')) {
    int j = i + 1 + (s[i + 1] == '+' || s[i + 1] == '-');
    if (j < len && s[j] >= '0' && s[j] <= '9')
      for (i = j; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
      }
  }
  return i;
}

bool lex_number_value(const Token *t, double *value, int *digits) {
  *digits = numeric_prefix(t->start, t->len);
  char *copy = strndup(t->start, *digits);
  errno = 0;
  *value = strtod(copy, NULL);
  bool in_range = errno != ERANGE && isfinite(*value);
  free(copy);
  return in_range;
}

/* ---- errors ---------------------------------------------------------------- */

/* The parser keeps quiet about the rest of a line with a lexical error: what
 * it would find there is most likely a consequence. */
static void lex_error(Lexer *lx, DiagCode code, SrcPos pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void lex_error(Lexer *lx, DiagCode code, SrcPos pos, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  diag_error(lx->diag, code, pos, "%s", msg);
  lx->error_line = pos.line;
}

/* A run of bytes that cannot start a token is one error, not one per byte. */
static void bad_bytes(Lexer *lx, const unsigned char *start) {
  const unsigned char *p = start + 1;
  bool high = *start >= 0x80;
  while (p < lx->end && (high ? *p >= 0x80 : (*p < 0x20 || *p == 0x7f) && *p &&
                                                 !strchr("\t\n\r\v\f", *p)))
    p++;
  lx->cur = p;
  SrcPos pos = pos_at(lx, start, p - start);
  if (high)
    lex_error(lx, DIAG_BAD_BYTES, pos, "invalid UTF-8 (byte 0x%02x)", *start);
  else
    lex_error(lx, DIAG_BAD_BYTES, pos, "invalid control character (byte 0x%02x)", *start);
}

static void unexpected_char(Lexer *lx, const unsigned char *start) {
  SrcPos pos = pos_at(lx, start, lx->cur - start);
  if (*start == ';')
    lex_error(lx, DIAG_UNEXPECTED_CHAR, pos,
              "unexpected ';': a statement ends at the end of its line");
  else
    lex_error(lx, DIAG_UNEXPECTED_CHAR, pos, "unexpected character '%.*s'",
              (int)(lx->cur - start), start);
}

/* ---- strings --------------------------------------------------------------- */

static void bad_escape(Lexer *lx, const unsigned char *backslash) {
  unsigned char c = backslash[1];
  SrcPos pos = pos_at(lx, backslash, c > 0x20 && c < 0x7f ? 2 : 1);
  if (c > 0x20 && c < 0x7f)
    lex_error(lx, DIAG_BAD_ESCAPE, pos,
              "unknown escape '\\%c' in string (only \\\" and \\\\ are allowed)", c);
  else
    lex_error(lx, DIAG_BAD_ESCAPE, pos,
              "unknown escape in string (only \\\" and \\\\ are allowed)");
}

/* Scans the body of a string whose opening quote is at open, reporting bad
 * escapes and bad UTF-8; an unterminated string ends at the end of its line. */
static void scan_string(Lexer *lx, const unsigned char *open) {
  const unsigned char *YYCURSOR = lx->cur, *YYMARKER;
  for (;;) {
    const unsigned char *start = YYCURSOR;
    /*!re2c
      ["]                   { lx->cur = YYCURSOR; return; }
      "\\" ["\\]            { continue; }
      "\\"                  { bad_escape(lx, start); continue; }
      [\n\x00]              {
        lx->cur = start;
        lex_error(lx, DIAG_UNTERMINATED_STRING, pos_at(lx, open, start - open),
                  "unterminated string");
        return;
      }
      utf8 | [\x01-\x7f]    { continue; }
      *                     {
        lex_error(lx, DIAG_BAD_BYTES, pos_at(lx, start, 1),
                  "invalid UTF-8 in string (byte 0x%02x)", *start);
        continue;
      }
    */
  }
}

/* ---- tokens ---------------------------------------------------------------- */

static void number_token(Lexer *lx, Token *t, const unsigned char *start) {
  make(lx, t, TK_NUMBER, start);
  double value;
  int digits;
  if (!lex_number_value(t, &value, &digits))
    lex_error(lx, DIAG_NUMBER_RANGE, t->pos, "number '%.*s' is out of range",
              digits > 40 ? 40 : digits, t->start);
}

static int ident_from(Lexer *lx, Token *t, const unsigned char *start) {
  const unsigned char *p = start;
  while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
         (*p >= '0' && *p <= '9') || *p == '_')
    p++;
  lx->cur = p;
  return make(lx, t, TK_IDENT, start);
}

/* At a line break: NEWLINE if the line had tokens and no ( or [ is open. */
static bool end_of_line(Lexer *lx, Token *t, const unsigned char *next_line) {
  bool ends = lx->line_has_token && lx->nest == 0;
  lx->line++;
  lx->line_start = next_line;
  if (ends) {
    *t = synthetic(TK_NEWLINE, lx->after_last);
    lx->line_has_token = false;
  }
  return ends;
}

/* The next token as written, 0 at the end of the text. */
static int scan(Lexer *lx, Token *t) {
  for (;;) {
    const unsigned char *YYCURSOR = lx->cur, *YYMARKER;
    const unsigned char *start = YYCURSOR;
#define TOKEN(kind) (lx->cur = YYCURSOR, make(lx, t, (kind), start))
    /*!re2c
      [ \t\r\v\f]+          { lx->cur = YYCURSOR; continue; }
      "#" [^\n\x00]*        { lx->cur = YYCURSOR; keep_comment(lx, start); continue; }
      "\n"                  {
        lx->cur = YYCURSOR;
        if (end_of_line(lx, t, YYCURSOR))
          return t->kind;
        continue;
      }
      "\x00"                {
        if (start >= lx->end) {
          *t = synthetic(0, lx->after_last);
          return 0;
        }
        lx->cur = YYCURSOR;
        lex_error(lx, DIAG_BAD_BYTES, pos_at(lx, start, 1), "NUL byte in source");
        continue;
      }

      "import"              { return TOKEN(TK_IMPORT); }
      "subjects"            { return TOKEN(TK_SUBJECTS); }
      "aunn"                { return TOKEN(TK_AUNN); }
      "region"              { return TOKEN(TK_REGION); }
      "data"                { return TOKEN(TK_DATA); }
      "of"                  { return TOKEN(TK_OF); }
      "loss"                { return TOKEN(TK_LOSS); }
      "train"               { return TOKEN(TK_TRAIN); }
      "connect"             { return TOKEN(TK_CONNECT); }
      "delay"               { return TOKEN(TK_DELAY); }
      "prior"               { return TOKEN(TK_PRIOR); }
      "let"                 { return TOKEN(TK_LET); }
      "as"                  { return TOKEN(TK_AS); }
      "at"                  { return TOKEN(TK_AT); }
      "simulate"            { return TOKEN(TK_SIMULATE); }
      "observe"             { return TOKEN(TK_OBSERVE); }
      "structure"           { return TOKEN(TK_STRUCTURE); }
      "from"                { return TOKEN(TK_FROM); }
      "x"                   { return TOKEN(TK_X); }
      "x" / [0-9]           {      /* the x of 64x2, else a name like x2 */
        if (start > lx->line_start && start[-1] >= '0' && start[-1] <= '9')
          return TOKEN(TK_X);
        return ident_from(lx, t, start);
      }
      ident                 { return TOKEN(TK_IDENT); }
      qualified             { return TOKEN(TK_QNAME); }   /* areas.cortex, std.observe */

      digits / "x" [0-9]    {      /* 64x2 is 64 x 2 */
        lx->cur = YYCURSOR;
        number_token(lx, t, start);
        return TK_NUMBER;
      }
      number [a-zA-Z]*      {      /* the unit is glued on: 10ms */
        lx->cur = YYCURSOR;
        number_token(lx, t, start);
        return TK_NUMBER;
      }
      ["]                   {
        lx->cur = YYCURSOR;
        scan_string(lx, start);
        return make(lx, t, TK_STRING, start);
      }
      ['] [^'\n\x00]* [']   {
        lx->cur = YYCURSOR;
        make(lx, t, TK_STRING, start);
        lex_error(lx, DIAG_SINGLE_QUOTES, t->pos, "strings are written in double quotes");
        return TK_STRING;
      }

      "{"                   { return TOKEN(TK_LBRACE); }
      "}"                   { return TOKEN(TK_RBRACE); }
      "("                   { return TOKEN(TK_LPAREN); }
      ")"                   { return TOKEN(TK_RPAREN); }
      "["                   { return TOKEN(TK_LBRACKET); }
      "]"                   { return TOKEN(TK_RBRACKET); }
      ","                   { return TOKEN(TK_COMMA); }
      ":"                   { return TOKEN(TK_COLON); }
      "."                   { return TOKEN(TK_DOT); }
      "="                   { return TOKEN(TK_EQ); }
      "->"                  { return TOKEN(TK_ARROW); }
      "+"                   { return TOKEN(TK_PLUS); }
      "-"                   { return TOKEN(TK_MINUS); }
      "*"                   { return TOKEN(TK_STAR); }
      "/"                   { return TOKEN(TK_SLASH); }

      utf8 | [\x21-\x7e]    {
        lx->cur = YYCURSOR;
        unexpected_char(lx, start);
        continue;
      }
      *                     { bad_bytes(lx, start); continue; }
    */
#undef TOKEN
  }
}

/* ---- brackets ---------------------------------------------------------------- */

static void track_brackets(Lexer *lx, const Token *t) {
  switch (t->kind) {
  case TK_LPAREN: case TK_LBRACKET:
    lx->nest++;
    break;
  case TK_RPAREN: case TK_RBRACKET:
    lx->nest -= lx->nest > 0;
    break;
  case TK_LBRACE:
    if (lx->braces < LEX_MAX_OPEN)
      lx->brace_pos[lx->braces] = t->pos;
    lx->braces++;
    break;
  case TK_RBRACE:
    lx->braces -= lx->braces > 0;
    break;
  }
}

static void enqueue(Lexer *lx, Token t) {
  lx->queue[lx->queued++] = t;
}

static SrcPos innermost_brace(const Lexer *lx) {
  return lx->brace_pos[(lx->braces < LEX_MAX_OPEN ? lx->braces : LEX_MAX_OPEN) - 1];
}

/* Closes open blocks before `before` (a statement keyword or the end). */
static void close_braces(Lexer *lx, const Token *before, SrcPos where) {
  if (before->kind)
    diag_error(lx->diag, DIAG_UNCLOSED_BRACE, before->pos, "expected '}' before '%.*s'",
               before->len, before->start);
  else
    diag_error(lx->diag, DIAG_UNCLOSED_BRACE, where, "expected '}' at end of file");
  diag_note(lx->diag, innermost_brace(lx), "to match this '{'");
  enqueue(lx, synthetic(TK_RBRACE, where));
  enqueue(lx, synthetic(TK_NEWLINE, where));
  lx->braces = 0;
}

/* A statement keyword first on its line, or the end of the text, ends the
 * statement and the blocks still open (see Lexer in front.h). */
static void close_open(Lexer *lx, const Token *t, SrcPos before, bool line_pending) {
  if (line_pending)
    enqueue(lx, synthetic(TK_NEWLINE, before));
  lx->nest = 0;
  if (lx->braces > 0)
    close_braces(lx, t, before);
}

int lex_next(Lexer *lx, Token *t) {
  if (lx->next < lx->queued) {
    *t = lx->queue[lx->next++];
    return t->kind;
  }
  lx->queued = lx->next = 0;
  SrcPos before = lx->after_last;
  bool line_pending = lx->line_has_token;  /* tokens no NEWLINE has ended yet */
  scan(lx, t);
  bool starts_line = t->kind && t->pos.line != before.line;
  if (t->kind && !(starts_line && lex_is_statement_keyword(t->kind) &&
                   (lx->nest > 0 || lx->braces > 0))) {
    track_brackets(lx, t);
    return t->kind;
  }
  close_open(lx, t, before, line_pending);
  enqueue(lx, *t);
  lx->line_has_token = t->kind != 0;
  *t = lx->queue[lx->next++];
  return t->kind;
}

bool lex_is_name(const char *s) {
  const unsigned char *YYCURSOR = (const unsigned char *)s, *YYMARKER;
  (void)YYMARKER;
  /*!re2c
    keyword "\x00" { return false; }
    ident "\x00"   { return true; }
    *              { return false; }
  */
}

/* ---- names of token kinds ----------------------------------------------------- */

bool lex_is_statement_keyword(int kind) {
  switch (kind) {
  case TK_IMPORT: case TK_SUBJECTS: case TK_AUNN: case TK_REGION: case TK_DATA:
  case TK_OBSERVE: case TK_LOSS: case TK_TRAIN: case TK_CONNECT: case TK_LET:
  case TK_STRUCTURE:
    return true;
  }
  return false;
}

const char *lex_kind_name(int kind) {
  switch (kind) {
  case 0: return "end of file";
  case TK_NEWLINE: return "end of line";
  case TK_IDENT: return "a name";
  case TK_QNAME: return "a qualified name";
  case TK_NUMBER: return "a number";
  case TK_STRING: return "a string";
  case TK_IMPORT: return "'import'";
  case TK_SUBJECTS: return "'subjects'";
  case TK_AUNN: return "'aunn'";
  case TK_REGION: return "'region'";
  case TK_DATA: return "'data'";
  case TK_OF: return "'of'";
  case TK_LOSS: return "'loss'";
  case TK_TRAIN: return "'train'";
  case TK_CONNECT: return "'connect'";
  case TK_DELAY: return "'delay'";
  case TK_PRIOR: return "'prior'";
  case TK_LET: return "'let'";
  case TK_AS: return "'as'";
  case TK_AT: return "'at'";
  case TK_SIMULATE: return "'simulate'";
  case TK_OBSERVE: return "'observe'";
  case TK_STRUCTURE: return "'structure'";
  case TK_FROM: return "'from'";
  case TK_X: return "'x'";
  case TK_LBRACE: return "'{'";
  case TK_RBRACE: return "'}'";
  case TK_LPAREN: return "'('";
  case TK_RPAREN: return "')'";
  case TK_LBRACKET: return "'['";
  case TK_RBRACKET: return "']'";
  case TK_COMMA: return "','";
  case TK_COLON: return "':'";
  case TK_DOT: return "'.'";
  case TK_EQ: return "'='";
  case TK_ARROW: return "'->'";
  case TK_PLUS: return "'+'";
  case TK_MINUS: return "'-'";
  case TK_STAR: return "'*'";
  case TK_SLASH: return "'/'";
  }
  return "a token";
}
