/**
 * `/files` and a hostile project's exports (issue 30): a report.html, a script and an SVG that a
 * project from a zip put into exports/ must not run in the app's origin and call /api with the
 * access cookie. Only the names an export writes are served, in a sandbox, never as a script.
 */
import { request } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices } from '../../services/api.js';
import { closePools } from '../../services/pool.js';
import { startWebHost, type WebHost } from '../../web/server.js';
import { CHROMIUM, launchChromium } from './renderer-under-test.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-web-files-'));
process.env['FXPQ_CACHE_DIR'] = join(tmp, 'cache');
let host: WebHost;
let base: URL;
const project = join(tmp, 'hostile');
const e1 = join(project, 'exports', 'e1');
const pwned = join(tmp, 'pwned');

function raw(path: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: base.port, path, headers: { authorization: `Bearer ${host.token}` } },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}
const files = (path: string) => raw(`/files?path=${encodeURIComponent(path)}`);
const fileUrl = (path: string) => `/files?path=${encodeURIComponent(path)}`;

beforeAll(async () => {
  const renderer = join(tmp, 'renderer');
  mkdirSync(renderer);
  writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>FxPQ</title>');
  host = await startWebHost({
    rendererDir: renderer,
    services: createServices({ host: 'web', configDir: join(tmp, 'config'), browseRoots: [tmp] }),
  });
  base = new URL(host.url);
  const created = (await fetch(new URL('/api/createProject', base), {
    method: 'POST',
    headers: { authorization: `Bearer ${host.token}` },
    body: JSON.stringify([project, 'hostile']),
  }).then((r) => r.json())) as { error?: unknown };
  expect(created.error).toBeUndefined();
  mkdirSync(join(e1, 'c', 'eval'), { recursive: true });
  // The script creates a project through /api with the page's cookie, if it ever runs in the app's origin.
  const attack = `fetch('/api/createProject', { method: 'POST', body: JSON.stringify([${JSON.stringify(pwned)}, 'pwned']) })`;
  writeFileSync(join(e1, 'a.js'), attack);
  writeFileSync(join(e1, 'evil.svg'), `<svg xmlns="http://www.w3.org/2000/svg"><script>${attack}</script></svg>`);
  writeFileSync(
    join(e1, 'report.html'),
    `<!doctype html><title>report</title><script src="${fileUrl(join(e1, 'a.js'))}"></script><script>${attack}</script>`,
  );
  writeFileSync(join(e1, 'report.json'), '{}');
  writeFileSync(join(e1, 'model.fxpq'), 'FXPQ');
  writeFileSync(join(e1, 'c', 'model.c'), 'int x;');
  writeFileSync(join(e1, 'c', 'Makefile'), 'all:');
  writeFileSync(join(e1, 'c', 'eval', 'main.c'), 'int main(void) { return 0; }');
  writeFileSync(join(e1, 'c', 'eval', 'run.js'), attack);
});
afterAll(async () => {
  await host.close();
  await closePools();
  rmSync(tmp, { recursive: true, force: true });
});

describe('/files against a hostile exports folder', () => {
  it('serves report.html in a sandbox with nosniff, and only the names an export writes', async () => {
    const page = await files(join(e1, 'report.html'));
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(
      "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    );
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    for (const [rel, type] of [
      ['report.json', 'application/json'],
      ['model.fxpq', 'application/octet-stream'],
      ['c/model.c', 'text/plain; charset=utf-8'],
      ['c/Makefile', 'text/plain; charset=utf-8'],
      ['c/eval/main.c', 'text/plain; charset=utf-8'],
      ['c/eval/run.js', 'application/octet-stream'],
    ]) {
      const r = await files(join(e1, rel!));
      expect([rel, r.status, r.headers['content-type']]).toEqual([rel, 200, type]);
      expect(r.headers['content-security-policy']).toMatch(/^sandbox; default-src 'none'/);
    }
    for (const rel of ['a.js', 'evil.svg']) expect((await files(join(e1, rel))).status, rel).toBe(404);
  });

  it('refuses a path relative to the server’s working folder', async () => {
    const cwd = process.cwd();
    process.chdir(project);
    try {
      expect((await files(join(e1, 'report.json'))).status).toBe(200);
      expect((await files('exports/e1/report.json')).status).toBe(404);
      expect((await files('./exports/e1/report.html')).status).toBe(404);
    } finally {
      process.chdir(cwd);
    }
  });
});

describe.skipIf(!existsSync(CHROMIUM))('in chromium: a hostile report.html opened from the app', () => {
  it('runs none of its scripts in the app’s origin: no call to /api with the cookie', async () => {
    const context = await launchChromium(join(tmp, 'chromium'));
    try {
      const page = await context.newPage();
      await page.goto(host.url); // the cookie is set
      // The same attack from the app's own page does work: the test would see it.
      await page.goto(new URL(fileUrl(join(e1, 'report.html')), base).href);
      await page.waitForTimeout(1500);
      expect(existsSync(pwned)).toBe(false);
      // The SVG opened directly (not served at all now) runs nothing either.
      await page.goto(new URL(fileUrl(join(e1, 'evil.svg')), base).href);
      await page.waitForTimeout(500);
      expect(existsSync(pwned)).toBe(false);
    } finally {
      await context.close();
    }
  }, 120_000);
});
