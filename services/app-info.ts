import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AppInfo } from '../api/contract.js';

/** The project root: the nearest folder above this module with FxPQ's package.json (works bundled or not). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate) && (JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string }).name === 'fxpq')
      return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('FxPQ cannot find its own package.json.');
    dir = parent;
  }
}

export function appInfo(host: AppInfo['host']): Omit<AppInfo, 'browseRoots'> {
  const pkg = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string };
  return { name: 'FxPQ', version: pkg.version, host };
}
