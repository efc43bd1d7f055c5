/**
 * `fxpq quantize --budget` prints the final check on the calibration split with the z it used,
 * and `--final-z` sets that z (the report records it).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../api/contract.js';
import { runCli } from '../helpers/cli.js';
import { modelPath, repoRoot } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-cli-search-'));
const env = { FXPQ_CACHE_DIR: join(tmp, 'cache') };

describe('fxpq quantize --budget', () => {
  it('prints the final check with its z, which --final-z sets', async () => {
    const out = join(tmp, 'run');
    const args = ['--model', modelPath('mnist-8')!, '--data', join(repoRoot, 'test/fixtures/mnist')];
    const r = await runCli(
      ['quantize', ...args, '--budget', '2', '--calib', '60', '--slice', '20', '--final-z', '3', '--out', out],
      { env },
    );
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as RunReport;
    const f = report.search.finalCheck!;
    expect(f).toMatchObject({ z: 3, budget: 2, within: true });
    // The check's bound is at z = 3 and within the budget; the result's drop on D_c is below it.
    expect(f.bound).toBeLessThanOrEqual(2);
    expect(f.drop).toBeLessThanOrEqual(f.bound);
    expect(r.stdout).toContain(
      `Final check    drop ${f.drop.toFixed(2)}, bound ${f.bound.toFixed(2)} at z = 3 on the calibration split (budget 2)`,
    );
    // Another final z is another run: the same --out refuses it rather than mixing the two.
    const again = await runCli(['quantize', ...args, '--budget', '2', '--calib', '60', '--slice', '20', '--out', out], {
      env,
    });
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/other inputs or options/);
  }, 180_000);
});
