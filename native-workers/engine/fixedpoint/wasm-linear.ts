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
import type { ProgramNode } from './program.js';
import type { WasmKernels } from './wasm-kernels.js';

export interface LinearLayer {
  /** The program node: its name keys the packed weights and the reused output array. */
  node: ProgramNode;
  /** Weight of output o (over all groups) for its product k < K. */
  weight(o: number, k: number): number;
  outputs: number;
  groups: number;
  /** Products per output. */
  K: number;
  /** Biases aligned to the accumulator (ProgramConstant.aligned), one per output. */
  bias?: Float64Array;
  input: Int32Array;
  /** A CHW image under a 2-D window (Conv, output [outputs][OH][OW]) or rows of K values (Gemm, MatMul, output [rows][outputs]). */
  shape: ConvShape | { rows: number };
  /** r = f_w + f_x - f_y and the output clamp bounds. */
  shift: number;
  lo: number;
  hi: number;
}

export interface ConvShape {
  C: number;
  H: number;
  W: number;
  KH: number;
  KW: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  pt: number;
  pl: number;
  OH: number;
  OW: number;
}

interface PackedWeights {
  ptr: number;
  /** 4: blocks of four outputs (dot_4x8); 1: one output at a time (dot_1x8, depthwise). */
  block: 4 | 1;
  /** int32 words per group. */
  perGroup: number;
  maxRowAbs: number;
  biasPtr: number;
  /** The biases as int32 (0 where there is no bias, undefined where one does not fit) and their max |b|. */
  biasInt?: { ptr: number; maxAbs: number };
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
  let biasInt: PackedWeights['biasInt'] = { ptr: 0, maxAbs: 0 };
  if (layer.bias) {
    const maxAbs = layer.bias.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    if (maxAbs >= 2 ** 52) return null;
    const at = k.allocate(layer.bias.length * 8);
    if (at === undefined) return null;
    k.f64((biasPtr = at), layer.bias.length).set(layer.bias);
    biasInt = undefined;
    const atInt = maxAbs <= INT32_MAX ? k.allocate(layer.bias.length * 4) : undefined;
    if (atInt !== undefined) {
      biasInt = { ptr: atInt, maxAbs };
      k.i32(atInt, layer.bias.length).set(layer.bias);
    }
  }
  const ptr = k.allocate(data.length * 4);
  if (ptr === undefined) return null;
  k.i32(ptr, data.length).set(data);
  return { ptr, block, perGroup, maxRowAbs, biasPtr, biasInt };
}

