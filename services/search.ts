/**
 * The quantize job with a budget: the FxP-QNet search (engine/search/fxp-qnet.ts) wired to
 * images, the teacher, the simulation and the run folder. Every step is appended to
 * RUN/trajectory.jsonl and checkpointed to RUN/checkpoint.json (atomically); the same
 * command on an existing RUN resumes from the last checkpoint and ends with the same result.
 */
import {
  DEFAULT_EQUALIZE,
  LEGACY_MAX_SCALE,
  MAX_SCALE,
  type EqualizeMode,
} from '../native-workers/engine/passes/equalize.js';
import { appendFile, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { totalmem } from 'node:os';
import { seededRandom } from '../native-workers/engine/data/split.js';
import { topK } from '../native-workers/engine/data/metrics.js';
import { structureRanges } from '../native-workers/engine/fixedpoint/assignment.js';
import { buildPlan, type Assignment, type QuantPlan } from '../native-workers/engine/fixedpoint/plan.js';
import { FloatRunner } from '../native-workers/engine/runtime/float-runner.js';
import { SimRunner } from '../native-workers/engine/runtime/sim-runner.js';
import { StatsRunner } from '../native-workers/engine/runtime/stats-runner.js';
import {
  DEFAULT_SEARCH,
  FxpQNetSearch,
  initialState,
  type SearchOptions,
  type SearchProgress,
  type SearchState,
  type Strategy,
  type TrajectoryStep,
} from '../native-workers/engine/search/fxp-qnet.js';
import { decidedAgainst, klDivergence, type PairedCounts } from '../native-workers/engine/search/prediction-error.js';
import { FxpqError } from '../native-workers/engine/errors.js';
import type { Node } from '../native-workers/engine/ir/graph.js';
import { evaluateOn } from './engines.js';
import { engineEntry } from './engine-thread.js';
import { writeActivationHistograms } from './run-statistics.js';
import { writeFileAtomic } from './files.js';
import { removeRunFiles } from './run-folder.js';
import {
  checkCheckpointAgainstPlan,
  CheckpointSchema,
  parseTrajectoryLines,
  readRunDocument,
  RunReportSchema,
} from './run-schemas.js';
import {
  defaultSearchRounding,
  layerInputs,
  readRoundedWeights,
  roundingDir,
  WeightRounder,
  type Rounding,
} from './optimized-rounding.js';
import { imageBatches, refuseSkipped } from './image-feed.js';
import { collectStatistics } from './statistics.js';
import { buildRun, sha256, writeRun, type RunReport } from './runs.js';
import { chooseSplit, inputNonNegative, openSession, type SessionOptions, type WorkSession } from './session.js';
import { defaultCacheDir, TensorCache } from './tensor-cache.js';

export interface SearchJobOptions extends SessionOptions {
  out: string;
  budget: number;
  calib?: number;
  eval?: number;
  seed?: number;
  strategy?: Strategy;
  distill?: boolean;
  biasCorrection?: boolean;
  /** The fractional-length choice of step 2 (default on; off keeps the range rule's f0). */
  fracChoice?: boolean;
  /** How weights are rounded (issue 15); default: optimized on 1000+ calibration images, else nearest. */
  rounding?: Rounding;
  /** z of the paired bound; 0 accepts on the plain drop. */
  z?: number;
  /** z of the final check's bound (default 2; a value below `z` is raised to `z`; see SearchOptions.finalZ). */
  finalZ?: number;
  /** Images of the early-rejection and distillation slice (default: a quarter of D_c, at least 200). */
  slice?: number;
  cacheDir?: string;
  /** onnxruntime intra-op threads of the simulation (default: every core; see BENCHMARKS.md, event loop). */
  ortThreads?: number;
  /**
   * How the simulation holds weights and biases: baked into a session per assignment (default),
   * or fed as inputs to one session (the earlier way, kept as the benchmark's baseline).
   */
  simulation?: 'baked' | 'feeds';
  /**
   * Bytes of the state's activations kept so that a candidate runs only the layers after its
   * change (default: an eighth of the machine's memory, at most 4 GiB; 0 keeps none).
   */
  activationCacheBytes?: number;
  onProgress?: (p: SearchJobProgress) => void;
  /** Every trajectory step: first the ones a resumed run already has, then each new one. */
  onStep?: (step: TrajectoryStep) => void;
  signal?: AbortSignal;
  /**
   * Which checkpoint a resumed run starts from: the latest (default), the previous one (when the
   * latest is damaged), or none (start the run over, discarding its checkpoints and trajectory).
   */
  checkpoint?: CheckpointChoice;
  /** Test hook: stop (as if killed) after this many checkpoints. */
  stopAfterCheckpoints?: number;
}

export interface SearchJobProgress {
  stage: 'statistics' | 'teacher' | 'rounding' | 'search' | 'evaluation';
  done: number;
  total: number;
  search?: SearchProgress;
  etaSeconds?: number;
}

/** What identifies a run's inputs: the same command must resume it, another one must not. */
interface JobIdentity {
  model: string;
  data: string;
  budget: number;
  seed: number;
  calib: number;
  eval: number;
  strategy: Strategy;
  distill: boolean;
  biasCorrection: boolean;
  /** Absent for rounding to nearest (the runs made before optimized rounding resume as they were). */
  rounding?: 'optimized';
  z: number;
  slice: number;
  preprocess: string;
  classes: string;
  /** Cross-layer equalization: it renames the tensors the assignment names. */
  equalize: EqualizeMode;
  /** Its scale limit; absent: LEGACY_MAX_SCALE (runs checkpointed before it was recorded). */
  equalizeMaxScale?: number;
  /** Present only when off (the runs made before the switch resume as they were). */
  fracChoice?: false;
  /** The output's floor; absent: 8 bits (runs checkpointed before it became 16). */
  logitsFloor?: number;
  /** The final check's z; absent: the steps' z (runs checkpointed before it had its own). */
  finalZ?: number;
}

const LEGACY_LOGITS_FLOOR = 8;

/** The activations a search keeps by default (`activationCacheBytes`): memory a workstation can spare. */
const DEFAULT_ACTIVATION_CACHE_BYTES = Math.min(4 * 2 ** 30, Math.floor(totalmem() / 8));

interface Checkpoint {
  identity: JobIdentity;
  state: SearchState;
  seconds: number;
}

interface CalibBatch {
  data: Float32Array;
  count: number;
  labels: number[];
  teacher: Float32Array;
  /** Images of this batch the teacher classifies correctly. */
  teacherRight: number;
}

class SearchEvaluator {
  readonly batches: CalibBatch[] = [];
  classes = 0;

  /** Optimized rounding: every evaluated assignment's weight formats get their integers first. */
  rounder?: WeightRounder;

  /** Seconds of simulation per search phase (rounding not included), for the cost report. */
  readonly simulationSeconds: Record<string, number> = {};

  private timed(phase: string, since: number): void {
    this.simulationSeconds[phase] = (this.simulationSeconds[phase] ?? 0) + (performance.now() - since) / 1000;
  }

  constructor(
    private readonly plan: QuantPlan,
    private readonly sim: SimRunner,
    private readonly stats: StatsRunner,
    /** z of the paired bound, for sequential decisions. */
    private readonly z: number,
  ) {}

  private batchesFor(count: number): CalibBatch[] {
    const out: CalibBatch[] = [];
    let n = 0;
    for (const b of this.batches) {
      if (n >= count) break;
      out.push(b);
      n += b.count;
    }
    return out;
  }

  async evaluate(
    a: Assignment,
    biases: Record<string, number[]>,
    count: number,
    phase: string,
    decideAgainst?: number,
    prefix?: PairedCounts,
    base?: { assignment: Assignment; biases: Record<string, number[]> },
  ): Promise<PairedCounts> {
    engineEntry(`search-${phase}`);
    // Before the rounder, whose layer reads keep what matches the state; again after it, whose new
    // integers may change the state's keys (a structure rounded only now).
    if (base) this.sim.setActivationBase(base.assignment, base.biases);
    await this.rounder?.ensure(a, biases);
    if (base) this.sim.setActivationBase(base.assignment, base.biases);
    const start = performance.now();
    const c: PairedCounts = { n: 0, n10: 0, n01: 0, correct: 0, kl: 0 };
    const k = this.classes;
    const batches = this.batchesFor(count);
    let teacherRightLeft = batches.reduce((n, b) => n + b.teacherRight, 0);
    // The counts of the same assignment on the first images (the slice) are taken, not recomputed.
    let skip = 0;
    if (prefix && !prefix.decided) {
      let n = 0;
      while (skip < batches.length && n + batches[skip]!.count <= prefix.n) n += batches[skip++]!.count;
      if (n === prefix.n) {
        Object.assign(c, {
          n,
          n10: prefix.n10,
          n01: prefix.n01,
          correct: prefix.correct,
          kl: prefix.kl * n,
          reused: n,
        });
        for (const b of batches.slice(0, skip)) teacherRightLeft -= b.teacherRight;
      } else skip = 0;
    }
    // Sequential testing: stop once no outcome of the remaining images can change the decision.
    const decide = () =>
      decideAgainst === undefined ? undefined : decidedAgainst(c, count, teacherRightLeft, this.z, decideAgainst);
    // The decision may already be settled by the prefix, as it would be after its last batch.
    const settled = skip > 0 ? decide() : undefined;
    if (settled) {
      c.decided = settled;
      skip = batches.length;
    }
    for (const [batch, b] of batches.entries()) {
      if (batch < skip) continue;
      const out = await this.sim.run(a, this.sim.quantizeInput(a, b.data, batch), b.count, biases, batch);
      for (let i = 0; i < b.count; i++) {
        const t = topK(b.teacher.subarray(i * k, (i + 1) * k), 1)[0] === b.labels[i];
        const s = topK(out.subarray(i * k, (i + 1) * k), 1)[0] === b.labels[i];
        c.n++;
        if (s) c.correct++;
        if (t && !s) c.n10++;
        if (!t && s) c.n01++;
        c.kl += klDivergence(b.teacher, out, i * k, k);
      }
      teacherRightLeft -= b.teacherRight;
      const decided = decide();
      if (decided) {
        c.decided = decided;
        break;
      }
    }
    c.kl /= Math.max(c.n, 1);
    this.timed(phase, start);
    return c;
  }

  async layerError(a: Assignment, biases: Record<string, number[]>, node: Node, count: number): Promise<Float64Array> {
    engineEntry('bias-correction');
    await this.rounder?.ensure(a, biases);
    // The layer's output under the state itself (bias correction reads the state).
    this.sim.setActivationBase(a, biases);
    const start = performance.now();
    const tensor = node.outputs[0]!;
    const channels = this.plan.shapes.get(tensor)![1]!;
    const sum = new Float64Array(channels);
    let per = 0;
    for (const [i, b] of this.batchesFor(count).entries()) {
      const q = (await this.sim.runOutputs(a, this.sim.quantizeInput(a, b.data, i), b.count, [tensor], biases, i)).get(
        tensor,
      )!;
      const fp = (await this.stats.run(b.data, b.count, [tensor])).get(tensor)!;
      const spatial = fp.length / (b.count * channels);
      for (let i = 0; i < fp.length; i++) sum[Math.floor(i / spatial) % channels]! += fp[i]! - q[i]!;
      per += b.count * spatial;
    }
    this.timed('bias', start);
    return sum.map((v) => v / Math.max(per, 1));
  }
}

export type CheckpointChoice = 'latest' | 'previous' | 'restart';
const CHECKPOINT = 'checkpoint.json';
/** The checkpoint before the latest: a damaged latest one need not cost the whole search. */
const PREVIOUS_CHECKPOINT = 'checkpoint.prev.json';

const CHECKPOINT_ADVICE = 'delete it (and trajectory.jsonl) to start the run over';
const readCheckpointFile = async (file: string): Promise<Checkpoint> =>
  (await readRunDocument(file, CheckpointSchema, 'a search checkpoint', CHECKPOINT_ADVICE)) as Checkpoint;

async function readCheckpoint(dir: string, choice: CheckpointChoice): Promise<Checkpoint | undefined> {
  const [file, previous] = [join(dir, CHECKPOINT), join(dir, PREVIOUS_CHECKPOINT)];
  if (choice === 'restart') {
    // By name, never the folder: a file the user keeps in the run folder stays.
    await removeRunFiles(dir, [CHECKPOINT, PREVIOUS_CHECKPOINT, 'trajectory.jsonl', 'report.json', 'rounding']);
    return undefined;
  }
  if (choice === 'previous') {
    if (!existsSync(previous))
      throw new FxpqError(
        `${dir} has no previous checkpoint (${PREVIOUS_CHECKPOINT}); start over with --restart.`,
        'io',
      );
    return readCheckpointFile(previous);
  }
  // Killed between moving the latest aside and writing the next one: the moved one is the latest.
  if (!existsSync(file)) return existsSync(previous) ? readCheckpointFile(previous) : undefined;
  try {
    return await readCheckpointFile(file);
  } catch (e) {
    const before = existsSync(previous) ? await readCheckpointFile(previous).catch(() => undefined) : undefined;
    throw new FxpqError(
      `${(e as Error).message.replace(/; delete it.*$/, '')}. ` +
        (before
          ? `Resume from the last good checkpoint (step ${before.state.steps}, ${PREVIOUS_CHECKPOINT}) with --previous-checkpoint, or start the run over with --restart.`
          : 'Start the run over with --restart.'),
      'io',
    );
  }
}

/**
 * Keep the first `lines` lines of the trajectory (a step recorded after the last checkpoint is
 * redone); each kept line is read through the schema. A trajectory shorter than the checkpoint
 * says is damaged.
 */
async function truncateTrajectory(dir: string, lines: number): Promise<TrajectoryStep[]> {
  const path = join(dir, 'trajectory.jsonl');
  if (!existsSync(path)) {
    if (lines === 0) return [];
    throw new FxpqError(
      `${path} is missing, though ${join(dir, CHECKPOINT)} records ${lines} steps; start the run over with --restart.`,
      'io',
    );
  }
  const text = await readFile(path, 'utf8');
  // Only the lines the checkpoint covers are read: a line torn after it is dropped unread.
  const kept = text.split('\n').filter(Boolean).slice(0, lines);
  const steps = parseTrajectoryLines(
    path,
    kept,
    'start the run over with --restart, or resume from --previous-checkpoint',
  ) as TrajectoryStep[];
  if (steps.length < lines)
    throw new FxpqError(
      `${path} has ${steps.length} steps, though ${join(dir, CHECKPOINT)} records ${lines}; start the run over with --restart.`,
      'io',
    );
  await writeFileAtomic(path, kept.map((l) => l + '\n').join(''));
  return steps;
}

class Stop extends Error {}

export async function quantizeSearch(o: SearchJobOptions): Promise<RunReport> {
  const choice = o.checkpoint ?? 'latest';
  // Read before the import, which must use the checkpoint's equalization limit (absent: a run
  // checkpointed before it was recorded, equalized with LEGACY_MAX_SCALE); a restart deletes, so
  // it waits until the inputs are checked.
  const previous = choice === 'restart' ? undefined : await readCheckpoint(o.out, choice);
  const equalizeMaxScale =
    o.equalizeMaxScale ?? (previous ? (previous.identity.equalizeMaxScale ?? LEGACY_MAX_SCALE) : MAX_SCALE);
  const s: WorkSession = await openSession({ ...o, equalizeMaxScale });
  const nonNegative = inputNonNegative(s.spec);
  const plan = buildPlan(s.model.canonical, { inputNonNegative: nonNegative });
  // A hand-edited checkpoint whose ids or lengths do not fit the model is named, not run.
  if (previous)
    checkCheckpointAgainstPlan(
      previous.state,
      plan,
      join(o.out, choice === 'previous' ? PREVIOUS_CHECKPOINT : CHECKPOINT),
      'start the run over with --restart',
    );
  const split = chooseSplit(s, o.calib, o.eval, o.seed);
  if (split.calib.length < 10 || split.eval.length === 0) {
    throw new FxpqError(
      `${o.dataPath} gives ${split.calib.length} calibration and ${split.eval.length} evaluation images; the search needs at least 10 calibration images and some evaluation images.`,
      'io',
    );
  }
  // Deletes the old run's checkpoints, trajectory, report and rounding (there is nothing to resume).
  if (choice === 'restart') await readCheckpoint(o.out, choice);
  // A run checkpointed before the output's floor went from 8 to 16 bits finishes with the floor it
  // started with (its identity has no logitsFloor).
  const logitsFloor =
    previous && previous.identity.logitsFloor === undefined ? LEGACY_LOGITS_FLOOR : DEFAULT_SEARCH.logitsFloor;
  // A run checkpointed before the final check had its own z finishes as it started (at the steps' z).
  const legacyFinalCheck = previous !== undefined && previous.identity.finalZ === undefined;
  if (legacyFinalCheck && o.finalZ !== undefined)
    throw new FxpqError(
      `${o.out} holds a run started before the final check had its own z; resume it without --final-z, or choose another --out folder.`,
      'io',
    );
  const z = o.z ?? DEFAULT_SEARCH.z;
  const options: SearchOptions = {
    ...DEFAULT_SEARCH,
    logitsFloor,
    budget: o.budget,
    z,
    // The final check is never looser than the steps: a smaller final z is raised to z.
    finalZ: legacyFinalCheck ? z : Math.max(z, o.finalZ ?? DEFAULT_SEARCH.finalZ),
    strategy: o.strategy ?? DEFAULT_SEARCH.strategy,
    distill: o.distill ?? DEFAULT_SEARCH.distill,
    biasCorrection: o.biasCorrection ?? DEFAULT_SEARCH.biasCorrection,
    fracChoice: o.fracChoice ?? DEFAULT_SEARCH.fracChoice,
  };
  const rounding = o.rounding ?? defaultSearchRounding(split.calib.length);
  const slice = Math.min(split.calib.length, o.slice ?? Math.max(200, Math.ceil(split.calib.length / 4)));
  const identity: JobIdentity = {
    model: sha256(s.model.bytes),
    data: resolve(o.dataPath),
    budget: o.budget,
    seed: split.seed,
    calib: split.calib.length,
    eval: split.eval.length,
    strategy: options.strategy,
    distill: options.distill,
    biasCorrection: options.biasCorrection,
    ...(rounding === 'optimized' ? { rounding } : {}),
    z: options.z,
    slice,
    preprocess: s.specText,
    classes: s.classes.source,
    equalize: o.equalize ?? DEFAULT_EQUALIZE,
    ...(equalizeMaxScale !== LEGACY_MAX_SCALE ? { equalizeMaxScale } : {}),
    ...(options.fracChoice ? {} : { fracChoice: false as const }),
    ...(logitsFloor !== LEGACY_LOGITS_FLOOR ? { logitsFloor } : {}),
    ...(legacyFinalCheck ? {} : { finalZ: options.finalZ }),
  };
  const checkpointFile = join(o.out, CHECKPOINT);
  const trajectoryFile = join(o.out, 'trajectory.jsonl');
  if (previous && JSON.stringify(previous.identity) !== JSON.stringify(identity)) {
    throw new FxpqError(
      `${o.out} holds a run started with other inputs or options; choose another --out folder or delete it.`,
      'io',
    );
  }
  const reportFile = join(o.out, 'report.json');
  if (previous?.state.phase === 'done' && existsSync(reportFile))
    return (await readRunDocument(
      reportFile,
      RunReportSchema,
      'a run report',
      'delete it to finish the run again',
    )) as RunReport;
  // Until the new report is written (last), the folder reads as an unfinished run.
  await removeRunFiles(o.out, ['report.json']);
  const steps = previous ? await truncateTrajectory(o.out, previous.state.steps) : [];
  if (!previous) {
    await writeFileAtomic(trajectoryFile, '');
    await removeRunFiles(o.out, ['rounding']);
  }
  if (o.onStep) for (const step of steps) o.onStep(step);

  const cache = new TensorCache(o.cacheDir ?? defaultCacheDir());
  // The slice must represent every class: a seeded shuffle of the (class-sorted) calibration split.
  const rand = seededRandom(split.seed + 1);
  const calibOrder = [...split.calib];
  for (let i = calibOrder.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [calibOrder[i], calibOrder[j]] = [calibOrder[j]!, calibOrder[i]!];
  }

  const stats = await collectStatistics(s, plan, split.calib, cache, (e) =>
    o.onProgress?.({ stage: 'statistics', done: e.done, total: e.total }),
  );
  const ranges = structureRanges(plan, (t) => stats.get(t)?.maxAbs ?? 0);
  await writeActivationHistograms(o.out, stats);
  const float = await FloatRunner.create(s.model.bytes, s.model.original, s.model.source);
  const sim = await SimRunner.create(plan, {
    ...(o.ortThreads ? { threads: o.ortThreads } : {}),
    baked: o.simulation !== 'feeds',
    activationCacheBytes: o.activationCacheBytes ?? DEFAULT_ACTIVATION_CACHE_BYTES,
  });
  const statsRunner = await StatsRunner.create(plan, rounding === 'optimized' ? layerInputs(plan) : []);
  const evaluator = new SearchEvaluator(plan, sim, statsRunner, options.z);
  if (rounding === 'optimized')
    evaluator.rounder = new WeightRounder(
      plan,
      sim,
      statsRunner,
      evaluator.batches,
      roundingDir(o.out),
      // A resumed search uses the integers its earlier part chose (they depend on what it had accepted then).
      previous ? await readRoundedWeights(o.out, undefined, plan) : undefined,
    );
  const endsInSoftmax = plan.graph.nodes.some((n) => n.op === 'Softmax');
  try {
    // Teacher logits once, kept with the calibration images (the teacher never changes).
    const imageSize = plan.shapes
      .get(plan.inputName)!
      .slice(1)
      .reduce((a, b) => a * b, 1);
    let teacherSeconds = 0;
    let loaded = 0;
    for await (const b of imageBatches({
      dataset: s.dataset,
      indices: calibOrder,
      spec: s.spec,
      imageSize,
      batchSize: 50,
      cache,
      onSkip: refuseSkipped(s.dataset, "the search's calibration (teacher)"),
    })) {
      engineEntry('teacher');
      const t0 = performance.now();
      // The student is the canonical graph without its final Softmax: the teacher must be the same
      // logits, not the probabilities such a model outputs (the KL would compare unlike things).
      const teacher = endsInSoftmax
        ? (await statsRunner.run(b.data, b.indices.length, [plan.logitsTensor])).get(plan.logitsTensor)!
        : await float.run(b.data, b.indices.length);
      teacherSeconds += (performance.now() - t0) / 1000;
      evaluator.classes = teacher.length / b.indices.length;
      const labels = b.indices.map((i) => s.labels[i]!);
      const k = teacher.length / b.indices.length;
      evaluator.batches.push({
        data: b.data.slice(),
        count: b.indices.length,
        labels,
        teacher,
        teacherRight: labels.filter((label, i) => topK(teacher.subarray(i * k, (i + 1) * k), 1)[0] === label).length,
      });
      loaded += b.indices.length;
      o.onProgress?.({ stage: 'teacher', done: loaded, total: calibOrder.length });
    }

    let checkpoints = 0;
    const roundingSecondsBefore = previous?.state.roundingSeconds ?? 0;
    // A resumed run's simulation seconds so far, added to this process's.
    Object.assign(evaluator.simulationSeconds, previous?.state.simulationSeconds ?? {});
    const secondsBefore = previous?.seconds ?? 0;
    const processStart = performance.now();
    let lastStepAt = performance.now();
    const search = new FxpQNetSearch(
      {
        plan,
        ranges,
        histograms: stats,
        calibCount: loaded,
        sliceCount: slice,
        evaluate: (a, biases, count, phase, decideAgainst, prefix, base) =>
          evaluator.evaluate(a, biases, count, phase, decideAgainst, prefix, base),
        layerError: (a, biases, node, count) => evaluator.layerError(a, biases, node, count),
        record: async (step: TrajectoryStep) => {
          await appendFile(trajectoryFile, JSON.stringify(step) + '\n');
          o.onStep?.(step);
        },
        checkpoint: async (state) => {
          const seconds = secondsBefore + (performance.now() - processStart) / 1000;
          // Copy, never move, the last checkpoint aside: a kill between the two writes must
          // still leave checkpoint.json in place.
          if (existsSync(checkpointFile))
            await writeFileAtomic(join(o.out, PREVIOUS_CHECKPOINT), await readFile(checkpointFile));
          state.roundingSeconds = roundingSecondsBefore + (evaluator.rounder?.seconds ?? 0);
          state.simulationSeconds = { ...evaluator.simulationSeconds };
          await writeFileAtomic(checkpointFile, JSON.stringify({ identity, state, seconds } satisfies Checkpoint));
          checkpoints++;
          if (o.stopAfterCheckpoints !== undefined && checkpoints >= o.stopAfterCheckpoints)
            throw new Stop('stopped for a test');
        },
        progress: (p) => {
          const now = performance.now();
          const perStep = (now - lastStepAt) / 1000;
          lastStepAt = now;
          o.onProgress?.({
            stage: 'search',
            done: p.total - p.active,
            total: p.total,
            search: p,
            etaSeconds: perStep * p.active,
          });
        },
        signal: o.signal,
      },
      options,
    );
    const state = await search.run(previous?.state ?? initialState());
    sim.forgetActivations();
    state.roundingSeconds = roundingSecondsBefore + (evaluator.rounder?.seconds ?? 0);
    const searchSeconds = secondsBefore + (performance.now() - processStart) / 1000;

    // Step 5: teacher and result on the held-out split only.
    const result = await evaluateOn(s, split.eval, {
      float,
      quant: { kind: 'sim', plan, assignment: state.assignment, runner: sim, overrides: state.biases },
      cache,
      onProgress: (done, total) => o.onProgress?.({ stage: 'evaluation', done, total }),
    });
    const { config, report } = buildRun({
      modelPath: o.modelPath,
      dataPath: o.dataPath,
      modelSha256: identity.model,
      session: s,
      split,
      plan,
      assignment: state.assignment,
      biases: state.biases,
      rounding: {
        method: rounding,
        structureFormats: evaluator.rounder?.store.size ?? 0,
        seconds: roundingSecondsBefore + (evaluator.rounder?.seconds ?? 0),
      },
      inputNonNegative: nonNegative,
      equalize: o.equalize ?? DEFAULT_EQUALIZE,
      equalizeMaxScale,
      mode: {
        kind: 'search',
        budget: o.budget,
        strategy: options.strategy,
        distill: options.distill,
        biasCorrection: options.biasCorrection,
        ...(options.fracChoice ? {} : { fracChoice: false }),
      },
      budget: o.budget,
      result,
      search: {
        evaluations: state.evaluations,
        seconds: searchSeconds,
        // Search cost in FP32 passes over D_c: its time over the teacher's time for one pass.
        fp32Passes: searchSeconds / Math.max(teacherSeconds, 1e-9),
        simPasses: state.images / loaded,
        fp32PassSeconds: teacherSeconds,
        simulationSeconds: Object.fromEntries(
          Object.entries(evaluator.simulationSeconds).map(([phase, v]) => [phase, Math.round(v * 10) / 10]),
        ),
        strategy: options.strategy,
        ...(state.final ? { finalCheck: { ...state.final, budget: o.budget } } : {}),
        keptActivations: (({ runs, hits, nodeShare, peakBytes }) => ({
          runs,
          hits,
          nodeShare: Math.round(nodeShare * 1000) / 1000,
          peakBytes,
        }))(sim.activationReuse),
      },
    });
    await writeRun(o.out, config, report);
    return report;
  } catch (e) {
    if (e instanceof Stop) throw new FxpqError('The search stopped at a checkpoint (test hook).', 'io');
    throw e;
  } finally {
    await float.release();
    await sim.release();
    await statsRunner.release();
    await evaluator.rounder?.release();
  }
}
