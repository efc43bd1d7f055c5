/**
 * The model validator: damaged or hostile graphs that decode fine are refused at import with a
 * sentence naming the file and the problem, before onnxruntime or a typed array sees them.
 */
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import { describe, expect, it } from 'vitest';
import { DataType, type Graph } from '../../native-workers/engine/ir/graph.js';
import { importModel } from '../../native-workers/engine/model.js';
import { writeOnnx } from '../../native-workers/engine/onnx/onnx-format.js';
import { isFxpqError } from '../../native-workers/engine/errors.js';
import { GraphBuilder, ints } from '../helpers/graph-builder.js';

/** A small valid classifier: Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm. */
function classifier(): { b: GraphBuilder; g: Graph } {
  const b = new GraphBuilder();
  const x = b.input('x', [-1, 2, 8, 8]);
  const c = b.node('Conv', [x, b.weight([4, 2, 3, 3], 1, 0.5, 'conv_w'), b.weight([4], 2)]);
  const r = b.node('Relu', [c]);
  const p = b.node('GlobalAveragePool', [r]);
  const f = b.node('Flatten', [p]);
  b.output(b.node('Gemm', [f, b.weight([4, 3], 3), b.weight([3], 4)]), [-1, 3]);
  return { b, g: b.graph() };
}

function refusal(bytes: Uint8Array): string {
  try {
    importModel(bytes, 'bad.onnx');
  } catch (e) {
    expect(isFxpqError(e), String(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error('the model was accepted');
}

const mutate = (fn: (g: Graph) => void): Uint8Array => {
  const { g } = classifier();
  fn(g);
  return writeOnnx(g);
};

describe('model validator', () => {
  it('accepts the valid classifier', () => {
    expect(() => importModel(classifier().b.bytes(), 'good.onnx')).not.toThrow();
  });

  it.each<[string, (g: Graph) => void, RegExp]>([
    ['zero nodes', (g) => (g.nodes = []), /bad\.onnx has no operators \(zero nodes\)/],
    [
      'an int64 input',
      (g) => (g.inputs[0]!.dataType = DataType.INT64),
      /input x is not float32 \(element type INT64\)/,
    ],
    ['a rank-10 input', (g) => (g.inputs[0]!.shape = [1, 2, 8, 8, 1, 1, 1, 1, 1, 1]), /input x has rank 10/],
    [
      'a dimension of 2^40',
      (g) => (g.inputs[0]!.shape = [1, 2, 2 ** 40, 8]),
      /a dimension of 1099511627776, more than 65536/,
    ],
    ['a batch of 1e9', (g) => (g.inputs[0]!.shape = [1e9, 2, 8, 8]), /fixes a batch of 1000000000/],
    [
      'a NaN weight',
      (g) => ((g.initializers.get('conv_w')!.data as Float32Array)[5] = NaN),
      /tensor conv_w holds NaN at element 5/,
    ],
    [
      'an infinite weight',
      (g) => ((g.initializers.get('conv_w')!.data as Float32Array)[0] = -Infinity),
      /conv_w holds an infinite value/,
    ],
    [
      'a dangling input',
      (g) => (g.nodes[1]!.inputs[0] = 'nowhere'),
      /node relu_\d+ \(Relu\) reads nowhere, which no node, weight or input provides/,
    ],
    ['a missing graph output', (g) => (g.outputs[0]!.name = 'ghost'), /graph output ghost is not produced by any node/],
    ['no graph output at all', (g) => (g.outputs = []), /bad\.onnx declares no graph output/],
    [
      'a convolution with more padding than any image',
      (g) => (g.nodes[0]!.attrs['pads'] = { kind: 'ints', value: [1e9, 0, 1e9, 0] }),
      /bad\.onnx: Node conv_\d+ \(Conv\): computes \d+ values per image/,
    ],
    [
      'a convolution whose weights lost a dimension',
      (g) => (g.initializers.get('conv_w')!.dims = [4, 2, 9]),
      /bad\.onnx: Node conv_\d+ \(Conv\): weights of rank 3 do not fit an input of rank 4/,
    ],
    ['a cycle', (g) => (g.nodes[0]!.inputs[0] = g.nodes[1]!.outputs[0]!), /the graph has a cycle through node/],
    ['a tensor produced twice', (g) => (g.nodes[2]!.outputs[0] = g.nodes[1]!.outputs[0]!), /is produced twice/],
  ])('refuses %s', (_, fn, message) => {
    expect(refusal(mutate(fn))).toMatch(message);
  });

  it('refuses raw weight bytes that are not whole float32 values', () => {
    const model = fromBinary(ModelProtoSchema, classifier().b.bytes());
    const w = model.graph!.initializer.find((t) => t.name === 'conv_w')!;
    w.floatData = [];
    w.rawData = new Uint8Array(7);
    expect(refusal(toBinary(ModelProtoSchema, model))).toMatch(
      /tensor conv_w has 7 bytes of raw data, not a whole number of 4-byte values/,
    );
  });

  it('refuses at import what would plan but not run: a 1-D convolution, a broadcasting Add', () => {
    const conv1d = new GraphBuilder();
    {
      const b = conv1d;
      const x = b.input('x', [-1, 2, 8]);
      const c = b.node('Conv', [x, b.weight([4, 2, 3], 1), b.weight([4], 2)], { pads: ints([1, 1]) });
      const f = b.node('Flatten', [b.node('GlobalAveragePool', [c])]);
      b.output(b.node('Gemm', [f, b.weight([4, 3], 3)]), [-1, 3]);
    }
    expect(refusal(conv1d.bytes())).toMatch(/bad\.onnx: node conv_\d+ \(Conv\) works on a 1-D signal/);
    const broadcast = new GraphBuilder();
    {
      const b = broadcast;
      const x = b.input('x', [-1, 2, 8, 8]);
      const c = b.node('Conv', [x, b.weight([4, 2, 3, 3], 1), b.weight([4], 2)], { pads: ints([1, 1, 1, 1]) });
      const s = b.node('Add', [c, b.node('GlobalAveragePool', [c])]);
      const f = b.node('Flatten', [b.node('GlobalAveragePool', [s])]);
      b.output(b.node('Gemm', [f, b.weight([4, 3], 3)]), [-1, 3]);
    }
    expect(refusal(broadcast.bytes())).toMatch(/node add_\d+ \(Add\) broadcasts \[1, 4, 8, 8\] with \[1, 4, 1, 1\]/);
  });

  it('imports a long chain of Identity nodes in linear time', () => {
    const b = new GraphBuilder();
    let t = b.input('x', [-1, 2, 8, 8]);
    t = b.node('Conv', [t, b.weight([4, 2, 3, 3], 1), b.weight([4], 2)]);
    for (let i = 0; i < 20_000; i++) t = b.node('Identity', [t]);
    const p = b.node('GlobalAveragePool', [t]);
    const f = b.node('Flatten', [p]);
    b.output(b.node('Gemm', [f, b.weight([4, 3], 3), b.weight([3], 4)]), [-1, 3]);
    const started = performance.now();
    const m = importModel(b.bytes(), 'identities.onnx');
    expect(m.canonical.nodes.some((n) => n.op === 'Identity')).toBe(false);
    // Not a timing assertion of the machine's speed: minutes (quadratic) versus about a second.
    expect(performance.now() - started).toBeLessThan(30_000);
  });
});
