/**
 * The real renderer in a real browser (Debian's chromium driven by playwright-core),
 * served by the web host exactly as `fxpq serve` does: the quick checks. The whole flow
 * (datasets, search, results, export) is in e2e-app.test.ts.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebHost } from '../../web/server.js';
import { modelPath } from '../helpers/fixtures.js';
import { buildRenderer, CHROMIUM, launchChromium } from './renderer-under-test.js';

describe.skipIf(!existsSync(CHROMIUM))('renderer in chromium over the web host', () => {
  let host: WebHost;
  let context: BrowserContext;
  let page: Page;
  let work: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'fxpq-browser-'));
    process.env['FXPQ_CONFIG_DIR'] = join(work, 'config');
    process.env['FXPQ_CACHE_DIR'] = join(work, 'cache');
    const rendererDir = await buildRenderer(join(work, 'renderer'));
    const { startWebHost } = await import('../../web/server.js');
    host = await startWebHost({ rendererDir });
    context = await launchChromium(join(work, 'chromium'));
    page = await context.newPage();
  });

  afterAll(async () => {
    await context?.close();
    await host?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('shows the app and moves the access token out of the address bar', async () => {
    await page.goto(host.url);
    await expect.poll(() => page.textContent('[data-test=version]')).toMatch(/\(web\)/);
    expect(page.url()).not.toContain('token=');
    // Screens that need a project are disabled until one is open.
    expect(await page.isDisabled('[data-test=nav-model]')).toBe(true);
  });

  it('creates a project, adds a model and shows its layers', async () => {
    await page.fill('[data-test=create-dir]', join(work, 'project'));
    await page.click('[data-test=create-project]');
    await page.waitForSelector('[data-test=view-model]');
    await page.fill('[data-test=model-path]', modelPath('mnist-8')!);
    await page.click('[data-test=add-model]');
    await page.waitForSelector('[data-test=model-details]');
    expect(await page.textContent('[data-test=model-totals]')).toMatch(/5,994 parameters, 786,560 MACs/);
    expect(await page.locator('[data-test=layer-row]').count()).toBe(6);
  });

  it('shows an error panel naming the file for a bad model', async () => {
    const bad = join(work, 'broken.onnx');
    writeFileSync(bad, 'not a model');
    await page.fill('[data-test=model-path]', bad);
    await page.click('[data-test=add-model]');
    const error = await page.waitForSelector('[data-test=error]');
    expect(await error.textContent()).toContain('broken.onnx is not a valid ONNX model');
    expect(await error.getAttribute('role')).toBe('alert');
  });

  it('refuses API calls without the access token', async () => {
    const res = await fetch(new URL('/api/appInfo', host.url), { method: 'POST', body: '[]' });
    expect(res.status).toBe(403);
  });
});
