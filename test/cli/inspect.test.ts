import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { ALL_MODELS, modelPath, repoRoot } from '../helpers/fixtures.js';
import { GraphBuilder, int } from '../helpers/graph-builder.js';
import type { InspectReport } from '../../api/contract.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-cli-'));
const mnist = modelPath('mnist-8')!;

/** No user-facing error may show a stack trace or a JS error class. */
function expectSentence(stderr: string): void {
  expect(stderr).not.toMatch(/\n\s+at |Error:|TypeError|RangeError|internal error/);
  expect(stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
}

describe('fxpq inspect', () => {
  it('prints a text report', async () => {
    const r = await runCli(['inspect', mnist]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Producer\s+CNTK 2\.5\.1, opset 8/);
    expect(r.stdout).toMatch(/Batch\s+fixed at 1/);
    expect(r.stdout).toMatch(/Parameters 5,994/);
    expect(r.stdout).toMatch(/786,560/);
    expect(r.stdout).toMatch(/Conv\+Relu/);
  });

  it.each(ALL_MODELS)('prints only JSON with --json for %s', async (name) => {
    const path = modelPath(name);
    if (!path) return;
    const r = await runCli(['inspect', path, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as InspectReport;
    expect(Object.keys(report)).toEqual(['model', 'ops', 'layers', 'totals']);
    expect(Object.keys(report.layers[0]!)).toEqual(
      expect.arrayContaining(['name', 'op', 'inputShape', 'outputShape', 'params', 'macs']),
    );
    expect(Object.keys(report.totals)).toEqual(['params', 'macs', 'fp32Bytes']);
    expect(r.stderr).toBe('');
  });

  it('refuses unsupported operators in one message listing each type with a node name (exit 1)', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [-1, 4]);
    const s = b.node('Sigmoid', [b.node('Gemm', [x, b.weight([4, 4], 1)])]);
    const m = b.node('Mul', [s, s]);
    const l = b.node('LRN', [m], { size: int(3) });
    b.output(b.node('Sigmoid', [l]), [-1, 4]);
    const path = join(tmp, 'unsupported.onnx');
    writeFileSync(path, b.bytes());
    const r = await runCli(['inspect', path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(path);
    expect(r.stderr).toMatch(/Sigmoid \(node sigmoid_\d+, sigmoid_\d+\)/);
    expect(r.stderr).toMatch(/Mul \(node mul_\d+\)/);
    expect(r.stderr).toMatch(/LRN \(node lrn_\d+\)/);
    expectSentence(r.stderr);
  });

  const bytes = readFileSync(mnist);
  const badFiles: [string, Uint8Array | string, RegExp][] = [
    ['empty.onnx', new Uint8Array(0), /empty\.onnx is empty/],
    ['text.onnx', 'name,label\ncat.png,3\n', /text\.onnx is not (a valid )?(an )?ONNX model/],
    [
      'image.onnx',
      new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]),
      /image\.onnx is not (a valid )?(an )?ONNX model/,
    ],
    ...[0.1, 0.25, 0.5, 0.75, 0.97].map((f): [string, Uint8Array, RegExp] => [
      `truncated-${f}.onnx`,
      bytes.subarray(0, Math.floor(bytes.length * f)),
      new RegExp(`truncated-${f}\\.onnx`),
    ]),
  ];

  it.each(badFiles)('explains %s in a sentence naming the file (exit 1)', async (name, content, pattern) => {
    const path = join(tmp, name);
    writeFileSync(path, content);
    const r = await runCli(['inspect', path]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(pattern);
    expectSentence(r.stderr);
  });

  it('explains a missing file and a folder', async () => {
    const missing = await runCli(['inspect', join(tmp, 'nope.onnx')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.onnx does not exist/);
    const folder = await runCli(['inspect', tmp]);
    expect(folder.code).toBe(1);
    expect(folder.stderr).toMatch(/is a folder, not an ONNX model file\./);
  });

  it('exits 2 on usage errors', async () => {
    expect((await runCli(['inspect'])).code).toBe(2);
    expect((await runCli(['inspect', mnist, '--bogus'])).code).toBe(2);
    expect((await runCli(['frobnicate'])).code).toBe(2);
    expect((await runCli([])).code).toBe(2);
  });

  it('runs through npx from the project root with no build step', () => {
    const r = spawnSync('npx', ['--no-install', 'fxpq', 'inspect', mnist, '--json'], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect((JSON.parse(r.stdout) as InspectReport).totals.params).toBe(5994);
  });
});
