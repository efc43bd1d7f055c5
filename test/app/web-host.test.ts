/**
 * The web host over real HTTP: the job event stream (Server-Sent Events) with its token rule,
 * and requests that must never take the server down or get past its checks.
 */
import { execFileSync } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppEvent } from '../../api/contract.js';
import { createServices } from '../../services/api.js';
import { closePools } from '../../services/pool.js';
import { startWebHost, type WebHost } from '../../web/server.js';
import { modelPath } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-web-'));
let host: WebHost;
let base: URL;

function raw(
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: base.port, path, method, headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

const call = async (
  method: string,
  args: unknown,
): Promise<{ result?: unknown; error?: { code: string; message: string } }> =>
  (await fetch(new URL(`/api/${method}`, base), {
    method: 'POST',
    headers: { authorization: `Bearer ${host.token}` },
    body: JSON.stringify(args),
  }).then((r) => r.json())) as { result?: unknown; error?: { code: string; message: string } };

beforeAll(async () => {
  const renderer = join(tmp, 'renderer');
  mkdirSync(renderer);
  writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>FxPQ</title>');
  host = await startWebHost({
    rendererDir: renderer,
    services: createServices({ host: 'web', configDir: join(tmp, 'config'), browseRoots: [tmp] }),
  });
  base = new URL(host.url);
});
afterAll(async () => {
  await host.close();
  await closePools();
});

describe('web host', () => {
  it('streams job events to a client with the token: a snapshot first, then the events of a new job', async () => {
    const events: AppEvent[] = [];
    const controller = new AbortController();
    const res = await fetch(new URL(`/api/events?token=${host.token}`, base), { signal: controller.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    const pump = (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        buffer += decoder.decode(value);
        let i: number;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const chunk = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const data = chunk.split('\n').find((l) => l.startsWith('data: '));
          if (data) events.push(JSON.parse(data.slice(6)) as AppEvent);
        }
      }
    })();
    const dir = join(tmp, 'project');
    expect((await call('createProject', [dir, 'web'])).result).toMatchObject({ name: 'web' });
    await call('addModel', [dir, modelPath('mnist-8')!]);
    const started = (
      await call('importDataset', [dir, { source: join(process.cwd(), 'test/fixtures/mnist'), name: 'mnist' }])
    ).result as { id: string };
    for (let i = 0; i < 600 && !events.some((e) => e.type === 'finished' && e.job === started.id); i++)
      await new Promise((r) => setTimeout(r, 100));
    controller.abort();
    await pump;
    expect(events[0]!.type).toBe('snapshot');
    const mine = events.filter((e) => e.type !== 'snapshot' && e.job === started.id).map((e) => e.type);
    expect(mine[0]).toBe('queued');
    expect(mine).toContain('progress');
    expect(mine.at(-1)).toBe('finished');
    const project = (await call('openProject', [dir])).result as { datasets: { images: number }[] };
    expect(project.datasets[0]!.images).toBe(100);
  }, 120_000);

  it('refuses the event stream and API calls without the token, and from other sites or hosts', async () => {
    expect((await raw('/api/events')).status).toBe(403);
    expect((await raw(`/api/events?token=${host.token}x`)).status).toBe(403);
    expect((await raw('/api/appInfo', {}, 'POST')).status).toBe(403);
    const foreign = await raw(
      '/api/appInfo',
      { authorization: `Bearer ${host.token}`, origin: 'http://evil.example' },
      'POST',
    );
    expect(foreign.status).toBe(403);
    // DNS rebinding: the right token, but another Host.
    const rebound = await raw('/', { host: 'evil.example' });
    expect(rebound.status).toBe(421);
  });

  it('moves the token from the address into an HttpOnly SameSite=Strict cookie that then authorizes calls', async () => {
    const first = await raw(`/?token=${host.token}`);
    expect(first.status).toBe(303);
    expect(first.headers['location']).toBe('/');
    const cookie = String(first.headers['set-cookie']);
    expect(cookie).toMatch(/^fxpq_token=[0-9a-f]+; HttpOnly; SameSite=Strict; Path=\//);
    const withCookie = await raw('/api/appInfo', { cookie: cookie.split(';')[0]! }, 'POST');
    expect(withCookie.status).toBe(200);
    expect((await raw('/api/appInfo', { cookie: 'fxpq_token=wrong' }, 'POST')).status).toBe(403);
    expect((await raw('/?token=wrong')).status).toBe(200); // a wrong token sets nothing
  });

  it("serves files of a project's exports folder to the token's holder, nothing else", async () => {
    const dir = join(tmp, 'served');
    await call('createProject', [dir, 'served']);
    mkdirSync(join(dir, 'exports', 'e1'), { recursive: true });
    writeFileSync(join(dir, 'exports', 'e1', 'report.html'), '<!doctype html><title>report</title>');
    const auth = { authorization: `Bearer ${host.token}` };
    const page = await raw(`/files?path=${encodeURIComponent(join(dir, 'exports', 'e1', 'report.html'))}`, auth);
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>report</title>');
    expect((await raw(`/files?path=${encodeURIComponent(join(dir, 'project.json'))}`, auth)).status).toBe(404);
    expect((await raw(`/files?path=${encodeURIComponent('/etc/passwd')}`, auth)).status).toBe(404);
    expect((await raw(`/files?path=${encodeURIComponent(join(dir, 'exports', 'e1', 'report.html'))}`)).status).toBe(
      403,
    );
  });

  it('survives malformed requests and answers with security headers', async () => {
    expect((await raw('/%ff')).status).toBe(400);
    expect((await raw('/%E0%A4%A')).status).toBe(400);
    expect((await raw('http://[bad')).status).toBe(400);
    const page = await raw('/');
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    // The server is still up.
    expect((await call('appInfo', [])).result).toMatchObject({ host: 'web' });
  });

  it('validates API arguments with a plain sentence', async () => {
    const bad = await call('inspectModel', [{}]);
    expect(bad.error).toMatchObject({ code: 'bad-request' });
    expect(bad.error!.message).toMatch(/^inspectModel: /);
    expect((await call('startRun', ['/x', { model: 'm', dataset: 'd', budget: -1 }])).error!.code).toBe('bad-request');
    expect((await call('noSuchMethod', [])).error!.code).toBe('unknown-method');
    // A FIFO named like a model answers at once instead of hanging the request.
    const fifo = join(tmp, 'pipe.onnx');
    execFileSync('mkfifo', [fifo]);
    expect((await call('inspectModel', [fifo])).error!.message).toMatch(/pipe\.onnx is not a regular file/);
    expect((await call('listFolder', ['/etc'])).error!.message).toMatch(/outside the folders this app may browse/);
    const listing = (await call('listFolder', [tmp])).result as { entries: { name: string }[] };
    expect(listing.entries.map((e) => e.name)).toContain('renderer');
  });
});
