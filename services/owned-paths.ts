/**
 * Paths inside a folder the app owns (a project, a run, an export), checked by their real
 * locations: a project from git or a zip may hold `runs -> ../..`, and a path that reads
 * `runs/documents` must not reach the user's ~/documents. Every delete and every file served
 * from a project goes through here.
 */
import { lstat, realpath, rm, rmdir, unlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { FxpqError } from '../native-workers/engine/errors.js';
import { describeFsError } from './files.js';

/** The refusal of a path that leads outside the folder that owns it (a link, `..`, an absolute path). */
export class OutsideError extends FxpqError {
  constructor(message: string) {
    super(message, 'io');
  }
}

/** True when `inner` is `outer` or below it (both already absolute and real). */
export function isWithin(outer: string, inner: string): boolean {
  const rel = relative(outer, inner);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

async function realOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await realpath(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR')
      return undefined;
    throw e;
  }
}

/**
 * The real location of `root/rel` when it lies inside `root`'s real location, the folder
 * holding it resolved through every link; the last component itself is not followed (a link
 * there is the owned thing, not what it points to). Undefined when it does not exist.
 * Throws an FxpqError naming the path when any part of it leads outside `root`.
 */
export async function resolveOwned(root: string, rel: string, what = 'this file'): Promise<string | undefined> {
  const realRoot = await realpath(resolve(root)).catch((e: unknown) => {
    throw describeFsError(e, resolve(root), 'a folder');
  });
  const target = resolve(realRoot, rel);
  if (!isWithin(realRoot, target) || target === realRoot)
    throw new OutsideError(`${join(root, rel)} is not inside ${root}; ${what} was left alone.`);
  const realParent = await realOrUndefined(dirname(target)).catch((e: unknown) => {
    throw describeFsError(e, dirname(join(root, rel)), 'a folder');
  });
  if (realParent === undefined) return undefined;
  if (!isWithin(realRoot, realParent))
    throw new OutsideError(
      `${join(root, rel)} leads outside ${root} through a link (to ${realParent}); ${what} was left alone.`,
    );
  const real = join(realParent, basename(target));
  try {
    await lstat(real);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw describeFsError(e, join(root, rel));
  }
  return real;
}

/**
 * The real location of `root/rel` for reading, following links to the end: undefined when
 * missing, an FxpqError when the file it reaches is outside `root`'s real location.
 */
export async function resolveOwnedForReading(
  root: string,
  rel: string,
  what = 'this file',
): Promise<string | undefined> {
  const realRoot = await realpath(resolve(root));
  const real = await realOrUndefined(resolve(realRoot, rel));
  if (real === undefined) return undefined;
  if (!isWithin(realRoot, real))
    throw new OutsideError(`${join(root, rel)} leads outside ${root} (to ${real}); ${what} is not read.`);
  return real;
}

/**
 * Delete `root/rel` (a file or a folder, recursively) only when it lies inside `root` by its
 * real path. A link as the last component is unlinked, never followed; links further down a
 * deleted folder are unlinked too (`rm` never follows them). With `ifOutside: 'skip'` a path
 * that leads outside is left alone and reported as 'outside' instead of refused with an
 * OutsideError: a project's own removal goes on past what is not its own.
 */
export async function removeOwned(
  root: string,
  rel: string,
  what = 'this file',
  options: { ifOutside?: 'throw' | 'skip' } = {},
): Promise<'removed' | 'missing' | 'outside'> {
  let real: string | undefined;
  try {
    real = await resolveOwned(root, rel, what);
  } catch (e) {
    if (e instanceof OutsideError && options.ifOutside === 'skip') return 'outside';
    throw e;
  }
  if (real === undefined) return 'missing';
  try {
    const info = await lstat(real);
    if (info.isSymbolicLink()) await unlink(real);
    else await rm(real, { recursive: true, force: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw describeFsError(e, join(root, rel), what);
  }
  return 'removed';
}

/** Remove the folder `root/rel` when it is inside `root` by its real path and empty; anything else stays. */
export async function removeOwnedIfEmpty(root: string, rel: string): Promise<boolean> {
  let real: string | undefined;
  try {
    real = await resolveOwned(root, rel, 'this folder');
  } catch (e) {
    if (e instanceof OutsideError) return false;
    throw e;
  }
  if (real === undefined) return false;
  const info = await lstat(real).catch(() => undefined);
  if (!info?.isDirectory()) return false;
  return rmdir(real).then(
    () => true,
    () => false,
  );
}
