/*
 * import.c — modules: `import a.b.c [as n]` loads the file a/b/c.lobe.
 *
 * The file is searched in the folder of the importing file, then in the
 * stdlib folder (import_stdlib_folder). Modules are loaded depth first, the
 * spec being modules[0]; a file is identified by its real path, so it is
 * loaded once however many imports name it. A file still being loaded when
 * an import names it again closes an import cycle, which is an error.
 * Everything here is reported where the import statement is, except the
 * syntax errors of a module and the statements it may not hold, which point
 * into the module's own file.
 */
#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "front.h"

#ifndef LOBE_STDLIB_DIR
#error "LOBE_STDLIB_DIR (the source tree's stdlib/) must be defined by the build"
#endif

enum {
  MAX_STDLIB_MODULES = 64,         /* listed for "did you mean" */
  MAX_STDLIB_DEPTH = 4,            /* folders deep */
  MAX_CHAIN = 2048                 /* bytes of a printed import cycle */
};

typedef struct Loader {
  Diag *d;
  ModuleSet *set;
  char **keys;                     /* per module: its real path */
  int *loading;                    /* per module: still loading its imports */
  char *stdlib;
} Loader;

static bool is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *import_stdlib_folder(void) {
  const char *env = getenv("LOBE_STDLIB");
  if (env && env[0])
    return strdup(env);
  char exe[PATH_MAX], *beside;
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = 0;
    if (asprintf(&beside, "%s/../share/lobe/stdlib", dirname(exe)) >= 0) {
      if (is_dir(beside))
        return beside;
      free(beside);
    }
  }
  return strdup(LOBE_STDLIB_DIR);
}

/* folder/rel, or rel alone for the current folder. */
static char *join(const char *folder, const char *rel) {
  char *path;
  if (strcmp(folder, ".") == 0)
    return strdup(rel);
  size_t n = strlen(folder);
  if (asprintf(&path, "%s%s%s", folder, n && folder[n - 1] == '/' ? "" : "/", rel) < 0)
    return NULL;
  return path;
}

/* "a.b.c" -> "a/b/c.lobe" */
static char *module_file(const char *module) {
  char *rel = malloc(strlen(module) + 6);
  char *p = stpcpy(rel, module);
  strcpy(p, ".lobe");
  for (char *c = rel; c < p; c++)
    if (*c == '.')
      *c = '/';
  return rel;
}

static char *folder_of(const char *path) {
  char *copy = strdup(path);
  char *folder = strdup(dirname(copy));
  free(copy);
  return folder;
}

/* ---- "did you mean": the stdlib's modules --------------------------------- */

typedef struct NameList {
  char *v[MAX_STDLIB_MODULES];
  int n;
} NameList;

/* Adds the modules under folder (prefix: their dotted name so far). */
static void list_modules(NameList *out, const char *folder, const char *prefix,
                         int depth) {
  DIR *dir = opendir(folder);
  struct dirent *e;
  while (dir && (e = readdir(dir)) && out->n < MAX_STDLIB_MODULES) {
    size_t len = strlen(e->d_name);
    char *path = join(folder, e->d_name), *name;
    if (e->d_name[0] == '.' || !path ||
        asprintf(&name, "%s%s", prefix, e->d_name) < 0) {
      free(path);
      continue;
    }
    if (len > 5 && strcmp(e->d_name + len - 5, ".lobe") == 0 && is_file(path)) {
      name[strlen(name) - 5] = 0;
      out->v[out->n++] = strdup(name);
    } else if (depth < MAX_STDLIB_DEPTH && is_dir(path)) {
      char *deeper;
      if (asprintf(&deeper, "%s.", name) >= 0) {
        list_modules(out, path, deeper, depth + 1);
        free(deeper);
      }
    }
    free(name);
    free(path);
  }
  if (dir)
    closedir(dir);
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "; did you mean 'std.priors'?", or the list of stdlib modules. */
static void module_hint(const Loader *L, const char *module, char *buf, size_t size) {
  NameList known = {.n = 0};
  list_modules(&known, L->stdlib, "", 0);
  qsort(known.v, known.n, sizeof *known.v, compare_names);
  int len = (int)strlen(module), limit = len / 3 > 1 ? len / 3 : 1;
  const char *best = NULL;
  for (int i = 0; i < known.n; i++) {
    int dist = ast_edit_distance(module, len, known.v[i], limit);
    if (dist <= limit && dist < len) {
      best = known.v[i];
      limit = dist - 1;
    }
  }
  buf[0] = 0;
  if (best)
    snprintf(buf, size, "; did you mean '%s'?", best);
  for (int i = 0; !best && i < known.n; i++) {
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%s%s", i ? ", " : "; the standard modules are ",
             known.v[i]);
  }
  for (int i = 0; i < known.n; i++)
    free(known.v[i]);
}

