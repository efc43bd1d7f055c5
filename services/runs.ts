/** The run folder: RUN/config.json (what was decided) and RUN/report.json (contracts.md), written atomically. */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Assignment, QuantPlan } from '../native-workers/engine/fixedpoint/plan.js';
import { memoryReport } from '../native-workers/engine/fixedpoint/assignment.js';
import { FxpqError } from '../native-workers/engine/errors.js';
import { writeFileAtomic } from './files.js';
import { assertRunNotLocked } from './run-folder.js';
import { readRunDocument, RunConfigSchema, RunReportSchema } from './run-schemas.js';
import type { EqualizeMode, RunReport } from '../api/contract.js';
import { LEGACY_MAX_SCALE } from '../native-workers/engine/passes/equalize.js';
import { dropStandardError } from '../native-workers/engine/search/prediction-error.js';

export interface RunConfig {
  format: 'fxpq-run';
  version: 1;
  model: { path: string; sha256: string };
  data: { path: string; calib: number[]; eval: number[]; seed: number; labelled: boolean };
  preprocess: string;
  classes: { source: string; ids: string[] };
  inputNonNegative: boolean;
  mode:
    | { kind: 'uniform'; bits: number; weightBits?: number }
    | {
        kind: 'search';
        budget: number;
        strategy: string;
        distill: boolean;
        biasCorrection: boolean;
        /** Absent: on (the default). */
        fracChoice?: false;
      };
  assignment: Assignment;
  /** Bias values replaced by bias correction (float, per bias tensor). */
  biases?: Record<string, number[]>;
  /**
   * How the canonical graph was equalized (cross-layer equalization); the assignment names its
   * tensors. Runs made before the option existed have none and were not equalized.
   */
  equalize?: EqualizeMode;
  /**
   * Equalization's per-channel scale limit (passes/equalize.ts). Absent in runs made before it was
   * recorded: they were equalized with LEGACY_MAX_SCALE.
   */
  equalizeMaxScale?: number;
  /**
   * How weights were rounded: 'optimized' (issue 15) means RUN/rounding/ holds the integers of
   * every weight structure at 8 bits or less (services/optimized-rounding.ts); absent: nearest.
   */
  rounding?: 'nearest' | 'optimized';
}

/** How a run's model is imported again (evaluate --run, export): as the run imported it. */
export function runEqualized(config: RunConfig): { equalize: EqualizeMode; equalizeMaxScale: number } {
  return { equalize: config.equalize ?? 'off', equalizeMaxScale: config.equalizeMaxScale ?? LEGACY_MAX_SCALE };
}

export type { RunReport };

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * config.json first, report.json last (each atomically): a run folder is finished exactly when
 * its report.json exists (run-folder.ts), and every write session removes the old one first.
 */
export async function writeRun(dir: string, config: RunConfig, report: RunReport): Promise<void> {
  await writeFileAtomic(join(dir, 'config.json'), JSON.stringify(config, null, 1));
  await writeFileAtomic(join(dir, 'report.json'), JSON.stringify(report, null, 2));
}

const REPORT_ADVICE = 'quantize the run again';

/**
 * A finished run's config.json, through its schema (run-schemas.ts): refused while another
 * process writes the run (its lock), and when report.json, written last, is missing (the run did
 * not finish). Semantic checks against the model and the dataset follow where those are open
 * (checkRunConfigAgainstPlan, checkRunConfigAgainstDataset).
 */
export async function readRunConfig(dir: string): Promise<RunConfig> {
  const file = join(dir, 'config.json');
  await assertRunNotLocked(dir);
  if (!existsSync(file)) throw new FxpqError(`${dir} is not a finished FxPQ run: ${file} is missing.`, 'not-found');
  const config = (await readRunDocument(
    file,
    RunConfigSchema,
    'an FxPQ run configuration',
    'the run folder is damaged; quantize the run again',
  )) as RunConfig;
  if (!existsSync(join(dir, 'report.json')))
    throw new FxpqError(
      `${dir} is incomplete: report.json is missing (the quantize run did not finish; run the same quantize command again to resume it).`,
      'not-found',
    );
  // The two documents of one attempt agree: an edit of either, or a report of another attempt, is named.
  const report = await readRunReport(dir);
  const mismatch = (what: string, inConfig: number, inReport: number): FxpqError =>
    new FxpqError(
      `${file} does not go with ${join(dir, 'report.json')}: ${what} ${inConfig} in config.json, ${inReport} in report.json; the run folder is damaged; quantize the run again.`,
      'io',
    );
  if (config.classes.ids.length !== report.classes.count)
    throw mismatch('classes.ids lists', config.classes.ids.length, report.classes.count);
  if (new Set(config.classes.ids).size !== config.classes.ids.length)
    throw new FxpqError(`${file} lists a class twice in classes.ids; quantize the run again.`, 'io');
  const structures = Object.keys(config.assignment).length;
  if (structures !== report.structures.length)
    throw mismatch('the data structures number', structures, report.structures.length);
  if (config.data.calib.length !== report.data.calib)
    throw mismatch('the calibration images number', config.data.calib.length, report.data.calib);
  return config;
}

