import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { build } from 'electron-vite';
import { Piscina } from 'piscina';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobWorkerReply } from '../../services/job-worker.js';
import { modelPath, repoRoot } from '../helpers/fixtures.js';

// A private output folder, so this build never races the browser test's renderer. It sits inside
// the repository, as out/ does, so the bundles resolve onnxruntime-node and sharp from node_modules.
mkdirSync(join(repoRoot, '.scratch'), { recursive: true });
const out = mkdtempSync(join(repoRoot, '.scratch', 'build-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

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

  it('starts the job worker from the built output, which runs an evaluation with its own preprocessing pool', async () => {
    for (const entry of ['job-worker', 'preprocess-worker', 'int-worker'])
      expect(existsSync(join(out, 'main', `${entry}.js`))).toBe(true);
    const pool = new Piscina({
      filename: join(out, 'main', 'job-worker.js'),
      workerData: { workers: { builtDir: join(out, 'main') } },
      maxThreads: 1,
    });
    const { port1, port2 } = new MessageChannel();
    const stages = new Set<string>();
    port1.on('message', (m: { type: string; progress?: { stage: string } }) => {
      if (m.progress) stages.add(m.progress.stage);
    });
    try {
      const reply = (await pool.run(
        {
          task: 'evaluate',
          options: {
            modelPath: modelPath('mnist-8')!,
            dataPath: join(repoRoot, 'test/fixtures/mnist'),
            cacheDir: join(out, 'cache'),
          },
          port: port2,
        },
        { transferList: [port2] as never },
      )) as JobWorkerReply;
      expect(reply.ok).toBe(true);
      if (reply.ok) expect((reply.result as { fp: { top1: number } }).fp.top1).toBeGreaterThan(0.95);
      expect(reply.engineCalls).toEqual([expect.objectContaining({ entry: 'evaluation', mainThread: false })]);
      expect(stages).toContain('evaluation');
    } finally {
      port1.close();
      await pool.destroy();
    }
  }, 120_000);

  it('points package.json main at the main process bundle', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { main: string };
    expect(pkg.main).toBe('out/main/index.js');
    expect(existsSync(join(out, 'main/index.js'))).toBe(true);
  });
});
