/**
 * The Electron main process: a thin shell. It opens the window and answers the renderer's
 * API calls through the service layer; all real work lives below it.
 */
import { app, BrowserWindow, ipcMain } from 'electron';
import { join } from 'node:path';
import { dispatchApiCall, serviceApi } from '../../services/api.js';

/** The one IPC channel; electron/preload/index.ts uses the same name. */
const API_CHANNEL = 'fxpq:api';
const api = serviceApi('electron');

ipcMain.handle(API_CHANNEL, (_event, method: string, args: unknown[]) => dispatchApiCall(api, method, args));

function createWindow(): void {
  const win = new BrowserWindow({
    width: 1200,
    height: 800,
    title: 'FxPQ',
    webPreferences: { preload: join(__dirname, '../preload/index.cjs'), contextIsolation: true, sandbox: true },
  });
  const devUrl = process.env['ELECTRON_RENDERER_URL'];
  if (devUrl) void win.loadURL(devUrl);
  else void win.loadFile(join(__dirname, '../renderer/index.html'));
}

void app.whenReady().then(() => {
  createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
});

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});
