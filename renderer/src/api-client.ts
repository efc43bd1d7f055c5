/**
 * The renderer's only door to the rest of the app: an `FxpqBridge`, from the Electron preload
 * (`window.fxpq`) or, in web mode, over HTTP and Server-Sent Events to the local host that
 * served this page (`fxpq serve`).
 */
import type { ApiError, AppEvent, FxpqApi, FxpqBridge } from '../../api/contract';

declare global {
  interface Window {
    fxpq?: FxpqBridge;
  }
}

/** An operation that failed: its message is a plain sentence to show in the error panel. */
export class ApiCallError extends Error {
  readonly code: string;
  constructor(error: ApiError) {
    super(error.message);
    this.code = error.code;
  }
}

/** The plain sentence to show for anything an operation threw. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'object' && e && 'message' in e) return String((e as { message: unknown }).message);
  return String(e);
}

const TOKEN_KEY = 'fxpq.token';

/** The web host's access token: read once from `?token=`, then kept in sessionStorage and out of the address bar. */
export function webToken(): string {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    try {
      sessionStorage.setItem(TOKEN_KEY, fromUrl);
    } catch {
      // Storage may be disabled; the token then lives only in this page.
    }
    url.searchParams.delete('token');
    window.history.replaceState(window.history.state, '', url.pathname + url.search + url.hash);
    return fromUrl;
  }
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

type ConnectionListener = (connected: boolean) => void;

function httpBridge(token: string): FxpqBridge {
  async function call(method: string, given: unknown[]): Promise<unknown> {
    // JSON turns a trailing undefined (an optional argument left out) into null: drop it.
    const args = [...given];
    while (args.length && args[args.length - 1] === undefined) args.pop();
    let res: Response;
    try {
      // Without a token in hand (the host moved it into a cookie on the first load) the cookie alone authorizes.
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (token) headers['authorization'] = `Bearer ${token}`;
      res = await fetch(`/api/${method}`, { method: 'POST', headers, body: JSON.stringify(args) });
    } catch {
      throw new ApiCallError({
        code: 'offline',
        message: 'Cannot reach the FxPQ server. Is `fxpq serve` still running?',
      });
    }
    let reply: { result?: unknown; error?: ApiError };
    try {
      reply = (await res.json()) as typeof reply;
    } catch {
      throw new ApiCallError({
        code: 'bad-reply',
        message: `The FxPQ server answered ${method} with HTTP ${res.status} and no readable reply.`,
      });
    }
    if (reply.error) {
      if (res.status === 403)
        throw new ApiCallError({
          code: reply.error.code,
          message: `${reply.error.message} Open the address that \`fxpq serve\` printed (it carries the token).`,
        });
      throw new ApiCallError(reply.error);
    }
    return reply.result;
  }

  function subscribe(listener: (event: AppEvent) => void): () => void {
    const source = new EventSource(token ? `/api/events?token=${encodeURIComponent(token)}` : '/api/events');
    source.onmessage = (message: MessageEvent<string>) => {
      let event: AppEvent;
      try {
        event = JSON.parse(message.data) as AppEvent;
      } catch {
        return;
      }
      listener(event);
    };
    source.onopen = () => notifyConnection(true);
    // EventSource reconnects by itself; the server then sends a fresh snapshot.
    source.onerror = () => notifyConnection(false);
    return () => source.close();
  }

  const bridge = new Proxy({} as FxpqBridge, {
    get(_target, prop) {
      if (prop === 'subscribe') return subscribe;
      if (typeof prop !== 'string' || prop === 'then') return undefined;
      return (...args: unknown[]) => call(prop, args);
    },
  });
  return bridge;
}

const connectionListeners = new Set<ConnectionListener>();
function notifyConnection(connected: boolean): void {
  for (const l of connectionListeners) l(connected);
}

/** Web mode only: whether the event stream is connected (Electron's IPC never drops). */
export function onConnectionChange(listener: ConnectionListener): () => void {
  connectionListeners.add(listener);
  return () => connectionListeners.delete(listener);
}

/**
 * Where a dropped file lives on disk, when the front end can tell: Electron's preload may add
 * `pathForFile` (webUtils.getPathForFile; not in the contract yet), older Electron set `File.path`;
 * a browser never tells a page, and the answer is null.
 */
export function droppedFilePath(file: File): string | null {
  const extra = window.fxpq as (FxpqBridge & { pathForFile?: (f: File) => string }) | undefined;
  try {
    const viaPreload = extra?.pathForFile?.(file);
    if (viaPreload) return viaPreload;
  } catch {
    // fall through to File.path
  }
  const legacy = (file as File & { path?: unknown }).path;
  return typeof legacy === 'string' && legacy ? legacy : null;
}

let bridge: FxpqBridge | null = null;

/** The one bridge of this page (created on first use). */
export function api(): FxpqBridge {
  if (!bridge) bridge = window.fxpq ?? httpBridge(webToken());
  return bridge;
}

/** For tests: use this bridge instead of the real one. */
export function setBridge(b: FxpqBridge | null): void {
  bridge = b;
}

export type { FxpqApi };
