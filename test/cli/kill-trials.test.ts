/**
 * Crash safety: 21 seeded trials of `kill -9` at a random moment of `fxpq dataset import`,
 * `fxpq quantize` and `fxpq export` (7 each, on mnist-8 and the committed MNIST images). After
 * each kill nothing on disk is torn (every file that exists parses and is complete; an export
 * folder exists whole or not at all), and the same command then finishes with the same result
 * as an uninterrupted run. One tensor cache is shared by every trial, so kills also land in the
 * middle of cache writes.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../native-workers/engine/data/split.js';
import type { RunReport } from '../../services/runs.js';
import { runCli } from '../helpers/cli.js';
import { cliEntry, modelPath, repoRoot } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-kill-'));
const env = { FXPQ_CACHE_DIR: join(tmp, 'cache') };
const TRIALS_PER_COMMAND = 7;

type Kind = 'import' | 'quantize' | 'export';
const commands: Record<Kind, (out: string) => string[]> = {
  import: (out) => [
    'dataset',
    'import',
    join(repoRoot, 'test/fixtures/mnist'),
    '--out',
    out,
    '--calib',
    '60',
    '--seed',
    '3',
  ],
  quantize: (out) => [
    'quantize',
    '--model',
    modelPath('mnist-8')!,
    '--data',
    join(tmp, 'ref-import'),
    '--budget',
    '2',
    '--slice',
    '20',
    '--seed',
    '3',
    '--out',
    out,
    '--json',
  ],
  export: (out) => ['export', join(tmp, 'ref-quantize'), '--out', out],
};

/** Every visible file under `dir`, relative, sorted. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(relative(dir, join(d, e.name)));
    }
  };
  walk(dir);
  return out.sort();
}

const runEssence = (r: RunReport) => ({
  structures: r.structures.map((s) => [s.tensor, s.bits, s.frac]),
  quant: r.quant,
  memory: r.memory,
  evaluations: r.search.evaluations,
});

/** What must be equal to the uninterrupted run. */
function result(kind: Kind, out: string): unknown {
  if (kind === 'import') return JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8'));
  if (kind === 'quantize') return runEssence(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as RunReport);
  return Object.fromEntries(
    filesUnder(out)
      .filter((f) => !f.startsWith('report.'))
      .map((f) => [f, readFileSync(join(out, f)).toString('base64')]),
  );
}

/** Nothing torn: what exists after a kill parses and is complete. */
function checkNothingTorn(kind: Kind, out: string, referenceFiles: string[]): void {
  const files = filesUnder(out);
  if (kind === 'import') {
    expect(files.filter((f) => f !== 'dataset.json')).toEqual([]);
    if (files.length) JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8'));
  } else if (kind === 'quantize') {
    for (const f of ['checkpoint.json', 'checkpoint.prev.json', 'report.json', 'config.json'])
      if (files.includes(f)) JSON.parse(readFileSync(join(out, f), 'utf8'));
  } else {
    // A new export folder appears whole, in one rename, or not at all.
    expect([[], referenceFiles]).toContainEqual(files);
    for (const f of files) expect(statSync(join(out, f)).size).toBeGreaterThan(0);
    if (files.length) JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  }
}

function killAfter(args: string[], ms: number): Promise<boolean> {
  const child = spawn(process.execPath, [cliEntry, ...args], { env: { ...process.env, ...env }, stdio: 'ignore' });
  let finished = false;
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      finished = code === 0;
      resolve(!finished);
    }),
  );
}

describe('kill -9 at random points', () => {
  const reference = new Map<Kind, { seconds: number; result: unknown; files: string[] }>();

  it('runs each command once without interruption', async () => {
    for (const kind of ['import', 'quantize', 'export'] as const) {
      const out = join(tmp, `ref-${kind}`);
      const started = Date.now();
      const r = await runCli(commands[kind](out), { env });
      expect(r.code, r.stderr).toBe(0);
      reference.set(kind, {
        seconds: (Date.now() - started) / 1000,
        result: result(kind, out),
        files: filesUnder(out),
      });
    }
  }, 300_000);

  it(`survives ${3 * TRIALS_PER_COMMAND} seeded kills and resumes each to the same result`, async () => {
    const rand = seededRandom(20261127);
    let killed = 0;
    for (const kind of ['import', 'quantize', 'export'] as const) {
      const ref = reference.get(kind)!;
      for (let trial = 0; trial < TRIALS_PER_COMMAND; trial++) {
        const out = join(tmp, `${kind}-${trial}`);
        // From the process start (node, tsx, the pool) to near the end of the work.
        const ms = Math.round((0.1 + 0.85 * rand()) * ref.seconds * 1000);
        if (await killAfter(commands[kind](out), ms)) killed++;
        checkNothingTorn(kind, out, ref.files);
        const again = await runCli(commands[kind](out), { env });
        expect({ kind, trial, ms, code: again.code, stderr: again.stderr }).toMatchObject({ code: 0 });
        expect({ kind, trial, ms, result: result(kind, out) }).toEqual({ kind, trial, ms, result: ref.result });
      }
    }
    console.log(`kill trials: ${3 * TRIALS_PER_COMMAND} tried, ${killed} killed before they finished, 0 torn`);
    expect(killed).toBeGreaterThanOrEqual(TRIALS_PER_COMMAND + 3);
  }, 900_000);
});
