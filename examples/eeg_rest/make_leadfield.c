/*
 * make_leadfield.c — the eeg_rest example's lead field: the potential at the
 * 19 electrodes of the 10-20 system made by a unit radial current dipole at
 * each region centre of a TVB connectome, in a homogeneous conducting sphere,
 * average referenced and scaled so its largest |gain| is 1. LEADFIELD.md has
 * the equations and the assumptions.
 *   make_leadfield CONNECTOME.zip OUT.csv  writes the regions x channels CSV
 *   make_leadfield --check CONNECTOME.zip  checks the matrix; exit 1 if wrong
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

enum { CHANNELS = 19 };

static const double SPHERE_RADIUS = 0.090;    /* m */
static const double CONDUCTIVITY = 0.33;      /* S/m */
static const double FARTHEST_CENTRE = 0.8;    /* of the radius */
static const double MIRROR_TOLERANCE = 0.10;  /* 1 - correlation of a pair */

/* The international 10-20 layout in the spherical convention of BESA, which
 * EEGLAB and MNE also read ("theta/phi in degrees"): theta is the angle from
 * the vertex (Cz), negative on the left; phi the azimuth from the T3-T4 line,
 * counterclockwise seen from above. Order as in the EEGMAT recordings; T3 T4
 * T5 T6 are T7 T8 P7 P8 in the 10-10 names. */
static const struct Electrode {
  const char *label;
  double theta, phi;  /* degrees */
} electrodes[CHANNELS] = {
    {"Fp1", -92, -72}, {"Fp2", 92, 72}, {"F3", -60, -51}, {"F4", 60, 51},
    {"F7", -92, -36},  {"F8", 92, 36},  {"T3", -92, 0},   {"T4", 92, 0},
    {"C3", -46, 0},    {"C4", 46, 0},   {"T5", -92, 36},  {"T6", 92, -36},
    {"P3", -60, 51},   {"P4", 60, -51}, {"O1", -92, 72},  {"O2", 92, -72},
    {"Fz", 46, 90},    {"Cz", 0, 0},    {"Pz", 46, -90},
};

typedef struct LeadField {
  const DataConnectome *conn;
  double electrode[CHANNELS][3];  /* head frame (m) */
  double *dipole;                 /* n x 3: each region's position, head frame (m) */
  double *gain;                   /* n x CHANNELS */
  double raw_peak;                /* largest |gain| before scaling, V per A m */
} LeadField;

static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fflush(stdout);  /* keep --check's report in order */
  fputs("make_leadfield: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return -1;
}

static double dot(const double a[3], const double b[3]) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static double distance(const double a[3], const double b[3]) {
  double d[3] = {a[0] - b[0], a[1] - b[1], a[2] - b[2]};
  return sqrt(dot(d, d));
}

static int channel_index(const char *label) {
  for (int e = 0; e < CHANNELS; e++)
    if (strcmp(electrodes[e].label, label) == 0)
      return e;
  return -1;
}

static int largest_abs(const double *x, int n) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (fabs(x[i]) > fabs(x[best]))
      best = i;
  return best;
}

/* ---- geometry -------------------------------------------------------------- */

/* Head frame: x to the right ear (T4), y to the nose (Fz), z up (Cz). */
static void place_electrodes(LeadField *lf) {
  for (int e = 0; e < CHANNELS; e++) {
    double theta = electrodes[e].theta * M_PI / 180, phi = electrodes[e].phi * M_PI / 180;
    lf->electrode[e][0] = SPHERE_RADIUS * sin(theta) * cos(phi);
    lf->electrode[e][1] = SPHERE_RADIUS * sin(theta) * sin(phi);
    lf->electrode[e][2] = SPHERE_RADIUS * cos(theta);
  }
}

/* TVB's centres (mm) run x posterior to anterior, y right to left, z inferior
 * to superior: V1 has x near -65, every "l" region y > 0, the temporal pole
 * z near -60. So right = -y, front = x, up = z. */
