/**
 * Hostile projects (issue 30, items 2, 3, 12, 13, 14): a project from git or a zip whose
 * sub-folders are links out of it, datasets kept and imported in place, run folders the CLI
 * wrote, kills in the middle of a removal, system folders, paths from project.json handed to
 * the OS, read-only project folders. What each test holds to: the user's files outside the
 * project are all still there with their contents; images only referenced are still there;
 * after a kill project.json lists nothing that is gone.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createServices, dispatchApiCall } from '../../services/api.js';
import { describeFsError } from '../../services/files.js';
import { JobManager } from '../../services/jobs.js';
import { closePools } from '../../services/pool.js';
import { ProjectService } from '../../services/projects.js';
import { modelPath, repoRoot } from '../helpers/fixtures.js';

/** Injected failures: the removal whose number is `failAt` throws, as a kill right before it would stop the process. */
const hooks = vi.hoisted(() => ({ failAt: -1, calls: 0 }));
vi.mock('../../services/owned-paths.js', async (importOriginal) => {
  const orig = await importOriginal<typeof import('../../services/owned-paths.js')>();
  return {
    ...orig,
    removeOwned: async (...a: Parameters<typeof orig.removeOwned>) => {
      if (hooks.calls++ === hooks.failAt) throw new Error('injected crash');
      return orig.removeOwned(...a);
    },
  };
});

// The Electron main process against a stand-in `electron` module (as test/app/electron-main.test.ts does).
const electron = vi.hoisted(() => ({
  ipc: new Map<string, (...args: unknown[]) => unknown>(),
  opened: [] as string[],
  userData: '',
}));
vi.mock('electron', () => {
  class BrowserWindow {
    webContents = { on: () => undefined, setWindowOpenHandler: () => undefined };
    loadURL = async (): Promise<void> => undefined;
    loadFile = async (): Promise<void> => undefined;
    setTitle(): void {}
    static getAllWindows = (): unknown[] => [];
    static getFocusedWindow = (): undefined => undefined;
  }
  return {
    app: {
      isPackaged: true,
      getPath: () => electron.userData,
      whenReady: () => Promise.resolve(),
      on: () => undefined,
      quit: () => undefined,
    },
    BrowserWindow,
    dialog: { showOpenDialog: async () => ({ canceled: true, filePaths: [] }) },
    ipcMain: { handle: (channel: string, fn: (...args: unknown[]) => unknown) => void electron.ipc.set(channel, fn) },
    Menu: { setApplicationMenu: () => undefined, buildFromTemplate: () => ({}) },
    session: { defaultSession: { setPermissionRequestHandler: () => undefined } },
    shell: {
      openExternal: async () => undefined,
      openPath: async (p: string) => {
        electron.opened.push(p);
        return '';
      },
    },
  };
});

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-hostile-projects-'));
const configDir = join(tmp, 'config');
process.env['FXPQ_CACHE_DIR'] = join(tmp, 'cache');
const etcProbe = `/etc/fxpq-hostile-test-${process.pid}`;
afterAll(async () => {
  // Only what this test could have made there before the fix, by its own unique name.
  rmSync(etcProbe, { recursive: true, force: true });
  rmSync(`/etc/fxpq-${process.pid}`, { recursive: true, force: true });
  await closePools();
});

/** A seeded generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every entry under `root` (links not followed) with its contents or link target; `skip` names left out. */
function snapshot(root: string, skip: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const abs = join(dir, name);
      const rel = relative(root, abs);
      if (skip.includes(rel)) continue;
      const info = lstatSync(abs);
      if (info.isSymbolicLink()) out[rel] = `-> ${readlinkSync(abs)}`;
      else if (info.isDirectory()) {
        out[`${rel}/`] = '';
        walk(abs);
      } else out[rel] = readFileSync(abs, 'utf8');
    }
  };
  walk(root);
  return out;
}

function countFiles(dir: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n++;
  return n;
}

type Doc = {
  models: { id: string; file: string }[];
  datasets: { id: string; dir: string; copied: boolean }[];
  runs: { id: string; dir: string; state: string }[];
  exports: { id: string; dir: string }[];
};
const readDoc = (dir: string): Doc => JSON.parse(readFileSync(join(dir, 'project.json'), 'utf8')) as Doc;
const writeDoc = (dir: string, doc: Doc): void => writeFileSync(join(dir, 'project.json'), JSON.stringify(doc));

