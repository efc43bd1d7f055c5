/**
 * The export folder (issue 30, items 5/14 carried to exports): exporting into an existing folder
 * used to move files one by one into any folder, overwriting a user's report.json, writing through
 * a link at out/c and leaving old files beside a new report; two exports to one folder deleted
 * each other's staging folders (and those of an export named `a.export-x` when exporting `a`).
 * Now a folder that is not FxPQ's is refused untouched, an export replaces the old one as a whole,
 * a second export to the same folder is refused naming its holder, and only staging folders of
 * dead exports of this very output are cleared.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportRun } from '../../services/export.js';
import { quantize } from '../../services/quantize.js';
import { closePools } from '../../services/pool.js';
import { modelPath, repoRoot, smallUniform } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-export-folder-'));
const cacheDir = join(tmp, 'cache');
const run = join(tmp, 'run');
let sleeper: ChildProcess;
/** A pid that is certainly dead. */
let deadPid: number;

beforeAll(async () => {
  await quantize({
    modelPath: modelPath('mnist-8')!,
    dataPath: join(repoRoot, 'test/fixtures/mnist'),
    out: run,
    ...smallUniform(cacheDir),
  });
  sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 120000)'], { stdio: 'ignore' });
  const dead = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  deadPid = dead.pid!;
  await new Promise((r) => dead.on('close', r));
}, 180_000);
afterAll(async () => {
  sleeper?.kill('SIGKILL');
  await closePools();
  rmSync(tmp, { recursive: true, force: true });
});

/** The folder's names, the marker aside (its own assertions say where it must be). */
const listing = (dir: string): string[] =>
  readdirSync(dir)
    .filter((n) => n !== '.fxpq-export')
    .sort();
const fxpqOnly = (out: string): Promise<unknown> => exportRun({ run, out, formats: ['fxpq'], cacheDir });

describe('exporting into an existing folder', () => {
  it('refuses a non-empty folder that is not an FxPQ export and changes nothing in it', async () => {
    const out = join(tmp, 'mine');
    mkdirSync(out);
    writeFileSync(join(out, 'report.json'), 'my own report');
    writeFileSync(join(out, 'notes.txt'), 'mine');
    await expect(fxpqOnly(out)).rejects.toThrow(
      /mine is not empty and is not an FxPQ export folder \(it holds notes\.txt, which FxPQ does not write\); nothing in it was changed/,
    );
    expect(readFileSync(join(out, 'report.json'), 'utf8')).toBe('my own report');
    expect(readdirSync(out).sort()).toEqual(['notes.txt', 'report.json']);
    expect(readdirSync(tmp).filter((n) => n.startsWith('.mine'))).toEqual([]);
    // FxPQ's names alone do not make a folder FxPQ's: a user's own report.json is not replaced.
    rmSync(join(out, 'notes.txt'));
    await expect(fxpqOnly(out)).rejects.toThrow(/none of its files is recognisably an FxPQ export/);
    expect(readFileSync(join(out, 'report.json'), 'utf8')).toBe('my own report');
    expect(readdirSync(out)).toEqual(['report.json']);
  }, 120_000);

  it('never writes through a link: an old export whose c/ is a link to elsewhere is refused', async () => {
    const out = join(tmp, 'linked');
    const elsewhere = join(tmp, 'elsewhere');
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'model.c'), 'the user file');
    mkdirSync(out);
    writeFileSync(join(out, 'report.json'), '{}');
    symlinkSync(elsewhere, join(out, 'c'));
    await expect(exportRun({ run, out, formats: ['fxpq'], cacheDir })).rejects.toThrow(/not an FxPQ export folder/);
    expect(readdirSync(elsewhere)).toEqual(['model.c']);
    expect(readFileSync(join(elsewhere, 'model.c'), 'utf8')).toBe('the user file');
    // And a link as the output folder itself.
    const linkOut = join(tmp, 'link-out');
    symlinkSync(elsewhere, linkOut);
    await expect(fxpqOnly(linkOut)).rejects.toThrow(/it is a link/);
    expect(readdirSync(elsewhere)).toEqual(['model.c']);
  }, 120_000);

  it('replaces an existing export as a whole: no file of the old one is left beside the new report', async () => {
    const out = join(tmp, 'whole');
    await exportRun({ run, out, formats: ['qdq', 'fxpq'], cacheDir });
    expect(listing(out)).toEqual(['model.fxpq', 'model.qdq.onnx', 'report.html', 'report.json']);
    await fxpqOnly(out);
    expect(listing(out)).toEqual(['model.fxpq', 'report.html', 'report.json']);
    expect(existsSync(join(out, '.fxpq-export'))).toBe(true);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.export.files.map((f: { name: string }) => f.name)).toEqual(['model.fxpq']);
    expect(readdirSync(tmp).filter((n) => n.startsWith('.whole'))).toEqual([]);
  }, 120_000);

  it('accepts an export made before the marker (only FxPQ names) and marks it', async () => {
    const out = join(tmp, 'legacy');
    mkdirSync(join(out, 'c', 'eval'), { recursive: true });
    for (const f of ['model.qdq.onnx', 'report.html', 'c/model.c', 'c/eval/labels.txt'])
      writeFileSync(join(out, f), 'old');
    writeFileSync(join(out, 'report.json'), JSON.stringify({ export: { out, files: [] } }));
    await fxpqOnly(out);
    expect(readdirSync(out).sort()).toEqual(['.fxpq-export', 'model.fxpq', 'report.html', 'report.json']);
  }, 120_000);
});

