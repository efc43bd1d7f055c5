/**
 * A run's lock after a reboot or a container restart, and old runs with the operating system's
 * files in them (issue 30): a lock whose pid is alive but is not its holder any more (another
 * boot, a reused pid, this very process) is stale; .DS_Store and friends do not make a run foreign.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimRunFolder, lockRunFolder, RUN_LOCK, runFolderKind, runLockHolder } from '../../services/run-folder.js';

/** What /proc says (undefined where it is not there): the boot, and field 22 of a process's stat. */
const probe = (read: () => string): string | undefined => {
  try {
    return read();
  } catch {
    return undefined;
  }
};
const bootId = () => probe(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
const processStart = (pid: number) =>
  probe(() => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
  });
const lockProbes = { bootId, processStart };

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-run-lock-'));
let child: ChildProcess;
beforeAll(async () => {
  // A live process that is not this one and holds no lock.
  child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 120000)'], { stdio: 'ignore' });
  await new Promise((r) => child.once('spawn', r));
});
afterAll(() => {
  child.kill();
  rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
function runWithLock(lock: Record<string, unknown>): { dir: string; lock: string } {
  const dir = join(tmp, `run-${n++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, RUN_LOCK), JSON.stringify(lock) + '\n');
  return { dir, lock: join(dir, RUN_LOCK) };
}
const base = () => ({ host: hostname(), started: '2020-01-01T00:00:00.000Z', command: 'fxpq quantize' });

describe('a stale lock of a live pid (after a reboot or a container restart)', () => {
  it("records the boot id and the holder's start time where /proc has them", async () => {
    const dir = join(tmp, 'fresh');
    mkdirSync(dir);
    const lock = await lockRunFolder(dir);
    const text = JSON.parse(readFileSync(join(dir, RUN_LOCK), 'utf8')) as Record<string, unknown>;
    expect(text['pid']).toBe(process.pid);
    if (lockProbes.bootId() !== undefined) expect(text['boot']).toBe(lockProbes.bootId());
    if (lockProbes.processStart(process.pid) !== undefined)
      expect(text['pidStart']).toBe(lockProbes.processStart(process.pid));
    // Held by this process: honoured, even though its pid is our own.
    expect(await runLockHolder(dir)).toMatchObject({ pid: process.pid });
    await expect(lockRunFolder(dir)).rejects.toThrow(
      `; wait for it to finish, or delete ${join(dir, RUN_LOCK)} if that process is gone.`,
    );
    await lock.release();
    expect(existsSync(join(dir, RUN_LOCK))).toBe(false);
  });

  it("takes over an old-format lock with this process's own pid that this process does not hold", async () => {
    const { dir } = runWithLock({ ...base(), pid: process.pid });
    expect(await runLockHolder(dir)).toBeUndefined();
    const lock = await lockRunFolder(dir);
    await lock.release();
  });

  it('takes over a lock of a live pid from another boot', async () => {
    if (lockProbes.bootId() === undefined) return;
    const { dir } = runWithLock({ ...base(), pid: child.pid, boot: '00000000-0000-0000-0000-000000000000' });
    expect(await runLockHolder(dir)).toBeUndefined();
    const lock = await lockRunFolder(dir);
    await lock.release();
  });

  it('takes over a lock of a live pid that started at another time (a reused pid)', async () => {
    if (lockProbes.processStart(child.pid!) === undefined) return;
    const { dir } = runWithLock({ ...base(), pid: child.pid, boot: lockProbes.bootId(), pidStart: '1' });
    expect(await runLockHolder(dir)).toBeUndefined();
    const lock = await lockRunFolder(dir);
    await lock.release();
  });

  it('honours a live holder (new and old lock formats), naming the lock file to delete', async () => {
    const now = new Date().toISOString();
    for (const extra of [
      { boot: lockProbes.bootId(), pidStart: lockProbes.processStart(child.pid!) },
      {}, // A lock written before these fields existed: still read, pid alive, honoured.
    ]) {
      const { dir, lock } = runWithLock({ ...base(), started: now, pid: child.pid, ...extra });
      expect(await runLockHolder(dir)).toMatchObject({ pid: child.pid });
      await expect(lockRunFolder(dir)).rejects.toThrow(
        `${dir} is in use by fxpq quantize, pid ${child.pid}, since ${now}; wait for it to finish, or delete ${lock} if that process is gone.`,
      );
    }
  });
});

describe("old runs with the operating system's files in them", () => {
  const litter = ['.DS_Store', '._config.json', 'Thumbs.db', 'desktop.ini'];
  it('recognises a pre-marker run holding .DS_Store, ._*, Thumbs.db and desktop.ini, and leaves them', async () => {
    const dir = join(tmp, 'littered');
    mkdirSync(join(dir, 'rounding'), { recursive: true });
    writeFileSync(join(dir, 'checkpoint.json'), '{"identity": {}}');
    for (const name of litter) writeFileSync(join(dir, name), 'os');
    writeFileSync(join(dir, 'rounding', '.DS_Store'), 'os');
    expect(await runFolderKind(dir)).toEqual({ kind: 'legacy' });
    await claimRunFolder(dir);
    for (const name of litter) expect(existsSync(join(dir, name))).toBe(true);
    expect(existsSync(join(dir, 'rounding', '.DS_Store'))).toBe(true);
  });

  it('recognises a run killed before anything but an empty trajectory.jsonl (no config.json)', async () => {
    const dir = join(tmp, 'killed-early');
    mkdirSync(dir);
    writeFileSync(join(dir, 'trajectory.jsonl'), '');
    writeFileSync(join(dir, '.DS_Store'), 'os');
    expect(await runFolderKind(dir)).toEqual({ kind: 'legacy' });
  });

  it('still refuses a folder whose trajectory.jsonl is not FxPQ’s, or with a name FxPQ does not write', async () => {
    const dir = join(tmp, 'not-a-trajectory');
    mkdirSync(dir);
    writeFileSync(join(dir, 'trajectory.jsonl'), '{"x": 1}\n');
    expect((await runFolderKind(dir)).kind).toBe('foreign');
    const other = join(tmp, 'with-notes');
    mkdirSync(other);
    writeFileSync(join(other, 'trajectory.jsonl'), '');
    writeFileSync(join(other, 'notes.txt'), 'mine');
    expect((await runFolderKind(other)).kind).toBe('foreign');
  });
});
