/**
 * What every evaluation and quantization starts from: the model, the dataset, the class
 * order, the labels and the preprocessing, resolved once with the rules of contracts.md.
 */
import type { EqualizeMode } from '../api/contract.js';
import { classIndex, type ClassList } from '../native-workers/engine/data/classes.js';
import { parsePreprocess, type PreprocessSpec } from '../native-workers/engine/data/preprocess.js';
import { stratifiedSplit, type Split } from '../native-workers/engine/data/split.js';
import { FxpqError } from '../native-workers/engine/errors.js';
import { loadClassOption, sortedFolderClasses } from './classes.js';
import { openDataset, type Dataset } from './datasets.js';
import { loadModelFile, modelHints, type LoadedModel } from './models.js';

export interface SessionOptions {
  modelPath: string;
  dataPath: string;
  classes?: string;
  /** A class list already decided (a run records its own), used instead of `classes`. */
  classList?: ClassList;
  preprocess?: string;
  /** Only onnxruntime will run the model: decode and validate it, no canonical graph. */
  floatOnly?: boolean;
  /** Cross-layer equalization at import (default 'depthwise'; a run records its choice). */
  equalize?: EqualizeMode;
  /** Its per-channel scale limit (default MAX_SCALE; a run records it). */
  equalizeMaxScale?: number;
}

export interface WorkSession {
  model: LoadedModel;
  dataset: Dataset;
  classes: ClassList;
  labels: number[];
  spec: PreprocessSpec;
  specText: string;
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

export async function openSession(o: SessionOptions): Promise<WorkSession> {
  // Recorded in config.json, which holds finite numbers only.
  if (o.equalizeMaxScale !== undefined && !(Number.isFinite(o.equalizeMaxScale) && o.equalizeMaxScale >= 1))
    throw new FxpqError(
      `The equalization scale limit must be a finite number of 1 or more, not ${o.equalizeMaxScale}.`,
      'bad-request',
    );
  const model = await loadModelFile(o.modelPath, {
    canonicalize: !o.floatOnly,
    equalize: o.equalize,
    ...(o.equalizeMaxScale !== undefined ? { equalizeMaxScale: o.equalizeMaxScale } : {}),
  });
  const dataset = await openDataset(o.dataPath);
  const classes = o.classList ?? (await resolveClasses(dataset, model, o.classes));
  const labels = labelsFor(dataset, classes);
  const { spec, text } = await resolvePreprocess(model, o.preprocess);
  return { model, dataset, classes, labels, spec, specText: text };
}

/** The dataset's recorded split, unless calib/eval/seed ask for another one. */
export function chooseSplit(s: WorkSession, calib?: number, evalCount?: number, seed?: number): Split {
  if (calib === undefined && evalCount === undefined && seed === undefined && s.dataset.split) return s.dataset.split;
  const n = s.labels.length;
  return stratifiedSplit(s.labels, calib ?? Math.min(1000, Math.floor(n / 2)), evalCount ?? null, seed ?? 0);
}

export function splitIndices(
  dataset: Dataset,
  split: 'all' | 'calib' | 'eval' | undefined,
  recorded: Split | null = dataset.split,
): number[] {
  if (!split || split === 'all') return dataset.images.map((_, i) => i);
  if (!recorded)
    throw new FxpqError(
      'This dataset records no calibration/evaluation split; import it with fxpq dataset import.',
      'io',
    );
  return recorded[split];
}

/** Input values are never negative when every channel's mean is <= 0 (scale and std positive). */
export function inputNonNegative(spec: PreprocessSpec): boolean {
  return spec.scale >= 0 && spec.std.every((s) => s > 0) && spec.mean.every((m) => m <= 0);
}
