import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FxpqError } from '../native-workers/engine/errors.js';
import { projectRoot } from '../services/app-info.js';

/** The built renderer folder, building it once with electron-vite when it is missing. */
export async function ensureRendererBuilt(log: (line: string) => void): Promise<string> {
  const root = projectRoot();
  const dir = join(root, 'out', 'renderer');
  if (existsSync(join(dir, 'index.html'))) return dir;
  log('Building the user interface once (electron-vite build)...');
  let build: (typeof import('electron-vite'))['build'];
  try {
    ({ build } = await import('electron-vite'));
  } catch {
    throw new FxpqError(
      `${dir} is missing and electron-vite, which builds it, is not installed here (an installed package ships the built interface); reinstall FxPQ, or run \`npm run build\` in a checkout.`,
      'not-found',
    );
  }
  await build({ root, logLevel: 'warn' });
  return dir;
}
