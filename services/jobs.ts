/**
 * Long work as jobs, for every front end (desktop app, web host, CLI): a queue with a stated
 * policy, execution on the Piscina job pool (never on the front end's thread), one ordered
 * event stream (api/contract.ts `AppEvent`: a snapshot for each new subscriber, then every
 * event with an increasing `seq`), cancellation that reaches the worker, and a clear failure
 * when a worker dies. Resume is the run folder's business: a quantize job started again on
 * the same RUN continues from its checkpoint.
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import type {
  ApiError,
  AppEvent,
  JobEvent,
  JobKind,
  JobSnapshot,
  QueuePolicy,
  TrajectoryStep,
} from '../api/contract.js';
import { FxpqError, isFxpqError, type FxpqErrorCode } from '../native-workers/engine/errors.js';
import type { EngineCall } from './engine-thread.js';
import { drainEngineCalls } from './engine-thread.js';
import { runTask, type TaskMessage, type TaskName, type TaskTable } from './job-tasks.js';
import type { JobWorkerReply, JobWorkerTask } from './job-worker.js';
import { workerPool } from './pool.js';
import { exportLockPath, releaseOwnProcessLockFile } from './file-lock.js';
import { releaseOwnProcessLock } from './run-folder.js';

export type JobTaskKind = Exclude<JobKind, 'inspect'>;
export type JobOptions<K extends TaskName> = TaskTable[K]['options'];
export type JobResult<K extends TaskName> = TaskTable[K]['result'];

export interface JobMeta {
  title?: string;
  project?: string;
  target?: JobSnapshot['target'];
  /**
   * Called (and awaited) when the job starts and when it ends, before the event goes out. The
   * job's `result` settles only after onSettled: read the outcome from `job.snapshot()`.
   */
  onStart?: (job: Job) => Promise<void> | void;
  onSettled?: (job: Job) => Promise<void> | void;
}

export interface Job<K extends JobTaskKind = JobTaskKind> {
  readonly id: string;
  readonly kind: K;
  readonly status: JobSnapshot['status'];
  readonly error?: ApiError;
  /** Where the engine's entry points of this job ran (proof that none ran on the main thread). */
  readonly engineCalls: EngineCall[];
  result: Promise<JobResult<K>>;
  cancel(): void;
  snapshot(): JobSnapshot;
}

/** 'pool': every job in a worker (the app, the CLI). 'in-thread': the calling thread (the benchmark's baseline only). */
export type JobRunnerMode = 'pool' | 'in-thread';

export const DEFAULT_POLICY: QueuePolicy = { searches: 1, others: 2 };

const LOG_LINES = 300;
const KEEP_SETTLED = 100;
/** Progress events of one job are relayed at most this often (stage changes always). */
const PROGRESS_INTERVAL_MS = 50;

interface JobRecord {
  snapshot: JobSnapshot;
  options: unknown;
  meta: JobMeta;
  job: Job;
  engineCalls: EngineCall[];
  lastProgressAt: number;
  cancelRequested: boolean;
  requestCancel?: () => void;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

function errorFromReply(error: ApiError): Error {
  if (error.code === 'internal') return new Error(error.message);
  return new FxpqError(error.message, error.code as FxpqErrorCode);
}

function describeStep(s: TrajectoryStep): string {
  const what = s.structure ? `${s.structure} -> ${s.bits} bits (f ${s.frac})` : (s.note ?? s.phase);
  return `step ${s.step} ${s.phase}: ${what} ${s.accepted ? 'accepted' : 'rejected'}, drop ${s.drop.toFixed(2)}, bound ${s.bound.toFixed(2)} / ${s.budget.toFixed(2)} pt, ${s.reduction.toFixed(2)}x`;
}

export class JobManager {
  readonly policy: QueuePolicy;
  private readonly mode: JobRunnerMode;
  private readonly cancelGraceMs: number;
  private readonly records = new Map<string, JobRecord>();
  private readonly queue: JobRecord[] = [];
  private readonly running = { searches: 0, others: 0 };
  private readonly listeners = new Set<(e: AppEvent) => void>();
  private seq = 0;

