import { mkdtempSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluateFloat } from '../../services/evaluate.js';
import { importDataset } from '../../services/datasets.js';
import { closePools } from '../../services/pool.js';
import { ALL_MODELS, hasShared, modelPath, repoRoot, sharedModels } from '../helpers/fixtures.js';
import { topK } from '../../native-workers/engine/data/metrics.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-eval-'));
const fm = join(repoRoot, 'test/fixtures/fashion-mnist');
const resnet20 = modelPath('fmnist_resnet20')!;
afterAll(() => closePools());

describe('float evaluation', () => {
  it('gives the same logits as an independent decode -> normalize -> onnxruntime pipeline', async () => {
    const logitsFile = join(tmp, 'logits.f32');
    const r = await evaluateFloat({
      modelPath: resnet20,
      dataPath: fm,
      cacheDir: join(tmp, 'cache-a'),
      saveLogits: logitsFile,
    });
    expect(r.n).toBe(300);
    expect(r.classes.source).toMatch(/sidecar/);
    const ours = new Float32Array(readFileSync(logitsFile).buffer.slice(0));
    expect(ours.length).toBe(300 * 10);

    // Independent path: dataset order is sorted class folders, then sorted files.
    const session = await ort.InferenceSession.create(resnet20);
    const order = [
      't-shirt_top',
      'trouser',
      'pullover',
      'dress',
      'coat',
      'sandal',
      'shirt',
      'sneaker',
      'bag',
      'ankle_boot',
    ];
    let k = 0;
    let correct = 0;
    for (const cls of readdirSync(fm).sort()) {
      for (const f of readdirSync(join(fm, cls)).sort()) {
        const px = await sharp(readFileSync(join(fm, cls, f)))
          .greyscale()
          .raw()
          .toBuffer();
        const x = Float32Array.from(px, (p) => (p / 255 - 0.286) / 0.353);
        const out = (await session.run({ input: new ort.Tensor('float32', x, [1, 1, 28, 28]) }))['logits']!
          .data as Float32Array;
        for (let c = 0; c < 10; c++) expect(Math.abs(out[c]! - ours[k * 10 + c]!)).toBeLessThan(1e-4);
        if (topK(out, 1)[0] === order.indexOf(cls)) correct++;
        k++;
      }
    }
    expect(r.fp.top1).toBeCloseTo(correct / 300, 10);
    expect(Object.keys(r.perClass).length).toBe(10);
  });

  it('decodes nothing on a second pass, and rebuilds a corrupt or torn cache entry', async () => {
    const cacheDir = join(tmp, 'cache-b');
    const first = await evaluateFloat({ modelPath: resnet20, dataPath: fm, cacheDir });
    expect(first.cache).toEqual({ hits: 0, misses: 300 });
    const second = await evaluateFloat({ modelPath: resnet20, dataPath: fm, cacheDir });
    expect(second.cache).toEqual({ hits: 300, misses: 0 });
    expect(second.fp).toEqual(first.fp);

    // Damage two entries (garbage; half a file) and leave a stray temp file as a crash would.
    const entries = readdirSync(cacheDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.px'));
    writeFileSync(join(cacheDir, entries[0]!), 'garbage');
    const half = readFileSync(join(cacheDir, entries[1]!));
    writeFileSync(join(cacheDir, entries[1]!), half.subarray(0, half.length >> 1));
    writeFileSync(join(cacheDir, `${entries[2]!}.tmp`), half.subarray(0, 10));
    const third = await evaluateFloat({ modelPath: resnet20, dataPath: fm, cacheDir });
    expect(third.cache).toEqual({ hits: 298, misses: 2 });
    expect(third.fp).toEqual(first.fp);
  });

  it('runs a fixed-batch model (mnist-8, batch 1) image by image', async () => {
    const r = await evaluateFloat({
      modelPath: modelPath('mnist-8')!,
      dataPath: join(repoRoot, 'test/fixtures/mnist'),
      cacheDir: join(tmp, 'cache-c'),
    });
    expect(r.n).toBe(100);
    expect(r.fp.top1).toBeGreaterThan(0.95);
  });

  it('uses the recorded split of an imported dataset', async () => {
    await importDataset(fm, join(tmp, 'fm-ds'), {
      calib: 100,
      seed: 1,
      classes: join(repoRoot, 'test/fixtures/fashion-mnist_classes.txt'),
    });
    const calib = await evaluateFloat({
      modelPath: resnet20,
      dataPath: join(tmp, 'fm-ds'),
      split: 'calib',
      cacheDir: join(tmp, 'cache-a'),
    });
    const evalSplit = await evaluateFloat({
      modelPath: resnet20,
      dataPath: join(tmp, 'fm-ds'),
      split: 'eval',
      cacheDir: join(tmp, 'cache-a'),
    });
    expect(calib.n).toBe(100);
    expect(evalSplit.n).toBe(200);
    expect(calib.classes.source).toMatch(/fashion-mnist_classes/);
  });

  it('reports images that fail at evaluation time and explains a wrong class list', async () => {
    const root = join(tmp, 'raw');
    mkdirSync(join(root, 'bag'), { recursive: true });
    const src = join(fm, 'bag');
    for (const f of readdirSync(src).slice(0, 3)) writeFileSync(join(root, 'bag', f), readFileSync(join(src, f)));
    writeFileSync(join(root, 'bag', 'broken.png'), 'not really a png');
    const r = await evaluateFloat({ modelPath: resnet20, dataPath: root, cacheDir: join(tmp, 'cache-d') });
    expect(r.n).toBe(3);
    expect(r.skipped).toEqual([{ path: 'bag/broken.png', reason: expect.stringMatching(/not an image/) }]);

    const wrong = join(tmp, 'wrong-classes.txt');
    writeFileSync(wrong, 'cat\ndog\n');
    await expect(evaluateFloat({ modelPath: resnet20, dataPath: root, classes: wrong })).rejects.toThrow(
      /Class bag of bag\/.* is not in the class list \(file .*wrong-classes\.txt, 2 classes\)/,
    );
    await expect(
      evaluateFloat({
        modelPath: resnet20,
        dataPath: root,
        preprocess: 'resize=32,crop=32',
        cacheDir: join(tmp, 'cache-d'),
      }),
    ).rejects.toThrow(/No image .* could be evaluated/);
  });
});

describe.skipIf(!hasShared)('sidecar accuracy reproduces on the shared fixtures', () => {
  it.each(ALL_MODELS)('%s: fp32 top-1 within 0.3 points of the sidecar', async (name) => {
    const sidecar = JSON.parse(readFileSync(join(sharedModels, `${name}.json`), 'utf8')) as {
      data: string;
      fp32: { top1: number; top5: number; n: number };
    };
    const r = await evaluateFloat({
      modelPath: join(sharedModels, `${name}.onnx`),
      dataPath: join(sharedModels, sidecar.data),
      cacheDir: join(tmp, 'cache-shared'),
    });
    expect(r.n).toBe(sidecar.fp32.n);
    expect(Math.abs(r.fp.top1 - sidecar.fp32.top1)).toBeLessThanOrEqual(0.003);
  });
});
