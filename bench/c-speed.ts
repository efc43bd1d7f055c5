/**
 * `npm run bench -- c [RUN]`: speed and memory of the generated C, side by side in one run, on a
 * run folder (default: fmnist_resnet20 at uniform 8 bits on the demo images, made here):
 *   - bit loop: the previous unpacking (a loop over every bit of every weight), same code otherwise;
 *   - packed: weights bit-packed, each gathered from its bytes and shifted (the default);
 *   - bytes: one C integer per weight (`--c-weights bytes`), no unpacking.
 * Each variant: gcc -O2, fxpq_run on a golden input repeated for at least a second, ms per image.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportRun } from '../services/export.js';
import { quantize } from '../services/quantize.js';
import { demoInputs } from '../services/demo.js';

const OLD_UNPACK = `static int32_t fxpq_unpack(const uint8_t *p, uint32_t i, int bits, int is_signed) {
  uint32_t bit = i * (uint32_t)bits;
  uint32_t v = 0;
  int k;
  for (k = 0; k < bits; k++, bit++) v |= (uint32_t)((p[bit >> 3] >> (bit & 7)) & 1u) << k;
  if (is_signed && bits < 32 && (v >> (bits - 1)) & 1u) return (int32_t)((int64_t)v - ((int64_t)1 << bits));
  return (int32_t)v;
}`;

const TIMING_MAIN = `#include <stdio.h>
#include <time.h>
#include "model.h"
static int32_t in[FXPQ_INPUT_SIZE], out[FXPQ_OUTPUT_SIZE];
int main(void) {
  int i, n = 0; clock_t t0 = clock(), t;
  for (i = 0; i < FXPQ_INPUT_SIZE; i++) in[i] = (i * 37) % 200;
  do { fxpq_run(in, out); n++; t = clock(); } while ((double)(t - t0) < 1.0 * CLOCKS_PER_SEC || n < 3);
  printf("%f\\n", 1000.0 * (double)(t - t0) / CLOCKS_PER_SEC / n);
  return out[0] == 123456789;
}
`;

function timeVariant(dir: string, source: string): number {
  writeFileSync(join(dir, 'model.c'), source);
  writeFileSync(join(dir, 'time_main.c'), TIMING_MAIN);
  execFileSync('gcc', ['-std=c99', '-O2', join(dir, 'model.c'), join(dir, 'time_main.c'), '-o', join(dir, 't')]);
  return Number(execFileSync(join(dir, 't')).toString().trim());
}

export async function benchC(runArg?: string): Promise<string[]> {
  const tmp = mkdtempSync(join(tmpdir(), 'fxpq-bench-c-'));
  let run = runArg;
  if (!run) {
    const inputs = demoInputs();
    run = join(tmp, 'run');
    await quantize({
      modelPath: inputs.model,
      dataPath: inputs.images,
      classes: inputs.classes,
      out: run,
      uniform: 8,
      calib: 50,
      eval: 50,
    });
  }
  const rows: string[] = [];
  let baseline = 0;
  for (const weights of ['packed', 'bytes'] as const) {
    const out = join(tmp, `export-${weights}`);
    const result = await exportRun({ run, out, formats: ['c'], cWeights: weights });
    const source = readFileSync(join(out, 'c', 'model.c'), 'utf8');
    const c = result.c!;
    if (weights === 'packed') {
      const old = source.replace(/static int32_t fxpq_unpack\([\s\S]*?\n}\n/, `${OLD_UNPACK}\n`);
      baseline = timeVariant(join(out, 'c'), old);
      rows.push(
        `| bit loop (before) | ${baseline.toFixed(2)} | 1.00x | ${c.weightsBytes.toLocaleString('en-US')} | ${c.unplannedBytes.toLocaleString('en-US')} (int32 per tensor) |`,
      );
    }
    const ms = timeVariant(join(out, 'c'), source);
    rows.push(
      `| ${weights}${weights === 'packed' ? ' (default)' : ''} | ${ms.toFixed(2)} | ${(baseline / ms).toFixed(2)}x | ${c.weightsBytes.toLocaleString('en-US')} | ${c.arenaBytes.toLocaleString('en-US')} (arena) |`,
    );
  }
  return [
    `## Generated C (gcc -O2, this machine; run ${run})`,
    '',
    '| weights | ms per image | speed vs bit loop | weights flash (B) | activation RAM (B) |',
    '|---|---:|---:|---:|---:|',
    ...rows,
    '',
  ];
}
