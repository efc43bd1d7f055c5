/**
 * The reliability corpus for images: over a hundred bad files (see test/helpers/image-corpus.ts)
 * beside good ones, imported by the real CLI. Import finishes within a time bound and a memory
 * bound, keeps every good image, and names every bad file with a reason; a folder of only bad
 * files exits 1 with a sentence naming the folder and a file.
 */
import { mkdtempSync, readFileSync, rmSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../../services/datasets.js';
import { runCli } from '../helpers/cli.js';
import { repoRoot } from '../helpers/fixtures.js';
import { buildImageCorpus } from '../helpers/image-corpus.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-image-corpus-'));
const peakRssPreload = join(repoRoot, 'test/helpers/peak-rss.mjs');

export const MEMORY_BOUND_MB = 1536;
const TIME_BOUND_S = 240;

describe('image corpus', () => {
  it('imports the good images and names every one of more than 100 bad files, in bounded time and memory', async () => {
    const corpus = await buildImageCorpus(tmp, 20261127);
    expect(corpus.bad.size).toBeGreaterThanOrEqual(100);
    const out = join(tmp, 'imported');
    const rssFile = join(tmp, 'peak-rss');
    const started = Date.now();
    const r = await runCli(['dataset', 'import', corpus.root, '--out', out], {
      env: { NODE_OPTIONS: `--import=${peakRssPreload}`, FXPQ_PEAK_RSS_FILE: rssFile },
    });
    const seconds = (Date.now() - started) / 1000;
    expect(r.code, r.stderr).toBe(0);
    const dataset = JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8')) as Dataset;
    const imported = new Set(dataset.images.map((i) => i.path));
    const skipped = new Map(dataset.skipped.map((s) => [s.path, s.reason]));
    for (const good of corpus.good) expect({ good, imported: imported.has(good) }).toEqual({ good, imported: true });
    const wrong: string[] = [];
    for (const [path, reason] of corpus.bad) {
      const got = skipped.get(path);
      if (!got || !reason.test(got))
        wrong.push(`${path}: ${got ?? (imported.has(path) ? 'imported' : 'not mentioned')}`);
      else expect(r.stdout).toContain(`${path}: ${got}`);
    }
    for (const path of corpus.either)
      if (!imported.has(path) && !skipped.has(path)) wrong.push(`${path}: neither imported nor skipped`);
    expect(wrong).toEqual([]);
    const peakMb = Number(readFileSync(rssFile, 'utf8')) / 1024;
    console.log(
      `image corpus: ${corpus.total} files (${corpus.bad.size} bad, ${corpus.either.length} damaged in the pixels, ${corpus.good.length} good): ${dataset.images.length} imported, ${dataset.skipped.length} skipped with a reason, ${seconds.toFixed(1)} s, peak RSS ${peakMb.toFixed(0)} MB`,
    );
    expect(seconds).toBeLessThan(TIME_BOUND_S);
    expect(peakMb).toBeLessThan(MEMORY_BOUND_MB);
  }, 300_000);

  it('exits 1 naming the folder and a bad file when no image is readable', async () => {
    const dir = join(tmp, 'only-bad', 'dog');
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(tmp, 'data', 'cat', 'readme.jpg'), join(dir, 'readme.jpg'));
    copyFileSync(join(tmp, 'data', 'cat', 'cut-50.png'), join(dir, 'cut-50.png'));
    const r = await runCli(['dataset', 'import', join(tmp, 'only-bad'), '--out', join(tmp, 'only-bad-out')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(join(tmp, 'only-bad'));
    expect(r.stderr).toMatch(/holds no readable images \(2 files skipped, e\.g\. dog\/(readme\.jpg|cut-50\.png): /);
    rmSync(join(tmp, 'only-bad'), { recursive: true });
  }, 120_000);
});
