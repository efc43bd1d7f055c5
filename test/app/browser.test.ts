/**
 * The real renderer in a real browser (Debian's chromium driven by playwright-core),
 * served by the web host exactly as `fxpq serve` does.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWebHost, type WebHost } from '../../web/server.js';
import { ensureRendererBuilt } from '../../web/renderer-build.js';
import { modelPath } from '../helpers/fixtures.js';

const CHROMIUM = process.env['FXPQ_CHROMIUM'] ?? '/usr/bin/chromium';

describe.skipIf(!existsSync(CHROMIUM))('renderer in chromium over the web host', () => {
  let host: WebHost;
  let context: BrowserContext;

  beforeAll(async () => {
    const rendererDir = await ensureRendererBuilt(() => {});
    host = await startWebHost({ rendererDir });
    context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'fxpq-chromium-')), {
      executablePath: CHROMIUM,
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
  });

  afterAll(async () => {
    await context?.close();
    await host?.close();
  });

  it('inspects a model and shows its layers', async () => {
    const page = await context.newPage();
    await page.goto(host.url);
    await expect.poll(() => page.textContent('[data-test=version]')).toMatch(/\(web\)/);
    await page.fill('[data-test=model-path]', modelPath('mnist-8')!);
    await page.click('[data-test=inspect]');
    await page.waitForSelector('[data-test=report]');
    expect(await page.textContent('[data-test=totals]')).toMatch(/5,994 parameters, 786,560 MACs/);
    expect(await page.locator('tbody tr').count()).toBe(6);
  });

  it('shows an error panel naming the file for a bad model', async () => {
    const bad = join(mkdtempSync(join(tmpdir(), 'fxpq-bad-')), 'broken.onnx');
    writeFileSync(bad, 'not a model');
    const page = await context.newPage();
    await page.goto(host.url);
    await page.fill('[data-test=model-path]', bad);
    await page.click('[data-test=inspect]');
    const error = await page.waitForSelector('[data-test=error]');
    expect(await error.textContent()).toContain('broken.onnx is not a valid ONNX model');
  });

  it('refuses API calls without the access token', async () => {
    const res = await fetch(new URL('/api/appInfo', host.url), { method: 'POST', body: '[]' });
    expect(res.status).toBe(403);
  });
});
