/**
 * Every file of a run folder read through a schema (issue 30, item 13): config.json, report.json,
 * checkpoint.json, the lines of trajectory.jsonl, the headers of rounding/*.bin and
 * activations.json. A file a user (or an attacker) edited by hand with a wrong type, a missing
 * field or an index out of range is one sentence naming the file and the field (zod's issue
 * path), never a TypeError deep in the engine. The semantic checks that need the model (every
 * structure has a format, bias overrides as long as the layer's bias, ids in `order` known) or
 * the dataset (indices within it) are here too, called once the model or dataset is open.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { FxpqError } from '../native-workers/engine/errors.js';
import type { Assignment, QuantPlan } from '../native-workers/engine/fixedpoint/plan.js';
import type { SearchState } from '../native-workers/engine/search/fxp-qnet.js';
import { readRegularFile } from './files.js';

/** A run document larger than this is not one FxPQ wrote (the largest, a config of 10 million indices, is ~100 MB). */
export const MAX_RUN_DOCUMENT_BYTES = 512 * 2 ** 20;

const int = z.number().int();
const nonNegInt = int.min(0);
const fraction = z.number().min(0).max(1);
const finite = z.number();

export const FormatSchema = z.looseObject({
  bits: int.min(2).max(32),
  // 2^frac stays finite in float64 far beyond any real range rule.
  frac: int.min(-1000).max(1000),
  signed: z.boolean(),
});
export const AssignmentSchema = z.record(z.string(), FormatSchema);
const BiasesSchema = z.record(z.string(), z.array(finite));
const EqualizeSchema = z.enum(['depthwise', 'all', 'off']);

