/**
 * A run folder's ownership, lock and completion (issue 30, items 5, 11 and 14).
 *
 * Ownership: `quantize --out RUN` writes RUN/.fxpq-run (a marker with a format version) before
 * anything else, and writes, overwrites or deletes in RUN only when RUN is new or empty, holds
 * the marker, or is a run made before the marker existed: a folder holding nothing but the names
 * FxPQ writes (RUN_FILES, rounding/ with its .bin files, FxPQ's temporary files) and at least one
 * of them recognisably FxPQ's (a config.json of format "fxpq-run", a checkpoint whose text starts
 * with its first key `{"identity"`, an activations.json of the run's shape, or, where config.json
 * is absent, a trajectory.jsonl that is empty or starts with a trajectory step). The operating
 * system's own files (.DS_Store, ._*, Thumbs.db, desktop.ini) are ignored, never deleted. Any other
 * non-empty folder is refused before a byte is written. Deleting (--restart, a fresh search over
 * an old run) removes those names one by one through owned-paths.ts, never the folder: a file
 * the user put into RUN stays.
 *
 * Lock: RUN/.fxpq-run.lock, through file-lock.ts (pid, host, start time, command, boot id and
 * the holder's start time; a lock whose process is gone is taken over). A second quantize on the
 * same RUN is refused with who holds it and the lock file to delete if that process is gone. It
 * is released on success, error and cancel (and on process exit); a SIGKILL leaves it stale.
 * evaluate --run and export read a run only when no live lock is on it.
 *
 * Completion: report.json is written last (atomically), after config.json; every write session
 * removes the old report.json first, so a run without report.json is unfinished and the readers
 * say so, and a report never pairs with the config of another attempt.
 */
