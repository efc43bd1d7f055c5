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
        // The worker entries are bundles of their own beside index.js: Piscina loads them by path
        // (services/pool.ts), in development from the sources instead.
        input: {
          index: resolve(__dirname, 'electron/main/index.ts'),
          'job-worker': resolve(__dirname, 'services/job-worker.ts'),
          'preprocess-worker': resolve(__dirname, 'native-workers/pool/preprocess-worker.ts'),
          'int-worker': resolve(__dirname, 'native-workers/pool/int-worker.ts'),
        },
        // Native addons stay outside the bundle, loaded from node_modules (asar-unpacked when packaged).
        external: ['onnxruntime-node', 'sharp', 'piscina', 'tsx', 'electron-vite'],
        // Shared code in flat chunks beside the entries, so every bundle's folder is out/main.
        output: { chunkFileNames: '[name]-[hash].js' },
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
