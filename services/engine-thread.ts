/**
 * Where the engine's heavy entry points ran. The front-end process must only schedule jobs
 * and relay events; every statistics pass, teacher, candidate evaluation, distillation,
 * bias correction, evaluation, export and import runs in a pool worker. Each entry point
 * records itself here, so a test can prove it (and a front end can refuse the main thread).
 */
import { isMainThread } from 'node:worker_threads';

export interface EngineCall {
  entry: string;
  mainThread: boolean;
  /** Date.now() when it started (one clock for every thread). */
  at: number;
}

let calls: EngineCall[] = [];
let refuseMainThread = false;

/** Record that `entry` runs now, on this thread; throws on the main thread once refused. */
export function engineEntry(entry: string): void {
  if (calls.length < 10_000) calls.push({ entry, mainThread: isMainThread, at: Date.now() });
  if (refuseMainThread && isMainThread)
    throw new Error(`${entry} ran on the front end's main thread; engine work belongs on the pool.`);
}

/** The calls recorded on this thread since the last drain. */
export function drainEngineCalls(): EngineCall[] {
  const out = calls;
  calls = [];
  return out;
}

/** Front ends call this once: from then on, engine work on the main thread is a bug that fails loudly. */
export function refuseEngineOnMainThread(refuse = true): void {
  refuseMainThread = refuse;
}
