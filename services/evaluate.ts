/** Float evaluation of a model on a dataset: top-1, top-5 and per-class accuracy. */
import { parsePreprocess, type PreprocessSpec } from '../native-workers/engine/data/preprocess.js';
import { classIndex, type ClassList } from '../native-workers/engine/data/classes.js';
import { AccuracyMeter } from '../native-workers/engine/data/metrics.js';
import { FloatRunner } from '../native-workers/engine/runtime/float-runner.js';
import { FxpqError } from '../native-workers/engine/errors.js';
import { loadClassOption, sortedFolderClasses } from './classes.js';
import { openDataset, type Dataset } from './datasets.js';
import { writeFileAtomic } from './files.js';
import { imageBatches } from './image-feed.js';
import { loadModelFile, modelHints, type LoadedModel } from './models.js';
import { defaultCacheDir, TensorCache } from './tensor-cache.js';

export interface EvaluateOptions {
  modelPath: string;
  dataPath: string;
  classes?: string;
  preprocess?: string;
  split?: 'all' | 'calib' | 'eval';
  batchSize?: number;
  cacheDir?: string;
  saveLogits?: string;
  onProgress?: (done: number, total: number) => void;
}

export interface EvaluationResult {
  n: number;
  fp: { top1: number; top5: number };
  perClass: Record<string, { n: number; top1: number }>;
  classes: { count: number; source: string };
  preprocess: string;
  skipped: { path: string; reason: string }[];
  cache: { hits: number; misses: number };
}

/** The class order for a dataset and model (contracts.md): --classes, the dataset's, the model's, sorted folders. */
export async function resolveClasses(
  dataset: Dataset,
  model: LoadedModel,
  option: string | undefined,
): Promise<ClassList> {
  if (option) return loadClassOption(option);
  if (dataset.classes) return dataset.classes;
  const hints = await modelHints(model);
  return hints.classes ?? sortedFolderClasses(dataset.images.map((i) => i.classId));
}

export async function resolvePreprocess(
  model: LoadedModel,
  option: string | undefined,
): Promise<{ spec: PreprocessSpec; text: string }> {
  const text = option ?? (await modelHints(model)).preprocess;
  if (!text) {
    throw new FxpqError(
      `${model.source} carries no preprocessing spec (no ONNX metadata, no sidecar ${model.source.replace(/\.onnx$/i, '')}.json); pass --preprocess, e.g. --preprocess imagenet.`,
      'invalid-model',
    );
  }
  return { spec: parsePreprocess(text), text };
}

/** Label index of each image under `classes`; an image of an unknown class is an error naming it. */
export function labelsFor(dataset: Dataset, classes: ClassList): number[] {
  const index = classIndex(classes);
  return dataset.images.map((image) => {
    const label = index.get(image.classId);
    if (label === undefined) {
      throw new FxpqError(
        `Class ${image.classId} of ${image.path} is not in the class list (${classes.source}, ${classes.ids.length} classes); pass the right --classes.`,
        'invalid-model',
      );
    }
    return label;
  });
}

export function splitIndices(dataset: Dataset, split: EvaluateOptions['split']): number[] {
  if (!split || split === 'all') return dataset.images.map((_, i) => i);
  if (!dataset.split)
    throw new FxpqError(
      'This dataset records no calibration/evaluation split; import it with fxpq dataset import.',
      'io',
    );
  return dataset.split[split];
}

export async function evaluateFloat(options: EvaluateOptions): Promise<EvaluationResult> {
  const model = await loadModelFile(options.modelPath);
  const dataset = await openDataset(options.dataPath);
  const classes = await resolveClasses(dataset, model, options.classes);
  const labels = labelsFor(dataset, classes);
  const { spec, text } = await resolvePreprocess(model, options.preprocess);
  const runner = await FloatRunner.create(model.bytes, model.original, model.source);
  const cache = new TensorCache(options.cacheDir ?? defaultCacheDir());
  const indices = splitIndices(dataset, options.split);
  const skipped: EvaluationResult['skipped'] = [];
  let meter: AccuracyMeter | undefined;
  const logits: Float32Array[] = [];
  let done = 0;
  try {
    for await (const batch of imageBatches({
      dataset,
      indices,
      spec,
      imageSize: runner.imageSize,
      batchSize: options.batchSize ?? runner.fixedBatch ?? 32,
      cache,
      onSkip: (i, reason) => skipped.push({ path: dataset.images[i]!.path, reason }),
    })) {
      if (batch.indices.length > 0) {
        const out = await runner.run(batch.data, batch.indices.length);
        const width = out.length / batch.indices.length;
        if (!meter) {
          if (width !== classes.ids.length) {
            throw new FxpqError(
              `${model.source} has ${width} outputs but the class list (${classes.source}) has ${classes.ids.length} classes.`,
              'invalid-model',
            );
          }
          meter = new AccuracyMeter(width);
        }
        meter.add(
          out,
          batch.indices.map((i) => labels[i]!),
        );
        if (options.saveLogits) logits.push(out.slice());
      }
      done += batch.indices.length;
      options.onProgress?.(done + skipped.length, indices.length);
    }
  } finally {
    await runner.release();
  }
  if (!meter)
    throw new FxpqError(`No image of ${options.dataPath} could be evaluated (${skipped.length} skipped).`, 'io');
  const r = meter.result();
  if (options.saveLogits) {
    const all = new Float32Array(logits.reduce((s, l) => s + l.length, 0));
    let o = 0;
    for (const l of logits) all.set(l, (o += l.length) - l.length);
    await writeFileAtomic(options.saveLogits, new Uint8Array(all.buffer));
  }
  const perClass: EvaluationResult['perClass'] = {};
  r.perClass.forEach((c, i) => {
    if (c.seen > 0) perClass[classes.ids[i]!] = { n: c.seen, top1: c.top1 };
  });
  return {
    n: r.n,
    fp: { top1: r.top1, top5: r.top5 },
    perClass,
    classes: { count: classes.ids.length, source: classes.source },
    preprocess: text,
    skipped,
    cache: { hits: cache.hits, misses: cache.misses },
  };
}
