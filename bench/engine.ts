/**
 * Inference throughput of the three engines on the same model and batch, in one run:
 * onnxruntime FP32 (the baseline), the fake-quant simulation (onnxruntime, formats fed as
 * inputs, weights and biases baked in; and with them fed too, as before), and the integer-only executor (TypeScript, on the worker pool). The engines take
 * turns over FXPQ_BENCH_ROUNDS rounds (default 5); each figure is the median with its min-max,
 * ratios the median of the per-round ratios.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { compileProgram } from '../native-workers/engine/fixedpoint/compile.js';
import { dequantizeArray } from '../native-workers/engine/fixedpoint/format.js';
import { FloatRunner } from '../native-workers/engine/runtime/float-runner.js';
import { SimRunner } from '../native-workers/engine/runtime/sim-runner.js';
import { runIntOnPool } from '../services/engines.js';
import { syntheticModel } from './synthetic-model.js';

/** Images/s of one timed call sequence (`repeats` calls of `images` images). */
async function rate(images: number, repeats: number, f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < repeats; i++) await f();
  return (images * repeats) / ((performance.now() - t) / 1000);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** "median (min-max)" of a series of rates or ratios. */
function spread(xs: number[], digits: number): string {
  return `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)})`;
}

/**
 * Every engine once per round, the starting engine rotating from round to round, so that a
 * change in the machine's load hits all engines alike; ratios are taken within a round.
 */
async function interleaved(
  rounds: number,
  engines: { name: string; images: number; repeats: number; run: () => Promise<unknown> }[],
): Promise<Map<string, number[]>> {
  for (const e of engines) await e.run(); // warm-up: session initialisation, worker start, JIT
  const rates = new Map(engines.map((e) => [e.name, [] as number[]]));
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < engines.length; k++) {
      const e = engines[(r + k) % engines.length]!;
      rates.get(e.name)!.push(await rate(e.images, e.repeats, e.run));
    }
  }
  return rates;
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
  const rounds = Number(process.env['FXPQ_BENCH_ROUNDS'] ?? 5);
  const lines = [
    `## Engines: images/s at uniform 8 bits, same batch, ${rounds} interleaved rounds, median (min-max) (${availableParallelism()} cores)`,
    '',
    '| model | batch | ORT FP32 | ORT FP32 without NCHWc | simulation | simulation, parameters as feeds | sim / FP32 | sim / sim with feeds | sim / FP32 without NCHWc | integer executor (pool) | int / FP32 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const m of models) {
    const { model, plan, assignment, x, ints } = await syntheticModel(m.path, m.batch);
    const inputFormat = assignment[plan.activationOf.get(plan.inputName)!]!;
    const xq = dequantizeArray(ints, inputFormat.frac);
    const float = await FloatRunner.create(model.bytes, model.original, m.path);
    // NCHWc (MLAS's blocked layout, level 'all') needs constant weights, which a simulation serving every assignment cannot have.
    const floatExtended = await FloatRunner.create(model.bytes, model.original, m.path, { optimization: 'extended' });
    const sim = await SimRunner.create(plan);
    // The baseline: one session for every assignment, weights and biases fed as inputs.
    const simWithFeeds = await SimRunner.create(plan, { baked: false });
    const program = compileProgram(plan, assignment);
    const r = await interleaved(rounds, [
      { name: 'fp', images: m.batch, repeats: m.repeats, run: () => float.run(x, m.batch) },
      { name: 'fpx', images: m.batch, repeats: m.repeats, run: () => floatExtended.run(x, m.batch) },
      { name: 'sim', images: m.batch, repeats: m.repeats, run: () => sim.run(assignment, xq, m.batch) },
      { name: 'simf', images: m.batch, repeats: m.repeats, run: () => simWithFeeds.run(assignment, xq, m.batch) },
      { name: 'int', images: m.batch, repeats: 1, run: () => runIntOnPool(program, ints, m.batch) },
    ]);
    const [fp, fpx, simRate, simfRate, intRate] = ['fp', 'fpx', 'sim', 'simf', 'int'].map((k) => r.get(k)!) as [
      number[],
      number[],
      number[],
      number[],
      number[],
    ];
    const per = (a: number[], b: number[]): number[] => a.map((v, i) => v / b[i]!);
    lines.push(
      `| ${m.name} | ${m.batch} | ${spread(fp, 0)} | ${spread(fpx, 0)} | ${spread(simRate, 0)} | ${spread(simfRate, 0)} | ${spread(per(simRate, fp), 2)} | ${spread(per(simRate, simfRate), 2)} | ${spread(per(simRate, fpx), 2)} | ${spread(intRate, 1)} | ${spread(per(intRate, fp), 3)} |`,
    );
    await float.release();
    await floatExtended.release();
    await sim.release();
    await simWithFeeds.release();
  }
  lines.push('');
  return lines;
}
