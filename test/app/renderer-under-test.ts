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

/** Debian's chromium, or FXPQ_CHROMIUM; the browser tests skip when it is missing. */
export const CHROMIUM = process.env['FXPQ_CHROMIUM'] ?? '/usr/bin/chromium';

/** A headless chromium with a fresh profile, with the flags this closed network needs (spec/environment.md). */
export async function launchChromium(
  profileDir: string,
  viewport?: { width: number; height: number },
): Promise<import('playwright-core').BrowserContext> {
  const { chromium } = await import('playwright-core');
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    ...(viewport ? { viewport } : {}),
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
