/**
 * Inference throughput of the three engines on the same model and batch, in one run:
 * onnxruntime FP32 (the baseline), the fake-quant simulation (onnxruntime, formats fed as
 * inputs), and the integer-only executor (TypeScript, on the worker pool).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { buildPlan } from '../native-workers/engine/fixedpoint/plan.js';
import { formatFor } from '../native-workers/engine/fixedpoint/assignment.js';
import { compileProgram } from '../native-workers/engine/fixedpoint/compile.js';
import { dequantizeArray, quantizeArray } from '../native-workers/engine/fixedpoint/format.js';
import { FloatRunner } from '../native-workers/engine/runtime/float-runner.js';
import { SimRunner } from '../native-workers/engine/runtime/sim-runner.js';
import { runIntOnPool } from '../services/engines.js';
import { loadModelFile } from '../services/models.js';

async function rate(images: number, repeats: number, f: () => Promise<unknown>): Promise<number> {
  await f(); // warm-up: session initialisation, worker start, JIT
  const t = performance.now();
  for (let i = 0; i < repeats; i++) await f();
  return (images * repeats) / ((performance.now() - t) / 1000);
}

export async function benchEngine(sharedFixtures: string): Promise<string[]> {
  const models = [
    {
      name: 'fmnist_resnet20',
      path: join(import.meta.dirname, '..', 'test', 'fixtures', 'models', 'fmnist_resnet20.onnx'),
      batch: 32,
      repeats: 3,
    },
    {
      name: 'mobilenet_v1_0.25_224',
      path: join(sharedFixtures, 'models', 'mobilenet_v1_0.25_224.onnx'),
      batch: 16,
      repeats: 2,
    },
  ].filter((m) => existsSync(m.path));
  const lines = [
    `## Engines: images/s at uniform 8 bits, same batch, one run (${availableParallelism()} cores)`,
    '',
    '| model | batch | ORT FP32 | ORT FP32 without NCHWc | simulation | sim / FP32 | sim / FP32 without NCHWc | integer executor (pool) | int / FP32 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const m of models) {
    const model = await loadModelFile(m.path);
    const plan = buildPlan(model.canonical, { inputNonNegative: false });
    // Synthetic inputs in [-1, 1] and unit ranges: throughput does not depend on the values.
    const assignment = Object.fromEntries(plan.structures.map((s) => [s.id, formatFor(s, 8, 4)]));
    const size = plan.shapes
      .get(plan.inputName)!
      .slice(1)
      .reduce((a, b) => a * b, 1);
    const x = new Float32Array(m.batch * size).map((_, i) => Math.sin(i));
    const inputFormat = assignment[plan.activationOf.get(plan.inputName)!]!;
    const ints = quantizeArray(x, inputFormat);
    const xq = dequantizeArray(ints, inputFormat.frac);
    const float = await FloatRunner.create(model.bytes, model.original, m.path);
    const sim = await SimRunner.create(plan);
    const program = compileProgram(plan, assignment);
    const fp = await rate(m.batch, m.repeats, () => float.run(x, m.batch));
    // NCHWc (MLAS's blocked layout, level 'all') needs constant weights, which a simulation serving every assignment cannot have.
    const floatExtended = await FloatRunner.create(model.bytes, model.original, m.path, { optimization: 'extended' });
    const fpExtended = await rate(m.batch, m.repeats, () => floatExtended.run(x, m.batch));
    await floatExtended.release();
    const simRate = await rate(m.batch, m.repeats, () => sim.run(assignment, xq, m.batch));
    const intRate = await rate(m.batch, 1, () => runIntOnPool(program, ints, m.batch));
    lines.push(
      `| ${m.name} | ${m.batch} | ${fp.toFixed(0)} | ${fpExtended.toFixed(0)} | ${simRate.toFixed(0)} | ${(simRate / fp).toFixed(2)} | ${(simRate / fpExtended).toFixed(2)} | ${intRate.toFixed(1)} | ${(intRate / fp).toFixed(3)} |`,
    );
    await float.release();
    await sim.release();
  }
  lines.push('');
  return lines;
}
