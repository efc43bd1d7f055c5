/**
 * Projects round-trip through create / open / rename / add / remove, keep the images they only
 * reference, and survive a killed process: the interrupted run is shown as resumable and
 * resumes from its checkpoint to a finished run.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JobManager } from '../../services/jobs.js';
import { closePools } from '../../services/pool.js';
import { ProjectService } from '../../services/projects.js';
import { modelPath, repoRoot } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-projects-'));
const configDir = join(tmp, 'config');
process.env['FXPQ_CACHE_DIR'] = join(tmp, 'cache');
afterAll(() => closePools());

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, ms = 120_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('projects', () => {
  it('round-trips through create, open, rename, add and remove, and lists recent projects', async () => {
    const projects = new ProjectService(new JobManager(), configDir);
    const dir = join(tmp, 'p1');
    const images = join(tmp, 'images');
    cpSync(join(repoRoot, 'test/fixtures/mnist'), images, { recursive: true });
    const created = await projects.create(dir, 'My project');
    expect(created).toMatchObject({ name: 'My project', models: [], datasets: [], runs: [] });
    for (const sub of ['models', 'datasets', 'runs', 'exports']) expect(existsSync(join(dir, sub))).toBe(true);
    await expect(projects.create(dir, 'again')).rejects.toThrow(/already holds a project/);

    const withModel = await projects.addModel(dir, modelPath('mnist-8')!);
    expect(withModel.models).toEqual([
      expect.objectContaining({ id: 'mnist-8', file: join('models', 'mnist-8.onnx'), params: 5994 }),
    ]);
    expect(existsSync(join(dir, 'models', 'mnist-8.json'))).toBe(true); // its sidecar came along
    await expect(projects.addModel(dir, join(tmp, 'missing.onnx'))).rejects.toThrow(/missing\.onnx does not exist/);

    const job = await projects.importDataset(dir, { source: images, name: 'mnist test' });
    await projects.jobs.get(job.id)!.result;
    const opened = await projects.open(dir);
    expect(opened.datasets).toEqual([
      expect.objectContaining({ id: 'mnist-test', images: 100, classes: 10, copied: false }),
    ]);
    const details = await projects.datasetDetails(dir, 'mnist-test');
    expect(details.perClass.reduce((n, c) => n + c.count, 0)).toBe(100);
    expect(details.images.filter((i) => i.split === 'eval').length).toBe(details.split!.eval);
    const thumb = await projects.datasetImage(dir, 'mnist-test', details.images[0]!.path, 64);
    expect(thumb.dataUrl).toMatch(/^data:image\/png;base64,/);
    const seen = await projects.datasetImage(dir, 'mnist-test', details.images[0]!.path, 112, 'mnist-8');
    expect(seen.width).toBe(112); // 28x28 as the model sees it, enlarged with hard pixels
    await expect(projects.datasetImage(dir, 'mnist-test', '../../etc/passwd', 64)).rejects.toThrow(
      /not an image of dataset/,
    );

    expect((await projects.rename(dir, 'Renamed')).name).toBe('Renamed');
    expect((await projects.recent())[0]).toMatchObject({ path: dir, name: 'Renamed', missing: false });
    expect((await projects.open(dir)).name).toBe('Renamed');
    expect((await projects.removeModel(dir, 'mnist-8')).models).toEqual([]);
    expect(existsSync(join(dir, 'models', 'mnist-8.onnx'))).toBe(false);

    await projects.remove(dir, true);
    expect(existsSync(join(dir, 'project.json'))).toBe(false);
    // Images the project only referenced are untouched.
    expect(readdirSync(join(images, '0')).length).toBeGreaterThan(0);
    expect((await projects.recent()).some((r) => r.path === dir)).toBe(false);
    await expect(projects.open(dir)).rejects.toThrow(/is not an FxPQ project: project.json is missing/);
  }, 120_000);

  it('deletes only what it owns, and refuses a project.json whose paths leave the project', async () => {
    const projects = new ProjectService(new JobManager(), configDir);
    const dir = join(tmp, 'shared-folder');
    // The user's own files were there first, in folders with the project's names.
    mkdirSync(join(dir, 'models'), { recursive: true });
    mkdirSync(join(dir, 'datasets', 'cifar'), { recursive: true });
    writeFileSync(join(dir, 'models', 'mine.onnx'), 'my model');
    writeFileSync(join(dir, 'datasets', 'cifar', 'a.png'), 'my image');
    await projects.create(dir, 'shared');
    await projects.addModel(dir, modelPath('mnist-8')!);
    await projects.remove(dir, true);
    expect(existsSync(join(dir, 'models', 'mnist-8.onnx'))).toBe(false);
    expect(existsSync(join(dir, 'project.json'))).toBe(false);
    expect(readFileSync(join(dir, 'models', 'mine.onnx'), 'utf8')).toBe('my model');
    expect(readFileSync(join(dir, 'datasets', 'cifar', 'a.png'), 'utf8')).toBe('my image');

    const hostile = join(tmp, 'hostile');
    await projects.create(hostile, 'hostile');
    const doc = JSON.parse(readFileSync(join(hostile, 'project.json'), 'utf8'));
    doc.runs.push({ id: 'x', name: 'x', dir: '../../..', request: {}, state: 'done', createdAt: '' });
    writeFileSync(join(hostile, 'project.json'), JSON.stringify(doc));
    await expect(projects.open(hostile)).rejects.toThrow(/lists a run with an unsafe id or path \(x\)/);
    await expect(projects.removeRun(hostile, 'x')).rejects.toThrow(/unsafe id or path/);
  }, 120_000);

  it('survives a killed process: the run shows as interrupted and resumes from its checkpoint', async () => {
    const setup = new ProjectService(new JobManager(), configDir);
    const dir = join(tmp, 'p2');
    await setup.create(dir, 'crash');
    await setup.addModel(dir, modelPath('mnist-8')!);
    const imported = await setup.importDataset(dir, { source: join(repoRoot, 'test/fixtures/mnist'), name: 'mnist' });
    await setup.jobs.get(imported.id)!.result;

    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'test/helpers/project-run-child.ts'), dir, 'mnist-8', 'mnist', configDir],
      { env: process.env, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const trajectory = join(dir, 'runs', 'crash', 'trajectory.jsonl');
    await until(() =>
      existsSync(trajectory) &&
      readFileSync(trajectory, 'utf8').split('\n').length > 8 &&
      existsSync(join(dir, 'runs', 'crash', 'checkpoint.json'))
        ? true
        : undefined,
    );
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));

    // A fresh app process opens the project: the run was recorded as running, no job owns it now.
    const projects = new ProjectService(new JobManager(), configDir);
    const project = await projects.open(dir);
    expect(project.runs).toEqual([expect.objectContaining({ id: 'crash', state: 'interrupted', resumable: true })]);
    expect(existsSync(join(dir, 'runs', 'crash', 'checkpoint.json'))).toBe(true);
    const resumed = await projects.resumeRun(dir, 'crash');
    expect((await projects.open(dir)).runs[0]!.state).toMatch(/queued|running/);
    await projects.jobs.get(resumed.id)!.result;
    const done = (await projects.open(dir)).runs[0]!;
    expect(done).toMatchObject({ state: 'done', resumable: false });
    expect(done.summary!.reduction).toBeGreaterThan(4);
    const results = await projects.runResults(dir, 'crash');
    expect(results.report!.perClass!.length).toBe(10);
    expect(results.report!.confusion!.flat().reduce((a, b) => a + b, 0)).toBe(results.report!.data.eval);
    expect(results.trajectory.map((s) => s.step)).toEqual(results.trajectory.map((_, i) => i));
    expect(results.sensitivity.length).toBeGreaterThan(0);
    const w = results.report!.structures.find((s) => s.kind === 'W')!;
    const hist = await projects.structureHistogram(dir, 'crash', w.tensor);
    expect(hist.counts.reduce((a, b) => a + b, 0)).toBe(w.elements);
    expect(hist.format).toMatchObject({ bits: w.bits, frac: w.frac, step: 2 ** -w.frac });
    const a = results.report!.structures.find((s) => s.kind === 'A')!;
    expect((await projects.structureHistogram(dir, 'crash', a.tensor)).counts.length).toBeGreaterThan(10);

    const exp = await projects.startExport(dir, 'crash', ['qdq', 'fxpq']);
    await projects.jobs.get(exp.id)!.result;
    const after = await projects.open(dir);
    expect(after.exports[0]).toMatchObject({ state: 'done', formats: ['qdq', 'fxpq'] });
    expect(after.exports[0]!.result!.qdq!.top1Agreement).toBe(1);
    expect(existsSync(join(dir, after.exports[0]!.dir, 'model.fxpq'))).toBe(true);
  }, 300_000);
});
