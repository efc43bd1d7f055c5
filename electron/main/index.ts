/**
 * The Electron main process: a thin shell. It opens the window, answers the renderer's API
 * calls through the service layer, relays the job event stream, and offers native dialogs.
 * All engine work runs on the Piscina pool (out/main/job-worker.js beside this bundle).
 */
import { app, BrowserWindow, dialog, ipcMain, Menu, session, shell, type IpcMainInvokeEvent } from 'electron';
import { join, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createServices, dispatchApiCall } from '../../services/api.js';
import { refuseEngineOnMainThread } from '../../services/engine-thread.js';
import { configureWorkers } from '../../services/pool.js';
import { openablePath } from './open-path.js';

/** The IPC channels; electron/preload/index.ts uses the same names. */
const API_CHANNEL = 'fxpq:api';
const EVENT_CHANNEL = 'fxpq:event';
const SUBSCRIBE_CHANNEL = 'fxpq:subscribe';

// Worker bundles sit beside this one; a packaged app has them unpacked from the asar archive.
configureWorkers({ builtDir: __dirname.replace(`app.asar${sep}`, `app.asar.unpacked${sep}`) });
refuseEngineOnMainThread();

// Only a development run (electron-vite dev, not packaged) may load the renderer from a dev server.
const devUrl = !app.isPackaged ? process.env['ELECTRON_RENDERER_URL'] : undefined;
const rendererFile = join(__dirname, '../renderer/index.html');

const services = createServices({
  host: 'electron',
  configDir: join(app.getPath('userData'), 'config'),
  dialogs: {
    chooseFolder: async (title) => {
      const win = BrowserWindow.getFocusedWindow();
      const r = await (win
        ? dialog.showOpenDialog(win, { title, properties: ['openDirectory', 'createDirectory'] })
        : dialog.showOpenDialog({ title, properties: ['openDirectory', 'createDirectory'] }));
      return r.canceled ? null : (r.filePaths[0] ?? null);
    },
    chooseFile: async (title, extensions) => {
      const r = await dialog.showOpenDialog({
        title,
        properties: ['openFile'],
        filters: extensions.length ? [{ name: extensions.join(', '), extensions }] : [],
      });
      return r.canceled ? null : (r.filePaths[0] ?? null);
    },
    // Only a folder or report.html inside a project the app knows, by its real path: the path
    // comes from a project.json, which a project from git or a zip may have written.
    openPath: async (path) =>
      (await shell.openPath(
        await openablePath(
          path,
          (await services.projects.recent()).map((r) => r.path),
        ),
      )) === '',
  },
});

/** Calls come only from our own renderer page, never from another frame or a navigated page. */
function trustedSender(event: IpcMainInvokeEvent): boolean {
  const url = event.senderFrame?.url ?? '';
  if (devUrl) return url.startsWith(devUrl);
  const page = pathToFileURL(rendererFile).href;
  return url === page || url.startsWith(`${page}?`) || url.startsWith(`${page}#`);
}

ipcMain.handle(API_CHANNEL, (event, method: unknown, args: unknown) => {
  if (!trustedSender(event)) return { error: { code: 'forbidden', message: 'Calls from this page are refused.' } };
  return dispatchApiCall(services.api, String(method), args);
});

// One subscription per window: the snapshot first, then every job event, in order.
ipcMain.handle(SUBSCRIBE_CHANNEL, (event) => {
  if (!trustedSender(event)) return false;
  const contents = event.sender;
  const unsubscribe = services.jobs.subscribe((e) => {
    if (!contents.isDestroyed()) contents.send(EVENT_CHANNEL, e);
  });
  contents.once('destroyed', unsubscribe);
  contents.once('did-start-navigation', unsubscribe);
  return true;
});

function setTitle(win: BrowserWindow): void {
  win.webContents.on('page-title-updated', (e, title) => {
    // The renderer sets document.title to "<project> - FxPQ"; keep it.
    e.preventDefault();
    win.setTitle(title);
  });
}

function createWindow(): void {
  const win = new BrowserWindow({
    width: 1280,
    height: 860,
    title: 'FxPQ',
    webPreferences: {
      preload: join(__dirname, '../preload/index.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
    },
  });
  setTitle(win);
  // No navigation away from the app and no new windows; links open in the user's browser.
  win.webContents.on('will-navigate', (e, url) => {
    if (!(devUrl && url.startsWith(devUrl))) e.preventDefault();
  });
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (/^https?:\/\//.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  if (devUrl) void win.loadURL(devUrl);
  else void win.loadFile(rendererFile);
}

function buildMenu(): void {
  const template: Electron.MenuItemConstructorOptions[] = [
    ...(process.platform === 'darwin' ? [{ role: 'appMenu' as const }] : []),
    { role: 'fileMenu' },
    { role: 'editMenu' },
    { role: 'viewMenu' },
    { role: 'windowMenu' },
    {
      role: 'help',
      submenu: [{ label: 'FxPQ on the command line: fxpq --help', enabled: false }],
    },
  ];
  Menu.setApplicationMenu(Menu.buildFromTemplate(template));
}

void app.whenReady().then(() => {
  // The app needs no camera, microphone, notifications or other permissions.
  session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  buildMenu();
  createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
});

let quitting = false;
app.on('before-quit', (e) => {
  if (quitting) return;
  // Running searches stop at their next evaluation and keep their checkpoints: resumable next time.
  e.preventDefault();
  quitting = true;
  void services.jobs.drain(true).finally(() => app.quit());
});

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});
