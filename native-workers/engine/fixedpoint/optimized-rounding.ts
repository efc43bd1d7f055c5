/**
 * Optimized rounding of weights (spec/method.md §7; GPTQ / Optimal Brain Quantization,
 * Frantar et al. 2022): the weights of one Conv/Gemm/MatMul are quantized one input column at
 * a time, and each column's rounding error is compensated on the columns not yet quantized
 * through the upper Cholesky factor of the inverse of the damped input Hessian H = X X^T.
 * The result is still one integer per weight in the structure's own format (b, f): the integer
 * semantics, the executor and every export are unchanged; only which integer each weight gets.
 *
 * Target: by default plain GPTQ, the layer's float weights on the fixed-point input, W X_q. The
 * option `floatTarget` aims at the float layer's output W X_fp instead: with C = X_fp X_q^T the
 * ridge-regularised least-squares weights are W' = (W C + lambda W)(H + lambda I)^-1, and
 * ||W X_fp - Q X_q||^2 + lambda ||Q - W||^2 = const + ||(W' - Q)||^2 under the damped H, so GPTQ on
 * W' minimises the error against the float output (errors of earlier layers compensated too).
 *
 * Conv is seen through im2col (a column per output position, Cin/group * kh * kw long; a
 * bounded, seeded sample of positions per image); every group has its own H. Inputs longer
 * than `maxBlock` are split into blocks with a block-diagonal H (memory K^2 per block).
 * Pure math: the caller feeds the input tensors (services/optimized-rounding.ts).
 */
import { attrInt, type Node } from '../ir/graph.js';
import { resolveWindow, windowOutputSize } from '../ops/spatial.js';
import { formatRange, type Format } from './format.js';

/** How a layer's weights form matrices rows x K, and how its input becomes columns. */
export interface LayerGeometry {
  kind: 'conv' | 'linear';
  groups: number;
  /** Output channels (rows) per group. */
  rowsPerGroup: number;
  /** Input length K per group (Cin/group * kh * kw, or the Gemm/MatMul input width). */
  k: number;
  /** Weight element of (group, row, column) in the initializer's layout. */
  weightIndex(group: number, row: number, col: number): number;
  /** Conv geometry (kind 'conv'). */
  conv?: {
    cin: number;
    h: number;
    w: number;
    kh: number;
    kw: number;
    strides: number[];
    pads: number[];
    dilations: number[];
    oh: number;
    ow: number;
  };
}

export interface RoundingOptions {
  /** Relative damping of H: lambda = damp * mean(diag H). */
  damp: number;
  /** Quantize columns by descending diag H (GPTQ's act-order). */
  actOrder: boolean;
  /** Largest H block (K above it: block-diagonal H). */
  maxBlock: number;
  /** Conv: at most this many im2col columns per image (a seeded sample of output positions). */
  positionsPerImage: number;
  /** Aim at the float layer's output W X_fp (true, a ridge towards W) or at W X_q (plain GPTQ, the default). */
  floatTarget: boolean;
}

export const DEFAULT_ROUNDING: RoundingOptions = {
  damp: 0.01,
  actOrder: true,
  maxBlock: 4096,
  positionsPerImage: 64,
  // Plain GPTQ by default: in the search the float target fits the calibration images and its
  // compensation of earlier layers goes stale as they change (BENCHMARKS.md, optimized rounding).
  floatTarget: false,
};

