/**
 * `fxpq serve`: the same renderer in a browser, like Netron or Jupyter. Listens on
 * 127.0.0.1 only; every API call and the event stream need the random token printed in the
 * URL. The first page load with that token moves it into an HttpOnly, SameSite=Strict cookie
 * and redirects to the address without it, so it leaves the address bar and the history.
 * Requests whose Host is not this loopback address (DNS rebinding), whose Origin is another
 * site, or whose browser says they come from another site (`Sec-Fetch-Site`, sent even where
 * Origin is not) are refused; pages carry a Content-Security-Policy that forbids framing.
 * `/files` serves only real files inside the real `exports/` folder of a known project, asked for
 * by absolute path, and only the names an export writes (report.html, report.json, the models,
 * c/): never as a script or an SVG, and in a sandbox (an opaque origin that cannot call /api).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { createServices, dispatchApiCall, type Services } from '../services/api.js';
import { refuseEngineOnMainThread } from '../services/engine-thread.js';
import { isWithin, resolveOwnedForReading } from '../services/owned-paths.js';
import type { AppEvent } from '../api/contract.js';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};

/**
 * What `/files` sends with an exported file: a project may come from anyone (git, a zip), and
 * its exports/ folder may hold a hostile report.html. `sandbox` gives the page an opaque origin
 * (no scripts, no calls to /api with the cookie), and nothing but inline styles and data: images
 * loads in it.
 */
const FILES_HEADERS = {
  ...SECURITY_HEADERS,
  'content-security-policy': "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
};

/**
 * The content type of a file `/files` serves, by its path inside exports/ (`<id>/report.html`),
 * or undefined: only the names an export writes, never as a script or an SVG image.
 */
export function exportedFileType(rel: string): string | undefined {
  const parts = rel.split(sep);
  if (parts.length < 2 || parts.some((p) => p === '' || p === '.' || p === '..')) return undefined;
  const name = parts.slice(1).join('/');
  if (name === 'report.html') return 'text/html; charset=utf-8';
  if (name === 'report.json') return 'application/json';
  if (name === 'model.qdq.onnx' || name === 'model.fxpq') return 'application/octet-stream';
  if (/^c\/[^/]+\.[ch]$/.test(name) || name === 'c/Makefile') return 'text/plain; charset=utf-8';
  if (/^c\/eval\/[^/]+$/.test(name))
    return /\.([ch]|txt)$/.test(name) || name === 'c/eval/Makefile'
      ? 'text/plain; charset=utf-8'
      : 'application/octet-stream';
  return undefined;
}

export interface WebHost {
  server: Server;
  url: string;
  token: string;
  services: Services;
  close(): Promise<void>;
}

export interface WebHostOptions {
  /** The built renderer (electron-vite's out/renderer). */
  rendererDir: string;
  port?: number;
  token?: string;
  /** Services to serve (default: a fresh set for this host). */
  services?: Services;
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readBody(req: IncomingMessage, limit = 1 << 20): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  headers: Record<string, string> = SECURITY_HEADERS,
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': type, ...headers });
  res.end(body);
}

const COOKIE = 'fxpq_token';

function cookieToken(req: IncomingMessage): string {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === COOKIE) return value.join('=');
  }
  return '';
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  send(res, status, 'application/json', JSON.stringify({ error: { code, message } }));
}

/**
 * The browser's own word that a request comes from another site (`cross-site`) or from
 * another origin of this machine's site (`same-site`: another port of 127.0.0.1, where the
 * SameSite cookie is still sent). Browsers send it where they send no Origin (a GET from an
 * <img>, a form, a top-level navigation), so the cookie alone never authorizes those.
 */
function fromAnotherSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  return site === 'cross-site' || site === 'same-site';
}

/**
 * The address a token-bearing page load is sent on to without its token: always a path of
 * this server (one leading '/'), never `//host/` or `/\host/`, which a browser reads as
 * another host.
 */
export function redirectTarget(url: URL): string {
  return `/${url.pathname.replace(/^[/\\]+/, '')}${url.search}`;
}

/**
 * The real location of `wanted` when it is a file inside the `exports/` folder of a known
 * project, that folder and the file both checked by their real paths (an `exports` link to
 * /etc, or a link inside exports/ to /etc/shadow, serves nothing); undefined otherwise.
 */
async function exportedFile(services: Services, wanted: string): Promise<{ real: string; type: string } | undefined> {
  for (const project of await services.projects.recent()) {
    try {
      const exportsDir = await resolveOwnedForReading(project.path, 'exports', 'the exports folder');
      if (exportsDir === undefined) continue;
      // The path as the app knows it (under the project's path) or as it really lies.
      for (const base of new Set([resolve(project.path, 'exports'), exportsDir])) {
        if (wanted === base || !isWithin(base, wanted)) continue;
        const rel = relative(base, wanted);
        const type = exportedFileType(rel);
        if (type === undefined) continue;
        const real = await resolveOwnedForReading(exportsDir, rel);
        // A link inside exports/ named report.html that leads to another file there is that file.
        if (real !== undefined && exportedFileType(relative(exportsDir, real)) === type) return { real, type };
      }
    } catch {
      // Not inside this project's own exports (or unreadable): try the next one.
    }
  }
  return undefined;
}

