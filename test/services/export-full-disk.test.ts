/**
 * An export on a full disk (issue 30, item 13): the write of a file into the staging folder
 * failing with ENOSPC used to surface as "Internal error: ENOSPC". Now a sentence naming the
 * output, nothing half-written (no output folder, no staging folder left), and the next export
 * on a disk with room succeeds.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { modelPath, repoRoot, smallUniform } from '../helpers/fixtures.js';

/** The writes of files with this name fail as on a full disk. */
let fullFor: string | undefined;
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    writeFile: async (...args: Parameters<typeof real.writeFile>) => {
      if (fullFor !== undefined && typeof args[0] === 'string' && args[0].endsWith(fullFor))
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      return real.writeFile(...args);
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
    expect(readdirSync(out).sort()).toEqual(['model.fxpq', 'model.qdq.onnx', 'report.html', 'report.json']);
  }, 120_000);
});
