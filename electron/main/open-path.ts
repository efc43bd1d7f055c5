/**
 * What Electron's "Open folder" and "Open report.html" may hand to the operating system. The
 * path comes from the renderer, which read it from a project.json a project from git or a zip
 * may have written: `shell.openPath` on an arbitrary path would open (on some systems run) any
 * file on the machine. Only a folder, or an HTML report, whose real location is inside a project
 * folder the app knows (the recent list) is opened, and by that real location.
 */
import { realpath, stat } from 'node:fs/promises';
import { extname, isAbsolute, resolve } from 'node:path';
import { FxpqError } from '../../native-workers/engine/errors.js';
import { isWithin } from '../../services/owned-paths.js';

/** File kinds a project holds that are safe to open with the system's default application. */
const OPENABLE_FILES = new Set(['.html']);

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
    if (r) roots.push(r);
  }
  if (!roots.some((root) => isWithin(root, real))) refuse('it is not inside a project this app has open or knows');
  const info = await stat(real);
  if (!info.isDirectory() && !(info.isFile() && OPENABLE_FILES.has(extname(real).toLowerCase())))
    refuse('only a folder or a report.html of a project is opened from the app');
  return real;
}