/** The layer's output integers, or undefined where the bounds above do not hold (run the TypeScript kernel). */
export function runLinearWasm(k: WasmKernels, layer: LinearLayer): Int32Array | undefined {
  const packed = k.cached(layer.node.name, () => packWeights(k, layer));
  if (!packed) return undefined;
  const { K, outputs, groups, shape } = layer;
  const perGroupOut = outputs / groups;
  const KP = (K + 1) >> 1;
  const OB = Math.ceil(perGroupOut / 4);
  const accRows = packed.block === 4 ? OB * 4 : perGroupOut;
  const fn = k.fn;
  // Output rows of OW pixels padded to OWpad (blocks of 8); Gemm / MatMul: one row of `rows` pixels.
  const [OH, OW] = 'rows' in shape ? [1, shape.rows] : [shape.OH, shape.OW];
  const OWpad = ((OW + 7) >> 3) << 3;
  const PB = (OH * OWpad) >> 3;
  const P = OH * OW;
  const [so, sp] = 'rows' in shape ? [1, outputs] : [P, 1];
  // Padded planes large enough for every read of the padded output rows (kernels.c pack_conv).
  const conv = 'rows' in shape ? undefined : shape;
  const Hp = conv ? Math.max(conv.pt + conv.H, (OH - 1) * conv.sh + (conv.KH - 1) * conv.dh + 1) : 0;
  const Wp = conv ? Math.max(conv.pl + conv.W, OWpad * conv.sw + (conv.KW - 1) * conv.dw) : 0;
  // One input channel per output (MobileNet's depthwise layers): a kernel without a column buffer.
  const depthwise = conv !== undefined && groups === outputs && conv.C === groups && K <= 64;
  const pointers = k.scratch([
    layer.input.length * 4,
    conv ? conv.C * Hp * Wp * 2 : 0,
    depthwise ? 0 : PB * KP * 32,
    (depthwise ? outputs : accRows) * PB * 32,
    outputs * P * 4 + 16, // requantize_shift may write 3 values past the end
    K * 4,
  ]);
  if (!pointers) return undefined;
  const [x, xp, col, acc, out, offsets] = pointers;
  k.i32(x!, layer.input.length).set(layer.input);
  const maxX = conv
    ? fn.pad_input(x!, conv.C, conv.H, conv.W, conv.pt, conv.pl, Hp, Wp, xp!)
    : fn.pack_rows(x!, OW, K, col!);
  if (maxX < 0 || packed.maxRowAbs * maxX > INT32_MAX) return undefined;
  const r = layer.shift;
  // Requantization in int32 lanes where the sums provably stay in int32 (Conv order only), else in float64.
  const intShift =
    conv !== undefined &&
    r >= 1 &&
    r <= 31 &&
    packed.biasInt !== undefined &&
    layer.lo >= -(2 ** 31) &&
    layer.hi <= INT32_MAX &&
    packed.biasInt.maxAbs + packed.maxRowAbs * maxX + 2 ** (r - 1) <= INT32_MAX;
  // Outputs [first, first + count) from their accumulator rows at `acc`.
  const requantize = (first: number, count: number) => {
    if (intShift) {
      const bias = packed.biasInt!.ptr ? packed.biasInt!.ptr + first * 4 : 0;
      fn.requantize_shift(acc!, PB * 8, bias, count, OH, OW, OWpad, r, layer.lo, layer.hi, out! + first * so * 4);
    } else {
      // The same float64 constants as requantizeInto (kernel-util.ts).
      const bias = packed.biasPtr ? packed.biasPtr + first * 8 : 0;
      const [half, scale] = [r > 0 ? 2 ** (r - 1) : 0, 2 ** -r];
      const { lo, hi } = layer;
      fn.requantize(
        acc!,
        PB * 8,
        bias,
        count,
        OH,
        OW,
        OWpad,
        r > 0 ? 1 : 0,
        half,
        scale,
        lo,
        hi,
        out! + first * so * 4,
        so,
        sp,
      );
    }
  };
  if (depthwise) {
    const { sh, sw, dh, dw, KH, KW } = conv!;
    fn.depthwise(xp!, outputs, Hp, Wp, KH, KW, sh, sw, dh, dw, OH, OWpad >> 3, packed.ptr, acc!);
    requantize(0, outputs);
    return k.copyOut(out!, outputs * P, layer.node.name);
  }
  for (let g = 0; g < groups; g++) {
    const w = packed.ptr + g * packed.perGroup * 4;
    if (conv) {
      const { sh, sw, dh, dw, KH, KW } = conv;
      const Cg = conv.C / groups;
      const BR = OWpad >> 3;
      if (packed.block === 4) {
        fn.conv_4x8(xp!, g * Cg, Cg, Hp, Wp, KH, KW, sh, sw, dh, dw, OH, BR, w, OB, col!, offsets!, acc!);
        requantize(g * perGroupOut, perGroupOut);
        continue;
      }
      fn.pack_conv(xp!, g * Cg, Cg, Hp, Wp, KH, KW, sh, sw, dh, dw, OH, BR, col!, offsets!);
    }
    if (packed.block === 4) fn.dot_4x8(w, col!, OB, KP, PB, acc!);
    else for (let j = 0; j < perGroupOut; j++) fn.dot_1x8(w + j * KP * 4, col!, KP, PB, acc! + j * PB * 32);
    requantize(g * perGroupOut, perGroupOut);
  }
  return k.copyOut(out!, outputs * P, layer.node.name);
}
