// Lint rules, including the layer rule: engine <- services <- front ends <- renderer.
// A lower layer never imports a higher one (VS Code enforces its layers the same way).
import tseslint from 'typescript-eslint';

const layer = (files, forbidden, message, extra = {}) => ({
  files,
  rules: {
    'no-restricted-imports': ['error', { patterns: forbidden.map((group) => ({ group: [group], message })) }],
    ...extra,
  },
});

const higherThanEngine = ['**/services/**', '**/cli/**', '**/web/**', '**/electron/**', '**/renderer/**'];
const frontEnds = ['**/cli/**', '**/web/**', '**/electron/**', '**/renderer/**'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'out/**', 'dist/**', '.scratch/**', 'renderer/**/*.vue'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  layer(
    ['native-workers/engine/**/*.ts'],
    [
      ...higherThanEngine,
      '**/native-workers/pool/**',
      'electron',
      'vue',
      'pinia',
      'node:fs',
      'node:fs/*',
      'fs',
      'node:process',
      'node:child_process',
      'sharp',
      'piscina',
    ],
    'The engine is pure TypeScript: no file system, process, Electron, Vue, or higher layer (ARCHITECTURE.md).',
    {
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'The engine takes no process globals: pass values in.' },
      ],
    },
  ),
  layer(
    ['native-workers/pool/**/*.ts'],
    [...higherThanEngine, 'electron', 'vue', 'pinia'],
    'Worker entry points may use the engine only (ARCHITECTURE.md).',
  ),
  layer(
    ['services/**/*.ts'],
    [...frontEnds, 'electron', 'vue', 'pinia'],
    'Services are Node-only and serve every front end: no front end, Electron or Vue import (ARCHITECTURE.md).',
  ),
  layer(
    ['cli/**/*.ts', 'web/**/*.ts'],
    ['**/renderer/**', '**/electron/**', 'electron', 'vue', 'pinia'],
    'The CLI and web host call the services; they never import Electron or the renderer (ARCHITECTURE.md).',
  ),
  layer(
    ['electron/**/*.ts'],
    ['**/renderer/**', '**/cli/**', '**/web/**'],
    'The Electron shell calls the services; it never imports the renderer or another front end (ARCHITECTURE.md).',
  ),
  layer(
    ['renderer/**/*.ts'],
    [
      '**/native-workers/**',
      '**/services/**',
      '**/cli/**',
      '**/web/**',
      '**/electron/**',
      'electron',
      'node:*',
      'onnxruntime-node',
      'sharp',
      'piscina',
    ],
    'The renderer talks to the typed API contract in api/ only (ARCHITECTURE.md).',
  ),
  layer(
    ['api/**/*.ts'],
    [
      '**/native-workers/**',
      '**/services/**',
      '**/cli/**',
      '**/web/**',
      '**/electron/**',
      '**/renderer/**',
      'node:*',
      'electron',
    ],
    'The API contract is types only and depends on nothing (ARCHITECTURE.md).',
  ),
);
