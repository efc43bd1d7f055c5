/**
 * Datasets: import (validate and index) ImageFolder, ImageNet-val and CSV layouts into
 * DIR/dataset.json, read them back, and describe them. Images stay in place unless copied.
 */
import { createHash } from 'node:crypto';
import { copyFile, lstat, mkdir, mkdtemp, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, extname, isAbsolute, join, relative, resolve } from 'node:path';
import { z } from 'zod';
import { FxpqError } from '../native-workers/engine/errors.js';
import { classIndex, MAX_CLASSES, type ClassList } from '../native-workers/engine/data/classes.js';
import { stratifiedSplit, type Split } from '../native-workers/engine/data/split.js';
import { decodeRgb } from '../native-workers/pool/image-decode.js';
import { ImageFileError, readImageFile } from '../native-workers/pool/image-file.js';
import { loadClassOption, sortedFolderClasses } from './classes.js';
import { describeFsError, readUserFile, writeFileAtomic } from './files.js';
import { engineEntry } from './engine-thread.js';
import { isWithin, removeOwnedIfEmpty, resolveOwned, resolveOwnedForReading } from './owned-paths.js';
import { checkDocument, readRunText } from './run-schemas.js';

export type DatasetLayout = 'imagefolder' | 'imagenet-val' | 'csv';

export interface DatasetImage {
  /** Relative to the dataset's `root`. */
  path: string;
  /** The class id (folder name, WordNet id, or CSV label). */
  classId: string;
  /** Its index in the import-time class list (--classes), when one was given. */
  label?: number;
  bytes: number;
  sha256: string;
  /** Known when the import decoded the image. */
  width?: number;
  height?: number;
}

export interface Dataset {
  format: 'fxpq-dataset';
  version: 1;
  /** Absolute folder the image paths are relative to. */
  root: string;
  layout: DatasetLayout;
  /** The class list given at import (--classes), or null: the model's list or sorted folder names decide later. */
  classes: ClassList | null;
  images: DatasetImage[];
  skipped: { path: string; reason: string }[];
  /** [kept, dropped] pairs of byte-identical files; the dropped one is not in `images`. */
  duplicates: [string, string][];
  /** The default calibration / evaluation split, recorded so runs can name their images. */
  split: Split | null;
  /**
   * Written by a `--copy` import: `root` is OUT/images and every file `images` lists there is
   * FxPQ's copy, which a later copy import into OUT may replace. An in-place import of OUT/images
   * also records that root, without this mark: those images are the user's.
   */
  copied?: true;
}

export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif']);
const DATASET_FILE = 'dataset.json';

export interface ImportOptions {
  layout?: DatasetLayout | 'auto';
  labels?: string;
  classes?: string;
  /** The devkit's synset order, needed with ILSVRC2012_validation_ground_truth.txt. */
  synsets?: string;
  copy?: boolean;
  /** Decode every image (import) or only hash it (a raw folder used directly). */
  verify?: boolean;
  calib?: number;
  eval?: number;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

interface Candidate {
  abs: string;
  classId: string;
}

async function listDir(dir: string): Promise<import('node:fs').Dirent[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  } catch (e) {
    throw describeFsError(e, dir, 'a folder');
  }
}

export async function detectLayout(src: string, labels: string | undefined): Promise<DatasetLayout> {
  const info = await stat(src).catch((e: unknown) => {
    throw describeFsError(e, src, 'a dataset folder');
  });
  if (info.isFile()) {
    if (extname(src).toLowerCase() === '.csv') return 'csv';
    throw new FxpqError(
      `${src} is a file; give a dataset folder (class sub-folders, ImageNet val) or a CSV of path,label.`,
      'io',
    );
  }
  const entries = await listDir(src);
  const names = new Set(entries.map((e) => e.name));
  if (labels && /LOC_val_solution\.csv$|validation_ground_truth\.txt$/.test(labels)) return 'imagenet-val';
  if (
    names.has('LOC_val_solution.csv') ||
    entries.some((e) => e.isFile() && /^ILSVRC2012_val_\d+\.JPEG$/i.test(e.name))
  )
    return 'imagenet-val';
  if (labels && extname(labels).toLowerCase() === '.csv') return 'csv';
  if (entries.some((e) => e.isDirectory() && !e.name.startsWith('.'))) return 'imagefolder';
  if (names.has('labels.csv')) return 'csv';
  throw new FxpqError(
    `${src} has no class sub-folders, no ImageNet validation files and no labels.csv, so its layout is unknown; pass --layout and --labels.`,
    'io',
  );
}