/** The geometry of a weighted layer, or undefined where optimized rounding does not apply. */
export function layerGeometry(node: Node, wDims: number[], inputShape: number[]): LayerGeometry | undefined {
  if (node.op === 'Conv') {
    if (wDims.length !== 4 || inputShape.length !== 4) return undefined;
    const groups = attrInt(node, 'group', 1);
    const [cout, cpg, kh, kw] = wDims as [number, number, number, number];
    const [, cin, h, w] = inputShape as [number, number, number, number];
    // The ONNX window rules (auto_pad included), as the Conv module reads them.
    const window = resolveWindow(node, inputShape, [kh, kw]);
    const [oh, ow] = windowOutputSize(inputShape, window) as [number, number];
    const { strides, dilations } = window;
    const pads = [window.pads[0]!, window.pads[1]!, window.pads[2]!, window.pads[3]!];
    const rowsPerGroup = cout / groups;
    const k = cpg * kh * kw;
    return {
      kind: 'conv',
      groups,
      rowsPerGroup,
      k,
      weightIndex: (g, r, c) => (g * rowsPerGroup + r) * k + c,
      conv: { cin, h, w, kh, kw, strides, pads, dilations, oh, ow },
    };
  }
  if (node.op === 'Gemm' || node.op === 'MatMul') {
    if (wDims.length !== 2) return undefined;
    if (node.op === 'Gemm' && attrInt(node, 'transA', 0) !== 0) return undefined;
    const transB = node.op === 'Gemm' && attrInt(node, 'transB', 0) === 1;
    const [d0, d1] = wDims as [number, number];
    const rows = transB ? d0 : d1;
    const k = transB ? d1 : d0;
    return {
      kind: 'linear',
      groups: 1,
      rowsPerGroup: rows,
      k,
      weightIndex: transB ? (_g, r, c) => r * k + c : (_g, r, c) => c * rows + r,
    };
  }
  return undefined;
}

/** Columns per tile of the accumulation (rows of a tile stay in cache). */
const TILE = 256;

/** Column blocks [start, end) of one group's input. */
function blocksOf(k: number, maxBlock: number): [number, number][] {
  const n = Math.ceil(k / maxBlock);
  const size = Math.ceil(k / n);
  const out: [number, number][] = [];
  for (let s = 0; s < k; s += size) out.push([s, Math.min(k, s + size)]);
  return out;
}

