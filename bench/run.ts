/**
 * `npm run bench`: every speed figure side by side in one run, as ratios against a named
 * baseline (this machine is shared and noisy: compare rows of one run, not runs).
 */
import { resolve } from 'node:path';
import { benchDataset } from './dataset.js';
import { benchEngine } from './engine.js';
import { closePools } from '../services/pool.js';

const shared = resolve(
  process.env['FXPQ_SHARED_FIXTURES'] ?? resolve(import.meta.dirname, '..', '..', 'shared', 'fixtures'),
);
const sections = process.argv.slice(2);
const all: Record<string, () => Promise<string[]>> = {
  dataset: () => benchDataset(shared),
  engine: () => benchEngine(shared),
};

const lines: string[] = [`# FxPQ benchmark, ${new Date().toISOString()}`, ''];
for (const [name, run] of Object.entries(all)) {
  if (sections.length > 0 && !sections.includes(name)) continue;
  process.stderr.write(`bench: ${name}...\n`);
  lines.push(...(await run()));
}
await closePools();
process.stdout.write(lines.join('\n') + '\n');