/**
 * Node decodes a file name that is not UTF-8 with U+FFFD in place of the bad bytes, so the
 * decoded name no longer opens the file; say so instead of "ENOENT".
 */
const validName = (name: string): boolean => !name.includes('\uFFFD');
const NAME_NOT_UTF8 = 'its name is not valid UTF-8, so FxPQ cannot open it by name; rename the file';

async function scanImageFolder(src: string, skipped: Dataset['skipped']): Promise<Candidate[]> {
  const out: Candidate[] = [];
  for (const entry of await listDir(src)) {
    if (entry.name.startsWith('.')) continue;
    if (!entry.isDirectory()) {
      skipped.push({ path: entry.name, reason: 'a file outside any class folder' });
      continue;
    }
    if (!validName(entry.name)) {
      skipped.push({ path: entry.name, reason: NAME_NOT_UTF8 });
      continue;
    }
    const walk = async (dir: string): Promise<void> => {
      for (const f of await listDir(dir)) {
        if (f.name.startsWith('.')) continue;
        const abs = join(dir, f.name);
        if (!validName(f.name)) skipped.push({ path: relative(src, abs), reason: NAME_NOT_UTF8 });
        else if (f.isDirectory()) await walk(abs);
        else out.push({ abs, classId: entry.name });
      }
    };
    await walk(join(src, entry.name));
  }
  return out;
}

/** Parse a CSV line with optional double quotes. */
function csvFields(line: string): string[] {
  const fields: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted && ch === '"' && line[i + 1] === '"') {
      cur += '"';
      i++;
    } else if (ch === '"') {
      quoted = !quoted;
    } else if (ch === ',' && !quoted) {
      fields.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  fields.push(cur);
  return fields.map((f) => f.trim());
}

/** The non-blank lines of a text file, each with its line number in the file (blank lines count). */
async function readLines(path: string, what: string): Promise<{ text: string; line: number }[]> {
  return new TextDecoder()
    .decode(await readUserFile(path, what))
    .split(/\r?\n/)
    .map((text, i) => ({ text, line: i + 1 }))
    .filter((l) => l.text.trim() !== '');
}

async function readText(path: string, what: string): Promise<string[]> {
  return (await readLines(path, what)).map((l) => l.text);
}

async function scanCsv(csvPath: string, root: string, skipped: Dataset['skipped']): Promise<Candidate[]> {
  const lines = await readLines(csvPath, 'a CSV labels file');
  const rows = new Map<string, { classId: string; line: number; conflict?: string }>();
  lines.forEach(({ text, line }, i) => {
    const f = csvFields(text);
    if (i === 0 && /^(path|file|filename|image)$/i.test(f[0] ?? '')) return;
    if (f.length < 2 || !f[0] || !f[1]) {
      throw new FxpqError(`${csvPath}, line ${line}: expected "path,label" but found "${text}".`, 'io');
    }
    const abs = isAbsolute(f[0]) ? f[0] : join(root, f[0]);
    const first = rows.get(abs);
    if (!first) rows.set(abs, { classId: f[1], line });
    else if (first.classId !== f[1])
      first.conflict ??= `labelled ${first.classId} on line ${first.line} and ${f[1]} on line ${line} of ${basename(csvPath)}; fix the labels file`;
  });
  const out: Candidate[] = [];
  for (const [abs, row] of rows) {
    if (row.conflict) skipped.push({ path: relative(root, abs), reason: row.conflict });
    else out.push({ abs, classId: row.classId });
  }
  return out;
}