/** xorshift32: a seeded sample of conv positions, the same on every run. */
function sampler(seed: number): () => number {
  let s = (seed ^ 0x9e3779b9) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/**
 * Accumulates H = X_q X_q^T (and C = X_fp X_q^T for the float target) per (group, block) from
 * batches of the layer's input tensors, fixed-point and float (same images, same layout).
 */
export class HessianAccumulator {
  /** Per group, per block: H (and C) as dense n x n row-major float64. */
  readonly h: Float64Array[][];
  readonly c: Float64Array[][] | undefined;
  readonly blocks: [number, number][];
  columns = 0;
  private images = 0;
  /** Per (group, block): the factorization for the weights last rounded (optimizedWeights). */
  prepared?: PreparedMatrix[];

  constructor(
    readonly geometry: LayerGeometry,
    readonly options: RoundingOptions = DEFAULT_ROUNDING,
  ) {
    this.blocks = blocksOf(geometry.k, options.maxBlock);
    const alloc = (): Float64Array[][] =>
      Array.from({ length: geometry.groups }, () => this.blocks.map(([s, e]) => new Float64Array((e - s) * (e - s))));
    this.h = alloc();
    this.c = options.floatTarget ? alloc() : undefined;
  }

  /** Add `count` images: `xq` the fixed-point input (dequantized), `xf` the float one. */
  add(xq: Float32Array, xf: Float32Array | undefined, count: number): void {
    const g = this.geometry;
    const useC = this.c !== undefined && xf !== undefined;
    for (let group = 0; group < g.groups; group++) {
      // Columns of this batch as rows of length m (feature-major): X[i * m + t].
      const { q, f, m } = this.columnsOf(xq, useC ? xf : undefined, count, group);
      for (let b = 0; b < this.blocks.length; b++) {
        const [s, e] = this.blocks[b]!;
        const n = e - s;
        const h = this.h[group]![b]!;
        const c = useC && f ? this.c![group]![b]! : undefined;
        // Tiles of TILE columns, so that the rows of a tile stay in cache while every pair meets.
        for (let t0 = 0; t0 < m; t0 += TILE) {
          const t1 = Math.min(m, t0 + TILE);
          for (let i = 0; i < n; i++) {
            const oi = (s + i) * m;
            let j = 0;
            for (; j + 1 <= i; j += 2) {
              const oj = (s + j) * m;
              const ok = oj + m;
              let a0 = 0;
              let a1 = 0;
              for (let t = t0; t < t1; t++) {
                const v = q[oi + t]!;
                a0 += v * q[oj + t]!;
                a1 += v * q[ok + t]!;
              }
              h[i * n + j]! += a0;
              h[i * n + j + 1]! += a1;
            }
            for (; j <= i; j++) {
              const oj = (s + j) * m;
              let a0 = 0;
              for (let t = t0; t < t1; t++) a0 += q[oi + t]! * q[oj + t]!;
              h[i * n + j]! += a0;
            }
            if (c) {
              for (j = 0; j + 1 < n; j += 2) {
                const oj = (s + j) * m;
                const ok = oj + m;
                let a0 = 0;
                let a1 = 0;
                for (let t = t0; t < t1; t++) {
                  const v = f![oi + t]!;
                  a0 += v * q[oj + t]!;
                  a1 += v * q[ok + t]!;
                }
                c[i * n + j]! += a0;
                c[i * n + j + 1]! += a1;
              }
              for (; j < n; j++) {
                const oj = (s + j) * m;
                let a0 = 0;
                for (let t = t0; t < t1; t++) a0 += f![oi + t]! * q[oj + t]!;
                c[i * n + j]! += a0;
              }
            }
          }
        }
      }
      if (group === 0) this.columns += m;
    }
    this.images += count;
  }

  /**
   * Like `add`, with the Gram products A B^T (n x n from two n x m row-major blocks) computed by
   * `gram` (onnxruntime's Gemm in runtime/gram-runner.ts): the same sums, in float32.
   */
  async addWith(xq: Float32Array, xf: Float32Array | undefined, count: number, gemm: Gemm): Promise<void> {
    const useC = this.c !== undefined && xf !== undefined;
    for (let group = 0; group < this.geometry.groups; group++) {
      const { q, f, m } = this.columnsOf(xq, useC ? xf : undefined, count, group);
      for (let b = 0; b < this.blocks.length; b++) {
        const [s, e] = this.blocks[b]!;
        const n = e - s;
        const qb = q.subarray(s * m, e * m);
        const hg = await gemm(qb, qb, n, n, m);
        const h = this.h[group]![b]!;
        for (let i = 0; i < n * n; i++) h[i]! += hg[i]!;
        if (useC && f) {
          const cg = await gemm(f.subarray(s * m, e * m), qb, n, n, m);
          const c = this.c![group]![b]!;
          for (let i = 0; i < n * n; i++) c[i]! += cg[i]!;
        }
      }
      if (group === 0) this.columns += m;
    }
    this.images += count;
  }

  private columnsOf(
    xq: Float32Array,
    xf: Float32Array | undefined,
    count: number,
    group: number,
  ): { q: Float32Array; f: Float32Array | undefined; m: number } {
    const g = this.geometry;
    const k = g.k;
    if (g.kind === 'linear') {
      // x: count x K (any trailing layout flattened): the columns are the images.
      const q = new Float32Array(k * count);
      const f = xf ? new Float32Array(k * count) : undefined;
      for (let t = 0; t < count; t++)
        for (let i = 0; i < k; i++) {
          q[i * count + t] = xq[t * k + i]!;
          if (f) f[i * count + t] = xf![t * k + i]!;
        }
      return { q, f, m: count };
    }
    const cv = g.conv!;
    const cpg = cv.cin / g.groups;
    const positions = cv.oh * cv.ow;
    const per = Math.min(positions, this.options.positionsPerImage);
    const m = per * count;
    const q = new Float32Array(k * m);
    const f = xf ? new Float32Array(k * m) : undefined;
    const plane = cv.h * cv.w;
    let t = 0;
    for (let img = 0; img < count; img++) {
      const chosen = choosePositions(positions, per, this.images + img);
      const base = img * cv.cin * plane;
      for (const p of chosen) {
        const oy = Math.floor(p / cv.ow);
        const ox = p % cv.ow;
        let i = 0;
        for (let ci = 0; ci < cpg; ci++) {
          const chan = base + (group * cpg + ci) * plane;
          for (let ky = 0; ky < cv.kh; ky++) {
            const y = oy * cv.strides[0]! - cv.pads[0]! + ky * cv.dilations[0]!;
            for (let kx = 0; kx < cv.kw; kx++, i++) {
              const x = ox * cv.strides[1]! - cv.pads[1]! + kx * cv.dilations[1]!;
              if (y < 0 || y >= cv.h || x < 0 || x >= cv.w) continue;
              q[i * m + t] = xq[chan + y * cv.w + x]!;
              if (f) f[i * m + t] = xf![chan + y * cv.w + x]!;
            }
          }
        }
        t++;
      }
    }
    return { q, f, m };
  }
}

/** `per` distinct positions out of `n`, seeded by the image's index (all of them when per = n). */
function choosePositions(n: number, per: number, seed: number): number[] {
  if (per >= n) return Array.from({ length: n }, (_, i) => i);
  const rand = sampler(seed + 1);
  const picked = new Set<number>();
  while (picked.size < per) picked.add(Math.floor(rand() * n));
  return [...picked].sort((a, b) => a - b);
}

/**
 * The upper factor U of A^-1 = U^T U for a symmetric positive definite A (n x n), via the
 * Cholesky factor of A with rows and columns reversed: if J A J = L L^T then U = J L^-1 J.
 * Returns undefined when A is not positive definite.
 */
export function inverseCholeskyUpper(a: Float64Array, n: number): Float64Array | undefined {
  const l = new Float64Array(n * n);
  const r = (i: number, j: number): number => a[(n - 1 - i) * n + (n - 1 - j)]!;
  for (let j = 0; j < n; j++) {
    let d = r(j, j);
    for (let p = 0; p < j; p++) d -= l[j * n + p]! * l[j * n + p]!;
    if (!(d > 0)) return undefined;
    const ljj = Math.sqrt(d);
    l[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = r(i, j);
      const oi = i * n;
      const oj = j * n;
      for (let p = 0; p < j; p++) s -= l[oi + p]! * l[oj + p]!;
      l[oi + j] = s / ljj;
    }
  }
  // L^-1 (lower) by forward substitution, stored transposed (invT[j][p] = L^-1[p][j]) so that
  // every inner loop reads memory in order.
  const invT = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const oi = i * n;
    const lii = l[oi + i]!;
    invT[oi + i] = 1 / lii;
    for (let j = 0; j < i; j++) {
      const oj = j * n;
      let s = 0;
      for (let p = j; p < i; p++) s += l[oi + p]! * invT[oj + p]!;
      invT[oj + i] = -s / lii;
    }
  }
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) u[i * n + j] = invT[(n - 1 - j) * n + (n - 1 - i)]!;
  return u;
}