function model(id: string): Doc['models'][number] {
  return {
    id,
    name: `${id}.onnx`,
    file: join('models', `${id}.onnx`),
    sourcePath: '/x',
    addedAt: '',
    params: 1,
    macs: 1,
  } as never;
}
function dataset(id: string, copied: boolean): Doc['datasets'][number] {
  return {
    id,
    name: id,
    dir: join('datasets', id),
    sourcePath: '/x',
    layout: 'imagefolder',
    copied,
    images: 1,
    classes: 1,
    skipped: 0,
    duplicates: 0,
    addedAt: '',
  } as never;
}
function run(id: string): Doc['runs'][number] {
  return {
    id,
    name: id,
    dir: join('runs', id),
    request: { model: 'm', dataset: 'd', uniform: 8 },
    state: 'done',
    createdAt: '',
  } as never;
}
function exp(id: string): Doc['exports'][number] {
  return { id, run: 'r', dir: join('exports', id), formats: ['qdq'], state: 'done', createdAt: '' } as never;
}

/** Files of what a hand-made project lists, written as the app would have written them. */
function writeItems(dir: string, doc: Doc, runFiles = 6): void {
  for (const m of doc.models) {
    mkdirSync(join(dir, 'models'), { recursive: true });
    writeFileSync(join(dir, m.file), 'onnx');
    writeFileSync(join(dir, 'models', `${m.id}.json`), '{}');
  }
  for (const d of doc.datasets) {
    // Imported in place, the images are elsewhere; with copy, they are in images/.
    mkdirSync(join(dir, d.dir, d.copied ? join('images', 'a') : ''), { recursive: true });
    if (d.copied) writeFileSync(join(dir, d.dir, 'images', 'a', '1.png'), 'copy');
    writeFileSync(
      join(dir, d.dir, 'dataset.json'),
      JSON.stringify({ format: 'fxpq-dataset', images: [{ path: 'a/1.png' }] }),
    );
  }
  for (const r of doc.runs) {
    for (let i = 0; i < runFiles; i++) {
      mkdirSync(join(dir, r.dir, `part-${i % 20}`), { recursive: true });
      writeFileSync(join(dir, r.dir, `part-${i % 20}`, `${i}.json`), `${i}`);
    }
  }
  for (const x of doc.exports) {
    mkdirSync(join(dir, x.dir), { recursive: true });
    writeFileSync(join(dir, x.dir, 'model.fxpq'), 'fxpq');
  }
}

/** Every item project.json lists is there whole (`runFiles` files per run). */
function listsNothingMissing(dir: string, runFiles: number): void {
  if (!existsSync(join(dir, 'project.json'))) return;
  const doc = readDoc(dir);
  for (const m of doc.models) expect(existsSync(join(dir, m.file)), `model ${m.id} listed`).toBe(true);
  for (const d of doc.datasets)
    expect(existsSync(join(dir, d.dir, 'dataset.json')), `dataset ${d.id} listed`).toBe(true);
  for (const r of doc.runs) expect(countFiles(join(dir, r.dir)), `run ${r.id} listed`).toBe(runFiles);
  for (const x of doc.exports) expect(existsSync(join(dir, x.dir, 'model.fxpq')), `export ${x.id} listed`).toBe(true);
}

