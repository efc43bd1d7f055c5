/**
 * Projects: a folder a user can copy or put under version control.
 *
 *   project.json   name, models, datasets, runs, exports (paths relative to the folder)
 *   models/        copied ONNX files, each with its sidecar <id>.json when it had one
 *   datasets/<id>/ dataset.json (images stay where they are unless imported with copy)
 *   runs/<id>/     a quantize run folder (config.json, report.json, checkpoint.json, ...)
 *   exports/<id>/  a verified export
 *
 * Long work goes through the JobManager (on the pool); this module only writes small JSON
 * documents, atomically, one writer per project at a time. A run's state survives the app:
 * a run recorded as queued or running with no live job is shown as interrupted and resumable.
 */
import { copyFile, lstat, mkdir, realpath, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import type {
  ApiError,
  DatasetDetails,
  DatasetImportRequest,
  ExportFormat,
  JobSnapshot,
  LayoutGuess,
  ModelDetails,
  Project,
  ProjectDataset,
  ProjectExport,
  ProjectModel,
  ProjectRun,
  RecentProject,
  RunReport,
  RunRequest,
  RunResults,
  RunState,
  TrajectoryStep,
  HistogramData,
  ImagePreview,
  ExportResult,
  ResumeFrom,
} from '../api/contract.js';
import { FxpqError } from '../native-workers/engine/errors.js';
import { detectLayout, listedImagePaths, openDataset, previewImagePath, removeListedFiles } from './datasets.js';
import { describeFsError, prepareOutputFolder, writeFileAtomic } from './files.js';
import type { ImportSummary } from './job-tasks.js';
import type { Job, JobManager } from './jobs.js';
import { sidecarPath } from './models.js';
import { OutsideError, removeOwned, removeOwnedIfEmpty, resolveOwned, resolveOwnedForReading } from './owned-paths.js';
import { readRunConfig, readRunReport, runEqualized } from './runs.js';
import { checkDocument, readRunText, readTrajectory } from './run-schemas.js';
import { StoredRunRequestSchema } from './run-request.js';

const PROJECT_FILE = 'project.json';
/** What `uniqueId` makes: no separators, never `.` or `..`. */
const SAFE_ID = /^(?!\.{1,2}$)[a-z0-9._-]{1,64}$/;

interface StoredRun extends Omit<ProjectRun, 'state' | 'resumable' | 'job'> {
  state: RunState;
}
type StoredExport = Omit<ProjectExport, 'job'>;

interface ProjectDoc {
  format: 'fxpq-project';
  version: 1;
  name: string;
  createdAt: string;
  models: ProjectModel[];
  datasets: ProjectDataset[];
  runs: StoredRun[];
  exports: StoredExport[];
  /**
   * Items unlisted whose files are still being deleted, written in the same atomic write that
   * unlists them: a kill mid-delete leaves them here, and the next open or removal finishes
   * them. Their ids stay taken until then.
   */
  removing?: Removal[];
}

type ItemKind = 'model' | 'dataset' | 'run' | 'export';
interface Removal {
  kind: ItemKind;
  id: string;
  /** A dataset imported with copy: its copies in images/ go too. */
  copied?: boolean;
}
const KINDS = ['model', 'dataset', 'run', 'export'] as const satisfies readonly ItemKind[];

// ---- project.json's schema: every field the app reads, with its type (issue 30, item 13) ----

const safeId = z.string().regex(SAFE_ID, 'not an id FxPQ makes');
const stamp = z.string();
const count = z.number().int().min(0);
const absolutePath = z.string().refine((p) => isAbsolute(p), 'not an absolute path');
const ApiErrorSchema = z.looseObject({ code: z.string(), message: z.string() });

const ModelEntrySchema = z.looseObject({
  id: safeId,
  name: z.string(),
  file: z.string(),
  sourcePath: z.string(),
  addedAt: stamp,
  params: count,
  macs: z.number().min(0),
});

const DatasetEntrySchema = z.looseObject({
  id: safeId,
  name: z.string(),
  dir: z.string(),
  sourcePath: absolutePath,
  layout: z.enum(['imagefolder', 'imagenet-val', 'csv']),
  copied: z.boolean(),
  images: count,
  classes: count,
  skipped: count,
  duplicates: count,
  addedAt: stamp,
});

/** JSON writes a non-finite number as null. */
const summaryNumber = z.number().nullable();
const RunEntrySchema = z.looseObject({
  id: safeId,
  name: z.string(),
  dir: z.string(),
  request: StoredRunRequestSchema,
  state: z.enum(['queued', 'running', 'interrupted', 'done', 'failed', 'cancelled']),
  createdAt: stamp,
  finishedAt: stamp.optional(),
  error: ApiErrorSchema.optional(),
  summary: z
    .looseObject({
      fpTop1: summaryNumber,
      quantTop1: summaryNumber,
      drop: summaryNumber,
      reduction: summaryNumber,
      avgBitsWeights: summaryNumber,
      avgBitsActivations: summaryNumber,
    })
    .optional(),
});

const ExportEntrySchema = z.looseObject({
  id: safeId,
  run: z.string(),
  dir: z.string(),
  formats: z.array(z.enum(['qdq', 'fxpq', 'c'])),
  state: z.enum(['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted']),
  createdAt: stamp,
  error: ApiErrorSchema.optional(),
  result: z
    .looseObject({
      out: z.string(),
      files: z.array(z.looseObject({ name: z.string(), bytes: z.number(), note: z.string() })),
    })
    .optional(),
});

const RemovalSchema = z.looseObject({ kind: z.enum(KINDS), id: safeId, copied: z.boolean().optional() });

export const ProjectDocSchema = z.looseObject({
  format: z.literal('fxpq-project'),
  version: z.literal(1),
  name: z.string(),
  createdAt: stamp,
  models: z.array(ModelEntrySchema),
  datasets: z.array(DatasetEntrySchema).optional(),
  runs: z.array(RunEntrySchema),
  exports: z.array(ExportEntrySchema).optional(),
  removing: z.array(RemovalSchema).optional(),
});

/** The user's config folder (recent projects): FXPQ_CONFIG_DIR, else the platform's. */
export function defaultConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['FXPQ_CONFIG_DIR']) return env['FXPQ_CONFIG_DIR'];
  if (process.platform === 'win32') return join(env['APPDATA'] ?? join(homedir(), 'AppData', 'Roaming'), 'fxpq');
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'fxpq');
  return join(env['XDG_CONFIG_HOME'] ?? join(homedir(), '.config'), 'fxpq');
}

