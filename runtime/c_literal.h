/*
 * c_literal.h — a float written as C source text. Shared by the compiler's
 * C backend (compiler/codegen_c.c: constants of a kernel) and `brain export`
 * (runtime/export.c: the trained weights beside it), so both read back alike.
 */
#ifndef LOBE_C_LITERAL_H
#define LOBE_C_LITERAL_H

#include <math.h>
#include <stdio.h>
#include <string.h>

/* x as a float literal that reads back exactly; infinities and NaN through
 * math.h. */
static inline void c_float_literal(FILE *out, double x) {
  if (isnan(x))
    fputs("NAN", out);
  else if (isinf(x))
    fputs(x > 0 ? "HUGE_VALF" : "-HUGE_VALF", out);
  else {
    char text[32];   /* %.9g reads back exactly; a float literal needs a . or e */
    snprintf(text, sizeof text, "%.9g", x);
    fprintf(out, strpbrk(text, ".e") ? "%sf" : "%s.0f", text);
  }
}

#endif
