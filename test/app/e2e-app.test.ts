/**
 * The whole app in Debian's Chromium (playwright-core) against the web host that `fxpq serve`
 * runs, on the demo: create a project, add the demo model, import the demo images, search
 * (watching the heatmap and the trajectory move), cancel, resume, read the results beside a
 * uniform baseline, export, and find the verified files on disk. A screenshot of every screen
 * goes to test-results/screens/ (FXPQ_SCREENS_DIR to change it).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebHost } from '../../web/server.js';
import { repoRoot } from '../helpers/fixtures.js';
import { buildRenderer, CHROMIUM, launchChromium } from './renderer-under-test.js';

const SCREENS = process.env['FXPQ_SCREENS_DIR'] ?? join(repoRoot, 'test-results', 'screens');
const MODEL = join(repoRoot, 'test', 'fixtures', 'models', 'fmnist_resnet20.onnx');
const IMAGES = join(repoRoot, 'test', 'fixtures', 'fashion-mnist');
const CLASSES = join(repoRoot, 'test', 'fixtures', 'fashion-mnist_classes.txt');
const MINUTE = 60_000;

const points = async (page: Page, test: string): Promise<number> =>
  Number((await page.getAttribute(`[data-test=${test}]`, 'data-points')) ?? '0');

describe.skipIf(!existsSync(CHROMIUM))('the app end to end in chromium over the web host', () => {
  let host: WebHost;
  let context: BrowserContext;
  let page: Page;
  let work: string;
  const consoleErrors: string[] = [];
  let shot = 0;

  async function screenshot(name: string): Promise<void> {
    // Every control on the screen has a label a screen reader can announce.
    const unlabelled = await page.evaluate<string[]>(`
      [...document.querySelectorAll('input, select, textarea')]
        .filter((el) => !el.labels?.length && !el.getAttribute('aria-label'))
        .map((el) => el.outerHTML.slice(0, 120))`);
    expect(unlabelled, name).toEqual([]);
    shot++;
    await page.screenshot({ path: join(SCREENS, `${String(shot).padStart(2, '0')}-${name}.png`), fullPage: false });
  }

  async function nav(screen: string): Promise<void> {
    await page.click(`[data-test=nav-${screen}]`);
    await page.waitForSelector(`[data-test=view-${screen}]`);
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'fxpq-e2e-'));
    // Isolated recent-projects list and tensor cache (read when the services need them).
    process.env['FXPQ_CONFIG_DIR'] = join(work, 'config');
    process.env['FXPQ_CACHE_DIR'] = join(work, 'cache');
    mkdirSync(SCREENS, { recursive: true });
    const rendererDir = await buildRenderer(join(work, 'renderer'));
    const { startWebHost } = await import('../../web/server.js');
    host = await startWebHost({ rendererDir });
    context = await launchChromium(join(work, 'chromium'), { width: 1280, height: 860 });
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
  }, 5 * MINUTE);

  afterAll(async () => {
    await context?.close();
    await host?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('opens with the token moved out of the address bar', async () => {
    await page.goto(host.url);
    await expect.poll(() => page.textContent('[data-test=version]')).toMatch(/\(web\)/);
    expect(page.url()).not.toContain('token=');
    // The token survives a reload (sessionStorage).
    await page.reload();
    await expect.poll(() => page.textContent('[data-test=version]')).toMatch(/\(web\)/);
    await page.waitForSelector('[data-test=events-offline]', { state: 'detached' });
  });

  it('creates a project, browsing folders in the in-app folder browser', async () => {
    await page.click('[data-test=create-dir-browse]');
    await page.waitForSelector('[data-test=file-browser]');
    await page.selectOption('[data-test=browser-root]', repoRoot);
    await page.click('[data-test=browser-entry][data-name=test]');
    await expect.poll(() => page.inputValue('[data-test=browser-path]')).toBe(join(repoRoot, 'test'));
    await page.waitForSelector('[data-test=browser-entry][data-name=fixtures]');
    await page.click('[data-test=browser-cancel]');
    await page.waitForSelector('[data-test=file-browser]', { state: 'detached' });
    await page.fill('[data-test=create-dir]', join(work, 'project'));
    await page.fill('[data-test=create-name]', 'Demo project');
    await page.click('[data-test=create-project]');
    await page.waitForSelector('[data-test=view-model]');
    expect(await page.textContent('[data-test=current-project]')).toContain('Demo project');
    expect(existsSync(join(work, 'project', 'project.json'))).toBe(true);
  });

  it('adds the demo model, and says plainly why a bad one is refused', async () => {
    await page.fill('[data-test=model-path]', join(work, 'missing.onnx'));
    await page.click('[data-test=add-model]');
    expect(await (await page.waitForSelector('[data-test=error]')).textContent()).toContain('missing.onnx');
    // A browser does not tell the page where a dropped file lives: the app says to browse instead.
    const dropped = await page.evaluateHandle(`(() => {
      const d = new DataTransfer();
      d.items.add(new File(['onnx'], 'dropped.onnx'));
      return d;
    })()`);
    await page.dispatchEvent('[data-test=model-drop]', 'drop', { dataTransfer: dropped });
    expect(await page.textContent('[data-test=drop-note]')).toMatch(/dropped.onnx.*Browse/);
    await page.fill('[data-test=model-path]', MODEL);
    await page.click('[data-test=add-model]');
    await page.waitForSelector('[data-test=model-details]', { timeout: 2 * MINUTE });
    expect(await page.locator('[data-test=layer-row]').count()).toBeGreaterThan(10);
    expect(await page.textContent('[data-test=model-totals]')).toMatch(/parameters/);
    await screenshot('model');
  });

  it('imports the demo images with their class list', async () => {
    await nav('datasets');
    await page.fill('[data-test=dataset-source]', IMAGES);
    await page.dispatchEvent('[data-test=dataset-source]', 'change');
    await expect.poll(() => page.textContent('[data-test=dataset-guess]').catch(() => '')).toMatch(/imagefolder/);
    await page.fill('[data-test=dataset-classes]', CLASSES);
    await page.click('[data-test=import-dataset]');
    await page.waitForSelector('[data-test=dataset-details]', { timeout: 3 * MINUTE });
    expect(await page.textContent('[data-test=dataset-summary]')).toMatch(/300 images in 10 classes/);
    await expect.poll(() => points(page, 'class-histogram')).toBe(10);
    await expect.poll(() => page.locator('[data-test=thumb] img').count(), { timeout: MINUTE }).toBeGreaterThan(20);
    const bag = await page.locator('[data-test=filter-class] option', { hasText: 'bag' }).getAttribute('value');
    await page.selectOption('[data-test=filter-class]', bag!);
    await page.selectOption('[data-test=filter-split]', 'calib');
    await expect.poll(() => page.locator('[data-test=thumb]').count()).toBeLessThan(30);
    expect(await page.locator('[data-test=thumb]').count()).toBeGreaterThan(0);
    await page.locator('[data-test=thumb]').first().click();
    await page.waitForSelector('[data-test=preview] img');
    await page.selectOption('[data-test=filter-split]', '');
    await screenshot('datasets');
  });

  it(
    'searches with a live heatmap and trajectory, is cancelled, and resumes to the end',
    async () => {
      await nav('quantize');
      await page.fill('[data-test=run-budget]', '1');
      await page.fill('[data-test=run-calib]', '60');
      await page.fill('[data-test=run-eval]', '40');
      await page.fill('[data-test=run-name]', 'search-b1');
      await page.click('[data-test=start-run]');
      await page.waitForSelector('[data-test=live]');

      // Sample what the screen shows while the search runs.
      const states = new Set<string>();
      const heat = new Set<number>();
      const traj = new Set<number>();
      const deadline = Date.now() + 6 * MINUTE;
      while (Date.now() < deadline) {
        const key = (await page.getAttribute('[data-test=live]', 'data-progress')) ?? '';
        if (key) states.add(key);
        if (await page.$('[data-test=heatmap]')) heat.add(await points(page, 'heatmap'));
        traj.add(await points(page, 'trajectory'));
        if (states.size >= 6 && Math.max(...traj) >= 150 && Math.max(...heat) > 0) break;
        // A search that ended already leaves nothing to cancel: stop sampling and let the checks say so.
        if ((await page.getAttribute('[data-test=live]', 'data-state')) === 'done') break;
        await page.waitForTimeout(250);
      }
      await page.locator('[data-test=live]').scrollIntoViewIfNeeded();
      await screenshot('quantize-running');
      expect(states.size, [...states].join(' | ')).toBeGreaterThanOrEqual(6);
      expect(Math.max(...heat)).toBeGreaterThan(0);
      expect(traj.size).toBeGreaterThanOrEqual(2);
      expect(await page.textContent('[data-test=log]')).not.toBe('');

      const row = page.locator('[data-test=run-row]', { hasText: 'search-b1' });
      await row.locator('[data-test=cancel-run]').click();
      await expect
        .poll(() => row.getAttribute('data-state'), { timeout: 2 * MINUTE })
        .toMatch(/^(cancelled|interrupted)$/);
      await row.locator('[data-test=resume-run]').waitFor({ timeout: MINUTE });
      const before = await points(page, 'trajectory');
      expect(before).toBeGreaterThan(0);

      await row.locator('[data-test=resume-run]').click();
      await expect.poll(() => row.getAttribute('data-state'), { timeout: MINUTE }).toMatch(/^(queued|running)$/);
      await expect.poll(() => row.getAttribute('data-state'), { timeout: 10 * MINUTE, interval: 1000 }).toBe('done');
      await expect.poll(() => points(page, 'trajectory')).toBeGreaterThanOrEqual(before);
      await page.locator('[data-test=live]').scrollIntoViewIfNeeded();
      await screenshot('quantize-done');
    },
    15 * MINUTE,
  );

  it(
    'shows the results beside a uniform 8-bit baseline',
    async () => {
      // The baseline: every structure at 8 bits, same images.
      await page.check('[data-test=mode-uniform]');
      await page.fill('[data-test=run-uniform]', '8');
      await page.fill('[data-test=run-name]', 'uniform-8');
      await page.click('[data-test=start-run]');
      const row = page.locator('[data-test=run-row]', { hasText: 'uniform-8' });
      await expect.poll(() => row.getAttribute('data-state'), { timeout: 5 * MINUTE, interval: 1000 }).toBe('done');

      await page.locator('[data-test=run-row]', { hasText: 'search-b1' }).locator('[data-test=open-results]').click();
      await page.waitForSelector('[data-test=view-results] [data-test=run-summary]');
      expect(await page.textContent('[data-test=top1]')).toMatch(/%.*\/.*%/);
      expect(await page.textContent('[data-test=reduction]')).toMatch(/x/);
      expect(await page.textContent('[data-test=drop]')).toMatch(
        /-?\d+\.\d+ points \(standard error \d+\.\d+; \d+ lost,\s+\d+ gained\)/,
      );
      // The demo's search (150 calibration images) rounds to nearest.
      expect(await page.textContent('[data-test=view-results] [data-test=rounding]')).toMatch(/to nearest/);
      expect(await page.textContent('[data-test=final-check]')).toMatch(/drop -?\d+\.\d+, bound -?\d+\.\d+\s+at z = 2/);
      expect(await page.locator('[data-test=format-row]').count()).toBeGreaterThan(10);
      await expect.poll(() => points(page, 'histogram')).toBeGreaterThan(0);
      await expect.poll(() => points(page, 'results-trajectory')).toBeGreaterThan(0);
      // An activation's histogram, with its format.
      const act = await page
        .locator('[data-test=histogram-tensor] option', { hasText: /^\s*A / })
        .nth(1)
        .getAttribute('value');
      await page.selectOption('[data-test=histogram-tensor]', act!);
      await expect
        .poll(
          async () =>
            (await page.$('[data-test=histogram-format]'))?.textContent() ??
            (await page.$('[data-test=view-results] [data-test=error]'))?.textContent(),
          { timeout: 2 * MINUTE, interval: 500 },
        )
        .toContain(`A ${act!.replace(/^[WBA]:/, '')}`);
      await expect.poll(() => points(page, 'histogram')).toBeGreaterThan(0);
      if (await page.$('[data-test=confusion]')) await expect.poll(() => points(page, 'confusion')).toBe(100);

      const uniform = await page
        .locator('[data-test=results-compare] option', { hasText: 'uniform-8' })
        .getAttribute('value');
      await page.selectOption('[data-test=results-compare]', uniform!);
      await expect.poll(() => page.locator('[data-test=run-summary]').count()).toBe(2);
      // The uniform baseline beside it rounds optimized (a uniform run's default).
      expect(
        await page
          .locator('[data-test=run-summary]', { hasText: 'uniform-8' })
          .locator('[data-test=rounding]')
          .textContent(),
      ).toMatch(/optimized \(GPTQ; \d+ structure formats/);
      await screenshot('results');

      // The window checks the run with the integer-only executor, as `fxpq evaluate --engine int` does.
      await page.selectOption('[data-test=evaluate-engine]', 'int');
      await page.click('[data-test=evaluate-start]');
      await expect
        .poll(async () => (await page.$('[data-test=evaluate-result]'))?.textContent(), {
          timeout: 2 * MINUTE,
          interval: 500,
        })
        .toMatch(/\d+ images: float top-1 [\d.]+ %, fixed point top-1 [\d.]+ %/);
    },
    8 * MINUTE,
  );

  it(
    'exports the run and finds the verified files on disk',
    async () => {
      // The screens are reachable from the keyboard.
      await page.focus('[data-test=nav-export]');
      await page.keyboard.press('Enter');
      await page.waitForSelector('[data-test=view-export]');
      const search = await page
        .locator('[data-test=export-run] option', { hasText: 'search-b1' })
        .getAttribute('value');
      await page.selectOption('[data-test=export-run]', search!);
      await page.click('[data-test=start-export]');
      const item = page.locator('[data-test=export-item]').first();
      await expect.poll(() => item.getAttribute('data-state'), { timeout: 8 * MINUTE, interval: 1000 }).toBe('done');
      await item.locator('[data-test=export-files]').waitFor();
      expect(await item.locator('[data-test=c-flash]').textContent()).toMatch(/B/);
      expect(await item.locator('[data-test=c-ram]').textContent()).toMatch(/B/);
      expect(await item.locator('[data-test=c-memory]').textContent()).toMatch(/arena/);
      const out = (await item.locator('[data-test=export-out]').textContent())!.trim();
      const names = (await item
        .locator('[data-test=export-file]')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-name')))) as string[];
      expect(names.length).toBeGreaterThan(2);
      for (const name of names) expect(statSync(join(out, name!)).size, name!).toBeGreaterThan(0);
      const all = readdirSync(out, { recursive: true, encoding: 'utf8' });
      expect(all).toEqual(expect.arrayContaining(['model.qdq.onnx', 'model.fxpq', 'report.html']));
      expect(all.some((f) => f.endsWith('.c'))).toBe(true);
      // The browser cannot open files on the server: the app shows where the report is.
      await item.locator('[data-test=open-report]').click();
      expect(await page.textContent('[data-test=shown-path]')).toContain('report.html');
      // ...and links to it where the web host serves it (with the access cookie, not the address).
      const report = await page.request.get(
        new URL((await page.getAttribute('[data-test=shown-link]', 'href'))!, page.url()).href,
      );
      expect(report.status()).toBe(200);
      expect(await report.text()).toMatch(/<html/i);
      const source = await page.request.get(
        new URL(
          (await item.locator('[data-test=file-link]', { hasText: '.c' }).first().getAttribute('href'))!,
          page.url(),
        ).href,
      );
      expect(await source.text()).toContain('#include');
      await screenshot('export');
    },
    10 * MINUTE,
  );

  it('renames and removes projects, and renders without console errors', async () => {
    await nav('projects');
    await page.fill('[data-test=rename-input]', 'Demo');
    await page.click('[data-test=rename-project]');
    await expect.poll(() => page.textContent('[data-test=current-project]')).toContain('Demo');
    // A second project, removed with its files after a confirmation.
    const scratch = join(work, 'scratch-project');
    await page.fill('[data-test=create-dir]', scratch);
    await page.fill('[data-test=create-name]', 'Scratch');
    await page.click('[data-test=create-project]');
    await page.waitForSelector('[data-test=view-model]');
    await nav('projects');
    const row = page.locator('[data-test=recent-item]', { hasText: 'Scratch' });
    await row.locator('[data-test=recent-remove]').click();
    await row.locator('[data-test=confirm-delete-files]').check();
    await row.locator('[data-test=confirm-remove]').click();
    await expect.poll(() => page.locator('[data-test=recent-item]', { hasText: 'Scratch' }).count()).toBe(0);
    expect(existsSync(join(scratch, 'project.json'))).toBe(false);
    await page.locator('[data-test=recent-item]', { hasText: 'Demo' }).locator('[data-test=recent-open]').click();
    await page.waitForSelector('[data-test=view-model]');
    await nav('projects');
    expect(await page.textContent('[data-test=recent]')).toContain('Demo');
    await screenshot('projects');
    expect(consoleErrors).toEqual([]);
  });

  it('follows the OS into dark mode, charts included', async () => {
    const background = () => page.evaluate<string>('getComputedStyle(document.body).backgroundColor');
    const light = await background();
    await page.emulateMedia({ colorScheme: 'dark' });
    await expect.poll(background).not.toBe(light);
    await nav('results');
    const option = (select: string, name: string) =>
      page.locator(`[data-test=${select}] option`, { hasText: name }).getAttribute('value');
    await page.selectOption('[data-test=results-run]', (await option('results-run', 'search-b1'))!);
    await page.selectOption('[data-test=results-compare]', (await option('results-compare', 'uniform-8'))!);
    await expect.poll(() => points(page, 'histogram'), { timeout: MINUTE }).toBeGreaterThan(0);
    await expect.poll(() => points(page, 'results-trajectory')).toBeGreaterThan(0);
    await screenshot('results-dark');
    await page.emulateMedia({ colorScheme: 'light' });
  });
});
