/**
 * Everything the job worker can run, by name: the long jobs of the app (import, quantize,
 * evaluate, export) and the short calls that still parse a model or decode an image
 * (inspect, weight histogram, image preview). Each task takes plain, cloneable options and
 * reports through `emit`; the same table runs in a pool worker (always, in the app) or on
 * the calling thread (only as the benchmark's baseline).
 */
import sharp, { type Sharp } from 'sharp';
import type {
  EqualizeMode,
  ExportResult,
  HistogramData,
  ImagePreview,
  InspectReport,
  JobProgress,
  ModelDetails,
  RunReport,
  TrajectoryStep,
} from '../api/contract.js';
import { preparePixels } from '../native-workers/engine/data/preprocess.js';
import { formatRange } from '../native-workers/engine/fixedpoint/format.js';
import { decodeRgb } from '../native-workers/pool/image-decode.js';
import { ImageFileError, readImageFile } from '../native-workers/pool/image-file.js';
import { FxpqError } from '../native-workers/engine/errors.js';
import { datasetInfo, importDataset, type DatasetLayout, type ImportOptions } from './datasets.js';
import { evaluate, type EvaluateOptions, type EvaluationResult } from './evaluate.js';
import { changedSinceIndexed } from './image-feed.js';
import { exportRun, type ExportOptions } from './export.js';
import { describeFsError } from './files.js';
import { inspectModelFile, loadModelFile, modelHints } from './models.js';
import { quantize, type QuantizeOptions } from './quantize.js';
import { readActivationHistograms } from './run-statistics.js';
import { resolvePreprocess } from './session.js';

/** What a task tells its job while it runs. */
export type TaskMessage =
  { type: 'progress'; progress: JobProgress } | { type: 'step'; step: TrajectoryStep } | { type: 'log'; line: string };

export interface TaskContext {
  signal: AbortSignal;
  emit(message: TaskMessage): void;
}

type Callbacks = 'onProgress' | 'signal' | 'onStep';

export interface ImportTaskOptions {
  source: string;
  out: string;
  options: Omit<ImportOptions, 'onProgress'>;
}

export interface ImportSummary {
  root: string;
  layout: DatasetLayout;
  images: number;
  classes: number;
  /** Where the class order comes from, or null when it is decided at use (model, sorted folders). */
  classSource: string | null;
  split: { calib: number; eval: number; seed: number } | null;
  skipped: { path: string; reason: string }[];
  duplicates: [string, string][];
}

export interface HistogramTaskOptions {
  modelPath: string;
  runDir: string;
  kind: 'W' | 'B' | 'A';
  tensor: string;
  format: { bits: number; frac: number; signed: boolean };
  /** Bias values replaced by bias correction, when the run has them. */
  override?: number[];
  /** How the run equalized the model (runEqualized): its weights are the equalized ones. */
  equalize: EqualizeMode;
  equalizeMaxScale: number;
}

export interface PreviewTaskOptions {
  imagePath: string;
  /** The size and SHA-256 its dataset index records: other bytes at that path are not shown. */
  indexed?: { bytes: number; sha256: string };
  size: number;
  /** Show the image as this model sees it (its preprocessing), instead of a thumbnail. */
  modelPath?: string;
}

export interface TaskTable {
  inspect: { options: { path: string }; result: InspectReport };
  import: { options: ImportTaskOptions; result: ImportSummary };
  quantize: { options: Omit<QuantizeOptions, Callbacks>; result: RunReport };
  evaluate: { options: Omit<EvaluateOptions, Callbacks>; result: EvaluationResult };
  export: { options: Omit<ExportOptions, Callbacks>; result: ExportResult };
  histogram: { options: HistogramTaskOptions; result: HistogramData };
  preview: { options: PreviewTaskOptions; result: ImagePreview };
  hints: { options: { path: string }; result: Pick<ModelDetails, 'preprocess' | 'classes'> };
  /** Pool health check: answers, or ends its worker thread with `exit` (how tests prove a crash is survived). */
  selftest: { options: { exit?: number }; result: { ok: true } };
}
export type TaskName = keyof TaskTable;

const HISTOGRAM_BINS = 96;

function formatGrid(f: HistogramTaskOptions['format']): HistogramData['format'] {
  const { lo, hi } = formatRange(f);
  const step = 2 ** -f.frac;
  return { ...f, step, min: lo * step, max: hi * step };
}

async function histogram(o: HistogramTaskOptions): Promise<HistogramData> {
  const format = formatGrid(o.format);
  if (o.kind === 'A') {
    const saved = (await readActivationHistograms(o.runDir))?.[o.tensor];
    if (!saved) throw new Error(`${o.runDir} has no statistics for activation ${o.tensor}.`);
    const width = saved.histMax / saved.counts.length;
    return {
      tensor: o.tensor,
      kind: 'A',
      edges: Array.from({ length: saved.counts.length + 1 }, (_, i) => i * width),
      counts: saved.counts,
      format,
    };
  }
  const model = await loadModelFile(o.modelPath, { equalize: o.equalize, equalizeMaxScale: o.equalizeMaxScale });
  const t = model.canonical.initializers.get(o.tensor);
  if (!t && !o.override) throw new Error(`${o.modelPath} has no weight tensor ${o.tensor}.`);
  const values = o.override ?? Array.from(t!.data as ArrayLike<number>, Number);
  let min = Math.min(format.min, ...values.slice(0, 1));
  let max = Math.max(format.max, ...values.slice(0, 1));
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (max === min) max = min + 1;
  const width = (max - min) / HISTOGRAM_BINS;
  const counts = new Array<number>(HISTOGRAM_BINS).fill(0);
  for (const v of values) counts[Math.min(HISTOGRAM_BINS - 1, Math.floor((v - min) / width))]!++;
  return {
    tensor: o.tensor,
    kind: o.kind,
    edges: Array.from({ length: HISTOGRAM_BINS + 1 }, (_, i) => min + i * width),
    counts,
    format,
  };
}

