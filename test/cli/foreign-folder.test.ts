/**
 * FxPQ run from outside its checkout (issue 30, item 9): pooled jobs used to start their
 * workers with a bare `--import tsx`, which Node resolves from the current folder, so any job
 * started elsewhere died with a raw stack trace and `fxpq serve` died on its first API call.
 * Checked twice: the checkout's launcher from a foreign working folder, and the package as a
 * user installs it (`npm pack`, installed into an empty folder without dev dependencies, the
 * demo run there).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRendererBuilt } from '../../web/renderer-build.js';
import { runCli } from '../helpers/cli.js';
import { cliEntry, committedModels, repoRoot } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-foreign-'));
const foreign = join(tmp, 'elsewhere');
mkdirSync(foreign);
const mnist = join(committedModels, 'mnist-8.onnx');
const mnistImages = join(repoRoot, 'test', 'fixtures', 'mnist');

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Start `fxpq serve` with `launcher` in `cwd` and return its address once it prints it. */
async function startServe(launcher: string, cwd: string): Promise<{ child: ChildProcess; url: URL }> {
  const child = spawn(process.execPath, [launcher, 'serve'], {
    cwd,
    env: { ...process.env, NO_COLOR: '1', FXPQ_CONFIG_DIR: join(tmp, `config-${Math.random()}`) },
  });
  let text = '';
  const url = await new Promise<URL>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve printed no address: ${text}`)), 60_000);
    const onData = (d: Buffer): void => {
      text += d.toString();
      const m = /serving on (\S+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(new URL(m[1]!));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${text}`)));
  });
  return { child, url };
}

/** One API call that runs a pooled job (inspect), with the token as a bearer. */
async function inspectThroughServe(url: URL): Promise<{ result?: { layers?: unknown[] }; error?: unknown }> {
  const token = url.searchParams.get('token')!;
  const res = await fetch(new URL('/api/inspectModel', url), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify([mnist]),
  });
  return (await res.json()) as { result?: { layers?: unknown[] }; error?: unknown };
}

describe('the checkout run from another working folder', () => {
  it('runs a pooled evaluation', async () => {
    const r = await runCli(['evaluate', '--model', mnist, '--data', mnistImages, '--json'], { cwd: foreign });
    expect(r.stderr).not.toMatch(/ERR_MODULE_NOT_FOUND|internal error|\n\s+at /);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { n: number }).n).toBe(100);
  });

  it('serves the UI and answers an API call that runs a job', async () => {
    await ensureRendererBuilt(() => {});
    const { child, url } = await startServe(cliEntry, foreign);
    try {
      const reply = await inspectThroughServe(url);
      expect(reply.error).toBeUndefined();
      expect(reply.result?.layers?.length).toBeGreaterThan(0);
    } finally {
      child.kill('SIGTERM');
    }
  });
});

describe('the package as installed from its tarball', () => {
  const install = join(tmp, 'install');
  let launcher = '';

  beforeAll(async () => {
    // The renderer is built once beside the sources (as prepack would), then packed without
    // scripts, so this test never rebuilds out/ under another test that serves it.
    await ensureRendererBuilt(() => {});
    mkdirSync(install);
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const pack = spawnSync(npm, ['pack', '--ignore-scripts', '--pack-destination', install], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    expect(pack.status, pack.stderr).toBe(0);
    const tarball = readdirSync(install).find((f) => f.endsWith('.tgz'))!;
    writeFileSync(join(install, 'package.json'), '{ "name": "fxpq-install-check", "private": true }');
    const add = spawnSync(
      npm,
      ['install', `./${tarball}`, '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'],
      { cwd: install, encoding: 'utf8', env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' } },
    );
    expect(add.status, add.stderr).toBe(0);
    launcher = join(install, 'node_modules', 'fxpq', 'bin', 'fxpq.mjs');
  }, 300_000);

  it('runs the demo from a foreign folder', async () => {
    const r = await new Promise<{ code: number; out: string }>((resolve) => {
      const child = spawn(process.execPath, [launcher, 'demo', '--out', join(tmp, 'demo'), '--json'], {
        cwd: foreign,
        env: { ...process.env, NO_COLOR: '1' },
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', (code) => resolve({ code: code ?? -1, out }));
    });
    expect(r.out).not.toMatch(/ERR_MODULE_NOT_FOUND|internal error/);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/"integer"/);
  }, 600_000);

  it('serves the built interface without electron-vite and answers a job', async () => {
    const { child, url } = await startServe(launcher, foreign);
    try {
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/<script/);
      const reply = await inspectThroughServe(url);
      expect(reply.error).toBeUndefined();
      expect(reply.result?.layers?.length).toBeGreaterThan(0);
    } finally {
      child.kill('SIGTERM');
    }
  }, 120_000);
});
