import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importModel } from '../../native-workers/engine/model.js';
import { writeOnnx } from '../../native-workers/engine/onnx/onnx-format.js';
import { ALL_MODELS, modelPath } from '../helpers/fixtures.js';
import { seededFloats } from '../helpers/graph-builder.js';
import { maxAbsDiff, runOrt, valueRange } from '../helpers/ort.js';

// Inputs in each model's own value range (raw 0..255 pixels for mnist-8 and ResNet-8).
const INPUT_SCALE: Record<string, number> = { 'mnist-8': 255, resnet8_mlperf_tiny_cifar10: 255 };

describe.each(ALL_MODELS)('canonical round trip of %s', (name) => {
  const path = modelPath(name);
  it.skipIf(!path)('gives the same outputs in onnxruntime as the original (<= 1e-4 of the output range)', async () => {
    const bytes = readFileSync(path!);
    const model = importModel(bytes, path!);
    const input = model.original.inputs[0]!;
    const shape = input.shape.map((d) => (d < 0 ? 2 : d));
    const scale = INPUT_SCALE[name] ?? 2;
    const x = seededFloats(
      shape.reduce((a, b) => a * b, 1),
      7,
      scale,
    ).map((v) => (scale > 100 ? Math.abs(v) : v));
    const before = await runOrt(bytes, input.name, shape, x);
    const after = await runOrt(writeOnnx(model.canonical), input.name, shape, x);
    expect(after.length).toBe(before.length);
    expect(maxAbsDiff(before, after)).toBeLessThanOrEqual(1e-4 * valueRange(before));
    // The canonical graph has no BatchNorm, Identity, Dropout, and no standalone Relu/Clip here.
    expect(
      model.canonical.nodes.some((n) => ['BatchNormalization', 'Identity', 'Dropout', 'Relu', 'Clip'].includes(n.op)),
    ).toBe(false);
  });
});