  constructor(o: { policy?: Partial<QueuePolicy>; mode?: JobRunnerMode; cancelGraceMs?: number } = {}) {
    this.policy = { ...DEFAULT_POLICY, ...o.policy };
    this.mode = o.mode ?? 'pool';
    this.cancelGraceMs = o.cancelGraceMs ?? 30_000;
  }

  /** Queue a job; it starts as soon as the policy allows. */
  start<K extends JobTaskKind>(kind: K, options: JobOptions<K>, meta: JobMeta = {}): Job<K> {
    const id = randomUUID();
    const snapshot: JobSnapshot = {
      id,
      kind,
      title: meta.title ?? kind,
      status: 'queued',
      ...(meta.project ? { project: meta.project } : {}),
      ...(meta.target ? { target: meta.target } : {}),
      queuedAt: new Date().toISOString(),
      steps: [],
      log: [],
    };
    let resolve!: (v: unknown) => void;
    let reject!: (e: unknown) => void;
    const result = new Promise<JobResult<K>>((res, rej) => {
      resolve = res as (v: unknown) => void;
      reject = rej;
    });
    // A job's failure is reported through its status and events; never as an unhandled rejection.
    result.catch(() => undefined);
    const rec: JobRecord = {
      snapshot,
      options,
      meta,
      engineCalls: [],
      lastProgressAt: 0,
      cancelRequested: false,
      resolve,
      reject,
      job: undefined as never,
    };
    rec.job = {
      id,
      kind,
      get status() {
        return rec.snapshot.status;
      },
      get error() {
        return rec.snapshot.error;
      },
      get engineCalls() {
        return rec.engineCalls;
      },
      result,
      cancel: () => this.cancel(id),
      snapshot: () => this.snapshotOf(rec),
    } as Job<K>;
    this.records.set(id, rec);
    // Keep the latest settled jobs only: a long-running app must not grow without end.
    const settled = [...this.records.values()].filter((r) => !['queued', 'running'].includes(r.snapshot.status));
    for (const old of settled.slice(0, Math.max(0, settled.length - KEEP_SETTLED)))
      this.records.delete(old.snapshot.id);
    this.queue.push(rec);
    this.emit({ type: 'queued', job: id, snapshot: this.snapshotOf(rec) });
    this.pump();
    return rec.job as Job<K>;
  }

  /** A short request that still parses a model or decodes an image: on the pool, outside the queue, no events. */
  async call<K extends TaskName>(task: K, options: JobOptions<K>): Promise<JobResult<K>> {
    const reply = await this.execute(
      task,
      options,
      () => undefined,
      () => undefined,
    );
    if (reply.ok) return reply.result as JobResult<K>;
    throw errorFromReply(reply.error);
  }