/**
 * GPTQ on one weight matrix `w` (rows x n, row-major, float) with Hessian `h` (n x n, only the
 * lower triangle needs to be filled) and, for the float target, C = X_fp X_q^T. Returns the
 * integers (rows x n) in format `f`.
 */
/** A B^T for row-major A (ra x k) and B (rb x k): ra x rb, row-major (onnxruntime's Gemm, say). */
export type Gemm = (a: Float32Array, b: Float32Array, ra: number, rb: number, k: number) => Promise<Float32Array>;

/** A B^T in plain TypeScript (float64 sums). */
export const jsGemm: Gemm = (a, b, ra, rb, k) => {
  const out = new Float32Array(ra * rb);
  for (let i = 0; i < ra; i++)
    for (let j = 0; j < rb; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p]! * b[j * k + p]!;
      out[i * rb + j] = s;
    }
  return Promise.resolve(out);
};

const transposed = (x: Float64Array, n: number): Float32Array => {
  const t = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) t[j * n + i] = x[i * n + j]!;
  return t;
};

/**
 * What GPTQ needs of one weight matrix whatever the format: the column order, the upper factor U
 * of the damped H^-1 and the target weights (W, or W' = W C H^-1 for the float target), permuted.
 * U undefined: H could not be factored at any damping (rounding to nearest then).
 */
export interface PreparedMatrix {
  rows: number;
  n: number;
  perm: number[];
  u: Float64Array | undefined;
  wp: Float64Array;
}

