/** The C helper functions every generated model.c starts with (integer-only, C99). */

export const PRELUDE = `#include <stdint.h>
#include "model.h"

/* rshift_round(v, r): (v + 2^(r-1)) >> r for r > 0, v * 2^-r for r <= 0, as a floor division
   so that negative values round half up without relying on implementation-defined shifts. */
static int64_t fxpq_rsr(int64_t v, int r) {
  int64_t t;
  if (r <= 0) return v * ((int64_t)1 << -r);
  t = v + ((int64_t)1 << (r - 1));
  return t >= 0 ? (t >> r) : -((-t + ((int64_t)1 << r) - 1) >> r);
}

static int32_t fxpq_clamp(int64_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : (v > hi ? hi : (int32_t)v);
}

`;

/** Random access into a packed stream (biases; weights wider than 16 bits). */
export const UNPACK = `/* Value i of a stream packed at \`bits\` bits per value, little-endian bit order: the bytes that
   hold it (at most 5) are gathered once and shifted, with no loop over its bits. */
static int32_t fxpq_unpack(const uint8_t *p, uint32_t i, int bits, int is_signed) {
  const uint32_t bit = i * (uint32_t)bits;
  const uint8_t *q = p + (bit >> 3);
  const int shift = (int)(bit & 7u);
  const int nbytes = (shift + bits + 7) >> 3;
  uint64_t w = 0;
  uint32_t v;
  int k;
  for (k = 0; k < nbytes; k++) w |= (uint64_t)q[k] << (8 * k);
  v = (uint32_t)((w >> shift) & (((uint64_t)1 << bits) - 1u));
  if (is_signed && bits < 32 && (v >> (bits - 1)) & 1u) return (int32_t)((int64_t)v - ((int64_t)1 << bits));
  return (int32_t)v;
}
`;

/**
 * Sequential unpacking of a run of weights (at most 16 bits each) into a scratch row: each byte
 * is read once into a bit buffer, so a whole output channel costs a few operations per weight and
 * the multiply-accumulate loops then read plain int16_t values.
 */
export const UNPACK_RUN = `/* Values first..first+n-1 of a stream packed at \`bits\` (1..16) bits per value into dst. */
static void fxpq_unpack_run(const uint8_t *p, uint32_t first, uint32_t n, int bits, int is_signed, int16_t *dst) {
  const uint32_t bit = first * (uint32_t)bits;
  const uint8_t *q = p + (bit >> 3) + 1;
  const uint32_t mask = (1u << bits) - 1u;
  uint32_t buf = (uint32_t)p[bit >> 3] >> (bit & 7u), i;
  int have = 8 - (int)(bit & 7u);
  for (i = 0; i < n; i++) {
    uint32_t v;
    while (have < bits) {
      buf |= (uint32_t)*q++ << have;
      have += 8;
    }
    v = buf & mask;
    buf >>= bits;
    have -= bits;
    dst[i] = (int16_t)(is_signed && (v >> (bits - 1)) ? (int32_t)v - (int32_t)(1u << bits) : (int32_t)v);
  }
}
`;
