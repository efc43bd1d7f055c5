/**
 * `fxpq quantize`: statistics, the format assignment (uniform now; the FxP-QNet search joins
 * here), the held-out evaluation, and the run folder.
 */
import { structureRanges, uniformAssignment } from '../native-workers/engine/fixedpoint/assignment.js';
import { buildPlan, type Assignment } from '../native-workers/engine/fixedpoint/plan.js';
import { MIN_BITS } from '../native-workers/engine/fixedpoint/format.js';
import { FloatRunner } from '../native-workers/engine/runtime/float-runner.js';
import { SimRunner } from '../native-workers/engine/runtime/sim-runner.js';
import { FxpqError } from '../native-workers/engine/errors.js';
import { evaluateOn } from './engines.js';
import { quantizeSearch, type SearchJobOptions, type SearchJobProgress } from './search.js';
import { collectStatistics } from './statistics.js';
import { buildRun, sha256, writeRun, type RunReport } from './runs.js';
import { chooseSplit, inputNonNegative, openSession } from './session.js';
import { defaultCacheDir, TensorCache } from './tensor-cache.js';
import { writeActivationHistograms } from './run-statistics.js';
import { prepareOutputFolder } from './files.js';

export type ProgressEvent = SearchJobProgress;

/** The search starts at 16 bits too; wider formats would give a simulation that is not the integer network. */
export const UNIFORM_MAX_BITS = 16;

export interface QuantizeOptions extends Omit<SearchJobOptions, 'budget'> {
  uniform?: number;
  budget?: number;
}

export async function quantize(o: QuantizeOptions): Promise<RunReport> {
  await prepareOutputFolder(o.out, 'the run folder (--out)');
  if (o.uniform === undefined) {
    if (o.budget === undefined)
      throw new FxpqError('quantize needs a budget (--budget PP) or a uniform word length (--uniform B).', 'io');
    return quantizeSearch({ ...o, budget: o.budget, onProgress: (p) => o.onProgress?.(p) });
  }
  if (!Number.isInteger(o.uniform) || o.uniform < MIN_BITS || o.uniform > UNIFORM_MAX_BITS) {
    throw new FxpqError(
      `--uniform ${o.uniform} is outside ${MIN_BITS}..${UNIFORM_MAX_BITS} bits (above 16 bits the float32 simulation is no longer exact, and the integer sums pass 52 bits).`,
      'io',
    );
  }
  const started = performance.now();
  const s = await openSession(o);
  const split = chooseSplit(s, o.calib, o.eval, o.seed);
  if (split.calib.length === 0 || split.eval.length === 0) {
    throw new FxpqError(
      `${o.dataPath} gives ${split.calib.length} calibration and ${split.eval.length} evaluation images; both splits need images.`,
      'io',
    );
  }
  const cache = new TensorCache(o.cacheDir ?? defaultCacheDir());
  const nonNegative = inputNonNegative(s.spec);
  const plan = buildPlan(s.model.canonical, { inputNonNegative: nonNegative });
  const stats = await collectStatistics(s, plan, split.calib, cache, o.onProgress);
  const ranges = structureRanges(plan, (t) => stats.get(t)?.maxAbs ?? 0);
  await writeActivationHistograms(o.out, stats);
  const assignment: Assignment = uniformAssignment(plan, o.uniform, ranges);

  const float = await FloatRunner.create(s.model.bytes, s.model.original, s.model.source);
  const sim = await SimRunner.create(plan);
  try {
    const result = await evaluateOn(s, split.eval, {
      float,
      quant: { kind: 'sim', plan, assignment, runner: sim },
      cache,
      onProgress: (done, total) => o.onProgress?.({ stage: 'evaluation', done, total }),
    });
    const { config, report } = buildRun({
      modelPath: o.modelPath,
      dataPath: o.dataPath,
      modelSha256: sha256(s.model.bytes),
      session: s,
      split,
      plan,
      assignment,
      inputNonNegative: nonNegative,
      equalize: o.equalize !== false,
      mode: { kind: 'uniform', bits: o.uniform },
      budget: o.budget ?? null,
      result,
      search: { evaluations: 1, seconds: (performance.now() - started) / 1000 },
    });
    await writeRun(o.out, config, report);
    return report;
  } finally {
    await float.release();
    await sim.release();
  }
}
