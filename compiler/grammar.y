/*
 * grammar.y — the Lemon grammar of .lobe files, and parse_file, which feeds
 * it tokens from the lexer.
 *
 * Statements end with NEWLINE. Values are generic expressions (numbers with
 * units, strings, names, calls with named arguments, lists, + - * / x) that
 * sema interprets. After a syntax error the parser resynchronises at the end
 * of the line (or at '}' inside a block) and goes on, so that one run reports
 * several errors; see report_syntax_error for how cascades are avoided.
 */

%name parse_lemon
%token_prefix TK_
%token_type {Token}
%extra_context {ParseState *ps}
%stack_size 1000

%include {
#include <stdlib.h>
#include <string.h>

#include "front.h"

enum { MAX_TOKEN_KINDS = 64 };

typedef struct ParseState {
  Diag *diag;
  const Lexer *lexer;
  Program *prog;
  Token current;                   /* the token being parsed, for overflow errors */
  Token previous;                  /* the one before it */
  bool overflowed;                 /* the stack overflowed: stop parsing */
  bool statement_failed;           /* the last statement was a syntax error */
  bool rejected;                   /* the parser will reject the current token */
  bool expected[MAX_TOKEN_KINDS];  /* then: the token kinds it would accept */
} ParseState;

typedef struct NameList {
  Name *v;
  int n;
} NameList;

typedef struct ItemList {
  Item *v;
  int n;
} ItemList;

typedef struct ConnectOptions {
  Expr *delay, *prior;
} ConnectOptions;

static void report_syntax_error(ParseState *ps, Token found);

static Name name_of(Token t) {
  return (Name){t.start, t.len, t.pos};
}

/* "std . encodings" -> "std.encodings": a dotted name spans blanks only. */
static char *without_blanks(Name n) {
  char *s = malloc(n.len + 1), *out = s;
  for (int i = 0; i < n.len; i++)
    if (n.start[i] != ' ' && n.start[i] != '\t')
      *out++ = n.start[i];
  *out = 0;
  return s;
}

static Name no_name(void) {
  return (Name){"", 0, {0}};
}

/* first..last as one Name: both lie in the same text, first before last. */
static Name name_span(Name first, Name last) {
  return (Name){first.start, (int)(last.start + last.len - first.start),
                ast_span(first.pos, last.pos)};
}

static Expr *name_expr(Name n) {
  Expr *e = ast_leaf(EXPR_NAME, n.pos);
  e->name = n;
  return e;
}

/* Every expression node goes through here: too deep a tree is one error and
 * becomes an EXPR_ERROR, which absorbs the rest of the expression. */
static Expr *bounded(ParseState *ps, Expr *e) {
  if (e->kind == EXPR_ERROR || e->depth <= AST_MAX_DEPTH)
    return e;
  diag_error(ps->diag, DIAG_TOO_DEEP, e->pos,
             "expression nested too deeply (more than %d levels)", AST_MAX_DEPTH);
  SrcPos pos = e->pos;
  ast_expr_free(e);
  return ast_leaf(EXPR_ERROR, pos);
}

static Expr *number_expr(Token t) {
  double value;
  int digits;
  bool ok = lex_number_value(&t, &value, &digits);
  Expr *e = ast_leaf(ok ? EXPR_NUMBER : EXPR_ERROR, t.pos);
  e->number = value;
  SrcPos unit = t.pos;
  unit.col += digits;
  unit.len = t.len - digits;
  e->unit = (Name){t.start + digits, t.len - digits, unit};
  return e;
}

static ItemList items_add(ItemList list, Item item) {
  list.v = ast_items_add(list.v, list.n, item);
  list.n++;
  return list;
}

static void add_decl(ParseState *ps, Decl decl) {
  ast_program_add(ps->prog, decl);
  ps->statement_failed = false;
}
}

%syntax_error {
  report_syntax_error(ps, yyminor);
}

%stack_overflow {
  ps->overflowed = true;
  diag_error(ps->diag, DIAG_TOO_DEEP, ps->current.pos,
             "nesting too deep; parsing stops here");
}

