/** Exposes the typed API contract and the job event stream to the renderer as `window.fxpq`, over IPC. */
import { contextBridge, ipcRenderer, webUtils } from 'electron';
import { API_METHODS, type AppEvent, type FxpqApi, type FxpqBridge } from '../../api/contract.js';

// Kept in sync with electron/main/index.ts; a sandboxed preload cannot import it at run time.
const API_CHANNEL = 'fxpq:api';
const EVENT_CHANNEL = 'fxpq:event';
const SUBSCRIBE_CHANNEL = 'fxpq:subscribe';

async function call(method: keyof FxpqApi, args: unknown[]): Promise<unknown> {
  const reply = (await ipcRenderer.invoke(API_CHANNEL, method, args)) as {
    result?: unknown;
    error?: { code: string; message: string };
  };
  if (reply.error) throw Object.assign(new Error(reply.error.message), { code: reply.error.code });
  return reply.result;
}

const listeners = new Set<(e: AppEvent) => void>();
let subscribed = false;
ipcRenderer.on(EVENT_CHANNEL, (_event, e: AppEvent) => {
  for (const l of listeners) l(e);
});

const bridge = Object.fromEntries(
  API_METHODS.map((m) => [m, (...args: unknown[]) => call(m, args)]),
) as unknown as FxpqApi;

contextBridge.exposeInMainWorld('fxpq', {
  ...bridge,
  subscribe(listener: (e: AppEvent) => void): () => void {
    listeners.add(listener);
    // The main process sends a snapshot to each new subscription; one per window is enough.
    if (!subscribed) {
      subscribed = true;
      void ipcRenderer.invoke(SUBSCRIBE_CHANNEL);
    } else {
      void call('listJobs', []).then((jobs) => listener({ type: 'snapshot', seq: 0, jobs } as AppEvent));
    }
    return () => listeners.delete(listener);
  },
  // Electron no longer gives a dropped File a path; the preload may ask for it.
  pathForFile: (file: unknown) => webUtils.getPathForFile(file as Parameters<typeof webUtils.getPathForFile>[0]),
} satisfies FxpqBridge);
