/**
 * The fractional length for a proposed word length (spec §5 step 2): among f0..f0+3, the one
 * with the smallest quantization error on that tensor. Clipping a few outliers often buys a
 * finer step for everything else. Weights: exact error over their values; activations: from
 * the |x| histogram of the statistics pass.
 */
import { clamp, formatRange, initialFrac, quantizationError, type Format } from '../fixedpoint/format.js';

export interface Histogram {
  histMax: number;
  histogram: Float64Array;
}

/** Squared error of quantizing a |x| histogram (bin centres, clipping at the top of the range). */
export function histogramError(h: Histogram, f: Format): number {
  const bins = h.histogram.length;
  const width = h.histMax / bins;
  const scale = 2 ** f.frac;
  const { hi } = formatRange(f);
  let e = 0;
  for (let i = 0; i < bins; i++) {
    const count = h.histogram[i]!;
    if (count === 0) continue;
    const x = (i + 0.5) * width;
    const q = clamp(Math.floor(x * scale + 0.5), 0, hi) / scale;
    e += count * (x - q) * (x - q);
  }
  return e;
}

export function chooseFrac(
  bits: number,
  signed: boolean,
  maxAbs: number,
  error: (f: Format) => number,
  extra = 3,
): Format {
  const f0 = initialFrac(bits, signed, maxAbs);
  let best: Format = { bits, frac: f0, signed };
  let bestError = error(best);
  for (let d = 1; d <= extra; d++) {
    const candidate = { bits, frac: f0 + d, signed };
    const e = error(candidate);
    if (e < bestError) {
      best = candidate;
      bestError = e;
    }
  }
  return best;
}

export function weightError(values: Float32Array): (f: Format) => number {
  return (f) => quantizationError(values, f);
}