%token NEWLINE IDENT NUMBER STRING
       IMPORT SUBJECTS AUNN REGION DATA OF LOSS TRAIN CONNECT DELAY X
       QNAME PRIOR LET AS AT SIMULATE OBSERVE STRUCTURE FROM
       LBRACE RBRACE LPAREN RPAREN LBRACKET RBRACKET COMMA COLON DOT EQ ARROW
       PLUS MINUS STAR SLASH.

/* `x` is an operator in `64 x 2` and a name anywhere else; `from` is a
 * keyword only right after `region`. */
%fallback IDENT X FROM.

%left X.
%left PLUS MINUS.
%left STAR SLASH.
%right NEG.

%type names {NameList}
%destructor names { free($$.v); }
%type dotted {Name}
%type qualified {Name}
%type alias {Name}
%type position {Expr *}
%destructor position { ast_expr_free($$); }
%type group {Expr *}
%destructor group { ast_expr_free($$); }
%type connect_options {ConnectOptions}
%destructor connect_options { ast_expr_free($$.delay); ast_expr_free($$.prior); }
%type expr {Expr *}
%destructor expr { ast_expr_free($$); }
%type values {Args}
%destructor values { ast_args_free($$); }
%type list {Args}
%destructor list { ast_args_free($$); }
%type args {Args}
%destructor args { ast_args_free($$); }
%type arglist {Args}
%destructor arglist { ast_args_free($$); }
%type aunn_block {ItemList}
%destructor aunn_block { ast_items_free($$.v, $$.n); }
%type aunn_items {ItemList}
%destructor aunn_items { ast_items_free($$.v, $$.n); }
%type aunn_item {Item}
%destructor aunn_item { ast_args_free($$.values); }
%type train_block {ItemList}
%destructor train_block { ast_items_free($$.v, $$.n); }
%type train_items {ItemList}
%destructor train_items { ast_items_free($$.v, $$.n); }
%type train_item {Item}
%destructor train_item { ast_args_free($$.values); }

program ::= statements.
statements ::= .
statements ::= statements statement.

/* ---- statements ---------------------------------------------------------- */

statement ::= NEWLINE.
statement ::= error NEWLINE. {
  ps->statement_failed = true;
  yypParser->yyerrcnt = -1;        /* resynchronised: report the next line's errors */
}

statement ::= IMPORT(K) dotted(M) alias(N) NEWLINE. {
  add_decl(ps, (Decl){.kind = DECL_IMPORT, .pos = K.pos, .module = without_blanks(M),
                      .module_pos = M.pos, .alias = N});
}
/* A module path may have blanks around its dots (`std . encodings`). */
dotted(A) ::= qualified(B). { A = B; }
dotted(A) ::= dotted(B) DOT qualified(C). { A = name_span(B, C); }
alias(A) ::= . { A = no_name(); }
alias(A) ::= AS IDENT(T). { A = name_of(T); }

/* A name that an import's namespace may qualify: the lexer makes one QNAME
 * token of `areas.cortex` (no blanks), so that the Name spans exactly it. */
qualified(A) ::= IDENT(T). { A = name_of(T); }
qualified(A) ::= QNAME(T). { A = name_of(T); }

statement ::= LET(K) IDENT(N) EQ expr(E) NEWLINE. {
  add_decl(ps, (Decl){.kind = DECL_LET, .pos = K.pos, .name = name_of(N), .value = E});
}

statement ::= SUBJECTS(K) names(N) NEWLINE. {
  add_decl(ps, (Decl){.kind = DECL_SUBJECTS, .pos = K.pos, .names = N.v,
                      .nnames = N.n});
}
names(A) ::= IDENT(T). {
  A = (NameList){ast_names_add(NULL, 0, name_of(T)), 1};
}
names(A) ::= names(B) COMMA IDENT(T). {
  A = (NameList){ast_names_add(B.v, B.n, name_of(T)), B.n + 1};
}

