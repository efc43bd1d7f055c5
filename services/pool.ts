/**
 * The Piscina pools, and where their worker entry files are. From sources (tsx, vitest) the
 * entries are the .ts files and workers load tsx; from the electron-vite build they are
 * bundles beside the main bundle (out/main/<entry>.js), which the Electron main process
 * announces with `configureWorkers` (a packaged app unpacks them from the asar archive).
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';

/** job-worker runs whole jobs (search, evaluation, export, import); the others serve a job's inner loops. */
export type WorkerEntry = 'job-worker' | 'preprocess-worker' | 'int-worker';

export interface WorkerLocation {
  /** Folder of the built entries (`<entry>.js`); absent: the sources, through tsx. */
  builtDir?: string;
}

const SOURCE_ENTRIES: Record<WorkerEntry, string> = {
  'job-worker': './job-worker.ts',
  'preprocess-worker': '../native-workers/pool/preprocess-worker.ts',
  'int-worker': '../native-workers/pool/int-worker.ts',
};

let location: WorkerLocation = {};
const pools = new Map<WorkerEntry, Piscina>();

/** Where the worker entries live (call before the first job; a job worker inherits it). */
export function configureWorkers(where: WorkerLocation): void {
  location = { ...where };
}

export function workerLocation(): WorkerLocation {
  return location;
}

export function workerEntryUrl(entry: WorkerEntry): string {
  return location.builtDir
    ? pathToFileURL(join(location.builtDir, `${entry}.js`)).href
    : new URL(SOURCE_ENTRIES[entry], import.meta.url).href;
}

/**
 * tsx's loader as a file URL resolved from this package, not from the current folder: a bare
 * `--import tsx` makes every worker look for tsx under the working directory, so a job started
 * from any other folder died with a raw stack trace. The package's `.` export is the loader.
 */
export function tsxLoaderUrl(): string {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('tsx/package.json');
  return pathToFileURL(join(pkg, '..', 'dist', 'loader.mjs')).href;
}

/** Thread counts: every core for the inner loops, and enough job threads that the queue, not Piscina, decides. */
function maxThreads(entry: WorkerEntry): number {
  return entry === 'job-worker' ? 8 : Math.max(1, availableParallelism());
}

/** One pool per worker entry, created on first use and shared by every job of this thread. */
export function workerPool(entry: WorkerEntry): Piscina {
  let pool = pools.get(entry);
  if (!pool) {
    pool = new Piscina({
      filename: workerEntryUrl(entry),
      execArgv: location.builtDir ? [] : ['--import', tsxLoaderUrl()],
      workerData: { workers: location },
      maxThreads: maxThreads(entry),
      minThreads: 0,
      // Workers idle out, so a CLI process can exit when its work is done.
      idleTimeout: 1000,
    });
    pools.set(entry, pool);
  }
  return pool;
}

export async function closePools(): Promise<void> {
  await Promise.all([...pools.values()].map((p) => p.destroy()));
  pools.clear();
}
