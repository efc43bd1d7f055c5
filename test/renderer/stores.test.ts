/**
 * The renderer's stores and its HTTP client, without a browser: a fake bridge stands in for
 * Electron's preload or the web host.
 */
import { join } from 'node:path';
import { createPinia, setActivePinia } from 'pinia';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type {
  AppEvent,
  AppInfo,
  FxpqApi,
  FxpqBridge,
  JobSnapshot,
  Project,
  StructureFormat,
  TrajectoryStep,
} from '../../api/contract.js';
import { repoRoot } from '../helpers/fixtures.js';

// The renderer compiles under tsconfig.renderer.json (DOM, bundler resolution), not under the
// Node tsconfig that checks test/: load its modules by a computed path and name what is used.
const load = (file: string): Promise<unknown> => import(/* @vite-ignore */ join(repoRoot, 'renderer', 'src', file));

interface JobsStore {
  jobs: Record<string, JobSnapshot>;
  active: JobSnapshot[];
  start(onSettled?: (job: JobSnapshot) => void): () => void;
  forRun(run: string): JobSnapshot | undefined;
}
interface RunForm {
  model: string;
  dataset: string;
  mode: 'search' | 'uniform';
  budget: number;
  uniform: number;
  weightBits: number | null;
  rounding: 'auto' | 'nearest' | 'optimized';
  calib: number | null;
  eval: number | null;
  fracChoice: boolean;
  z: number | null;
  finalZ: number | null;
}
interface RunsStore {
  form: RunForm;
  liveRun: string;
  error: string;
  start(): Promise<boolean>;
}
interface HeatmapCells {
  rows: string[];
  columns: string[];
  cells: [number, number, number][];
}

const { api, setBridge, webToken } = (await load('api-client.ts')) as {
  api(): FxpqApi;
  setBridge(b: FxpqBridge | null): void;
  webToken(): string;
};
const { useAppStore } = (await load('stores/app.ts')) as {
  useAppStore(): { project: Project | null; info: AppInfo | null };
};
const { useJobsStore } = (await load('stores/jobs.ts')) as { useJobsStore(): JobsStore };
const { defaultRunForm, runRequest, useRunsStore } = (await load('stores/runs.ts')) as {
  defaultRunForm(): RunForm;
  runRequest(f: RunForm): object | string;
  useRunsStore(): RunsStore;
};
const { useModelsStore } = (await load('stores/models.ts')) as {
  useModelsStore(): { error: string; add(path: string): Promise<boolean> };
};
const { useExportsStore } = (await load('stores/exports.ts')) as {
  useExportsStore(): {
    run: string;
    formats: string[];
    error: string;
    shownPath: string;
    shownUrl: string;
    start(): Promise<boolean>;
    open(path: string, kind: 'file' | 'folder'): Promise<void>;
  };
};
const { useDatasetsStore } = (await load('stores/datasets.ts')) as {
  useDatasetsStore(): {
    form: { source: string; layout: string; labels: string };
    importError: string;
    importJob: string;
    detect(source: string): Promise<void>;
    startImport(): Promise<boolean>;
  };
};
const { heatmapCells } = (await load('components/heatmap.ts')) as {
  heatmapCells(bits: Record<string, number>, structures?: StructureFormat[]): HeatmapCells;
};

const job = (id: string, extra: Partial<JobSnapshot> = {}): JobSnapshot => ({
  id,
  kind: 'quantize',
  title: `job ${id}`,
  status: 'running',
  project: '/p',
  target: { run: `run-${id}` },
  queuedAt: '2026-01-01T00:00:00Z',
  steps: [],
  log: [],
  ...extra,
});

const step = (n: number, accepted = true): TrajectoryStep => ({
  step: n,
  phase: 'reduce',
  pass: 1,
  structure: 'W:conv1.weight',
  bits: 4,
  frac: 3,
  accepted,
  drop: 0.1 * n,
  bound: 0.2 * n,
  kl: null,
  budget: 1,
  reduction: 4 + n,
  evaluations: n,
  images: 60,
});

const project = (extra: Partial<Project> = {}): Project => ({
  path: '/p',
  name: 'p',
  createdAt: '2026-01-01T00:00:00Z',
  models: [],
  datasets: [],
  runs: [],
  exports: [],
  ...extra,
});