/** Whether anything (a file, a folder, a link, even a dangling one) is at `path`. */
async function occupied(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw describeFsError(e, path);
  }
}

/**
 * A file-name-safe id from a name, unique among `taken` and free on disk: none of the paths
 * `onDisk(id)` gives (relative to the project folder) may exist. The project's folders may hold
 * what is not the app's (images kept in datasets/digits, a run folder the CLI wrote in
 * runs/uniform-8, a model of the user's in models/); a new item never takes over such a path,
 * so removing it later deletes only what the app wrote.
 */
async function uniqueId(
  dir: string,
  name: string,
  taken: Iterable<string>,
  onDisk: (id: string) => string[],
): Promise<string> {
  const base =
    name
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[-.]+|[-.]+$/g, '')
      .slice(0, 48) || 'item';
  const used = new Set(taken);
  const free = async (id: string): Promise<boolean> => {
    if (used.has(id)) return false;
    for (const rel of onDisk(id)) if (await occupied(join(dir, rel))) return false;
    return true;
  };
  for (let i = 1; i <= 10_000; i++) {
    const id = i === 1 ? base : `${base}-${i}`;
    if (await free(id)) return id;
  }
  throw new FxpqError(`${dir} has no free name for "${base}" (10,000 taken); tidy the project folder.`, 'io');
}

/**
 * Why a folder cannot be made, level by level: a recursive mkdir reports ENOENT where the
 * real cause is a read-only file system (EROFS) or a missing permission.
 */
async function mkdirFailure(path: string): Promise<Error | undefined> {
  const missing: string[] = [];
  for (let p = path; !(await occupied(p)); p = dirname(p)) {
    missing.unshift(p);
    if (dirname(p) === p) break;
  }
  for (const level of missing)
    try {
      await mkdir(level);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return describeFsError(e, level, 'a folder');
    }
  return undefined;
}

/** The real location `path` will have: its nearest existing ancestor resolved, the rest appended. */
async function realDestination(path: string): Promise<string> {
  let head = path;
  const tail: string[] = [];
  for (;;) {
    try {
      return join(await realpath(head), ...tail.reverse());
    } catch {
      const up = dirname(head);
      if (up === head) return path;
      tail.push(basename(head));
      head = up;
    }
  }
}

const now = (): string => new Date().toISOString();

function notFound(what: string, id: string, project: string): FxpqError {
  return new FxpqError(`${project} has no ${what} "${id}".`, 'not-found');
}

export class ProjectService {
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Ids of datasets being imported and runs being resumed, per project: reserved before their jobs start. */
  private readonly pending = new Set<string>();

  constructor(
    readonly jobs: JobManager,
    readonly configDir: string = defaultConfigDir(),
  ) {}

  // ---- project documents -------------------------------------------------------------

