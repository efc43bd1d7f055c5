/**
 * One evaluation loop for every engine: the float teacher (onnxruntime), the fake-quant
 * simulation (onnxruntime, one session for every assignment) and the integer executor
 * (TypeScript, spread over the worker pool). Images stream through the cache and the pool.
 */
import { availableParallelism } from 'node:os';
import { AccuracyMeter } from '../native-workers/engine/data/metrics.js';
import { dequantizeArray, quantizeArray } from '../native-workers/engine/fixedpoint/format.js';
import type { Assignment, QuantPlan } from '../native-workers/engine/fixedpoint/plan.js';
import type { IntProgram } from '../native-workers/engine/fixedpoint/program.js';
import type { ParameterOverrides } from '../native-workers/engine/fixedpoint/quantized-cache.js';
import { FloatRunner } from '../native-workers/engine/runtime/float-runner.js';
import type { SimRunner } from '../native-workers/engine/runtime/sim-runner.js';
import type { IntKernels, IntTask } from '../native-workers/pool/int-worker.js';
import { FxpqError } from '../native-workers/engine/errors.js';
import { imageBatches } from './image-feed.js';
import { workerPool } from './pool.js';
import type { WorkSession } from './session.js';
import type { TensorCache } from './tensor-cache.js';
import { engineEntry } from './engine-thread.js';

export type QuantEngine =
  | { kind: 'sim'; plan: QuantPlan; assignment: Assignment; runner: SimRunner; overrides?: ParameterOverrides }
  | { kind: 'int'; plan: QuantPlan; assignment: Assignment; program: IntProgram };

export interface EngineEvaluation {
  n: number;
  fp?: { top1: number; top5: number };
  /** n10 / n01: images the float model gets right and the fixed-point wrong, and the reverse. */
  quant?: { top1: number; top5: number; agreement: number; n10?: number; n01?: number };
  perClass: Record<string, { n: number; top1: number }>;
  skipped: { path: string; reason: string }[];
  /** n x classes, in the order of the evaluated images (quant when present, else fp). */
  logits?: Float32Array;
  /** Per class id: float and fixed-point top-1, when both were evaluated. */
  perClassBoth?: { classId: string; n: number; fpTop1: number; quantTop1: number }[];
  /** Images whose fixed-point top logit is tied with another class (top-1 then decided by class order). */
  ties?: number;
  /**
   * Rows: true class, columns: predicted class (fixed point when present, else float); left out
   * above MAX_CONFUSION_CLASSES classes (it grows with their square).
   */
  confusion?: number[][];
}

/** The most classes a confusion matrix is kept for: 2048^2 cells (32 MB); ImageNet-1k's 1000 or 1001 fit. */
export const MAX_CONFUSION_CLASSES = 2048;

/** Outputs per image the model declares, when every dimension after the batch is fixed. */
function declaredOutputs(s: WorkSession): number | undefined {
  const shape = s.model.original.outputs[0]?.shape;
  if (!shape || shape.length < 1) return undefined;
  const rest = shape.slice(1);
  return rest.every((d) => d > 0) ? rest.reduce((a, b) => a * b, 1) : undefined;
}

// Program ids for the int-worker tasks: a worker keeps the packed weights of the last id it saw.
const programIds = new WeakMap<IntProgram, string>();
const idPrefix = Math.random().toString(36).slice(2);
let nextProgramId = 0;

/**
 * Integer logits of `count` images on the pool, a slice of images per worker task. `kernels`:
 * the WebAssembly kernels where they run (default), or 'ts' for the TypeScript ones only.
 */
