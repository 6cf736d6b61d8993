/*
 * data.h — data sources: whole tables of samples x channels in float32.
 * Used by the runtime (training, eval) and by lobec (to learn a source's
 * channel count and names at compile time). Readers never crash on bad input:
 * they return -1 and write a message naming the file, the field, what was
 * expected and what was found.
 */
#ifndef LOBE_DATA_H
#define LOBE_DATA_H

#include <stddef.h>

typedef struct DataTable {
  int rows, cols;           /* samples x channels */
  float *values;            /* rows*cols, row-major; NULL after data_probe */
  char **names;             /* cols channel names ("ch0".. when the format has none) */
} DataTable;

/* kind is LOBE_SRC_* from lobe_model.h. */
int data_load(int kind, const char *path, DataTable *out, char *err, size_t errlen);
/* Reads only what gives rows, cols and names. */
int data_probe(int kind, const char *path, DataTable *out, char *err, size_t errlen);
void data_free(DataTable *t);

/* Format-specific readers behind data_load (csv.c, npy.c). */
int data_read_csv(const char *path, int header_only, DataTable *out, char *err, size_t errlen);
int data_read_npy(const char *path, int header_only, DataTable *out, char *err, size_t errlen);

#endif