async function scanImagenetVal(
  src: string,
  labels: string | undefined,
  synsets: string | undefined,
  skipped: Dataset['skipped'],
): Promise<Candidate[]> {
  const files = (await listDir(src))
    .filter((e) => e.isFile() && IMAGE_EXTENSIONS.has(extname(e.name).toLowerCase()))
    .map((e) => e.name);
  const labelPath = labels ?? join(src, 'LOC_val_solution.csv');
  const byId = new Map<string, string>();
  if (/\.txt$/i.test(labelPath)) {
    // The ground-truth file holds 1-based ILSVRC2012_IDs in the devkit's synset order, not the sorted-wnid order.
    if (!synsets) {
      throw new FxpqError(
        `${labelPath} holds devkit class ids, which need the devkit's synset order; pass --synsets FILE (the 1000 WordNet ids in ILSVRC2012_ID order), or use LOC_val_solution.csv.`,
        'io',
      );
    }
    const order = (await readText(synsets, 'a synset list')).map((l) => l.trim().split(/[\s,]+/)[0]!);
    const ids = await readLines(labelPath, 'a ground-truth file');
    ids.forEach(({ text: id, line }, i) => {
      const wnid = order[Number(id) - 1];
      if (!wnid)
        throw new FxpqError(
          `${labelPath}, line ${line}: class id ${id} is outside the ${order.length} synsets of ${synsets}.`,
          'io',
        );
      byId.set(`ILSVRC2012_val_${String(i + 1).padStart(8, '0')}`, wnid);
    });
  } else {
    const lines = await readLines(labelPath, 'LOC_val_solution.csv');
    lines.forEach(({ text, line }, i) => {
      const [imageId, prediction] = csvFields(text);
      if (i === 0 && imageId === 'ImageId') return;
      const wnid = prediction?.split(/\s+/)[0];
      if (!imageId || !wnid)
        throw new FxpqError(`${labelPath}, line ${line}: expected "ImageId,PredictionString".`, 'io');
      byId.set(imageId, wnid);
    });
  }
  const out: Candidate[] = [];
  for (const f of files) {
    const wnid = byId.get(basename(f, extname(f)));
    if (wnid) out.push({ abs: join(src, f), classId: wnid });
    else skipped.push({ path: f, reason: `no label in ${basename(labelPath)}` });
  }
  return out;
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i]!, i);
      }
    }),
  );
  return results;
}

