/**
 * Import-and-preprocess throughput against sharp's bare decode + resize + crop on the same
 * images, in one run. Images: ../shared/fixtures/imagenet-sample (resize 256, crop 224) when
 * present, else the committed Fashion-MNIST PNGs.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { parsePreprocess, resizeTarget } from '../native-workers/engine/data/preprocess.js';
import { scanDataset } from '../services/datasets.js';
import { imageBatches, preparedImage } from '../services/image-feed.js';
import { TensorCache } from '../services/tensor-cache.js';

export async function benchDataset(sharedFixtures: string): Promise<string[]> {
  const inet = join(sharedFixtures, 'imagenet-sample');
  const useInet = existsSync(inet);
  const src = useInet ? inet : join(import.meta.dirname, '..', 'test', 'fixtures', 'fashion-mnist');
  const specText = useInet ? 'resize=256,crop=224,channels=3' : 'resize=28,crop=28,channels=1';
  const spec = parsePreprocess(specText);
  const dataset = await scanDataset(src, { verify: false });
  const n = dataset.images.length;
  const files = dataset.images.map((i) => readFileSync(join(dataset.root, i.path)));
  const inFlight = Math.max(4, availableParallelism() * 2);

  // Baseline: sharp alone, decode + resize (its own kernel) + center crop, `inFlight` images at once.
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) {
        const buf = files[next++]!;
        const meta = await sharp(buf).metadata();
        const [w, h] = resizeTarget(meta.width, meta.height, spec.resize!);
        const c = spec.crop!;
        await sharp(buf, { ignoreIcc: true })
          .removeAlpha()
          .resize(w, h, { fit: 'fill', kernel: 'linear' })
          .extract({ left: Math.round((w - c) / 2), top: Math.round((h - c) / 2), width: c, height: c })
          .raw()
          .toBuffer();
      }
    }),
  );
  const bare = n / ((performance.now() - t0) / 1000);

  const cache = new TensorCache(mkdtempSync(join(tmpdir(), 'fxpq-bench-cache-')));
  // Start the pool's workers first (a one-off cost per process, not per image), on a
  // throwaway cache so the measured pass still decodes every image.
  const warmCache = new TensorCache(mkdtempSync(join(tmpdir(), 'fxpq-bench-warm-')));
  await Promise.all(
    Array.from({ length: availableParallelism() }, (_, i) => preparedImage(dataset, i % n, spec, warmCache)),
  );
  const pass = async (): Promise<number> => {
    const t = performance.now();
    for await (const _ of imageBatches({
      dataset,
      indices: dataset.images.map((_, i) => i),
      spec,
      imageSize: spec.crop! * spec.crop! * spec.channels,
      batchSize: 32,
      cache,
      onSkip: () => {},
    }));
    return n / ((performance.now() - t) / 1000);
  };
  const cold = await pass();
  const warm = await pass();
  const f = (x: number): string => x.toFixed(0).padStart(8);
  return [
    `## Dataset preprocessing (${n} images of ${useInet ? 'imagenet-sample' : 'committed Fashion-MNIST'}, ${specText}, ${availableParallelism()} cores)`,
    '',
    '| pipeline | images/s | ratio to sharp bare |',
    '|---|---:|---:|',
    `| sharp bare decode+resize+crop (${inFlight} in flight) | ${f(bare)} | 1.00 |`,
    `| FxPQ, cold cache (pool started: sharp decode + PIL-exact resize + crop + cache write) | ${f(cold)} | ${(cold / bare).toFixed(2)} |`,
    `| FxPQ, warm cache (no decode) | ${f(warm)} | ${(warm / bare).toFixed(2)} |`,
    '',
  ];
}
