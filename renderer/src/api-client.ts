/**
 * The renderer's only door to the rest of the app: an `FxpqApi`, from the Electron preload
 * (`window.fxpq`) or, in web mode, over HTTP to the local host that served this page.
 */
import type { FxpqApi } from '../../api/contract';

declare global {
  interface Window {
    fxpq?: FxpqApi;
  }
}

function httpApi(token: string): FxpqApi {
  async function call<T>(method: keyof FxpqApi, args: unknown[]): Promise<T> {
    const res = await fetch(`/api/${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(args),
    });
    const reply = (await res.json()) as { result?: T; error?: { code: string; message: string } };
    if (reply.error) throw Object.assign(new Error(reply.error.message), { code: reply.error.code });
    return reply.result as T;
  }
  return {
    appInfo: () => call('appInfo', []),
    inspectModel: (path) => call('inspectModel', [path]),
  };
}

export function connectApi(): FxpqApi {
  if (window.fxpq) return window.fxpq;
  const token = new URLSearchParams(window.location.search).get('token') ?? '';
  return httpApi(token);
}
