/*
 * backend.h — from IR to an executable: LLVM code generation and linking.
 * Sections: codegen_llvm.c (cg_), codegen_c.c (cg_c_), link.c (link_).
 */
#ifndef LOBE_BACKEND_H
#define LOBE_BACKEND_H

#include "ir.h"

/* ------------------------------------------------------- codegen_llvm.c */
/* Emits every function of mod twice (NAME_f32, NAME_f64) with the lobe_fn
 * signature of runtime/lobe_model.h, plus the `lobe_model_desc` descriptor,
 * optimised at O2 for the host CPU, as an object file. With emit_llvm set,
 * writes textual LLVM IR to that path as well. Returns 0, or -1 with err. */
typedef struct CgOptions {
  const char *emit_llvm;   /* NULL or path for the .ll dump */
  int opt_level;           /* 0..3; default 2 */
  bool descriptor;         /* emit lobe_model_desc (false for bare IR tests) */
} CgOptions;

int cg_emit_object(const IrModule *mod, const CgOptions *opt,
                   const char *obj_path, char *err, int errlen);

/* Symbol name of function f in the given precision ("f32" or "f64"). */
void cg_symbol(const IrFunc *f, const char *prec, char *buf, int buflen);

/* ---------------------------------------------------------- codegen_c.c */
/* Prints f as a C99 function
 *   [static] void NAME(const void *const *in, void *const *out)
 * with in[] and out[] as in lobe_fn (float for reals, int32_t for ids; an
 * input it does not read may be NULL). The text needs <math.h>, <stdint.h>
 * and <string.h> included before it; it keeps static buffers, so it is not
 * reentrant. Returns 0, or -1 with err (f fails ir_verify, a write error). */
int cg_c_function(FILE *out, const IrFunc *f, const char *name, bool is_static,
                  char *err, int errlen);

/* --------------------------------------------------------------- link.c */
/* Links obj with the runtime library and OpenBLAS into an executable
 * (shared = false) or a shared object (shared = true, for tests). */
int link_executable(const char *obj_path, const char *out_path, bool shared,
                    char *err, int errlen);

#endif
