import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import vue from '@vitejs/plugin-vue';

// Main and preload are thin Electron shells over the services; the renderer is the Vue app
// that the web host (`fxpq serve`) also serves. FXPQ_OUT_DIR lets a test build elsewhere.
const out = process.env['FXPQ_OUT_DIR'] ?? resolve(__dirname, 'out');

export default defineConfig({
  main: {
    build: {
      outDir: resolve(out, 'main'),
      rollupOptions: {
        input: { index: resolve(__dirname, 'electron/main/index.ts') },
        // Native addons and the pool stay outside the bundle, loaded from node_modules.
        external: ['onnxruntime-node', 'sharp', 'piscina', 'tsx'],
      },
    },
  },
  preload: {
    build: {
      outDir: resolve(out, 'preload'),
      rollupOptions: {
        input: { index: resolve(__dirname, 'electron/preload/index.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: resolve(__dirname, 'renderer'),
    plugins: [vue()],
    build: {
      outDir: resolve(out, 'renderer'),
      emptyOutDir: true,
      rollupOptions: { input: { index: resolve(__dirname, 'renderer/index.html') } },
    },
  },
});
