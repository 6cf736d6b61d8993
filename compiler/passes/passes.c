/*
 * passes.c — the optimisation pipeline. The order is written once, here:
 * fold first so CSE sees canonical constants, CSE next so equal
 * subexpressions share one value, DCE last to drop everything the first two
 * left unused and renumber.
 */
#include <string.h>

#include "ir.h"

#define PIPELINE(X) X(fold) X(cse) X(dce)

static const struct {
  const char *name;
  void (*run)(IrFunc *f);
} pipeline[] = {
#define PASS_ENTRY(name) {#name, pass_##name},
    PIPELINE(PASS_ENTRY)
#undef PASS_ENTRY
};

static const char *const names[] = {
#define PASS_NAME(name) #name,
    PIPELINE(PASS_NAME)
#undef PASS_NAME
    NULL,
};

const char *const *pass_names(void) { return names; }

/* dump_after: a pass name, "all", or NULL for no dump. */
void pass_run_all(IrFunc *f, const char *dump_after, FILE *dump) {
  for (size_t i = 0; i < sizeof pipeline / sizeof pipeline[0]; i++) {
    pipeline[i].run(f);
    if (dump_after && dump &&
        (strcmp(dump_after, "all") == 0 || strcmp(dump_after, pipeline[i].name) == 0)) {
      fprintf(dump, "# after %s\n", pipeline[i].name);
      ir_print(dump, f);
    }
  }
}