  private async readDoc(dir: string): Promise<ProjectDoc> {
    const file = join(dir, PROJECT_FILE);
    // Without blocking and size-bounded: a FIFO or a device named project.json is refused, never waited on.
    if (!(await occupied(file)))
      throw new FxpqError(`${dir} is not an FxPQ project: ${PROJECT_FILE} is missing.`, 'not-found');
    const text = await readRunText(file, 'an FxPQ project file');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new FxpqError(`${file} is not valid JSON; the project file is damaged.`, 'io');
    }
    const raw = value as Partial<Record<string, unknown>> | null;
    if (raw?.['format'] !== 'fxpq-project' || !Array.isArray(raw['runs']) || !Array.isArray(raw['models']))
      throw new FxpqError(`${file} is not an FxPQ project file.`, 'io');
    // Every stored path must be the one its id gives: a damaged or hostile project.json never
    // makes the app read, write or delete outside the project's own folders. Checked first, so
    // the sentence names the unsafe item even when other fields are damaged too.
    const expect = (what: string, item: unknown, key: string, wanted: (id: string) => string): void => {
      const { id, [key]: stored } = (item ?? {}) as Record<string, unknown>;
      if (typeof id !== 'string' || !SAFE_ID.test(id) || stored !== wanted(id))
        throw new FxpqError(
          `${file} lists a ${what} with an unsafe id or path (${String(id)}); the project file is damaged.`,
          'io',
        );
    };
    const list = (key: string): unknown[] => (Array.isArray(raw[key]) ? raw[key] : []);
    for (const m of list('models')) expect('model', m, 'file', (id) => join('models', `${id}.onnx`));
    for (const d of list('datasets')) expect('dataset', d, 'dir', (id) => join('datasets', id));
    for (const r of list('runs')) expect('run', r, 'dir', (id) => join('runs', id));
    for (const x of list('exports')) expect('export', x, 'dir', (id) => join('exports', id));
    for (const r of list('removing')) {
      const { id } = (r ?? {}) as Record<string, unknown>;
      if (typeof id !== 'string' || !SAFE_ID.test(id))
        throw new FxpqError(
          `${file} lists an item being removed with an unsafe id (${String(id)}); the project file is damaged.`,
          'io',
        );
    }
    const doc = checkDocument(
      ProjectDocSchema,
      value,
      file,
      'an FxPQ project file',
      'the project file is damaged or was edited by hand',
    ) as unknown as ProjectDoc;
    doc.exports ??= [];
    doc.datasets ??= [];
    return doc;
  }

  /** Read-modify-write of project.json, one at a time per project, written atomically. */
  private async update<T>(dir: string, fn: (doc: ProjectDoc) => T | Promise<T>): Promise<T> {
    const key = resolve(dir);
    return this.withLock(key, async () => {
      const doc = await this.readDoc(key);
      const out = await fn(doc);
      await writeFileAtomic(join(key, PROJECT_FILE), JSON.stringify(doc, null, 2));
      return out;
    });
  }

  /** Run `fn` after every earlier update of this project has settled, before any later one. */
  private withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
    const key = resolve(dir);
    const previous = this.locks.get(key) ?? Promise.resolve();
    const next = previous.then(fn);
    this.locks.set(
      key,
      next.catch(() => undefined),
    );
    return next;
  }

  /** The project as the UI sees it: stored state joined with the live jobs. */
  private view(dir: string, doc: ProjectDoc): Project {
    const live = new Map<string, JobSnapshot>();
    for (const job of this.jobs.active()) {
      const s = job.snapshot();
      if (s.project !== dir) continue;
      if (s.target?.run) live.set(`run:${s.target.run}`, s);
      if (s.target?.export) live.set(`export:${s.target.export}`, s);
    }
    const runs: ProjectRun[] = doc.runs.map((r) => {
      const job = live.get(`run:${r.id}`);
      let state: RunState = r.state;
      if (job) state = job.status === 'queued' ? 'queued' : 'running';
      else if (state === 'queued' || state === 'running') state = 'interrupted';
      return {
        ...r,
        state,
        resumable: !job && ['interrupted', 'cancelled', 'failed'].includes(state),
        ...(job ? { job: job.id } : {}),
      };
    });
    const exports: ProjectExport[] = doc.exports.map((x) => {
      const job = live.get(`export:${x.id}`);
      let state = x.state;
      if (job) state = job.status === 'queued' ? 'queued' : 'running';
      else if (state === 'queued' || state === 'running') state = 'interrupted';
      return { ...x, state, ...(job ? { job: job.id } : {}) };
    });
    return {
      path: dir,
      name: doc.name,
      createdAt: doc.createdAt,
      models: doc.models,
      datasets: doc.datasets,
      runs,
      exports,
    };
  }

  private abs(dir: string): string {
    if (typeof dir !== 'string' || dir.trim() === '') throw new FxpqError('A project folder is needed.', 'bad-request');
    return resolve(dir);
  }

  // ---- recent list --------------------------------------------------------------------

  private recentFile(): string {
    return join(this.configDir, 'recent.json');
  }

  private async readRecent(): Promise<{ path: string; name: string; openedAt: string }[]> {
    try {
      const list = JSON.parse(await readRunText(this.recentFile(), 'the list of recent projects')) as unknown;
      return Array.isArray(list) ? (list as { path: string; name: string; openedAt: string }[]) : [];
    } catch {
      return [];
    }
  }

  private async remember(dir: string, name: string): Promise<void> {
    const list = (await this.readRecent()).filter((r) => r.path !== dir);
    list.unshift({ path: dir, name, openedAt: now() });
    await writeFileAtomic(this.recentFile(), JSON.stringify(list.slice(0, 20), null, 2));
  }

  private async forget(dir: string): Promise<void> {
    const list = (await this.readRecent()).filter((r) => r.path !== dir);
    await writeFileAtomic(this.recentFile(), JSON.stringify(list, null, 2));
  }

  async recent(): Promise<RecentProject[]> {
    return (await this.readRecent()).map((r) => ({ ...r, missing: !existsSync(join(r.path, PROJECT_FILE)) }));
  }

  // ---- projects -----------------------------------------------------------------------

  async create(dirArg: string, name: string): Promise<Project> {
    const dir = this.abs(dirArg);
    if (existsSync(join(dir, PROJECT_FILE)))
      throw new FxpqError(`${dir} already holds a project; open it instead.`, 'io');
    const info = await stat(dir).catch(() => undefined);
    if (info && !info.isDirectory()) throw new FxpqError(`${dir} is a file, not a folder.`, 'io');
    // Never in the system's own folders, by the path given or the one its links lead to (a link
    // in /tmp to /etc): the CLI's rule for output folders, through every front end.
    const real = await realDestination(dir);
    // The real location first: checking the given path first would create the folder through the link.
    for (const p of new Set([real, dir]))
      await prepareOutputFolder(p, 'the project folder').catch(async (e: unknown) => {
        throw (e instanceof FxpqError && e.code === 'not-found' ? await mkdirFailure(p) : undefined) ?? e;
      });
    const doc: ProjectDoc = {
      format: 'fxpq-project',
      version: 1,
      name: name.trim() || basename(dir),
      createdAt: now(),
      models: [],
      datasets: [],
      runs: [],
      exports: [],
    };
    for (const sub of ['models', 'datasets', 'runs', 'exports'])
      await mkdir(join(dir, sub), { recursive: true }).catch((e: unknown) => {
        throw describeFsError(e, join(dir, sub), 'a folder');
      });
    await writeFileAtomic(join(dir, PROJECT_FILE), JSON.stringify(doc, null, 2));
    await this.remember(dir, doc.name);
    return this.view(dir, doc);
  }

  async open(dirArg: string): Promise<Project> {
    const dir = this.abs(dirArg);
    // A removal a kill interrupted is finished now; a project that cannot be written still opens.
    await this.finishRemovals(dir).catch(() => undefined);
    const doc = await this.readDoc(dir);
    await this.remember(dir, doc.name);
    return this.view(dir, doc);
  }

  async rename(dirArg: string, name: string): Promise<Project> {
    const dir = this.abs(dirArg);
    if (!name.trim()) throw new FxpqError('A project needs a name.', 'bad-request');
    const doc = await this.update(dir, (d) => {
      d.name = name.trim();
      return d;
    });
    await this.remember(dir, doc.name);
    return this.view(dir, doc);
  }

  /**
   * Forget a project; with deleteFiles remove what it owns (never images it only references,
   * never what a link in it leads to). Crash-consistent: one atomic write of project.json moves
   * every part from its list into the journal of removals before any file is deleted,
   * project.json goes after the last part, and the recent-list entry last of all, so a kill at
   * any point leaves a project.json that lists only what still exists, still on the recent
   * list; opening or removing it again finishes the job from the journal.
   */
  async remove(dirArg: string, deleteFiles: boolean): Promise<void> {
    const dir = this.abs(dirArg);
    if (this.jobs.active().some((j) => j.snapshot().project === dir))
      throw new FxpqError(`${dir} has jobs running; cancel them before removing the project.`, 'io');
    if (deleteFiles && (await occupied(join(dir, PROJECT_FILE)))) {
      // Only what the project lists is its own: a folder may have held the user's files before.
      // Everything is unlisted at once, into the journal of removals, then deleted item by item.
      const removals = await this.update(dir, (d) => {
        d.removing = [
          ...(d.removing ?? []),
          ...d.models.map((m) => ({ kind: 'model' as const, id: m.id })),
          ...d.datasets.map((x) => ({ kind: 'dataset' as const, id: x.id, copied: x.copied })),
          ...d.exports.map((x) => ({ kind: 'export' as const, id: x.id })),
          ...d.runs.map((r) => ({ kind: 'run' as const, id: r.id })),
        ];
        d.models = [];
        d.datasets = [];
        d.exports = [];
        d.runs = [];
        return d.removing;
      });
      for (const r of removals) await this.deleteParts(dir, r);
      await this.withLock(dir, () => removeOwned(dir, PROJECT_FILE, 'the project file', { ifOutside: 'skip' }));
      // Folders, and the project folder itself, go only when nothing of the user's is left in them.
      for (const sub of ['models', 'datasets', 'runs', 'exports']) await removeOwnedIfEmpty(dir, sub);
      const parent = dirname(dir);
      if (parent !== dir) await removeOwnedIfEmpty(parent, basename(dir));
    }
    await this.forget(dir);
  }

  /**
   * Unlist an item and journal its removal in one atomic write of project.json, delete its
   * files, then drop the journal entry: a kill at any point leaves project.json listing only
   * what still exists, and the next open or removal finishes the deletion.
   */
  private async removeItem(dir: string, kind: ItemKind, id: string): Promise<ProjectDoc> {
    await this.finishRemovals(dir);
    let removal: Removal | undefined;
    await this.update(dir, (d) => {
      if (kind === 'model') {
        const m = this.model(dir, d, id);
        d.models = d.models.filter((x) => x !== m);
        removal = { kind, id };
      } else if (kind === 'dataset') {
        const x = this.dataset(dir, d, id);
        d.datasets = d.datasets.filter((e) => e !== x);
        removal = { kind, id, copied: x.copied };
      } else if (kind === 'run') {
        const r = this.run(dir, d, id);
        d.runs = d.runs.filter((e) => e !== r);
        removal = { kind, id };
      } else {
        const x = d.exports.find((e) => e.id === id);
        if (!x) throw notFound('export', id, dir);
        d.exports = d.exports.filter((e) => e !== x);
        removal = { kind, id };
      }
      d.removing = [...(d.removing ?? []), removal];
    });
    await this.deleteParts(dir, removal!);
    return this.update(dir, (d) => {
      d.removing = (d.removing ?? []).filter((r) => !(r.kind === kind && r.id === id));
      if (d.removing.length === 0) delete d.removing;
      return d;
    });
  }

  /** Delete what an interrupted removal left, as listed in project.json's journal. */
  private async finishRemovals(dir: string): Promise<void> {
    const doc = await this.readDoc(dir);
    if (!doc.removing?.length) return;
    for (const r of doc.removing) await this.deleteParts(dir, r);
    const done = new Set(doc.removing.map((r) => `${r.kind}:${r.id}`));
    await this.update(dir, (d) => {
      d.removing = (d.removing ?? []).filter((r) => !done.has(`${r.kind}:${r.id}`));
      if (d.removing.length === 0) delete d.removing;
    });
  }

  /** Ids of `kind` being removed: still taken, so a new item never gets files the journal will delete. */
  private static removingIds(doc: ProjectDoc, kind: ItemKind): string[] {
    return (doc.removing ?? []).filter((r) => r.kind === kind).map((r) => r.id);
  }

  /** The files one item owns, by its id: never followed through a link out of the project. */
  private async deleteParts(dir: string, r: Removal): Promise<void> {
    if (r.kind === 'model') await this.deleteModelFiles(dir, r.id);
    else if (r.kind === 'dataset')
      await this.deleteDatasetFiles(dir, { id: r.id, dir: join('datasets', r.id), copied: r.copied ?? false });
    else await removeOwned(dir, join(`${r.kind}s`, r.id), `${r.kind} "${r.id}"`, { ifOutside: 'skip' });
  }

  /** models/<id>.onnx and its sidecar models/<id>.json: both the app's copies. */
  private async deleteModelFiles(dir: string, id: string): Promise<void> {
    await removeOwned(dir, join('models', `${id}.onnx`), `model "${id}"`, { ifOutside: 'skip' });
    await removeOwned(dir, join('models', `${id}.json`), `the sidecar of model "${id}"`, { ifOutside: 'skip' });
  }

  /**
   * What the app wrote for a dataset: datasets/<id>/dataset.json and, only when it was
   * imported with copy, the copies it listed in
   * datasets/<id>/images. Anything else in the folder (the user's images, kept there and
   * imported in place by an older version) stays, and so does the folder when not empty.
   */
  private async deleteDatasetFiles(
    dir: string,
    entry: Pick<ProjectDataset, 'id' | 'dir' | 'copied'>,
    ifOutside: 'throw' | 'skip' = 'skip',
  ): Promise<void> {
    const what = `dataset "${entry.id}"`;
    let folder: string | undefined;
    try {
      folder = await resolveOwned(dir, entry.dir, what);
    } catch (e) {
      if (ifOutside === 'skip' && e instanceof OutsideError) return;
      throw e;
    }
    if (folder === undefined) return;
    const info = await lstat(folder);
    // A link is not the app's: unlink it, never look inside.
    if (info.isSymbolicLink() || !info.isDirectory()) {
      await removeOwned(dir, entry.dir, what, { ifOutside });
      return;
    }
    if (entry.copied) {
      const images = join(folder, 'images');
      const imagesInfo = await lstat(images).catch(() => undefined);
      if (imagesInfo?.isDirectory()) {
        // Only the files the index lists, by those paths (a folder, a `..` or a link in a hostile index is skipped).
        await removeListedFiles(images, await this.copiedImages(folder));
        await removeOwnedIfEmpty(folder, 'images');
      }
    }
    await removeOwned(folder, 'dataset.json', `the index of ${what}`, { ifOutside: 'skip' });
    await removeOwnedIfEmpty(dir, entry.dir);
  }

  /**
   * The image paths a copied dataset's index lists (relative to its images/ folder), read
   * without blocking (a FIFO named dataset.json must not hang Remove dataset), size-bounded and
   * through a schema; none when unreadable.
   */
  private async copiedImages(folder: string): Promise<string[]> {
    try {
      const index = await resolveOwnedForReading(folder, 'dataset.json', 'the dataset index');
      return index ? ((await listedImagePaths(index)) ?? []) : [];
    } catch {
      return [];
    }
  }

  // ---- models -------------------------------------------------------------------------

  async addModel(dirArg: string, modelPath: string): Promise<Project> {
    const dir = this.abs(dirArg);
    const source = resolve(modelPath);
    // Parse and check it on the pool first: a model the engine refuses is never added.
    const report = await this.jobs.call('inspect', { path: source });
    const doc = await this.update(dir, async (d) => {
      const id = await uniqueId(
        dir,
        basename(source, extname(source)),
        [...d.models.map((m) => m.id), ...ProjectService.removingIds(d, 'model')],
        (id) => [join('models', `${id}.onnx`), join('models', `${id}.json`)],
      );
      const file = join('models', `${id}.onnx`);
      await mkdir(join(dir, 'models'), { recursive: true }).catch((e: unknown) => {
        throw describeFsError(e, join(dir, 'models'), 'a folder');
      });
      // Written only inside the project: a models/ that is a link elsewhere is refused.
      await this.writable(dir, file, `model "${id}"`);
      await copyFile(source, join(dir, file)).catch((e: unknown) => {
        throw describeFsError(e, join(dir, file));
      });
      if (existsSync(sidecarPath(source)))
        await copyFile(sidecarPath(source), join(dir, 'models', `${id}.json`)).catch((e: unknown) => {
          throw describeFsError(e, join(dir, 'models', `${id}.json`));
        });
      d.models.push({
        id,
        name: basename(source),
        file,
        sourcePath: source,
        addedAt: now(),
        params: report.totals.params,
        macs: report.totals.macs,
      });
      return d;
    });
    return this.view(dir, doc);
  }

  private model(dir: string, doc: ProjectDoc, id: string): ProjectModel {
    const m = doc.models.find((x) => x.id === id);
    if (!m) throw notFound('model', id, dir);
    return m;
  }

  async modelDetails(dirArg: string, modelId: string): Promise<ModelDetails> {
    const dir = this.abs(dirArg);
    const m = this.model(dir, await this.readDoc(dir), modelId);
    const path = join(dir, m.file);
    const inspect = await this.jobs.call('inspect', { path });
    const hints = await this.jobs.call('hints', { path });
    return { model: m, inspect, ...hints };
  }

  /** Unlisted first (project.json written atomically), deleted after: a kill between the two leaves files, never a listing of none. */
  async removeModel(dirArg: string, modelId: string): Promise<Project> {
    const dir = this.abs(dirArg);
    return this.view(dir, await this.removeItem(dir, 'model', modelId));
  }

  /**
   * Check that the app may write `rel` in the project: every folder above it is inside the
   * project by its real path, and what is there already (a link) leads nowhere outside it.
   */
  private async writable(dir: string, rel: string, what: string): Promise<void> {
    await resolveOwned(dir, rel, what);
    await resolveOwnedForReading(dir, rel, what);
  }

  // ---- datasets -----------------------------------------------------------------------

  async detectLayout(source: string): Promise<LayoutGuess> {
    const src = resolve(source);
    const layout = await detectLayout(src, undefined);
    const labels =
      layout === 'imagenet-val' && existsSync(join(src, 'LOC_val_solution.csv'))
        ? join(src, 'LOC_val_solution.csv')
        : layout === 'csv' && existsSync(join(src, 'labels.csv'))
          ? join(src, 'labels.csv')
          : undefined;
    const reason = {
      imagefolder: 'class sub-folders',
      'imagenet-val': 'ImageNet validation files',
      csv: 'a labels CSV',
    }[layout];
    return { layout, ...(labels ? { labels } : {}), reason: `${src} holds ${reason}.` };
  }

  async importDataset(dirArg: string, request: DatasetImportRequest): Promise<JobSnapshot> {
    const dir = this.abs(dirArg);
    const source = resolve(request.source);
    const doc = await this.readDoc(dir);
    // Free on disk too: images kept in <project>/datasets/digits and imported in place must not
    // get the id digits, or the dataset's folder would be the images' folder. Choosing an id
    // awaits the disk, so a concurrent import may reserve the same one meanwhile: then choose again.
    let id: string;
    let key: string;
    for (;;) {
      const reserved = [...this.pending]
        .filter((k) => k.startsWith(`${dir}\0dataset:`))
        .map((k) => k.split(':').pop()!);
      id = await uniqueId(
        dir,
        request.name ?? basename(source),
        [...doc.datasets.map((d) => d.id), ...ProjectService.removingIds(doc, 'dataset'), ...reserved],
        (id) => [join('datasets', id)],
      );
      key = `${dir}\0dataset:${id}`;
      if (!this.pending.has(key)) break;
    }
    this.pending.add(key);
    const rel = join('datasets', id);
    try {
      await this.writable(dir, rel, `dataset "${id}"`);
    } catch (e) {
      this.pending.delete(key);
      throw e;
    }
    const job = this.jobs.start(
      'import',
      {
        source,
        out: join(dir, rel),
        options: {
          ...(request.layout ? { layout: request.layout } : {}),
          ...(request.labels ? { labels: request.labels } : {}),
          ...(request.classes ? { classes: request.classes } : {}),
          ...(request.synsets ? { synsets: request.synsets } : {}),
          copy: request.copy ?? false,
        },
      },
      {
        title: `Import ${basename(source)}`,
        project: dir,
        target: { dataset: id },
        onSettled: async (j) => {
          this.pending.delete(key);
          if (j.status !== 'done') return;
          const summary = j.snapshot().result as ImportSummary;
          await this.update(dir, (d) => {
            d.datasets.push({
              id,
              name: request.name ?? basename(source),
              dir: rel,
              sourcePath: source,
              layout: summary.layout,
              copied: request.copy ?? false,
              images: summary.images,
              classes: summary.classes,
              skipped: summary.skipped.length,
              duplicates: summary.duplicates.length,
              addedAt: now(),
            });
          });
        },
      },
    );
    return job.snapshot();
  }

  private dataset(dir: string, doc: ProjectDoc, id: string): ProjectDataset {
    const d = doc.datasets.find((x) => x.id === id);
    if (!d) throw notFound('dataset', id, dir);
    return d;
  }

  async datasetDetails(dirArg: string, datasetId: string): Promise<DatasetDetails> {
    const dir = this.abs(dirArg);
    const entry = this.dataset(dir, await this.readDoc(dir), datasetId);
    const ds = await openDataset(join(dir, entry.dir));
    const counts = new Map<string, number>();
    for (const image of ds.images) counts.set(image.classId, (counts.get(image.classId) ?? 0) + 1);
    const order = ds.classes ? ds.classes.ids.filter((c) => counts.has(c)) : [...counts.keys()].sort();
    const names = ds.classes?.names;
    const calib = new Set(ds.split?.calib ?? []);
    const evalSet = new Set(ds.split?.eval ?? []);
    return {
      dataset: entry,
      root: ds.root,
      perClass: order.map((classId) => {
        const name = names?.[ds.classes!.ids.indexOf(classId)];
        return { classId, ...(name && name !== classId ? { name } : {}), count: counts.get(classId)! };
      }),
      split: ds.split ? { calib: ds.split.calib.length, eval: ds.split.eval.length, seed: ds.split.seed } : null,
      images: ds.images.map((image, i) => ({
        path: image.path,
        classId: image.classId,
        split: calib.has(i) ? 'calib' : evalSet.has(i) ? 'eval' : 'none',
      })),
      skipped: ds.skipped,
      duplicates: ds.duplicates,
    };
  }

  async datasetImage(
    dirArg: string,
    datasetId: string,
    imagePath: string,
    size: number,
    modelId?: string,
  ): Promise<ImagePreview> {
    const dir = this.abs(dirArg);
    const doc = await this.readDoc(dir);
    const entry = this.dataset(dir, doc, datasetId);
    const ds = await openDataset(join(dir, entry.dir));
    // Only images of the dataset, by their real path inside where this project keeps them.
    const listed = ds.images.find((i) => i.path === imagePath);
    if (!listed) throw new FxpqError(`${imagePath} is not an image of dataset "${datasetId}".`, 'not-found');
    const model = modelId ? join(dir, this.model(dir, doc, modelId).file) : undefined;
    return this.jobs.call('preview', {
      imagePath: await previewImagePath(ds, imagePath, {
        copied: entry.copied,
        projectDir: dir,
        indexDir: join(dir, entry.dir),
        sourcePath: entry.sourcePath,
      }),
      indexed: { bytes: listed.bytes, sha256: listed.sha256 },
      size: Math.max(16, Math.min(512, Math.round(size) || 96)),
      ...(model ? { modelPath: model } : {}),
    });
  }

  async removeDataset(dirArg: string, datasetId: string): Promise<Project> {
    const dir = this.abs(dirArg);
    // datasets/<id> holds the index and, only when imported with copy, the copied images: only those go.
    return this.view(dir, await this.removeItem(dir, 'dataset', datasetId));
  }

  // ---- runs ---------------------------------------------------------------------------

  private run(dir: string, doc: ProjectDoc, id: string): StoredRun {
    const r = doc.runs.find((x) => x.id === id);
    if (!r) throw notFound('run', id, dir);
    return r;
  }

  private validateRequest(request: RunRequest): void {
    const fail = (m: string): never => {
      throw new FxpqError(m, 'bad-request');
    };
    if (request.uniform === undefined && request.budget === undefined)
      fail('A run needs an accuracy budget (points) or a uniform word length.');
    if (request.budget !== undefined && !(Number.isFinite(request.budget) && request.budget >= 0))
      fail(`The budget must be a number of points >= 0, not ${String(request.budget)}.`);
    if (
      request.uniform !== undefined &&
      !(Number.isInteger(request.uniform) && request.uniform >= 2 && request.uniform <= 16)
    )
      fail(`The uniform word length must be an integer from 2 to 16, not ${String(request.uniform)}.`);
    if (request.weightBits !== undefined) {
      if (request.uniform === undefined) fail('Weight bits go with a uniform word length.');
      if (!(Number.isInteger(request.weightBits) && request.weightBits >= 2 && request.weightBits <= 16))
        fail(`The weight word length must be an integer from 2 to 16, not ${String(request.weightBits)}.`);
    }
    for (const key of ['calib', 'eval', 'slice'] as const) {
      const v = request[key];
      if (v !== undefined && !(Number.isInteger(v) && v >= 1))
        fail(`${key} must be a whole number >= 1, not ${String(v)}.`);
    }
    if (request.z !== undefined && !(Number.isFinite(request.z) && request.z >= 0 && request.z <= 10))
      fail(`z must be a number from 0 to 10, not ${String(request.z)}.`);
    if (request.seed !== undefined && !(Number.isInteger(request.seed) && request.seed >= 0))
      fail(`The seed must be a whole number >= 0, not ${String(request.seed)}.`);
    // Whatever else project.json could not hold later (its schema would refuse the project).
    const checked = StoredRunRequestSchema.safeParse(request);
    if (!checked.success) {
      const issue = checked.error.issues[0]!;
      fail(`The run request's ${issue.path.join('.') || 'fields'} ${issue.message.toLowerCase()}.`);
    }
  }

  private startRunJob(
    dir: string,
    run: StoredRun,
    model: ProjectModel,
    dataset: ProjectDataset,
    from: ResumeFrom = 'latest',
  ): JobSnapshot {
    const r = run.request;
    const job = this.jobs.start(
      'quantize',
      {
        modelPath: join(dir, model.file),
        dataPath: join(dir, dataset.dir),
        out: join(dir, run.dir),
        ...(r.budget !== undefined ? { budget: r.budget } : {}),
        ...(r.uniform !== undefined ? { uniform: r.uniform } : {}),
        ...(r.weightBits !== undefined ? { weightBits: r.weightBits } : {}),
        ...(r.rounding ? { rounding: r.rounding } : {}),
        ...(r.strategy ? { strategy: r.strategy } : {}),
        ...(r.calib !== undefined ? { calib: r.calib } : {}),
        ...(r.eval !== undefined ? { eval: r.eval } : {}),
        ...(r.seed !== undefined ? { seed: r.seed } : {}),
        ...(r.slice !== undefined ? { slice: r.slice } : {}),
        ...(r.z !== undefined ? { z: r.z } : {}),
        ...(r.finalZ !== undefined ? { finalZ: r.finalZ } : {}),
        ...(r.distill !== undefined ? { distill: r.distill } : {}),
        ...(r.biasCorrection !== undefined ? { biasCorrection: r.biasCorrection } : {}),
        ...(r.fracChoice !== undefined ? { fracChoice: r.fracChoice } : {}),
        ...(r.equalize !== undefined ? { equalize: r.equalize } : {}),
        checkpoint: from,
      },
      {
        title: `Quantize ${model.name} (${run.name})`,
        project: dir,
        target: { run: run.id },
        onStart: () => this.setRunState(dir, run.id, { state: 'running' }),
        onSettled: (j) => this.runSettled(dir, run.id, j),
      },
    );
    return job.snapshot();
  }

  private async setRunState(dir: string, id: string, patch: Partial<StoredRun>): Promise<void> {
    await this.update(dir, (d) => {
      const r = this.run(dir, d, id);
      Object.assign(r, patch);
      if (patch.state && patch.state !== 'failed') delete r.error;
    });
  }

  private async runSettled(dir: string, id: string, job: Job): Promise<void> {
    if (job.status === 'done') {
      const report = job.snapshot().result as RunReport;
      await this.setRunState(dir, id, {
        state: 'done',
        finishedAt: now(),
        summary: {
          fpTop1: report.fp.top1,
          quantTop1: report.quant.top1,
          drop: 100 * (report.fp.top1 - report.quant.top1),
          reduction: report.memory.reduction,
          avgBitsWeights: report.memory.avgBitsWeights,
          avgBitsActivations: report.memory.avgBitsActivations,
        },
      });
    } else {
      await this.setRunState(dir, id, {
        state: job.status === 'cancelled' ? 'cancelled' : 'failed',
        finishedAt: now(),
        ...(job.status === 'failed' && job.error ? { error: job.error as ApiError } : {}),
      });
    }
  }

  async startRun(dirArg: string, request: RunRequest): Promise<JobSnapshot> {
    const dir = this.abs(dirArg);
    this.validateRequest(request);
    const { run, model, dataset } = await this.update(dir, async (d) => {
      const model = this.model(dir, d, request.model);
      const dataset = this.dataset(dir, d, request.dataset);
      const label =
        request.name?.trim() ||
        (request.uniform !== undefined ? `uniform-${request.uniform}` : `budget-${request.budget}`);
      // Free on disk too: a runs/<id> the CLI wrote earlier is not this run's to resume or delete.
      const id = await uniqueId(
        dir,
        label,
        [...d.runs.map((r) => r.id), ...ProjectService.removingIds(d, 'run')],
        (id) => [join('runs', id)],
      );
      await this.writable(dir, join('runs', id), `run "${id}"`);
      const run: StoredRun = {
        id,
        name: request.name?.trim() || id,
        dir: join('runs', id),
        request: { ...request },
        state: 'queued',
        createdAt: now(),
      };
      d.runs.push(run);
      return { run, model, dataset };
    });
    return this.startRunJob(dir, run, model, dataset);
  }

  async resumeRun(dirArg: string, runId: string, from: ResumeFrom = 'latest'): Promise<JobSnapshot> {
    const dir = this.abs(dirArg);
    const doc = await this.readDoc(dir);
    const view = this.view(dir, doc).runs.find((r) => r.id === runId);
    if (!view) throw notFound('run', runId, dir);
    if (!view.resumable)
      throw new FxpqError(
        `Run "${runId}" is ${view.state}; only an interrupted, cancelled or failed run can be resumed.`,
        'io',
      );
    const run = this.run(dir, doc, runId);
    // The search writes into the run folder: never through a link out of the project.
    await this.writable(dir, run.dir, `run "${runId}"`);
    // A second click before the first job is visible must not start a second search on the same folder.
    const key = `${dir}\0run:${runId}`;
    if (this.pending.has(key)) throw new FxpqError(`Run "${runId}" is already being resumed.`, 'io');
    this.pending.add(key);
    try {
      await this.setRunState(dir, runId, { state: 'queued' });
      return this.startRunJob(
        dir,
        run,
        this.model(dir, doc, run.request.model),
        this.dataset(dir, doc, run.request.dataset),
        from,
      );
    } finally {
      this.pending.delete(key);
    }
  }

  async runResults(dirArg: string, runId: string): Promise<RunResults> {
    const dir = this.abs(dirArg);
    const doc = await this.readDoc(dir);
    const run = this.view(dir, doc).runs.find((r) => r.id === runId);
    if (!run) throw notFound('run', runId, dir);
    const runDir = join(dir, run.dir);
    // A running search has no report.json yet and a trajectory whose last line may be half
    // written (readTrajectory leaves it out); a damaged or hand-edited file is a sentence for
    // the error panel, never data the screen trusts.
    const report = existsSync(join(runDir, 'report.json')) ? await readRunReport(runDir) : undefined;
    const trajectory = existsSync(join(runDir, 'trajectory.jsonl'))
      ? ((await readTrajectory(runDir)) as unknown as TrajectoryStep[])
      : [];
    return { run, ...(report ? { report } : {}), trajectory, sensitivity: sensitivityOf(trajectory, report) };
  }

  async evaluateRun(
    dirArg: string,
    runId: string,
    engine: 'sim' | 'int',
    split: 'eval' | 'calib' | 'all',
  ): Promise<JobSnapshot> {
    const dir = this.abs(dirArg);
    const doc = await this.readDoc(dir);
    const run = this.run(dir, doc, runId);
    if (run.state !== 'done')
      throw new FxpqError(`Run "${runId}" has not finished; only a finished run can be evaluated.`, 'io');
    const runDir = join(dir, run.dir);
    // The project's own copies: the run's config.json holds absolute paths of where it was made.
    const job = this.jobs.start(
      'evaluate',
      {
        modelPath: join(dir, this.model(dir, doc, run.request.model).file),
        dataPath: join(dir, this.dataset(dir, doc, run.request.dataset).dir),
        run: runDir,
        engine,
        split,
      },
      {
        title: `Evaluate ${runId} (${engine === 'int' ? 'integer-only executor' : 'simulation'}, ${split} split)`,
        project: dir,
        target: { run: runId },
      },
    );
    return job.snapshot();
  }

  async structureHistogram(dirArg: string, runId: string, structure: string): Promise<HistogramData> {
    const dir = this.abs(dirArg);
    const doc = await this.readDoc(dir);
    const run = this.run(dir, doc, runId);
    const runDir = join(dir, run.dir);
    const config = await readRunConfig(runDir);
    // A structure id names its kind (a weight and an activation may share a tensor name).
    const byId = /^[WBA]:/.test(structure) && config.assignment[structure] ? structure : undefined;
    const tensor = byId ? structure.slice(2) : structure;
    const kind = byId
      ? (structure[0] as 'W' | 'B' | 'A')
      : (['W', 'B', 'A'] as const).find((k) => config.assignment[`${k}:${tensor}`]);
    if (!kind) throw new FxpqError(`Run "${runId}" has no data structure for tensor ${tensor}.`, 'not-found');
    const f = config.assignment[`${kind}:${tensor}`]!;
    return this.jobs.call('histogram', {
      modelPath: join(dir, this.model(dir, doc, run.request.model).file),
      runDir,
      kind,
      tensor,
      format: { bits: f.bits, frac: f.frac, signed: f.signed },
      ...(kind === 'B' && config.biases?.[tensor] ? { override: config.biases[tensor] } : {}),
      ...runEqualized(config),
    });
  }

  /**
   * Unlisted first (project.json written atomically), deleted after: a kill mid-delete leaves an
   * unlisted folder (a later run never reuses its id), never a run listed "done" with part of
   * its files. The folder is deleted by its real path, inside the project only.
   */
  async removeRun(dirArg: string, runId: string): Promise<Project> {
    const dir = this.abs(dirArg);
    if (this.jobs.active().some((j) => j.snapshot().project === dir && j.snapshot().target?.run === runId))
      throw new FxpqError(`Run "${runId}" is running; cancel it first.`, 'io');
    return this.view(dir, await this.removeItem(dir, 'run', runId));
  }

  // ---- exports ------------------------------------------------------------------------

  async startExport(
    dirArg: string,
    runId: string,
    formats: ExportFormat[],
    cWeights: 'packed' | 'bytes' = 'packed',
  ): Promise<JobSnapshot> {
    const dir = this.abs(dirArg);
    const chosen = [...new Set(formats)].filter((f) => ['qdq', 'fxpq', 'c'].includes(f));
    if (chosen.length === 0) throw new FxpqError('Choose at least one export format (qdq, fxpq, c).', 'bad-request');
    const entry = await this.update(dir, async (d) => {
      const run = this.run(dir, d, runId);
      if (run.state !== 'done' || !existsSync(join(dir, run.dir, 'report.json')))
        throw new FxpqError(`Run "${runId}" has not finished; only a finished run can be exported.`, 'io');
      const id = await uniqueId(
        dir,
        `${runId}-export`,
        [...d.exports.map((x) => x.id), ...ProjectService.removingIds(d, 'export')],
        (id) => [join('exports', id)],
      );
      await this.writable(dir, join('exports', id), `export "${id}"`);
      const entry: StoredExport = {
        id,
        run: runId,
        dir: join('exports', id),
        formats: chosen,
        state: 'queued',
        createdAt: now(),
      };
      d.exports.push(entry);
      return { entry, runDir: join(dir, run.dir) };
    });
    const set = (patch: Partial<StoredExport>): Promise<void> =>
      this.update(dir, (d) => {
        const x = d.exports.find((e) => e.id === entry.entry.id);
        if (x) Object.assign(x, patch);
      });
    const job = this.jobs.start(
      'export',
      { run: entry.runDir, out: join(dir, entry.entry.dir), formats: chosen, cWeights },
      {
        title: `Export ${runId} (${chosen.join(', ')})`,
        project: dir,
        target: { run: runId, export: entry.entry.id },
        onStart: () => set({ state: 'running' }),
        onSettled: async (j) => {
          if (j.status === 'done') await set({ state: 'done', result: j.snapshot().result as ExportResult });
          else
            await set({
              state: j.status === 'cancelled' ? 'cancelled' : 'failed',
              ...(j.error ? { error: j.error } : {}),
            });
        },
      },
    );
    return job.snapshot();
  }
}

/** Per structure: accepted and rejected proposals and the worst bound that rejected one (from the trajectory). */
export function sensitivityOf(trajectory: TrajectoryStep[], report?: RunReport): RunResults['sensitivity'] {
  const by = new Map<string, { accepted: number; rejected: number; worstBound: number }>();
  for (const s of trajectory) {
    if (!s.structure) continue;
    const e = by.get(s.structure) ?? { accepted: 0, rejected: 0, worstBound: 0 };
    if (s.accepted) e.accepted++;
    else {
      e.rejected++;
      e.worstBound = Math.max(e.worstBound, s.bound);
    }
    by.set(s.structure, e);
  }
  const layerOf = new Map((report?.structures ?? []).map((st) => [`${st.kind}:${st.tensor}`, st.layer]));
  return [...by.entries()].map(([id, e]) => {
    const [kind, ...rest] = id.split(':');
    return { layer: layerOf.get(id) ?? rest.join(':'), kind: kind!, tensor: rest.join(':'), ...e };
  });
}
