/**
 * RUN/activations.json: each activation's calibration statistics (max |x|, min, and its |x|
 * histogram merged down to 256 bins), kept so the results screen can draw a histogram under
 * the chosen format without running the model again.
 */
import { join } from 'node:path';
import type { ActivationStats } from '../native-workers/engine/runtime/stats-runner.js';
import { writeFileAtomic } from './files.js';
import { ActivationStatsSchema, readRunText } from './run-schemas.js';

export const SAVED_BINS = 256;

export interface SavedActivationStats {
  maxAbs: number;
  min: number;
  /** |x| histogram over [0, histMax], SAVED_BINS bins. */
  histMax: number;
  counts: number[];
}

export async function writeActivationHistograms(runDir: string, stats: Map<string, ActivationStats>): Promise<void> {
  const doc: Record<string, SavedActivationStats> = {};
  for (const [tensor, s] of stats) {
    const group = Math.max(1, Math.floor(s.histogram.length / SAVED_BINS));
    const counts = new Array<number>(Math.ceil(s.histogram.length / group)).fill(0);
    s.histogram.forEach((c, i) => (counts[Math.floor(i / group)]! += c));
    doc[tensor] = { maxAbs: s.maxAbs, min: s.min, histMax: s.histMax, counts };
  }
  await writeFileAtomic(join(runDir, 'activations.json'), JSON.stringify(doc));
}

/**
 * The saved histograms, or null where there are none or the file is not what FxPQ writes (read
 * through its schema: a hand-edited file draws no histogram rather than failing the screen).
 */
export async function readActivationHistograms(runDir: string): Promise<Record<string, SavedActivationStats> | null> {
  try {
    const text = await readRunText(join(runDir, 'activations.json'), 'the saved activation statistics');
    const parsed = ActivationStatsSchema.safeParse(JSON.parse(text));
    return parsed.success ? (parsed.data as Record<string, SavedActivationStats>) : null;
  } catch {
    return null;
  }
}