/** Build a dataset index from a source folder or CSV (nothing written; see `importDataset`). */
export async function scanDataset(srcArg: string, options: ImportOptions = {}): Promise<Dataset> {
  const src = resolve(srcArg);
  const layout =
    !options.layout || options.layout === 'auto' ? await detectLayout(src, options.labels) : options.layout;
  const skipped: Dataset['skipped'] = [];
  let root = src;
  let candidates: Candidate[];
  if (layout === 'imagefolder') candidates = await scanImageFolder(src, skipped);
  else if (layout === 'imagenet-val') candidates = await scanImagenetVal(src, options.labels, options.synsets, skipped);
  else {
    const csvPath = options.labels ?? ((await stat(src)).isFile() ? src : join(src, 'labels.csv'));
    root = (await stat(src)).isFile() ? dirname(src) : src;
    candidates = await scanCsv(csvPath, root, skipped);
  }

  const classes = options.classes ? await loadClassOption(options.classes) : null;
  const known = classes ? classIndex(classes) : null;

  const checked = await mapLimit(candidates, Math.max(2, availableParallelism() * 2), async (c, i) => {
    const rel = relative(root, c.abs);
    options.onProgress?.(i, candidates.length);
    if (!IMAGE_EXTENSIONS.has(extname(c.abs).toLowerCase()))
      return { rel, reason: `not an image file (extension "${extname(c.abs) || 'none'}")` };
    if (known && !known.has(c.classId))
      return { rel, reason: `class ${c.classId} is not in the class list (${classes!.source})` };
    let bytes: Uint8Array;
    try {
      bytes = await readImageFile(c.abs, root, options.verify !== false);
    } catch (e) {
      if (e instanceof ImageFileError) return { rel, reason: e.reason };
      return { rel, reason: `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})` };
    }
    const image: DatasetImage = {
      path: rel,
      classId: c.classId,
      bytes: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    };
    if (known) image.label = known.get(c.classId)!;
    if (options.verify !== false) {
      try {
        const rgb = await decodeRgb(bytes);
        image.width = rgb.width;
        image.height = rgb.height;
      } catch (e) {
        return { rel, reason: (e as Error).message };
      }
    }
    return { rel, image };
  });

  const images: DatasetImage[] = [];
  const duplicates: [string, string][] = [];
  // The same picture under two labels (two class folders, two CSV labels for copies of one file):
  // neither label can be trusted, so every copy is left out and named.
  const classesByHash = new Map<string, Set<string>>();
  for (const r of checked)
    if ('image' in r && r.image) {
      const set = classesByHash.get(r.image.sha256) ?? new Set<string>();
      classesByHash.set(r.image.sha256, set.add(r.image.classId));
    }
  const byHash = new Map<string, string>();
  const copiesByHash = new Map<string, DatasetImage[]>();
  for (const r of checked) {
    if (!('image' in r) || !r.image) {
      skipped.push({ path: r.rel, reason: (r as { reason: string }).reason });
      continue;
    }
    if (classesByHash.get(r.image.sha256)!.size > 1) {
      copiesByHash.set(r.image.sha256, [...(copiesByHash.get(r.image.sha256) ?? []), r.image]);
      continue;
    }
    const first = byHash.get(r.image.sha256);
    if (first !== undefined) {
      duplicates.push([first, r.image.path]);
      continue;
    }
    byHash.set(r.image.sha256, r.image.path);
    images.push(r.image);
  }
  for (const copies of copiesByHash.values())
    for (const image of copies) {
      const others = copies.filter((c) => c.classId !== image.classId).map((c) => `${c.classId} at ${c.path}`);
      skipped.push({
        path: image.path,
        reason: `conflicting labels: labelled ${image.classId} here, but the same image is labelled ${others.join(', ')}; every copy is left out`,
      });
    }
  if (images.length === 0) {
    throw new FxpqError(
      `${src} holds no readable images${skipped.length ? ` (${skipped.length} files skipped, e.g. ${skipped[0]!.path}: ${skipped[0]!.reason})` : ''}.`,
      'io',
    );
  }
  const dataset: Dataset = {
    format: 'fxpq-dataset',
    version: 1,
    root,
    layout,
    classes,
    images,
    skipped,
    duplicates,
    split: null,
  };
  dataset.split = makeSplit(dataset, options.calib, options.eval, options.seed ?? 0);
  return dataset;
}

/** Per-image class ids -> label indices under the default class order (for the recorded split). */
function defaultLabels(dataset: Dataset): number[] {
  const list = dataset.classes ?? sortedFolderClasses(dataset.images.map((i) => i.classId));
  const index = classIndex(list);
  return dataset.images.map((i) => index.get(i.classId) ?? -1);
}

export function makeSplit(
  dataset: Dataset,
  calib: number | undefined,
  evalCount: number | undefined,
  seed: number,
): Split {
  const n = dataset.images.length;
  return stratifiedSplit(defaultLabels(dataset), calib ?? Math.min(1000, Math.floor(n / 2)), evalCount ?? null, seed);
}

