/**
 * The WebAssembly kernels on layer shapes the fixture models do not have (grouped convolutions
 * with 2 and 4 outputs per group, strides 2 and 3, dilation, asymmetric padding, odd product
 * counts, Gemm with and without transB, MatMul on several rows, Add with a left shift): every
 * output equals the TypeScript kernel's, on random integers up to 8 and up to 16 bits; and a
 * layer outside the bounds (int32 sums that could wrap) falls back.
 */
import { describe, expect, it } from 'vitest';
import type { AttrValue } from '../../native-workers/engine/ir/graph.js';
import type { IntProgram, IntTensor, ProgramNode } from '../../native-workers/engine/fixedpoint/program.js';
import { WasmKernels } from '../../native-workers/engine/fixedpoint/wasm-kernels.js';
import { seededRandom } from '../../native-workers/engine/data/split.js';
import { rshiftRound } from '../../native-workers/engine/fixedpoint/format.js';
import { operatorModule } from '../../native-workers/engine/ops/registry.js';

const rand = seededRandom(7);
const ints = (n: number, bits: number, signed = true) =>
  Int32Array.from({ length: n }, () => {
    const v = Math.floor(rand() * 2 ** bits);
    return signed ? v - 2 ** (bits - 1) : v;
  });

interface Case {
  label: string;
  op: 'Conv' | 'Gemm' | 'MatMul' | 'Add';
  x: number[];
  w?: number[];
  out: number[];
  attrs?: Record<string, AttrValue>;
  bias?: boolean;
  bits?: number;
}

const i = (value: number): AttrValue => ({ kind: 'int', value });
const is = (value: number[]): AttrValue => ({ kind: 'ints', value });

const CASES: Case[] = [
  {
    label: 'grouped, 4 outputs per group, stride 2, dilation 2',
    op: 'Conv',
    x: [1, 6, 13, 11],
    w: [8, 3, 3, 3],
    out: [1, 8, 5, 4],
    attrs: { group: i(2), strides: is([2, 2]), dilations: is([2, 2]), pads: is([1, 0, 0, 1]) },
    bias: true,
  },
  {
    label: 'grouped, 2 outputs per group (one output at a time)',
    op: 'Conv',
    x: [1, 4, 9, 9],
    w: [4, 2, 3, 3],
    out: [1, 4, 9, 9],
    attrs: { group: i(2), pads: is([1, 1, 1, 1]) },
    bias: true,
  },
  {
    label: 'stride 3, 5x5, asymmetric padding',
    op: 'Conv',
    x: [1, 3, 17, 19],
    w: [5, 3, 5, 5],
    out: [1, 5, 6, 6],
    attrs: { strides: is([3, 3]), pads: is([2, 1, 1, 2]) },
  },
  {
    label: 'depthwise, stride 2, 5x5',
    op: 'Conv',
    x: [1, 6, 15, 15],
    w: [6, 1, 5, 5],
    out: [1, 6, 8, 8],
    attrs: { group: i(6), strides: is([2, 2]), pads: is([2, 2, 2, 2]) },
    bias: true,
  },
  {
    label: '1x1 on 7x7 (rows of 7 padded to 8)',
    op: 'Conv',
    x: [1, 9, 7, 7],
    w: [12, 9, 1, 1],
    out: [1, 12, 7, 7],
    bias: true,
  },
  { label: 'Gemm, transB', op: 'Gemm', x: [3, 37], w: [10, 37], out: [3, 10], attrs: { transB: i(1) }, bias: true },
  { label: 'Gemm', op: 'Gemm', x: [2, 20], w: [20, 7], out: [2, 7], bias: true },
  { label: 'MatMul on 9 rows', op: 'MatMul', x: [9, 15], w: [15, 6], out: [9, 6] },
  { label: 'Add', op: 'Add', x: [1, 5, 7, 3], out: [1, 5, 7, 3] },
];

/** A one-node program: inputs and weights of `bits`, output of `outBits` with r = f_w + f_x - f_y = `shift` (Add: F - f_y). */
function program(c: Case, bits: number, outBits: number, shift: number): { program: IntProgram; node: ProgramNode } {
  const constants: IntProgram['constants'] = {};
  const inputs = ['x'];
  if (c.w) {
    constants['w'] = {
      dims: c.w,
      data: ints(
        c.w.reduce((a, b) => a * b, 1),
        bits,
      ),
      frac: 6,
    };
    inputs.push('w');
  } else inputs.push('x2');
  if (c.bias) {
    const n = c.w![c.op === 'Gemm' && !c.attrs?.['transB'] ? 1 : 0]!;
    const data = ints(n, bits + 2);
    constants['b'] = { dims: [n], data, frac: 9, aligned: Float64Array.from(data, (v) => rshiftRound(v, 9 - 10)) };
    inputs.push('b');
  }
  const lo = -(2 ** (outBits - 1));
  const frac = (c.op === 'Add' ? 4 : 10) - shift;
  const node: ProgramNode = {
    name: 'n',
    op: c.op,
    attrs: c.attrs ?? {},
    inputs,
    output: 'y',
    outShape: c.out,
    out: { frac, lo, hi: -lo - 1, bits: outBits, signed: true },
  };
  const input = { name: 'x', shape: c.x, format: { bits, frac: 4, signed: true }, structure: 'A:x' };
  const output = { name: 'y', frac, shape: c.out };
  return { program: { input, output, nodes: [node], constants, fracOf: { x: 4, y: frac } }, node };
}

describe('WebAssembly kernels on layer shapes beyond the fixtures', async () => {
  const kernels = (await WasmKernels.create())!;

  describe.each(CASES)('$label', (c) => {
    // Shifts chosen so that most outputs land inside the clamp; r <= 0 takes the float64 path.
    it.each([
      [8, 8, 9],
      [8, 8, 12],
      [3, 8, 0],
      [3, 8, -1],
      [12, 16, 14],
    ])('agrees with the TypeScript kernel: %i-bit operands, %i-bit output, shift %i', (bits, outBits, shift) => {
      const { program: p, node } = program(c, bits, outBits, shift);
      kernels.use(p);
      const n = c.x.reduce((a, b) => a * b, 1);
      const xs: IntTensor[] = [{ data: ints(n, bits), shape: c.x, frac: 4 }];
      if (c.op === 'Add') xs.push({ data: ints(n, bits), shape: c.x, frac: 2 });
      const rules = operatorModule(c.op)!.fixedPoint!;
      const reference = rules.runInt(node, xs, p);
      const fast = rules.runFast!(node, xs, p, kernels);
      expect(fast).toBeDefined();
      expect(Array.from(fast!)).toEqual(Array.from(reference));
      const inside = reference.filter((v) => v > node.out.lo && v < node.out.hi).length;
      expect(inside).toBeGreaterThan(reference.length / 10);
    });
  });

  it('falls back where int32 sums could wrap (16-bit weights and inputs over many products)', () => {
    const c = CASES[0]!;
    const { program: p, node } = program(c, 16, 16, 20);
    kernels.use(p);
    const n = c.x.reduce((a, b) => a * b, 1);
    const x: IntTensor = { data: ints(n, 16), shape: c.x, frac: 4 };
    expect(operatorModule('Conv')!.fixedPoint!.runFast!(node, [x], p, kernels)).toBeUndefined();
  });
});