statement ::= REGION(K) names(N) COLON qualified(T) position(P) NEWLINE. {
  add_decl(ps, (Decl){.kind = DECL_REGION, .pos = K.pos, .names = N.v,
                      .nnames = N.n, .ref = T, .position = P});
}
/* region from connectome("tvb.zip") : AUNN: a region per row, named by its label. */
statement ::= REGION(K) FROM expr(E) COLON qualified(T) NEWLINE. {
  add_decl(ps, (Decl){.kind = DECL_REGION, .pos = K.pos, .value = E, .ref = T});
}
position(A) ::= . { A = NULL; }
position(A) ::= AT expr(E). { A = E; }

/* connect FROM -> TO [delay D] [prior P], either option first. */
statement ::= CONNECT(K) group(F) ARROW(R) group(T) connect_options(O) NEWLINE. {
  add_decl(ps, (Decl){.kind = DECL_CONNECT, .pos = K.pos, .from = F, .to = T,
                      .arrow = R.pos, .delay = O.delay, .prior = O.prior});
}
group(A) ::= qualified(N). { A = name_expr(N); }
group(A) ::= LBRACKET(O) list(B) RBRACKET(C). {
  A = bounded(ps, ast_list(O.pos, B, C.pos));
}
connect_options(A) ::= . { A = (ConnectOptions){NULL, NULL}; }
connect_options(A) ::= DELAY expr(D). { A = (ConnectOptions){D, NULL}; }
connect_options(A) ::= PRIOR expr(P). { A = (ConnectOptions){NULL, P}; }
connect_options(A) ::= DELAY expr(D) PRIOR expr(P). { A = (ConnectOptions){D, P}; }
connect_options(A) ::= PRIOR expr(P) DELAY expr(D). { A = (ConnectOptions){D, P}; }

statement ::= DATA(K) IDENT(R) OF IDENT(S) EQ expr(E) NEWLINE. {
  add_decl(ps, (Decl){.kind = DECL_DATA, .pos = K.pos, .name = name_of(R),
                      .ref = name_of(S), .value = E});
}

statement ::= OBSERVE(K) IDENT(N) OF IDENT(S) EQ expr(E) NEWLINE. {
  add_decl(ps, (Decl){.kind = DECL_OBSERVE, .pos = K.pos, .name = name_of(N),
                      .ref = name_of(S), .value = E});
}

statement ::= STRUCTURE(K) OF IDENT(S) EQ expr(E) NEWLINE. {
  add_decl(ps, (Decl){.kind = DECL_STRUCTURE, .pos = K.pos, .ref = name_of(S), .value = E});
}

statement ::= LOSS(K) expr(E) NEWLINE. {
  add_decl(ps, (Decl){.kind = DECL_LOSS, .pos = K.pos, .value = E});
}

/* ---- aunn NAME { ITEM VALUE, ... NEWLINE ... } --------------------------- */

statement ::= AUNN(K) IDENT(N) aunn_block(B) NEWLINE. {
  add_decl(ps, (Decl){.kind = DECL_AUNN, .pos = K.pos, .name = name_of(N),
                      .items = B.v, .nitems = B.n});
}
aunn_block(A) ::= LBRACE aunn_items(B) RBRACE. { A = B; }
aunn_block(A) ::= LBRACE aunn_items(B) aunn_item(I) RBRACE. { A = items_add(B, I); }
aunn_block(A) ::= LBRACE aunn_items(B) error RBRACE. { A = B; }
aunn_items(A) ::= . { A = (ItemList){NULL, 0}; }
aunn_items(A) ::= aunn_items(B) NEWLINE. { A = B; }
aunn_items(A) ::= aunn_items(B) aunn_item(I) NEWLINE. { A = items_add(B, I); }
aunn_items(A) ::= aunn_items(B) error NEWLINE. {
  A = B;
  yypParser->yyerrcnt = -1;        /* resynchronised */
}
aunn_item(A) ::= IDENT(K) values(V). { A = (Item){name_of(K), V}; }

values(A) ::= expr(E). { A = ast_args_add((Args){NULL, 0}, no_name(), E); }
values(A) ::= values(B) COMMA expr(E). { A = ast_args_add(B, no_name(), E); }

/* ---- train { KEY: VALUE, ... } ------------------------------------------- */

