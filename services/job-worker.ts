/**
 * Piscina entry of the job pool: runs one task of services/job-tasks.ts in a worker thread.
 * Events go back over the MessagePort the job gave it; a `cancel` message on that port aborts
 * the task's signal (the search stops before its next evaluation and keeps its checkpoint).
 * The reply is plain data: a user-facing error keeps its code across the thread boundary.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import { isFxpqError } from '../native-workers/engine/errors.js';
import { drainEngineCalls, type EngineCall } from './engine-thread.js';
import { runTask, type TaskMessage, type TaskName } from './job-tasks.js';
import { configureWorkers, type WorkerLocation } from './pool.js';

const inherited = (workerData as { workers?: WorkerLocation } | undefined)?.workers;
if (inherited) configureWorkers(inherited);

export interface JobWorkerTask {
  task: TaskName;
  options: unknown;
  port: MessagePort;
}

export type JobWorkerReply = { engineCalls: EngineCall[] } & (
  | { ok: true; result: unknown }
  | { ok: false; error: { code: string; message: string; stack?: string }; cancelled: boolean }
);

export type PortMessage = TaskMessage;

export default async function runJob({ task, options, port }: JobWorkerTask): Promise<JobWorkerReply> {
  const controller = new AbortController();
  port.on('message', (m: { type?: string }) => {
    if (m?.type === 'cancel') controller.abort();
  });
  drainEngineCalls();
  try {
    const result = await runTask(task, options as never, {
      signal: controller.signal,
      emit: (message) => port.postMessage(message),
    });
    return { ok: true, result, engineCalls: drainEngineCalls() };
  } catch (e) {
    const error = isFxpqError(e)
      ? { code: e.code as string, message: e.message }
      : { code: 'internal', message: (e as Error)?.message ?? String(e), stack: (e as Error)?.stack };
    return { ok: false, error, cancelled: controller.signal.aborted, engineCalls: drainEngineCalls() };
  } finally {
    port.close();
  }
}
