/** `fxpq evaluate`: the float model, and with a run its fixed-point network (simulated or integer-only). */
import { lstat, readFile, realpath } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { buildPlan } from '../native-workers/engine/fixedpoint/plan.js';
import { compileProgram } from '../native-workers/engine/fixedpoint/compile.js';
import { FloatRunner } from '../native-workers/engine/runtime/float-runner.js';
import { writeOnnx } from '../native-workers/engine/onnx/onnx-format.js';
import type { Graph } from '../native-workers/engine/ir/graph.js';
import { SimRunner } from '../native-workers/engine/runtime/sim-runner.js';
import { FxpqError } from '../native-workers/engine/errors.js';
import { evaluateOn, type QuantEngine } from './engines.js';
import { writeFileAtomic } from './files.js';
import { runRoundedWeights } from './optimized-rounding.js';
import { readRunConfig, runEqualized, sha256, withDropStandardError } from './runs.js';
import { checkRunConfigAgainstDataset, checkRunConfigAgainstPlan } from './run-schemas.js';
import { openSession, splitIndices, type WorkSession } from './session.js';
import { loadModelFile, sidecarPath } from './models.js';
import { defaultCacheDir, TensorCache } from './tensor-cache.js';
import type { EvaluationResult } from '../api/contract.js';