/** A finished run's report.json, through its schema. */
export async function readRunReport(dir: string): Promise<RunReport> {
  return (await readRunDocument(join(dir, 'report.json'), RunReportSchema, 'a run report', REPORT_ADVICE)) as RunReport;
}

export interface RunParts {
  modelPath: string;
  dataPath: string;
  modelSha256: string;
  session: { specText: string; classes: { source: string; ids: string[] } };
  split: { calib: number[]; eval: number[]; seed: number };
  plan: QuantPlan;
  assignment: Assignment;
  biases?: Record<string, number[]>;
  rounding?: NonNullable<RunReport['rounding']>;
  inputNonNegative: boolean;
  equalize: EqualizeMode;
  equalizeMaxScale: number;
  mode: RunConfig['mode'];
  budget: number | null;
  result: {
    n: number;
    fp?: RunReport['fp'];
    quant?: RunReport['quant'];
    ties?: number;
    perClassBoth?: RunReport['perClass'];
    confusion?: number[][];
  };
  search: RunReport['search'];
}

/** `quant` with the paired standard error of its drop over `n` images, where its counts are known. */
export function withDropStandardError<Q extends { n10?: number; n01?: number }>(
  quant: Q,
  n: number,
): Q & { dropStandardError?: number } {
  return quant.n10 !== undefined && quant.n01 !== undefined
    ? { ...quant, dropStandardError: dropStandardError({ n, n10: quant.n10, n01: quant.n01 }) }
    : quant;
}

/** The run folder's two documents, for a uniform assignment and for a search alike. */
export function buildRun(p: RunParts): { config: RunConfig; report: RunReport } {
  const model = { path: resolve(p.modelPath), sha256: p.modelSha256 };
  const config: RunConfig = {
    format: 'fxpq-run',
    version: 1,
    model,
    data: { path: resolve(p.dataPath), calib: p.split.calib, eval: p.split.eval, seed: p.split.seed, labelled: true },
    preprocess: p.session.specText,
    classes: { source: p.session.classes.source, ids: p.session.classes.ids },
    inputNonNegative: p.inputNonNegative,
    equalize: p.equalize,
    equalizeMaxScale: p.equalizeMaxScale,
    mode: p.mode,
    assignment: p.assignment,
    ...(p.biases ? { biases: p.biases } : {}),
    ...(p.rounding ? { rounding: p.rounding.method } : {}),
  };
  const report: RunReport = {
    model,
    budget: p.budget,
    data: { calib: p.split.calib.length, eval: p.result.n, labelled: true, seed: p.split.seed },
    fp: p.result.fp!,
    quant: withDropStandardError(
      { ...p.result.quant!, ...(p.result.ties !== undefined ? { ties: p.result.ties } : {}) },
      p.result.n,
    ),
    memory: memoryReport(p.plan, p.assignment),
    structures: p.plan.structures.map((st) => ({
      layer: st.layer,
      kind: st.kind,
      tensor: st.tensor,
      elements: st.elements,
      signed: st.signed,
      bits: p.assignment[st.id]!.bits,
      frac: p.assignment[st.id]!.frac,
    })),
    search: p.search,
    ...(p.rounding ? { rounding: p.rounding } : {}),
    classes: { count: p.session.classes.ids.length, source: p.session.classes.source },
    preprocess: p.session.specText,
    ...(p.result.perClassBoth ? { perClass: p.result.perClassBoth } : {}),
    ...(p.result.confusion ? { confusion: p.result.confusion } : {}),
  };
  return { config, report };
}