statement ::= TRAIN(K) train_block(B) NEWLINE. {
  add_decl(ps, (Decl){.kind = DECL_TRAIN, .pos = K.pos, .items = B.v,
                      .nitems = B.n});
}
train_block(A) ::= LBRACE train_items(B) RBRACE. { A = B; }
train_block(A) ::= LBRACE train_items(B) train_item(I) RBRACE. { A = items_add(B, I); }
train_block(A) ::= LBRACE train_items(B) error RBRACE. { A = B; }
train_items(A) ::= . { A = (ItemList){NULL, 0}; }
train_items(A) ::= train_items(B) separator. { A = B; }
train_items(A) ::= train_items(B) train_item(I) separator. { A = items_add(B, I); }
train_items(A) ::= train_items(B) error separator. {
  A = B;
  yypParser->yyerrcnt = -1;        /* resynchronised */
}
train_item(A) ::= IDENT(K) COLON expr(E). {
  A = (Item){name_of(K), ast_args_add((Args){NULL, 0}, no_name(), E)};
}
separator ::= COMMA.
separator ::= NEWLINE.

/* ---- expressions --------------------------------------------------------- */

expr(A) ::= expr(B) PLUS expr(C). { A = bounded(ps, ast_binary('+', B, C)); }
expr(A) ::= expr(B) MINUS expr(C). { A = bounded(ps, ast_binary('-', B, C)); }
expr(A) ::= expr(B) STAR expr(C). { A = bounded(ps, ast_binary('*', B, C)); }
expr(A) ::= expr(B) SLASH expr(C). { A = bounded(ps, ast_binary('/', B, C)); }
expr(A) ::= expr(B) X expr(C). { A = bounded(ps, ast_binary('x', B, C)); }
expr(A) ::= MINUS(M) expr(B). [NEG] { A = bounded(ps, ast_neg(M.pos, B)); }
expr(A) ::= LPAREN expr(B) RPAREN. { A = B; }
expr(A) ::= NUMBER(T). { A = number_expr(T); }
expr(A) ::= STRING(T). {
  A = ast_leaf(EXPR_STRING, T.pos);
  A->string = ast_decode_string(T.start, T.len);
}
expr(A) ::= qualified(N). { A = name_expr(N); }
expr(A) ::= IDENT(T) LPAREN args(B) RPAREN(C). {
  A = bounded(ps, ast_call(name_of(T), B, C.pos));
}
expr(A) ::= LBRACKET(O) list(B) RBRACKET(C). {
  A = bounded(ps, ast_list(O.pos, B, C.pos));
}

list(A) ::= . { A = (Args){NULL, 0}; }
list(A) ::= values(B). { A = B; }
list(A) ::= values(B) COMMA. { A = B; }

args(A) ::= . { A = (Args){NULL, 0}; }
args(A) ::= arglist(B). { A = B; }
args(A) ::= arglist(B) COMMA. { A = B; }
arglist(A) ::= expr(E). { A = ast_args_add((Args){NULL, 0}, no_name(), E); }
arglist(A) ::= IDENT(N) COLON expr(E). {
  A = ast_args_add((Args){NULL, 0}, name_of(N), E);
}
arglist(A) ::= arglist(B) COMMA expr(E). { A = ast_args_add(B, no_name(), E); }
arglist(A) ::= arglist(B) COMMA IDENT(N) COLON expr(E). {
  A = ast_args_add(B, name_of(N), E);
}