export interface EvaluateOptions {
  modelPath: string;
  dataPath: string;
  classes?: string;
  preprocess?: string;
  split?: 'all' | 'calib' | 'eval';
  run?: string;
  engine?: 'sim' | 'int';
  batchSize?: number;
  cacheDir?: string;
  saveLogits?: string;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export type { EvaluationResult };

export async function evaluate(options: EvaluateOptions): Promise<EvaluationResult> {
  const run = options.run ? await readRunConfig(options.run) : undefined;
  const s = await openSession({
    modelPath: options.modelPath,
    dataPath: options.dataPath,
    classes: options.classes,
    // A run remembers its preprocessing; --preprocess still wins.
    preprocess: options.preprocess ?? run?.preprocess,
    // Without a run only onnxruntime runs the model: any model it runs can be evaluated, the
    // exported model.qdq.onnx included, without FxPQ's import for quantization.
    floatOnly: !run,
    ...(run ? runEqualized(run) : {}),
  });
  if (run && run.model.sha256 !== sha256(s.model.bytes)) {
    throw new FxpqError(
      `${options.run} was made from another model (sha256 ${run.model.sha256.slice(0, 12)}...), not ${options.modelPath}.`,
      'io',
    );
  }
  if (run) checkRunConfigAgainstDataset(run, s.dataset.images.length, options.run!);
  if (options.saveLogits) await checkLogitsTarget(options.saveLogits, s, options.run);
  const recorded = run ? { seed: run.data.seed, calib: run.data.calib, eval: run.data.eval } : s.dataset.split;
  const indices = splitIndices(s.dataset, options.split, recorded);
  const cache = new TensorCache(options.cacheDir ?? defaultCacheDir());
  // A model that ends in Softmax outputs probabilities; --save-logits writes logits, the tensor
  // before the Softmax (the same the search's teacher and the fixed-point network produce).
  const endsInSoftmax = s.model.original.nodes.at(-1)?.op === 'Softmax';
  const canonical =
    options.saveLogits && !run && endsInSoftmax
      ? await loadModelFile(options.modelPath).then(
          (m) => m.canonical,
          // A model FxPQ cannot import (an exported QDQ model) saves what it outputs.
          () => undefined,
        )
      : undefined;
  const logitsGraph = canonical ? withoutFinalSoftmax(canonical) : undefined;
  const float = logitsGraph
    ? await FloatRunner.create(writeOnnx(logitsGraph), logitsGraph, s.model.source)
    : await FloatRunner.create(s.model.bytes, s.model.original, s.model.source);
  let quant: QuantEngine | undefined;
  let sim: SimRunner | undefined;
  if (run) {
    const plan = buildPlan(s.model.canonical, { inputNonNegative: run.inputNonNegative });
    checkRunConfigAgainstPlan(run, plan, options.run!);
    const rounded =
      run.rounding === 'optimized' ? await runRoundedWeights(options.run!, run.assignment, plan) : undefined;
    if ((options.engine ?? 'sim') === 'sim') {
      sim = await SimRunner.create(plan);
      sim.quantized.setRounded(rounded);
      quant = { kind: 'sim', plan, assignment: run.assignment, runner: sim, overrides: run.biases ?? {} };
    } else {
      quant = {
        kind: 'int',
        plan,
        assignment: run.assignment,
        program: compileProgram(plan, run.assignment, run.biases ?? {}, undefined, rounded),
      };
    }
  }
  try {
    const r = await evaluateOn(s, indices, {
      float,
      quant,
      cache,
      batchSize: options.batchSize,
      keepLogits: Boolean(options.saveLogits),
      onProgress: options.onProgress,
      signal: options.signal,
    });
    if (options.saveLogits) await writeFileAtomic(options.saveLogits, new Uint8Array(r.logits!.buffer));
    return {
      n: r.n,
      fp: r.fp!,
      ...(r.quant ? { quant: withDropStandardError(r.quant, r.n) } : {}),
      perClass: r.perClass,
      classes: { count: s.classes.ids.length, source: s.classes.source },
      preprocess: s.specText,
      skipped: r.skipped,
      cache: { hits: cache.hits, misses: cache.misses },
    };
  } finally {
    await float.release();
    await sim?.release();
  }
}

/** Where a path really is: its real path, or its folder's real path and its name when it does not exist yet. */
async function realLocation(path: string): Promise<string> {
  const abs = resolve(path);
  try {
    return await realpath(abs);
  } catch {
    try {
      return join(await realpath(dirname(abs)), basename(abs));
    } catch {
      return abs;
    }
  }
}

const inside = (path: string, folder: string): boolean => path === folder || path.startsWith(folder + sep);

/** The largest existing file `--save-logits` reads to recognise earlier logits. */
const MAX_LOGITS_CHECK_BYTES = 2 ** 30;

/**
 * Whether an existing file can be logits this command wrote for this class count: raw float32,
 * a whole number of rows, every value finite and of a size logits have. A model, an image or a
 * text file fails (their bytes read as float32 hold NaNs, infinities or huge values).
 */
function looksLikeLogits(bytes: Uint8Array, classes: number): boolean {
  if (bytes.length === 0 || bytes.length % (4 * classes) !== 0) return false;
  const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  for (const v of values) if (!(Math.abs(v) < 1e9)) return false;
  return true;
}

/**
 * `--save-logits F` never overwrites what is not earlier logits: not the model or its sidecar,
 * nothing inside the dataset's folder or the run folder (by real path, through links), nothing
 * that is not a regular file, and no existing file that does not read as logits of this model.
 */
async function checkLogitsTarget(path: string, s: WorkSession, runPath?: string): Promise<void> {
  const target = await realLocation(path);
  const refuse = (why: string): never => {
    throw new FxpqError(`--save-logits ${path}: ${why}; choose another file for the logits.`, 'io');
  };
  if (target === (await realLocation(s.model.source))) refuse('that is the model file');
  if (target === (await realLocation(sidecarPath(s.model.source)))) refuse("that is the model's sidecar");
  if (inside(target, await realLocation(s.dataset.root)))
    refuse(`that is inside the dataset's folder ${s.dataset.root}`);
  if (runPath && inside(target, await realLocation(runPath))) refuse(`that is inside the run folder ${runPath}`);
  const info = await lstat(target).catch(() => undefined);
  if (!info) return;
  if (!info.isFile()) refuse('that exists and is not a regular file');
  if (info.size > MAX_LOGITS_CHECK_BYTES || !looksLikeLogits(await readFile(target), s.classes.ids.length))
    refuse(`that file exists and is not logits of this model's ${s.classes.ids.length} classes`);
}

/** Float evaluation only (kept for callers that never pass a run). */
/** The graph without a final Softmax, its input becoming the output; undefined when there is none. */
function withoutFinalSoftmax(g: Graph): Graph | undefined {
  const last = g.nodes.at(-1);
  if (last?.op !== 'Softmax' || g.outputs[0]?.name !== last.outputs[0]) return undefined;
  return {
    ...g,
    nodes: g.nodes.slice(0, -1),
    outputs: [{ ...g.outputs[0]!, name: last.inputs[0]! }],
  };
}

export const evaluateFloat = (o: Omit<EvaluateOptions, 'run' | 'engine'>): Promise<EvaluationResult> => evaluate(o);
