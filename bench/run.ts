/**
 * `npm run bench`: every speed figure side by side in one run, as ratios against a named
 * baseline (this machine is shared and noisy: compare rows of one run, not runs).
 */
import { resolve } from 'node:path';
import { benchDataset } from './dataset.js';
import { benchEngine } from './engine.js';
import { benchIntKernels } from './int-kernels.js';
import { benchIntProfile } from './int-profile.js';
import { benchSearch } from './search.js';
import { benchEventLoop } from './event-loop.js';
import { benchC } from './c-speed.js';
import { benchOrtParallel } from './ort-parallel.js';
import { benchEqualizeLimit } from './equalize-limit.js';
import { closePools } from '../services/pool.js';

const shared = resolve(
  process.env['FXPQ_SHARED_FIXTURES'] ?? resolve(import.meta.dirname, '..', '..', 'shared', 'fixtures'),
);
const [first, ...rest] = process.argv.slice(2);
const sections = first ? [first] : [];
const ALL_MODELS = [
  'mnist-8',
  'fmnist_resnet20',
  'fmnist_vgg_small',
  'resnet8_mlperf_tiny_cifar10',
  'mobilenet_v1_0.25_224',
];
const all: Record<string, () => Promise<string[]>> = {
  dataset: () => benchDataset(shared),
  engine: () => benchEngine(shared),
  'int-kernels': () => benchIntKernels(shared, rest[0] ? Number(rest[0]) : undefined),
  'int-profile': () => benchIntProfile(shared, rest[0] ? Number(rest[0]) : undefined),
  'event-loop': () => benchEventLoop(rest[0] ? Number(rest[0]) : undefined),
  c: () => benchC(rest),
  'ort-parallel': () => benchOrtParallel(),
  // Minutes each: only when asked for (`npm run bench -- search [model ...]`, `equalize-limit [limit ...]`).
  ...(first === 'search' ? { search: () => benchSearch(shared, rest.length > 0 ? rest : ALL_MODELS) } : {}),
  ...(first === 'equalize-limit'
    ? { 'equalize-limit': () => benchEqualizeLimit(shared, rest.length > 0 ? rest.map(Number) : [2, 16]) }
    : {}),
};

const lines: string[] = [`# FxPQ benchmark, ${new Date().toISOString()}`, ''];
for (const [name, run] of Object.entries(all)) {
  if (sections.length > 0 && !sections.includes(name)) continue;
  process.stderr.write(`bench: ${name}...\n`);
  lines.push(...(await run()));
}
await closePools();
process.stdout.write(lines.join('\n') + '\n');
