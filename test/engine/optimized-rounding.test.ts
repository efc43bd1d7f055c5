import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ROUNDING,
  HessianAccumulator,
  gptqMatrix,
  inverseCholeskyUpper,
  layerGeometry,
  optimizedWeights,
  jsGemm,
} from '../../native-workers/engine/fixedpoint/optimized-rounding.js';
import { quantizeArray, type Format } from '../../native-workers/engine/fixedpoint/format.js';
import type { Node } from '../../native-workers/engine/ir/graph.js';

function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
}
const gauss = (r: () => number): number => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());

/** ||W X_f - Q 2^-f X_q||^2 with X as K x N (row-major). */
function outputError(
  w: ArrayLike<number>,
  q: ArrayLike<number>,
  frac: number,
  xf: Float64Array,
  xq: Float64Array,
  rows: number,
  k: number,
  n: number,
): number {
  let e = 0;
  for (let r = 0; r < rows; r++)
    for (let t = 0; t < n; t++) {
      let a = 0;
      let b = 0;
      for (let i = 0; i < k; i++) {
        a += w[r * k + i]! * xf[i * n + t]!;
        b += q[r * k + i]! * 2 ** -frac * xq[i * n + t]!;
      }
      e += (a - b) ** 2;
    }
  return e;
}

/** Correlated inputs: X = M Z with a random mixing matrix (K x K) and Z ~ N(0, 1). */
function inputs(k: number, n: number, seed: number): Float64Array {
  const r = rng(seed);
  const m = Float64Array.from({ length: k * k }, () => gauss(r));
  const z = Float64Array.from({ length: k * n }, () => gauss(r));
  const x = new Float64Array(k * n);
  for (let i = 0; i < k; i++)
    for (let j = 0; j < k; j++)
      for (let t = 0; t < n; t++) x[i * n + t]! += m[i * k + j]! * z[j * n + t]! * (j < 4 ? 1 : 0.1);
  return x;
}

function gram(a: Float64Array, b: Float64Array, k: number, n: number): Float64Array {
  const g = new Float64Array(k * k);
  for (let i = 0; i < k; i++)
    for (let j = 0; j < k; j++) for (let t = 0; t < n; t++) g[i * k + j]! += a[i * n + t]! * b[j * n + t]!;
  return g;
}