/* ---- finding and loading ------------------------------------------------- */

/* The file of `module` for an import in file `from`, malloc'd, or NULL after
 * reporting where it was looked for. */
static char *find_module(Loader *L, const Decl *imp, const char *from) {
  char *rel = module_file(imp->module), *folder = folder_of(from);
  char *candidates[2] = {join(folder, rel), join(L->stdlib, rel)};
  char *found = NULL;
  for (int i = 0; i < 2 && !found; i++)
    if (candidates[i] && is_file(candidates[i]))
      found = strdup(candidates[i]);
  if (!found) {
    char hint[1024];
    module_hint(L, imp->module, hint, sizeof hint);
    diag_error(L->d, DIAG_UNKNOWN_MODULE, imp->module_pos,
               "cannot find module '%s' (searched %s, %s)%s", imp->module,
               candidates[0] ? candidates[0] : rel, candidates[1] ? candidates[1] : rel,
               hint);
  }
  free(candidates[0]);
  free(candidates[1]);
  free(folder);
  free(rel);
  return found;
}

/* A module defines AUNNs and presets; the model itself is the spec's. */
static void check_statements(Loader *L, const Program *p) {
  for (int i = 0; i < p->ndecls; i++) {
    DeclKind k = p->decls[i].kind;
    if (k != DECL_IMPORT && k != DECL_AUNN && k != DECL_LET)
      diag_error(L->d, DIAG_NOT_IN_MODULE, p->decls[i].pos,
                 "'%s' is not allowed in an imported module (only import, aunn and "
                 "let are)", ast_decl_keyword(k));
  }
}

static int add_module(Loader *L, char *name, const Program *prog, char *key) {
  ModuleSet *set = L->set;
  int n = set->nmodules++;
  set->modules = realloc(set->modules, set->nmodules * sizeof *set->modules);
  L->keys = realloc(L->keys, set->nmodules * sizeof *L->keys);
  L->loading = realloc(L->loading, set->nmodules * sizeof *L->loading);
  set->modules[n] = (Module){.name = name, .prog = prog};
  L->keys[n] = key;
  L->loading[n] = 0;
  return n;
}

static int find_key(const Loader *L, const char *key) {
  for (int i = 0; i < L->set->nmodules; i++)
    if (strcmp(L->keys[i], key) == 0)
      return i;
  return -1;
}

static void load_imports(Loader *L, int m);

/* Reads and parses path as module `name`; its index. */
static int load_module(Loader *L, const char *name, const char *path, char *key) {
  int errors = diag_errors(L->d);
  SrcFile *file = diag_load_file(L->d, path);
  Program *prog = file ? parse_file(L->d, file) : NULL;
  int m = add_module(L, strdup(name), prog, key);
  L->set->modules[m].broken = !prog || diag_errors(L->d) != errors;
  if (!prog)
    return m;
  check_statements(L, prog);
  L->loading[m] = 1;
  load_imports(L, m);
  L->loading[m] = 0;
  return m;
}

/* "a -> b -> a": the modules being loaded from `first` on, then `first`. The
 * modules being loaded are those on the path from the spec to the import
 * being loaded, in order of their indices. */
static void print_chain(const Loader *L, int first, char *buf, size_t size) {
  buf[0] = 0;
  for (int i = first; i < L->set->nmodules; i++) {
    if (!L->loading[i])
      continue;
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%s -> ", L->set->modules[i].name);
  }
  size_t used = strlen(buf);
  snprintf(buf + used, size - used, "%s", L->set->modules[first].name);
}

