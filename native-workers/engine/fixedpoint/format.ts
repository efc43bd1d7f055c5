/**
 * Dynamic fixed point (spec/method.md §1): an integer m stands for m * 2^-f, with a word
 * length b and a sign. Rounding is round half up everywhere, so the fake-quant graph, the
 * integer executor and the generated C agree bit for bit. Integers are JS numbers: exact
 * below 2^53, which bounds every accumulator FxPQ accepts.
 */

export interface Format {
  bits: number;
  frac: number;
  signed: boolean;
}

/** P of spec §2: AveragePool multiplies by R = round(2^P / n) (option: exact division). */
export const POOL_RECIPROCAL_BITS = 16;

/** R = round(2^P / n): the fixed-point reciprocal of a pooling window of n values. */
export function poolReciprocal(n: number): number {
  return Math.round(2 ** POOL_RECIPROCAL_BITS / n);
}

export const MIN_BITS = 2;
export const MAX_BITS = 32;

export function formatRange(f: Pick<Format, 'bits' | 'signed'>): { lo: number; hi: number } {
  return f.signed ? { lo: -(2 ** (f.bits - 1)), hi: 2 ** (f.bits - 1) - 1 } : { lo: 0, hi: 2 ** f.bits - 1 };
}

/** f0 = b - sigma - ceil(log2(max|x|)): the largest value fits without clipping (sigma = 1 if signed). */
export function initialFrac(bits: number, signed: boolean, maxAbs: number): number {
  const sigma = signed ? 1 : 0;
  if (!(maxAbs > 0)) return bits - sigma;
  return bits - sigma - Math.ceil(Math.log2(maxAbs));
}

/** floor(v + 0.5): round half up, exact for the float64 values we feed it. */
export function roundHalfUp(v: number): number {
  return Math.floor(v + 0.5);
}

export function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** rshift_round(v, r) = (v + 2^(r-1)) >> r for r > 0, v << -r for r <= 0 (arithmetic). */
export function rshiftRound(v: number, r: number): number {
  if (r <= 0) return v * 2 ** -r;
  return Math.floor((v + 2 ** (r - 1)) / 2 ** r);
}

/** Q_{b,f}(x) as an integer: clamp(floor(x * 2^f + 0.5), lo, hi). */
export function quantizeValue(x: number, f: Format): number {
  const { lo, hi } = formatRange(f);
  return clamp(roundHalfUp(x * 2 ** f.frac), lo, hi);
}

export function quantizeArray(x: ArrayLike<number>, f: Format, out = new Int32Array(x.length)): Int32Array {
  const scale = 2 ** f.frac;
  const { lo, hi } = formatRange(f);
  for (let i = 0; i < x.length; i++) {
    const m = Math.floor(x[i]! * scale + 0.5);
    out[i] = m < lo ? lo : m > hi ? hi : m;
  }
  return out;
}

/** m * 2^-f as float32 (exact while |m| < 2^24). */
export function dequantizeArray(m: ArrayLike<number>, frac: number, out = new Float32Array(m.length)): Float32Array {
  const s = 2 ** -frac;
  for (let i = 0; i < m.length; i++) out[i] = m[i]! * s;
  return out;
}

/** Sum of squared errors of quantizing `x` with `f` (picks the best fractional length). */
export function quantizationError(x: ArrayLike<number>, f: Format): number {
  const scale = 2 ** f.frac;
  const inv = 2 ** -f.frac;
  const { lo, hi } = formatRange(f);
  let e = 0;
  for (let i = 0; i < x.length; i++) {
    const m = clamp(Math.floor(x[i]! * scale + 0.5), lo, hi);
    const d = x[i]! - m * inv;
    e += d * d;
  }
  return e;
}
