/**
 * The jobs backbone the app stands on: engine work off the main thread (proved by the engine's
 * entry points, which record the thread they ran on and refuse the main thread here), cancel
 * reaching the worker within one evaluation, a crashed worker failing only its job, ordered
 * events with a late subscriber's snapshot, and the queue policy.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppEvent, JobEvent } from '../../api/contract.js';
import { drainEngineCalls, refuseEngineOnMainThread } from '../../services/engine-thread.js';
import { JobManager } from '../../services/jobs.js';
import { closePools } from '../../services/pool.js';
import { FxpqError } from '../../native-workers/engine/errors.js';
import { exportLockPath, takeLock } from '../../services/file-lock.js';
import { lockRunFolder, RUN_LOCK } from '../../services/run-folder.js';
import { smallSearch } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-jobs-'));
const cacheDir = join(tmp, 'cache');
const search = smallSearch(cacheDir);

beforeAll(() => refuseEngineOnMainThread());
afterAll(async () => {
  refuseEngineOnMainThread(false);
  await closePools();
});

describe('jobs on the pool', () => {
  it('runs the search (with distillation and bias correction), evaluation and export off the main thread', async () => {
    const jobs = new JobManager();
    const out = join(tmp, 'run');
    const quantize = jobs.start('quantize', { ...search, out });
    await quantize.result;
    const evaluate = jobs.start('evaluate', { ...search, run: out, engine: 'int', split: 'eval' });
    await evaluate.result;
    const exported = jobs.start('export', { run: out, out: join(tmp, 'export'), formats: ['qdq', 'fxpq'], cacheDir });
    await exported.result;
    const entries = new Set(
      [...quantize.engineCalls, ...evaluate.engineCalls, ...exported.engineCalls].map((c) => c.entry),
    );
    for (const entry of [
      'statistics',
      'teacher',
      'search-reduce',
      'search-distill',
      'bias-correction',
      'evaluation',
      'export',
    ])
      expect(entries).toContain(entry);
    for (const c of [...quantize.engineCalls, ...evaluate.engineCalls, ...exported.engineCalls])
      expect(c.mainThread).toBe(false);
    // Nothing of the engine ran here (and it would have thrown: the main thread refuses it).
    expect(drainEngineCalls()).toEqual([]);
    expect(existsSync(join(tmp, 'export', 'model.qdq.onnx'))).toBe(true);
  }, 240_000);

  it('cancel reaches the worker: no more than one evaluation starts after it', async () => {
    const jobs = new JobManager();
    const out = join(tmp, 'cancel');
    const job = jobs.start('quantize', { ...search, out });
    let cancelAt = 0;
    let steps = 0;
    jobs.subscribe((e) => {
      if (e.type === 'step' && ++steps === 6) {
        cancelAt = Date.now();
        job.cancel();
      }
    });
    await expect(job.result).rejects.toThrow(/cancelled/);
    expect(job.status).toBe('cancelled');
    const after = job.engineCalls.filter((c) => c.entry.startsWith('search-') && c.at > cancelAt);
    expect(after.length).toBeLessThanOrEqual(1);
    // The checkpoint is kept, so the run can resume.
    expect(existsSync(join(out, 'checkpoint.json'))).toBe(true);
  }, 240_000);

  it('a crashed worker fails its own job with a clear error, and the pool goes on', async () => {
    const jobs = new JobManager();
    await expect(jobs.call('selftest', { exit: 3 })).rejects.toThrow(/worker running this job stopped unexpectedly/);
    await expect(jobs.call('selftest', {})).resolves.toEqual({ ok: true });
    const report = await jobs.call('inspect', { path: search.modelPath });
    expect(report.totals.params).toBe(5994);
  });

  it('releases the run lock of a worker that ended by force, which names this live process and would never go stale', async () => {
    const jobs = new JobManager();
    const out = mkdtempSync(join(tmpdir(), 'fxpq-locked-run-'));
    await lockRunFolder(out);
    expect(existsSync(join(out, RUN_LOCK))).toBe(true);
    await expect(jobs.call('selftest', { exit: 3, out } as never)).rejects.toThrow(/stopped unexpectedly/);
    expect(existsSync(join(out, RUN_LOCK))).toBe(false);
    // The same for an export's lock, which lives beside its folder.
    const exportOut = join(out, 'export');
    const exportLock = await takeLock(
      exportLockPath(exportOut),
      'fxpq export',
      () => new FxpqError('held', 'io'),
      (e) => e as Error,
    );
    expect(existsSync(exportLockPath(exportOut))).toBe(true);
    await expect(jobs.call('selftest', { exit: 3, out: exportOut } as never)).rejects.toThrow(/stopped unexpectedly/);
    expect(existsSync(exportLockPath(exportOut))).toBe(false);
    await exportLock.release();
  });

  it('delivers events in order, and a late subscriber gets the current state first', async () => {
    const jobs = new JobManager();
    const early: AppEvent[] = [];
    jobs.subscribe((e) => early.push(e));
    const job = jobs.start('quantize', { ...search, out: join(tmp, 'events') }, { title: 'events' });
    let late: AppEvent[] | undefined;
    let stepsBeforeLate = 0;
    jobs.subscribe((e) => {
      if (e.type === 'step' && ++stepsBeforeLate === 5 && !late) {
        late = [];
        jobs.subscribe((x) => late!.push(x));
      }
    });
    await job.result;
    const seqs = early.slice(1).map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
    const types = early.slice(1).map((e) => e.type);
    expect(types[0]).toBe('queued');
    expect(types[1]).toBe('started');
    expect(types.at(-1)).toBe('finished');
    expect(types).toContain('progress');
    expect(types).toContain('step');
    // The late subscriber: a snapshot with the running job and its steps so far, then only newer events.
    const snapshot = late![0]!;
    expect(snapshot.type).toBe('snapshot');
    if (snapshot.type !== 'snapshot') return;
    const mine = snapshot.jobs.find((j) => j.id === job.id)!;
    expect(mine.status).toBe('running');
    expect(mine.steps.length).toBeGreaterThanOrEqual(5);
    expect(mine.progress?.stage).toBe('search');
    const rest = late!.slice(1) as JobEvent[];
    expect(rest.every((e) => e.seq > snapshot.seq)).toBe(true);
    expect(rest.at(-1)!.type).toBe('finished');
    // Steps in the snapshot plus the later step events are the whole trajectory, each once.
    const all = [
      ...mine.steps.map((s) => s.step),
      ...rest.filter((e) => e.type === 'step').map((e) => (e.type === 'step' ? e.step.step : -1)),
    ];
    const lines = readFileSync(join(tmp, 'events', 'trajectory.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(all).toEqual(lines.map((_, i) => i));
  }, 240_000);

  it('runs one search at a time; the next waits in the queue, other jobs run beside it', async () => {
    const jobs = new JobManager();
    const events: AppEvent[] = [];
    jobs.subscribe((e) => events.push(e));
    const first = jobs.start('quantize', { ...search, out: join(tmp, 'q1') });
    const second = jobs.start('quantize', { ...search, out: join(tmp, 'q2') });
    const beside = jobs.start('evaluate', { ...search, split: 'eval' });
    expect(second.snapshot()).toMatchObject({ status: 'queued', queuePosition: 0 });
    await beside.result;
    first.cancel();
    await first.result.catch(() => undefined);
    second.cancel();
    await second.result.catch(() => undefined);
    // Ordered by the event stream, whatever the machine's speed: the evaluation started while the
    // first search ran, and the second search only after the first one ended.
    const seqOf = (job: string, types: string[]): number =>
      events.find((e) => e.type !== 'snapshot' && e.job === job && types.includes(e.type))?.seq ?? Infinity;
    const firstEnd = seqOf(first.id, ['finished', 'cancelled', 'failed']);
    expect(seqOf(beside.id, ['started'])).toBeLessThan(firstEnd);
    expect(seqOf(second.id, ['started', 'cancelled'])).toBeGreaterThan(firstEnd);
    expect(jobs.policy).toEqual({ searches: 1, others: 2 });
  }, 240_000);
});