/** A bridge whose methods are vi.fn()s; subscribe hands the listener to the test. */
function fakeBridge(methods: Partial<Record<keyof FxpqBridge, (...a: never[]) => unknown>> = {}) {
  let listener: ((e: AppEvent) => void) | null = null;
  const bridge = new Proxy({} as FxpqBridge, {
    get(_t, prop: string) {
      if (prop === 'subscribe')
        return (l: (e: AppEvent) => void) => {
          listener = l;
          return () => (listener = null);
        };
      const m = methods[prop as keyof FxpqBridge];
      return m ?? (() => Promise.reject(new Error(`${prop} not faked`)));
    },
  });
  return { bridge, emit: (e: AppEvent) => listener?.(e) };
}

beforeEach(() => setActivePinia(createPinia()));
afterEach(() => {
  setBridge(null);
  vi.unstubAllGlobals();
});

describe('jobs store', () => {
  it('replaces its state on every snapshot and applies each later event once, in order', () => {
    const { bridge, emit } = fakeBridge();
    setBridge(bridge);
    const jobs = useJobsStore();
    const settled: string[] = [];
    jobs.start((j) => settled.push(`${j.id}:${j.status}`));
    emit({ type: 'snapshot', seq: 10, jobs: [job('a'), job('old')] });
    expect(Object.keys(jobs.jobs).sort()).toEqual(['a', 'old']);
    emit({ type: 'progress', seq: 11, job: 'a', at: 't', progress: { stage: 'search', done: 1, total: 9 } });
    emit({ type: 'progress', seq: 11, job: 'a', at: 't', progress: { stage: 'search', done: 5, total: 9 } });
    expect(jobs.jobs['a']!.progress!.done).toBe(1); // a repeated seq is dropped
    emit({ type: 'step', seq: 12, job: 'a', at: 't', step: step(1) });
    emit({ type: 'log', seq: 13, job: 'a', at: 't', line: 'hello' });
    emit({ type: 'queued', seq: 14, job: 'b', at: 't', snapshot: job('b', { status: 'queued', queuePosition: 0 }) });
    emit({ type: 'started', seq: 15, job: 'b', at: 't2' });
    expect(jobs.jobs['a']!.steps).toHaveLength(1);
    expect(jobs.jobs['a']!.log).toEqual(['hello']);
    expect(jobs.jobs['b']!.status).toBe('running');
    expect(jobs.active.map((j) => j.id).sort()).toEqual(['a', 'b', 'old']);
    emit({ type: 'cancelled', seq: 16, job: 'a', at: 't3' });
    emit({ type: 'failed', seq: 17, job: 'b', at: 't3', error: { code: 'x', message: 'It broke.' } });
    expect(settled).toEqual(['a:cancelled', 'b:failed']);
    expect(jobs.forRun('run-b')!.error!.message).toBe('It broke.');
    // A reconnect: the server's new snapshot wins, with a lower seq (a restarted host).
    emit({ type: 'snapshot', seq: 2, jobs: [job('c', { steps: [step(1), step(2)] })] });
    expect(Object.keys(jobs.jobs)).toEqual(['c']);
    expect(settled.some((s) => s.startsWith('old:'))).toBe(true);
    emit({ type: 'step', seq: 3, job: 'c', at: 't', step: step(3, false) });
    expect(jobs.jobs['c']!.steps.map((s) => s.accepted)).toEqual([true, true, false]);
  });
});

