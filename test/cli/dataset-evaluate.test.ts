import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { modelPath, repoRoot } from '../helpers/fixtures.js';
import { makePlantedFolder } from '../helpers/planted.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-cli-ds-'));
const env = { FXPQ_CACHE_DIR: join(tmp, 'cache') };
const fm = join(repoRoot, 'test/fixtures/fashion-mnist');

describe('fxpq dataset', () => {
  it('imports a planted folder, listing what it skipped, and info --json has the contract shape', async () => {
    const planted = await makePlantedFolder(join(tmp, 'planted'));
    const imp = await runCli(['dataset', 'import', planted.root, '--out', join(tmp, 'ds')], { env });
    expect(imp.code).toBe(0);
    expect(imp.stdout).toMatch(/Imported 10 images in 2 classes/);
    expect(imp.stdout).toMatch(/bag\/zero\.png: empty file/);
    const info = await runCli(['dataset', 'info', join(tmp, 'ds'), '--json'], { env });
    expect(info.code).toBe(0);
    const j = JSON.parse(info.stdout) as Record<string, unknown>;
    expect(Object.keys(j)).toEqual(['images', 'classes', 'perClass', 'skipped', 'duplicates']);
    expect(j['images']).toBe(10);
    expect(j['duplicates']).toEqual([planted.duplicate]);
    const text = await runCli(['dataset', 'info', join(tmp, 'ds')], { env });
    expect(text.stdout).toMatch(/Skipped 4 files/);
  });

  it('explains a missing folder, a bad class file and usage errors', async () => {
    const missing = await runCli(['dataset', 'import', join(tmp, 'none'), '--out', join(tmp, 'x')], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/none does not exist/);
    const dup = join(tmp, 'dup-classes.txt');
    writeFileSync(dup, 'bag\nbag\n');
    const badClasses = await runCli(['dataset', 'import', fm, '--out', join(tmp, 'y'), '--classes', dup], { env });
    expect(badClasses.code).toBe(1);
    expect(badClasses.stderr).toMatch(/dup-classes\.txt lists class bag twice/);
    expect((await runCli(['dataset', 'import', fm], { env })).code).toBe(2);
    expect((await runCli(['dataset', 'import', fm, '--out', join(tmp, 'z'), '--layout', 'zip'], { env })).code).toBe(2);
    const notDataset = await runCli(['dataset', 'info', join(tmp, 'nothing-here')], { env });
    expect(notDataset.code).toBe(1);
  });
});

describe('fxpq evaluate (float)', () => {
  it('prints the contract JSON and writes logits', async () => {
    const logits = join(tmp, 'l.f32');
    const r = await runCli(
      ['evaluate', '--model', modelPath('fmnist_resnet20')!, '--data', fm, '--json', '--save-logits', logits],
      { env },
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { n: number; fp: { top1: number; top5: number } };
    expect(j.n).toBe(300);
    expect(Object.keys(j.fp)).toEqual(['top1', 'top5']);
    expect(readFileSync(logits).length).toBe(300 * 10 * 4);
    expect(r.stderr).toMatch(/Evaluating: 300\/300/);
  });

  it('explains a model without a preprocessing spec', async () => {
    const bare = join(tmp, 'bare.onnx');
    writeFileSync(bare, readFileSync(modelPath('fmnist_resnet20')!));
    const r = await runCli(['evaluate', '--model', bare, '--data', fm], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bare\.onnx carries no preprocessing spec .* pass --preprocess/);
  });
});
