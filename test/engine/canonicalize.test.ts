import { describe, expect, it } from 'vitest';
import { canonicalize } from '../../native-workers/engine/passes/canonicalize.js';
import { DataType, floatTensor, int64Tensor, toFloat32 } from '../../native-workers/engine/ir/graph.js';
import { writeOnnx } from '../../native-workers/engine/onnx/onnx-format.js';
import { inputLayout } from '../../native-workers/engine/analysis/inspect.js';
import { GraphBuilder, float, int, ints, seededFloats } from '../helpers/graph-builder.js';
import { maxAbsDiff, runOrt, valueRange } from '../helpers/ort.js';

const opts = { source: 'test.onnx' };

/** The canonical graph must compute what the original computes (onnxruntime on both). */
async function expectSameFunction(b: GraphBuilder, shape: number[], tolerance = 1e-5): Promise<void> {
  const original = b.graph();
  const canonical = canonicalize(original, opts);
  const x = seededFloats(
    shape.reduce((p, d) => p * d, 1),
    99,
    2,
  );
  const before = await runOrt(writeOnnx(original), original.inputs[0]!.name, shape, x);
  const after = await runOrt(writeOnnx(canonical), original.inputs[0]!.name, shape, x);
  expect(maxAbsDiff(before, after)).toBeLessThanOrEqual(tolerance * Math.max(1, valueRange(before)));
}

function bnParams(b: GraphBuilder, c: number, seed: number): string[] {
  const gamma = b.constant(
    floatTensor(
      `gamma${seed}`,
      [c],
      seededFloats(c, seed, 1).map((v) => v + 1.5),
    ),
  );
  const beta = b.constant(floatTensor(`beta${seed}`, [c], seededFloats(c, seed + 1, 0.5)));
  const mean = b.constant(floatTensor(`mean${seed}`, [c], seededFloats(c, seed + 2, 0.3)));
  const variance = b.constant(
    floatTensor(
      `var${seed}`,
      [c],
      seededFloats(c, seed + 3, 0.4).map((v) => v + 0.5),
    ),
  );
  return [gamma, beta, mean, variance];
}

