/**
 * `npm run bench -- equalize-limit [limit ...]`: which per-channel scale limit of cross-layer
 * equalization (passes/equalize.ts, MAX_SCALE) serves mobilenet_v1_0.25_224 at uniform 8 bits
 * best, as a uniform run does it (range rule, optimized rounding on the calibration half). Each
 * limit on the same splits of the 100 ImageNet images into 50 calibration and 50 held-out
 * images: the recorded default split and four seeded shuffles, because one split of 50 images
 * moves the top-1 by an image (2 points) per flip. Rows: held-out top-1 drop, agreement with the
 * float model and mean KL(float || fixed point) of the logits, the least noisy of the three.
 * An accuracy comparison, not a speed one; minutes (about 25 s per limit and split).
 */
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { cloneGraph } from '../native-workers/engine/ir/graph.js';
import { equalizeLayers, MAX_SCALE } from '../native-workers/engine/passes/equalize.js';
import { structureRanges, uniformAssignment } from '../native-workers/engine/fixedpoint/assignment.js';
import { buildPlan } from '../native-workers/engine/fixedpoint/plan.js';
import { SimRunner } from '../native-workers/engine/runtime/sim-runner.js';
import { StatsRunner } from '../native-workers/engine/runtime/stats-runner.js';
import { topK } from '../native-workers/engine/data/metrics.js';
import { seededRandom } from '../native-workers/engine/data/split.js';
import { klDivergence } from '../native-workers/engine/search/prediction-error.js';
import { collectStatistics } from '../services/statistics.js';
import { chooseSplit, inputNonNegative, openSession } from '../services/session.js';
import { defaultCacheDir, TensorCache } from '../services/tensor-cache.js';
import { imageBatches } from '../services/image-feed.js';
import { layerInputs, UNIFORM_ROUNDER, WeightRounder, type RoundingBatch } from '../services/optimized-rounding.js';

const BITS = 8;
const SHUFFLES = [1, 2, 3, 4];

interface Outcome {
  drop: number;
  agreement: number;
  kl: number;
}

export async function benchEqualizeLimit(shared: string, limits: number[]): Promise<string[]> {
  const s = await openSession({
    modelPath: join(shared, 'models', 'mobilenet_v1_0.25_224.onnx'),
    dataPath: join(shared, 'imagenet-sample'),
    classes: 'imagenet1k',
    equalize: 'off',
  });
  const recorded = chooseSplit(s);
  const all = [...recorded.calib, ...recorded.eval];
  const splits = [
    { name: 'recorded', calib: recorded.calib, eval: recorded.eval },
    ...SHUFFLES.map((seed) => {
      const random = seededRandom(seed);
      const order = all
        .map((i) => ({ i, key: random() }))
        .sort((a, b) => a.key - b.key)
        .map((x) => x.i);
      return { name: `shuffle ${seed}`, calib: order.slice(0, 50), eval: order.slice(50) };
    }),
  ];
  const cache = new TensorCache(defaultCacheDir());
  const results = new Map<number, Outcome[]>();
  for (const limit of limits) {
    // The import's canonical graph without equalization, then the pass as canonicalize runs it.
    const graph = cloneGraph(s.model.canonical);
    equalizeLayers(graph, 'depthwise', limit);
    const plan = buildPlan(graph, { inputNonNegative: inputNonNegative(s.spec) });
    const outcomes: Outcome[] = [];
    for (const split of splits) {
      process.stderr.write(`bench: equalize-limit ${limit}, ${split.name}\n`);
      outcomes.push(await uniformOutcome(s, plan, split, cache));
    }
    results.set(limit, outcomes);
  }
  const fmt = (xs: number[], digits: number) => xs.map((x) => x.toFixed(digits)).join(' / ');
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const lines = [
    `## Equalization scale limit, mobilenet_v1_0.25_224 at uniform ${BITS} (default limit ${MAX_SCALE})`,
    '',
    `Splits: ${splits.map((x) => x.name).join(', ')} (50 calibration / 50 held-out images each).`,
    '',
    '| limit | held-out drop (points) | mean | agreement % | mean | KL | mean |',
    '| ----: | ---------------------- | ---: | ----------- | ---: | -- | ---: |',
  ];
  for (const [limit, o] of results) {
    const drop = o.map((x) => x.drop);
    const agreement = o.map((x) => x.agreement);
    const kl = o.map((x) => x.kl);
    lines.push(
      `| ${limit} | ${fmt(drop, 0)} | ${mean(drop).toFixed(1)} | ${fmt(agreement, 0)} | ${mean(agreement).toFixed(1)} | ${fmt(kl, 3)} | ${mean(kl).toFixed(3)} |`,
    );
  }
  return [...lines, ''];
}

async function uniformOutcome(
  s: Awaited<ReturnType<typeof openSession>>,
  plan: ReturnType<typeof buildPlan>,
  split: { calib: number[]; eval: number[] },
  cache: TensorCache,
): Promise<Outcome> {
  const stats = await collectStatistics(s, plan, split.calib, cache);
  const ranges = structureRanges(plan, (t) => stats.get(t)?.maxAbs ?? 0);
  const a = uniformAssignment(plan, BITS, ranges);
  const sim = await SimRunner.create(plan);
  const float = await StatsRunner.create(plan, [...layerInputs(plan), plan.logitsTensor]);
  const load = async (indices: number[]) => {
    const out: (RoundingBatch & { labels: number[] })[] = [];
    for await (const b of imageBatches({
      dataset: s.dataset,
      indices,
      spec: s.spec,
      imageSize: sim.imageSize,
      batchSize: 50,
      cache,
      onSkip: () => {},
    }))
      if (b.indices.length > 0)
        out.push({ data: b.data.slice(), count: b.indices.length, labels: b.indices.map((i) => s.labels[i]!) });
    return out;
  };
  const dir = await mkdtemp(join(tmpdir(), 'fxpq-bench-rounding-'));
  try {
    const rounder = new WeightRounder(plan, sim, float, await load(split.calib), dir, undefined, UNIFORM_ROUNDER);
    await rounder.ensure(a, {});
    await rounder.release();
    sim.forgetActivations();
    let n = 0;
    let fpRight = 0;
    let qRight = 0;
    let agree = 0;
    let kl = 0;
    for (const b of await load(split.eval)) {
      const q = await sim.run(a, sim.quantizeInput(a, b.data), b.count);
      const t = (await float.run(b.data, b.count, [plan.logitsTensor])).get(plan.logitsTensor)!;
      const k = q.length / b.count;
      for (let i = 0; i < b.count; i++) {
        const tp = topK(t.subarray(i * k, (i + 1) * k), 1)[0];
        const qp = topK(q.subarray(i * k, (i + 1) * k), 1)[0];
        n++;
        if (tp === b.labels[i]) fpRight++;
        if (qp === b.labels[i]) qRight++;
        if (tp === qp) agree++;
        kl += klDivergence(t, q, i * k, k);
      }
    }
    return { drop: (100 * (fpRight - qRight)) / n, agreement: (100 * agree) / n, kl: kl / n };
  } finally {
    await sim.release();
    await float.release();
    await rm(dir, { recursive: true, force: true });
  }
}
