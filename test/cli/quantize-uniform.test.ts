import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { modelPath, repoRoot } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-cli-q-'));
const env = { FXPQ_CACHE_DIR: join(tmp, 'cache') };
const model = modelPath('fmnist_resnet20')!;
const data = join(repoRoot, 'test/fixtures/fashion-mnist');
const run = join(tmp, 'run8');

describe('fxpq quantize --uniform and evaluate --run', () => {
  it('writes config.json and a report.json with the contract fields, losing little at 8 bits', async () => {
    const r = await runCli(
      ['quantize', '--model', model, '--data', data, '--uniform', '8', '--out', run, '--calib', '100', '--json'],
      { env },
    );
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(JSON.parse(readFileSync(join(run, 'report.json'), 'utf8'))).toEqual(report);
    expect(Object.keys(report)).toEqual(
      expect.arrayContaining(['model', 'budget', 'data', 'fp', 'quant', 'memory', 'structures', 'search']),
    );
    expect(report.data).toMatchObject({ calib: 100, eval: 200, labelled: true, seed: 0 });
    expect(report.memory.reduction).toBeCloseTo(4, 10);
    expect(report.memory.avgBitsWeights).toBe(8);
    expect(report.structures.length).toBe(1 + 3 * 21 + 9 + 1 + 3); // input; W, B, A of 21 convs; 9 Adds; the pool; W, B, A of the Gemm
    expect(report.structures[0]).toMatchObject({ layer: 'input', kind: 'A', signed: true, bits: 8 });
    expect(Math.abs(report.fp.top1 - report.quant.top1)).toBeLessThanOrEqual(0.015);
    const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
    expect(config.data.calib.length).toBe(100);
    expect(config.data.eval.some((i: number) => config.data.calib.includes(i))).toBe(false);
  });

  it('counts the held-out images lost and gained, and prints the drop with its paired standard error', async () => {
    const r = await runCli(
      [
        'quantize',
        '--model',
        model,
        '--data',
        data,
        '--uniform',
        '4',
        '--out',
        join(tmp, 'run4-text'),
        '--calib',
        '100',
      ],
      { env },
    );
    expect(r.code).toBe(0);
    const report = JSON.parse(readFileSync(join(tmp, 'run4-text', 'report.json'), 'utf8'));
    // At 4 bits predictions change both ways: the counts' difference is the drop, their sum at most the disagreements.
    const { n10, n01 } = report.quant;
    const n = report.data.eval;
    expect(n10).toBeGreaterThan(0);
    expect(n10 - n01).toBe(Math.round((report.fp.top1 - report.quant.top1) * n));
    expect(n10 + n01).toBeLessThanOrEqual(Math.round((1 - report.quant.agreement) * n));
    expect(report.quant.dropStandardError).toBeCloseTo(Math.sqrt(n10 + n01) / n, 12);
    const line = r.stdout.split('\n').find((l) => l.startsWith('Drop'));
    expect(line).toBe(
      `Drop           ${(100 * (report.fp.top1 - report.quant.top1)).toFixed(2)} points on the held-out split (paired standard error ${(100 * report.quant.dropStandardError).toFixed(2)}: ${report.quant.n10} images lost, ${report.quant.n01} gained)`,
    );
  });

  it('evaluates the run with the simulation and the integer executor, which agree', async () => {
    const outs: Record<string, { quant: { top1: number; n10?: number; n01?: number }; n: number }> = {};
    for (const engine of ['sim', 'int']) {
      const logits = join(tmp, `${engine}.f32`);
      const r = await runCli(
        [
          'evaluate',
          '--model',
          model,
          '--data',
          data,
          '--run',
          run,
          '--engine',
          engine,
          '--split',
          'eval',
          '--json',
          '--save-logits',
          logits,
        ],
        { env },
      );
      expect(r.code).toBe(0);
      outs[engine] = JSON.parse(r.stdout);
      expect(readFileSync(logits).length).toBe(200 * 10 * 4);
    }
    expect(outs['sim']!.n).toBe(200);
    expect(outs['int']!.quant.top1).toBe(outs['sim']!.quant.top1);
    // The held-out counts of the run's own report, from evaluate as from quantize.
    const report = JSON.parse(readFileSync(join(run, 'report.json'), 'utf8'));
    expect(outs['sim']!.quant).toMatchObject({
      n10: report.quant.n10,
      n01: report.quant.n01,
      dropStandardError: report.quant.dropStandardError,
    });
    expect(Buffer.compare(readFileSync(join(tmp, 'sim.f32')), readFileSync(join(tmp, 'int.f32')))).toBe(0);
  });

  it('explains bad input', async () => {
    expect((await runCli(['quantize', '--model', model, '--data', data, '--out', join(tmp, 'x')], { env })).code).toBe(
      2,
    );
    expect(
      (await runCli(['quantize', '--model', model, '--data', data, '--out', join(tmp, 'x'), '--uniform', '1'], { env }))
        .code,
    ).toBe(2);
    const noRun = await runCli(['evaluate', '--model', model, '--data', data, '--run', join(tmp, 'nope')], { env });
    expect(noRun.code).toBe(1);
    expect(noRun.stderr).toMatch(/nope is not a finished FxPQ run/);
    const other = await runCli(
      ['evaluate', '--model', modelPath('mnist-8')!, '--data', join(repoRoot, 'test/fixtures/mnist'), '--run', run],
      { env },
    );
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/was made from another model/);
  });
});