import { lstat, readdir, readFile, rmdir, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { FxpqError } from '../native-workers/engine/errors.js';
import { describeFsError, writeFileAtomic } from './files.js';
import { type FileLock, lockHolder, type LockInfo, releaseOwnProcessLockFile, takeLock } from './file-lock.js';
import { resolveOwned } from './owned-paths.js';
import { ActivationStatsSchema, RunConfigSchema, RunMarkerSchema, TrajectoryStepSchema } from './run-schemas.js';

export const RUN_MARKER = '.fxpq-run';
export const RUN_LOCK = '.fxpq-run.lock';
export const RUN_ROUNDING_DIR = 'rounding';

/** The files FxPQ writes at the top of a run folder (besides the marker, the lock and rounding/). */
export const RUN_FILES = [
  'config.json',
  'report.json',
  'checkpoint.json',
  'checkpoint.prev.json',
  'trajectory.jsonl',
  'activations.json',
] as const;

/** writeFileAtomic's temporary files, prepareOutputFolder's probe, the lock's temporary files. */
const TEMPORARY = [
  /^\.[^/]+\.[0-9a-f]{12}\.tmp$/,
  /^\.fxpq-write-test-[0-9a-f]{8}$/,
  /^\.fxpq-run\.lock\.[0-9a-f]{12}(\.stale)?$/,
];
const isTemporary = (name: string): boolean => TEMPORARY.some((r) => r.test(name));
const isToolName = (name: string): boolean =>
  (RUN_FILES as readonly string[]).includes(name) ||
  name === RUN_MARKER ||
  name === RUN_LOCK ||
  name === RUN_ROUNDING_DIR ||
  isTemporary(name);
/**
 * Files an operating system leaves in any folder it shows (Finder's .DS_Store and AppleDouble
 * ._* files, Windows Explorer's Thumbs.db and desktop.ini): they say nothing about whose folder
 * it is, so they neither make a run foreign nor are deleted.
 */
export const isOsMetadata = (name: string): boolean =>
  name === '.DS_Store' ||
  name.startsWith('._') ||
  ['thumbs.db', 'ehthumbs.db', 'desktop.ini'].includes(name.toLowerCase());

/** Inside rounding/: the rounded weights (optimized-rounding.ts) and their temporary files. */
const isRoundingName = (name: string): boolean => /^[0-9a-f]{24}\.bin$/.test(name) || isTemporary(name);

const MARKER_TEXT = (): string =>
  JSON.stringify({ format: 'fxpq-run-folder', version: 1, created: new Date().toISOString() }) + '\n';

async function readSmall(path: string): Promise<string | undefined> {
  try {
    const info = await lstat(path);
    if (!info.isFile() || info.size > 64 * 2 ** 20) return undefined;
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

function parses(text: string | undefined, check: (v: unknown) => boolean): boolean {
  if (text === undefined) return false;
  try {
    return check(JSON.parse(text));
  } catch {
    return false;
  }
}

/** What RUN is: absent or empty, marked as FxPQ's, a run made before the marker, or foreign (with a name that shows it). */
export async function runFolderKind(
  dir: string,
): Promise<{ kind: 'empty' | 'marked' | 'legacy' } | { kind: 'foreign'; reason: string }> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'empty' };
    throw describeFsError(e, dir, 'a folder');
  }
  names = names.filter((n) => !isOsMetadata(n));
  const meaningful = names.filter((n) => !isTemporary(n) && n !== RUN_LOCK);
  if (meaningful.length === 0) return { kind: 'empty' };
  if (names.includes(RUN_MARKER)) {
    const text = await readSmall(join(dir, RUN_MARKER));
    if (parses(text, (v) => RunMarkerSchema.safeParse(v).success)) return { kind: 'marked' };
    return { kind: 'foreign', reason: `${join(dir, RUN_MARKER)} is not the marker FxPQ writes` };
  }
  const foreign = names.find((n) => !isToolName(n));
  if (foreign !== undefined) return { kind: 'foreign', reason: `it holds ${foreign}, which FxPQ does not write` };
  if (names.includes(RUN_ROUNDING_DIR)) {
    const info = await lstat(join(dir, RUN_ROUNDING_DIR));
    if (!info.isDirectory()) return { kind: 'foreign', reason: `its ${RUN_ROUNDING_DIR} is not a folder` };
    const inner = (await readdir(join(dir, RUN_ROUNDING_DIR))).find((n) => !isRoundingName(n) && !isOsMetadata(n));
    if (inner !== undefined)
      return { kind: 'foreign', reason: `it holds ${RUN_ROUNDING_DIR}/${inner}, which FxPQ does not write` };
  }
  const config = await readSmall(join(dir, 'config.json'));
  if (parses(config, (v) => RunConfigSchema.safeParse(v).success)) return { kind: 'legacy' };
  for (const name of ['checkpoint.json', 'checkpoint.prev.json']) {
    // The checkpoint's writer puts `identity` first; a torn one is still recognisably FxPQ's.
    const text = await readSmall(join(dir, name));
    if (text !== undefined && /^\s*\{\s*"identity"\s*:/.test(text)) return { kind: 'legacy' };
  }
  const activations = await readSmall(join(dir, 'activations.json'));
  if (parses(activations, (v) => ActivationStatsSchema.safeParse(v).success)) return { kind: 'legacy' };
  // A search killed before its first checkpoint: nothing but FxPQ's names, no config.json, and a
  // trajectory that is empty (the file is created before the first step) or whose first line is
  // a trajectory step. Such a folder holds nothing a user could lose that FxPQ did not write.
  if (!names.includes('config.json') && names.includes('trajectory.jsonl')) {
    const trajectory = await readSmall(join(dir, 'trajectory.jsonl'));
    const first = trajectory?.split('\n')[0]?.trim();
    if (
      trajectory !== undefined &&
      (trajectory.trim() === '' || parses(first, (v) => TrajectoryStepSchema.safeParse(v).success))
    )
      return { kind: 'legacy' };
  }
  return {
    kind: 'foreign',
    reason: `none of its files (${meaningful.slice(0, 4).join(', ')}) is recognisably an FxPQ run's`,
  };
}

/**
 * Make sure `dir` may be written as a run: refuse a non-empty folder that is not an FxPQ run
 * (nothing in it was changed), then write the marker (a legacy run gets one too).
 */
export async function claimRunFolder(dir: string, flag = '--out'): Promise<void> {
  const abs = resolve(dir);
  const kind = await runFolderKind(abs);
  if (kind.kind === 'foreign')
    throw new FxpqError(
      `${abs} is not empty and is not an FxPQ run folder (${kind.reason}); nothing in it was changed or deleted. Choose a new or empty folder for ${flag}.`,
      'io',
    );
  if (kind.kind !== 'marked') await writeFileAtomic(join(abs, RUN_MARKER), MARKER_TEXT());
}

/**
 * Delete run files by name (`RUN_FILES` entries, or `rounding` for the rounded weights): only
 * regular files (or links, unlinked), only inside `dir` by their real paths; in rounding/ only
 * the .bin files FxPQ names, and the folder itself only when that leaves it empty.
 */
export async function removeRunFiles(dir: string, names: readonly string[]): Promise<void> {
  for (const name of names) {
    if (name === RUN_ROUNDING_DIR) {
      const real = await resolveOwned(dir, RUN_ROUNDING_DIR, 'the rounded weights');
      if (real === undefined) continue;
      const info = await lstat(real);
      if (info.isSymbolicLink()) {
        await unlink(real);
        continue;
      }
      if (!info.isDirectory()) continue;
      for (const inner of await readdir(real))
        if (isRoundingName(inner)) await removeFile(dir, `${RUN_ROUNDING_DIR}/${inner}`);
      if ((await readdir(real)).length === 0) await rmdir(real);
      continue;
    }
    await removeFile(dir, name);
  }
}

async function removeFile(dir: string, rel: string): Promise<void> {
  const real = await resolveOwned(dir, rel, 'this run file');
  if (real === undefined) return;
  const info = await lstat(real);
  if (!info.isFile() && !info.isSymbolicLink())
    throw new FxpqError(`${join(dir, rel)} is not a file FxPQ wrote (a folder or a device); it was left alone.`, 'io');
  await unlink(real);
}

// ---------------------------------------------------------------------------------------------
// The lock (services/file-lock.ts): RUN/.fxpq-run.lock.

function holderSentence(dir: string, info: LockInfo | undefined): string {
  const remove = `delete ${join(dir, RUN_LOCK)} if that process is gone`;
  if (!info)
    return `${dir} is in use by another FxPQ process (its lock ${RUN_LOCK} cannot be read); wait for it, or ${remove}.`;
  const elsewhere = info.host !== hostname() ? ` on ${info.host}` : '';
  return `${dir} is in use by ${info.command}, pid ${info.pid}${elsewhere}, since ${info.started}; wait for it to finish, or ${remove}.`;
}

/** The live holder of RUN's lock, if any (a stale lock is none). */
export async function runLockHolder(dir: string): Promise<LockInfo | 'unreadable' | undefined> {
  return lockHolder(join(resolve(dir), RUN_LOCK));
}

/** Refuse to read a run that a live process is writing, with the lock's sentence. */
export async function assertRunNotLocked(dir: string): Promise<void> {
  const holder = await runLockHolder(dir);
  if (holder === undefined) return;
  const abs = resolve(dir);
  throw new FxpqError(
    `${holderSentence(abs, holder === 'unreadable' ? undefined : holder).replace(/; wait for it.*$/, '')}; read it when that run has finished.`,
    'io',
  );
}

export type RunLock = FileLock;

/** Take RUN's lock for `command` (e.g. "fxpq quantize"): exclusive; a stale lock is taken over. */
export async function lockRunFolder(dir: string, command = 'fxpq quantize'): Promise<RunLock> {
  const abs = resolve(dir);
  const path = join(abs, RUN_LOCK);
  return takeLock(
    path,
    command,
    (info) => new FxpqError(holderSentence(abs, info), 'io'),
    (e) => describeFsError(e, abs, 'the run folder'),
  );
}

/**
 * Remove RUN's lock when this process's own thread that held it is gone (a job worker ended by
 * force after a cancel it did not answer). Only a lock of this pid on this host is removed.
 */
export async function releaseOwnProcessLock(dir: string): Promise<void> {
  await releaseOwnProcessLockFile(join(resolve(dir), RUN_LOCK));
}
