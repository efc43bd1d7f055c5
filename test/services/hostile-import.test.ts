/**
 * `dataset import --copy` never leaves half a copy (issue 30, item 14): a full disk in the
 * middle used to leave images/ with part of the files, and a second import copied over
 * whatever images/ held, the user's files included. The copies now go to a hidden staging
 * folder that becomes images/ in one rename.
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
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

/** Every file under `root` with its content (relative paths). */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const abs = join(dir, name);
      if (statSync(abs).isDirectory()) walk(abs);
      else out[relative(root, abs)] = readFileSync(abs, 'latin1');
    }
  };
  walk(root);
  return out;
}

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

  it("never takes the user's images/ for an earlier copy: an in-place import of OUT/images, then --copy into OUT", async () => {
    // The in-place import records root OUT/images, as a copy import does; only the copy mark tells them apart.
    const out = join(tmp, 'in-place-then-copy');
    const mine = join(out, 'images');
    cpSync(fashion, mine, { recursive: true });
    writeFileSync(join(mine, 'ankle_boot', 'notes.txt'), 'my notes');
    const before = snapshot(mine);
    const inPlace = await importDataset(mine, out);
    expect(inPlace.root).toBe(mine);
    expect(inPlace.copied).toBeUndefined();
    await expect(importDataset(fashion, out, { copy: true })).rejects.toThrow(
      /images already exists and was not written by an FxPQ copy import/,
    );
    expect(snapshot(mine)).toEqual(before);
    expect(readdirSync(out).sort()).toEqual(['dataset.json', 'images']);
    // A forged mark on a root elsewhere, or a mark on an index that is not one, is no earlier copy either.
    const index = JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(out, 'dataset.json'), JSON.stringify({ ...index, copied: true, root: fashion }));
    await expect(importDataset(fashion, out, { copy: true })).rejects.toThrow(/was not written by an FxPQ copy/);
    expect(snapshot(mine)).toEqual(before);
  });

  it('replaces an earlier copy by the paths its index lists: files added to images/ since stay, under a visible name', async () => {
    const out = join(tmp, 'copy-then-added');
    await importDataset(fashion, out, { copy: true });
    writeFileSync(join(out, 'images', 'ankle_boot', 'added-later.txt'), 'mine');
    mkdirSync(join(out, 'images', 'my-folder'));
    writeFileSync(join(out, 'images', 'my-folder', 'a.png'), 'mine too');
    // A hostile index naming a folder or a path outside is not followed.
    const indexFile = join(out, 'dataset.json');
    const index = JSON.parse(readFileSync(indexFile, 'utf8')) as { images: { path: string }[] };
    const outside = join(tmp, 'outside.txt');
    writeFileSync(outside, 'outside');
    index.images.push({ ...index.images[0]!, path: 'my-folder' }, { ...index.images[0]!, path: '../../outside.txt' });
    writeFileSync(indexFile, JSON.stringify(index));
    const again = await importDataset(fashion, out, { copy: true });
    expect(again.copied).toBe(true);
    expect(readdirSync(out).sort()).toEqual(['dataset.json', 'images', 'images.not-copied-by-fxpq']);
    const kept = join(out, 'images.not-copied-by-fxpq');
    expect(snapshot(kept)).toEqual({
      [join('ankle_boot', 'added-later.txt')]: 'mine',
      [join('my-folder', 'a.png')]: 'mine too',
    });
    expect(readFileSync(outside, 'utf8')).toBe('outside');
    for (const image of again.images) expect(existsSync(join(out, 'images', image.path))).toBe(true);
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