describe('item 2: deleting never follows a link out of the project', () => {
  const IDS = ['documents', '.ssh', 'mnist-8', 'digits', 'uniform-8'];
  const SUBS = ['models', 'datasets', 'runs', 'exports'] as const;
  type Mode = 'plain' | 'sub-link-relative' | 'sub-link-absolute' | 'item-link' | 'hostile-inside';

  it('over a seeded corpus of projects whose sub-folders or items are links outside, every remove operation leaves the outside alone', async () => {
    const tried: Record<string, number> = {};
    let operations = 0;
    for (let seed = 0; seed < 40; seed++) {
      const rand = rng(1000 + seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
      const home = join(tmp, `home-${seed}`);
      // The user's files, named as a project's items could be.
      for (const id of IDS) {
        mkdirSync(join(home, id, 'images', 'a'), { recursive: true });
        writeFileSync(join(home, id, 'keep.txt'), `mine ${id}`);
        writeFileSync(join(home, id, 'images', 'a', '1.png'), `my image ${id}`);
        writeFileSync(
          join(home, id, 'dataset.json'),
          JSON.stringify({ format: 'fxpq-dataset', images: [{ path: 'a/1.png' }] }),
        );
        writeFileSync(join(home, `${id}.onnx`), `my model ${id}`);
        writeFileSync(join(home, `${id}.json`), `my sidecar ${id}`);
      }
      const dir = join(home, 'work', 'proj');
      const projects = new ProjectService(new JobManager(), configDir);
      await projects.create(dir, `hostile ${seed}`);
      const ids = IDS.filter(() => rand() < 0.6);
      if (ids.length === 0) ids.push(pick(IDS));
      const doc = readDoc(dir);
      doc.models = ids.map(model);
      doc.datasets = ids.map((id) => dataset(id, rand() < 0.5));
      doc.runs = ids.map(run);
      doc.exports = ids.map(exp);
      writeDoc(dir, doc);
      const modes: Record<string, Mode> = {};
      for (const sub of SUBS) {
        const mode = pick(['plain', 'sub-link-relative', 'sub-link-absolute', 'item-link', 'hostile-inside'] as const);
        modes[sub] = mode;
        tried[`${sub}:${mode}`] = (tried[`${sub}:${mode}`] ?? 0) + 1;
        rmSync(join(dir, sub), { recursive: true, force: true });
        if (mode === 'sub-link-relative')
          symlinkSync('../..', join(dir, sub)); // proj/runs -> home
        else if (mode === 'sub-link-absolute') symlinkSync(home, join(dir, sub));
        else {
          mkdirSync(join(dir, sub));
          for (const id of ids) {
            if (mode === 'item-link') {
              if (sub === 'models') {
                symlinkSync(join(home, `${id}.onnx`), join(dir, sub, `${id}.onnx`));
                symlinkSync(join('..', '..', '..', `${id}.json`), join(dir, sub, `${id}.json`));
              } else symlinkSync(join(home, id), join(dir, sub, id));
            } else if (mode === 'hostile-inside' && sub === 'datasets') {
              // A real folder whose copied images/ is a link out, and whose index lists paths up and out.
              mkdirSync(join(dir, sub, id));
              symlinkSync(join(home, id, 'images'), join(dir, sub, id, 'images'));
              writeFileSync(
                join(dir, sub, id, 'dataset.json'),
                JSON.stringify({
                  format: 'fxpq-dataset',
                  images: [{ path: 'a/1.png' }, { path: `../../../../${id}/keep.txt` }],
                }),
              );
            } else if (mode === 'hostile-inside' && sub !== 'models') {
              // A real folder holding links out: deleted, the links unlinked, never followed.
              mkdirSync(join(dir, sub, id));
              writeFileSync(join(dir, sub, id, 'config.json'), '{}');
              symlinkSync(join(home, id), join(dir, sub, id, 'link'));
              symlinkSync(home, join(dir, sub, id, 'home'));
            } else {
              const one = { ...doc, models: [], datasets: [], runs: [], exports: [] } as Doc;
              if (sub === 'models') one.models = [model(id)];
              if (sub === 'datasets') one.datasets = doc.datasets.filter((d) => d.id === id);
              if (sub === 'runs') one.runs = [run(id)];
              if (sub === 'exports') one.exports = [exp(id)];
              writeItems(dir, one);
            }
          }
        }
      }
      const before = snapshot(home, ['work']);
      // Every remove operation, in a seeded order, then the project itself.
      const ops: (() => Promise<unknown>)[] = [];
      for (const id of ids) {
        if (rand() < 0.5) ops.push(() => projects.removeRun(dir, id));
        if (rand() < 0.5) ops.push(() => projects.removeDataset(dir, id));
        if (rand() < 0.5) ops.push(() => projects.removeModel(dir, id));
      }
      ops.sort(() => rand() - 0.5);
      ops.push(() => projects.remove(dir, true));
      for (const op of ops) {
        operations++;
        const failure = await op().then(
          () => undefined,
          (e: unknown) => e,
        );
        // A refusal is a sentence, never an internal error; nothing else may have happened.
        if (failure) expect((failure as { code?: string }).code, String(failure)).toBeDefined();
      }
      expect(snapshot(home, ['work']), `seed ${seed}: ${JSON.stringify(modes)}`).toEqual(before);
      // And the project's own plain items are gone.
      if (existsSync(join(dir, 'project.json'))) throw new Error(`seed ${seed}: project.json left`);
      for (const sub of SUBS)
        if (modes[sub] === 'plain')
          expect(existsSync(join(dir, sub)) ? snapshot(join(dir, sub)) : {}, `seed ${seed}: ${sub} left`).toEqual({});
    }
    // Seeded, so the corpus is the same on every machine: 40 projects, 213 remove operations.
    expect(operations).toBe(213);
    // Every kind of link was tried on every sub-folder.
    for (const sub of SUBS)
      for (const mode of ['plain', 'sub-link-relative', 'sub-link-absolute', 'item-link', 'hostile-inside'])
        expect(tried[`${sub}:${mode}`], `${sub}:${mode}`).toBeGreaterThan(0);
  }, 120_000);
});

describe('item 2: no job writes through a link out of the project either', () => {
  it('resuming a run in a linked runs/ and exporting into a linked exports/ are refused before any job starts', async () => {
    const home = join(tmp, 'home-jobs');
    mkdirSync(join(home, 'documents'), { recursive: true });
    writeFileSync(join(home, 'documents', 'keep.txt'), 'mine');
    const dir = join(home, 'work', 'proj');
    const projects = new ProjectService(new JobManager(), configDir);
    await projects.create(dir, 'jobs');
    rmSync(join(dir, 'runs'), { recursive: true });
    rmSync(join(dir, 'exports'), { recursive: true });
    symlinkSync('../..', join(dir, 'runs'));
    symlinkSync(home, join(dir, 'exports'));
    const doc = readDoc(dir);
    doc.models = [model('m')];
    doc.datasets = [dataset('d', false)];
    doc.runs = [{ ...run('documents'), state: 'running', request: { model: 'm', dataset: 'd', uniform: 8 } } as never];
    writeDoc(dir, doc);
    const before = snapshot(home, ['work']);
    await expect(projects.resumeRun(dir, 'documents')).rejects.toThrow(/leads outside/);
    writeFileSync(join(home, 'documents', 'report.json'), '{}'); // a "finished" run, as far as a link can tell
    const done = readDoc(dir);
    done.runs[0]!.state = 'done';
    writeDoc(dir, done);
    await expect(projects.startExport(dir, 'documents', ['qdq'])).rejects.toThrow(/leads outside/);
    rmSync(join(home, 'documents', 'report.json'));
    expect(projects.jobs.list()).toEqual([]);
    expect(snapshot(home, ['work'])).toEqual(before);
  });
});

describe('item 3: removing deletes only what the app wrote', () => {
  it('a dataset kept in <project>/datasets/digits and imported in place keeps its images', async () => {
    const projects = new ProjectService(new JobManager(), configDir);
    const dir = join(tmp, 'in-place');
    await projects.create(dir, 'in place');
    const images = join(dir, 'datasets', 'digits');
    cpSync(join(repoRoot, 'test/fixtures/mnist'), images, { recursive: true });
    const before = snapshot(images);
    const job = await projects.importDataset(dir, { source: images });
    await projects.jobs.get(job.id)!.result;
    const listed = (await projects.open(dir)).datasets;
    expect(listed).toEqual([expect.objectContaining({ images: 100, copied: false })]);
    expect(listed[0]!.id).not.toBe('digits');
    await projects.removeDataset(dir, listed[0]!.id);
    expect(snapshot(images)).toEqual(before);
    expect(existsSync(join(dir, listed[0]!.dir))).toBe(false);

    // Imported with copy: the copies go, the source stays.
    const outside = join(tmp, 'outside-images');
    cpSync(join(repoRoot, 'test/fixtures/mnist'), outside, { recursive: true });
    const outsideBefore = snapshot(outside);
    const copyJob = await projects.importDataset(dir, { source: outside, name: 'copied', copy: true });
    await projects.jobs.get(copyJob.id)!.result;
    expect(countFiles(join(dir, 'datasets', 'copied', 'images'))).toBe(100);
    await projects.removeDataset(dir, 'copied');
    expect(existsSync(join(dir, 'datasets', 'copied'))).toBe(false);
    expect(snapshot(outside)).toEqual(outsideBefore);
    expect(snapshot(images)).toEqual(before);
  }, 120_000);

  it('two imports started at once under one name get two ids (the disk check awaits, the reservation does not)', async () => {
    const projects = new ProjectService(new JobManager(), configDir);
    const dir = join(tmp, 'concurrent');
    await projects.create(dir, 'concurrent');
    const source = join(repoRoot, 'test/fixtures/mnist');
    const jobs = await Promise.all([0, 1, 2].map(() => projects.importDataset(dir, { source, name: 'same' })));
    expect(new Set(jobs.map((j) => j.target?.dataset)).size).toBe(3);
    for (const j of jobs) await projects.jobs.get(j.id)!.result;
    expect((await projects.open(dir)).datasets.map((d) => d.id).sort()).toEqual(['same', 'same-2', 'same-3']);
  }, 120_000);

  it('a dataset an older version listed on top of the user images keeps them; only its index and copies go', async () => {
    const projects = new ProjectService(new JobManager(), configDir);
    const dir = join(tmp, 'legacy');
    await projects.create(dir, 'legacy');
    const folder = join(dir, 'datasets', 'digits');
    cpSync(join(repoRoot, 'test/fixtures/mnist'), folder, { recursive: true });
    const before = snapshot(folder);
    writeFileSync(
      join(folder, 'dataset.json'),
      JSON.stringify({ format: 'fxpq-dataset', images: [{ path: '0/00003.png' }] }),
    );
    // Copied, with the user's own files beside the copies in images/.
    mkdirSync(join(dir, 'datasets', 'cp', 'images', 'a'), { recursive: true });
    writeFileSync(join(dir, 'datasets', 'cp', 'images', 'a', 'copy.png'), 'copy');
    writeFileSync(join(dir, 'datasets', 'cp', 'images', 'a', 'mine.png'), 'mine');
    writeFileSync(join(dir, 'datasets', 'cp', 'notes.txt'), 'mine');
    writeFileSync(
      join(dir, 'datasets', 'cp', 'dataset.json'),
      JSON.stringify({ format: 'fxpq-dataset', images: [{ path: 'a/copy.png' }] }),
    );
    const doc = readDoc(dir);
    doc.datasets = [dataset('digits', false), dataset('cp', true)];
    writeDoc(dir, doc);
    await projects.removeDataset(dir, 'digits');
    await projects.removeDataset(dir, 'cp');
    expect(snapshot(folder)).toEqual(before);
    expect(snapshot(join(dir, 'datasets', 'cp'))).toEqual({
      'images/': '',
      'images/a/': '',
      'images/a/mine.png': 'mine',
      'notes.txt': 'mine',
    });
  });

  it('a run folder the CLI wrote, a model file and an export folder of the user are never taken as a new item', async () => {
    const projects = new ProjectService(new JobManager(), configDir);
    const dir = join(tmp, 'cli-runs');
    await projects.create(dir, 'cli');
    mkdirSync(join(dir, 'runs', 'uniform-8'), { recursive: true });
    writeFileSync(join(dir, 'runs', 'uniform-8', 'config.json'), 'the CLI run');
    writeFileSync(join(dir, 'models', 'mine.onnx'), 'my model');
    mkdirSync(join(dir, 'exports', 'r-export'), { recursive: true });
    writeFileSync(join(dir, 'exports', 'r-export', 'keep.txt'), 'my export');
    const before = snapshot(dir, ['project.json']);
    const source = join(tmp, 'mine.onnx');
    cpSync(modelPath('mnist-8')!, source);
    const added = await projects.addModel(dir, source);
    expect(added.models.map((m) => m.id)).toEqual(['mine-2']);
    const doc = readDoc(dir);
    doc.datasets = [dataset('d', false)];
    writeDoc(dir, doc);
    mkdirSync(join(dir, 'datasets', 'd'), { recursive: true });
    writeFileSync(join(dir, 'datasets', 'd', 'dataset.json'), '{}');
    const started = await projects.startRun(dir, { model: 'mine-2', dataset: 'd', uniform: 8 });
    expect(started.target?.run).toBe('uniform-8-2');
    await projects.jobs.get(started.id)!.result.catch(() => undefined);
    // A finished run to export: the export gets a new folder, not the user's.
    const withRun = readDoc(dir);
    withRun.runs.push(run('r'));
    writeDoc(dir, withRun);
    mkdirSync(join(dir, 'runs', 'r'), { recursive: true });
    writeFileSync(join(dir, 'runs', 'r', 'report.json'), '{}');
    const exported = await projects.startExport(dir, 'r', ['qdq']);
    expect(exported.target?.export).toBe('r-export-2');
    await projects.jobs.get(exported.id)!.result.catch(() => undefined);
    await projects.removeRun(dir, 'uniform-8-2');
    await projects.removeRun(dir, 'r');
    await projects.removeModel(dir, 'mine-2');
    await projects.remove(dir, true);
    // Every file of the user's is still there with its contents (the app's own empty folders may go).
    const after = snapshot(dir);
    for (const [k, v] of Object.entries(before)) if (!k.endsWith('/')) expect(after[k], k).toBe(v);
  }, 120_000);
});

describe('item 14: a kill at any point of a removal leaves project.json listing only what exists', () => {
  const child = join(tmp, 'remove-child.mts');
  writeFileSync(
    child,
    [
      `import { JobManager } from ${JSON.stringify(join(repoRoot, 'services/jobs.ts'))};`,
      `import { ProjectService } from ${JSON.stringify(join(repoRoot, 'services/projects.ts'))};`,
      'const [dir, op, config] = process.argv.slice(2) as [string, string, string];',
      'const projects = new ProjectService(new JobManager(), config);',
      "process.stdout.write('ready\\n');",
      "if (op === 'run') await projects.removeRun(dir, 'big');",
      'else await projects.remove(dir, true);',
      'process.exit(0);',
    ].join('\n'),
  );
  const BIG = 4000;

  async function killTrial(name: string, op: 'run' | 'project'): Promise<void> {
    const projects = new ProjectService(new JobManager(), configDir);
    const dir = join(tmp, name);
    await projects.create(dir, name);
    const doc = readDoc(dir);
    doc.models = [model('m')];
    doc.datasets = [dataset('d', true)];
    doc.runs = [run('big')];
    doc.exports = [exp('x')];
    writeDoc(dir, doc);
    writeItems(dir, doc, BIG);
    await projects.open(dir);
    const proc = spawn(process.execPath, ['--import', 'tsx', child, dir, op, configDir], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const closed = new Promise((r) => proc.on('close', r));
    // Kill it as soon as the run's files start going.
    const end = Date.now() + 60_000;
    while (countFiles(join(dir, 'runs', 'big')) === BIG && proc.exitCode === null && Date.now() < end)
      await new Promise((r) => setTimeout(r, 1));
    proc.kill('SIGKILL');
    await closed;
    expect(countFiles(join(dir, 'runs', 'big'))).toBeLessThan(BIG);
    listsNothingMissing(dir, BIG);
    // Still on the recent list while its project.json is there; removing again finishes the job.
    if (existsSync(join(dir, 'project.json'))) expect((await projects.recent()).some((r) => r.path === dir)).toBe(true);
    if (op === 'run') {
      // The next open finishes the deletion the kill interrupted.
      await projects.open(dir);
      expect(existsSync(join(dir, 'runs', 'big'))).toBe(false);
      expect(readDoc(dir).models.map((m) => m.id)).toEqual(['m']);
    }
    if (op === 'project') {
      await projects.remove(dir, true);
      expect(existsSync(dir) ? snapshot(dir) : {}).toEqual({});
      expect((await projects.recent()).some((r) => r.path === dir)).toBe(false);
    }
  }

  it('SIGKILL mid Remove run', async () => {
    for (let i = 0; i < 2; i++) await killTrial(`kill-run-${i}`, 'run');
  }, 120_000);

  it('SIGKILL mid Remove project', async () => {
    for (let i = 0; i < 2; i++) await killTrial(`kill-project-${i}`, 'project');
  }, 120_000);

  it('a failure injected before every single delete of Remove project, Remove run, model and dataset', async () => {
    const projects = new ProjectService(new JobManager(), configDir);
    const make = async (name: string): Promise<string> => {
      const dir = join(tmp, name);
      rmSync(dir, { recursive: true, force: true });
      await projects.create(dir, name);
      const doc = readDoc(dir);
      doc.models = [model('m1'), model('m2')];
      doc.datasets = [dataset('d1', true), dataset('d2', false)];
      doc.runs = [run('r1'), run('r2')];
      doc.exports = [exp('x1')];
      writeDoc(dir, doc);
      writeItems(dir, doc);
      return dir;
    };
    // How many deletes a whole removal makes.
    const probe = await make('inject-probe');
    hooks.calls = 0;
    hooks.failAt = -1;
    await projects.remove(probe, true);
    const steps = hooks.calls;
    expect(steps).toBeGreaterThan(5);
    for (let k = 0; k < steps; k++) {
      const dir = await make(`inject-${k}`);
      hooks.calls = 0;
      hooks.failAt = k;
      await expect(projects.remove(dir, true)).rejects.toThrow(/injected crash/);
      hooks.failAt = -1;
      listsNothingMissing(dir, 6);
      expect(existsSync(join(dir, 'project.json'))).toBe(true); // project.json is the last delete
      expect((await projects.recent()).some((r) => r.path === dir)).toBe(true);
      await projects.remove(dir, true);
      expect(existsSync(dir) ? snapshot(dir) : {}).toEqual({});
      expect((await projects.recent()).some((r) => r.path === dir)).toBe(false);
    }
    const dir = await make('inject-items');
    for (const remove of [
      () => projects.removeRun(dir, 'r1'),
      () => projects.removeModel(dir, 'm1'),
      () => projects.removeDataset(dir, 'd1'),
    ]) {
      hooks.calls = 0;
      hooks.failAt = 0;
      await expect(remove()).rejects.toThrow(/injected crash/);
      hooks.failAt = -1;
      listsNothingMissing(dir, 6);
      // The next open finishes the interrupted deletion from project.json's journal.
      await projects.open(dir);
      expect(readDoc(dir)).not.toHaveProperty('removing');
    }
    expect(existsSync(join(dir, 'runs', 'r1'))).toBe(false);
    expect(existsSync(join(dir, 'models', 'm1.onnx'))).toBe(false);
    expect(existsSync(join(dir, 'datasets', 'd1'))).toBe(false);
    const left = readDoc(dir);
    expect([left.runs, left.models, left.datasets].map((l) => l.map((i) => i.id))).toEqual([['r2'], ['m2'], ['d2']]);
  }, 120_000);
});

describe('item 12: system folders and paths handed to the OS', () => {
  it('createProject through the API refuses system folders, by name and through a link', async () => {
    const { api } = createServices({ host: 'web', configDir });
    const direct = await dispatchApiCall(api, 'createProject', [etcProbe, 'x']);
    expect(direct).toMatchObject({ error: { code: 'io', message: expect.stringMatching(/is a system folder/) } });
    expect(existsSync(etcProbe)).toBe(false);
    symlinkSync('/etc', join(tmp, 'etc-link'));
    const linked = await dispatchApiCall(api, 'createProject', [join(tmp, 'etc-link', `fxpq-${process.pid}`), 'x']);
    expect(linked).toMatchObject({ error: { code: 'io', message: expect.stringMatching(/is a system folder/) } });
    expect(existsSync(etcProbe)).toBe(false);
    expect(existsSync(`/etc/fxpq-${process.pid}`)).toBe(false);
    for (const sys of ['/', '/proc', '/sys/x'])
      expect(await dispatchApiCall(api, 'createProject', [sys, 'x'])).toMatchObject({
        error: { message: expect.stringMatching(/is a system folder/) },
      });
    expect(await dispatchApiCall(api, 'createProject', [join(tmp, 'fine'), 'x'])).toMatchObject({
      result: { name: 'x' },
    });
  });

  it("Electron's Open folder opens only a folder or report.html whose real path is inside a known project", async () => {
    electron.userData = join(tmp, 'electron');
    vi.resetModules();
    await import('../../electron/main/index.js');
    const page = pathToFileURL(join(repoRoot, 'electron/renderer/index.html')).href;
    const call = (method: string, args: unknown[]) =>
      electron.ipc.get('fxpq:api')!({ senderFrame: { url: page }, sender: {} }, method, args) as Promise<{
        result?: unknown;
        error?: { code: string; message: string };
      }>;
    const good = join(tmp, 'open-good');
    const bad = join(tmp, 'open-bad');
    expect((await call('createProject', [good, 'good'])).result).toBeDefined();
    expect((await call('createProject', [bad, 'bad'])).result).toBeDefined();
    mkdirSync(join(good, 'exports', 'x1'), { recursive: true });
    writeFileSync(join(good, 'exports', 'x1', 'report.html'), '<p>report</p>');
    writeFileSync(join(good, 'exports', 'x1', 'run.sh'), 'echo hi');
    // A report opens only for an export its project.json lists.
    const goodDoc = JSON.parse(readFileSync(join(good, 'project.json'), 'utf8')) as { exports?: unknown[] };
    goodDoc.exports = [
      {
        id: 'x1',
        run: 'r1',
        dir: join('exports', 'x1'),
        formats: ['c'],
        state: 'done',
        createdAt: new Date().toISOString(),
      },
    ];
    writeFileSync(join(good, 'project.json'), JSON.stringify(goodDoc));
    rmSync(join(bad, 'exports'), { recursive: true });
    symlinkSync('/etc', join(bad, 'exports'));
    for (const path of [
      '/etc/passwd',
      '/etc',
      join(bad, 'exports'),
      join(bad, 'exports', 'passwd'),
      join(good, 'exports', 'x1', 'run.sh'),
      join(good, '..', 'open-bad', 'exports'),
      'exports/x1',
      join(tmp, 'missing'),
    ]) {
      const r = await call('openPath', [path]);
      expect(r.error?.message, path).toMatch(/was not opened/);
    }
    expect(electron.opened).toEqual([]);
    expect((await call('openPath', [join(good, 'exports', 'x1')])).result).toBe(true);
    expect((await call('openPath', [join(good, 'exports', 'x1', 'report.html')])).result).toBe(true);
    expect(electron.opened).toEqual([join(good, 'exports', 'x1'), join(good, 'exports', 'x1', 'report.html')]);
  });
});

describe('item 13: a read-only project folder is a sentence, not "Internal error: EROFS"', () => {
  it('describeFsError names a read-only file system', () => {
    const e = Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' });
    expect(describeFsError(e, '/p/project.json').message).toMatch(/read-only file system/);
  });

  // A real read-only mount, where user namespaces allow one (root in a private mount namespace).
  const canMount = spawnSync('unshare', ['-rm', 'true']).status === 0;
  it.skipIf(!canMount)(
    'every project edit on a read-only mount answers with a sentence',
    async () => {
      const projects = new ProjectService(new JobManager(), configDir);
      const dir = join(tmp, 'readonly');
      await projects.create(dir, 'ro');
      const doc = readDoc(dir);
      doc.models = [model('m')];
      doc.datasets = [dataset('d', true)];
      doc.runs = [run('r')];
      writeDoc(dir, doc);
      writeItems(dir, doc);
      const script = join(tmp, 'readonly-child.mts');
      writeFileSync(
        script,
        [
          `import { createServices, dispatchApiCall } from ${JSON.stringify(join(repoRoot, 'services/api.ts'))};`,
          'const [dir, config] = process.argv.slice(2) as [string, string];',
          "const { api } = createServices({ host: 'web', configDir: config });",
          'const out = [];',
          "for (const [m, a] of [['renameProject', [dir, 'x']], ['removeRun', [dir, 'r']], ['removeModel', [dir, 'm']],",
          "  ['removeDataset', [dir, 'd']], ['removeProject', [dir, true]], ['createProject', [dir + '/sub', 'y']]] as const)",
          '  out.push([m, await dispatchApiCall(api, m, a)]);',
          'process.stdout.write(JSON.stringify(out));',
          'process.exit(0);',
        ].join('\n'),
      );
      const r = spawnSync(
        'unshare',
        [
          '-rm',
          'sh',
          '-c',
          'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && exec "$3" --import tsx "$4" "$1" "$2"',
          'sh',
          dir,
          configDir,
          process.execPath,
          script,
        ],
        { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 },
      );
      expect(r.status, r.stderr).toBe(0);
      const answers = JSON.parse(r.stdout) as [string, { error?: { message: string } }][];
      for (const [method, answer] of answers) {
        expect(answer.error?.message, method).toBeDefined();
        expect(answer.error!.message, method).not.toMatch(/Internal error/);
        expect(answer.error!.message, method).toMatch(/read-only file system/);
      }
      // Nothing was listed away from what is still there.
      listsNothingMissing(dir, 6);
    },
    120_000,
  );
});

describe('item 13: the Results screen reads a run through its schemas', () => {
  it('a hand-edited report.json or trajectory line is a sentence naming the file; a run still writing reads without them', async () => {
    const projects = new ProjectService(new JobManager(), configDir);
    const dir = join(tmp, 'results-schema');
    await projects.create(dir, 'results');
    const doc = readDoc(dir);
    doc.runs.push(run('edited'));
    writeDoc(dir, doc);
    const runDir = join(dir, 'runs', 'edited');
    mkdirSync(runDir, { recursive: true });
    // Running: no report yet, and a trajectory whose last line is half written.
    writeFileSync(join(runDir, 'trajectory.jsonl'), '{"step": 0, "pha');
    expect((await projects.runResults(dir, 'edited')).report).toBeUndefined();
    writeFileSync(join(runDir, 'report.json'), JSON.stringify({ budget: 1, memory: 'large', structures: 3 }));
    await expect(projects.runResults(dir, 'edited')).rejects.toThrow(/report\.json is not a run report \(field /);
    rmSync(join(runDir, 'report.json'));
    writeFileSync(join(runDir, 'trajectory.jsonl'), '{"step": "zero"}\n');
    await expect(projects.runResults(dir, 'edited')).rejects.toThrow(/trajectory\.jsonl line 1/);
  });
});
