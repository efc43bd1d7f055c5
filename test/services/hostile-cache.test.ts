/**
 * Hostile input against the tensor cache (issue 30, items 4 and 14): images deleted or replaced
 * after import, a dataset.json with forged hashes, and a cache folder that cannot be written.
 * The cache is keyed by the hash of the bytes read for each use, never by the index's hashes;
 * an image whose bytes are not what its index records is skipped with its reason.
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { evaluateFloat } from '../../services/evaluate.js';
import { importDataset, type Dataset } from '../../services/datasets.js';
import { closePools } from '../../services/pool.js';
import { TensorCache } from '../../services/tensor-cache.js';
import { modelPath, repoRoot } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-hostile-cache-'));
const mnist = join(repoRoot, 'test/fixtures/mnist');
const model = modelPath('mnist-8')!;
afterAll(async () => {
  await closePools();
  rmSync(tmp, { recursive: true, force: true });
});

/** A folder of MNIST digits of the given classes (10 each), copied from the fixtures. */
function digits(name: string, classes: string[]): string {
  const dir = join(tmp, name);
  for (const c of classes) cpSync(join(mnist, c), join(dir, c), { recursive: true });
  return dir;
}

const evaluate = (dataPath: string, cacheDir: string) => evaluateFloat({ modelPath: model, dataPath, cacheDir });