async function preview(o: PreviewTaskOptions): Promise<ImagePreview> {
  // Regular files only, a size limit, and photos only (no FIFO, device or SVG).
  const bytes = await readImageFile(o.imagePath).catch((e: unknown) => {
    throw e instanceof ImageFileError
      ? new FxpqError(`${o.imagePath}: ${e.reason}.`, 'io')
      : describeFsError(e, o.imagePath);
  });
  // Checked on the bytes that are then shown, read once, here on the pool.
  const changed = o.indexed && changedSinceIndexed(o.indexed, bytes);
  if (changed) throw new FxpqError(`${o.imagePath} is not shown: ${changed}; import the dataset again.`, 'io');
  let image: Sharp;
  if (o.modelPath) {
    const { spec } = await resolvePreprocess(await loadModelFile(o.modelPath), undefined);
    const px = preparePixels(await decodeRgb(bytes), spec);
    image = sharp(Buffer.from(px.data.buffer, px.data.byteOffset, px.data.byteLength), {
      raw: { width: px.width, height: px.height, channels: px.channels as 1 | 3 },
    });
    // Tiny model inputs (28x28) are enlarged with hard pixels, so the user sees what the model sees.
    if (Math.max(px.width, px.height) < o.size)
      image = image.resize(o.size, o.size, { fit: 'inside', kernel: 'nearest' });
  } else {
    image = sharp(bytes).resize(o.size, o.size, { fit: 'inside', withoutEnlargement: false, kernel: 'nearest' });
  }
  const { data, info } = await image.png().toBuffer({ resolveWithObject: true });
  return { dataUrl: `data:image/png;base64,${data.toString('base64')}`, width: info.width, height: info.height };
}

/** The model's own preprocessing and class list, as the engine resolves them. */
async function modelHintsOf(path: string): Promise<Pick<ModelDetails, 'preprocess' | 'classes'>> {
  const hints = await modelHints(await loadModelFile(path));
  return {
    preprocess: hints.preprocess
      ? { spec: hints.preprocess, source: hints.preprocessSource ?? 'the model' }
      : { spec: '', source: 'none: the model carries no preprocessing; give one when evaluating' },
    classes: hints.classes ? { ids: hints.classes.ids, source: hints.classes.source } : null,
  };
}

type TaskFn<K extends TaskName> = (
  options: TaskTable[K]['options'],
  ctx: TaskContext,
) => Promise<TaskTable[K]['result']>;

export const TASKS: { [K in TaskName]: TaskFn<K> } = {
  inspect: (o) => inspectModelFile(o.path),
  import: async (o, ctx) => {
    const dataset = await importDataset(o.source, o.out, {
      ...o.options,
      onProgress: (done, total) => ctx.emit({ type: 'progress', progress: { stage: 'import', done, total } }),
    });
    if (dataset.skipped.length) ctx.emit({ type: 'log', line: `${dataset.skipped.length} files skipped` });
    const info = datasetInfo(dataset);
    return {
      root: dataset.root,
      layout: dataset.layout,
      images: info.images,
      classes: info.classes,
      classSource: dataset.classes?.source ?? null,
      split: dataset.split
        ? { calib: dataset.split.calib.length, eval: dataset.split.eval.length, seed: dataset.split.seed }
        : null,
      skipped: info.skipped,
      duplicates: info.duplicates,
    };
  },
  quantize: (o, ctx) =>
    quantize({
      ...o,
      signal: ctx.signal,
      onProgress: (e) =>
        ctx.emit({
          type: 'progress',
          progress: {
            stage: e.stage,
            done: e.done,
            total: e.total,
            ...(e.etaSeconds !== undefined ? { etaSeconds: e.etaSeconds } : {}),
            ...(e.search ? { search: e.search } : {}),
          },
        }),
      onStep: (step) => ctx.emit({ type: 'step', step }),
    }),
  evaluate: (o, ctx) =>
    evaluate({
      ...o,
      signal: ctx.signal,
      onProgress: (done, total) => ctx.emit({ type: 'progress', progress: { stage: 'evaluation', done, total } }),
    }),
  export: (o, ctx) =>
    exportRun({
      ...o,
      signal: ctx.signal,
      onProgress: (stage) => {
        ctx.emit({ type: 'progress', progress: { stage, done: 0, total: 1 } });
        ctx.emit({ type: 'log', line: stage });
      },
    }),
  histogram: (o) => histogram(o),
  preview: (o) => preview(o),
  hints: (o) => modelHintsOf(o.path),
  selftest: async (o) => {
    if (o.exit !== undefined) process.exit(o.exit);
    return { ok: true };
  },
};

export async function runTask<K extends TaskName>(
  name: K,
  options: TaskTable[K]['options'],
  ctx: TaskContext,
): Promise<TaskTable[K]['result']> {
  const fn = TASKS[name] as TaskFn<K> | undefined;
  if (!fn) throw new Error(`Unknown task ${String(name)}.`);
  return fn(options, ctx);
}
