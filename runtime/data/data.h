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
  float *values;            /* rows*cols finite, row-major; NULL after data_probe */
  char **names;             /* cols channel names ("ch0".. when the format has none) */
} DataTable;

/* When a file's samples are, where it says: rate 0 when it does not. */
typedef struct DataClock {
  double rate;              /* Hz */
  double t0;                /* seconds: time of sample 0 */
} DataClock;

/* What a format needs besides the path (the spec's options, docs/data.md). */
typedef struct DataOptions {
  const char *const *select; /* edf: labels to read (nselect 0: every signal) */
  int nselect;
  const char *var;           /* mat: the variable (required) */
  int transposed;            /* mat: DATA_MAT_TRANSPOSED or DATA_MAT_AS_STORED */
  double bin;                /* nwb_units: seconds per count (required) */
  const char *series;        /* nwb_series: the TimeSeries group (required) */
  const char *atlas;         /* nifti: the label image (required) */
} DataOptions;

/* kind is LOBE_SRC_* from lobe_model.h; csv and npy take no options. */
int data_load(int kind, const char *path, DataTable *out, char *err, size_t errlen);
/* Reads only what gives rows, cols and names (some formats must read
 * everything for that). */
int data_probe(int kind, const char *path, DataTable *out, char *err, size_t errlen);
/* The same for any kind, with its options (opt may be NULL for csv and npy);
 * *clock (if not NULL) gets the file's rate and t0. */
int data_load_with(int kind, const char *path, const DataOptions *opt, DataTable *out,
                   DataClock *clock, char *err, size_t errlen);
int data_probe_with(int kind, const char *path, const DataOptions *opt, DataTable *out,
                    DataClock *clock, char *err, size_t errlen);
void data_free(DataTable *t);

/* Format-specific readers behind data_load (csv.c, npy.c). */
int data_read_csv(const char *path, int header_only, DataTable *out, char *err, size_t errlen);
int data_read_npy(const char *path, int header_only, DataTable *out, char *err, size_t errlen);

/* ---- edf.c: EDF, EDF+ and BDF(+) recordings through EDFlib -------------- */
/* A recording: samples x selected signals in physical units, at one rate. */
typedef struct DataEdf {
  DataTable table;          /* names: the signals' labels, trimmed */
  double rate;              /* samples per second, shared by every column */
  char **units;             /* table.cols physical dimensions ("uV"; "" if none) */
} DataEdf;

/* Reads the signals named in labels[0..nlabels) in that order (a label
 * matches a signal's whole label or its last word: "O1" finds "EEG O1",
 * ignoring case), or with nlabels == 0 every signal at the most common rate.
 * Annotation signals are never read. Refuses signals of different rates. */
int data_read_edf(const char *path, const char *const *labels, int nlabels,
                  int header_only, DataEdf *out, char *err, size_t errlen);
void data_edf_free(DataEdf *e);

/* ---- mat.c: MATLAB .mat files (v4, v5, v7.3) through matio -------------- */
enum {
  DATA_MAT_AS_STORED = 0,   /* rows x cols as in the file (samples x channels) */
  DATA_MAT_TRANSPOSED = 1,  /* the file holds channels x samples: transpose */
};
/* Reads variable `var`: a real, non-empty, 2-D numeric (or logical) array of
 * any class, converted to float32. Channel names are "ch0", "ch1", .... */
int data_read_mat(const char *path, const char *var, int orientation,
                  int header_only, DataTable *out, char *err, size_t errlen);

/* ---- nwb.c: Neurodata Without Borders (NWB 2.x, HDF5) ------------------- */
/* Spike units (/units/spike_times cut by /units/spike_times_index) binned
 * into counts: one row per bin of `bin` seconds over [t_start, t_end), one
 * column per unit named "unit<ID>" from /units/id (else "unit0", ...).
 * t_end <= 0 means up to and including the last spike. */
int data_read_nwb_units(const char *path, double bin, double t_start, double t_end,
                        DataTable *out, char *err, size_t errlen);
/* The TimeSeries group `series` (e.g. "/acquisition/lfp"): its data (1-D: one
 * channel; 2-D: samples x channels) times its `conversion` plus `offset`;
 * *t0 and *rate from starting_time and its `rate` attribute, or from
 * timestamps, which must be uniform. Channel names are "ch0", "ch1", .... */
int data_read_nwb_series(const char *path, const char *series, DataTable *out,
                         double *t0, double *rate, char *err, size_t errlen);

/* ---- nifti.c: region time series from NIfTI-1/2 images (niftilib) ------- */
/* Reduces a 4-D series (x y z t; a 3-D image is one frame) by a 3-D label
 * volume on the same grid: one row per frame, one column per nonzero label
 * in ascending order, each value the mean over that label's voxels (after
 * the series' scl_slope and scl_inter). Columns are named names[i] when
 * nnames > 0 (it must equal the number of labels), else "label<VALUE>".
 * *rate is 1 / the frame time in pixdim[4] (its time unit honoured), 0 when
 * the file leaves it unset. */
int data_read_nifti_regions(const char *series, const char *labels,
                            const char *const *names, int nnames, DataTable *out,
                            double *rate, char *err, size_t errlen);

/* ---- connectome.c: The Virtual Brain connectivity zips (libzip) --------- */
typedef struct DataConnectome {
  int n;                    /* regions */
  char **labels;            /* n labels, from centres.txt */
  double *weights;          /* n x n, row-major as in weights.txt */
  double *tract_lengths;    /* n x n, row-major as in tract_lengths.txt (mm) */
  double *centres;          /* n x 3: x, y, z of each region (mm) */
} DataConnectome;

/* Reads weights.txt, tract_lengths.txt and centres.txt ("label x y z" per
 * line) from the zip, wherever they sit in its folders. */
int data_read_connectome(const char *path, DataConnectome *out, char *err, size_t errlen);
void data_connectome_free(DataConnectome *c);

#endif
