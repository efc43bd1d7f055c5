/**
 * The forms operators take across the opsets FxPQ reads (7 to 21), rewritten at import with the
 * float function unchanged (onnxruntime runs the original and the canonical graph), and the
 * forms FxPQ cannot run refused by name. The zoo (test/services/zoo.test.ts) has whole models
 * at opsets 7, 8 and 18 to 21; these are the single rewrites.
 */
import { describe, expect, it } from 'vitest';
import { canonicalize } from '../../native-workers/engine/passes/canonicalize.js';
import { floatTensor, int64Tensor } from '../../native-workers/engine/ir/graph.js';
import { writeOnnx } from '../../native-workers/engine/onnx/onnx-format.js';
import { GraphBuilder, float, int, ints, seededFloats } from '../helpers/graph-builder.js';
import { maxAbsDiff, runOrt, valueRange } from '../helpers/ort.js';

const opts = { source: 'test.onnx' };

async function expectSameFunction(b: GraphBuilder, shape: number[]): Promise<ReturnType<typeof canonicalize>> {
  const original = b.graph();
  const canonical = canonicalize(original, opts);
  const x = seededFloats(
    shape.reduce((p, d) => p * d, 1),
    7,
    2,
  );
  const before = await runOrt(writeOnnx(original), original.inputs[0]!.name, shape, x);
  const after = await runOrt(writeOnnx(canonical), original.inputs[0]!.name, shape, x);
  // Exact but for BatchNormalization folded into weights (float32 rounding, as in canonicalize.test.ts).
  expect(maxAbsDiff(before, after)).toBeLessThanOrEqual(1e-5 * Math.max(1, valueRange(before)));
  return canonical;
}

const ops = (g: ReturnType<typeof canonicalize>): string[] =>
  g.nodes.map((n) => n.op + (n.activation ? `+${n.activation.op}(${n.activation.min},${n.activation.max})` : ''));

