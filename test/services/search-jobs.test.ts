/**
 * The quantize job end to end on a small real model (mnist-8, committed MNIST images):
 * typed progress events, cancellation, resume from the checkpoint to the same result as an
 * uninterrupted run, SIGKILL at a random point and resume, and bad inputs.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { JobProgress } from '../../api/contract.js';
import { JobManager } from '../../services/jobs.js';
import { LEGACY_MAX_SCALE, MAX_SCALE } from '../../native-workers/engine/passes/equalize.js';
import { quantize } from '../../services/quantize.js';
import { closePools } from '../../services/pool.js';
import type { RunReport } from '../../services/runs.js';
import { cliEntry, smallSearch } from '../helpers/fixtures.js';
import { runCli } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-search-'));
const cacheDir = join(tmp, 'cache');
const base = smallSearch(cacheDir);
afterAll(() => closePools());

const essence = (r: RunReport) => ({
  structures: r.structures.map((s) => [s.tensor, s.bits, s.frac]),
  quant: r.quant,
  memory: r.memory,
  evaluations: r.search.evaluations,
});

let reference: RunReport;

describe('quantize job with a budget', () => {
  it('runs to the end with typed progress, within budget, smaller than 8 bits', async () => {
    const jobs = new JobManager();
    const events: JobProgress[] = [];
    jobs.subscribe((e) => {
      if (e.type === 'progress') events.push(e.progress);
    });
    const job = jobs.start('quantize', { ...base, out: join(tmp, 'ref') });
    reference = await job.result;
    expect(job.status).toBe('done');
    expect(new Set(events.map((e) => e.stage))).toEqual(new Set(['statistics', 'teacher', 'search', 'evaluation']));
    const search = events.find((e) => e.stage === 'search' && e.search)!.search!;
    expect(Object.keys(search.bits).length).toBe(10);
    expect(typeof search.drop).toBe('number');
    expect(reference.memory.reduction).toBeGreaterThan(4);
    expect(reference.search.evaluations).toBeGreaterThan(5);
    expect(reference.search.fp32Passes).toBeGreaterThan(0);
    const lines = readFileSync(join(tmp, 'ref', 'trajectory.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThan(10);
    expect(lines.some((l) => l.accepted === false)).toBe(true);
    expect(lines.map((l) => l.step)).toEqual(lines.map((_, i) => i));
  }, 240_000);

  it('cancels, then resumes from its checkpoint to the same result', async () => {
    const jobs = new JobManager();
    const out = join(tmp, 'cancelled');
    const job = jobs.start('quantize', { ...base, out });
    let seen = 0;
    jobs.subscribe((e) => {
      if (e.type === 'step' && ++seen === 8) job.cancel();
    });
    await expect(job.result).rejects.toThrow(/cancelled/);
    expect(job.status).toBe('cancelled');
    expect(existsSync(join(out, 'checkpoint.json'))).toBe(true);
    expect(existsSync(join(out, 'report.json'))).toBe(false);
    const resumed = await quantize({ ...base, out });
    expect(essence(resumed)).toEqual(essence(reference));
  }, 240_000);

  it('survives SIGKILL at an arbitrary step: the same command resumes to the same result', async () => {
    const out = join(tmp, 'killed');
    const args = [
      'quantize',
      '--model',
      base.modelPath,
      '--data',
      base.dataPath,
      '--budget',
      '2',
      '--calib',
      '60',
      '--seed',
      '3',
      '--slice',
      '20',
      '--out',
      out,
      '--json',
    ];
    const child = spawn(process.execPath, [cliEntry, ...args], { env: { ...process.env, FXPQ_CACHE_DIR: cacheDir } });
    const trajectory = join(out, 'trajectory.jsonl');
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const lines = existsSync(trajectory) ? readFileSync(trajectory, 'utf8').split('\n').length : 0;
        if (lines > 13) {
          clearInterval(timer);
          child.kill('SIGKILL');
          resolve();
        }
      }, 20);
    });
    await new Promise((r) => child.on('close', r));
    expect(existsSync(join(out, 'report.json'))).toBe(false);
    const again = await runCli(args, { env: { FXPQ_CACHE_DIR: cacheDir } });
    expect(again.code).toBe(0);
    expect(essence(JSON.parse(again.stdout) as RunReport)).toEqual(essence(reference));
    const lines = readFileSync(trajectory, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.step)).toEqual(lines.map((_, i) => i));
  }, 240_000);

  it('offers the previous checkpoint or a fresh start when the latest checkpoint is damaged', async () => {
    const out = join(tmp, 'damaged');
    await expect(quantize({ ...base, out, stopAfterCheckpoints: 6 })).rejects.toThrow(/stopped at a checkpoint/);
    const checkpoint = join(out, 'checkpoint.json');
    writeFileSync(checkpoint, readFileSync(checkpoint, 'utf8').slice(0, 40));
    const previousStep = (
      JSON.parse(readFileSync(join(out, 'checkpoint.prev.json'), 'utf8')) as { state: { steps: number } }
    ).state.steps;
    await expect(quantize({ ...base, out })).rejects.toThrow(
      `${checkpoint} (a search checkpoint) is not valid JSON, perhaps cut short. Resume from the last good checkpoint (step ${previousStep}, checkpoint.prev.json) with --previous-checkpoint, or start the run over with --restart.`,
    );
    // A line torn by a crash mid-write is dropped on resume, not read.
    appendFileSync(join(out, 'trajectory.jsonl'), '{"step": 99, "accep');
    expect(essence(await quantize({ ...base, out, checkpoint: 'previous' }))).toEqual(essence(reference));
    expect(essence(await quantize({ ...base, out, checkpoint: 'restart' }))).toEqual(essence(reference));
  }, 240_000);

  it("finishes a run checkpointed before the final check had its own z with the steps' z and its equalization limit, and refuses --final-z for it", async () => {
    const out = join(tmp, 'legacy');
    await expect(quantize({ ...base, out, stopAfterCheckpoints: 6 })).rejects.toThrow(/stopped at a checkpoint/);
    // What such a run's checkpoint holds: an identity without finalZ or equalization's limit.
    for (const name of ['checkpoint.json', 'checkpoint.prev.json']) {
      const file = join(out, name);
      const c = JSON.parse(readFileSync(file, 'utf8')) as { identity: Record<string, unknown> };
      expect(c.identity['equalizeMaxScale']).toBe(MAX_SCALE);
      delete c.identity['finalZ'];
      delete c.identity['equalizeMaxScale'];
      writeFileSync(file, JSON.stringify(c));
    }
    await expect(quantize({ ...base, out, finalZ: 3 })).rejects.toThrow(
      /started before the final check had its own z; resume it without --final-z/,
    );
    const report = await quantize({ ...base, out });
    expect(report.search.finalCheck).toMatchObject({ z: 1, budget: 2, within: true });
    // Imported as it started, and recorded so: evaluate and export import it the same way.
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'))).toMatchObject({
      equalizeMaxScale: LEGACY_MAX_SCALE,
    });
  }, 240_000);

  it('explains bad inputs', async () => {
    await expect(quantize({ ...base, out: join(tmp, 'x'), modelPath: join(tmp, 'missing.onnx') })).rejects.toThrow(
      /missing\.onnx does not exist/,
    );
    await expect(quantize({ ...base, out: join(tmp, 'ref'), budget: 3 })).rejects.toThrow(
      /holds a run started with other inputs or options/,
    );
    const flat = join(tmp, 'unlabelled');
    mkdirSync(flat, { recursive: true });
    writeFileSync(join(flat, 'a.png'), readFileSync(join(base.dataPath, '0', '00003.png')));
    await expect(quantize({ ...base, out: join(tmp, 'y'), dataPath: flat })).rejects.toThrow(
      /no class sub-folders.*layout is unknown/,
    );
    const usage = await runCli([
      'quantize',
      '--model',
      base.modelPath,
      '--data',
      base.dataPath,
      '--out',
      join(tmp, 'z'),
      '--budget',
      '-1',
    ]);
    expect(usage.code).toBe(2);
  });
});
