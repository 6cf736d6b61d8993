/*
 * rng.c — a counter-based generator: SplitMix64's finaliser applied to a
 * stream key plus a counter. The key hashes (seed, purpose, a, b), so the
 * draws of step k are a pure function of k and the seed: resuming from a
 * checkpoint replays exactly what an uninterrupted run would have drawn.
 */
#include <math.h>

#include "rt.h"

static const uint64_t golden = 0x9e3779b97f4a7c15u;

static uint64_t finalise(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

uint64_t rt_rng_stream(uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b) {
  uint64_t h = finalise(seed + golden);
  h = finalise(h ^ (purpose + golden));
  h = finalise(h ^ (a + 2 * golden));
  return finalise(h ^ (b + 3 * golden));
}

uint64_t rt_rng_u64(uint64_t stream, uint64_t i) {
  return finalise(stream + (i + 1) * golden);
}

double rt_rng_uniform(uint64_t stream, uint64_t i) {
  return (double)(rt_rng_u64(stream, i) >> 11) * 0x1p-53;
}

/* Box-Muller on draws 2i and 2i+1; 1 - u keeps the logarithm finite. */
double rt_rng_normal(uint64_t stream, uint64_t i) {
  double u1 = 1.0 - rt_rng_uniform(stream, 2 * i);
  double u2 = rt_rng_uniform(stream, 2 * i + 1);
  return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* The modulo bias is below n / 2^64: invisible for any table we can hold. */
uint64_t rt_rng_below(uint64_t stream, uint64_t i, uint64_t n) {
  return rt_rng_u64(stream, i) % n;
}
