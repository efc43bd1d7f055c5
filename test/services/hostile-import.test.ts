/**
 * `dataset import --copy` never leaves half a copy (issue 30, item 14): a full disk in the
 * middle used to leave images/ with part of the files, and a second import copied over
 * whatever images/ held, the user's files included. The copies now go to a hidden staging
 * folder that becomes images/ in one rename.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { repoRoot } from '../helpers/fixtures.js';

/** copyFile fails with ENOSPC after `copyBudget` successful copies (the disk fills up). */
let copyBudget = Infinity;
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    copyFile: async (...args: Parameters<typeof real.copyFile>) => {
      if (copyBudget-- <= 0) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      return real.copyFile(...args);
    },
  };
});

const { importDataset } = await import('../../services/datasets.js');

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-import-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const fashion = join(repoRoot, 'test', 'fixtures', 'fashion-mnist');

describe('dataset import --copy', () => {
  it('leaves nothing half-copied when the disk fills up, and the next import completes', async () => {
    const out = join(tmp, 'full-disk');
    copyBudget = 40;
    await expect(importDataset(fashion, out, { copy: true })).rejects.toThrow(/disk is full/);
    // Nothing a reader could take for a dataset: no index, no images/, no staging left behind.
    expect(readdirSync(out)).toEqual([]);

    copyBudget = Infinity;
    const ds = await importDataset(fashion, out, { copy: true });
    expect(readdirSync(out).sort()).toEqual(['dataset.json', 'images']);
    for (const image of ds.images) expect(existsSync(join(out, 'images', image.path))).toBe(true);
  });

  it("clears a killed import's staging folder and replaces an earlier copy only once the new one is complete", async () => {
    const out = join(tmp, 'again');
    const first = await importDataset(fashion, out, { copy: true });
    mkdirSync(join(out, '.images.partial-killed'));
    writeFileSync(join(out, '.images.partial-killed', 'x.png'), 'half');
    copyBudget = 10;
    await expect(importDataset(fashion, out, { copy: true })).rejects.toThrow(/disk is full/);
    copyBudget = Infinity;
    // The earlier import is intact: its index and every one of its copies.
    expect(readdirSync(out).sort()).toEqual(['dataset.json', 'images']);
    for (const image of first.images) expect(existsSync(join(out, 'images', image.path))).toBe(true);
    await importDataset(fashion, out, { copy: true });
    expect(readdirSync(out).sort()).toEqual(['dataset.json', 'images']);
  });

  it("refuses to copy into an images/ folder it did not write, and leaves the user's files alone", async () => {
    const out = join(tmp, 'users-images');
    const mine = join(out, 'images', 'ankle_boot');
    mkdirSync(mine, { recursive: true });
    const name = readdirSync(join(fashion, 'ankle_boot'))[0]!;
    writeFileSync(join(mine, name), 'my own picture');
    await expect(importDataset(fashion, out, { copy: true })).rejects.toThrow(
      /images already exists and was not written by an FxPQ copy import/,
    );
    expect(readFileSync(join(mine, name), 'utf8')).toBe('my own picture');
    expect(existsSync(join(out, 'dataset.json'))).toBe(false);
  });
});
