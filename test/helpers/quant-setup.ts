/** A model with images and activation statistics, ready for fixed-point tests. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stratifiedSplit } from '../../native-workers/engine/data/split.js';
import { structureRanges, formatFor } from '../../native-workers/engine/fixedpoint/assignment.js';
import { buildPlan, type Assignment, type QuantPlan } from '../../native-workers/engine/fixedpoint/plan.js';
import { seededRandom } from '../../native-workers/engine/data/split.js';
import { collectStatistics } from '../../services/statistics.js';
import { inputNonNegative, openSession, type WorkSession } from '../../services/session.js';
import { TensorCache } from '../../services/tensor-cache.js';
import { imageBatches, type FeedBatch } from '../../services/image-feed.js';
import { modelPath, repoRoot, sharedModels } from './fixtures.js';

export interface QuantSetup {
  session: WorkSession;
  plan: QuantPlan;
  ranges: Map<string, number>;
  batches: FeedBatch[];
}

const COMMITTED_DATA: Record<string, string> = {
  fmnist_resnet20: join(repoRoot, 'test/fixtures/fashion-mnist'),
  'mnist-8': join(repoRoot, 'test/fixtures/mnist'),
};

/** Up to `limit` images (stratified), statistics over them, and their batches kept in memory. */
export async function quantSetup(name: string, limit: number, cacheDir: string): Promise<QuantSetup> {
  const model = modelPath(name)!;
  const data =
    COMMITTED_DATA[name] ??
    join(sharedModels, (JSON.parse(readFileSync(join(sharedModels, `${name}.json`), 'utf8')) as { data: string }).data);
  const session = await openSession({
    modelPath: model,
    dataPath: data,
    classes: name.startsWith('mobilenet') ? 'imagenet1k' : undefined,
  });
  const indices = stratifiedSplit(session.labels, limit, 0, 1).calib;
  const plan = buildPlan(session.model.canonical, { inputNonNegative: inputNonNegative(session.spec) });
  const cache = new TensorCache(cacheDir);
  const stats = await collectStatistics(session, plan, indices, cache);
  const ranges = structureRanges(plan, (t) => stats.get(t)?.maxAbs ?? 0);
  const batches: FeedBatch[] = [];
  const imageSize = plan.shapes
    .get(plan.inputName)!
    .slice(1)
    .reduce((a, b) => a * b, 1);
  for await (const b of imageBatches({
    dataset: session.dataset,
    indices,
    spec: session.spec,
    imageSize,
    batchSize: 25,
    cache,
    onSkip: () => {},
  }))
    batches.push(b);
  return { session, plan, ranges, batches };
}

/** Every structure at a random word length in [lo, hi], frac within -1..+3 of its range rule. */
export function randomAssignment(setup: QuantSetup, seed: number, lo: number, hi: number): Assignment {
  const rand = seededRandom(seed);
  const a: Assignment = {};
  for (const s of setup.plan.structures) {
    const bits = lo + Math.floor(rand() * (hi - lo + 1));
    const f = formatFor(s, bits, setup.ranges.get(s.id)!);
    a[s.id] = { ...f, frac: f.frac + Math.floor(rand() * 5) - 1 };
  }
  return a;
}

export function uniform(setup: QuantSetup, bits: number): Assignment {
  return Object.fromEntries(setup.plan.structures.map((s) => [s.id, formatFor(s, bits, setup.ranges.get(s.id)!)]));
}
