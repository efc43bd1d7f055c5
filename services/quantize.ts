/**
 * `fxpq quantize`: statistics, the format assignment (uniform now; the FxP-QNet search joins
 * here), the held-out evaluation, and the run folder.
 */
import { DEFAULT_EQUALIZE, MAX_SCALE } from '../native-workers/engine/passes/equalize.js';
import { formatFor, structureRanges, uniformAssignment } from '../native-workers/engine/fixedpoint/assignment.js';
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
import { claimRunFolder, lockRunFolder, removeRunFiles } from './run-folder.js';
import { StatsRunner } from '../native-workers/engine/runtime/stats-runner.js';
import { imageBatches, refuseSkipped } from './image-feed.js';
import {
  DEFAULT_ROUNDER,
  DEFAULT_ROUNDING_METHOD,
  OPTIMIZED_MAX_BITS,
  OPTIMIZED_UNIFORM_MIN_CALIB,
  UNIFORM_ROUNDER,
  layerInputs,
  roundingDir,
  WeightRounder,
  type RoundingBatch,
} from './optimized-rounding.js';

export type ProgressEvent = SearchJobProgress;

/** The search starts at 16 bits too; wider formats would give a simulation that is not the integer network. */
export const UNIFORM_MAX_BITS = 16;

export interface QuantizeOptions extends Omit<SearchJobOptions, 'budget'> {
  uniform?: number;
  /** With `uniform`: the weights at this word length instead (e.g. W4A8: --uniform 8 --weight-bits 4). */
  weightBits?: number;
  budget?: number;
}

/**
 * A run folder is written only when it is new, empty or FxPQ's own (services/run-folder.ts: the
 * marker, written first), and by one process at a time (its lock, released however this ends).
 */
export async function quantize(o: QuantizeOptions): Promise<RunReport> {
  if (o.uniform === undefined) {
    if (o.weightBits !== undefined) throw new FxpqError('--weight-bits goes with --uniform B.', 'io');
    if (o.budget === undefined)
      throw new FxpqError('quantize needs a budget (--budget PP) or a uniform word length (--uniform B).', 'io');
  }
  await prepareOutputFolder(o.out, 'the run folder (--out)');
  await claimRunFolder(o.out);
  const lock = await lockRunFolder(o.out);
  try {
    // Checked again under the lock: another process may have written into it in between.
    await claimRunFolder(o.out);
    if (o.uniform === undefined)
      return await quantizeSearch({ ...o, budget: o.budget!, onProgress: (p) => o.onProgress?.(p) });
    return await quantizeUniform(o, o.uniform);
  } finally {
    await lock.release();
  }
}

async function quantizeUniform(o: QuantizeOptions, uniform: number): Promise<RunReport> {
  if (
    o.weightBits !== undefined &&
    (!Number.isInteger(o.weightBits) || o.weightBits < MIN_BITS || o.weightBits > UNIFORM_MAX_BITS)
  )
    throw new FxpqError(`--weight-bits ${o.weightBits} is outside ${MIN_BITS}..${UNIFORM_MAX_BITS} bits.`, 'io');
  if (!Number.isInteger(uniform) || uniform < MIN_BITS || uniform > UNIFORM_MAX_BITS) {
    throw new FxpqError(
      `--uniform ${uniform} is outside ${MIN_BITS}..${UNIFORM_MAX_BITS} bits (above 16 bits the float32 simulation is no longer exact, and the integer sums pass 52 bits).`,
      'io',
    );
  }
  const started = performance.now();
  const s = await openSession(o);
  // The old run's report goes first: until the new one is written last, the folder reads as
  // unfinished, and an old report never pairs with a new config.json. Its rounded weights go too
  // (they belong to the old formats).
  // A search's checkpoints and trajectory left in the folder would no longer go with its config.
  await removeRunFiles(o.out, [
    'report.json',
    'checkpoint.json',
    'checkpoint.prev.json',
    'trajectory.jsonl',
    'rounding',
  ]);
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
  const assignment: Assignment = uniformAssignment(plan, uniform, ranges);
  const weightBits = o.weightBits;
  if (weightBits !== undefined) {
    for (const st of plan.structures)
      if (st.kind === 'W') assignment[st.id] = formatFor(st, weightBits, ranges.get(st.id)!);
  }

  const float = await FloatRunner.create(s.model.bytes, s.model.original, s.model.source);
  const sim = await SimRunner.create(plan);
  let rounding: NonNullable<RunReport['rounding']> | undefined;
  try {
    // By default only where some weight is at OPTIMIZED_MAX_BITS or less (above, nearest is
    // near-exact: a uniform 12-bit run records 'nearest', as it is) and on enough images.
    const roundable =
      split.calib.length >= OPTIMIZED_UNIFORM_MIN_CALIB &&
      plan.structures.some((st) => st.kind === 'W' && assignment[st.id]!.bits <= OPTIMIZED_MAX_BITS);
    const method = o.rounding ?? (roundable ? DEFAULT_ROUNDING_METHOD : 'nearest');
    if (method === 'optimized') {
      const t0 = performance.now();
      const batches: RoundingBatch[] = [];
      for await (const b of imageBatches({
        dataset: s.dataset,
        indices: split.calib.slice(0, DEFAULT_ROUNDER.images),
        spec: s.spec,
        imageSize: sim.imageSize,
        batchSize: 50,
        cache,
        onSkip: refuseSkipped(s.dataset, "the uniform run's optimized rounding"),
      }))
        if (b.indices.length > 0) batches.push({ data: b.data.slice(), count: b.indices.length });
      const floatInputs = await StatsRunner.create(plan, layerInputs(plan));
      try {
        const rounder = new WeightRounder(
          plan,
          sim,
          floatInputs,
          batches,
          roundingDir(o.out),
          undefined,
          UNIFORM_ROUNDER,
        );
        try {
          await rounder.ensure(
            assignment,
            {},
            {
              onLayer: (done, total) => o.onProgress?.({ stage: 'rounding', done, total }),
              ...(o.signal ? { signal: o.signal } : {}),
            },
          );
        } finally {
          await rounder.release();
          // The rounder's quantized inputs are not needed by the held-out evaluation.
          sim.forgetActivations();
        }
        rounding = {
          method: 'optimized',
          structureFormats: rounder.computed,
          seconds: (performance.now() - t0) / 1000,
        };
      } finally {
        await floatInputs.release();
      }
    } else rounding = { method: 'nearest', structureFormats: 0, seconds: 0 };
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
      equalize: o.equalize ?? DEFAULT_EQUALIZE,
      equalizeMaxScale: o.equalizeMaxScale ?? MAX_SCALE,
      mode: { kind: 'uniform', bits: uniform, ...(weightBits !== undefined ? { weightBits } : {}) },
      rounding,
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
