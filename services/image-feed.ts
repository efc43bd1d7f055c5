/**
 * Batches of preprocessed images for inference: cached pixels when present, otherwise
 * decoded and prepared on the worker pool (all images of a batch in flight at once, and the
 * next batch prefetched while the current one runs).
 */
import { join } from 'node:path';
import {
  geometryKey,
  normalizeInto,
  type PixelImage,
  type PreprocessSpec,
} from '../native-workers/engine/data/preprocess.js';
import type { PrepareResult, PrepareTask } from '../native-workers/pool/preprocess-worker.js';
import type { Dataset } from './datasets.js';
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

/** Prepared uint8 pixels of one dataset image, from the cache or the pool. */
export async function preparedImage(
  dataset: Dataset,
  index: number,
  spec: PreprocessSpec,
  cache: TensorCache,
): Promise<PixelImage | string> {
  const image = dataset.images[index]!;
  const geometry = geometryKey(spec);
  const cached = await cache.get(image.sha256, geometry);
  if (cached) return cached;
  const task: PrepareTask = { path: join(dataset.root, image.path), spec };
  const result = (await workerPool('preprocess-worker').run(task)) as PrepareResult;
  if (!result.ok) return result.reason;
  const img: PixelImage = { width: result.width, height: result.height, channels: result.channels, data: result.data };
  await cache.put(image.sha256, geometry, img);
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
  for (let g = 0; g < groups.length; g++) {
    const current = await pending!;
    pending = g + 1 < groups.length ? loadBatch(o, groups[g + 1]!) : undefined;
    yield current;
  }
}
