/** Exposes the typed API contract to the renderer as `window.fxpq`, over one IPC channel. */
import { contextBridge, ipcRenderer } from 'electron';
import type { FxpqApi } from '../../api/contract.js';

// Kept in sync with electron/main/index.ts; a sandboxed preload cannot import it at run time.
const API_CHANNEL = 'fxpq:api';

async function call<T>(method: keyof FxpqApi, ...args: unknown[]): Promise<T> {
  const reply = (await ipcRenderer.invoke(API_CHANNEL, method, args)) as {
    result?: T;
    error?: { code: string; message: string };
  };
  if (reply.error) throw Object.assign(new Error(reply.error.message), { code: reply.error.code });
  return reply.result as T;
}

const api: FxpqApi = {
  appInfo: () => call('appInfo'),
  inspectModel: (path) => call('inspectModel', path),
};

contextBridge.exposeInMainWorld('fxpq', api);
