/**
 * Nothing stale is scored or calibrated on (issue 30, item 4): a run records its split by
 * image, so a quantize or an export whose images changed or vanished since the dataset was
 * imported stops with a sentence naming the image; it used to go on silently with fewer
 * images than its report then claimed.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { modelPath, repoRoot } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-stale-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const env = { FXPQ_CACHE_DIR: join(tmp, 'cache') };
const model = modelPath('mnist-8')!;

/** A private copy of the mnist images, imported (indexed with its hashes) into DATA. */
async function importedCopy(name: string): Promise<{ images: string; data: string }> {
  const images = join(tmp, `${name}-images`);
  cpSync(join(repoRoot, 'test/fixtures/mnist'), images, { recursive: true });
  const data = join(tmp, `${name}-data`);
  const r = await runCli(['dataset', 'import', images, '--out', data], { env });
  expect(r.code, r.stderr).toBe(0);
  return { images, data };
}

describe('images changed or gone since import', () => {
  it('a uniform run stops on a vanished calibration image and names it', async () => {
    const { images, data } = await importedCopy('gone');
    // A whole class gone, so some of it is in the calibration split the run reads.
    rmSync(join(images, '3'), { recursive: true });
    const r = await runCli(
      ['quantize', '--model', model, '--data', data, '--uniform', '8', '--out', join(tmp, 'run-gone')],
      {
        env,
      },
    );
    expect(r.stderr).not.toMatch(/internal error/i);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(join(images, '3'));
    expect(r.stderr).toMatch(/deleted or moved since the dataset was indexed/);
  }, 120_000);

  it('an export stops when a verification image was replaced after the run', async () => {
    const { images, data } = await importedCopy('changed');
    const run = join(tmp, 'run-changed');
    const q = await runCli(['quantize', '--model', model, '--data', data, '--uniform', '8', '--out', run], { env });
    expect(q.code, q.stderr).toBe(0);
    // Every image replaced by a picture of another digit (the cache already holds the old pixels).
    const other = (cls: string): Buffer => {
      const folder = join(repoRoot, 'test/fixtures/mnist', cls === '0' ? '1' : '0');
      return readFileSync(join(folder, readdirSync(folder)[0]!));
    };
    for (const cls of readdirSync(images))
      for (const f of readdirSync(join(images, cls))) writeFileSync(join(images, cls, f), other(cls));
    const r = await runCli(['export', run, '--out', join(tmp, 'export-changed'), '--format', 'fxpq'], { env });
    expect(r.stderr).not.toMatch(/internal error/i);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot be used for the export's verification: changed since the dataset was indexed/);
  }, 120_000);
});
