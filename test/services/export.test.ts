/**
 * Exports of every fixture model, at uniform 8 bits and at a random mixed 2..8-bit
 * assignment: the QDQ model in onnxruntime, the .fxpq package read back, the C compiled with
 * gcc exactly as contracts.md says; and the bad inputs an export can meet.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planArena } from '../../native-workers/engine/export/c-emitter.js';
import * as ort from 'onnxruntime-node';
import { exportRun } from '../../services/export.js';
import { quantize } from '../../services/quantize.js';
import { closePools } from '../../services/pool.js';
import { readFxpqPackage } from '../../native-workers/engine/export/fxpq-package.js';
import { runImage } from '../../native-workers/engine/fixedpoint/int-executor.js';
import { loadModelFile } from '../../services/models.js';
import { buildPlan } from '../../native-workers/engine/fixedpoint/plan.js';
import { formatFor } from '../../native-workers/engine/fixedpoint/assignment.js';
import { seededRandom } from '../../native-workers/engine/data/split.js';
import { topK } from '../../native-workers/engine/data/metrics.js';
import type { IntProgram } from '../../native-workers/engine/fixedpoint/program.js';
import { ALL_MODELS, hasShared, modelPath, repoRoot, sharedModels, smallUniform } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-export-'));
const cacheDir = join(tmp, 'cache');
afterAll(() => closePools());

const DATA: Record<string, string> = {
  fmnist_resnet20: join(repoRoot, 'test/fixtures/fashion-mnist'),
  'mnist-8': join(repoRoot, 'test/fixtures/mnist'),
};
function dataFor(name: string): string {
  return (
    DATA[name] ??
    join(sharedModels, (JSON.parse(readFileSync(join(sharedModels, `${name}.json`), 'utf8')) as { data: string }).data)
  );
}

/** A finished uniform-8 run, small splits. */
async function uniformRun(name: string): Promise<string> {
  const out = join(tmp, `run-${name}`);
  if (!existsSync(join(out, 'report.json'))) {
    await quantize({
      modelPath: modelPath(name)!,
      dataPath: dataFor(name),
      classes: name.startsWith('mobilenet') ? 'imagenet1k' : undefined,
      out,
      // Rounded to nearest (an optimized run's export is tested in optimized-rounding.test.ts).
      ...smallUniform(cacheDir),
    });
  }
  return out;
}

/** The same run with every structure at a random 2..8-bit format. */
async function mixedRun(name: string): Promise<string> {
  const base = await uniformRun(name);
  const out = join(tmp, `mixed-${name}`);
  execFileSync('cp', ['-r', base, out]);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  const plan = buildPlan((await loadModelFile(modelPath(name)!)).canonical, {
    inputNonNegative: config.inputNonNegative,
  });
  const rand = seededRandom(11);
  for (const s of plan.structures) {
    const f = config.assignment[s.id];
    const bits = 2 + Math.floor(rand() * 7);
    config.assignment[s.id] = {
      ...formatFor(s, bits, 2 ** (f.bits - 1 - (s.signed ? 1 : 0) - f.frac + 1)),
      frac: f.frac - (f.bits - bits) + Math.floor(rand() * 3),
    };
  }
  writeFileSync(join(out, 'config.json'), JSON.stringify(config));
  return out;
}

function compileAndRunC(dir: string): string {
  const bin = join(dir, 't');
  execFileSync('sh', ['-c', `gcc -std=c99 -Wall -Wextra -Werror -O2 ${join(dir, 'c')}/*.c -o ${bin} && ${bin}`]);
  return execFileSync(bin, { encoding: 'utf8' });
}

/** The evaluation images of an export's c/eval/inputs.bin, decoded as its eval_main.c does. */
function readEvalInputs(file: string, program: IntProgram): Int32Array[] {
  const { bits, signed } = program.input.format;
  const width = bits <= 8 ? 1 : bits <= 16 ? 2 : 4;
  const size = program.input.shape.reduce((a, b) => a * b, 1);
  const bytes = readFileSync(file);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const read = (at: number): number =>
    width === 1
      ? signed
        ? view.getInt8(at)
        : view.getUint8(at)
      : width === 2
        ? signed
          ? view.getInt16(at, true)
          : view.getUint16(at, true)
        : view.getInt32(at, true);
  return Array.from({ length: view.byteLength / (size * width) }, (_, n) =>
    Int32Array.from({ length: size }, (_, i) => read((n * size + i) * width)),
  );
}

/** Per-image argmax printed by `make eval` in an export's c/ folder. */
function evalArgmax(cDir: string): number[] {
  const stdout = execFileSync('make', ['-s', '-C', cDir, 'eval'], { encoding: 'utf8' });
  expect(stdout).toMatch(/argmax equal to the integer executor on (\d+)\/\1 images/);
  return [...stdout.matchAll(/^image \d+: label -?\d+, argmax (\d+)$/gm)].map((m) => Number(m[1]));
}

