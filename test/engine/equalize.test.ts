/**
 * Cross-layer equalization (passes/equalize.ts): the float function is kept (ReLU6 through
 * per-channel bounds), channel ranges are evened out, always-zero channels are cleared, and the
 * promise itself: a network with unbalanced channels loses less at 8 bits once equalized, with
 * the simulation and the integer executor still equal bit for bit.
 */
import { describe, expect, it } from 'vitest';
import { canonicalize } from '../../native-workers/engine/passes/canonicalize.js';
import { LEGACY_MAX_SCALE, MAX_SCALE } from '../../native-workers/engine/passes/equalize.js';
import { floatTensor, toFloat32, type Graph } from '../../native-workers/engine/ir/graph.js';
import { writeOnnx } from '../../native-workers/engine/onnx/onnx-format.js';
import { buildPlan } from '../../native-workers/engine/fixedpoint/plan.js';
import { uniformAssignment } from '../../native-workers/engine/fixedpoint/assignment.js';
import { compileProgram } from '../../native-workers/engine/fixedpoint/compile.js';
import { dequantizeArray, quantizeArray } from '../../native-workers/engine/fixedpoint/format.js';
import { runBatch } from '../../native-workers/engine/fixedpoint/int-executor.js';
import { SimRunner } from '../../native-workers/engine/runtime/sim-runner.js';
import { GraphBuilder, int, ints, seededFloats } from '../helpers/graph-builder.js';
import { maxAbsDiff, runOrt, valueRange } from '../helpers/ort.js';

const SHAPE = [4, 3, 12, 12];
const IMAGES = seededFloats(
  SHAPE.reduce((a, b) => a * b, 1),
  7,
  1,
);

/** Conv -> ReLU6 -> depthwise Conv -> ReLU6 -> 1x1 Conv, output channels scaled 1e-2..1e2 (folded BatchNorm does this). */
function unbalanced(): Graph {
  const b = new GraphBuilder();
  const x = b.input('x', [-1, 3, 12, 12]);
  const spread = (dims: number[], seed: number, perChannel: (c: number) => number): string => {
    const w = seededFloats(
      dims.reduce((p, d) => p * d, 1),
      seed,
      0.5,
    );
    const inner = w.length / dims[0]!;
    for (let i = 0; i < w.length; i++) w[i]! *= perChannel(Math.floor(i / inner));
    return b.constant(floatTensor(`kernel${seed}`, dims, w));
  };
  const gain = (c: number) => 10 ** ((c % 5) - 2);
  // Channel 7 of the first layer is dead: weights ~1e-13 and a negative bias, ReLU6 gives 0.
  const w1 = spread([8, 3, 3, 3], 1, (c) => (c === 7 ? 1e-13 : gain(c)));
  const b1 = b.constant(
    floatTensor(
      'b1',
      [8],
      Float32Array.from({ length: 8 }, (_, c) => (c === 7 ? -0.5 : 0.1 * gain(c))),
    ),
  );
  const six = b.constant(floatTensor('six', [], Float32Array.of(6)));
  const zero = b.constant(floatTensor('zero', [], Float32Array.of(0)));
  const y1 = b.node('Clip', [b.node('Conv', [x, w1, b1], { pads: ints([1, 1, 1, 1]) }), zero, six]);
  // The depthwise layer undoes the first layer's gains, as a folded BatchNorm does.
  const w2 = spread([8, 1, 3, 3], 2, (c) => 1 / gain(c));
  const b2 = b.weight([8], 3, 0.1);
  const y2 = b.node('Clip', [b.node('Conv', [y1, w2, b2], { pads: ints([1, 1, 1, 1]), group: int(8) }), zero, six]);
  const w3 = spread([5, 8, 1, 1], 4, () => 1);
  const y3 = b.node('Conv', [y2, w3, b.weight([5], 5, 0.1)]);
  const gap = b.node('GlobalAveragePool', [y3]);
  const flat = b.node('Flatten', [gap], { axis: int(1) });
  b.output(flat, [-1, 5]);
  return b.graph();
}

const opts = { source: 'unbalanced.onnx' };
/** The mechanism without the default's per-channel scale limit (MAX_SCALE keeps real models' activations even). */
const unlimited = { ...opts, equalizeMaxScale: Infinity };