export async function prepareMatrix(
  w: Float64Array,
  rows: number,
  n: number,
  hIn: Float64Array,
  options: RoundingOptions = DEFAULT_ROUNDING,
  cIn?: Float64Array,
  gemm?: Gemm,
): Promise<PreparedMatrix> {
  const h = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) h[i * n + j] = h[j * n + i] = hIn[i * n + j] !== 0 ? hIn[i * n + j]! : hIn[j * n + i]!;
  // Dead inputs (zero on every calibration column): any rounding gives the same output there.
  const dead: boolean[] = [];
  let mean = 0;
  for (let i = 0; i < n; i++) {
    dead.push(h[i * n + i]! === 0);
    mean += h[i * n + i]!;
  }
  mean /= n;
  const perm = Array.from({ length: n }, (_, i) => i);
  if (options.actOrder) perm.sort((a, b) => h[b * n + b]! - h[a * n + a]! || a - b);
  let u: Float64Array | undefined;
  let lambda = 0;
  for (let damp = options.damp; !u && damp < 1e4; damp *= 10) {
    lambda = damp * (mean > 0 ? mean : 1);
    const hp = new Float64Array(n * n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++)
        hp[i * n + j] = h[perm[i]! * n + perm[j]!]! + (i === j ? (dead[perm[i]!] ? 1 : lambda) : 0);
    u = inverseCholeskyUpper(hp, n);
  }
  // Permuted working copy of W (and W' = W C H^-1 = ((W C) U^T) U for the float target).
  let wp = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) for (let i = 0; i < n; i++) wp[r * n + i] = w[r * n + perm[i]!]!;
  if (!u) return { rows, n, perm, u, wp: w };
  if (cIn) {
    const cp = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) cp[i * n + j] = cIn[perm[i]! * n + perm[j]!]!;
    // Ridge towards W: W' = (W C + lambda W)(H + lambda I)^-1 minimises ||W X_fp - W' X_q||^2 + lambda ||W' - W||^2
    // (the same damped H GPTQ uses), so that W' = W when the input is exact, and a layer with fewer
    // calibration columns than inputs is not fitted to the calibration images alone.
    for (let i = 0; i < n; i++) cp[i * n + i]! += dead[perm[i]!] ? 1 : lambda;
    if (gemm) {
      // W C = W (C^T)^T; (W C) U^T; then (.) U = (.) (U^T)^T.
      const wc = await gemm(Float32Array.from(wp), transposed(cp, n), rows, n, n);
      const t = await gemm(wc, Float32Array.from(u), rows, n, n);
      wp = Float64Array.from(await gemm(t, transposed(u, n), rows, n, n));
    } else {
      const wc = new Float64Array(rows * n);
      for (let r = 0; r < rows; r++)
        for (let i = 0; i < n; i++) {
          const wi = wp[r * n + i]!;
          if (wi === 0) continue;
          for (let j = 0; j < n; j++) wc[r * n + j]! += wi * cp[i * n + j]!;
        }
      // (W C) U^T: t[r, i] = sum_{j >= i} wc[r, j] u[i, j]; then W' = t U: w'[r, j] = sum_{i <= j} t[r, i] u[i, j].
      const t = new Float64Array(rows * n);
      for (let r = 0; r < rows; r++)
        for (let i = 0; i < n; i++) {
          let sum = 0;
          for (let j = i; j < n; j++) sum += wc[r * n + j]! * u[i * n + j]!;
          t[r * n + i] = sum;
        }
      const w2 = new Float64Array(rows * n);
      for (let r = 0; r < rows; r++)
        for (let i = 0; i < n; i++) {
          const ti = t[r * n + i]!;
          if (ti === 0) continue;
          for (let j = i; j < n; j++) w2[r * n + j]! += ti * u[i * n + j]!;
        }
      wp = w2;
    }
  }
  // Dead inputs keep their own weights, rounded to nearest (no feedback reaches them or leaves them:
  // their rows and columns of H are the identity's), in case held-out images do feed them.
  for (let i = 0; i < n; i++) if (dead[perm[i]!]) for (let r = 0; r < rows; r++) wp[r * n + i] = w[r * n + perm[i]!]!;
  return { rows, n, perm, u, wp };
}

