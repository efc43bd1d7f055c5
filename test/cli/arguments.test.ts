/**
 * Arguments are parsed strictly (decimal numbers in range, or exit 2 with the option named), and
 * a bad --out fails before any work, with a sentence naming the folder.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { modelPath, repoRoot } from '../helpers/fixtures.js';
import { runCli } from '../helpers/cli.js';
import { GraphBuilder } from '../helpers/graph-builder.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-args-'));
const base = ['quantize', '--model', modelPath('mnist-8')!, '--data', join(repoRoot, 'test/fixtures/mnist')];

describe('command-line arguments', () => {
  it.each([
    [['--budget=', '--out', join(tmp, 'a')], /--budget must be a number from 0 to 100, not ""/],
    [['--budget', '0x10', '--out', join(tmp, 'a')], /--budget must be a number/],
    [['--budget', 'Infinity', '--out', join(tmp, 'a')], /--budget must be a number/],
    [['--budget', '1', '--seed', '1e300', '--out', join(tmp, 'a')], /--seed must be a whole number from 0/],
    [['--uniform', '32', '--out', join(tmp, 'a')], /--uniform must be a whole number from 2 to 16/],
    [['--budget', '1', '--workers', '0', '--out', join(tmp, 'a')], /--workers must be a whole number from 1/],
    [['--budget', '1', '--rounding', 'floor', '--out', join(tmp, 'a')], /--rounding must be nearest or optimized/],
    [['--budget', '1', '--weight-bits', '4', '--out', join(tmp, 'a')], /--weight-bits goes with --uniform B/],
    [['--uniform', '8', '--weight-bits', '1', '--out', join(tmp, 'a')], /--weight-bits must be a whole number from 2/],
    [['--budget', '1', '--z=11', '--out', join(tmp, 'a')], /--z must be a number from 0 to 10/],
    [['--budget', '1', '--final-z', 'two', '--out', join(tmp, 'a')], /--final-z must be a number/],
  ])('refuses %j with exit 2', async (args, message) => {
    const r = await runCli([...base, ...(args as string[])]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('refuses a model path that is a FIFO or a device at once, and blames a bad --preprocess, not the images', async () => {
    const fifo = join(tmp, 'model.onnx');
    execFileSync('mkfifo', [fifo]);
    const started = Date.now();
    const r = await runCli(['inspect', fifo]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/model\.onnx is not a regular file \(a device, pipe or socket\), not an ONNX model file/);
    expect(Date.now() - started).toBeLessThan(30_000);
    const crop = await runCli([
      'evaluate',
      '--model',
      modelPath('mnist-8')!,
      '--data',
      join(repoRoot, 'test/fixtures/mnist'),
      '--preprocess',
      'resize=28,crop=40,channels=1',
    ]);
    expect(crop.code).toBe(1);
    expect(crop.stderr).toMatch(/crop 40 is larger than resize 28, so no image can be cropped/);
  }, 60_000);

  it("keeps onnxruntime's own warnings off stderr", async () => {
    // A declared output shape that disagrees with the graph: onnxruntime warns while loading it.
    const b = new GraphBuilder();
    const x = b.input('x', [-1, 2, 4, 4]);
    const c = b.node('Conv', [x, b.weight([3, 2, 1, 1], 1)]);
    b.output(b.node('Flatten', [b.node('GlobalAveragePool', [c])]), [-1, 5]);
    const model = join(tmp, 'warns.onnx');
    writeFileSync(model, b.bytes());
    const r = await runCli(['inspect', model]);
    expect(r.stderr).not.toMatch(/onnxruntime|\[W:/);
  }, 60_000);

  it('checks --out before any work: a file, a system folder', async () => {
    const file = join(tmp, 'taken');
    writeFileSync(file, 'x');
    const asFile = await runCli([...base, '--budget', '1', '--out', file]);
    expect(asFile.code).toBe(1);
    expect(asFile.stderr).toMatch(/taken is a file; the run folder \(--out\) must be a folder/);
    const root = await runCli([...base, '--budget', '1', '--out', '/']);
    expect(root.code).toBe(1);
    expect(root.stderr).toMatch(/\/ is a system folder/);
    const proc = await runCli([...base, '--budget', '1', '--out', '/proc/x']);
    expect(proc.code).toBe(1);
    expect(proc.stderr).toMatch(/\/proc\/x is a system folder/);
  });

  it('names a damaged run file instead of printing parser text', async () => {
    const run = join(tmp, 'damaged');
    mkdirSync(run, { recursive: true });
    writeFileSync(join(run, 'checkpoint.json'), '{"identity": {"model"');
    const torn = await runCli([...base, '--budget', '1', '--out', run]);
    expect(torn.code).toBe(1);
    expect(torn.stderr).toMatch(
      /checkpoint\.json \(a search checkpoint\) is not valid JSON, perhaps cut short\. Start the run over with --restart\./,
    );
    writeFileSync(join(run, 'checkpoint.json'), 'null');
    expect((await runCli([...base, '--budget', '1', '--out', run])).stderr).toMatch(/is not a search checkpoint/);
    writeFileSync(join(run, 'config.json'), 'null');
    writeFileSync(join(run, 'report.json'), 'null');
    const exported = await runCli(['export', run, '--out', join(tmp, 'x')]);
    expect(exported.code).toBe(1);
    expect(exported.stderr).toMatch(/config\.json is not an FxPQ run configuration/);
  });
});
