/**
 * The teacher of the search is the float network's logits, the same tensor the student
 * produces, also for a model that ends in Softmax (its file output is probabilities). And every
 * report states the final check of the result on all calibration images, within the budget. With
 * the shared fixtures, a search at the defaults keeps its held-out drop within the budget.
 */
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TrajectoryStep } from '../../api/contract.js';
import { readOnnx, writeOnnx } from '../../native-workers/engine/onnx/onnx-format.js';
import { closePools } from '../../services/pool.js';
import { quantize } from '../../services/quantize.js';
import { evaluateFloat } from '../../services/evaluate.js';
import { int } from '../helpers/graph-builder.js';
import { hasShared, modelPath, repoRoot, sharedFixtures } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-teacher-'));
afterAll(() => closePools());

/** mnist-8 with a Softmax after its logits: the same classifier, with probabilities as output. */
function withSoftmax(): string {
  const source = modelPath('mnist-8')!;
  const g = readOnnx(readFileSync(source), source);
  const logits = g.outputs[0]!;
  g.nodes.push({
    name: 'probs',
    op: 'Softmax',
    inputs: [logits.name],
    outputs: ['probabilities'],
    attrs: { axis: int(1) },
  });
  g.outputs = [{ ...logits, name: 'probabilities' }];
  const out = join(tmp, 'mnist-softmax.onnx');
  writeFileSync(out, writeOnnx(g));
  copyFileSync(source.replace(/\.onnx$/, '.json'), join(tmp, 'mnist-softmax.json'));
  return out;
}

describe('search teacher and final check', () => {
  it('compares logits with logits for a model that ends in Softmax, and reports the final D_c bound', async () => {
    const out = join(tmp, 'run');
    const report = await quantize({
      modelPath: withSoftmax(),
      dataPath: join(repoRoot, 'test/fixtures/mnist'),
      out,
      budget: 2,
      calib: 60,
      slice: 20,
      seed: 3,
      cacheDir: join(tmp, 'cache'),
    });
    const steps = readFileSync(join(out, 'trajectory.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TrajectoryStep);
    // A near-perfect student (16 bits) is near the teacher: KL ~0, not softmax(probabilities) vs logits (~2).
    expect(steps[0]!.note).toBe('uniform 16 bits');
    expect(steps[0]!.kl).toBeLessThan(0.01);
    expect(report.search.finalCheck).toMatchObject({ budget: 2, z: 2, within: true });
    expect(report.search.finalCheck!.bound).toBeLessThanOrEqual(2);
    expect(report.quant.ties).toBeGreaterThanOrEqual(0);
    // The held-out drop's paired counts: their difference is the drop, their sum its standard error.
    const { n10, n01, dropStandardError } = report.quant;
    expect(n10! - n01!).toBe(Math.round((report.fp.top1 - report.quant.top1) * report.data.eval));
    expect(n10! + n01!).toBeLessThanOrEqual(Math.round((1 - report.quant.agreement) * report.data.eval));
    expect(dropStandardError).toBeCloseTo(Math.sqrt(n10! + n01!) / report.data.eval, 12);
  }, 180_000);

  it.skipIf(!hasShared)(
    'holds the held-out drop within the budget at the defaults on mnist-8 (1000 / 1000 images), rolling back at z = 2',
    async () => {
      // Measured: the steps' result (12.39x) reads 1.00 point held out; the check at z = 2 returns to 10.60x at 0.30.
      const report = await quantize({
        modelPath: modelPath('mnist-8')!,
        dataPath: join(sharedFixtures, 'mnist'),
        out: join(tmp, 'mnist-defaults'),
        budget: 1,
        cacheDir: join(tmp, 'cache'),
      });
      expect(report.data).toMatchObject({ calib: 1000, eval: 1000 });
      expect(report.search.finalCheck).toMatchObject({ z: 2, rolledBack: true, within: true });
      expect(report.search.finalCheck!.bound).toBeLessThanOrEqual(1);
      expect(report.fp.top1 - report.quant.top1).toBeLessThanOrEqual(0.01 + 1e-9);
      expect(report.memory.reduction).toBeGreaterThan(8);
    },
    300_000,
  );

  it('saves logits, not probabilities, from evaluate --save-logits of a model that ends in Softmax', async () => {
    const data = join(repoRoot, 'test/fixtures/mnist');
    const [plain, soft] = [join(tmp, 'plain.f32'), join(tmp, 'soft.f32')];
    const a = await evaluateFloat({
      modelPath: modelPath('mnist-8')!,
      dataPath: data,
      saveLogits: plain,
      cacheDir: join(tmp, 'c'),
    });
    const b = await evaluateFloat({
      modelPath: withSoftmax(),
      dataPath: data,
      saveLogits: soft,
      cacheDir: join(tmp, 'c'),
    });
    const [x, y] = [plain, soft].map((f) => {
      const bytes = readFileSync(f); // a pooled Buffer: view exactly its own bytes
      return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    });
    expect(x!.length).toBe(a.n * 10);
    expect(y!.length).toBe(x!.length);
    for (let i = 0; i < x!.length; i++) expect(Math.abs(x![i]! - y![i]!)).toBeLessThan(1e-4);
    // Probabilities would all lie in [0, 1]; mnist-8's logits do not.
    expect(y!.some((v) => v > 1 || v < 0)).toBe(true);
    expect(b.fp.top1).toBe(a.fp.top1);
  }, 120_000);
});
