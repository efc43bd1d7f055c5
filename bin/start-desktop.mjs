#!/usr/bin/env node
// `npm start`: build the app with electron-vite, then launch Electron. Where Electron
// cannot start (its binary cannot be downloaded, or there is no display) say so, and
// how to use the same UI in a browser instead.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const fallback = 'Use the same app in a browser instead: npx fxpq serve';

if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
  console.error(`The desktop app needs a display, and none is set (DISPLAY is empty).\n${fallback}`);
  process.exit(1);
}

const build = spawnSync(process.execPath, [require.resolve('electron-vite/bin/electron-vite.js'), 'build'], {
  stdio: 'inherit',
});
if (build.status !== 0) process.exit(build.status ?? 1);

let electronCli;
try {
  electronCli = require.resolve('electron/cli.js');
} catch {
  console.error(`Electron is not installed (run npm install).\n${fallback}`);
  process.exit(1);
}
const child = spawn(process.execPath, [electronCli, '.'], { stdio: 'inherit' });
child.on('exit', (code) => {
  if (code !== 0)
    console.error(
      `Electron did not start (exit ${code}); its binary downloads on first launch and needs internet once.\n${fallback}`,
    );
  process.exit(code ?? 1);
});