static void tvb_to_head(const double tvb[3], double head[3]) {
  head[0] = -tvb[1];
  head[1] = tvb[0];
  head[2] = tvb[2];
}

static void centroid(const DataConnectome *c, double mean[3]) {
  mean[0] = mean[1] = mean[2] = 0;
  for (int i = 0; i < c->n; i++)
    for (int k = 0; k < 3; k++)
      mean[k] += c->centres[i * 3 + k] / c->n;
}

/* Centres about their centroid, scaled so the farthest sits at
 * FARTHEST_CENTRE of the radius. */
static int place_dipoles(LeadField *lf) {
  const DataConnectome *c = lf->conn;
  double mean[3], farthest = 0;
  centroid(c, mean);
  for (int i = 0; i < c->n; i++)
    farthest = fmax(farthest, distance(c->centres + i * 3, mean));
  if (!(farthest > 0 && isfinite(farthest)))
    return fail("expected region centres spread over a finite volume, found a spread of %g mm",
                farthest);
  double scale = FARTHEST_CENTRE * SPHERE_RADIUS / farthest;
  for (int i = 0; i < c->n; i++) {
    double tvb[3];
    for (int k = 0; k < 3; k++)
      tvb[k] = (c->centres[i * 3 + k] - mean[k]) * scale;
    tvb_to_head(tvb, lf->dipole + i * 3);
    if (sqrt(dot(lf->dipole + i * 3, lf->dipole + i * 3)) < 1e-6 * SPHERE_RADIUS)
      return fail("region %s sits at the centroid of the centres, where \"radial\" has no "
                  "direction", c->labels[i]);
  }
  return 0;
}

/* ---- the potential of a radial dipole in a homogeneous sphere -------------- */

/* A unit dipole at r0 (|r0| = b > 0) pointing along u = r0 / b, seen at r on
 * the sphere of radius R, with d = r - r0:
 *   V = (2 (d . u) / |d|^3 + (1/|d| - 1/R) / b) / (4 pi sigma)
 * (Frank's formula for a radial dipole; LEADFIELD.md derives it). */
static double radial_dipole_potential(const double r0[3], const double r[3]) {
  double b = sqrt(dot(r0, r0)), dist = distance(r, r0);
  double d_dot_u = (dot(r, r0) - b * b) / b;
  return (2 * d_dot_u / (dist * dist * dist) + (1 / dist - 1 / SPHERE_RADIUS) / b) /
         (4 * M_PI * CONDUCTIVITY);
}

/* The Legendre series the closed form sums, t = b / R, x = cos(r0, r):
 *   V = sum_{n>=1} (2n+1) t^(n-1) P_n(x) / (4 pi sigma R^2).
 * Only --check uses it, to test the closed form. */
static double radial_dipole_series(const double r0[3], const double r[3]) {
  double b = sqrt(dot(r0, r0)), t = b / SPHERE_RADIUS, x = dot(r0, r) / (b * SPHERE_RADIUS);
  double p_before = 1, p = x, t_power = 1, sum = 0;
  for (int n = 1; n < 100000 && (2 * n + 1) * t_power > 1e-17; n++) {
    sum += (2 * n + 1) * t_power * p;
    double p_next = ((2 * n + 1) * x * p - n * p_before) / (n + 1);
    p_before = p;
    p = p_next;
    t_power *= t;
  }
  return sum / (4 * M_PI * CONDUCTIVITY * SPHERE_RADIUS * SPHERE_RADIUS);
}

/* ---- the matrix ------------------------------------------------------------ */

/* Each row minus its mean: the average reference. */
static void average_reference(LeadField *lf) {
  for (int i = 0; i < lf->conn->n; i++) {
    double *row = lf->gain + i * CHANNELS, mean = 0;
    for (int e = 0; e < CHANNELS; e++)
      mean += row[e] / CHANNELS;
    for (int e = 0; e < CHANNELS; e++)
      row[e] -= mean;
  }
}

