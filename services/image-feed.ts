/**
 * Batches of preprocessed images for inference: cached pixels when present, otherwise
 * decoded and prepared on the worker pool (all images of a batch in flight at once, and the
 * next batch prefetched while the current one runs).
 *
 * Every image file is read and hashed on each use, cache hit or not: the cache is keyed by the
 * hash of the bytes read, and an image whose bytes are not what dataset.json recorded (deleted,
 * replaced, or a forged hash) is skipped with its reason, never scored from stale pixels.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import {
  geometryKey,
  normalizeInto,
  type PixelImage,
  type PreprocessSpec,
} from '../native-workers/engine/data/preprocess.js';
import type { PrepareResult, PrepareTask } from '../native-workers/pool/preprocess-worker.js';
import { ImageFileError, readImageFile } from '../native-workers/pool/image-file.js';
import { FxpqError } from '../native-workers/engine/errors.js';
import type { Dataset, DatasetImage } from './datasets.js';
import { isWithin } from './owned-paths.js';
import { workerPool } from './pool.js';
import { TensorCache } from './tensor-cache.js';

export interface FeedBatch {
  /** Indices into dataset.images of the images in this batch (failed ones left out). */
  indices: number[];
  /** count x imageSize floats. */
  data: Float32Array;
}

export interface FeedOptions {
  dataset: Dataset;
  indices: number[];
  spec: PreprocessSpec;
  /** Elements of one image as the model wants it (C*H*W). */
  imageSize: number;
  batchSize: number;
  cache: TensorCache;
  /** Called for each image that cannot be used, with its reason. */
  onSkip: (index: number, reason: string) => void;
}

const REINDEX = 'import the dataset again to use it';

/**
 * The bytes of one indexed image and their SHA-256, read now, or why the image cannot be
 * used: gone since the index was written, changed (size or content not what dataset.json
 * records), outside the dataset's folder, or not a readable image file.
 */
export async function readIndexedImage(
  dataset: Dataset,
  index: number,
): Promise<{ bytes: Uint8Array; sha256: string } | { reason: string }> {
  const image = dataset.images[index]!;
  if (typeof image.path !== 'string' || typeof dataset.root !== 'string' || !isAbsolute(dataset.root))
    return { reason: 'its entry in dataset.json is malformed (no path, or no absolute root)' };
  const root = resolve(dataset.root);
  const abs = resolve(root, image.path);
  if (isAbsolute(image.path) || abs === root || !isWithin(root, abs))
    return { reason: `its path leads outside the dataset folder ${root}; not read` };
  try {
    await stat(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      return { reason: `missing: deleted or moved since the dataset was indexed; ${REINDEX}` };
  }
  let bytes: Uint8Array;
  try {
    bytes = await readImageFile(abs, root);
  } catch (e) {
    if (e instanceof ImageFileError) return { reason: e.reason };
    return { reason: `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})` };
  }
  const changed = changedSinceIndexed(image, bytes);
  if (changed) return { reason: `${changed}; not scored, ${REINDEX}` };
  return { bytes, sha256: image.sha256 };
}

/**
 * Why `bytes` are not the image the index recorded (its size first, then its SHA-256), or
 * undefined when they are: what every reader of an indexed image checks before using it.
 */
export function changedSinceIndexed(
  image: Pick<DatasetImage, 'bytes' | 'sha256'>,
  bytes: Uint8Array,
): string | undefined {
  if (bytes.length !== image.bytes)
    return `changed since the dataset was indexed (${String(image.bytes)} bytes then, ${bytes.length} now)`;
  if (createHash('sha256').update(bytes).digest('hex') !== image.sha256)
    return 'changed since the dataset was indexed (its content is not the one dataset.json records)';
  return undefined;
}

/** Prepared uint8 pixels of one dataset image, from the cache or the pool. */
export async function preparedImage(
  dataset: Dataset,
  index: number,
  spec: PreprocessSpec,
  cache: TensorCache,
): Promise<PixelImage | string> {
  const read = await readIndexedImage(dataset, index);
  if ('reason' in read) return read.reason;
  // Keyed by the hash of the bytes just read, never by the index's word for them.
  const geometry = geometryKey(spec);
  const cached = await cache.get(read.sha256, geometry);
  if (cached) return cached;
  const task: PrepareTask = { bytes: read.bytes, spec };
  const result = (await workerPool('preprocess-worker').run(task)) as PrepareResult;
  if (!result.ok) return result.reason;
  const img: PixelImage = { width: result.width, height: result.height, channels: result.channels, data: result.data };
  await cache.put(read.sha256, geometry, img);
  return img;
}

async function loadBatch(o: FeedOptions, indices: number[]): Promise<FeedBatch> {
  const images = await Promise.all(indices.map((i) => preparedImage(o.dataset, i, o.spec, o.cache)));
  const kept: number[] = [];
  const data = new Float32Array(indices.length * o.imageSize);
  images.forEach((img, k) => {
    const index = indices[k]!;
    if (typeof img === 'string') return o.onSkip(index, img);
    const size = img.width * img.height * img.channels;
    if (size !== o.imageSize) {
      return o.onSkip(
        index,
        `preprocessing gives ${img.channels}x${img.height}x${img.width} values but the model takes ${o.imageSize} per image`,
      );
    }
    normalizeInto(img, o.spec, data, kept.length * o.imageSize);
    kept.push(index);
  });
  return { indices: kept, data: data.subarray(0, kept.length * o.imageSize) };
}

export async function* imageBatches(o: FeedOptions): AsyncGenerator<FeedBatch> {
  const groups: number[][] = [];
  for (let i = 0; i < o.indices.length; i += o.batchSize) groups.push(o.indices.slice(i, i + o.batchSize));
  let pending = groups.length > 0 ? loadBatch(o, groups[0]!) : undefined;
  try {
    for (let g = 0; g < groups.length; g++) {
      const current = await pending!;
      pending = g + 1 < groups.length ? loadBatch(o, groups[g + 1]!) : undefined;
      yield current;
    }
  } finally {
    // The consumer stopped early (an error, a cancel): the prefetched batch's own failure, if
    // any, must not surface later as an unhandled rejection that ends the worker.
    pending?.catch(() => undefined);
  }
}

/**
 * The `onSkip` of work that must use every image its split records (a search, a uniform run's
 * calibration, an export's verification): an image that changed or vanished since import ends
 * the job with a sentence naming it, instead of a result computed on fewer images than the run
 * reports. Evaluation, which reports its own n, skips and lists them instead.
 */
export function refuseSkipped(dataset: Dataset, what: string): FeedOptions['onSkip'] {
  return (index, reason) => {
    const image = dataset.images[index];
    const where = image ? resolve(dataset.root, image.path) : `image ${index} of the dataset`;
    throw new FxpqError(`${where} cannot be used for ${what}: ${reason}.`, 'io');
  };
}