describe('canonicalization', () => {
  it('folds BatchNormalization into the preceding Conv exactly', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [-1, 3, 8, 8]);
    const w = b.weight([4, 3, 3, 3], 1);
    const bias = b.weight([4], 2);
    const y = b.node('Conv', [x, w, bias], { pads: ints([1, 1, 1, 1]) });
    const bn = b.node('BatchNormalization', [y, ...bnParams(b, 4, 10)], { epsilon: float(1e-3) });
    b.output(bn, [-1, 4, 8, 8]);
    const g = canonicalize(b.graph(), opts);
    expect(g.nodes.map((n) => n.op)).toEqual(['Conv']);

    // By hand: W' = W * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta.
    const orig = b.graph().initializers;
    const [W, B, gamma, beta, mean, variance] = [w, bias, 'gamma10', 'beta10', 'mean10', 'var10'].map((n) =>
      toFloat32(orig.get(n)!),
    );
    const folded = g.nodes[0]!;
    const W2 = toFloat32(g.initializers.get(folded.inputs[1]!)!);
    const B2 = toFloat32(g.initializers.get(folded.inputs[2]!)!);
    for (let c = 0; c < 4; c++) {
      const s = Math.fround(gamma![c]! / Math.sqrt(variance![c]! + Math.fround(1e-3)));
      for (let i = 0; i < 27; i++) expect(W2[c * 27 + i]).toBe(Math.fround(W![c * 27 + i]! * s));
      expect(B2[c]).toBe(Math.fround(B![c]! * s + Math.fround(beta![c]! - mean![c]! * s)));
    }
    await expectSameFunction(b, [2, 3, 8, 8]);
  });

  it('folds BatchNormalization into a Gemm (both weight layouts)', async () => {
    for (const transB of [0, 1]) {
      const b = new GraphBuilder();
      const x = b.input('x', [-1, 6]);
      const w = b.weight(transB ? [5, 6] : [6, 5], 3);
      const y = b.node('Gemm', [x, w, b.weight([5], 4)], { transB: int(transB), alpha: float(0.5), beta: float(2) });
      const bn = b.node('BatchNormalization', [y, ...bnParams(b, 5, 20)]);
      b.output(bn, [-1, 5]);
      const g = canonicalize(b.graph(), opts);
      expect(g.nodes.map((n) => n.op)).toEqual(['Gemm']);
      expect(g.nodes[0]!.attrs['alpha']).toBeUndefined();
      await expectSameFunction(b, [3, 6]);
    }
  });

  it('turns a BatchNormalization with no Conv/Gemm before it into a per-channel affine depthwise Conv', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [-1, 3, 5, 5]);
    const p = b.node('MaxPool', [x], { kernel_shape: ints([2, 2]), strides: ints([1, 1]) });
    const bn = b.node('BatchNormalization', [p, ...bnParams(b, 3, 30)]);
    b.output(bn, [-1, 3, 4, 4]);
    const g = canonicalize(b.graph(), opts);
    expect(g.nodes.map((n) => n.op)).toEqual(['MaxPool', 'Conv']);
    expect(g.nodes[1]!.attrs['group']).toEqual({ kind: 'int', value: 3 });
    await expectSameFunction(b, [2, 3, 5, 5]);
  });

  it('drops Dropout and Identity, keeping the public output name', async () => {
    const b = new GraphBuilder(11);
    const x = b.input('x', [-1, 4]);
    const d = b.node('Dropout', [x], { ratio: float(0.5) });
    const y = b.node('Gemm', [d, b.weight([4, 3], 5), b.weight([3], 6)]);
    const out = b.node('Identity', [y]);
    b.output(out, [-1, 3]);
    const g = canonicalize(b.graph(), opts);
    expect(g.nodes.map((n) => n.op)).toEqual(['Gemm']);
    expect(g.nodes[0]!.outputs[0]).toBe(out);
    expect(g.nodes[0]!.inputs[0]).toBe('x');
    await expectSameFunction(b, [2, 4]);
  });

  it('fuses Relu and Clip(0,6) (attribute and input forms) into Conv, Gemm and Add', async () => {
    for (const opset of [9, 13]) {
      const b = new GraphBuilder(opset);
      const x = b.input('x', [-1, 2, 6, 6]);
      const c1 = b.node('Conv', [x, b.weight([2, 2, 3, 3], 7), b.weight([2], 8)], { pads: ints([1, 1, 1, 1]) });
      const r1 = b.node('Relu', [c1]);
      const c2 = b.node('Conv', [r1, b.weight([2, 2, 1, 1], 9, 2)]);
      const clip =
        opset >= 11
          ? b.node('Clip', [
              c2,
              b.constant(floatTensor('lo', [], Float32Array.of(0))),
              b.constant(floatTensor('hi', [], Float32Array.of(6))),
            ])
          : b.node('Clip', [c2], { min: float(0), max: float(6) });
      const sum = b.node('Add', [clip, r1]);
      const r2 = b.node('Relu', [sum]);
      b.output(r2, [-1, 2, 6, 6]);
      const g = canonicalize(b.graph(), opts);
      expect(
        g.nodes.map(
          (n) => `${n.op}${n.activation ? `+${n.activation.op}(${n.activation.min},${n.activation.max})` : ''}`,
        ),
      ).toEqual(['Conv+Relu(0,Infinity)', 'Conv+Clip(0,6)', 'Add+Relu(0,Infinity)']);
      await expectSameFunction(b, [1, 2, 6, 6]);
    }
  });

  it('does not fuse a Relu whose producer output is also used elsewhere', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [-1, 4]);
    const y = b.node('Gemm', [x, b.weight([4, 4], 10)]);
    const r = b.node('Relu', [y]);
    const s = b.node('Add', [r, y]);
    b.output(s, [-1, 4]);
    const g = canonicalize(b.graph(), opts);
    expect(g.nodes.map((n) => n.op)).toEqual(['Gemm', 'Relu', 'Add']);
  });

  it('turns Conv + constant Add into a biased Conv, and Reshape(W) + MatMul + Add into a Gemm (mnist-8 style)', async () => {
    const b = new GraphBuilder(8);
    const x = b.input('x', [1, 1, 6, 6]);
    const c = b.node('Conv', [x, b.weight([3, 1, 3, 3], 11)], { auto_pad: { kind: 'string', value: 'SAME_UPPER' } });
    const a = b.node('Add', [c, b.weight([3, 1, 1], 12)]);
    const r = b.node('Relu', [a]);
    const flat = b.node('Reshape', [r, b.constant(int64Tensor('flat_shape', [1, 108]))]);
    const w = b.node('Reshape', [b.weight([3, 6, 6, 4], 13), b.constant(int64Tensor('w_shape', [108, 4]))]);
    const m = b.node('MatMul', [flat, w]);
    const out = b.node('Add', [m, b.weight([1, 4], 14)]);
    b.output(out, [1, 4]);
    const g = canonicalize(b.graph(), opts);
    expect(g.nodes.map((n) => n.op + (n.activation ? '+' + n.activation.op : ''))).toEqual([
      'Conv+Relu',
      'Reshape',
      'Gemm',
    ]);
    expect(g.nodes[2]!.outputs[0]).toBe(out);
    await expectSameFunction(b, [1, 1, 6, 6]);
  });

  it('keeps a final Softmax, refuses one inside the network', () => {
    const ok = new GraphBuilder();
    const x = ok.input('x', [-1, 4]);
    ok.output(ok.node('Softmax', [ok.node('Gemm', [x, ok.weight([4, 3], 1)])], { axis: int(1) }), [-1, 3]);
    expect(canonicalize(ok.graph(), opts).nodes.map((n) => n.op)).toEqual(['Gemm', 'Softmax']);

    const bad = new GraphBuilder();
    const y = bad.input('x', [-1, 4]);
    const s = bad.node('Softmax', [bad.node('Gemm', [y, bad.weight([4, 4], 1)])]);
    bad.output(bad.node('Gemm', [s, bad.weight([4, 2], 2)]), [-1, 2]);
    expect(() => canonicalize(bad.graph(), opts)).toThrowError(/Softmax node softmax_\d+ is inside the network/);
  });

  it('recognises an NHWC input (a leading Transpose) and keeps the Transpose', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [-1, 5, 5, 2]);
    const t = b.node('Transpose', [x], { perm: ints([0, 3, 1, 2]) });
    b.output(b.node('Conv', [t, b.weight([3, 2, 1, 1], 3)]), [-1, 3, 5, 5]);
    const g = canonicalize(b.graph(), opts);
    expect(inputLayout(g, 'x')).toBe('nhwc');
    await expectSameFunction(b, [2, 5, 5, 2]);
  });

  it('turns Constant nodes into initializers', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [-1, 3]);
    const g0 = b.graph();
    g0.nodes.push({
      name: 'k',
      op: 'Constant',
      inputs: [],
      outputs: ['kw'],
      attrs: { value: { kind: 'tensor', value: floatTensor('', [3, 2], seededFloats(6, 4)) } },
    });
    b.output(b.node('MatMul', [x, 'kw']), [-1, 2]);
    const g = canonicalize(g0, opts);
    expect(g.initializers.get('kw')?.dataType).toBe(DataType.FLOAT);
    expect(g.nodes.map((n) => n.op)).toEqual(['MatMul']);
    await expectSameFunction(b, [2, 3]);
  });
});
