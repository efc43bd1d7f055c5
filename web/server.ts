/**
 * `fxpq serve`: the same renderer in a browser, like Netron or Jupyter. Listens on
 * 127.0.0.1 only; every API call needs the random token printed in the URL.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { dispatchApiCall, serviceApi } from '../services/api.js';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
};

export interface WebHost {
  server: Server;
  url: string;
  token: string;
  close(): Promise<void>;
}

export interface WebHostOptions {
  /** The built renderer (electron-vite's out/renderer). */
  rendererDir: string;
  port?: number;
  token?: string;
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

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

export async function startWebHost(options: WebHostOptions): Promise<WebHost> {
  const token = options.token ?? randomBytes(24).toString('hex');
  const api = serviceApi('web');
  const root = normalize(options.rendererDir);

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (url.pathname.startsWith('/api/')) {
        const auth = req.headers.authorization ?? '';
        if (req.method !== 'POST' || !sameToken(auth, `Bearer ${token}`)) {
          send(
            res,
            403,
            'application/json',
            JSON.stringify({ error: { code: 'forbidden', message: 'Missing or wrong access token.' } }),
          );
          return;
        }
        let args: unknown;
        try {
          args = JSON.parse((await readBody(req)) || '[]');
        } catch {
          args = undefined;
        }
        if (!Array.isArray(args)) {
          send(
            res,
            400,
            'application/json',
            JSON.stringify({
              error: { code: 'bad-request', message: 'The request body must be a JSON array of arguments.' },
            }),
          );
          return;
        }
        const reply = await dispatchApiCall(api, url.pathname.slice('/api/'.length), args);
        send(res, 200, 'application/json', JSON.stringify(reply));
        return;
      }
      const rel = url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname.slice(1));
      const file = normalize(join(root, rel));
      if (file !== root && !file.startsWith(root + sep)) {
        send(res, 404, 'text/plain', 'Not found');
        return;
      }
      try {
        send(res, 200, MIME[extname(file)] ?? 'application/octet-stream', await readFile(file));
      } catch {
        send(res, 404, 'text/plain', 'Not found');
      }
    })();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    server,
    token,
    url: `http://127.0.0.1:${port}/?token=${token}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