describe.each(ALL_MODELS)('export of %s', (name) => {
  const available = modelPath(name) !== undefined && (hasShared || name in DATA);
  it.skipIf(!available)(
    'writes all three formats, verified, at uniform 8 and at mixed 2..8 bits',
    async () => {
      const mixed = await mixedRun(name);
      for (const run of [await uniformRun(name), mixed]) {
        const out = join(tmp, `export-${name}-${run.endsWith(name) && run.includes('mixed') ? 'mixed' : 'u8'}`);
        const r = await exportRun({ run, out, cacheDir });
        for (const f of [
          'model.qdq.onnx',
          'model.fxpq',
          'c/model.h',
          'c/model.c',
          'c/test_main.c',
          'c/Makefile',
          'c/eval/eval_main.c',
          'c/eval/inputs.bin',
          'c/eval/labels.txt',
          'report.json',
          'report.html',
        ])
          expect(existsSync(join(out, f)), f).toBe(true);
        expect(r.qdq!.top1Agreement).toBeGreaterThanOrEqual(0.999);
        expect(r.fxpq!.bytes - r.fxpq!.goldenBytes).toBeLessThanOrEqual(r.fxpq!.expectedBytes * 1.02);
        // The QDQ model runs in onnxruntime as a plain model.
        const session = await ort.InferenceSession.create(join(out, 'model.qdq.onnx'));
        expect(session.outputNames).toEqual(['logits']);
        await session.release();
        // The package reads back and reproduces its golden vectors bit for bit.
        const pkg = readFxpqPackage(new Uint8Array(readFileSync(join(out, 'model.fxpq'))), 'model.fxpq');
        pkg.golden.inputs.forEach((input, v) =>
          expect(Array.from(runImage(pkg.program, input))).toEqual(Array.from(pkg.golden.outputs[v]!)),
        );
        // The C builds with the contract's command alone and passes its golden vectors; no float anywhere.
        expect(compileAndRunC(out)).toMatch(/golden vectors, 0 mismatching outputs/);
        const code = readFileSync(join(out, 'c', 'model.c'), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
        expect(code).not.toMatch(/\b(float|double|malloc|free)\b|math\.h/);
        const html = readFileSync(join(out, 'report.html'), 'utf8');
        expect(html).toMatch(/<svg[\s\S]*<\/svg>/);
        expect(html).toMatch(/paired standard error of the drop \(\d+ images lost, \d+ gained\)/);
        // `make eval` runs every evaluation image through the C; each argmax equals the integer executor's.
        const inputs = readEvalInputs(join(out, 'c', 'eval', 'inputs.bin'), pkg.program);
        expect(evalArgmax(join(out, 'c'))).toEqual(
          inputs.map((x) => topK(Float64Array.from(runImage(pkg.program, x)), 1)[0]),
        );
        expect(r.c!.evaluation).toMatchObject({ images: inputs.length, agree: inputs.length });
        expect(r.c!.text).toBeGreaterThan(0);
        // Activations in one arena planned by liveness: far below one int32 buffer per tensor.
        // RAM: the arena plus the layers' scratch (staged input, weight rows, columns), nothing else
        // but the alignment gcc gives each static array (at most 32 bytes each, a handful of arrays).
        const planned = r.c!.arenaBytes + r.c!.scratchBytes!;
        expect(r.c!.bss).toBeGreaterThanOrEqual(planned);
        expect(r.c!.bss).toBeLessThan(planned + 32 * 8);
        expect(r.c!.arenaBytes).toBeLessThan(r.c!.unplannedBytes / 2);
        // One element width at uniform 8 bits: the arena within 10 % of the liveness lower bound.
        expect(r.c!.arenaBytes).toBeGreaterThanOrEqual(r.c!.liveBytesBound!);
        if (!run.includes('mixed')) expect(r.c!.arenaBytes).toBeLessThanOrEqual(1.1 * r.c!.liveBytesBound!);
        expect(readFileSync(join(out, 'report.html'), 'utf8')).toMatch(/activation arena \(RAM, planned by liveness\)/);
      }
      // Byte-aligned weights (no unpacking): the same golden vectors, bit-exact.
      const bytesOut = join(tmp, `export-${name}-bytes`);
      const bytes = await exportRun({
        run: mixed,
        out: bytesOut,
        formats: ['c'],
        cWeights: 'bytes',
        cacheDir,
      });
      expect(bytes.c!.weights).toBe('bytes');
      expect(compileAndRunC(bytesOut)).toMatch(/golden vectors, 0 mismatching outputs/);
      expect(readFileSync(join(bytesOut, 'c', 'model.c'), 'utf8')).not.toContain('fxpq_unpack');
    },
    1_200_000,
  );
});

describe('C export above 8 bits', () => {
  it('is bit-exact at uniform 12 bits: 16-bit staged inputs and weight rows, int64 accumulators', async () => {
    const run = join(tmp, 'run-r20-u12');
    const report = await quantize({
      modelPath: modelPath('fmnist_resnet20')!,
      dataPath: DATA['fmnist_resnet20']!,
      out: run,
      uniform: 12,
      calib: 10,
      eval: 10,
      seed: 1,
      cacheDir,
    });
    // Nothing at 8 bits or less to round: the run says it rounded to nearest, and keeps no integers.
    expect(report.rounding?.method).toBe('nearest');
    expect(existsSync(join(run, 'rounding'))).toBe(false);
    const out = join(tmp, 'export-r20-u12');
    const r = await exportRun({ run, out, formats: ['c', 'fxpq'], cacheDir });
    expect(compileAndRunC(out)).toMatch(/golden vectors, 0 mismatching outputs/);
    const code = readFileSync(join(out, 'c', 'model.c'), 'utf8');
    expect(code).toMatch(/int64_t acc = init;/);
    expect(code).toMatch(/static int16_t fxpq_input16\[/);
    expect(code).toMatch(/fxpq_unpack_run\([^;]*, 12, 1, ws\)/);
    const pkg = readFxpqPackage(new Uint8Array(readFileSync(join(out, 'model.fxpq'))), 'model.fxpq');
    const inputs = readEvalInputs(join(out, 'c', 'eval', 'inputs.bin'), pkg.program);
    expect(evalArgmax(join(out, 'c'))).toEqual(
      inputs.map((x) => topK(Float64Array.from(runImage(pkg.program, x)), 1)[0]),
    );
    expect(r.c!.evaluation).toMatchObject({ images: 10, agree: 10 });
  }, 300_000);
});

describe('C arena plan', () => {
  it('never overlaps two tensors alive at the same node, and reuses memory of dead ones', () => {
    let seed = 7;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let trial = 0; trial < 200; trial++) {
      const tensors = Array.from({ length: 2 + Math.floor(rand() * 12) }, (_, i) => {
        const start = Math.floor(rand() * 10);
        return { name: `t${i}`, bytes: 1 + Math.floor(rand() * 1000), start, end: start + Math.floor(rand() * 4) };
      });
      const { offsets, peak } = planArena(tensors);
      for (const a of tensors)
        for (const b of tensors) {
          if (a === b || a.end < b.start || b.end < a.start) continue;
          const [ao, bo] = [offsets.get(a.name)!, offsets.get(b.name)!];
          expect(ao + a.bytes <= bo || bo + b.bytes <= ao).toBe(true);
        }
      for (const t of tensors) expect(offsets.get(t.name)! + t.bytes).toBeLessThanOrEqual(peak);
      expect(peak).toBeLessThanOrEqual(tensors.reduce((n, t) => n + Math.ceil(t.bytes / 4) * 4, 0));
    }
  });
});

describe('export bad inputs', () => {
  it('explains an incomplete run, a run from another model, and an unwritable output folder', async () => {
    const run = await uniformRun('mnist-8');
    const incomplete = join(tmp, 'incomplete');
    execFileSync('cp', ['-r', run, incomplete]);
    rmSync(join(incomplete, 'report.json'));
    await expect(exportRun({ run: incomplete, out: join(tmp, 'e1'), cacheDir })).rejects.toThrow(
      /incomplete: report\.json is missing/,
    );
    await expect(exportRun({ run: join(tmp, 'nothing'), out: join(tmp, 'e1'), cacheDir })).rejects.toThrow(
      /is not a finished FxPQ run/,
    );

    const other = join(tmp, 'other-model');
    execFileSync('cp', ['-r', run, other]);
    const config = JSON.parse(readFileSync(join(other, 'config.json'), 'utf8'));
    config.model.path = modelPath('fmnist_resnet20');
    writeFileSync(join(other, 'config.json'), JSON.stringify(config));
    await expect(exportRun({ run: other, out: join(tmp, 'e2'), cacheDir })).rejects.toThrow(
      /is not the model .* was made from/,
    );

    const blocker = join(tmp, 'a-file');
    writeFileSync(blocker, 'x');
    await expect(exportRun({ run, out: join(blocker, 'out'), cacheDir })).rejects.toThrow(
      /cannot be (written|read or written)/,
    );
    expect(existsSync(join(tmp, 'e1'))).toBe(false);
  }, 120_000);
});
