/**
 * Files the app persisted, read back as hostile input (issue 30, items 7 and 13): project.json
 * and dataset.json through schemas, opened without blocking (a FIFO under their names used to
 * hang the app: open, Remove dataset, a copy import) and size-bounded; rounded-weights files
 * bounded by what their header and the weight allow before they are read; and an image preview
 * shows only bytes the import itself hashed, whatever root and source a hostile pair of files
 * claims.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants, cpSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { importDataset, openDataset, type Dataset } from '../../services/datasets.js';
import { JobManager } from '../../services/jobs.js';
import { readRoundedWeights } from '../../services/optimized-rounding.js';
import { closePools } from '../../services/pool.js';
import { ProjectService } from '../../services/projects.js';
import { RoundedWeights } from '../../native-workers/engine/fixedpoint/optimized-rounding.js';
import { repoRoot } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-persisted-'));
const mnist = join(repoRoot, 'test/fixtures/mnist');
const fifos: string[] = [];
afterAll(async () => {
  // A reader the old code left blocked on a FIFO gets its end of file, so the worker can exit.
  for (const f of fifos)
    try {
      closeSync(openSync(f, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // no reader waiting
    }
  await closePools();
});

function mkfifo(path: string): void {
  expect(spawnSync('mkfifo', [path]).status).toBe(0);
  fifos.push(path);
}

type Json = Record<string, unknown>;
const readJson = (path: string): Json => JSON.parse(readFileSync(path, 'utf8')) as Json;
const writeJson = (path: string, v: unknown): void => writeFileSync(path, JSON.stringify(v));

async function projectWith(name: string, copy = false): Promise<{ projects: ProjectService; dir: string }> {
  const projects = new ProjectService(new JobManager(), join(tmp, `config-${name}`));
  const dir = join(tmp, name);
  await projects.create(dir, name);
  const job = await projects.importDataset(dir, { source: mnist, name: 'digits', copy });
  await projects.jobs.get(job.id)!.result;
  return { projects, dir };
}

describe('project.json', () => {
  it('a FIFO named project.json is refused at once, not waited on', async () => {
    const projects = new ProjectService(new JobManager(), join(tmp, 'config-fifo'));
    const dir = join(tmp, 'fifo-project');
    mkdirSync(dir);
    mkfifo(join(dir, 'project.json'));
    await expect(projects.open(dir)).rejects.toThrow(/project\.json is not a regular file/);
  }, 10_000);

  it('every field of the wrong type is a sentence naming the file and the field', async () => {
    const projects = new ProjectService(new JobManager(), join(tmp, 'config-types'));
    const dir = join(tmp, 'typed-project');
    await projects.create(dir, 'typed');
    const file = join(dir, 'project.json');
    const good = readJson(file);
    const model = {
      id: 'm',
      name: 'm.onnx',
      file: join('models', 'm.onnx'),
      sourcePath: '/x/m.onnx',
      addedAt: '',
      params: 1,
      macs: 1,
    };
    const dataset = {
      id: 'd',
      name: 'd',
      dir: join('datasets', 'd'),
      sourcePath: '/x/d',
      layout: 'imagefolder',
      copied: false,
      images: 1,
      classes: 1,
      skipped: 0,
      duplicates: 0,
      addedAt: '',
    };
    const run = {
      id: 'r',
      name: 'r',
      dir: join('runs', 'r'),
      request: { model: 'm', dataset: 'd', uniform: 8 },
      state: 'done',
      createdAt: '',
    };
    const exp = { id: 'x', run: 'r', dir: join('exports', 'x'), formats: ['qdq'], state: 'done', createdAt: '' };
    const full = { ...good, models: [model], datasets: [dataset], runs: [run], exports: [exp] };
    writeJson(file, full);
    expect((await projects.open(dir)).runs[0]!.request.uniform).toBe(8);

    const cases: [string, (d: typeof full) => void][] = [
      ['name', (d) => Object.assign(d, { name: 7 })],
      ['models[0].params', (d) => Object.assign(d.models[0]!, { params: '1' })],
      ['datasets[0].sourcePath', (d) => Object.assign(d.datasets[0]!, { sourcePath: 3 })],
      ['datasets[0].sourcePath', (d) => Object.assign(d.datasets[0]!, { sourcePath: 'relative/folder' })],
      ['datasets[0].copied', (d) => Object.assign(d.datasets[0]!, { copied: 'yes' })],
      ['datasets[0].layout', (d) => Object.assign(d.datasets[0]!, { layout: 'zip' })],
      ['runs[0].request.uniform', (d) => Object.assign(d.runs[0]!.request, { uniform: '8' })],
      ['runs[0].request.budget', (d) => Object.assign(d.runs[0]!.request, { budget: -1 })],
      ['runs[0].request.strategy', (d) => Object.assign(d.runs[0]!.request, { strategy: 'guess' })],
      ['runs[0].request.model', (d) => Object.assign(d.runs[0]!.request, { model: null })],
      ['runs[0].request', (d) => Object.assign(d.runs[0]!, { request: [] })],
      ['runs[0].state', (d) => Object.assign(d.runs[0]!, { state: null })],
      ['runs[0].error', (d) => Object.assign(d.runs[0]!, { error: 'boom' })],
      ['runs[0].summary', (d) => Object.assign(d.runs[0]!, { summary: 1 })],
      ['exports[0].formats', (d) => Object.assign(d.exports[0]!, { formats: 'qdq' })],
      ['exports[0].state', (d) => Object.assign(d.exports[0]!, { state: 'lost' })],
      ['exports[0].result', (d) => Object.assign(d.exports[0]!, { result: { out: 1, files: [] } })],
      ['removing[0].copied', (d) => Object.assign(d, { removing: [{ kind: 'dataset', id: 'z', copied: 'no' }] })],
      ['removing[0].kind', (d) => Object.assign(d, { removing: [{ kind: 'folder', id: 'z' }] })],
      ['removing', (d) => Object.assign(d, { removing: {} })],
    ];
    for (const [field, edit] of cases) {
      const d = structuredClone(full);
      edit(d);
      writeJson(file, d);
      await expect(projects.open(dir), field).rejects.toThrow(
        new RegExp(`project\\.json is not an FxPQ project file \\(field ${field.replace(/[.[\]]/g, '\\$&')}\\b`),
      );
    }
    // A request the API would have stored and project.json then refused is refused by the API.
    writeJson(file, full);
    await expect(
      projects.startRun(dir, { model: 'm', dataset: 'd', uniform: 8, strategy: 'guess' as never }),
    ).rejects.toThrow(/strategy/);
  }, 30_000);
});

describe('dataset.json', () => {
  it('a FIFO named dataset.json is refused by open, details, preview, Remove dataset and a copy import', async () => {
    const { projects, dir } = await projectWith('fifo-dataset', true);
    const folder = join(dir, 'datasets', 'digits');
    const index = join(folder, 'dataset.json');
    const { rmSync } = await import('node:fs');
    rmSync(index);
    mkfifo(index);
    await expect(openDataset(folder)).rejects.toThrow(/dataset\.json is not a regular file/);
    await expect(projects.datasetDetails(dir, 'digits')).rejects.toThrow(/not a regular file/);
    await expect(projects.datasetImage(dir, 'digits', join('0', 'x.png'), 64)).rejects.toThrow(/not a regular file/);
    // A copy import into that folder: its images/ is not taken for an earlier copy.
    await expect(importDataset(mnist, folder, { copy: true })).rejects.toThrow(/not written by an FxPQ copy import/);
    // Remove dataset goes through: the index (a FIFO the app cannot read) is unlinked; the copies it
    // cannot list stay rather than being guessed at.
    const removed = await projects.removeDataset(dir, 'digits');
    expect(removed.datasets).toEqual([]);
    expect(existsSync(index)).toBe(false);
  }, 60_000);

  it('refuses duplicate class ids and more than 100,000 classes', async () => {
    const out = join(tmp, 'classes-index');
    await importDataset(mnist, out);
    const file = join(out, 'dataset.json');
    const good = readJson(file);
    const ids = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
    writeJson(file, { ...good, classes: { ids, names: ids, source: 'file c.txt' } });
    expect((await openDataset(out)).classes!.ids).toEqual(ids);
    const twice = [...ids.slice(0, 9), '0'];
    writeJson(file, { ...good, classes: { ids: twice, names: twice, source: 'file c.txt' } });
    await expect(openDataset(out)).rejects.toThrow(/classes\.ids: a class id is listed twice/);
    const many = Array.from({ length: 100_001 }, (_, i) => `c${i}`);
    writeJson(file, { ...good, classes: { ids: many, names: many, source: 'file c.txt' } });
    await expect(openDataset(out)).rejects.toThrow(/classes\.ids/);
  });
});

describe('image previews', () => {
  it('show only images whose bytes the import hashed: a hostile pair with root and source "/" shows nothing else', async () => {
    const { projects, dir } = await projectWith('preview-pair');
    const folder = join(dir, 'datasets', 'digits');
    const original = readJson(join(folder, 'dataset.json')) as unknown as Dataset;
    const first = original.images[0]!;
    expect((await projects.datasetImage(dir, 'digits', first.path, 64)).dataUrl).toMatch(/^data:image\/png/);

    // Someone's picture elsewhere on the disk (the hostile files name it from the root).
    const pictures = join(tmp, 'home', 'u', 'Pictures');
    mkdirSync(pictures, { recursive: true });
    const secret = join(pictures, 'x.png');
    writeFileSync(
      secret,
      await sharp({ create: { width: 8, height: 8, channels: 3, background: 'red' } })
        .png()
        .toBuffer(),
    );
    const doc = readJson(join(dir, 'project.json')) as { datasets: { sourcePath: string }[] };
    doc.datasets[0]!.sourcePath = '/';
    writeJson(join(dir, 'project.json'), doc);
    const rel = relative('/', secret);
    // Listed with an image's size and hash from the import (the attacker does not know the secret's).
    writeJson(join(folder, 'dataset.json'), {
      ...original,
      root: '/',
      images: [...original.images, { ...first, path: rel }],
    });
    await expect(projects.datasetImage(dir, 'digits', rel, 64)).rejects.toThrow(/is not shown/);
    // The same pair with a folder above the picture as both root and source: only its bytes can tell.
    doc.datasets[0]!.sourcePath = tmp;
    writeJson(join(dir, 'project.json'), doc);
    const below = relative(tmp, secret);
    writeJson(join(folder, 'dataset.json'), {
      ...original,
      root: tmp,
      images: [...original.images, { ...first, path: below }],
    });
    await expect(projects.datasetImage(dir, 'digits', below, 64)).rejects.toThrow(
      /x\.png is not shown: changed since the dataset was indexed/,
    );
    // A listed image that changed since import is not shown either.
    const digits = join(tmp, 'changed-digits');
    cpSync(mnist, digits, { recursive: true });
    const ds = await importDataset(digits, join(tmp, 'changed-index'));
    const changed = ds.images[0]!;
    writeFileSync(join(digits, changed.path), readFileSync(secret));
    const other = await projectWith('preview-changed');
    const otherFolder = join(other.dir, 'datasets', 'digits');
    const otherDoc = readJson(join(other.dir, 'project.json')) as { datasets: { sourcePath: string }[] };
    otherDoc.datasets[0]!.sourcePath = digits;
    writeJson(join(other.dir, 'project.json'), otherDoc);
    writeJson(join(otherFolder, 'dataset.json'), ds);
    await expect(other.projects.datasetImage(other.dir, 'digits', changed.path, 64)).rejects.toThrow(
      /changed since the dataset was indexed/,
    );
    expect((await other.projects.datasetImage(other.dir, 'digits', ds.images[1]!.path, 64)).width).toBe(64);
  }, 60_000);
});

describe('rounded-weights files', () => {
  it('are bounded by their header before they are read: a sparse 3 GB file claiming 4 weights is refused unread', async () => {
    const run = join(tmp, 'rounding-run');
    mkdirSync(join(run, 'rounding'), { recursive: true });
    const f = { bits: 8, frac: 4, signed: true };
    const id = 'W:conv.weight';
    const name = createHash('sha256').update(RoundedWeights.key(id, f)).digest('hex').slice(0, 24) + '.bin';
    const file = join(run, 'rounding', name);
    const header = (length: number): Buffer => Buffer.from(JSON.stringify({ id, ...f, length }) + '\n');
    writeFileSync(file, Buffer.concat([header(4), Buffer.alloc(8)]));
    expect((await readRoundedWeights(run)).get(id, f)).toHaveLength(4);
    truncateSync(file, 3 * 2 ** 30);
    await expect(readRoundedWeights(run)).rejects.toThrow(/is damaged \(it is 3221225472 bytes, not the/);
    // A header claiming more weights than any run holds, with a (sparse) file to match.
    const claimed = 2 ** 30;
    writeFileSync(file, header(claimed));
    truncateSync(file, header(claimed).length + 2 * claimed);
    await expect(readRoundedWeights(run)).rejects.toThrow(/is damaged \(its header claims/);
    // A FIFO in rounding/ is refused, not waited on.
    writeFileSync(file, Buffer.concat([header(4), Buffer.alloc(8)]));
    mkfifo(join(run, 'rounding', `${'0'.repeat(24)}.bin`));
    await expect(readRoundedWeights(run)).rejects.toThrow(/not a regular file/);
    expect(readdirSync(join(run, 'rounding'))).toHaveLength(2);
  }, 30_000);
});