export const RunConfigSchema = z.looseObject({
  format: z.literal('fxpq-run'),
  version: z.literal(1),
  model: z.looseObject({ path: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  data: z.looseObject({
    path: z.string().min(1),
    calib: z.array(nonNegInt),
    eval: z.array(nonNegInt),
    seed: int,
    labelled: z.boolean(),
  }),
  preprocess: z.string(),
  classes: z.looseObject({ source: z.string(), ids: z.array(z.string()).min(1) }),
  inputNonNegative: z.boolean(),
  mode: z.discriminatedUnion('kind', [
    z.looseObject({ kind: z.literal('uniform'), bits: int.min(2).max(32), weightBits: int.min(2).max(32).optional() }),
    z.looseObject({
      kind: z.literal('search'),
      budget: finite,
      strategy: z.string(),
      distill: z.boolean(),
      biasCorrection: z.boolean(),
      fracChoice: z.literal(false).optional(),
    }),
  ]),
  assignment: AssignmentSchema,
  biases: BiasesSchema.optional(),
  equalize: EqualizeSchema.optional(),
  equalizeMaxScale: z.number().positive().optional(),
  rounding: z.enum(['nearest', 'optimized']).optional(),
});

const StructureFormatSchema = z.looseObject({
  layer: z.string(),
  kind: z.enum(['W', 'B', 'A']),
  tensor: z.string(),
  elements: nonNegInt,
  signed: z.boolean(),
  bits: int,
  frac: int,
});

export const RunReportSchema = z.looseObject({
  model: z.looseObject({ path: z.string(), sha256: z.string() }),
  budget: finite.nullable(),
  data: z.looseObject({ calib: nonNegInt, eval: nonNegInt, labelled: z.boolean(), seed: int }),
  fp: z.looseObject({ top1: fraction, top5: fraction }),
  quant: z.looseObject({
    top1: fraction,
    top5: fraction,
    agreement: fraction,
    ties: nonNegInt.optional(),
    n10: nonNegInt.optional(),
    n01: nonNegInt.optional(),
    dropStandardError: finite.optional(),
  }),
  memory: z.looseObject({
    fp32Bits: finite,
    quantBits: finite,
    reduction: finite,
    weightsReduction: finite,
    avgBitsWeights: finite,
    avgBitsActivations: finite,
  }),
  structures: z.array(StructureFormatSchema),
  search: z.looseObject({
    evaluations: nonNegInt,
    seconds: finite,
    fp32Passes: finite.optional(),
    simPasses: finite.optional(),
    fp32PassSeconds: finite.optional(),
    simulationSeconds: z.record(z.string(), finite).optional(),
    strategy: z.string().optional(),
    finalCheck: z
      .looseObject({
        drop: finite,
        bound: finite,
        budget: finite,
        rolledBack: z.boolean(),
        z: finite.optional(),
        within: z.boolean().optional(),
      })
      .optional(),
    keptActivations: z
      .looseObject({ runs: nonNegInt, hits: nonNegInt, nodeShare: finite, peakBytes: finite })
      .optional(),
  }),
  rounding: z
    .looseObject({ method: z.enum(['nearest', 'optimized']), structureFormats: nonNegInt, seconds: finite })
    .optional(),
  classes: z.looseObject({ count: nonNegInt, source: z.string() }),
  preprocess: z.string(),
  perClass: z
    .array(z.looseObject({ classId: z.string(), n: nonNegInt, fpTop1: fraction, quantTop1: fraction }))
    .optional(),
  confusion: z.array(z.array(nonNegInt)).optional(),
});

export const PhaseSchema = z.enum(['init', 'reduce', 'distill', 'bias', 'final-reduce', 'check', 'done']);

export const TrajectoryStepSchema = z.looseObject({
  step: nonNegInt,
  phase: PhaseSchema,
  pass: nonNegInt,
  structure: z.string().nullable(),
  bits: int.nullable(),
  frac: int.nullable(),
  accepted: z.boolean(),
  drop: finite,
  bound: finite,
  kl: finite.nullable(),
  budget: finite,
  reduction: finite,
  evaluations: nonNegInt,
  images: nonNegInt,
  note: z.string().optional(),
});

const BiasedAssignment = z.looseObject({ assignment: AssignmentSchema, biases: BiasesSchema });

export const SearchStateSchema = z.looseObject({
  phase: PhaseSchema,
  pass: nonNegInt,
  cursor: nonNegInt,
  order: z.array(z.string()),
  assignment: AssignmentSchema,
  frozen: z.array(z.string()),
  biases: BiasesSchema,
  evaluations: nonNegInt,
  images: nonNegInt,
  steps: nonNegInt,
  loss: finite.optional(),
  beforeDistill: AssignmentSchema.optional(),
  lastGood: BiasedAssignment.optional(),
  startBound: finite.optional(),
  roundingSeconds: finite.optional(),
  simulationSeconds: z.record(z.string(), finite).optional(),
  final: z
    .looseObject({ drop: finite, bound: finite, z: finite, rolledBack: z.boolean(), within: z.boolean() })
    .optional(),
});

export const JobIdentitySchema = z.looseObject({
  model: z.string(),
  data: z.string(),
  budget: finite,
  seed: int,
  calib: nonNegInt,
  eval: nonNegInt,
  strategy: z.enum(['schedule', 'sensitivity', 'tradeoff']),
  distill: z.boolean(),
  biasCorrection: z.boolean(),
  rounding: z.literal('optimized').optional(),
  z: finite,
  slice: nonNegInt,
  preprocess: z.string(),
  classes: z.string(),
  equalize: EqualizeSchema,
  equalizeMaxScale: z.number().positive().optional(),
  fracChoice: z.literal(false).optional(),
  logitsFloor: int.min(2).max(32).optional(),
  finalZ: finite.optional(),
});

export const CheckpointSchema = z.looseObject({
  identity: JobIdentitySchema,
  state: SearchStateSchema,
  seconds: z.number().min(0),
});

export const RoundingHeaderSchema = z.looseObject({
  id: z.string().regex(/^W:/),
  bits: int.min(2).max(16),
  frac: int.min(-1000).max(1000),
  signed: z.boolean(),
  length: nonNegInt,
});

export const ActivationStatsSchema = z.record(
  z.string(),
  z.looseObject({ maxAbs: finite, min: finite, histMax: finite, counts: z.array(finite) }),
);

/** The marker FxPQ writes first into a run folder (services/run-folder.ts). */
export const RunMarkerSchema = z.looseObject({
  format: z.literal('fxpq-run-folder'),
  version: z.literal(1),
  created: z.string().optional(),
});

/** The lock of a run folder being written (services/run-folder.ts). */
export const RunLockSchema = z.looseObject({
  pid: int.min(1),
  host: z.string(),
  started: z.string(),
  command: z.string(),
});

/** `data.eval[3]`: an issue path as a user reads it. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else {
      const key = String(p);
      out += /^[A-Za-z_$][\w$]*$/.test(key) ? (out ? `.${key}` : key) : `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number') return 'a number';
  if (typeof v === 'boolean') return 'a boolean';
  return typeof v;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p as string];
  }
  return v;
}

/** One issue as words: "data.eval is an object, expected an array". */
function describeIssue(issue: z.core.$ZodIssue, root: unknown): string {
  const field = fieldPath(issue.path);
  const value = valueAt(root, issue.path);
  const where = field ? `field ${field}` : 'the document';
  if (value === undefined && issue.code === 'invalid_type') return `${where} is missing`;
  if (issue.code === 'invalid_type') return `${where} is ${kindOf(value)}, expected ${issue.expected}`;
  const message = issue.message.replace(/^Invalid input: /, '');
  return `${where}: ${message}`;
}

/** Check `value` (from `file`) against `schema`: the typed value, or an FxpqError naming the file and the field. */
export function checkDocument<S extends z.ZodType>(
  schema: S,
  value: unknown,
  file: string,
  what: string,
  advice: string,
): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const top = issue.path.length === 0 && (value === null || typeof value !== 'object' || Array.isArray(value));
  const detail = top ? `it holds ${kindOf(value)}, not an object` : describeIssue(issue, value);
  throw new FxpqError(`${file} is not ${what} (${detail}); ${advice}.`, 'io');
}

/**
 * The text of a file FxPQ wrote into a run folder, opened without blocking (a FIFO named
 * config.json would hang a plain read) and only when it is a regular file of sensible size.
 */
export async function readRunText(path: string, what: string): Promise<string> {
  const bytes = await readRegularFile(
    path,
    what,
    MAX_RUN_DOCUMENT_BYTES,
    (size) => `${path} is ${(size / 2 ** 20).toFixed(0)} MB, more than ${what} FxPQ writes can be.`,
  );
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

/** A JSON document of a run folder through its schema; a torn file is named, not the parser's text. */
export async function readRunDocument<S extends z.ZodType>(
  path: string,
  schema: S,
  what: string,
  advice: string,
): Promise<z.infer<S>> {
  const text = await readRunText(path, what);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FxpqError(`${path} (${what}) is not valid JSON, perhaps cut short; ${advice}.`, 'io');
  }
  return checkDocument(schema, value, path, what, advice);
}

export type TrajectoryLine = z.infer<typeof TrajectoryStepSchema>;

/**
 * The steps of RUN/trajectory.jsonl, each line through the schema. A last line without its
 * newline was torn by a kill mid-append and is left out (the checkpoint decides where a resume
 * starts); any other line that is not a step is an error naming the file and the line.
 */
export async function readTrajectory(run: string, advice = 'quantize the run again'): Promise<TrajectoryLine[]> {
  const file = join(run, 'trajectory.jsonl');
  const lines = (await readRunText(file, 'a search trajectory')).split('\n');
  lines.pop();
  return parseTrajectoryLines(file, lines, advice);
}

/** Lines of `file` (without their newlines) through the trajectory's schema; blank lines are skipped. */
export function parseTrajectoryLines(file: string, lines: string[], advice: string): TrajectoryLine[] {
  const out: TrajectoryLine[] = [];
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new FxpqError(`${file} line ${i + 1} is not valid JSON; ${advice}.`, 'io');
    }
    out.push(checkDocument(TrajectoryStepSchema, value, `${file} line ${i + 1}`, 'a trajectory step', advice));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Semantic checks, once the model or the dataset is known.

function fail(file: string, detail: string, advice: string): never {
  throw new FxpqError(`${file} does not fit ${detail}; ${advice}.`, 'io');
}

/**
 * An assignment names exactly the plan's structures with formats of their sign; bias overrides
 * name bias tensors of the plan and are as long as them. `partial`: an assignment may lack
 * structures (a search checkpoint before its start state).
 */
export function checkAssignment(
  plan: QuantPlan,
  assignment: Record<string, { bits: number; frac: number; signed: boolean }>,
  biases: Record<string, number[]> | undefined,
  file: string,
  field: string,
  advice: string,
  partial = false,
): void {
  for (const [id, f] of Object.entries(assignment)) {
    const st = plan.byId.get(id);
    if (!st) fail(file, `the model: ${field}${fieldPath([id])} names no data structure of it`, advice);
    if (f.signed !== st.signed)
      fail(
        file,
        `the model: ${field}${fieldPath([id])}.signed is ${f.signed}, the structure is ${st.signed ? 'signed' : 'unsigned'}`,
        advice,
      );
  }
  if (!partial)
    for (const st of plan.structures)
      if (!Object.hasOwn(assignment, st.id)) fail(file, `the model: ${field} has no format for ${st.id}`, advice);
  const biasTensors = new Map(plan.structures.filter((s) => s.kind === 'B').map((s) => [s.tensor, s.elements]));
  for (const [tensor, values] of Object.entries(biases ?? {})) {
    const n = biasTensors.get(tensor);
    if (n === undefined) fail(file, `the model: biases${fieldPath([tensor])} names no bias of it`, advice);
    if (values.length !== n)
      fail(file, `the model: biases${fieldPath([tensor])} has ${values.length} values, the layer's bias ${n}`, advice);
  }
}

/** config.json against the model the run was made from. */
export function checkRunConfigAgainstPlan(
  config: { assignment: Assignment; biases?: Record<string, number[]> },
  plan: QuantPlan,
  run: string,
): void {
  checkAssignment(
    plan,
    config.assignment,
    config.biases,
    join(run, 'config.json'),
    'assignment',
    'quantize the run again',
  );
}

/** config.json's image indices against the dataset (`images` files). */
export function checkRunConfigAgainstDataset(
  config: { data: { calib: number[]; eval: number[] } },
  images: number,
  run: string,
): void {
  const file = join(run, 'config.json');
  for (const key of ['calib', 'eval'] as const) {
    const bad = config.data[key].findIndex((i) => i >= images);
    if (bad >= 0)
      fail(
        file,
        `its dataset: data.${key}[${bad}] is image ${config.data[key][bad]}, the dataset has ${images} images`,
        'the dataset changed since the run, or the file was edited; quantize the run again',
      );
  }
}

/** A checkpoint's state against the plan its search runs on, and against the trajectory it goes with. */
export function checkCheckpointAgainstPlan(state: SearchState, plan: QuantPlan, file: string, advice: string): void {
  const partial = state.phase === 'init';
  checkAssignment(plan, state.assignment, state.biases, file, 'state.assignment', advice, partial);
  if (state.beforeDistill) checkAssignment(plan, state.beforeDistill, undefined, file, 'state.beforeDistill', advice);
  if (state.lastGood)
    checkAssignment(plan, state.lastGood.assignment, state.lastGood.biases, file, 'state.lastGood.assignment', advice);
  for (const key of ['order', 'frozen'] as const)
    for (const [i, id] of state[key].entries())
      if (!plan.byId.has(id))
        fail(file, `the model: state.${key}[${i}] is ${JSON.stringify(id)}, no data structure of it`, advice);
  if (state.cursor > Math.max(state.order.length, plan.nodes.length))
    fail(file, `the model: state.cursor ${state.cursor} is past the structures and layers it walks`, advice);
}