  /** Receive a snapshot of every job now, then every event, in order, until unsubscribed. */
  subscribe(listener: (e: AppEvent) => void): () => void {
    listener({ type: 'snapshot', seq: this.seq, jobs: this.list() });
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every live job and the latest settled ones; settled jobs without their steps (they are in the run folder). */
  list(): JobSnapshot[] {
    return [...this.records.values()].map((r) => {
      const s = this.snapshotOf(r);
      return s.status === 'queued' || s.status === 'running' ? s : { ...s, steps: [] };
    });
  }

  get(id: string): Job | undefined {
    return this.records.get(id)?.job;
  }

  /** Live (queued or running) jobs. */
  active(): Job[] {
    return [...this.records.values()]
      .filter((r) => r.snapshot.status === 'queued' || r.snapshot.status === 'running')
      .map((r) => r.job);
  }

  cancel(id: string): boolean {
    const rec = this.records.get(id);
    if (!rec) return false;
    if (rec.snapshot.status === 'queued') {
      this.queue.splice(this.queue.indexOf(rec), 1);
      void this.settle(rec, {
        ok: false,
        cancelled: true,
        error: { code: 'cancelled', message: 'The job was cancelled before it started.' },
        engineCalls: [],
      });
      return true;
    }
    if (rec.snapshot.status !== 'running' || rec.cancelRequested) return false;
    rec.cancelRequested = true;
    this.log(rec, 'cancel requested');
    rec.requestCancel?.();
    return true;
  }

  /** Wait for every live job to end (cancelling them first when asked). */
  async drain(cancel = false): Promise<void> {
    const live = this.active();
    if (cancel) live.forEach((j) => j.cancel());
    await Promise.allSettled(live.map((j) => j.result));
  }

  private snapshotOf(rec: JobRecord): JobSnapshot {
    const position = this.queue.indexOf(rec);
    return {
      ...rec.snapshot,
      steps: [...rec.snapshot.steps],
      log: [...rec.snapshot.log],
      ...(position >= 0 ? { queuePosition: position } : {}),
    };
  }

  private emit(e: DistributiveOmit<JobEvent, 'seq' | 'at'>): void {
    const event = { ...e, seq: ++this.seq, at: new Date().toISOString() } as JobEvent;
    // A copy: a listener that subscribes during this event got it in its snapshot already.
    for (const l of [...this.listeners]) {
      try {
        l(event);
      } catch {
        // A broken subscriber (a closed window) must not stop the job or the others.
      }
    }
  }

  private log(rec: JobRecord, line: string): void {
    rec.snapshot.log.push(line);
    if (rec.snapshot.log.length > LOG_LINES) rec.snapshot.log.splice(0, rec.snapshot.log.length - LOG_LINES);
    this.emit({ type: 'log', job: rec.snapshot.id, line });
  }

  private onTaskMessage(rec: JobRecord, m: TaskMessage): void {
    if (m.type === 'progress') {
      const stageChanged = rec.snapshot.progress?.stage !== m.progress.stage;
      rec.snapshot.progress = m.progress;
      if (stageChanged) this.log(rec, `${m.progress.stage}: ${m.progress.total} to do`);
      const now = Date.now();
      if (!stageChanged && m.progress.done < m.progress.total && now - rec.lastProgressAt < PROGRESS_INTERVAL_MS)
        return;
      rec.lastProgressAt = now;
      this.emit({ type: 'progress', job: rec.snapshot.id, progress: m.progress });
    } else if (m.type === 'step') {
      rec.snapshot.steps.push(m.step);
      this.emit({ type: 'step', job: rec.snapshot.id, step: m.step });
      this.log(rec, describeStep(m.step));
    } else {
      this.log(rec, m.line);
    }
  }

  private pump(): void {
    for (const rec of [...this.queue]) {
      const lane = rec.snapshot.kind === 'quantize' ? 'searches' : 'others';
      if (this.running[lane] >= this.policy[lane]) continue;
      this.queue.splice(this.queue.indexOf(rec), 1);
      this.running[lane]++;
      void this.runJob(rec).finally(() => {
        this.running[lane]--;
        this.pump();
      });
    }
  }

  private async runJob(rec: JobRecord): Promise<void> {
    rec.snapshot.status = 'running';
    rec.snapshot.startedAt = new Date().toISOString();
    await this.hook(rec, rec.meta.onStart);
    this.emit({ type: 'started', job: rec.snapshot.id });
    const reply = await this.execute(
      rec.snapshot.kind as TaskName,
      rec.options,
      (m) => this.onTaskMessage(rec, m),
      (cancel) => {
        rec.requestCancel = cancel;
        if (rec.cancelRequested) cancel();
      },
    );
    await this.settle(rec, reply);
  }

  private async settle(rec: JobRecord, reply: JobWorkerReply): Promise<void> {
    rec.engineCalls = reply.engineCalls;
    rec.snapshot.finishedAt = new Date().toISOString();
    if (reply.ok) {
      rec.snapshot.status = 'done';
      rec.snapshot.result = reply.result;
    } else {
      const cancelled = reply.cancelled || rec.cancelRequested;
      rec.snapshot.status = cancelled ? 'cancelled' : 'failed';
      rec.snapshot.error = cancelled
        ? { code: 'cancelled', message: `${rec.snapshot.title} was cancelled.` }
        : reply.error;
    }
    await this.hook(rec, rec.meta.onSettled);
    const id = rec.snapshot.id;
    if (rec.snapshot.status === 'done') {
      this.emit({ type: 'finished', job: id, result: reply.ok ? reply.result : null });
      rec.resolve(reply.ok ? reply.result : undefined);
    } else if (rec.snapshot.status === 'cancelled') {
      this.emit({ type: 'cancelled', job: id });
      rec.reject(new FxpqError(rec.snapshot.error!.message, 'cancelled'));
    } else {
      this.log(rec, `failed: ${rec.snapshot.error!.message}`);
      this.emit({ type: 'failed', job: id, error: rec.snapshot.error! });
      rec.reject(errorFromReply(rec.snapshot.error!));
    }
  }

  private async hook(rec: JobRecord, fn: ((job: Job) => Promise<void> | void) | undefined): Promise<void> {
    try {
      await fn?.(rec.job);
    } catch (e) {
      this.log(rec, `could not record the job's state: ${(e as Error).message}`);
    }
  }

  /** Run a task on the job pool (or, for the baseline, here), always answering with a reply. */
  private async execute(
    task: TaskName,
    options: unknown,
    onMessage: (m: TaskMessage) => void,
    setCancel: (cancel: () => void) => void,
  ): Promise<JobWorkerReply> {
    if (this.mode === 'in-thread') return this.executeHere(task, options, onMessage, setCancel);
    const { port1, port2 } = new MessageChannel();
    const closed = new Promise<void>((resolve) => port1.once('close', () => resolve()));
    port1.on('message', onMessage);
    const hard = new AbortController();
    let grace: NodeJS.Timeout | undefined;
    setCancel(() => {
      // Ask the task to stop at its next evaluation (it keeps its checkpoint); end the worker if it does not.
      port1.postMessage({ type: 'cancel' });
      grace = setTimeout(() => hard.abort(), this.cancelGraceMs);
      grace.unref();
    });
    try {
      const payload: JobWorkerTask = { task, options, port: port2 };
      const reply = (await workerPool('job-worker').run(payload, {
        transferList: [port2] as never,
        signal: hard.signal,
      })) as JobWorkerReply;
      // Every event the worker posted arrives before the port's close: relay them all before the end.
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())]);
      return reply;
    } catch (e) {
      // A worker ended by force cannot release the run or export lock it took, and the lock names
      // this (live) process, so it would never look stale: release it here.
      const out = (options as { out?: unknown } | undefined)?.out;
      if (typeof out === 'string') {
        await releaseOwnProcessLock(out).catch(() => undefined);
        await releaseOwnProcessLockFile(exportLockPath(resolve(out))).catch(() => undefined);
      }
      if (hard.signal.aborted)
        return { ok: false, cancelled: true, error: { code: 'cancelled', message: 'cancelled' }, engineCalls: [] };
      const detail = (e as Error)?.message ?? String(e);
      return {
        ok: false,
        cancelled: false,
        error: {
          code: 'worker-crashed',
          message: `The worker running this job stopped unexpectedly (${detail}). Files the job wrote are kept; a search can be resumed from its last checkpoint.`,
        },
        engineCalls: [],
      };
    } finally {
      if (grace) clearTimeout(grace);
      port1.close();
    }
  }

  private async executeHere(
    task: TaskName,
    options: unknown,
    onMessage: (m: TaskMessage) => void,
    setCancel: (cancel: () => void) => void,
  ): Promise<JobWorkerReply> {
    const controller = new AbortController();
    setCancel(() => controller.abort());
    drainEngineCalls();
    try {
      const result = await runTask(task, options as never, { signal: controller.signal, emit: onMessage });
      return { ok: true, result, engineCalls: drainEngineCalls() };
    } catch (e) {
      const error = isFxpqError(e)
        ? { code: e.code as string, message: e.message }
        : { code: 'internal', message: (e as Error)?.message ?? String(e) };
      return { ok: false, error, cancelled: controller.signal.aborted, engineCalls: drainEngineCalls() };
    }
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