/* The model's activity is dimensionless: only the pattern matters. */
static int scale_to_unit_peak(LeadField *lf) {
  int cells = lf->conn->n * CHANNELS;
  lf->raw_peak = fabs(lf->gain[largest_abs(lf->gain, cells)]);
  if (!(lf->raw_peak > 0 && isfinite(lf->raw_peak)))
    return fail("expected a lead field with a finite nonzero gain, found a largest |gain| "
                "of %g", lf->raw_peak);
  for (int i = 0; i < cells; i++)
    lf->gain[i] /= lf->raw_peak;
  return 0;
}

static int build(const DataConnectome *conn, LeadField *lf) {
  memset(lf, 0, sizeof *lf);
  lf->conn = conn;
  lf->dipole = malloc((size_t)conn->n * 3 * sizeof *lf->dipole);
  lf->gain = malloc((size_t)conn->n * CHANNELS * sizeof *lf->gain);
  if (!lf->dipole || !lf->gain)
    return fail("out of memory for %d regions", conn->n);
  place_electrodes(lf);
  if (place_dipoles(lf) != 0)
    return -1;
  for (int i = 0; i < conn->n; i++)
    for (int e = 0; e < CHANNELS; e++)
      lf->gain[i * CHANNELS + e] = radial_dipole_potential(lf->dipole + i * 3, lf->electrode[e]);
  average_reference(lf);
  return scale_to_unit_peak(lf);
}

static void release(LeadField *lf) {
  free(lf->dipole);
  free(lf->gain);
}

/* A header of channel labels, then one row of gains per region, in the
 * connectome's order (labels would not be numbers, which the CSV reader
 * requires in every cell). */
static int write_csv(const LeadField *lf, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f)
    return fail("%s: %s", path, strerror(errno));
  for (int e = 0; e < CHANNELS; e++)
    fprintf(f, "%s%c", electrodes[e].label, e + 1 < CHANNELS ? ',' : '\n');
  for (int i = 0; i < lf->conn->n; i++)
    for (int e = 0; e < CHANNELS; e++)
      fprintf(f, "%.9g%c", lf->gain[i * CHANNELS + e], e + 1 < CHANNELS ? ',' : '\n');
  if (ferror(f) | fclose(f))
    return fail("%s: writing failed", path);
  return 0;
}

/* ---- --check ----------------------------------------------------------------- */

static int check_rows_sum_to_zero(const LeadField *lf) {
  double worst = 0;
  for (int i = 0; i < lf->conn->n; i++) {
    double sum = 0;
    for (int e = 0; e < CHANNELS; e++)
      sum += lf->gain[i * CHANNELS + e];
    worst = fmax(worst, fabs(sum));
  }
  if (!(worst < 1e-9))
    return fail("check failed: a row sums to %g, not 0 (average reference)", worst);
  printf("ok: every row sums to 0 (largest |sum| %.1e)\n", worst);
  return 0;
}

/* Both formulas before referencing, relative to each region's largest. */
static int check_closed_form(const LeadField *lf) {
  double worst = 0;
  for (int i = 0; i < lf->conn->n; i++) {
    double closed[CHANNELS], series[CHANNELS];
    for (int e = 0; e < CHANNELS; e++) {
      closed[e] = radial_dipole_potential(lf->dipole + i * 3, lf->electrode[e]);
      series[e] = radial_dipole_series(lf->dipole + i * 3, lf->electrode[e]);
    }
    double peak = fabs(closed[largest_abs(closed, CHANNELS)]);
    for (int e = 0; e < CHANNELS; e++)
      worst = fmax(worst, fabs(closed[e] - series[e]) / peak);
  }
  if (!(worst < 1e-9))
    return fail("check failed: the closed form differs from the Legendre series by %.2g of "
                "a region's largest potential", worst);
  printf("ok: the closed form matches the Legendre series (within %.1e)\n", worst);
  return 0;
}

static int region_index(const DataConnectome *c, const char *label) {
  for (int i = 0; i < c->n; i++)
    if (strcmp(c->labels[i], label) == 0)
      return i;
  return -1;
}