describe('tensor cache against changed and hostile datasets', () => {
  it('does not score images deleted after import, and says which', async () => {
    const src = digits('deleted', ['0', '1', '2']);
    const index = join(tmp, 'deleted-index');
    await importDataset(src, index);
    const cacheDir = join(tmp, 'cache-deleted');
    const first = await evaluate(index, cacheDir);
    expect(first.n).toBe(30);
    expect(first.skipped).toEqual([]);

    // Every image of class 1 goes; the cache still holds their pixels.
    const gone = readdirSync(join(src, '1')).map((f) => join('1', f));
    rmSync(join(src, '1'), { recursive: true });
    const second = await evaluate(index, cacheDir);
    expect(second.n).toBe(20);
    expect(second.perClass['1']).toBeUndefined();
    expect(second.skipped.map((s) => s.path).sort()).toEqual(gone.sort());
    for (const s of second.skipped) expect(s.reason).toMatch(/missing: deleted or moved since the dataset was indexed/);

    // Nothing left: no score at all, rather than 30 images scored from the cache.
    rmSync(src, { recursive: true });
    await expect(evaluate(index, cacheDir)).rejects.toThrow(/No image .* could be evaluated \(30 skipped\)/);
  });

  it('never caches a replaced image under its old hash: an untouched import of the originals scores as before', async () => {
    const originals = digits('originals', ['0', '1', '2']);
    const replaced = digits('replaced', ['0', '1', '2']);
    const a = join(tmp, 'replaced-index');
    const b = join(tmp, 'originals-index');
    await importDataset(replaced, a);
    await importDataset(originals, b);
    const fresh = await evaluate(b, join(tmp, 'cache-fresh'));
    expect(fresh.n).toBe(30);

    // After import, each image of class 0 is replaced by an image of class 2 (other sizes and pixels).
    const zeros = readdirSync(join(replaced, '0')).sort();
    const twos = readdirSync(join(replaced, '2')).sort();
    zeros.forEach((f, i) => writeFileSync(join(replaced, '0', f), readFileSync(join(originals, '2', twos[i]!))));
    const cacheDir = join(tmp, 'cache-replaced');
    const onReplaced = await evaluate(a, cacheDir);
    expect(onReplaced.n).toBe(20);
    expect(onReplaced.skipped.map((s) => s.path).sort()).toEqual(zeros.map((f) => join('0', f)));
    for (const s of onReplaced.skipped) expect(s.reason).toMatch(/changed since the dataset was indexed/);

    const later = await evaluate(b, cacheDir);
    expect(later.n).toBe(30);
    expect(later.fp).toEqual(fresh.fp);
    expect(later.perClass).toEqual(fresh.perClass);
  });

  it('a dataset.json with forged hashes neither reads nor writes another dataset’s cache entries', async () => {
    const victimSrc = digits('victim', ['0', '1', '2']);
    const victim = join(tmp, 'victim-index');
    const victimIndex = await importDataset(victimSrc, victim);
    const clean = await evaluate(victim, join(tmp, 'cache-victim-fresh'));

    // The hostile dataset: other digits (3, 4, 5), each claiming the hash of a victim image
    // (its own size kept, so only the content check can catch it).
    const hostileSrc = digits('hostile', ['3', '4', '5']);
    const hostile = join(tmp, 'hostile-index');
    const index = await importDataset(hostileSrc, hostile);
    const forged: Dataset = {
      ...index,
      images: index.images.map((image, i) => ({ ...image, sha256: victimIndex.images[i % 30]!.sha256 })),
    };
    writeFileSync(join(hostile, 'dataset.json'), JSON.stringify(forged));
    const cacheDir = join(tmp, 'cache-shared');
    // Hostile first (it would store its pixels under the victim's hashes), then the victim, then
    // hostile again (it would be served the victim's pixels).
    await expect(evaluate(hostile, cacheDir)).rejects.toThrow(/No image .* could be evaluated \(30 skipped\)/);
    const after = await evaluate(victim, cacheDir);
    expect(after.fp).toEqual(clean.fp);
    expect(after.perClass).toEqual(clean.perClass);
    await expect(evaluate(hostile, cacheDir)).rejects.toThrow(/could be evaluated/);
  });

  it('a cache folder that cannot be written degrades to no cache with one warning', async () => {
    const src = digits('unwritable', ['0', '1']);
    const index = join(tmp, 'unwritable-index');
    await importDataset(src, index);
    // A file where the cache folder should be: no entry can be written below it (root included).
    const blocked = join(tmp, 'cache-is-a-file');
    writeFileSync(blocked, 'not a folder');
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const r = await evaluate(index, join(blocked, 'tensors'));
      expect(r.n).toBe(20);
      expect(r.cache).toEqual({ hits: 0, misses: 20 });
      const warnings = stderr.mock.calls.map((c) => String(c[0])).filter((l) => /tensor cache/.test(l));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/fxpq: warning: the tensor cache .* cannot be written .*going on without it/);
    } finally {
      stderr.mockRestore();
    }
    // The same through the class: one warning however many entries fail.
    const seen: string[] = [];
    const cache = new TensorCache(join(blocked, 'x'), (m) => seen.push(m));
    const img = { width: 1, height: 1, channels: 1, data: new Uint8Array([7]) };
    for (let i = 0; i < 5; i++) await cache.put(String(i).repeat(64), 'r28-c28-ch1-rgb', img);
    expect(seen).toHaveLength(1);
    expect(cache.warning).toBe(seen[0]);
    expect(await cache.get('0'.repeat(64), 'r28-c28-ch1-rgb')).toBeUndefined();
  });

  it('refuses a dataset.json whose fields have the wrong types, in a sentence naming the field', async () => {
    const src = digits('malformed', ['0']);
    const dir = join(tmp, 'malformed-index');
    const good = await importDataset(src, dir);
    const cases: [string, (d: Dataset) => unknown][] = [
      ['images.0', (d) => ({ ...d, images: [null, ...d.images.slice(1)] })],
      ['images.0.sha256', (d) => ({ ...d, images: [{ ...d.images[0]!, sha256: '../../x' }] })],
      ['images.0.bytes', (d) => ({ ...d, images: [{ ...d.images[0]!, bytes: '12' }] })],
      ['root', (d) => ({ ...d, root: 'relative/folder' })],
      ['classes', (d) => ({ ...d, classes: 'digits' })],
      ['split', (d) => ({ ...d, split: { seed: 0, calib: { 0: 1 }, eval: [] } })],
      ['beyond its 10 images', (d) => ({ ...d, split: { seed: 0, calib: [0, 999], eval: [] } })],
    ];
    for (const [field, edit] of cases) {
      writeFileSync(join(dir, 'dataset.json'), JSON.stringify(edit(good)));
      await expect(evaluate(dir, join(tmp, 'cache-malformed')), field).rejects.toThrow(
        new RegExp(
          `dataset\\.json (is damaged or was edited by hand \\(${field.replace(/\./g, '\\.')}|names a calib image ${field})`,
        ),
      );
    }
    writeFileSync(join(dir, 'dataset.json'), 'null');
    await expect(evaluate(dir, join(tmp, 'cache-malformed'))).rejects.toThrow(/is not an FxPQ dataset index/);
  });

  it('refuses cache keys that are not a SHA-256 or geometries that are not plain names', async () => {
    const dir = join(tmp, 'cache-keys');
    mkdirSync(dir);
    const cache = new TensorCache(dir);
    const img = { width: 1, height: 1, channels: 1, data: new Uint8Array([7]) };
    await expect(cache.put('../../escape', 'r28', img)).rejects.toThrow(/not a SHA-256/);
    await expect(cache.get('a'.repeat(64), '../up')).rejects.toThrow(/not a plain name/);
  });
});
