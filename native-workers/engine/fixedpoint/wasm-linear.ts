/**
 * The fast path of the layers with constant weights (Conv, Gemm, MatMul) on the WebAssembly
 * kernels (wasm/kernels.c). It returns the integers of the layer's TypeScript kernel bit for
 * bit, or undefined where that is not provable for this call, and the caller then runs its
 * TypeScript kernel (the reference) for the layer:
 * - a weight outside int16 (words over 16 bits): never fast for that layer;
 * - an input value outside int16, or max over outputs of sum_k |w| times max|x| above
 *   2^31 - 1 (the int32 lanes could wrap): checked per call on the values packed;
 * - an aligned bias of 2^52 or more (float64 sums with it could round).
 */
import type { ProgramConstant } from './program.js';
import type { WasmKernels } from './wasm-kernels.js';

export interface LinearLayer {
  /** The weight constant: packed weights are kept per constant for the program's lifetime. */
  weights: ProgramConstant;
  /** Weight of output o (over all groups) for its product k < K. */
  weight(o: number, k: number): number;
  outputs: number;
  groups: number;
  /** Products per output. */
  K: number;
  /** Biases aligned to the accumulator (ProgramConstant.aligned), one per output. */
  bias?: Float64Array;
  /** Positions per output: Conv OH * OW, Gemm and MatMul the input rows. */
  pixels: number;
  input: Int32Array;
  /** Packs group g's columns from the input at `x` into `col` (a kernels.c pack_*): max|x|, or -1. */
  pack(fn: WasmKernels['fn'], x: number, g: number, col: number): number;
  /** Output order: [pixels][outputs] (Gemm, MatMul) instead of [outputs][pixels] (Conv). */
  pixelMajor: boolean;
  /** r = f_w + f_x - f_y and the output clamp bounds. */
  shift: number;
  lo: number;
  hi: number;
}

interface PackedWeights {
  ptr: number;
  /** 4: blocks of four outputs (dot_4x8); 1: one output at a time (dot_1x8, depthwise). */
  block: 4 | 1;
  /** int32 words per group. */
  perGroup: number;
  maxRowAbs: number;
  biasPtr: number;
}

const INT32_MAX = 2 ** 31 - 1;

function packWeights(k: WasmKernels, layer: LinearLayer): PackedWeights | null {
  const { K, outputs, groups } = layer;
  const perGroupOut = outputs / groups;
  const KP = (K + 1) >> 1;
  // Fewer than four outputs per group (depthwise): padding to four would waste the work.
  const block = perGroupOut >= 4 ? 4 : 1;
  const perGroup = block === 4 ? Math.ceil(perGroupOut / 4) * 4 * KP : perGroupOut * KP;
  const data = new Int32Array(perGroup * groups);
  let maxRowAbs = 0;
  for (let o = 0; o < outputs; o++) {
    const g = Math.floor(o / perGroupOut);
    const j = o - g * perGroupOut;
    let rowAbs = 0;
    for (let kp = 0; kp < KP; kp++) {
      const a = layer.weight(o, 2 * kp);
      const b = 2 * kp + 1 < K ? layer.weight(o, 2 * kp + 1) : 0;
      if (a < -32768 || a > 32767 || b < -32768 || b > 32767) return null;
      rowAbs += Math.abs(a) + Math.abs(b);
      const at = block === 4 ? ((j >> 2) * KP + kp) * 4 + (j & 3) : j * KP + kp;
      data[g * perGroup + at] = (a & 0xffff) | (b << 16);
    }
    maxRowAbs = Math.max(maxRowAbs, rowAbs);
  }
  let biasPtr = 0;
  if (layer.bias) {
    if (layer.bias.some((v) => Math.abs(v) >= 2 ** 52)) return null;
    biasPtr = k.allocate(layer.bias.length * 8);
    k.f64(biasPtr, layer.bias.length).set(layer.bias);
  }
  const ptr = k.allocate(data.length * 4);
  k.i32(ptr, data.length).set(data);
  return { ptr, block, perGroup, maxRowAbs, biasPtr };
}

/** The layer's output integers, or undefined where the bounds above do not hold (run the TypeScript kernel). */
export function runLinearWasm(k: WasmKernels, layer: LinearLayer): Int32Array | undefined {
  const out = fastLinear(k, layer);
  if (out) k.counts.fast++;
  else k.counts.fallback++;
  return out;
}

function fastLinear(k: WasmKernels, layer: LinearLayer): Int32Array | undefined {
  const packed = k.cached(layer.weights, () => packWeights(k, layer));
  if (!packed) return undefined;
  const { K, outputs, groups, pixels: P } = layer;
  const perGroupOut = outputs / groups;
  const KP = (K + 1) >> 1;
  const PB = (P + 7) >> 3;
  const OB = Math.ceil(perGroupOut / 4);
  const accRows = packed.block === 4 ? OB * 4 : perGroupOut;
  const [x, col, acc, out] = k.scratch([layer.input.length * 4, PB * KP * 32, accRows * PB * 32, outputs * P * 4]);
  k.i32(x!, layer.input.length).set(layer.input);
  const [so, sp] = layer.pixelMajor ? [1, outputs] : [P, 1];
  const r = layer.shift;
  const fn = k.fn;
  for (let g = 0; g < groups; g++) {
    const maxX = layer.pack(fn, x!, g, col!);
    if (maxX < 0 || packed.maxRowAbs * maxX > INT32_MAX) return undefined;
    const w = packed.ptr + g * packed.perGroup * 4;
    if (packed.block === 4) fn.dot_4x8(w, col!, OB, KP, PB, acc!);
    else for (let j = 0; j < perGroupOut; j++) fn.dot_1x8(w + j * KP * 4, col!, KP, PB, acc! + j * PB * 32);
    // The same float64 constants as requantizeInto (kernel-util.ts).
    fn.requantize(
      acc!,
      PB * 8,
      packed.biasPtr ? packed.biasPtr + g * perGroupOut * 8 : 0,
      perGroupOut,
      P,
      r > 0 ? 1 : 0,
      r > 0 ? 2 ** (r - 1) : 0,
      2 ** -r,
      layer.lo,
      layer.hi,
      out! + g * perGroupOut * so * 4,
      so,
      sp,
    );
  }
  return k.i32(out!, outputs * P).slice();
}
