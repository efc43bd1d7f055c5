/**
 * The service layer as the typed API contract: what the Electron IPC and the web host both
 * expose. Every call's arguments are validated (zod) before anything runs; a failure comes
 * back as `{error}` with a plain sentence, never a throw across the boundary.
 */
import { realpath, readdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { z } from 'zod';
import { RunRequestSchema } from './run-request.js';
import { API_METHODS, type ApiError, type AppInfo, type FxpqApi, type FolderListing } from '../api/contract.js';
import { FxpqError, isFxpqError } from '../native-workers/engine/errors.js';
import { appInfo } from './app-info.js';
import { JobManager } from './jobs.js';
import { defaultConfigDir, ProjectService } from './projects.js';

export { API_METHODS };

/** What only a desktop shell can do; the web host leaves it out. */
export interface NativeDialogs {
  chooseFolder(title: string): Promise<string | null>;
  chooseFile(title: string, extensions: string[]): Promise<string | null>;
  openPath(path: string): Promise<boolean>;
}

export interface ServicesOptions {
  host: AppInfo['host'];
  jobs?: JobManager;
  configDir?: string;
  /** Folders `listFolder` may show (default: the user's home and the working folder). */
  browseRoots?: string[];
  dialogs?: NativeDialogs;
}

export interface Services {
  api: FxpqApi;
  jobs: JobManager;
  projects: ProjectService;
}

function within(path: string, roots: string[]): boolean {
  return roots.some((r) => path === r || path.startsWith(r.endsWith(sep) ? r : r + sep));
}

async function listFolder(pathArg: string, roots: string[]): Promise<FolderListing> {
  const real = await realpath(resolve(pathArg || roots[0]!)).catch(() => {
    throw new FxpqError(`${pathArg} does not exist.`, 'not-found');
  });
  if (!within(real, roots))
    throw new FxpqError(`${pathArg} is outside the folders this app may browse (${roots.join(', ')}).`, 'bad-request');
  if (!(await stat(real)).isDirectory()) throw new FxpqError(`${real} is not a folder.`, 'io');
  const entries = (await readdir(real, { withFileTypes: true }))
    .filter((e) => !e.name.startsWith('.') && (e.isDirectory() || e.isFile()))
    .map((e) => ({
      name: e.name,
      path: join(real, e.name),
      kind: e.isDirectory() ? ('folder' as const) : ('file' as const),
    }))
    .sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'folder' ? -1 : 1))
    .slice(0, 2000);
  const parent = dirname(real);
  return { path: real, parent: parent !== real && within(parent, roots) ? parent : null, entries };
}

export function createServices(o: ServicesOptions): Services {
  const jobs = o.jobs ?? new JobManager();
  const projects = new ProjectService(jobs, o.configDir ?? defaultConfigDir());
  const roots = [...new Set((o.browseRoots ?? [homedir(), process.cwd()]).map((r) => resolve(r)))];
  const api: FxpqApi = {
    appInfo: async () => ({
      ...appInfo(o.host),
      browseRoots: roots,
      ...(o.host === 'web' ? { filesUrl: '/files' } : {}),
    }),
    inspectModel: (path) => jobs.call('inspect', { path: resolve(path) }),
    listFolder: (path) => listFolder(path, roots),
    chooseFolder: async (title) => (o.dialogs ? o.dialogs.chooseFolder(title) : null),
    chooseFile: async (title, extensions) => (o.dialogs ? o.dialogs.chooseFile(title, extensions) : null),
    openPath: async (path) => (o.dialogs ? o.dialogs.openPath(path) : false),
    createProject: (dir, name) => projects.create(dir, name),
    openProject: (dir) => projects.open(dir),
    recentProjects: () => projects.recent(),
    renameProject: (dir, name) => projects.rename(dir, name),
    removeProject: (dir, deleteFiles) => projects.remove(dir, deleteFiles),
    addModel: (p, path) => projects.addModel(p, path),
    modelDetails: (p, id) => projects.modelDetails(p, id),
    removeModel: (p, id) => projects.removeModel(p, id),
    detectDatasetLayout: (source) => projects.detectLayout(source),
    importDataset: (p, request) => projects.importDataset(p, request),
    datasetDetails: (p, id) => projects.datasetDetails(p, id),
    datasetImage: (p, id, image, size, model) => projects.datasetImage(p, id, image, size, model),
    removeDataset: (p, id) => projects.removeDataset(p, id),
    startRun: (p, request) => projects.startRun(p, request),
    resumeRun: (p, id, from) => projects.resumeRun(p, id, from),
    runResults: (p, id) => projects.runResults(p, id),
    evaluateRun: (p, id, engine, split) => projects.evaluateRun(p, id, engine, split),
    structureHistogram: (p, id, tensor) => projects.structureHistogram(p, id, tensor),
    removeRun: (p, id) => projects.removeRun(p, id),
    startExport: (p, id, formats, cWeights) => projects.startExport(p, id, formats, cWeights),
    listJobs: async () => jobs.list(),
    queuePolicy: async () => jobs.policy,
    cancelJob: async (id) => {
      if (!jobs.cancel(id)) throw new FxpqError(`Job ${id} is not running or queued.`, 'not-found');
    },
  };
  return { api, jobs, projects };
}

