/** The run folder: RUN/config.json (what was decided) and RUN/report.json (contracts.md), written atomically. */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Assignment } from '../native-workers/engine/fixedpoint/plan.js';
import type { MemoryReport } from '../native-workers/engine/fixedpoint/assignment.js';
import { FxpqError } from '../native-workers/engine/errors.js';
import { writeFileAtomic } from './files.js';

export interface RunConfig {
  format: 'fxpq-run';
  version: 1;
  model: { path: string; sha256: string };
  data: { path: string; calib: number[]; eval: number[]; seed: number; labelled: boolean };
  preprocess: string;
  classes: { source: string; ids: string[] };
  inputNonNegative: boolean;
  mode:
    | { kind: 'uniform'; bits: number }
    | { kind: 'search'; budget: number; strategy: string; distill: boolean; biasCorrection: boolean };
  assignment: Assignment;
  /** Bias values replaced by bias correction (float, per bias tensor). */
  biases?: Record<string, number[]>;
}

export interface RunReport {
  model: { path: string; sha256: string };
  budget: number | null;
  data: { calib: number; eval: number; labelled: boolean; seed: number };
  fp: { top1: number; top5: number };
  quant: { top1: number; top5: number; agreement: number };
  memory: MemoryReport;
  structures: {
    layer: string;
    kind: string;
    tensor: string;
    elements: number;
    signed: boolean;
    bits: number;
    frac: number;
  }[];
  search: { evaluations: number; seconds: number; fp32Passes?: number; simPasses?: number; strategy?: string };
  classes: { count: number; source: string };
  preprocess: string;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export async function writeRun(dir: string, config: RunConfig, report: RunReport): Promise<void> {
  await writeFileAtomic(join(dir, 'config.json'), JSON.stringify(config, null, 1));
  await writeFileAtomic(join(dir, 'report.json'), JSON.stringify(report, null, 2));
}

export async function readRunConfig(dir: string): Promise<RunConfig> {
  const file = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new FxpqError(`${dir} is not a finished FxPQ run: ${file} is missing.`, 'not-found');
  }
  let config: RunConfig;
  try {
    config = JSON.parse(text) as RunConfig;
  } catch {
    throw new FxpqError(`${file} is not valid JSON; the run folder is damaged.`, 'io');
  }
  if (config.format !== 'fxpq-run' || !config.assignment)
    throw new FxpqError(`${file} is not an FxPQ run configuration.`, 'io');
  return config;
}
