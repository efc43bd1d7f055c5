/** The engine's Piscina pool, sized to the cores; TypeScript workers run through tsx. */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';

const pools = new Map<string, Piscina>();

/** One pool per worker entry, created on first use and shared by every job. */
export function workerPool(entry: 'preprocess-worker' | 'int-worker'): Piscina {
  let pool = pools.get(entry);
  if (!pool) {
    pool = new Piscina({
      filename: new URL(`../native-workers/pool/${entry}.ts`, import.meta.url).href,
      execArgv: ['--import', 'tsx'],
      maxThreads: Math.max(1, availableParallelism()),
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
