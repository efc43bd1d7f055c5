/**
 * Issue 13's uniform targets on the shared models, through `quantize --uniform 8` at the defaults
 * (depthwise equalization with its scale limit, optimized rounding): mobilenet_v1_0.25_224
 * within 3 points of float on its held-out split, resnet8_mlperf_tiny_cifar10 within 1. The
 * integer executor, importing the run's model again as the run recorded it (the equalization's
 * limit included), gives the same held-out top-1 as the run's report.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_SCALE } from '../../native-workers/engine/passes/equalize.js';
import { closePools } from '../../services/pool.js';
import { quantize } from '../../services/quantize.js';
import { evaluate } from '../../services/evaluate.js';
import { hasShared, sharedFixtures } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-uniform-targets-'));
const cacheDir = join(tmp, 'cache');
afterAll(() => closePools());

describe.skipIf(!hasShared)('uniform 8 bits at the defaults on the shared models (issue 13)', () => {
  it('keeps mobilenet_v1_0.25_224 within 3 points of float, and the integer executor agrees with the report', async () => {
    const out = join(tmp, 'mobilenet');
    const modelPath = join(sharedFixtures, 'models', 'mobilenet_v1_0.25_224.onnx');
    const dataPath = join(sharedFixtures, 'imagenet-sample');
    const report = await quantize({ modelPath, dataPath, classes: 'imagenet1k', uniform: 8, out, cacheDir });
    expect(report.rounding?.method).toBe('optimized');
    expect(100 * (report.fp.top1 - report.quant.top1)).toBeLessThanOrEqual(3);
    // The run records the limit it was equalized with, and is imported again with it.
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ equalize: 'depthwise', equalizeMaxScale: MAX_SCALE });
    const int = await evaluate({ modelPath, dataPath, run: out, engine: 'int', split: 'eval', cacheDir });
    expect(int.quant?.top1).toBe(report.quant.top1);
  }, 600_000);

  it('keeps resnet8_mlperf_tiny_cifar10 within 1 point of float', async () => {
    const report = await quantize({
      modelPath: join(sharedFixtures, 'models', 'resnet8_mlperf_tiny_cifar10.onnx'),
      dataPath: join(sharedFixtures, 'cifar10'),
      uniform: 8,
      out: join(tmp, 'resnet8'),
      cacheDir,
    });
    expect(100 * (report.fp.top1 - report.quant.top1)).toBeLessThanOrEqual(1);
  }, 600_000);
});
