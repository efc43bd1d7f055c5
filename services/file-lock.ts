/**
 * One exclusive lock file, as a run folder (`RUN/.fxpq-run.lock`) and an export
 * (`PARENT/.NAME.fxpq-export.lock`) take it: a complete temporary file hard-linked into place
 * (never seen half written), holding pid, host, start time, command, and where /proc has them
 * the boot id and the holder's own start time, so that a lock left by a process that is gone
 * (a dead pid, another boot, a reused pid) is taken over. Two processes taking over one stale
 * lock: the lock is renamed aside first, so only one succeeds.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, lstat, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { FxpqError } from '../native-workers/engine/errors.js';
import { RunLockSchema } from './run-schemas.js';

export interface LockInfo {
  pid: number;
  host: string;
  started: string;
  command: string;
  /** /proc/sys/kernel/random/boot_id when the lock was taken (absent in older locks, or where unreadable). */
  boot?: string;
  /** The holder's start time, field 22 of /proc/<pid>/stat (absent in older locks, or where unreadable). */
  pidStart?: string;
}

/**
 * Where the lock of an export to `out` lives: beside the folder (PARENT/.NAME.fxpq-export.lock),
 * since the folder itself is replaced as a whole.
 */
export function exportLockPath(out: string): string {
  return join(dirname(out), `.${basename(out)}.fxpq-export.lock`);
}

export interface FileLock {
  release(): Promise<void>;
}

/** Locks this thread holds (released on exit, whatever ends it short of a kill). */
const held = new Map<string, string>();
let exitHook = false;

/** Whether a process of this pid runs on this host (EPERM: it does, as another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Where the system says which boot this is and when a process started (Linux /proc); tests point it elsewhere. */
export const lockProbes = {
  bootId(): string | undefined {
    try {
      return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
    } catch {
      return undefined;
    }
  },
  /** Field 22 of /proc/<pid>/stat: the process's start time in clock ticks after boot. */
  processStart(pid: number): string | undefined {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const start = fields[22 - 3];
      return start !== undefined && /^\d+$/.test(start) ? start : undefined;
    } catch {
      return undefined;
    }
  },
};

/** When this process started (process-wide: the same in its worker threads). */
const processStartedAt = (): number => Date.now() - process.uptime() * 1000;

/**
 * Whether a lock's holder is certainly gone: only for a lock of this host. Its pid is dead; or
 * the machine booted since (another boot id); or its pid now belongs to a process that started
 * at another time (pid reuse after a container restart); or the pid is this very process, which
 * does not hold it, and the lock is older than this process (a lock of an earlier process that
 * had our pid). A lock of this pid taken after this process started is held by another of its
 * threads (a job worker): that one is live.
 */
export function staleLock(path: string, info: LockInfo): boolean {
  if (info.host !== hostname()) return false;
  if (info.boot !== undefined) {
    const boot = lockProbes.bootId();
    if (boot !== undefined && boot !== info.boot) return true;
  }
  if (!processAlive(info.pid)) return true;
  if (info.pidStart !== undefined) {
    const start = lockProbes.processStart(info.pid);
    if (start !== undefined && start !== info.pidStart) return true;
  }
  if (info.pid === process.pid && !held.has(path)) {
    const started = Date.parse(info.started);
    if (!Number.isFinite(started) || started < processStartedAt() - 1000) return true;
  }
  return false;
}

/** A lock file's text: only a regular file of at most 64 KiB (a FIFO or a huge file reads as none). */
export async function readLockText(path: string): Promise<string | undefined> {
  try {
    const info = await lstat(path);
    if (!info.isFile() || info.size > 64 * 1024) return undefined;
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function parseLock(text: string | undefined): LockInfo | undefined {
  if (text === undefined) return undefined;
  try {
    const r = RunLockSchema.safeParse(JSON.parse(text));
    if (!r.success) return undefined;
    const { pid, host, started, command } = r.data;
    const extra = r.data as Record<string, unknown>;
    const info: LockInfo = { pid, host, started, command };
    if (typeof extra['boot'] === 'string') info.boot = extra['boot'];
    if (typeof extra['pidStart'] === 'string') info.pidStart = extra['pidStart'];
    return info;
  } catch {
    return undefined;
  }
}

/** The live holder of the lock at `path`, if any (a stale lock is none). */
export async function lockHolder(path: string): Promise<LockInfo | 'unreadable' | undefined> {
  const text = await readLockText(path);
  if (text === undefined) {
    const exists = await lstat(path).then(
      () => true,
      () => false,
    );
    return exists ? 'unreadable' : undefined;
  }
  const info = parseLock(text);
  if (!info) return 'unreadable';
  return staleLock(path, info) ? undefined : info;
}

/**
 * Take the lock at `path` for `command`: exclusive; a stale lock is taken over. `refusal` words
 * the sentence naming a live holder (undefined: its lock cannot be read); `writeError` the
 * sentence for a folder the lock cannot be written into.
 */
export async function takeLock(
  path: string,
  command: string,
  refusal: (holder: LockInfo | undefined) => FxpqError,
  writeError: (e: unknown) => Error,
): Promise<FileLock> {
  const boot = lockProbes.bootId();
  const pidStart = lockProbes.processStart(process.pid);
  const text =
    JSON.stringify({
      pid: process.pid,
      host: hostname(),
      started: new Date().toISOString(),
      command,
      ...(boot !== undefined ? { boot } : {}),
      ...(pidStart !== undefined ? { pidStart } : {}),
    }) + '\n';
  for (let attempt = 0; attempt < 5; attempt++) {
    const tmp = `${path}.${randomBytes(6).toString('hex')}`;
    try {
      await writeFile(tmp, text, { flag: 'wx' });
    } catch (e) {
      throw writeError(e);
    }
    try {
      try {
        await link(tmp, path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw e;
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
          if ((await readLockText(path)) === text) await unlink(path).catch(() => {});
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw writeError(e);
    } finally {
      await unlink(tmp).catch(() => {});
    }
    // Held: by a live process (refuse), or stale (take it over).
    const current = await readLockText(path);
    if (current === undefined) continue;
    const info = parseLock(current);
    if (!info || !staleLock(path, info)) throw refusal(info);
    const aside = `${path}.${randomBytes(6).toString('hex')}.stale`;
    try {
      await rename(path, aside);
    } catch {
      continue;
    }
    // Another process took it over between the read and the rename: give its lock back.
    if ((await readLockText(aside)) !== current) await link(aside, path).catch(() => {});
    await unlink(aside).catch(() => {});
  }
  throw refusal(parseLock(await readLockText(path)));
}

/**
 * Remove the lock at `path` when it names this process on this host but its thread is gone (a
 * job worker ended by force after a cancel it did not answer): the pid is alive, so it would
 * otherwise never read as stale.
 */
export async function releaseOwnProcessLockFile(path: string): Promise<void> {
  const info = parseLock(await readLockText(path));
  if (info && info.pid === process.pid && info.host === hostname()) await unlink(path).catch(() => {});
}
