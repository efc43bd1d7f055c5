/**
 * `npm run bench -- search [model ...]`: for each model, memory reduction and held-out drop
 * of --uniform 8, of each strategy, with and without self-distillation and bias correction,
 * and the search's cost in FP32 passes over the calibration split. Full searches take
 * minutes each on 2 cores; name models to run a subset (default: every shared model).
 * FXPQ_BENCH_EQUALIZE (depthwise|all|off) and FXPQ_BENCH_ROUNDING (nearest|optimized) set the
 * import's equalization and the weights' rounding when not the defaults; FXPQ_BENCH_SIMULATION=feeds
 * runs the simulation with weights and biases fed to one session (the baseline of baked sessions);
 * FXPQ_BENCH_ACTIVATION_CACHE=0 keeps no activations of the state (the baseline of kept activations).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quantize } from '../services/quantize.js';
import type { Strategy } from '../native-workers/engine/search/fxp-qnet.js';
import type { EqualizeMode } from '../api/contract.js';

interface Variant {
  label: string;
  uniform?: number;
  strategy?: Strategy;
  distill?: boolean;
  biasCorrection?: boolean;
  fracChoice?: boolean;
}

const VARIANTS: Variant[] = [
  // A uniform run's default rounding: optimized since 2026-11-28 (BENCHMARKS.md).
  { label: 'uniform 8', uniform: 8 },
  { label: 'schedule (default)', strategy: 'schedule' },
  { label: 'schedule without distillation', strategy: 'schedule', distill: false },
  { label: 'schedule without bias correction', strategy: 'schedule', biasCorrection: false },
  { label: 'schedule without fractional-length choice', strategy: 'schedule', fracChoice: false },
  { label: 'sensitivity', strategy: 'sensitivity' },
  { label: 'trade-off', strategy: 'tradeoff' },
];

const BUDGET: Record<string, number> = { 'mobilenet_v1_0.25_224': 2 };

export async function benchSearch(
  sharedFixtures: string,
  models: string[],
  variants = VARIANTS.filter(
    (v) => !process.env['FXPQ_BENCH_VARIANTS'] || process.env['FXPQ_BENCH_VARIANTS'].split(',').includes(v.label),
  ),
): Promise<string[]> {
  const lines = [
    '## FxP-QNet search (held-out split only; default split: up to 1000 calibration images, the rest held out)',
    '',
    '| model | variant | budget | FP32 top-1 | fixed top-1 | drop (points) | memory reduction | weights reduction | avg bits W / A | evaluations | seconds | FP32 passes |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const name of models) {
    const sidecar = JSON.parse(readFileSync(join(sharedFixtures, 'models', `${name}.json`), 'utf8')) as {
      data: string;
    };
    for (const v of variants) {
      process.stderr.write(`bench search: ${name}, ${v.label}...\n`);
      const budget = BUDGET[name] ?? 1;
      const r = await quantize({
        modelPath: join(sharedFixtures, 'models', `${name}.onnx`),
        dataPath: join(sharedFixtures, 'models', sidecar.data),
        classes: name.startsWith('mobilenet') ? 'imagenet1k' : undefined,
        out: mkdtempSync(join(tmpdir(), 'fxpq-bench-search-')),
        budget,
        uniform: v.uniform,
        strategy: v.strategy,
        distill: v.distill,
        biasCorrection: v.biasCorrection,
        fracChoice: v.fracChoice,
        // The import and rounding choices of a row, when not the defaults.
        equalize: process.env['FXPQ_BENCH_EQUALIZE'] as EqualizeMode | undefined,
        rounding: process.env['FXPQ_BENCH_ROUNDING'] as 'nearest' | 'optimized' | undefined,
        simulation: process.env['FXPQ_BENCH_SIMULATION'] as 'baked' | 'feeds' | undefined,
        ...(process.env['FXPQ_BENCH_ACTIVATION_CACHE'] === undefined
          ? {}
          : { activationCacheBytes: Number(process.env['FXPQ_BENCH_ACTIVATION_CACHE']) }),
      });
      const drop = 100 * (r.fp.top1 - r.quant.top1);
      const row = `| ${name} | ${v.label} | ${v.uniform ? '-' : budget} | ${(100 * r.fp.top1).toFixed(1)} | ${(100 * r.quant.top1).toFixed(1)} | ${drop.toFixed(2)} | ${r.memory.reduction.toFixed(2)}x | ${r.memory.weightsReduction.toFixed(2)}x | ${r.memory.avgBitsWeights.toFixed(2)} / ${r.memory.avgBitsActivations.toFixed(2)} | ${r.search.evaluations} | ${r.search.seconds.toFixed(0)} | ${r.search.fp32Passes?.toFixed(0) ?? '-'} |`;
      // Rows also go to stderr as they finish: a full table takes long.
      process.stderr.write(`${row}\n`);
      lines.push(row);
    }
  }
  lines.push('');
  return lines;
}
