/*
 * fuzz_front.c — a libFuzzer harness over the front end: every input is lexed,
 * parsed, checked by sema when it parsed cleanly, and its diagnostics printed,
 * so a crash, leak or sanitizer report anywhere in that path fails the run.
 * Built with clang by run_fuzz.sh (the main build uses gcc).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Opened once: diagnostics are printed (to fuzz the printer) but not kept. */
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  devnull = fopen("/dev/null", "w");
  if (!devnull) {
    perror("fuzz_front: /dev/null");
    exit(1);
  }
  return 0;
}

/* The front end reads NUL-terminated text; a NUL inside the input ends it
 * early, as diag_add_source's strlen would. */
static char *terminated_copy(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  memcpy(text, data, size);
  text[size] = 0;
  return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = terminated_copy(data, size);
  Diag *d = diag_new(devnull, false);
  SrcFile *file = diag_add_source(d, "fuzz.lobe", text);
  free(text);
  Program *prog = parse_file(d, file);
  if (prog && diag_errors(d) == 0)
    sema_free(sema_check(d, prog));
  ast_free(prog);
  diag_flush(d);
  diag_free(d);
  return 0;
}