%code {

/* ---- syntax errors ------------------------------------------------------- */

_Static_assert(YYNTOKEN <= MAX_TOKEN_KINDS, "ParseState.expected is too small");

/* Would the parser, in its present state, accept token `kind` next? Replays
 * Lemon's reductions without touching the parser: states popped come from its
 * stack, states pushed go to a small overlay. */
static bool parser_accepts(const yyParser *p, int kind) {
  enum { OVERLAY = 64 };
  YYACTIONTYPE pushed[OVERLAY];
  int npushed = 0, real = (int)(p->yytos - p->yystack);
  for (int steps = 0; steps < 4 * OVERLAY; steps++) {
    YYACTIONTYPE top = npushed ? pushed[npushed - 1] : p->yystack[real].stateno;
    YYACTIONTYPE act = yy_find_shift_action((YYCODETYPE)kind, top);
    if (act <= YY_MAX_SHIFTREDUCE || act == YY_ACCEPT_ACTION)
      return true;
    if (act < YY_MIN_REDUCE || act > YY_MAX_REDUCE)
      return false;
    int rule = act - YY_MIN_REDUCE, pop = -yyRuleInfoNRhs[rule];
    for (; pop > 0 && npushed > 0; pop--)
      npushed--;
    real -= pop;
    if (real < 0 || npushed == OVERLAY)
      return false;
    top = npushed ? pushed[npushed - 1] : p->yystack[real].stateno;
    pushed[npushed++] = yy_find_reduce_action(top, yyRuleInfoLhs[rule]);
  }
  return false;
}

/* Before each token: if the parser will reject it, note what it would have
 * accepted, now, before Lemon's default reductions forget alternatives. */
static void note_expected(ParseState *ps, const yyParser *p, int kind) {
  ps->rejected = !parser_accepts(p, kind);
  for (int k = 0; ps->rejected && k < YYNTOKEN; k++)
    ps->expected[k] = k != YYERRORSYMBOL && parser_accepts(p, k);
}

/* Tokens that only continue an expression: listing them helps nobody. */
static bool is_operator(int kind) {
  return kind == TK_PLUS || kind == TK_MINUS || kind == TK_STAR ||
         kind == TK_SLASH || kind == TK_X;
}

static const int statement_starts[] = {TK_IMPORT, TK_LET, TK_SUBJECTS, TK_AUNN,
                                       TK_REGION, TK_CONNECT, TK_DATA, TK_OBSERVE,
                                       TK_STRUCTURE, TK_LOSS, TK_TRAIN};
static const int expression_starts[] = {TK_NUMBER, TK_STRING, TK_IDENT, TK_QNAME,
                                        TK_LPAREN, TK_LBRACKET, TK_MINUS};
enum {
  NSTATEMENT = sizeof statement_starts / sizeof *statement_starts,
  NEXPRESSION = sizeof expression_starts / sizeof *expression_starts
};

static bool all_in(const bool *ok, const int *kinds, int n) {
  for (int i = 0; i < n; i++)
    if (!ok[kinds[i]])
      return false;
  return true;
}

/* Names what was expected, groups first, ends of line and file last. */
static int expected_names(const bool *expected, const char **names) {
  bool ok[YYNTOKEN];
  memcpy(ok, expected, sizeof ok);
  ok[TK_FROM] &= !ok[TK_IDENT];    /* where a name goes, `from` falls back to one */
  int n = 0;
  if (all_in(ok, expression_starts, NEXPRESSION)) {
    for (int i = 0; i < NEXPRESSION; i++)
      ok[expression_starts[i]] = false;
    names[n++] = "an expression";
  }
  if (ok[TK_IDENT])
    ok[TK_QNAME] = false;          /* "a name" says it: a qualified one is one too */
  for (int k = 1; k < YYNTOKEN; k++)
    if (ok[k] && k != TK_NEWLINE && k != YYERRORSYMBOL && !is_operator(k))
      names[n++] = lex_kind_name(k);
  if (ok[TK_NEWLINE])
    names[n++] = lex_kind_name(TK_NEWLINE);
  if (ok[0])
    names[n++] = lex_kind_name(0);
  return n;
}

static void append(char *buf, size_t size, const char *s) {
  size_t n = strlen(buf);
  snprintf(buf + n, size - n, "%s", s);
}

static void join(char *buf, size_t size, const char **names, int n) {
  buf[0] = 0;
  for (int i = 0; i < n; i++) {
    append(buf, size, i == 0 ? "" : i == n - 1 ? " or " : ", ");
    append(buf, size, names[i]);
  }
}

/* How the message names the token found. */
static void found_text(char *buf, size_t size, Token t) {
  if (t.kind == TK_IDENT || t.kind == TK_QNAME || t.kind == TK_NUMBER || t.kind == TK_X)
    snprintf(buf, size, "'%.*s'%s", t.len > 32 ? 32 : t.len, t.start,
             t.len > 32 ? "..." : "");
  else
    snprintf(buf, size, "%s", lex_kind_name(t.kind));
}

/* The words of statement_starts, in its order. */
static const char *const statement_words[] = {"import", "let", "subjects", "aunn",
                                              "region", "connect", "data", "observe",
                                              "structure", "loss", "train"};
_Static_assert(sizeof statement_words / sizeof *statement_words == NSTATEMENT,
               "statement_words and statement_starts differ");

/* The statement keyword nearest in spelling to t, if near enough. */
static const char *close_keyword(Token t) {
  int limit = t.len > 4 ? 2 : 1;
  const char *best = NULL;
  for (int i = 0; i < NSTATEMENT; i++) {
    int dist = ast_edit_distance(t.start, t.len, statement_words[i], limit);
    if (dist <= limit) {
      best = statement_words[i];
      limit = dist - 1;            /* only a nearer one replaces it */
    }
  }
  return best;
}

/* Where a statement should start. After a failed statement only a likely
 * misspelt keyword is reported: other lines there (the items of a block
 * whose '{' was lost, its '}') are most likely the failure's consequences. */
static void report_bad_statement(ParseState *ps, Token found, const char *what) {
  const char *hint = found.kind == TK_IDENT ? close_keyword(found) : NULL;
  if (hint)
    diag_error(ps->diag, DIAG_NOT_STATEMENT, found.pos,
               "unknown statement %s; did you mean '%s'?", what, hint);
  else if (!ps->statement_failed)
    diag_error(ps->diag, DIAG_NOT_STATEMENT, found.pos,
               "expected a statement (import, let, subjects, aunn, region, connect, "
               "data, observe, structure, loss or train), found %s", what);
}

/* `areas . cortex`: blanks split a qualified name into tokens that make no
 * sense outside an import; say that rather than what was expected. */
static bool blank_in_qualified_name(const ParseState *ps, Token found) {
  Token name = ps->previous;
  if (found.kind != TK_DOT ||
      (name.kind != TK_IDENT && name.kind != TK_QNAME && name.kind != TK_X))
    return false;
  char after = found.start[1];     /* the text goes on to a NUL */
  return name.start + name.len != found.start || after == ' ' || after == '\t';
}

static void report_syntax_error(ParseState *ps, Token found) {
  char expected[512], what[128];
  const char *names[YYNTOKEN];
  if (found.pos.line == ps->lexer->error_line)
    return;                        /* most likely the lexical error's doing */
  if (found.kind == TK_SIMULATE) {
    diag_error(ps->diag, DIAG_RESERVED, found.pos,
               "'%.*s' is reserved for a later version of the language", found.len,
               found.start);
    return;
  }
  if (blank_in_qualified_name(ps, found)) {
    diag_error(ps->diag, DIAG_SYNTAX, found.pos,
               "a qualified name has no blanks around its '.' (like areas.cortex)");
    return;
  }
  found_text(what, sizeof what, found);
  if (!ps->rejected)               /* cannot happen: note_expected saw it coming */
    diag_error(ps->diag, DIAG_SYNTAX, found.pos, "unexpected %s", what);
  else if (all_in(ps->expected, statement_starts, NSTATEMENT))
    report_bad_statement(ps, found, what);
  else {
    join(expected, sizeof expected, names, expected_names(ps->expected, names));
    diag_error(ps->diag, DIAG_SYNTAX, found.pos, "expected %s, found %s", expected, what);
  }
}

/* ---- the driver ---------------------------------------------------------- */

Program *parse_file(Diag *d, SrcFile *file) {
  int errors_before = diag_errors(d);
  Lexer lx;
  lex_init(&lx, d, file);
  ParseState ps = {.diag = d, .lexer = &lx, .prog = ast_program_new(file)};
  void *parser = parse_lemonAlloc(malloc, &ps);
  Token t;
  do {
    lex_next(&lx, &t);
    ps.previous = ps.current;
    ps.current = t;
    note_expected(&ps, parser, t.kind);
    parse_lemon(parser, t.kind, t);
  } while (t.kind != 0 && !ps.overflowed);
  parse_lemonFree(parser, free);
  if (ps.prog->ndecls == 0 && diag_errors(d) > errors_before) {
    ast_free(ps.prog);
    return NULL;
  }
  return ps.prog;
}

}
