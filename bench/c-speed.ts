/**
 * `npm run bench -- c [RUN | EXPORT ...]`: speed and memory of the generated C, side by side in
 * one run, on run folders (default: fmnist_resnet20 on the demo images and, when the shared fixtures are
 * there, resnet8_mlperf_tiny_cifar10 on its CIFAR-10 images, both at uniform 8 bits, made here).
 * Each run is exported twice, weights packed (the default) and bytes (`--c-weights bytes`); each
 * export is timed as gcc -O2 builds it and, as the ablation of the vectorized loops, with
 * -fno-tree-vectorize. A figure: fxpq_run on one input repeated for at least a second, ms per
 * image and GMAC/s on one core; the variants take turns over FXPQ_BENCH_ROUNDS rounds (default 3),
 * median (min-max). An export folder given instead of a run is timed as it is (a before/after
 * against an export made by an older version).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { exportRun } from '../services/export.js';
import { quantize } from '../services/quantize.js';
import { demoInputs } from '../services/demo.js';
import { loadModelFile } from '../services/models.js';
import { readRunConfig } from '../services/runs.js';
import { inspectModel } from '../native-workers/engine/analysis/inspect.js';
import type { ExportResult } from '../api/contract.js';

const TIMING_MAIN = `#include <stdio.h>
#include <time.h>
#include "model.h"
static int32_t in[FXPQ_INPUT_SIZE], out[FXPQ_OUTPUT_SIZE];
int main(void) {
  int i, n = 0; clock_t t0 = clock(), t;
  for (i = 0; i < FXPQ_INPUT_SIZE; i++) in[i] = (i * 37) % 100;
  do { fxpq_run(in, out); n++; t = clock(); } while ((double)(t - t0) < 1.0 * CLOCKS_PER_SEC || n < 3);
  printf("%f\\n", 1000.0 * (double)(t - t0) / CLOCKS_PER_SEC / n);
  return out[0] == 123456789;
}
`;

/** Builds the timing program beside `bin` (never inside the export folder, whose c/*.c must stay one program). */
function build(cDir: string, flags: string[], bin: string): void {
  const main = `${bin}-main.c`;
  writeFileSync(main, TIMING_MAIN);
  execFileSync('gcc', ['-std=c99', '-O2', ...flags, `-I${cDir}`, join(cDir, 'model.c'), main, '-o', bin]);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function defaultRuns(tmp: string): Promise<string[]> {
  const demo = demoInputs();
  const shared = join(import.meta.dirname, '..', '..', 'shared', 'fixtures');
  const specs: { name: string; model: string; data: string; classes?: string }[] = [
    { name: 'fmnist_resnet20', model: demo.model, data: demo.images, classes: demo.classes },
  ];
  if (existsSync(join(shared, 'models', 'resnet8_mlperf_tiny_cifar10.onnx')))
    specs.push({
      name: 'resnet8_mlperf_tiny_cifar10',
      model: join(shared, 'models', 'resnet8_mlperf_tiny_cifar10.onnx'),
      data: join(shared, 'cifar10'), // classes from the model's sidecar
    });
  const runs: string[] = [];
  for (const s of specs) {
    const out = join(tmp, s.name);
    // Rounded to nearest: the C's speed does not depend on which integers the weights get.
    await quantize({
      modelPath: s.model,
      dataPath: s.data,
      classes: s.classes,
      out,
      uniform: 8,
      rounding: 'nearest',
      calib: 50,
      eval: 50,
    });
    runs.push(out);
  }
  return runs;
}

interface Variant {
  label: string;
  bin: string;
  flash: number;
  ram: string;
}

const bytesText = (n: number): string => n.toLocaleString('en-US');

/** The four variants of a run folder: exported packed and bytes, each built with and without vectorization. */
async function runVariants(run: string, tmp: string): Promise<Variant[]> {
  const variants: Variant[] = [];
  for (const weights of ['packed', 'bytes'] as const) {
    const out = join(tmp, `export-${basename(run)}-${weights}`);
    const c = (await exportRun({ run, out, formats: ['c'], cWeights: weights })).c!;
    const ram = `${bytesText(c.arenaBytes + c.scratchBytes!)} (${bytesText(c.arenaBytes)} + ${bytesText(c.scratchBytes!)})`;
    for (const flags of [[], ['-fno-tree-vectorize']]) {
      const bin = join(out, `t${flags.length}`);
      build(join(out, 'c'), flags, bin);
      const label = `${weights}${weights === 'packed' ? ' (default)' : ''}${flags.length ? ', -fno-tree-vectorize' : ''}`;
      variants.push({ label, bin, flash: c.weightsBytes, ram });
    }
  }
  return variants;
}

/** An export folder made earlier (e.g. by an older FxPQ), timed as it is, for a before/after in one run. */
function exportVariant(dir: string, tmp: string): Variant {
  const c = (JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as { export: ExportResult }).export.c!;
  const bin = join(tmp, `t-${basename(dir)}`);
  build(join(dir, 'c'), [], bin);
  const ram =
    c.scratchBytes === undefined ? `${bytesText(c.arenaBytes)} (arena)` : bytesText(c.arenaBytes + c.scratchBytes);
  return { label: `${basename(dir)} (export as given, ${c.weights})`, bin, flash: c.weightsBytes, ram };
}

/**
 * Arguments: run folders (exported here) and export folders (timed as they are); rows of the
 * same model are timed in the same rounds.
 */
export async function benchC(args: string[]): Promise<string[]> {
  const tmp = mkdtempSync(join(tmpdir(), 'fxpq-bench-c-'));
  const folders = args.length > 0 ? args : await defaultRuns(tmp);
  const rounds = Number(process.env['FXPQ_BENCH_ROUNDS'] ?? 3);
  const byModel = new Map<string, { macs: number; variants: Variant[] }>();
  for (const dir of folders) {
    const isExport = existsSync(join(dir, 'c', 'model.c'));
    const modelPath = isExport
      ? (JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as { model: { path: string } }).model.path
      : (await readRunConfig(dir)).model.path;
    const name = basename(modelPath, '.onnx');
    if (!byModel.has(name))
      byModel.set(name, { macs: inspectModel(await loadModelFile(modelPath)).totals.macs, variants: [] });
    byModel.get(name)!.variants.push(...(isExport ? [exportVariant(dir, tmp)] : await runVariants(dir, tmp)));
  }
  const rows: string[] = [];
  for (const [name, { macs, variants }] of byModel) {
    const times = variants.map(() => [] as number[]);
    for (let r = 0; r < rounds; r++)
      for (let k = 0; k < variants.length; k++) {
        const i = (r + k) % variants.length;
        times[i]!.push(Number(execFileSync(variants[i]!.bin).toString().trim()));
      }
    variants.forEach((v, i) => {
      const t = times[i]!;
      const ms = median(t);
      rows.push(
        `| ${name} | ${v.label} | ${ms.toFixed(2)} (${Math.min(...t).toFixed(2)}-${Math.max(...t).toFixed(2)}) | ${(macs / ms / 1e6).toFixed(2)} | ${bytesText(v.flash)} | ${v.ram} |`,
      );
    });
  }
  return [
    `## Generated C (gcc -O2, one core, ${rounds} interleaved rounds, median (min-max))`,
    '',
    '| model | weights, build | ms per image | GMAC/s | weights flash (B) | RAM (B): arena + scratch |',
    '|---|---|---:|---:|---:|---:|',
    ...rows,
    '',
  ];
}
