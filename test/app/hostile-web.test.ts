/**
 * Hostile input against the web host and the image preview (issue 30, items 7 and 12): an
 * `exports` folder that is a link to /etc, links inside exports/, token redirects that would
 * leave for another host, cookie requests that the browser marks as cross-site without an
 * Origin, and dataset indexes that point the preview at images outside the dataset.
 */
import { createServer, request, type ServerResponse } from 'node:http';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices } from '../../services/api.js';
import type { Dataset } from '../../services/datasets.js';
import { JobManager } from '../../services/jobs.js';
import { closePools } from '../../services/pool.js';
import { ProjectService } from '../../services/projects.js';
import { redirectTarget, startWebHost, type WebHost } from '../../web/server.js';
import { modelPath, repoRoot } from '../helpers/fixtures.js';
import { CHROMIUM, launchChromium } from './renderer-under-test.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-hostile-web-'));
process.env['FXPQ_CACHE_DIR'] = join(tmp, 'cache');
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

const call = async (method: string, args: unknown): Promise<{ result?: unknown; error?: { message: string } }> =>
  (await fetch(new URL(`/api/${method}`, base), {
    method: 'POST',
    headers: { authorization: `Bearer ${host.token}` },
    body: JSON.stringify(args),
  }).then((r) => r.json())) as { result?: unknown; error?: { message: string } };

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

describe('web host against hostile projects and requests', () => {
  it('serves nothing through an exports folder that is a link out of the project, or a link inside it', async () => {
    const auth = { authorization: `Bearer ${host.token}` };
    const files = (path: string) => raw(`/files?path=${encodeURIComponent(path)}`, auth);
    // A project as it would come from a zip: exports -> /etc.
    const evil = join(tmp, 'evil');
    expect((await call('createProject', [evil, 'evil'])).error).toBeUndefined();
    rmSync(join(evil, 'exports'), { recursive: true });
    symlinkSync('/etc', join(evil, 'exports'));
    for (const path of [join(evil, 'exports', 'passwd'), join(evil, 'exports', 'shadow'), '/etc/passwd', '/etc/shadow'])
      expect((await files(path)).status).toBe(404);

    // A real exports folder holding a link to a file outside it, and a folder link out of it.
    const good = join(tmp, 'good');
    await call('createProject', [good, 'good']);
    mkdirSync(join(good, 'exports', 'e1'), { recursive: true });
    writeFileSync(join(good, 'exports', 'e1', 'report.html'), '<!doctype html><title>report</title>');
    writeFileSync(join(good, 'project-secret.txt'), 'secret');
    symlinkSync('/etc/passwd', join(good, 'exports', 'e1', 'passwd.html'));
    symlinkSync(join(good, 'project-secret.txt'), join(good, 'exports', 'e1', 'secret.html'));
    symlinkSync('/etc', join(good, 'exports', 'etc'));
    expect((await files(join(good, 'exports', 'e1', 'report.html'))).status).toBe(200);
    expect((await files(join(good, 'exports', 'e1', 'passwd.html'))).status).toBe(404);
    expect((await files(join(good, 'exports', 'e1', 'secret.html'))).status).toBe(404);
    expect((await files(join(good, 'exports', 'etc', 'passwd'))).status).toBe(404);
    expect((await files(join(good, 'exports', 'e1', '..', '..', 'project-secret.txt'))).status).toBe(404);
    expect((await files(join(good, 'exports'))).status).toBe(404);
  });

  it('redirects a token-bearing address only to a path of this server', async () => {
    for (const [path, location] of [
      ['/.//evil.test/', '/evil.test/'],
      ['/./\\evil.test/', '/evil.test/'],
      ['//evil.test/', '/'],
      ['/%2F%2Fevil.test/', '/%2F%2Fevil.test/'],
      ['/a/b?x=1&', '/a/b?x=1'],
    ] as const) {
      const sep = path.includes('?') ? '' : '?';
      const r = await raw(`${path}${sep}token=${host.token}`);
      expect(r.status, path).toBe(303);
      expect(r.headers['location'], path).toBe(location);
      expect(String(r.headers['location'])).not.toMatch(/^[/\\]{2}|^[a-z]+:/i);
    }
    const at = (path: string) => redirectTarget(new URL(path, 'http://127.0.0.1:1'));
    expect(at('http://127.0.0.1:1////\\\\x.test/y')).toBe('/x.test/y');
  });

  it('refuses cookie requests the browser marks as from another site, even without an Origin', async () => {
    const first = await raw(`/?token=${host.token}`);
    const cookie = String(first.headers['set-cookie']).split(';')[0]!;
    const auth = { cookie };
    expect((await raw('/api/appInfo', auth, 'POST')).status).toBe(200);
    for (const site of ['cross-site', 'same-site']) {
      const headers = { ...auth, 'sec-fetch-site': site };
      expect((await raw('/api/appInfo', headers, 'POST')).status, site).toBe(403);
      expect((await raw('/api/events', headers)).status, site).toBe(403);
      expect((await raw(`/files?path=${encodeURIComponent('/etc/hostname')}`, headers)).status, site).toBe(403);
    }
    for (const site of ['same-origin', 'none'])
      expect((await raw('/api/appInfo', { ...auth, 'sec-fetch-site': site }, 'POST')).status, site).toBe(200);
  });
});