function channelRanges(g: Graph, weight: string): number[] {
  const t = g.initializers.get(weight)!;
  const w = toFloat32(t);
  const inner = w.length / t.dims[0]!;
  return Array.from({ length: t.dims[0]! }, (_, c) =>
    Math.max(...Array.from(w.subarray(c * inner, (c + 1) * inner), Math.abs)),
  );
}

/** Relative RMS error of the 8-bit integer network's logits against float, and whether sim = int. */
async function eightBitError(g: Graph): Promise<{ error: number; exact: boolean }> {
  const float = await runOrt(writeOnnx(g), 'x', SHAPE, IMAGES);
  const plan = buildPlan(g, { inputNonNegative: false });
  // Ranges from the float activations of these images (the statistics pass, in small).
  const sim = await SimRunner.create(plan);
  try {
    const probe = uniformAssignment(plan, 16, new Map(plan.structures.map((s) => [s.id, 64])));
    const names = [...plan.activationOf.keys()].filter((t) => t !== plan.inputName);
    const acts = await sim.runOutputs(probe, IMAGES, 4, names);
    const ranges = new Map<string, number>();
    for (const s of plan.structures) {
      const values = s.kind === 'A' ? (acts.get(s.tensor) ?? IMAGES) : toFloat32(g.initializers.get(s.tensor)!);
      ranges.set(s.id, Math.max(1e-12, ...Array.from(values, Math.abs)));
    }
    const a = uniformAssignment(plan, 8, ranges);
    const inFormat = a[plan.activationOf.get(plan.inputName)!]!;
    const q = quantizeArray(IMAGES, inFormat);
    const simulated = await sim.run(a, dequantizeArray(q, inFormat.frac), 4);
    const program = compileProgram(plan, a);
    const integer = runBatch(program, q, 4);
    const exact = integer.every((v, i) => v === simulated[i]! * 2 ** program.output.frac);
    let err = 0;
    let ref = 0;
    for (let i = 0; i < float.length; i++) {
      err += (simulated[i]! - float[i]!) ** 2;
      ref += float[i]! ** 2;
    }
    return { error: Math.sqrt(err / ref), exact };
  } finally {
    await sim.release();
  }
}

