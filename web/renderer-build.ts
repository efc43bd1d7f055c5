import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../services/app-info.js';

/** The built renderer folder, building it once with electron-vite when it is missing. */
export async function ensureRendererBuilt(log: (line: string) => void): Promise<string> {
  const root = projectRoot();
  const dir = join(root, 'out', 'renderer');
  if (existsSync(join(dir, 'index.html'))) return dir;
  log('Building the user interface once (electron-vite build)...');
  const { build } = await import('electron-vite');
  await build({ root, logLevel: 'warn' });
  return dir;
}