export async function startWebHost(options: WebHostOptions): Promise<WebHost> {
  const token = options.token ?? randomBytes(24).toString('hex');
  const services = options.services ?? createServices({ host: 'web' });
  // This process serves the UI: engine work here would stall every request.
  refuseEngineOnMainThread();
  const root = normalize(options.rendererDir);
  const streams = new Set<ServerResponse>();
  let origin = '';

  const allowedHost = (req: IncomingMessage): boolean => {
    const host = req.headers.host ?? '';
    return (
      host === origin.slice('http://'.length) ||
      host === origin.slice('http://'.length).replace('127.0.0.1', 'localhost')
    );
  };
  const allowedOrigin = (req: IncomingMessage): boolean => {
    const o = req.headers.origin;
    return o === undefined || o === origin || o === origin.replace('127.0.0.1', 'localhost');
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!allowedHost(req))
      return sendError(res, 421, 'wrong-host', 'This server answers only on its own loopback address.');
    let url: URL;
    let pathname: string;
    try {
      url = new URL(req.url ?? '/', origin);
      pathname = decodeURIComponent(url.pathname);
    } catch {
      return sendError(res, 400, 'bad-request', 'The request address is malformed.');
    }
    // The token from the header, the query (EventSource cannot set headers) or the cookie.
    const authorized = (): boolean =>
      [
        (req.headers.authorization ?? '').replace(/^Bearer /, ''),
        url.searchParams.get('token') ?? '',
        cookieToken(req),
      ].some((given) => given !== '' && sameToken(given, token));
    if ((pathname.startsWith('/api/') || pathname === '/files') && fromAnotherSite(req))
      return sendError(res, 403, 'forbidden', 'Requests from other sites are refused.');
    if (pathname.startsWith('/api/')) {
      if (!allowedOrigin(req)) return sendError(res, 403, 'forbidden', 'Requests from other sites are refused.');
      if (pathname === '/api/events') {
        if (req.method !== 'GET' || !authorized())
          return sendError(res, 403, 'forbidden', 'Missing or wrong access token.');
        res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream', connection: 'keep-alive' });
        res.write('retry: 2000\n\n');
        streams.add(res);
        let unsubscribe = (): void => undefined;
        unsubscribe = services.jobs.subscribe((e: AppEvent) => {
          // A client that stops reading (a suspended tab) is dropped, not buffered without end:
          // its EventSource reconnects and starts again from a fresh snapshot.
          if (!res.write(`id: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`) && res.writableLength > 1 << 20) {
            unsubscribe();
            res.end();
          }
        });
        const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
        keepAlive.unref();
        req.on('close', () => {
          clearInterval(keepAlive);
          unsubscribe();
          streams.delete(res);
        });
        return;
      }
      if (req.method !== 'POST' || !authorized())
        return sendError(res, 403, 'forbidden', 'Missing or wrong access token.');
      let args: unknown;
      try {
        args = JSON.parse((await readBody(req)) || '[]');
      } catch {
        args = undefined;
      }
      if (!Array.isArray(args))
        return sendError(res, 400, 'bad-request', 'The request body must be a JSON array of arguments.');
      const reply = await dispatchApiCall(services.api, pathname.slice('/api/'.length), args);
      return send(res, 200, 'application/json', JSON.stringify(reply));
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 405, 'bad-request', 'Only GET here.');
    if (pathname === '/files') {
      // A browser cannot open files on this machine: exported files (report.html above all) are
      // served from the exports/ folder of a project this app knows, to the token's holder only.
      if (!authorized()) return sendError(res, 403, 'forbidden', 'Missing or wrong access token.');
      const asked = url.searchParams.get('path') ?? '';
      // Only an absolute path: a relative one would be read against this server's working folder.
      if (asked === '' || asked.includes('\0') || !isAbsolute(asked)) return send(res, 404, 'text/plain', 'Not found');
      const found = await exportedFile(services, resolve(asked));
      if (found === undefined) return send(res, 404, 'text/plain', 'Not found');
      try {
        if (!(await stat(found.real)).isFile()) return send(res, 404, 'text/plain', 'Not found');
        return send(res, 200, found.type, await readFile(found.real), FILES_HEADERS);
      } catch {
        return send(res, 404, 'text/plain', 'Not found');
      }
    }
    const fromUrl = url.searchParams.get('token');
    if (fromUrl !== null && sameToken(fromUrl, token)) {
      url.searchParams.delete('token');
      res.writeHead(303, {
        ...SECURITY_HEADERS,
        location: redirectTarget(url),
        'set-cookie': `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`,
      });
      res.end();
      return;
    }
    const rel = pathname === '/' ? 'index.html' : pathname.slice(1);
    const file = normalize(join(root, rel));
    if (rel.includes('\0') || (file !== root && !file.startsWith(root + sep)))
      return send(res, 404, 'text/plain', 'Not found');
    try {
      // Only plain files: a FIFO or device under the folder must not hang the request.
      if (!(await stat(file)).isFile()) return send(res, 404, 'text/plain', 'Not found');
      send(res, 200, MIME[extname(file)] ?? 'application/octet-stream', await readFile(file));
    } catch {
      send(res, 404, 'text/plain', 'Not found');
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      // A request must never take the server down; its client gets a plain 500.
      try {
        sendError(res, 500, 'internal', 'The request failed.');
      } catch {
        res.destroy();
      }
    });
  });
  server.on('clientError', (_e, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  origin = `http://127.0.0.1:${port}`;
  return {
    server,
    token,
    services,
    url: `${origin}/?token=${token}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of streams) s.end();
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}