describe('two exports to one folder', () => {
  it('a second export is refused with a sentence naming the holder', async () => {
    const out = join(tmp, 'locked');
    writeFileSync(
      join(tmp, '.locked.fxpq-export.lock'),
      JSON.stringify({
        pid: sleeper.pid,
        host: hostname(),
        started: '2026-12-08T04:00:00.000Z',
        command: 'fxpq export',
      }),
    );
    await expect(fxpqOnly(out)).rejects.toThrow(
      new RegExp(
        `locked is being exported by fxpq export, pid ${sleeper.pid}, since 2026-12-08T04:00:00\\.000Z; wait for it to finish, or delete \\S+\\.locked\\.fxpq-export\\.lock if that process is gone\\.`,
      ),
    );
    expect(existsSync(out)).toBe(false);
    // A lock whose pid is dead is taken over, and released after.
    writeFileSync(
      join(tmp, '.locked.fxpq-export.lock'),
      JSON.stringify({ pid: deadPid, host: hostname(), started: '2026-12-08T04:00:00.000Z', command: 'fxpq export' }),
    );
    await fxpqOnly(out);
    expect(existsSync(join(out, 'model.fxpq'))).toBe(true);
    expect(existsSync(join(tmp, '.locked.fxpq-export.lock'))).toBe(false);
  }, 120_000);

  it('two at once: one succeeds, the other is refused, and the folder is whole', async () => {
    const out = join(tmp, 'both');
    const results = await Promise.allSettled([fxpqOnly(out), fxpqOnly(out)]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(String(refused.reason)).toMatch(new RegExp(`both is being exported by fxpq export, pid ${process.pid}`));
    expect(listing(out)).toEqual(['model.fxpq', 'report.html', 'report.json']);
  }, 120_000);

  it("clears only this output's staging folders whose export is dead", async () => {
    const parent = join(tmp, 'parent');
    mkdirSync(parent);
    const live = `.a.export-${sleeper.pid}-0123456789ab`;
    const dead = `.a.export-${deadPid}-0123456789ab`;
    const other = `.a.export-x.export-${deadPid}-0123456789ab`;
    for (const d of [live, dead, other]) {
      mkdirSync(join(parent, d));
      writeFileSync(join(parent, d, 'model.fxpq'), 'staged');
    }
    await fxpqOnly(join(parent, 'a'));
    expect(readdirSync(parent).sort()).toEqual([live, other, 'a'].sort());
    expect(readFileSync(join(parent, live, 'model.fxpq'), 'utf8')).toBe('staged');
  }, 120_000);

  // New with the replacement (no counterpart before): a kill between its two renames.
  it('puts back an old export a killed replacement left aside', async () => {
    const parent = join(tmp, 'aside');
    mkdirSync(parent);
    const aside = join(parent, `.a.export-old-${deadPid}-0123456789ab`);
    mkdirSync(aside);
    writeFileSync(join(aside, 'model.qdq.onnx'), 'old');
    writeFileSync(join(aside, 'report.json'), '{}');
    await fxpqOnly(join(parent, 'a'));
    expect(readdirSync(parent)).toEqual(['a']);
    expect(listing(join(parent, 'a'))).toEqual(['model.fxpq', 'report.html', 'report.json']);
  }, 120_000);
});