/** `fxpq dataset import`: validate, index, optionally copy, and write DIR/dataset.json atomically. */
export async function importDataset(src: string, outDir: string, options: ImportOptions = {}): Promise<Dataset> {
  engineEntry('import');
  const dataset = await scanDataset(src, { ...options, verify: true });
  const out = resolve(outDir);
  if (!options.copy) {
    await writeFileAtomic(join(out, DATASET_FILE), JSON.stringify(dataset, null, 1));
    return dataset;
  }
  const imagesDir = join(out, 'images');
  const previous = await previousCopies(out, imagesDir);
  await mkdir(out, { recursive: true }).catch((e: unknown) => {
    throw describeFsError(e, out, 'the dataset folder');
  });
  // Copies go to a hidden staging folder that becomes images/ in one rename once every file is
  // there: a full disk or a kill never leaves a half-copied images/ under a dataset.json.
  // Staging folders of killed imports into this folder are cleared first.
  for (const name of await readdir(out))
    if (name.startsWith(STAGING_PREFIX)) await rm(join(out, name), { recursive: true, force: true });
  const staging = await mkdtemp(join(out, STAGING_PREFIX));
  try {
    for (const image of dataset.images) {
      const dest = join(staging, image.path);
      await mkdir(dirname(dest), { recursive: true });
      await copyFile(join(dataset.root, image.path), dest).catch((e: unknown) => {
        throw describeFsError(e, join(imagesDir, image.path));
      });
    }
    dataset.root = imagesDir;
    dataset.copied = true;
    if (previous) {
      // An earlier copy import's images/ is swapped out only after the new copies are complete.
      // Not under the staging prefix: the next import clears those wholesale.
      const old = join(out, `.images.replaced-${basename(staging).slice(STAGING_PREFIX.length)}`);
      await rename(imagesDir, old);
      await rename(staging, imagesDir);
      // Only the files the earlier index lists go, by those paths; whatever else is in that folder
      // (files the user put there since) stays, under a name that says what it is.
      await removeListedFiles(old, previous);
      if (!(await removeOwnedIfEmpty(out, basename(old))))
        await rename(old, await freeName(out, 'images.not-copied-by-fxpq'));
    } else await rename(staging, imagesDir);
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw describeFsError(e, imagesDir, 'the copied images');
  }
  await writeFileAtomic(join(out, DATASET_FILE), JSON.stringify(dataset, null, 1));
  return dataset;
}

const STAGING_PREFIX = '.images.partial-';

/** A name `base`, `base-2`, ... free in `dir`. */
async function freeName(dir: string, base: string): Promise<string> {
  for (let i = 1; ; i++) {
    const path = join(dir, i === 1 ? base : `${base}-${i}`);
    if (!(await lstat(path).catch(() => undefined))) return path;
  }
}

/** What deleting an index's files needs of it: the paths it lists (a damaged index lists none). */
const IndexPathsSchema = z.looseObject({ images: z.array(z.looseObject({ path: z.string().min(1) })) });

/**
 * The image paths the dataset.json at `file` lists, read without blocking and size-bounded (a
 * FIFO named dataset.json must not hang a removal), through a schema; undefined when missing,
 * unreadable or not an index.
 */
export async function listedImagePaths(file: string): Promise<string[] | undefined> {
  try {
    const value = JSON.parse(await readRunText(file, 'a dataset index')) as unknown;
    const index = checkDocument(IndexPathsSchema, value, file, 'a dataset index', 'import the dataset again');
    return index.images.map((i) => i.path);
  } catch {
    return undefined;
  }
}

/**
 * Delete, inside `folder`, exactly the files `paths` name (a dataset's copies), then the folders
 * they leave empty, deepest first. Never a folder's contents wholesale: a path leading outside
 * (`..`, absolute, through a link) or naming a folder is skipped, and what the list does not
 * name stays.
 */
export async function removeListedFiles(folder: string, paths: readonly string[]): Promise<void> {
  const folders = new Set<string>();
  for (const rel of paths) {
    const abs = resolve(folder, rel);
    if (isAbsolute(rel) || abs === folder || !isWithin(folder, abs)) continue;
    let real: string | undefined;
    try {
      real = await resolveOwned(folder, rel, 'a copied image');
    } catch {
      continue;
    }
    if (real === undefined) continue;
    const info = await lstat(real).catch(() => undefined);
    if (!info || info.isDirectory()) continue;
    await unlink(real).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw describeFsError(e, real!, 'a copied image');
    });
    for (let up = dirname(relative(folder, abs)); up !== '.' && up !== ''; up = dirname(up)) folders.add(up);
  }
  for (const sub of [...folders].sort((a, b) => b.split(/[\\/]/).length - a.split(/[\\/]/).length))
    await removeOwnedIfEmpty(folder, sub);
}

