import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { inspectModel } from '../../native-workers/engine/analysis/inspect.js';
import { importModel } from '../../native-workers/engine/model.js';
import { elementCount, isFloatType } from '../../native-workers/engine/ir/graph.js';
import { ALL_MODELS, modelPath } from '../helpers/fixtures.js';
import { GraphBuilder, int, ints } from '../helpers/graph-builder.js';

function inspectBuilt(b: GraphBuilder) {
  return inspectModel(importModel(b.bytes(), 'built.onnx'));
}

describe('MACs and parameters by hand on tiny graphs', () => {
  it('counts a strided, padded Conv, a depthwise Conv, a Gemm and a MatMul', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [-1, 3, 10, 10]);
    // 3x3 stride 2 pads 1: out 5x5; 8 out channels; MACs = 5*5*8 * 3*3*3 = 5400.
    const c1 = b.node('Conv', [x, b.weight([8, 3, 3, 3], 1), b.weight([8], 2)], {
      strides: ints([2, 2]),
      pads: ints([1, 1, 1, 1]),
    });
    // Depthwise 3x3, TF-style asymmetric pads [0,0,1,1], stride 2: out floor((5+1-3)/2)+1 = 2; MACs = 2*2*8 * 1*3*3 = 288.
    const c2 = b.node('Conv', [c1, b.weight([8, 1, 3, 3], 3)], {
      group: int(8),
      strides: ints([2, 2]),
      pads: ints([0, 0, 1, 1]),
    });
    const f = b.node('Flatten', [c2]);
    // Gemm 32 -> 4: MACs 128.
    const g = b.node('Gemm', [f, b.weight([4, 32], 4), b.weight([4], 5)], { transB: int(1) });
    // MatMul 4 -> 2: MACs 8.
    const m = b.node('MatMul', [g, b.weight([4, 2], 6)]);
    b.output(m, [-1, 2]);
    const r = inspectBuilt(b);
    expect(r.layers.map((l) => [l.op, l.outputShape, l.macs, l.params])).toEqual([
      ['Conv', [1, 8, 5, 5], 5400, 8 * 27 + 8],
      ['Conv', [1, 8, 2, 2], 288, 72],
      ['Flatten', [1, 32], 0, 0],
      ['Gemm', [1, 4], 128, 128 + 4],
      ['MatMul', [1, 2], 8, 8],
    ]);
    expect(r.totals.macs).toBe(5400 + 288 + 128 + 8);
    expect(r.totals.params).toBe(224 + 72 + 132 + 8);
    expect(r.totals.fp32Bytes).toBe(4 * r.totals.params);
    expect(r.model.fixedBatch).toBeNull();
  });

  it('gives pools and Add no MACs and follows auto_pad SAME_UPPER', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [1, 2, 7, 7]);
    const c = b.node('Conv', [x, b.weight([2, 2, 3, 3], 1)], {
      auto_pad: { kind: 'string', value: 'SAME_UPPER' },
      strides: ints([2, 2]),
    });
    const p = b.node('MaxPool', [c], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) });
    const a = b.node('AveragePool', [p], { kernel_shape: ints([2, 2]) });
    const s = b.node('Add', [a, a]);
    const gap = b.node('GlobalAveragePool', [s]);
    b.output(gap, [1, 2, 1, 1]);
    const r = inspectBuilt(b);
    expect(r.layers.map((l) => [l.op, l.outputShape, l.macs])).toEqual([
      ['Conv', [1, 2, 4, 4], 4 * 4 * 2 * 2 * 9],
      ['MaxPool', [1, 2, 2, 2], 0],
      ['AveragePool', [1, 2, 1, 1], 0],
      ['Add', [1, 2, 1, 1], 0],
      ['GlobalAveragePool', [1, 2, 1, 1], 0],
    ]);
    expect(r.model.fixedBatch).toBe(1);
  });
});

/** Measured once by hand-checked formulas (Conv: out volume x Cin/group x kernel; Gemm: K x N). */
const EXPECTED: Record<string, { params: number; macs: number; layers: number; ops: Record<string, number> }> = {
  'mnist-8': {
    params: 5994,
    macs: 786560,
    layers: 6,
    ops: { Reshape: 2, Conv: 2, Add: 3, Relu: 2, MaxPool: 2, MatMul: 1 },
  },
  fmnist_resnet20: {
    params: 271402,
    macs: 31021952,
    layers: 33,
    ops: { Conv: 21, Relu: 19, Add: 9, GlobalAveragePool: 1, Flatten: 1, Gemm: 1 },
  },
  fmnist_vgg_small: {
    params: 584170,
    macs: 29424640,
    layers: 12,
    ops: { Conv: 6, Relu: 7, MaxPool: 3, Flatten: 1, Gemm: 2 },
  },
  resnet8_mlperf_tiny_cifar10: {
    params: 77706,
    macs: 12501632,
    layers: 16,
    ops: { Conv: 9, Relu: 7, Add: 3, AveragePool: 1, Flatten: 1, Gemm: 1, Softmax: 1, Identity: 1 },
  },
  // 54 of the parameters are the 27 Clip min/max scalars: float initializers, as contracts.md counts them.
  'mobilenet_v1_0.25_224': {
    params: 467390,
    macs: 41030272,
    layers: 30,
    ops: { Conv: 28, Clip: 27, GlobalAveragePool: 1, Flatten: 1, Identity: 1 },
  },
};

describe.each(ALL_MODELS)('inspect %s', (name) => {
  const path = modelPath(name);
  it.skipIf(!path)('reports parameters equal to the initializer sizes and the expected MACs', () => {
    const model = importModel(readFileSync(path!), path!);
    const r = inspectModel(model);
    let floatElements = 0;
    for (const t of model.original.initializers.values())
      if (isFloatType(t.dataType)) floatElements += elementCount(t.dims);
    expect(r.totals.params).toBe(floatElements);
    const e = EXPECTED[name]!;
    expect(r.totals.params).toBe(e.params);
    expect(r.totals.macs).toBe(e.macs);
    expect(r.layers.length).toBe(e.layers);
    expect(r.ops).toEqual(e.ops);
    // Per-layer MACs from an independent formula on the canonical graph's own tensors.
    for (const l of r.layers) {
      const node = model.canonical.nodes.find((n) => n.name === l.name)!;
      const w = model.canonical.initializers.get(node.inputs[1] ?? '');
      if (l.op === 'Conv')
        expect(l.macs).toBe(
          l.outputShape.slice(1).reduce((a, b) => a * b, 1) * w!.dims.slice(1).reduce((a, b) => a * b, 1),
        );
      else if (l.op === 'Gemm' || l.op === 'MatMul') expect(l.macs).toBe(w!.dims[0]! * w!.dims[1]!);
      else expect(l.macs).toBe(0);
    }
  });
});
