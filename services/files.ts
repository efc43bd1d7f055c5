/** File access for the services: errors a user can act on, and writes that never leave half a file. */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { FxpqError } from '../native-workers/engine/errors.js';

/** Read a whole file, turning system errors into one sentence that names the file. */
/** `what` names the expected kind with its article: "an ONNX model file". */
export async function readUserFile(path: string, what = 'a file'): Promise<Uint8Array> {
  try {
    const info = await stat(path);
    if (info.isDirectory()) throw new FxpqError(`${path} is a folder, not ${what}.`, 'io');
    return await readFile(path);
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