export async function runIntOnPool(
  program: IntProgram,
  inputs: Int32Array,
  count: number,
  kernels?: IntKernels,
): Promise<Int32Array> {
  const per = Math.max(1, Math.ceil(count / availableParallelism()));
  const size = inputs.length / count;
  const outSize = program.output.shape.reduce((a, b) => a * b, 1);
  const parts: Promise<Int32Array>[] = [];
  let programId = programIds.get(program);
  if (!programId) programIds.set(program, (programId = `${idPrefix}-${nextProgramId++}`));
  for (let start = 0; start < count; start += per) {
    const n = Math.min(per, count - start);
    const task: IntTask = {
      program,
      inputs: inputs.slice(start * size, (start + n) * size),
      count: n,
      programId,
      ...(kernels ? { kernels } : {}),
    };
    parts.push(workerPool('int-worker').run(task) as Promise<Int32Array>);
  }
  const out = new Int32Array(count * outSize);
  let o = 0;
  for (const p of await Promise.all(parts)) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Quantized-engine logits of one batch (m_y * 2^-f_y as float). */
export async function quantLogits(engine: QuantEngine, data: Float32Array, count: number): Promise<Float32Array> {
  const inputId = engine.plan.activationOf.get(engine.plan.inputName)!;
  const inputFormat = engine.assignment[inputId]!;
  const m = quantizeArray(data, inputFormat);
  if (engine.kind === 'sim')
    return engine.runner.run(engine.assignment, dequantizeArray(m, inputFormat.frac), count, engine.overrides);
  const ints = await runIntOnPool(engine.program, m, count);
  return dequantizeArray(ints, engine.program.output.frac);
}

export interface EvaluateOnOptions {
  float?: FloatRunner;
  quant?: QuantEngine;
  cache: TensorCache;
  batchSize?: number;
  keepLogits?: boolean;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export async function evaluateOn(s: WorkSession, indices: number[], o: EvaluateOnOptions): Promise<EngineEvaluation> {
  engineEntry('evaluation');
  const classes = s.classes.ids.length;
  const mismatch = (outputs: number): FxpqError =>
    new FxpqError(
      `${s.model.source} has ${outputs} outputs but the class list (${s.classes.source}) has ${classes} classes.`,
      'invalid-model',
    );
  // Compared before anything is allocated per class (the confusion matrix grows with its square).
  const declared = declaredOutputs(s);
  if (declared !== undefined && declared !== classes) throw mismatch(declared);
  const fpMeter = o.float ? new AccuracyMeter(classes) : undefined;
  const qMeter = o.quant ? new AccuracyMeter(classes) : undefined;
  const skipped: EngineEvaluation['skipped'] = [];
  const logits: Float32Array[] = [];
  let agree = 0;
  let n10 = 0;
  let n01 = 0;
  let done = 0;
  // Allocated once the first batch has shown the model's outputs match the class list.
  let confusion: number[][] | undefined;
  let ties = 0;
  const imageSize = s.model.original.inputs[0]!.shape.slice(1).reduce((a, b) => a * b, 1);
  const fixed = o.float?.fixedBatch ?? null;
  for await (const batch of imageBatches({
    dataset: s.dataset,
    indices,
    spec: s.spec,
    imageSize,
    batchSize: o.batchSize ?? (fixed && fixed > 1 ? fixed : 32),
    cache: o.cache,
    onSkip: (i, reason) => skipped.push({ path: s.dataset.images[i]!.path, reason }),
  })) {
    if (o.signal?.aborted) throw new FxpqError('The evaluation was cancelled.', 'io');
    const count = batch.indices.length;
    if (count > 0) {
      const labels = batch.indices.map((i) => s.labels[i]!);
      const fp = o.float ? await o.float.run(batch.data, count) : undefined;
      const q = o.quant ? await quantLogits(o.quant, batch.data, count) : undefined;
      for (const out of [fp, q]) if (out && out.length !== count * classes) throw mismatch(out.length / count);
      if (!confusion && classes <= MAX_CONFUSION_CLASSES)
        confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
      const fpTop = fp ? fpMeter!.add(fp, labels) : undefined;
      const qTop = q ? qMeter!.add(q, labels) : undefined;
      if (fpTop && qTop)
        fpTop.forEach((p, i) => {
          const fpRight = p === labels[i];
          const qRight = qTop[i] === labels[i];
          agree += p === qTop[i] ? 1 : 0;
          n10 += fpRight && !qRight ? 1 : 0;
          n01 += !fpRight && qRight ? 1 : 0;
        });
      if (confusion) (qTop ?? fpTop)?.forEach((p, i) => confusion![labels[i]!]![p]!++);
      if (q) ties += countTies(q, count, classes);
      if (o.keepLogits) logits.push((q ?? fp)!.slice());
    }
    done += count;
    o.onProgress?.(done + skipped.length, indices.length);
  }
  const main = (qMeter ?? fpMeter)?.result();
  if (!main || main.n === 0)
    throw new FxpqError(`No image of ${s.dataset.root} could be evaluated (${skipped.length} skipped).`, 'io');
  // No prototype: a class named `constructor` or `__proto__` is a key like any other.
  const perClass = Object.create(null) as EngineEvaluation['perClass'];
  main.perClass.forEach((c, i) => {
    if (c.seen > 0) perClass[s.classes.ids[i]!] = { n: c.seen, top1: c.top1 };
  });
  const result: EngineEvaluation = { n: main.n, perClass, skipped, ...(confusion ? { confusion } : {}) };
  if (fpMeter && qMeter) {
    const fpClasses = fpMeter.result().perClass;
    result.perClassBoth = main.perClass.flatMap((c, i) =>
      c.seen > 0 ? [{ classId: s.classes.ids[i]!, n: c.seen, fpTop1: fpClasses[i]!.top1, quantTop1: c.top1 }] : [],
    );
  }
  if (fpMeter) {
    const r = fpMeter.result();
    result.fp = { top1: r.top1, top5: r.top5 };
  }
  if (qMeter) {
    const r = qMeter.result();
    result.quant = {
      top1: r.top1,
      top5: r.top5,
      agreement: fpMeter ? agree / r.n : NaN,
      ...(fpMeter ? { n10, n01 } : {}),
    };
    result.ties = ties;
  }
  if (o.keepLogits) {
    const all = new Float32Array(logits.reduce((n, l) => n + l.length, 0));
    let off = 0;
    for (const l of logits) {
      all.set(l, off);
      off += l.length;
    }
    result.logits = all;
  }
  return result;
}

/** Rows of `logits` (count x classes) whose maximum is reached by more than one class. */
export function countTies(logits: Float32Array, count: number, classes: number): number {
  let ties = 0;
  for (let i = 0; i < count; i++) {
    let max = -Infinity;
    let n = 0;
    for (let k = i * classes; k < (i + 1) * classes; k++) {
      const v = logits[k]!;
      if (v > max) {
        max = v;
        n = 1;
      } else if (v === max) n++;
    }
    if (n > 1) ties++;
  }
  return ties;
}
