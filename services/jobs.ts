/**
 * Long work as jobs, for every front end: typed progress events, cancellation, and resume
 * (a quantize job checkpoints after every step; starting it again on the same RUN folder
 * continues from the last checkpoint). No Electron here: the desktop app, the web host and
 * the CLI all drive the same manager.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { isFxpqError } from '../native-workers/engine/errors.js';
import { evaluate, type EvaluateOptions, type EvaluationResult } from './evaluate.js';
import { quantize, type ProgressEvent, type QuantizeOptions } from './quantize.js';
import type { RunReport } from './runs.js';
import { exportRun, type ExportOptions, type ExportResult } from './export.js';

export type JobStatus = 'running' | 'done' | 'failed' | 'cancelled';

export interface JobProgressEvent {
  job: string;
  kind: JobKind;
  stage: string;
  done: number;
  total: number;
  /** Search details: phase, pass, step, current drop (points), memory reduction, bits per structure. */
  search?: ProgressEvent['search'];
  etaSeconds?: number;
}

interface JobKinds {
  quantize: { options: Omit<QuantizeOptions, 'onProgress' | 'signal'>; result: RunReport };
  evaluate: { options: Omit<EvaluateOptions, 'onProgress' | 'signal'>; result: EvaluationResult };
  export: { options: Omit<ExportOptions, 'onProgress' | 'signal'>; result: ExportResult };
}
export type JobKind = keyof JobKinds;

export interface Job<K extends JobKind = JobKind> {
  id: string;
  kind: K;
  status: JobStatus;
  result: Promise<JobKinds[K]['result']>;
  error?: { code: string; message: string };
  cancel(): void;
}

export class JobManager extends EventEmitter<{ progress: [JobProgressEvent]; finished: [Job] }> {
  private readonly jobs = new Map<string, Job>();

  start<K extends JobKind>(kind: K, options: JobKinds[K]['options']): Job<K> {
    const id = randomUUID();
    const controller = new AbortController();
    const emit = (stage: string, done: number, total: number, extra: Partial<JobProgressEvent> = {}): void => {
      this.emit('progress', { job: id, kind, stage, done, total, ...extra });
    };
    const run = async (): Promise<JobKinds[K]['result']> => {
      if (kind === 'quantize') {
        return (await quantize({
          ...(options as QuantizeOptions),
          signal: controller.signal,
          onProgress: (e) => emit(e.stage, e.done, e.total, { search: e.search, etaSeconds: e.etaSeconds }),
        })) as JobKinds[K]['result'];
      }
      if (kind === 'export') {
        return (await exportRun({
          ...(options as ExportOptions),
          signal: controller.signal,
          onProgress: (stage) => emit(stage, 0, 1),
        })) as JobKinds[K]['result'];
      }
      return (await evaluate({
        ...(options as EvaluateOptions),
        signal: controller.signal,
        onProgress: (d, t) => emit('evaluation', d, t),
      })) as JobKinds[K]['result'];
    };
    const job: Job<K> = {
      id,
      kind,
      status: 'running',
      result: undefined as never,
      cancel: () => controller.abort(),
    };
    job.result = run().then(
      (r) => {
        job.status = 'done';
        this.emit('finished', job as Job);
        return r;
      },
      (e: unknown) => {
        job.status = controller.signal.aborted ? 'cancelled' : 'failed';
        job.error = isFxpqError(e)
          ? { code: e.code, message: e.message }
          : { code: 'internal', message: String((e as Error).message ?? e) };
        this.emit('finished', job as Job);
        throw e;
      },
    );
    // A job's failure is reported through its status and `result`; never as an unhandled rejection.
    job.result.catch(() => undefined);
    this.jobs.set(id, job as Job);
    return job;
  }

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  list(): Job[] {
    return [...this.jobs.values()];
  }
}