// ---- argument validation -------------------------------------------------------------

const path = z.string().min(1).max(4096);
const id = z.string().min(1).max(200);
const name = z.string().max(200);
const exportFormats = z
  .array(z.enum(['qdq', 'fxpq', 'c']))
  .min(1)
  .max(3);
const runRequest = RunRequestSchema;
const importRequest = z
  .object({
    source: path,
    name: name.optional(),
    layout: z.enum(['auto', 'imagefolder', 'imagenet-val', 'csv']).optional(),
    labels: path.optional(),
    classes: path.optional(),
    synsets: path.optional(),
    copy: z.boolean().optional(),
  })
  .strict();

const ARGS: Record<(typeof API_METHODS)[number], z.ZodTypeAny> = {
  appInfo: z.tuple([]),
  inspectModel: z.tuple([path]),
  listFolder: z.tuple([z.string().max(4096)]),
  chooseFolder: z.tuple([name]),
  chooseFile: z.tuple([name, z.array(z.string().max(20)).max(20)]),
  openPath: z.tuple([path]),
  createProject: z.tuple([path, name]),
  openProject: z.tuple([path]),
  recentProjects: z.tuple([]),
  renameProject: z.tuple([path, name]),
  removeProject: z.tuple([path, z.boolean()]),
  addModel: z.tuple([path, path]),
  modelDetails: z.tuple([path, id]),
  removeModel: z.tuple([path, id]),
  detectDatasetLayout: z.tuple([path]),
  importDataset: z.tuple([path, importRequest]),
  datasetDetails: z.tuple([path, id]),
  datasetImage: z.union([
    z.tuple([path, id, path, z.number().min(1).max(4096)]),
    z.tuple([path, id, path, z.number().min(1).max(4096), id]),
  ]),
  removeDataset: z.tuple([path, id]),
  startRun: z.tuple([path, runRequest]),
  resumeRun: z.tuple([path, id, z.enum(['latest', 'previous', 'restart']).optional()]),
  runResults: z.tuple([path, id]),
  evaluateRun: z.tuple([path, id, z.enum(['sim', 'int']), z.enum(['eval', 'calib', 'all'])]),
  structureHistogram: z.tuple([path, id, z.string().min(1).max(1000)]),
  removeRun: z.tuple([path, id]),
  startExport: z.union([
    z.tuple([path, id, exportFormats]),
    z.tuple([path, id, exportFormats, z.enum(['packed', 'bytes'])]),
  ]),
  listJobs: z.tuple([]),
  queuePolicy: z.tuple([]),
  cancelJob: z.tuple([id]),
};

/** Answer one API call by name, as `{result}` or `{error}` (never a throw across the boundary). */
export async function dispatchApiCall(
  api: FxpqApi,
  method: string,
  args: unknown,
): Promise<{ result: unknown } | { error: ApiError }> {
  if (!(API_METHODS as readonly string[]).includes(method)) {
    return { error: { code: 'unknown-method', message: `Unknown API method ${method.slice(0, 100)}.` } };
  }
  const parsed = ARGS[method as (typeof API_METHODS)[number]].safeParse(args);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? ` (argument ${issue.path.map(String).join('.')})` : '';
    return { error: { code: 'bad-request', message: `${method}: ${issue.message}${where}.` } };
  }
  try {
    const fn = api[method as keyof FxpqApi] as (...a: unknown[]) => Promise<unknown>;
    const result = await fn(...(parsed.data as unknown[]));
    return { result: result === undefined ? null : result };
  } catch (e) {
    return { error: toApiError(e) };
  }
}

export function toApiError(e: unknown): ApiError {
  if (isFxpqError(e)) return { code: e.code, message: e.message };
  return { code: 'internal', message: `Internal error: ${(e as Error).message ?? String(e)}` };
}
