/**
 * An export on a full disk (issue 30, item 13): the write of a file into the staging folder
 * failing with ENOSPC used to surface as "Internal error: ENOSPC". Now a sentence naming the
 * output, nothing half-written (no output folder, no staging folder left), and the next export
 * on a disk with room succeeds. The disk may also fill while an existing export is replaced: the
 * old export then stays whole (it used to be replaced a file at a time, so a failure left new
 * model files beside the old report).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { modelPath, repoRoot, smallUniform } from '../helpers/fixtures.js';

/** The writes of files with this name fail as on a full disk. */
let fullFor: string | undefined;
/**
 * Renames of new files onto paths ending so fail as on a full disk (a file system allocating on
 * rename); putting an old export back (from a `.NAME.export-old-*` folder) is let through.
 */
let renameFullFor: string[] = [];
const enospc = (): Error => Object.assign(new Error('ENOSPC: no space left on device, rename'), { code: 'ENOSPC' });
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    writeFile: async (...args: Parameters<typeof real.writeFile>) => {
      if (fullFor !== undefined && typeof args[0] === 'string' && args[0].endsWith(fullFor))
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      return real.writeFile(...args);
    },
    rename: async (from: string, to: string) => {
      if (!from.includes('.export-old-') && renameFullFor.some((end) => to.endsWith(end))) throw enospc();
      return real.rename(from, to);
    },
  };
});

const { quantize } = await import('../../services/quantize.js');
const { exportRun } = await import('../../services/export.js');
const { closePools } = await import('../../services/pool.js');

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-full-disk-'));
const cacheDir = join(tmp, 'cache');
afterAll(async () => {
  await closePools();
  rmSync(tmp, { recursive: true, force: true });
});

describe('export on a full disk', () => {
  it('is a sentence naming the output, leaves nothing behind, and the next export succeeds', async () => {
    const run = join(tmp, 'run');
    await quantize({
      modelPath: modelPath('mnist-8')!,
      dataPath: join(repoRoot, 'test/fixtures/mnist'),
      out: run,
      ...smallUniform(cacheDir),
    });
    const out = join(tmp, 'exports', 'x');
    fullFor = 'model.fxpq';
    const failed = exportRun({ run, out, formats: ['qdq', 'fxpq'], cacheDir });
    await expect(failed).rejects.toThrow(/x cannot be written: .* the disk is full/);
    await expect(failed).rejects.toMatchObject({ name: 'FxpqError' });
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(join(tmp, 'exports'))).toEqual([]);

    fullFor = undefined;
    await exportRun({ run, out, formats: ['qdq', 'fxpq'], cacheDir });
    expect(readdirSync(out).sort()).toEqual([
      '.fxpq-export',
      'model.fxpq',
      'model.qdq.onnx',
      'report.html',
      'report.json',
    ]);
  }, 120_000);

  it('a full disk while an existing export is replaced keeps the old export whole', async () => {
    const run = join(tmp, 'run');
    const out = join(tmp, 'exports', 'y');
    await exportRun({ run, out, formats: ['qdq', 'fxpq'], cacheDir });
    const snapshot = (): Record<string, string> =>
      Object.fromEntries(
        readdirSync(out, { recursive: true })
          .map(String)
          .filter((f) => statSync(join(out, f)).isFile())
          .sort()
          .map((f) => [
            f,
            createHash('sha256')
              .update(readFileSync(join(out, f)))
              .digest('hex'),
          ]),
      );
    const before = snapshot();
    // A different export (fewer golden vectors: model.fxpq and report.json differ), failing when
    // its files reach the folder.
    renameFullFor = ['/y', '/y/report.json'];
    const failed = exportRun({ run, out, formats: ['qdq', 'fxpq'], cacheDir, verifyImages: 10, goldenVectors: 2 });
    await expect(failed).rejects.toThrow(/y cannot be written: .* the disk is full/);
    await expect(failed).rejects.toMatchObject({ name: 'FxpqError' });
    expect(snapshot()).toEqual(before);
    expect(readdirSync(join(tmp, 'exports')).sort()).toEqual(['x', 'y']);

    renameFullFor = [];
    await exportRun({ run, out, formats: ['qdq', 'fxpq'], cacheDir, verifyImages: 10, goldenVectors: 2 });
    const after = snapshot();
    expect(after['report.json']).not.toBe(before['report.json']);
    expect(after['model.fxpq']).not.toBe(before['model.fxpq']);
    expect(readdirSync(join(tmp, 'exports')).sort()).toEqual(['x', 'y']);
  }, 120_000);
});