describe('runs store', () => {
  it('turns the form into a request or a sentence saying what is missing', () => {
    const f = defaultRunForm();
    expect(runRequest(f)).toMatch(/Choose the model/);
    f.model = 'm';
    f.dataset = 'd';
    f.calib = 60;
    f.eval = 40;
    expect(runRequest(f)).toEqual({
      model: 'm',
      dataset: 'd',
      seed: 0,
      budget: 1,
      strategy: 'schedule',
      distill: true,
      biasCorrection: true,
      calib: 60,
      eval: 40,
    });
    f.fracChoice = false;
    f.z = 2;
    expect(runRequest(f)).toMatchObject({ fracChoice: false, z: 2 });
    f.z = -1;
    expect(runRequest(f)).toMatch(/confidence z/);
    f.z = null;
    f.finalZ = 3;
    expect(runRequest(f)).toMatchObject({ finalZ: 3 });
    f.finalZ = 11;
    expect(runRequest(f)).toMatch(/final check z/);
    f.finalZ = null;
    expect(runRequest(f)).not.toHaveProperty('finalZ');
    f.mode = 'uniform';
    f.uniform = 8;
    expect(runRequest(f)).toMatchObject({ uniform: 8 });
    expect(runRequest(f)).not.toHaveProperty('weightBits');
    f.weightBits = 4;
    f.rounding = 'nearest';
    expect(runRequest(f)).toMatchObject({ uniform: 8, weightBits: 4, rounding: 'nearest' });
    f.weightBits = 1;
    expect(runRequest(f)).toMatch(/Weight bits/);
    f.weightBits = null;
    expect(runRequest(f)).not.toHaveProperty('budget');
    f.uniform = 1;
    expect(runRequest(f)).toMatch(/Uniform bits/);
    f.mode = 'search';
    f.budget = 0;
    expect(runRequest(f)).toMatch(/budget/);
  });

  it('starts a run, follows its job, and shows a failure where it happened', async () => {
    const startRun = vi.fn(async () => job('r1', { status: 'queued', target: { run: 'R1' } }));
    const openProject = vi.fn(async () => project());
    const { bridge } = fakeBridge({ startRun, openProject });
    setBridge(bridge);
    const app = useAppStore();
    app.project = project();
    const runs = useRunsStore();
    runs.form.model = 'm';
    runs.form.dataset = 'd';
    expect(await runs.start()).toBe(true);
    expect(startRun).toHaveBeenCalledWith('/p', expect.objectContaining({ model: 'm', budget: 1 }));
    expect(runs.liveRun).toBe('R1');
    expect(useJobsStore().jobs['r1']!.status).toBe('queued');

    setBridge(
      fakeBridge({
        startRun: async () => {
          throw new Error('The dataset d has no evaluation split.');
        },
      }).bridge,
    );
    expect(await runs.start()).toBe(false);
    expect(runs.error).toBe('The dataset d has no evaluation split.');
  });
});

describe('models store', () => {
  it('refuses a file that is not .onnx before asking the services', async () => {
    const addModel = vi.fn();
    setBridge(fakeBridge({ addModel }).bridge);
    useAppStore().project = project();
    const models = useModelsStore();
    expect(await models.add('/x/model.txt')).toBe(false);
    expect(models.error).toMatch(/model.txt is not an .onnx file/);
    expect(addModel).not.toHaveBeenCalled();
  });
});

describe('datasets store', () => {
  it('takes the detected layout and labels file, then starts an import job', async () => {
    const importDataset = vi.fn(async () => job('imp', { kind: 'import', target: { dataset: 'val' } }));
    setBridge(
      fakeBridge({
        detectDatasetLayout: async () => ({
          layout: 'imagenet-val',
          labels: '/data/LOC_val_solution.csv',
          reason: 'LOC_val_solution.csv beside the images',
        }),
        importDataset,
      }).bridge,
    );
    useAppStore().project = project();
    const ds = useDatasetsStore();
    expect(await ds.startImport()).toBe(false);
    expect(ds.importError).toMatch(/Choose the folder/);
    await ds.detect('/data/val');
    expect(ds.form).toMatchObject({
      source: '/data/val',
      layout: 'imagenet-val',
      labels: '/data/LOC_val_solution.csv',
    });
    expect(await ds.startImport()).toBe(true);
    expect(importDataset).toHaveBeenCalledWith(
      '/p',
      expect.objectContaining({ source: '/data/val', layout: 'imagenet-val' }),
    );
    expect(ds.importJob).toBe('imp');
    expect(useJobsStore().jobs['imp']).toBeDefined();
  });
});

