/** The statistics pass (spec §5 step 0) over a list of images: streaming, bounded memory. */
import type { QuantPlan } from '../native-workers/engine/fixedpoint/plan.js';
import { StatsAccumulator, StatsRunner, type ActivationStats } from '../native-workers/engine/runtime/stats-runner.js';
import { imageBatches, refuseSkipped } from './image-feed.js';
import type { WorkSession } from './session.js';
import type { TensorCache } from './tensor-cache.js';
import { engineEntry } from './engine-thread.js';

/** Streaming statistics of every activation over `indices` (spec §5 step 0). */
export async function collectStatistics(
  s: WorkSession,
  plan: QuantPlan,
  indices: number[],
  cache: TensorCache,
  onProgress?: (e: { stage: 'statistics'; done: number; total: number }) => void,
): Promise<Map<string, ActivationStats>> {
  engineEntry('statistics');
  const runner = await StatsRunner.create(plan);
  const acc = new StatsAccumulator();
  let done = 0;
  try {
    const imageSize = plan.shapes
      .get(plan.inputName)!
      .slice(1)
      .reduce((a, b) => a * b, 1);
    for await (const b of imageBatches({
      dataset: s.dataset,
      indices,
      spec: s.spec,
      imageSize,
      batchSize: 32,
      cache,
      onSkip: refuseSkipped(s.dataset, 'the activation statistics'),
    })) {
      if (b.indices.length > 0) acc.add(await runner.run(b.data, b.indices.length));
      done += b.indices.length;
      onProgress?.({ stage: 'statistics', done, total: indices.length });
    }
  } finally {
    await runner.release();
  }
  return acc.stats;
}
