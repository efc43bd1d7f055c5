/**
 * A run folder's ownership, lock and completion (issue 30, items 5, 11 and 14).
 *
 * Ownership: `quantize --out RUN` writes RUN/.fxpq-run (a marker with a format version) before
 * anything else, and writes, overwrites or deletes in RUN only when RUN is new or empty, holds
 * the marker, or is a run made before the marker existed: a folder holding nothing but the names
 * FxPQ writes (RUN_FILES, rounding/ with its .bin files, FxPQ's temporary files) and at least one
 * of them recognisably FxPQ's (a config.json of format "fxpq-run", a checkpoint whose text starts
 * with its first key `{"identity"`, or an activations.json of the run's shape). Any other
 * non-empty folder is refused before a byte is written. Deleting (--restart, a fresh search over
 * an old run) removes those names one by one through owned-paths.ts, never the folder: a file
 * the user put into RUN stays.
 *
 * Lock: RUN/.fxpq-run.lock, created exclusively (a link of a complete temporary file, so it is
 * never seen half written), holds pid, host, start time and command. A second quantize on the
 * same RUN is refused with who holds it; a lock whose pid is dead on this host is stale and
 * taken over. It is released on success, error and cancel (and on process exit); a SIGKILL
 * leaves it stale. evaluate --run and export read a run only when no live lock is on it.
 *
 * Completion: report.json is written last (atomically), after config.json; every write session
 * removes the old report.json first, so a run without report.json is unfinished and the readers
 * say so, and a report never pairs with the config of another attempt.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { link, lstat, readdir, readFile, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { FxpqError } from '../native-workers/engine/errors.js';
import { describeFsError, writeFileAtomic } from './files.js';
import { resolveOwned } from './owned-paths.js';
import { ActivationStatsSchema, RunConfigSchema, RunLockSchema, RunMarkerSchema } from './run-schemas.js';

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
    const inner = (await readdir(join(dir, RUN_ROUNDING_DIR))).find((n) => !isRoundingName(n));
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
// The lock.

interface LockInfo {
  pid: number;
  host: string;
  started: string;
  command: string;
}

/** Locks this process holds (released on exit, whatever ends it short of a kill). */
const held = new Map<string, string>();
let exitHook = false;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function holderSentence(dir: string, info: LockInfo | undefined): string {
  if (!info)
    return `${dir} is in use by another FxPQ process (its lock ${RUN_LOCK} cannot be read); wait for it, or delete ${join(dir, RUN_LOCK)} if no FxPQ process is running.`;
  const elsewhere = info.host !== hostname() ? ` on ${info.host}` : '';
  return `${dir} is in use by ${info.command}, pid ${info.pid}${elsewhere}, since ${info.started}; wait for it to finish${
    elsewhere ? `, or delete ${join(dir, RUN_LOCK)} if that process is gone` : ''
  }.`;
}

function parseLock(text: string | undefined): LockInfo | undefined {
  if (text === undefined) return undefined;
  try {
    const r = RunLockSchema.safeParse(JSON.parse(text));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

/** The live holder of RUN's lock, if any (a stale lock, whose pid is dead on this host, is none). */
export async function runLockHolder(dir: string): Promise<LockInfo | 'unreadable' | undefined> {
  const path = join(resolve(dir), RUN_LOCK);
  if (!existsSync(path)) return undefined;
  const text = await readSmall(path);
  if (text === undefined) return existsSync(path) ? 'unreadable' : undefined;
  const info = parseLock(text);
  if (!info) return 'unreadable';
  if (info.host === hostname() && !alive(info.pid)) return undefined;
  return info;
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

export interface RunLock {
  release(): Promise<void>;
}

/**
 * Take RUN's lock for `command` (e.g. "fxpq quantize"): exclusive; a stale lock is taken over
 * (renamed aside atomically, so of two processes taking it over only one succeeds).
 */
export async function lockRunFolder(dir: string, command = 'fxpq quantize'): Promise<RunLock> {
  const abs = resolve(dir);
  const path = join(abs, RUN_LOCK);
  const text =
    JSON.stringify({ pid: process.pid, host: hostname(), started: new Date().toISOString(), command }) + '\n';
  for (let attempt = 0; attempt < 5; attempt++) {
    const tmp = join(abs, `${RUN_LOCK}.${randomBytes(6).toString('hex')}`);
    try {
      await writeFile(tmp, text, { flag: 'wx' });
    } catch (e) {
      throw describeFsError(e, abs, 'the run folder');
    }
    try {
      try {
        await link(tmp, path);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw e;
        // A file system without hard links: an exclusive create (a kill mid-write leaves it unreadable).
        await writeFile(path, text, { flag: 'wx' });
      }
      held.set(path, text);
      if (!exitHook) {
        exitHook = true;
        process.on('exit', () => {
          for (const [p, t] of held)
            try {
              if (readFileSync(p, 'utf8') === t) unlinkSync(p);
            } catch {
              // Already gone.
            }
        });
      }
      return {
        release: async () => {
          held.delete(path);
          if ((await readSmall(path)) === text) await unlink(path).catch(() => {});
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw describeFsError(e, path, 'the run lock');
    } finally {
      await unlink(tmp).catch(() => {});
    }
    // Held: by a live process (refuse), or stale (take it over).
    const current = await readSmall(path);
    if (current === undefined) continue;
    const info = parseLock(current);
    if (!info || info.host !== hostname() || alive(info.pid)) throw new FxpqError(holderSentence(abs, info), 'io');
    const aside = join(abs, `${RUN_LOCK}.${randomBytes(6).toString('hex')}.stale`);
    try {
      await rename(path, aside);
    } catch {
      continue;
    }
    const moved = await readSmall(aside);
    if (moved !== current) {
      // Another process took it over between the read and the rename: give its lock back.
      await link(aside, path).catch(() => {});
    }
    await unlink(aside).catch(() => {});
  }
  throw new FxpqError(holderSentence(abs, parseLock(await readSmall(path))), 'io');
}

/**
 * Remove RUN's lock when this process's own thread that held it is gone (a job worker ended by
 * force after a cancel it did not answer): the pid in it is still alive, so it would otherwise
 * never read as stale. Only a lock of this pid on this host is removed.
 */
export async function releaseOwnProcessLock(dir: string): Promise<void> {
  const path = join(resolve(dir), RUN_LOCK);
  const info = parseLock(await readSmall(path));
  if (info && info.pid === process.pid && info.host === hostname()) await unlink(path).catch(() => {});
}