static int nearest_region(const LeadField *lf, const double where[3]) {
  int best = 0;
  for (int i = 1; i < lf->conn->n; i++)
    if (distance(lf->dipole + i * 3, where) < distance(lf->dipole + best * 3, where))
      best = i;
  return best;
}

static int on_channel(const char *label, const char *const *channels) {
  for (; *channels; channels++)
    if (strcmp(label, *channels) == 0)
      return 1;
  return 0;
}

/* Whether the region's largest |gain| is on one of the channels. */
static int check_peak(const LeadField *lf, int region, const char *const *channels,
                      const char *where) {
  int peak = largest_abs(lf->gain + region * CHANNELS, CHANNELS);
  if (!on_channel(electrodes[peak].label, channels))
    return fail("check failed: %s has its largest |gain| on %s, not on the %s channels",
                lf->conn->labels[region], electrodes[peak].label, where);
  printf("ok: %s has its largest |gain| on %s (%.3f)\n", lf->conn->labels[region],
         electrodes[peak].label, lf->gain[region * CHANNELS + peak]);
  return 0;
}

static const char *const posterior[] = {"O1", "O2", "P3", "P4", "Pz", NULL};
static const char *const left_posterior[] = {"O1", "P3", "Pz", NULL};
static const char *const right_posterior[] = {"O2", "P4", "Pz", NULL};
static const char *const left_central[] = {"C3", "Cz", NULL};
static const char *const right_central[] = {"C4", "Cz", NULL};
static const char *const left_frontal_pole[] = {"Fp1", NULL};
static const char *const right_frontal_pole[] = {"Fp2", NULL};

/* Where anatomy puts some of TVB's regions (checked when the connectome has
 * them): these test the mapping of TVB's axes and the electrode table, which
 * the region nearest O1, chosen in the head frame, cannot. */
static const struct Landmark {
  const char *region, *where;
  const char *const *channels;
} landmarks[] = {
    {"lV1", "left occipital or parietal", left_posterior},
    {"rV1", "right occipital or parietal", right_posterior},
    {"lM1", "left central", left_central},
    {"rM1", "right central", right_central},
    {"lPFCPOL", "left frontal pole", left_frontal_pole},
    {"rPFCPOL", "right frontal pole", right_frontal_pole},
};

static int check_landmarks(const LeadField *lf) {
  int nearest_o1 = nearest_region(lf, lf->electrode[channel_index("O1")]);
  printf("the region nearest O1 is %s\n", lf->conn->labels[nearest_o1]);
  int failed = check_peak(lf, nearest_o1, posterior, "occipital or parietal");
  for (size_t k = 0; k < sizeof landmarks / sizeof *landmarks; k++) {
    int region = region_index(lf->conn, landmarks[k].region);
    if (region >= 0)
      failed |= check_peak(lf, region, landmarks[k].channels, landmarks[k].where);
    else
      printf("skip: no region %s in this connectome\n", landmarks[k].region);
  }
  return failed;
}

/* The electrode at e's place reflected left to right (e itself on the midline). */
static int mirror_channel(const LeadField *lf, int e) {
  double reflected[3] = {-lf->electrode[e][0], lf->electrode[e][1], lf->electrode[e][2]};
  int best = 0;
  for (int k = 1; k < CHANNELS; k++)
    if (distance(lf->electrode[k], reflected) < distance(lf->electrode[best], reflected))
      best = k;
  return best;
}

/* Left's gains against right's on the mirrored electrodes: their correlation
 * (rows are average referenced, so it is their cosine), and their largest
 * difference relative to the pair's largest |gain|. */
static void compare_mirrored(const LeadField *lf, int left, int right, double *correlation,
                             double *deviation) {
  const double *l = lf->gain + left * CHANNELS, *r = lf->gain + right * CHANNELS;
  double lr = 0, ll = 0, rr = 0, worst = 0;
  for (int e = 0; e < CHANNELS; e++) {
    double m = r[mirror_channel(lf, e)];
    lr += l[e] * m, ll += l[e] * l[e], rr += m * m;
    worst = fmax(worst, fabs(l[e] - m));
  }
  *correlation = ll * rr > 0 ? lr / sqrt(ll * rr) : 0;
  *deviation = worst / fmax(fabs(l[largest_abs(l, CHANNELS)]), fabs(r[largest_abs(r, CHANNELS)]));
}

