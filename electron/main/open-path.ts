/**
 * What Electron's "Open folder" and "Open report.html" may hand to the operating system. The
 * path comes from the renderer, which read it from a project.json a project from git or a zip
 * may have written: `shell.openPath` on an arbitrary path would open (on some systems run) any
 * file on the machine, and an HTML file opens in a browser with access to file:// pages. Only a
 * folder whose real location is inside a project folder the app knows (the recent list) is
 * opened, or a file whose real location is exactly `exports/<id>/report.html` of such a
 * project, for an export that its project.json lists (read, never written, here); always by that
 * real location.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { FxpqError } from '../../native-workers/engine/errors.js';
import { isWithin } from '../../services/owned-paths.js';

/** The ids FxPQ gives exports (projects.ts's SAFE_ID). */
const EXPORT_ID = /^(?!\.{1,2}$)[a-z0-9._-]{1,64}$/;

/** Whether `root`'s project.json lists an export `id` (false where it cannot be read). */
async function listsExport(root: string, id: string): Promise<boolean> {
  try {
    const file = join(root, 'project.json');
    const info = await stat(file);
    if (!info.isFile() || info.size > 16 * 2 ** 20) return false;
    const doc = JSON.parse(await readFile(file, 'utf8')) as { exports?: unknown };
    return (
      Array.isArray(doc.exports) &&
      doc.exports.some((x) => typeof x === 'object' && x !== null && (x as { id?: unknown }).id === id)
    );
  } catch {
    return false;
  }
}

/** The real path to open, or an FxpqError saying why `path` is refused. */
export async function openablePath(path: string, projects: string[]): Promise<string> {
  const refuse = (why: string): never => {
    throw new FxpqError(`${path} was not opened: ${why}.`, 'bad-request');
  };
  if (typeof path !== 'string' || !isAbsolute(path)) refuse('only an absolute path inside a project can be opened');
  const real = await realpath(path).catch(() => refuse('it does not exist'));
  const roots: string[] = [];
  for (const p of projects) {
    const r = await realpath(resolve(p)).catch(() => undefined);
    if (r && isWithin(r, real)) roots.push(r);
  }
  if (roots.length === 0) refuse('it is not inside a project this app has open or knows');
  const info = await stat(real);
  if (info.isDirectory()) return real;
  if (info.isFile())
    for (const root of roots) {
      const parts = relative(root, real).split(sep);
      if (
        parts.length === 3 &&
        parts[0] === 'exports' &&
        EXPORT_ID.test(parts[1]!) &&
        parts[2] === 'report.html' &&
        (await listsExport(root, parts[1]!))
      )
        return real;
    }
  return refuse('only a folder, or the report.html of an export its project lists, is opened from the app');
}