describe('cross-layer equalization', () => {
  it('keeps the float function (ReLU6 through per-channel bounds) and evens out channel ranges', async () => {
    const original = unbalanced();
    const plain = canonicalize(original, { ...opts, equalize: 'off' });
    const equalized = canonicalize(original, unlimited);
    const before = await runOrt(writeOnnx(original), 'x', SHAPE, IMAGES);
    const after = await runOrt(writeOnnx(equalized), 'x', SHAPE, IMAGES);
    expect(maxAbsDiff(before, after)).toBeLessThanOrEqual(1e-4 * Math.max(1, valueRange(before)));

    const [conv1, dw] = equalized.nodes;
    expect(conv1!.activation?.maxPerChannel).toHaveLength(8);
    expect(dw!.activation?.maxPerChannel).toHaveLength(8);
    expect(plain.nodes.some((n) => n.activation?.maxPerChannel)).toBe(false);
    const spreadOf = (r: number[]) => Math.max(...r) / Math.min(...r.filter((v) => v > 0));
    // The first layer's live channels span 1e4 in range before; after, what is left is the spread
    // of the two layers' products, split evenly between them (its square root).
    const spreadBefore = spreadOf(channelRanges(plain, plain.nodes[0]!.inputs[1]!));
    expect(spreadBefore).toBeGreaterThan(1e3);
    expect(spreadOf(channelRanges(equalized, conv1!.inputs[1]!))).toBeLessThan(spreadBefore / 50);
    // The dead channel is cleared in both layers it touches.
    expect(channelRanges(equalized, conv1!.inputs[1]!)[7]).toBe(0);
    expect(channelRanges(equalized, dw!.inputs[1]!)[7]).toBe(0);
  });

  it('equalizes a residual stream (Convs meeting in an Add, and every Conv that reads it) exactly', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [-1, 3, 12, 12]);
    const gains = (seed: number, dims: number[]) => {
      const w = seededFloats(
        dims.reduce((p, d) => p * d, 1),
        seed,
        0.5,
      );
      const inner = w.length / dims[0]!;
      for (let i = 0; i < w.length; i++) w[i]! *= 10 ** ((Math.floor(i / inner) % 4) - 2);
      return b.constant(floatTensor(`stream${seed}`, dims, w));
    };
    const stem = b.node('Relu', [
      b.node('Conv', [x, gains(1, [8, 3, 3, 3]), b.weight([8], 2, 0.1)], { pads: ints([1, 1, 1, 1]) }),
    ]);
    const inner = b.node('Relu', [
      b.node('Conv', [stem, b.weight([8, 8, 3, 3], 3, 0.3), b.weight([8], 4, 0.1)], { pads: ints([1, 1, 1, 1]) }),
    ]);
    const branch = b.node('Conv', [inner, b.weight([8, 8, 3, 3], 5, 0.3), b.weight([8], 6, 0.1)], {
      pads: ints([1, 1, 1, 1]),
    });
    const sum = b.node('Relu', [b.node('Add', [stem, branch])]);
    const head = b.node('Conv', [sum, b.weight([4, 8, 1, 1], 7, 0.3)]);
    b.output(b.node('Flatten', [b.node('GlobalAveragePool', [head])], { axis: int(1) }), [-1, 4]);
    const original = b.graph();
    // Not a default group (no depthwise layer): equalized when asked for all.
    const equalized = canonicalize(original, { ...unlimited, equalize: 'all' });
    expect(canonicalize(original, opts).nodes.every((n) => !n.inputs[1]?.includes('_equalized'))).toBe(true);
    const plain = canonicalize(original, { ...opts, equalize: 'off' });
    const before = await runOrt(writeOnnx(original), 'x', SHAPE, IMAGES);
    const after = await runOrt(writeOnnx(equalized), 'x', SHAPE, IMAGES);
    expect(maxAbsDiff(before, after)).toBeLessThanOrEqual(1e-4 * Math.max(1, valueRange(before)));
    // The stem's output joins the Add: only the stream can rescale it.
    const spreadOf = (r: number[]) => Math.max(...r) / Math.min(...r);
    const stemSpread = (g: Graph) => spreadOf(channelRanges(g, g.nodes[0]!.inputs[1]!));
    expect(stemSpread(plain)).toBeGreaterThan(100);
    expect(stemSpread(equalized)).toBeLessThan(stemSpread(plain) / 10);
  });

  it('lowers the 8-bit error of an unbalanced network, with the simulation equal to the integer executor', async () => {
    const original = unbalanced();
    const plain = await eightBitError(canonicalize(original, { ...opts, equalize: 'off' }));
    const equalized = await eightBitError(canonicalize(original, unlimited));
    expect(plain.exact).toBe(true);
    expect(equalized.exact).toBe(true);
    expect(equalized.error).toBeLessThan(plain.error / 2);
  });

  it('scales no channel by more than the limit, MAX_SCALE by default, and keeps the function', async () => {
    const original = unbalanced();
    const plain = canonicalize(original, { ...opts, equalize: 'off' });
    const before = await runOrt(writeOnnx(original), 'x', SHAPE, IMAGES);
    for (const [options, limit] of [
      [opts, MAX_SCALE],
      [{ ...opts, equalizeMaxScale: LEGACY_MAX_SCALE }, LEGACY_MAX_SCALE],
    ] as const) {
      const equalized = canonicalize(original, options);
      const after = await runOrt(writeOnnx(equalized), 'x', SHAPE, IMAGES);
      expect(maxAbsDiff(before, after)).toBeLessThanOrEqual(1e-4 * Math.max(1, valueRange(before)));
      // Output channel c of the first layer is divided by its scale s_c.
      const r0 = channelRanges(plain, plain.nodes[0]!.inputs[1]!);
      const r1 = channelRanges(equalized, equalized.nodes[0]!.inputs[1]!);
      const scales = r0.map((r, c) => r / r1[c]!).filter((s, c) => r1[c]! > 0 && Number.isFinite(s));
      expect(scales.length).toBe(7);
      for (const s of scales) {
        expect(s).toBeLessThanOrEqual(limit * (1 + 1e-6));
        expect(s).toBeGreaterThanOrEqual((1 / limit) * (1 - 1e-6));
      }
      // This network's gains span 1e4: the limit binds.
      expect(Math.max(...scales) / Math.min(...scales)).toBeGreaterThan(limit ** 2 * 0.99);
    }
  });
});