/* A left region is "l" + name with a region "r" + name. */
static int right_partner(const LeadField *lf, int left) {
  const char *label = lf->conn->labels[left];
  if (label[0] != 'l')
    return -1;
  for (int i = 0; i < lf->conn->n; i++)
    if (lf->conn->labels[i][0] == 'r' && strcmp(lf->conn->labels[i] + 1, label + 1) == 0)
      return i;
  return -1;
}

/* Each pair must sit left/right of the midline and give mirrored patterns.
 * TVB's centres are not mirror images (lV1 and rV1 lie 10 mm apart along
 * the anterior axis), so single gains of a pair differ by up to ~40 % of its
 * peak; the test is the patterns' correlation, at least 1 - tolerance. */
static int check_mirrored(const LeadField *lf) {
  int pairs = 0, worst = -1;
  double lowest = 1, deviation = 0;
  for (int i = 0; i < lf->conn->n; i++) {
    int r = right_partner(lf, i);
    if (r < 0)
      continue;
    pairs++;
    if (!(lf->dipole[i * 3] < 0 && lf->dipole[r * 3] > 0))
      return fail("check failed: %s is not left of %s (x %g and %g m)", lf->conn->labels[i],
                  lf->conn->labels[r], lf->dipole[i * 3], lf->dipole[r * 3]);
    double correlation, d;
    compare_mirrored(lf, i, r, &correlation, &d);
    deviation = fmax(deviation, d);
    if (worst < 0 || correlation < lowest)
      lowest = correlation, worst = i;
  }
  if (pairs == 0)
    return fail("check failed: found no left/right region pairs (labels lNAME and rNAME)");
  const char *label = lf->conn->labels[worst];
  if (!(lowest >= 1 - MIRROR_TOLERANCE))
    return fail("check failed: %s and r%s give mirrored gains correlated only %.3f "
                "(expected at least %.2f)", label, label + 1, lowest, 1 - MIRROR_TOLERANCE);
  printf("ok: %d left/right pairs sit left/right; their mirrored gains correlate >= %.3f "
         "(worst %s/r%s; single gains differ by up to %.0f %% of a pair's peak)\n",
         pairs, lowest, label, label + 1, 100 * deviation);
  return 0;
}

static void print_summary(const LeadField *lf) {
  int cells = lf->conn->n * CHANNELS;
  double low = 0, high = 0;
  for (int i = 0; i < cells; i++)
    low = fmin(low, lf->gain[i]), high = fmax(high, lf->gain[i]);
  printf("%d regions x %d channels; gains %.3f .. %.3f (the largest was %.4g V/(A m))\n",
         lf->conn->n, CHANNELS, low, high, lf->raw_peak);
}

static int run_checks(const LeadField *lf) {
  print_summary(lf);
  int failed = 0;
  failed |= check_rows_sum_to_zero(lf);
  failed |= check_closed_form(lf);
  failed |= check_landmarks(lf);
  failed |= check_mirrored(lf);
  return failed;
}

int main(int argc, char **argv) {
  int check = argc == 3 && strcmp(argv[1], "--check") == 0;
  if (argc != 3 || (!check && argv[1][0] == '-')) {
    fprintf(stderr, "usage: make_leadfield CONNECTOME.zip OUT.csv\n"
                    "       make_leadfield --check CONNECTOME.zip\n");
    return 2;
  }
  DataConnectome conn;
  char err[1024];
  if (data_read_connectome(check ? argv[2] : argv[1], &conn, err, sizeof err) != 0) {
    fail("%s", err);
    return 1;
  }
  LeadField lf;
  int rc = build(&conn, &lf);
  if (rc == 0)
    rc = check ? run_checks(&lf) : write_csv(&lf, argv[2]);
  release(&lf);
  data_connectome_free(&conn);
  return rc == 0 ? 0 : 1;
}