/**
 * The image paths of an earlier `--copy` import into OUT, which a new copy import may replace:
 * OUT/images is a real folder and OUT/dataset.json carries the copy mark with that root. An
 * in-place import of OUT/images writes the same root without the mark: any images/ not marked
 * is the user's, refused, never overwritten or deleted.
 */
async function previousCopies(out: string, imagesDir: string): Promise<string[] | undefined> {
  const existing = await lstat(imagesDir).catch(() => undefined);
  if (!existing) return undefined;
  let index: z.infer<typeof PreviousCopySchema> | undefined;
  try {
    const file = join(out, DATASET_FILE);
    const value = JSON.parse(await readRunText(file, 'a dataset index')) as unknown;
    index = checkDocument(PreviousCopySchema, value, file, 'a dataset index', 'import the dataset again');
  } catch {
    index = undefined;
  }
  if (existing.isDirectory() && !existing.isSymbolicLink() && index?.copied === true && index.root === imagesDir)
    return index.images.map((i) => i.path);
  throw new FxpqError(
    `${imagesDir} already exists and was not written by an FxPQ copy import; choose another --out, FxPQ does not copy images over files it did not write.`,
    'io',
  );
}

const PreviousCopySchema = IndexPathsSchema.extend({ root: z.string(), copied: z.literal(true) });

/** Whether DIR holds a dataset.json written by `fxpq dataset import`. */
export async function isImportedDataset(dir: string): Promise<boolean> {
  return stat(join(dir, DATASET_FILE)).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** Read DIR/dataset.json; `--data` may also be a raw folder, indexed on the fly (hashes, no decode). */
export async function openDataset(path: string, options: ImportOptions = {}): Promise<Dataset> {
  const file = join(path, DATASET_FILE);
  // No index there (or `path` is a CSV file): a raw folder. An index is read without blocking
  // and size-bounded: a FIFO or a device named dataset.json is refused, never waited on.
  if (!(await lstat(file).catch(() => undefined))) return scanDataset(path, { ...options, verify: false });
  const text = await readRunText(file, 'a dataset index');
  let dataset: Dataset;
  try {
    dataset = JSON.parse(text) as Dataset;
  } catch {
    throw new FxpqError(`${file} is not valid JSON; import the dataset again with fxpq dataset import.`, 'io');
  }
  if (dataset?.format !== 'fxpq-dataset' || !Array.isArray(dataset.images)) {
    throw new FxpqError(
      `${file} is not an FxPQ dataset index; import the dataset again with fxpq dataset import.`,
      'io',
    );
  }
  const checked = DatasetIndexSchema.safeParse(dataset);
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    throw new FxpqError(
      `${file} is damaged or was edited by hand (${issue.path.join('.') || 'the document'}: ${issue.message}); import the dataset again with fxpq dataset import.`,
      'io',
    );
  }
  const n = dataset.images.length;
  for (const part of ['calib', 'eval'] as const)
    if (dataset.split && dataset.split[part].some((i) => i >= n))
      throw new FxpqError(
        `${file} names a ${part} image beyond its ${n} images; import the dataset again with fxpq dataset import.`,
        'io',
      );
  return dataset;
}

/** What a dataset.json must hold before anything reads it (a foreign or edited index is refused in a sentence). */
const DatasetIndexSchema = z.looseObject({
  root: z.string().refine((r) => isAbsolute(r), 'not an absolute folder'),
  layout: z.enum(['imagefolder', 'imagenet-val', 'csv']),
  classes: z
    .looseObject({
      ids: z
        .array(z.string())
        .max(MAX_CLASSES, `more than the ${MAX_CLASSES} classes FxPQ accepts`)
        .refine((ids) => new Set(ids).size === ids.length, 'a class id is listed twice'),
      names: z.array(z.string()).max(MAX_CLASSES, `more than the ${MAX_CLASSES} classes FxPQ accepts`),
      source: z.string(),
    })
    .nullable(),
  images: z.array(
    z.looseObject({
      path: z.string().min(1),
      classId: z.string(),
      label: z.number().int().nonnegative().optional(),
      bytes: z.number().int().nonnegative(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/, 'not a SHA-256'),
      width: z.number().optional(),
      height: z.number().optional(),
    }),
  ),
  skipped: z.array(z.looseObject({ path: z.string(), reason: z.string() })),
  duplicates: z.array(z.tuple([z.string(), z.string()])),
  split: z.union([
    z.null(),
    z.looseObject({
      seed: z.number(),
      calib: z.array(z.number().int().nonnegative()),
      eval: z.array(z.number().int().nonnegative()),
    }),
  ]),
  copied: z.literal(true).optional(),
});

