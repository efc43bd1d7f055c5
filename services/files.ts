/** File access for the services: errors a user can act on, and writes that never leave half a file. */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, basename, join, resolve } from 'node:path';
import { FxpqError } from '../native-workers/engine/errors.js';

/**
 * Read a whole file the user named, turning system errors into one sentence that names the file;
 * `what` names the expected kind with its article: "an ONNX model file". Opened without blocking
 * and checked on the handle: a FIFO or a device named model.onnx would otherwise hang the read
 * or stream forever.
 */
/** ONNX files are protobuf messages, which cannot exceed 2 GB. */
export const MAX_USER_FILE_BYTES = 2 ** 31;

export async function readUserFile(path: string, what = 'a file'): Promise<Uint8Array> {
  return readRegularFile(
    path,
    what,
    MAX_USER_FILE_BYTES,
    (size) => `${path} is ${(size / 2 ** 30).toFixed(1)} GB, more than the 2 GB an ONNX file or a labels file can be.`,
  );
}

/**
 * The bytes of `path`, opened without blocking and read only when it is a regular file of at
 * most `maxBytes` (`tooLarge` words the refusal of a larger one); errors are sentences naming it.
 */
export async function readRegularFile(
  path: string,
  what: string,
  maxBytes: number,
  tooLarge: (size: number) => string,
): Promise<Uint8Array> {
  try {
    const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const info = await file.stat();
      if (info.isDirectory()) throw new FxpqError(`${path} is a folder, not ${what}.`, 'io');
      if (!info.isFile())
        throw new FxpqError(`${path} is not a regular file (a device, pipe or socket), not ${what}.`, 'io');
      if (info.size > maxBytes) throw new FxpqError(tooLarge(info.size), 'io');
      return await file.readFile();
    } finally {
      await file.close();
    }
  } catch (e) {
    throw describeFsError(e, path, what);
  }
}

export function describeFsError(e: unknown, path: string, what = 'a file'): Error {
  if (e instanceof FxpqError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new FxpqError(`${path} does not exist; check the path.`, 'not-found');
  if (code === 'EACCES' || code === 'EPERM')
    return new FxpqError(`${path} cannot be accessed: permission denied.`, 'io');
  if (code === 'EISDIR') return new FxpqError(`${path} is a folder, not ${what}.`, 'io');
  if (code === 'ENOSPC') return new FxpqError(`${path} cannot be written: the disk is full.`, 'io');
  if (code === 'EROFS')
    return new FxpqError(
      `${path} cannot be written: it is on a read-only file system (a read-only mount or medium).`,
      'io',
    );
  return new FxpqError(`${path} cannot be read or written (${code ?? String(e)}).`, 'io');
}

/** Write to a temporary file beside `path`, then rename: readers see the old file or the new one, never a torn one. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw describeFsError(e, path);
  }
}

/** Folders an output must never go into: the file system's root and the system's own trees. */
const SYSTEM_FOLDERS = ['/', '/bin', '/boot', '/dev', '/etc', '/lib', '/lib64', '/proc', '/sbin', '/sys'];

/**
 * Check an output folder before any work: not a file, not a system folder, creatable and
 * writable (a probe file is written and removed). Long jobs call this first, so a bad --out
 * fails in a second instead of after the whole search.
 */
export async function prepareOutputFolder(path: string, what = 'the output folder'): Promise<void> {
  const abs = resolve(path);
  if (SYSTEM_FOLDERS.some((s) => abs === s || (s !== '/' && abs.startsWith(`${s}/`))))
    throw new FxpqError(`${abs} is a system folder; choose another place for ${what}.`, 'io');
  const info = await stat(abs).catch(() => undefined);
  if (info && !info.isDirectory()) throw new FxpqError(`${abs} is a file; ${what} must be a folder.`, 'io');
  const probe = join(abs, `.fxpq-write-test-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(abs, { recursive: true });
    await writeFile(probe, '');
  } catch (e) {
    throw describeFsError(e, abs, what);
  } finally {
    await rm(probe, { force: true });
  }
}

/**
 * Read a JSON document the app wrote (a run's checkpoint, config or report): a missing, torn or
 * wrong-shaped file is one sentence naming it and what to do, never the parser's text.
 */
export async function readJsonDocument<T>(
  path: string,
  what: string,
  isValid: (value: unknown) => boolean = (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
  advice = 'the folder is damaged',
): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw describeFsError(e, path, what);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FxpqError(`${path} (${what}) is not valid JSON, perhaps cut short; ${advice}.`, 'io');
  }
  if (!isValid(value)) throw new FxpqError(`${path} is not ${what}; ${advice}.`, 'io');
  return value as T;
}
