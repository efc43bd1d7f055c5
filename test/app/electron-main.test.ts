/**
 * The Electron main process's guards, without launching Electron (it cannot start here): the
 * real electron/main/index.ts runs against a stand-in `electron` module that records what it
 * registers. IPC answers only the app's own page; navigation, new windows and permission
 * requests are refused; ELECTRON_RENDERER_URL counts only in an unpackaged development run; the
 * builder config sets the fuses.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { closePools } from '../../services/pool.js';
import { repoRoot } from '../helpers/fixtures.js';

type Handler = (...args: unknown[]) => unknown;
const recorded = {
  ipc: new Map<string, Handler>(),
  windows: [] as { on: Map<string, Handler>; openHandler?: Handler; loaded: string[] }[],
  permission: undefined as Handler | undefined,
  packaged: false,
  ready: Promise.resolve(),
};
const userData = mkdtempSync(join(tmpdir(), 'fxpq-electron-'));

vi.mock('electron', () => {
  class BrowserWindow {
    webContents: Record<string, Handler>;
    constructor() {
      const w = {
        on: new Map<string, Handler>(),
        loaded: [] as string[],
        openHandler: undefined as Handler | undefined,
      };
      recorded.windows.push(w);
      this.webContents = {
        on: (name: unknown, fn: unknown) => void w.on.set(name as string, fn as Handler),
        setWindowOpenHandler: (fn: unknown) => void (w.openHandler = fn as Handler),
      };
      (this as unknown as Record<string, Handler>)['loadURL'] = async (url: unknown) =>
        void w.loaded.push(`url:${url}`);
      (this as unknown as Record<string, Handler>)['loadFile'] = async (f: unknown) => void w.loaded.push(`file:${f}`);
    }
    setTitle(): void {}
    static getAllWindows = (): unknown[] => [];
    static getFocusedWindow = (): undefined => undefined;
  }
  return {
    app: {
      get isPackaged() {
        return recorded.packaged;
      },
      getPath: () => userData,
      whenReady: () => recorded.ready,
      on: () => undefined,
      quit: () => undefined,
    },
    BrowserWindow,
    dialog: { showOpenDialog: async () => ({ canceled: true, filePaths: [] }) },
    ipcMain: { handle: (channel: string, fn: Handler) => void recorded.ipc.set(channel, fn) },
    Menu: { setApplicationMenu: () => undefined, buildFromTemplate: () => ({}) },
    session: { defaultSession: { setPermissionRequestHandler: (fn: Handler) => void (recorded.permission = fn) } },
    shell: { openExternal: async () => undefined, openPath: async () => '' },
  };
});

async function loadMain(packaged: boolean, devUrl?: string): Promise<void> {
  recorded.ipc.clear();
  recorded.windows.length = 0;
  recorded.packaged = packaged;
  if (devUrl) process.env['ELECTRON_RENDERER_URL'] = devUrl;
  else delete process.env['ELECTRON_RENDERER_URL'];
  vi.resetModules();
  await import('../../electron/main/index.js');
  await new Promise((r) => setTimeout(r, 10)); // whenReady's callback
}

const rendererPage = pathToFileURL(join(repoRoot, 'electron/renderer/index.html')).href;
const call = (senderUrl: string, method = 'appInfo', args: unknown[] = []) =>
  recorded.ipc.get('fxpq:api')!({ senderFrame: { url: senderUrl }, sender: {} }, method, args) as Promise<{
    result?: unknown;
    error?: { code: string };
  }>;

afterAll(() => closePools());

describe('Electron main process guards', () => {
  beforeEach(() => vi.spyOn(console, 'warn').mockImplementation(() => undefined));

  it('answers IPC only from its own page and validates the arguments', async () => {
    await loadMain(true);
    expect((await call(rendererPage)).result).toMatchObject({ host: 'electron' });
    expect((await call('https://evil.example/')).error).toMatchObject({ code: 'forbidden' });
    expect((await call(`${rendererPage}.evil`)).error).toMatchObject({ code: 'forbidden' });
    expect((await call(rendererPage, 'inspectModel', [{}])).error).toMatchObject({ code: 'bad-request' });
    expect(recorded.ipc.get('fxpq:subscribe')!({ senderFrame: { url: 'https://evil.example/' }, sender: {} })).toBe(
      false,
    );
  });

  it('refuses navigation, new windows and permission requests', async () => {
    await loadMain(true);
    const w = recorded.windows[0]!;
    let prevented = false;
    w.on.get('will-navigate')!({ preventDefault: () => (prevented = true) }, 'https://evil.example/');
    expect(prevented).toBe(true);
    expect(w.openHandler!({ url: 'https://example.org/' })).toEqual({ action: 'deny' });
    let granted: boolean | undefined;
    recorded.permission!(undefined, 'media', (ok: boolean) => (granted = ok));
    expect(granted).toBe(false);
  });

  it('honours ELECTRON_RENDERER_URL only in an unpackaged development run', async () => {
    await loadMain(true, 'http://localhost:5173/');
    expect(recorded.windows[0]!.loaded[0]).toMatch(/^file:.*renderer[\\/]index\.html$/);
    expect((await call('http://localhost:5173/')).error).toMatchObject({ code: 'forbidden' });
    await loadMain(false, 'http://localhost:5173/');
    expect(recorded.windows[0]!.loaded).toEqual(['url:http://localhost:5173/']);
    expect((await call('http://localhost:5173/')).result).toMatchObject({ host: 'electron' });
  });

  it('ships with the fuses set', () => {
    const config = readFileSync(join(repoRoot, 'build/electron-builder.yml'), 'utf8');
    for (const line of [
      'runAsNode: false',
      'enableNodeOptionsEnvironmentVariable: false',
      'enableNodeCliInspectArguments: false',
      'enableEmbeddedAsarIntegrityValidation: true',
      'onlyLoadAppFromAsar: true',
    ])
      expect(config).toContain(line);
  });
});