/* The module an import names, loaded if new; -1 after an error. */
static int import_module(Loader *L, const Decl *imp, const char *from) {
  char *path = find_module(L, imp, from);
  if (!path)
    return -1;
  char *key = realpath(path, NULL);
  int m = key ? find_key(L, key) : -1;
  if (!key)
    key = strdup(path);
  if (m < 0)
    m = load_module(L, imp->module, path, key);
  else {
    free(key);
    if (L->loading[m]) {
      char chain[MAX_CHAIN];
      print_chain(L, m, chain, sizeof chain);
      diag_error(L->d, DIAG_IMPORT_CYCLE, imp->module_pos, "import cycle: %s", chain);
      m = -1;
    }
  }
  free(path);
  return m;
}

/* The namespace of an import: its alias, else the module's last component. */
static Name namespace_name(const Decl *imp) {
  if (imp->alias.len)
    return imp->alias;
  const char *last = strrchr(imp->module, '.');
  last = last ? last + 1 : imp->module;
  return (Name){last, (int)strlen(last), imp->module_pos};
}

/* Declares the namespace of imp in module m; false if it is taken. */
static bool add_namespace(Loader *L, int m, const Decl *imp) {
  Name n = namespace_name(imp);
  const Namespace *prev = import_namespace(L->set, m, n.start, n.len);
  if (prev) {
    diag_error(L->d, DIAG_NAMESPACE_TWICE, n.pos,
               "namespace '%.*s' is already taken by another import%s", n.len, n.start,
               imp->alias.len ? "" : "; choose another with 'as NAME'");
    diag_note(L->d, prev->pos, "first imported here");
    return false;
  }
  Module *mod = &L->set->modules[m];
  mod->spaces = realloc(mod->spaces, (mod->nspaces + 1) * sizeof *mod->spaces);
  mod->spaces[mod->nspaces++] =
      (Namespace){strndup(n.start, n.len), imp->alias.len ? imp->alias.pos : imp->module_pos,
                  -1};
  return true;
}

static void load_imports(Loader *L, int m) {
  const Program *p = L->set->modules[m].prog;
  for (int i = 0; i < p->ndecls; i++) {
    const Decl *imp = &p->decls[i];
    if (imp->kind != DECL_IMPORT || !imp->module || !add_namespace(L, m, imp))
      continue;
    int target = import_module(L, imp, p->file->path);
    Module *mod = &L->set->modules[m];    /* loading may have moved it */
    mod->spaces[mod->nspaces - 1].module = target;
  }
}

ModuleSet *import_load(Diag *d, const Program *p) {
  Loader L = {.d = d, .set = calloc(1, sizeof(ModuleSet)),
              .stdlib = import_stdlib_folder()};
  const char *path = p->file ? p->file->path : "";
  char *key = realpath(path, NULL);
  add_module(&L, strdup(path), p, key ? key : strdup(path));
  L.loading[0] = 1;
  load_imports(&L, 0);
  for (int i = 0; i < L.set->nmodules; i++)
    free(L.keys[i]);
  free(L.keys);
  free(L.loading);
  free(L.stdlib);
  return L.set;
}

const Namespace *import_namespace(const ModuleSet *set, int m, const char *name,
                                  int len) {
  const Module *mod = &set->modules[m];
  for (int i = 0; i < mod->nspaces; i++)
    if ((int)strlen(mod->spaces[i].name) == len &&
        strncmp(mod->spaces[i].name, name, len) == 0)
      return &mod->spaces[i];
  return NULL;
}

void import_free(ModuleSet *set) {
  if (!set)
    return;
  for (int i = 0; i < set->nmodules; i++) {
    Module *mod = &set->modules[i];
    for (int k = 0; k < mod->nspaces; k++)
      free(mod->spaces[k].name);
    free(mod->spaces);
    free(mod->name);
    if (i > 0)
      ast_free((Program *)mod->prog);   /* modules[0]'s is the caller's */
  }
  free(set->modules);
  free(set);
}
