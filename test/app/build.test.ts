import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'electron-vite';
import { beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/fixtures.js';

// A private output folder, so this build never races the browser test's renderer.
const out = mkdtempSync(join(tmpdir(), 'fxpq-build-'));

describe('electron-vite build of main, preload and renderer', () => {
  beforeAll(async () => {
    process.env['FXPQ_OUT_DIR'] = out;
    try {
      await build({ root: repoRoot, logLevel: 'warn' });
    } finally {
      delete process.env['FXPQ_OUT_DIR'];
    }
  });

  it('writes the three bundles', () => {
    const main = readFileSync(join(out, 'main/index.js'), 'utf8');
    expect(main).toContain('fxpq:api');
    expect(readFileSync(join(out, 'preload/index.cjs'), 'utf8')).toContain('exposeInMainWorld');
    expect(existsSync(join(out, 'renderer/index.html'))).toBe(true);
  });

  it('keeps native addons out of the main bundle', () => {
    const main = readFileSync(join(out, 'main/index.js'), 'utf8');
    expect(main).not.toMatch(/onnxruntime_binding|libvips/);
  });

  it('points package.json main at the main process bundle', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { main: string };
    expect(pkg.main).toBe('out/main/index.js');
    expect(existsSync(join(out, 'main/index.js'))).toBe(true);
  });
});