describe('opset forms', () => {
  it('opset 18: Split by num_outputs (last part smaller), Pad with its axes input, ReduceMax/ReduceMean with axes inputs', async () => {
    const b = new GraphBuilder(18);
    const x = b.input('x', [-1, 5, 6, 6]);
    const c = b.node('Conv', [x, b.weight([5, 5, 1, 1], 1), b.weight([5], 2)]);
    const s = b.node('Split', [c], { axis: int(1), num_outputs: int(2) }, 2);
    const [a, d] = [s, s.replace(/_out0$/, '_out1')];
    const padded = b.node('Pad', [
      a,
      b.constant(int64Tensor('pads', [0, 1, 1, 0])),
      '',
      b.constant(int64Tensor('pad_axes', [-1, 2])),
    ]);
    const pooled = b.node('MaxPool', [padded], { kernel_shape: ints([2, 2]) });
    const max = b.node('ReduceMax', [pooled, b.constant(int64Tensor('max_axes', [2, 3]))], { keepdims: int(0) });
    const mean = b.node('ReduceMean', [d, b.constant(int64Tensor('mean_axes', [-1, -2]))], { keepdims: int(0) });
    const cat = b.node('Concat', [max, mean], { axis: int(1) });
    b.output(b.node('Gemm', [cat, b.weight([5, 4], 3)]), [-1, 4]);
    const g = await expectSameFunction(b, [2, 5, 6, 6]);
    expect(ops(g)).toEqual([
      'Conv',
      'Slice',
      'Slice',
      'Pad',
      'MaxPool',
      'MaxPool',
      'Reshape',
      'GlobalAveragePool',
      'Reshape',
      'Concat',
      'Gemm',
    ]);
    // The Split's parts: 3 and 2 channels (ceil(5 / 2), then what is left).
    expect(g.nodes.slice(1, 3).map((n) => [...g.initializers.get(n.inputs[2]!)!.data].map(Number))).toEqual([[3], [5]]);
  });

  it('opset 18: a reduction with no axes and noop_with_empty_axes=1 is the identity; with noop 0 it is refused by name', async () => {
    const b = new GraphBuilder(18);
    const x = b.input('x', [-1, 2, 4, 4]);
    const c = b.node('Conv', [x, b.weight([2, 2, 1, 1], 4)]);
    const r = b.node('ReduceMean', [c], { noop_with_empty_axes: int(1) });
    b.output(b.node('Relu', [r]), [-1, 2, 4, 4]);
    expect(ops(await expectSameFunction(b, [1, 2, 4, 4]))).toEqual(['Conv+Relu(0,Infinity)']);

    const all = new GraphBuilder(18);
    const y = all.input('x', [-1, 2, 4, 4]);
    all.output(all.node('ReduceMean', [all.node('Conv', [y, all.weight([2, 2, 1, 1], 4)])], { keepdims: int(0) }), []);
    expect(() => canonicalize(all.graph(), opts)).toThrowError(/ReduceMean \(node reducemean_\d+\)/);
  });

  it('opset 7: Pad, Slice and Clip attributes, Relu + Clip(max) as one ReLU6, Dropout ratio, BatchNormalization spatial=1', async () => {
    const b = new GraphBuilder(7);
    const x = b.input('x', [-1, 4, 5, 5]);
    const p = b.node('Pad', [x], { pads: ints([0, 0, 1, 1, 0, 0, 1, 1]), mode: { kind: 'string', value: 'constant' } });
    const c = b.node('Conv', [p, b.weight([4, 4, 3, 3], 5), b.weight([4], 6)]);
    const r6 = b.node('Clip', [b.node('Relu', [c])], { max: float(6) });
    const half = b.node('Slice', [r6], { starts: ints([1]), ends: ints([2]), axes: ints([1]) });
    const bn = b.node(
      'BatchNormalization',
      [
        half,
        ...['g', 'b', 'm', 'v'].map((n, i) =>
          b.constant(floatTensor(`bn_${n}`, [1], Float32Array.of([1.5, 0.1, -0.2, 0.8][i]!))),
        ),
      ],
      { spatial: int(1) },
    );
    const padded = b.node('Pad', [bn], { pads: ints([0, 0, 0, 0, 0, 0, 1, 1]) });
    const pooled = b.node('MaxPool', [padded], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) });
    const flat = b.node('Flatten', [pooled]);
    const drop = b.node('Dropout', [flat], { ratio: float(0.3) });
    b.output(b.node('Gemm', [drop, b.weight([9, 3], 7), b.weight([3], 8)]), [-1, 3]);
    const g = await expectSameFunction(b, [2, 4, 5, 5]);
    expect(g.opset).toBe(11);
    expect(ops(g)).toEqual(['Conv+Clip(0,6)', 'Slice', 'Conv', 'Pad', 'MaxPool', 'Flatten', 'Gemm']);
  });

  it('refuses by name what has no exact rewrite: BatchNormalization spatial=0, Split of the batch axis, Pad with a non-zero value', () => {
    const bn = new GraphBuilder(7);
    const x = bn.input('x', [-1, 2, 3, 3]);
    const params = ['g', 'b', 'm', 'v'].map((n) => bn.constant(floatTensor(`p_${n}`, [2], Float32Array.of(1, 1))));
    bn.output(bn.node('BatchNormalization', [x, ...params], { spatial: int(0) }), [-1, 2, 3, 3]);
    expect(() => canonicalize(bn.graph(), opts)).toThrowError(/BatchNormalization\) has spatial=0/);

    const split = new GraphBuilder(13);
    const y = split.input('x', [4, 2, 3, 3]);
    const parts = split.node('Split', [y, split.constant(int64Tensor('sizes', [2, 2]))], { axis: int(0) }, 2);
    split.output(split.node('Conv', [parts, split.weight([2, 2, 1, 1], 9)]), [2, 2, 3, 3]);
    expect(() => canonicalize(split.graph(), opts)).toThrowError(/Split \(node split_\d+\)/);

    const pad = new GraphBuilder(8);
    const z = pad.input('x', [-1, 2, 3, 3]);
    const p = pad.node('Pad', [z], { pads: ints([0, 0, 1, 1, 0, 0, 1, 1]), value: float(-1) });
    pad.output(pad.node('MaxPool', [p], { kernel_shape: ints([2, 2]) }), [-1, 2, 4, 4]);
    expect(() => canonicalize(pad.graph(), opts)).toThrowError(/pads with zeros only/);
  });
});
