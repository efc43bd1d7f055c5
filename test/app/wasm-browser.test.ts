/**
 * The WebAssembly kernels in a real browser (Debian's chromium; skipped without it): the engine
 * bundled with wasm-browser-entry.ts loads the kernels from the same bytes as Node does and
 * matches the TypeScript kernels there.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/fixtures.js';
import { CHROMIUM, launchChromium } from './renderer-under-test.js';

const work = mkdtempSync(join(tmpdir(), 'fxpq-wasm-browser-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.skipIf(!existsSync(CHROMIUM))('WebAssembly kernels in chromium', () => {
  it('load and give the TypeScript kernels integers', async () => {
    const { build } = await import('vite');
    await build({
      configFile: false,
      logLevel: 'warn',
      build: {
        outDir: join(work, 'out'),
        emptyOutDir: true,
        lib: {
          entry: join(repoRoot, 'test/app/wasm-browser-entry.ts'),
          formats: ['iife'],
          name: 'fxpqWasmEntry',
          fileName: () => 'bundle.js',
        },
      },
    });
    const context = await launchChromium(join(work, 'profile'));
    try {
      const page = await context.newPage();
      await page.setContent('<html><body></body></html>');
      await page.addScriptTag({ content: readFileSync(join(work, 'out', 'bundle.js'), 'utf8') });
      await page.waitForFunction(() => (globalThis as { fxpqWasmCheck?: string }).fxpqWasmCheck !== undefined);
      const result = await page.evaluate(() => (globalThis as { fxpqWasmCheck?: string }).fxpqWasmCheck);
      expect(result).toMatch(/^equal \d+$/);
    } finally {
      await context.close();
    }
  }, 120_000);
});