describe('image preview against hostile dataset indexes', () => {
  it('shows only images the index lists, inside the folder the project keeps them in', async () => {
    const projects = new ProjectService(new JobManager(), join(tmp, 'config-preview'));
    const dir = join(tmp, 'preview-project');
    const images = join(tmp, 'preview-images');
    for (const c of ['0', '1']) cpSync(join(repoRoot, 'test/fixtures/mnist', c), join(images, c), { recursive: true });
    const secret = join(tmp, 'secret.png');
    writeFileSync(
      secret,
      await sharp({ create: { width: 8, height: 8, channels: 3, background: 'red' } })
        .png()
        .toBuffer(),
    );
    await projects.create(dir, 'preview');
    await projects.addModel(dir, modelPath('mnist-8')!);
    const inPlace = await projects.importDataset(dir, { source: images, name: 'in place' });
    await projects.jobs.get(inPlace.id)!.result;
    const copied = await projects.importDataset(dir, { source: images, name: 'copied', copy: true });
    await projects.jobs.get(copied.id)!.result;
    const id = 'in-place';
    const indexFile = join(dir, 'datasets', id, 'dataset.json');
    const original = JSON.parse(readFileSync(indexFile, 'utf8')) as Dataset;
    const first = original.images[0]!.path;
    expect((await projects.datasetImage(dir, id, first, 64)).dataUrl).toMatch(/^data:image\/png;base64,/);
    expect((await projects.datasetImage(dir, 'copied', first, 64)).dataUrl).toMatch(/^data:image\/png;base64,/);

    const hostile = (edit: (d: Dataset) => void): void => {
      const d = structuredClone(original);
      edit(d);
      writeFileSync(indexFile, JSON.stringify(d));
    };
    const entry = (path: string) => ({ ...original.images[0]!, path });
    // A listed path that climbs out of the folder.
    hostile((d) => d.images.push(entry('../secret.png')));
    await expect(projects.datasetImage(dir, id, '../secret.png', 64)).rejects.toThrow(/outside/);
    // A listed absolute path.
    hostile((d) => d.images.push(entry(secret)));
    await expect(projects.datasetImage(dir, id, secret, 64)).rejects.toThrow(/outside|does not exist/);
    // The root moved up to the folder holding the secret.
    hostile((d) => {
      d.root = tmp;
      d.images.push(entry('secret.png'));
    });
    await expect(projects.datasetImage(dir, id, 'secret.png', 64)).rejects.toThrow(
      /says its images are in .* but the dataset was imported from/,
    );
    // A link inside the image folder to the secret, listed in the index.
    symlinkSync(secret, join(images, '0', 'link.png'));
    hostile((d) => d.images.push(entry(join('0', 'link.png'))));
    await expect(projects.datasetImage(dir, id, join('0', 'link.png'), 64)).rejects.toThrow(/outside/);
    writeFileSync(indexFile, JSON.stringify(original));

    // A copied dataset whose images folder became a link to the folder of the secret.
    const copiedImages = join(dir, 'datasets', 'copied', 'images');
    renameSync(copiedImages, `${copiedImages}.moved`);
    symlinkSync(tmp, copiedImages);
    const copiedIndex = join(dir, 'datasets', 'copied', 'dataset.json');
    const c = JSON.parse(readFileSync(copiedIndex, 'utf8')) as Dataset;
    c.images.push(entry('secret.png'));
    writeFileSync(copiedIndex, JSON.stringify(c));
    await expect(projects.datasetImage(dir, 'copied', 'secret.png', 64)).rejects.toThrow(/outside/);
  }, 120_000);
});

describe.skipIf(!existsSync(CHROMIUM))('in chromium: a page on another port of 127.0.0.1', () => {
  it('cannot load a project file through /files with the cookie the browser sends it', async () => {
    const dir = join(tmp, 'browser-project');
    await call('createProject', [dir, 'browser']);
    mkdirSync(join(dir, 'exports', 'e1'), { recursive: true });
    const json = join(dir, 'exports', 'e1', 'report.json');
    writeFileSync(json, '{"exported": true}');
    const src = `${base.origin}/files?path=${encodeURIComponent(json)}`;
    // What the host answered to each /files request, by the browser's Sec-Fetch-Site.
    const answered: [string, number][] = [];
    const record = (req: { url?: string; headers: Record<string, unknown> }, res: ServerResponse): void => {
      if (req.url?.startsWith('/files'))
        res.on('finish', () => answered.push([String(req.headers['sec-fetch-site']), res.statusCode]));
    };
    host.server.on('request', record);
    // Another local server (a dev server, a notebook): same site, another origin, no Origin on an <img>.
    const other = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><img id="x" src="${src}">`);
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()));
    const port = (other.address() as { port: number }).port;
    const context = await launchChromium(join(tmp, 'chromium'));
    try {
      const page = await context.newPage();
      await page.goto(host.url); // the cookie is set, the token leaves the address
      const own = await page.evaluate(`fetch(${JSON.stringify(src)}).then((r) => r.status)`);
      expect(own).toBe(200); // the app's own page still gets it
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.evaluate(`new Promise((done) => {
        const img = document.getElementById('x');
        if (img.complete) done(img.naturalWidth);
        img.onload = () => done(img.naturalWidth);
        img.onerror = () => done(-1);
      })`);
      expect(answered).toContainEqual(['same-site', 403]);
      expect(answered.filter(([site]) => site === 'same-site').every(([, status]) => status === 403)).toBe(true);
    } finally {
      await context.close();
      other.close();
      host.server.off('request', record);
    }
  }, 120_000);
});
