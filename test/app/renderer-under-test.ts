/** The renderer built from the current sources into a folder of its own (never a stale out/), for the browser tests. */
import { join } from 'node:path';
import { repoRoot } from '../helpers/fixtures.js';

export async function buildRenderer(outDir: string): Promise<string> {
  const { build } = await import('vite');
  const vue = (await import('@vitejs/plugin-vue')).default;
  await build({
    configFile: false,
    root: join(repoRoot, 'renderer'),
    base: './',
    plugins: [vue()],
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true, chunkSizeWarningLimit: 4096 },
  });
  return outDir;
}