describe('optimized rounding (GPTQ)', () => {
  it('inverseCholeskyUpper gives U with U^T U = A^-1', () => {
    const k = 12;
    const x = inputs(k, 50, 3);
    const a = gram(x, x, k, 50);
    for (let i = 0; i < k; i++) a[i * k + i]! += 0.1;
    const u = inverseCholeskyUpper(a, k)!;
    for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) expect(u[i * k + j]).toBe(0);
    // (U^T U) A = I
    for (let i = 0; i < k; i++)
      for (let j = 0; j < k; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          let utu = 0;
          for (let q = 0; q < k; q++) utu += u[q * k + i]! * u[q * k + p]!;
          s += utu * a[p * k + j]!;
        }
        expect(s).toBeCloseTo(i === j ? 1 : 0, 6);
      }
    expect(inverseCholeskyUpper(Float64Array.of(1, 2, 2, 1), 2)).toBeUndefined();
  });

  it('at 3 and 4 bits, the layer output error is well below rounding to nearest (same integers format)', async () => {
    const [rows, k, n] = [16, 32, 400];
    const r = rng(7);
    const w = Float64Array.from({ length: rows * k }, () => gauss(r) * 0.3);
    const x = inputs(k, n, 11);
    const h = gram(x, x, k, n);
    for (const bits of [3, 4]) {
      const f: Format = { bits, frac: bits - 1 - 1, signed: true };
      const nearest = quantizeArray(w, f);
      const q = await gptqMatrix(w, rows, k, h, f, { ...DEFAULT_ROUNDING, floatTarget: false });
      const lo = -(2 ** (bits - 1));
      const hi = 2 ** (bits - 1) - 1;
      for (const m of q) expect(m >= lo && m <= hi && Number.isInteger(m)).toBe(true);
      const en = outputError(w, nearest, f.frac, x, x, rows, k, n);
      const eq = outputError(w, q, f.frac, x, x, rows, k, n);
      expect(eq).toBeLessThan(0.5 * en);
    }
  });

  it('the float target compensates an input error that plain GPTQ cannot see', async () => {
    const [rows, k, n] = [8, 24, 400];
    const r = rng(5);
    const w = Float64Array.from({ length: rows * k }, () => gauss(r) * 0.3);
    const xf = inputs(k, n, 13);
    // The fixed-point input: coarsely quantized, with a systematic gain error on half the channels.
    const xq = Float64Array.from(xf, (v, idx) => Math.round(v * (Math.floor(idx / n) % 2 ? 0.8 : 1) * 2) / 2);
    const h = gram(xq, xq, k, n);
    const c = gram(xf, xq, k, n);
    const f: Format = { bits: 6, frac: 4, signed: true };
    const plain = await gptqMatrix(w, rows, k, h, f, { ...DEFAULT_ROUNDING, floatTarget: false });
    const target = await gptqMatrix(w, rows, k, h, f, { ...DEFAULT_ROUNDING, floatTarget: true }, c);
    expect(outputError(w, target, f.frac, xf, xq, rows, k, n)).toBeLessThan(
      0.5 * outputError(w, plain, f.frac, xf, xq, rows, k, n),
    );
  });

  it('conv im2col: H from the accumulator equals the brute-force patches, per group, and blocks split K', async () => {
    const node: Node = {
      name: 'c',
      op: 'Conv',
      inputs: ['x', 'w'],
      outputs: ['y'],
      attrs: {
        group: { kind: 'int', value: 2 },
        pads: { kind: 'ints', value: [1, 1, 1, 1] },
        strides: { kind: 'ints', value: [2, 2] },
      },
    };
    const geo = layerGeometry(node, [4, 2, 3, 3], [1, 4, 5, 5])!;
    expect(geo.k).toBe(18);
    expect(geo.conv!.oh).toBe(3);
    const r = rng(9);
    const x = Float32Array.from({ length: 2 * 4 * 25 }, () => gauss(r));
    const acc = new HessianAccumulator(geo, { ...DEFAULT_ROUNDING, positionsPerImage: 1000, floatTarget: false });
    acc.add(x, undefined, 2);
    expect(acc.columns).toBe(18);
    for (let g = 0; g < 2; g++) {
      const h = new Float64Array(18 * 18);
      for (let img = 0; img < 2; img++)
        for (let oy = 0; oy < 3; oy++)
          for (let ox = 0; ox < 3; ox++) {
            const col: number[] = [];
            for (let ci = 0; ci < 2; ci++)
              for (let ky = 0; ky < 3; ky++)
                for (let kx = 0; kx < 3; kx++) {
                  const y = oy * 2 - 1 + ky;
                  const xx = ox * 2 - 1 + kx;
                  col.push(y < 0 || y >= 5 || xx < 0 || xx >= 5 ? 0 : x[img * 100 + (g * 2 + ci) * 25 + y * 5 + xx]!);
                }
            for (let i = 0; i < 18; i++) for (let j = 0; j <= i; j++) h[i * 18 + j]! += col[i]! * col[j]!;
          }
      for (let i = 0; i < 18; i++)
        for (let j = 0; j <= i; j++) expect(acc.h[g]![0]![i * 18 + j]).toBeCloseTo(h[i * 18 + j]!, 4);
    }
    const blocked = new HessianAccumulator(geo, { ...DEFAULT_ROUNDING, maxBlock: 8, floatTarget: false });
    expect(blocked.blocks).toEqual([
      [0, 6],
      [6, 12],
      [12, 18],
    ]);
    blocked.add(x, undefined, 2);
    const w = Float32Array.from({ length: 4 * 18 }, () => gauss(r) * 0.2);
    const q = await optimizedWeights(blocked, w, { bits: 3, frac: 3, signed: true });
    expect(q.length).toBe(w.length);
    // The Gemm-provider path (onnxruntime in the services) sums the same products.
    const viaGemm = new HessianAccumulator(geo, { ...DEFAULT_ROUNDING, positionsPerImage: 1000, floatTarget: true });
    await viaGemm.addWith(x, x, 2, jsGemm);
    const direct = new HessianAccumulator(geo, { ...DEFAULT_ROUNDING, positionsPerImage: 1000, floatTarget: true });
    direct.add(x, x, 2);
    for (let g = 0; g < 2; g++)
      for (let i = 0; i < 18; i++)
        for (let j = 0; j <= i; j++) {
          expect(viaGemm.h[g]![0]![i * 18 + j]).toBeCloseTo(direct.h[g]![0]![i * 18 + j]!, 4);
          expect(viaGemm.c![g]![0]![i * 18 + j]).toBeCloseTo(direct.c![g]![0]![i * 18 + j]!, 4);
        }
    const f3 = { bits: 3, frac: 3, signed: true };
    expect(await optimizedWeights(direct, w, f3, undefined, jsGemm)).toEqual(await optimizedWeights(direct, w, f3));
  });

  it('Gemm with transB and MatMul read the weights in their own layout', () => {
    const gemm: Node = {
      name: 'g',
      op: 'Gemm',
      inputs: ['x', 'w'],
      outputs: ['y'],
      attrs: { transB: { kind: 'int', value: 1 } },
    };
    const mm: Node = { name: 'm', op: 'MatMul', inputs: ['x', 'w'], outputs: ['y'], attrs: {} };
    const a = layerGeometry(gemm, [3, 5], [1, 5])!;
    const b = layerGeometry(mm, [5, 3], [1, 5])!;
    expect([a.rowsPerGroup, a.k, a.weightIndex(0, 1, 2)]).toEqual([3, 5, 7]);
    expect([b.rowsPerGroup, b.k, b.weightIndex(0, 1, 2)]).toEqual([3, 5, 7]);
  });
});