describe('exports store', () => {
  it('asks for a run and a format, and shows the path where the OS cannot open it', async () => {
    const openPath = vi.fn(async () => false);
    const startExport = vi.fn();
    setBridge(fakeBridge({ openPath, startExport }).bridge);
    useAppStore().project = project();
    const ex = useExportsStore();
    expect(await ex.start()).toBe(false);
    expect(ex.error).toMatch(/Choose a finished run/);
    ex.run = 'r';
    ex.formats = [];
    expect(await ex.start()).toBe(false);
    expect(ex.error).toMatch(/at least one format/);
    expect(startExport).not.toHaveBeenCalled();
    await ex.open('/p/exports/x/report.html', 'file');
    expect(ex.shownPath).toBe('/p/exports/x/report.html');
    expect(ex.shownUrl).toBe('');
    // The web host serves exported files: the app links to them.
    useAppStore().info = { name: 'fxpq', version: '0', host: 'web', browseRoots: [], filesUrl: '/files' };
    await ex.open('/p/exports/x/report.html', 'file');
    expect(ex.shownUrl).toBe('/files?path=%2Fp%2Fexports%2Fx%2Freport.html');
    await ex.open('/p/exports/x', 'folder');
    expect(ex.shownUrl).toBe('');
  });
});

describe('bit-width heatmap rows', () => {
  it('groups structures by layer from the report, and guesses from the ids without one', () => {
    const bits = { 'W:conv1.weight': 4, 'B:conv1.bias': 16, 'A:relu1': 6, 'W:fc.weight': 3 };
    const known = heatmapCells(bits, [
      { layer: 'conv1', kind: 'W', tensor: 'conv1.weight', elements: 1, signed: true, bits: 4, frac: 2 },
      { layer: 'conv1', kind: 'B', tensor: 'conv1.bias', elements: 1, signed: true, bits: 16, frac: 2 },
      { layer: 'conv1', kind: 'A', tensor: 'relu1', elements: 1, signed: false, bits: 6, frac: 2 },
      { layer: 'fc', kind: 'W', tensor: 'fc.weight', elements: 1, signed: true, bits: 3, frac: 2 },
    ]);
    expect(known.rows).toEqual(['conv1', 'fc']);
    expect(known.cells).toEqual([
      [0, 0, 4],
      [1, 0, 16],
      [2, 0, 6],
      [0, 1, 3],
    ]);
    // Without a report: W, then its B and output A, in the search's order; an A after a full row stands alone.
    const guessed = heatmapCells({
      'A:input': 8,
      'W:w1': 4,
      'B:b1': 16,
      'A:/block/Relu_output_0': 6,
      'A:/block/Add_output_0': 7,
      'W:fc.weight': 3,
      odd: 5,
    });
    expect(guessed.rows).toEqual(['input', '/block/Relu', '/block/Add', 'fc.weight', 'odd']);
    expect(guessed.columns).toEqual(['W', 'B', 'A', '?']);
    expect(guessed.cells).toContainEqual([1, 1, 16]);
    expect(guessed.cells).toContainEqual([3, 4, 5]);
  });
});

describe('web client', () => {
  it('moves the token out of the address bar, sends it with each call, and turns errors into sentences', async () => {
    const storage = new Map<string, string>();
    const replaceState = vi.fn();
    vi.stubGlobal('window', {
      location: { href: 'http://127.0.0.1:5000/?token=abc#x' },
      history: { state: null, replaceState },
    });
    vi.stubGlobal('sessionStorage', {
      getItem: (k: string) => storage.get(k) ?? null,
      setItem: (k: string, v: string) => storage.set(k, v),
    });
    expect(webToken()).toBe('abc');
    expect(replaceState).toHaveBeenCalledWith(null, '', '/#x');
    vi.stubGlobal('window', { location: { href: 'http://127.0.0.1:5000/' }, history: { replaceState } });
    expect(webToken()).toBe('abc');

    const fetch = vi.fn(async (_url: string, init: RequestInit) => {
      const args = JSON.parse(init.body as string) as unknown[];
      if (args[0] === '/bad')
        return new Response(JSON.stringify({ error: { code: 'not-found', message: '/bad does not exist.' } }));
      return new Response(JSON.stringify({ result: { path: args[0], parent: null, entries: [] } }));
    });
    vi.stubGlobal('fetch', fetch);
    setBridge(null);
    const client = api();
    expect(await client.listFolder('/home')).toEqual({ path: '/home', parent: null, entries: [] });
    expect(fetch).toHaveBeenCalledWith('/api/listFolder', expect.objectContaining({ method: 'POST' }));
    const init = fetch.mock.calls[0]![1];
    expect((init.headers as Record<string, string>)['authorization']).toBe('Bearer abc');
    await expect(client.listFolder('/bad')).rejects.toMatchObject({
      code: 'not-found',
      message: '/bad does not exist.',
    });
  });
});