/** GPTQ's column-by-column rounding in format `f`, with error feedback through U; integers rows x n. */
export function quantizePrepared(p: PreparedMatrix, f: Format): Int32Array {
  const { rows, n, perm, u } = p;
  const scale = 2 ** f.frac;
  const { lo, hi } = formatRange(f);
  const out = new Int32Array(rows * n);
  if (!u) {
    for (let i = 0; i < rows * n; i++) out[i] = Math.min(hi, Math.max(lo, Math.floor(p.wp[i]! * scale + 0.5)));
    return out;
  }
  const wp = Float64Array.from(p.wp);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    for (let i = 0; i < n; i++) {
      const x = wp[o + i]!;
      let m = Math.floor(x * scale + 0.5);
      m = m < lo ? lo : m > hi ? hi : m;
      out[o + perm[i]!] = m;
      const e = (x - m / scale) / u[i * n + i]!;
      if (e === 0) continue;
      const ui = i * n;
      for (let j = i + 1; j < n; j++) wp[o + j]! -= e * u[ui + j]!;
    }
  }
  return out;
}

/** GPTQ on one weight matrix (prepareMatrix, then quantizePrepared). */
export async function gptqMatrix(
  w: Float64Array,
  rows: number,
  n: number,
  hIn: Float64Array,
  f: Format,
  options: RoundingOptions = DEFAULT_ROUNDING,
  cIn?: Float64Array,
  gemm?: Gemm,
): Promise<Int32Array> {
  return quantizePrepared(await prepareMatrix(w, rows, n, hIn, options, cIn, gemm), f);
}

/**
 * The layer's weights quantized in format `f` by GPTQ, in the initializer's layout. The
 * factorization of H (and W' of the float target) is kept on the accumulator: another format of
 * the same weights under the same H costs only the rounding pass.
 */
export async function optimizedWeights(
  acc: HessianAccumulator,
  weights: ArrayLike<number>,
  f: Format,
  options: RoundingOptions = acc.options,
  gemm?: Gemm,
): Promise<Int32Array> {
  const g = acc.geometry;
  const out = new Int32Array(weights.length);
  acc.prepared ??= [];
  for (let group = 0; group < g.groups; group++) {
    for (let b = 0; b < acc.blocks.length; b++) {
      const [s, e] = acc.blocks[b]!;
      const n = e - s;
      const slot = group * acc.blocks.length + b;
      let p = acc.prepared[slot];
      if (!p) {
        const w = new Float64Array(g.rowsPerGroup * n);
        for (let r = 0; r < g.rowsPerGroup; r++)
          for (let i = 0; i < n; i++) w[r * n + i] = weights[g.weightIndex(group, r, s + i)]!;
        p = await prepareMatrix(w, g.rowsPerGroup, n, acc.h[group]![b]!, options, acc.c?.[group]?.[b], gemm);
        acc.prepared[slot] = p;
      }
      const q = quantizePrepared(p, f);
      for (let r = 0; r < g.rowsPerGroup; r++)
        for (let i = 0; i < n; i++) out[g.weightIndex(group, r, s + i)] = q[r * n + i]!;
    }
  }
  return out;
}

/** Weights already quantized by optimized rounding, per structure and format (the run's record). */
export class RoundedWeights {
  private readonly entries = new Map<string, Int32Array>();

  static key(id: string, f: Format): string {
    return `${id}|${f.bits},${f.frac},${f.signed ? 's' : 'u'}`;
  }

  get(id: string, f: Format): Int32Array | undefined {
    return this.entries.get(RoundedWeights.key(id, f));
  }

  has(id: string, f: Format): boolean {
    return this.entries.has(RoundedWeights.key(id, f));
  }

  set(id: string, f: Format, values: Int32Array): void {
    this.entries.set(RoundedWeights.key(id, f), values);
  }

  get size(): number {
    return this.entries.size;
  }
}