export interface DatasetInfo {
  images: number;
  classes: number;
  perClass: Record<string, number>;
  skipped: { path: string; reason: string }[];
  duplicates: [string, string][];
}

export function datasetInfo(dataset: Dataset): DatasetInfo {
  // No prototype: a class named `constructor` or `__proto__` is a key like any other.
  const perClass = Object.create(null) as Record<string, number>;
  for (const image of dataset.images) perClass[image.classId] = (perClass[image.classId] ?? 0) + 1;
  return {
    images: dataset.images.length,
    classes: Object.keys(perClass).length,
    perClass,
    skipped: dataset.skipped,
    duplicates: dataset.duplicates,
  };
}

/** Where a project keeps a dataset's images, from its project.json entry. */
export interface ImagePlace {
  /** Copied at import: the images are in `<indexDir>/images`, whatever the index says. */
  copied?: boolean;
  /** The project folder: a copy's images folder must really lie inside it. */
  projectDir: string;
  /** The folder holding dataset.json. */
  indexDir: string;
  /** The folder (or CSV file) it was imported from: an in-place dataset's images are there. */
  sourcePath: string;
}

/**
 * The real path of one image for the app's preview: only a path the index lists, only inside
 * the folder the images live in (the project's copy, or the folder the dataset was imported
 * from; an index whose root says otherwise is refused), checked by its real path (no `..`,
 * no absolute path, no link out of the folder). The preview task then shows it only when its
 * bytes have the size and SHA-256 the index records (an index that names another file of the
 * folder, a root of `/` with the source `/`, would need that file's own hash): a hostile
 * dataset.json cannot make the preview show any other image on the disk.
 */
export async function previewImagePath(dataset: Dataset, rel: string, place?: ImagePlace): Promise<string> {
  if (typeof rel !== 'string' || !dataset.images.some((i) => i.path === rel))
    throw new FxpqError(`${String(rel)} is not an image of this dataset.`, 'not-found');
  let root: string;
  if (place?.copied) {
    const images = join(place.indexDir, 'images');
    const real = await resolveOwnedForReading(
      place.projectDir,
      relative(place.projectDir, images),
      'the images folder',
    );
    if (real === undefined) throw new FxpqError(`${images} does not exist; import the dataset again.`, 'not-found');
    root = real;
  } else {
    if (typeof dataset.root !== 'string' || !isAbsolute(dataset.root))
      throw new FxpqError(
        `The index in ${place?.indexDir ?? 'this dataset'} records no image folder; import it again.`,
        'io',
      );
    root = resolve(dataset.root);
    // Imported from a folder: that folder; from a CSV file: the folder holding it.
    const source = resolve(place?.sourcePath ?? root);
    const expected = extname(source).toLowerCase() === '.csv' ? dirname(source) : source;
    if (place && root !== expected)
      throw new FxpqError(
        `The index in ${place.indexDir} says its images are in ${root}, but the dataset was imported from ${place.sourcePath}; its images are not shown. Import it again.`,
        'io',
      );
  }
  let real: string | undefined;
  try {
    real = await resolveOwnedForReading(root, rel, 'the image');
  } catch (e) {
    throw e instanceof FxpqError ? e : describeFsError(e, root, 'a folder');
  }
  if (real === undefined)
    throw new FxpqError(
      `${join(root, rel)} does not exist (deleted or moved since the dataset was imported).`,
      'not-found',
    );
  return real;
}
