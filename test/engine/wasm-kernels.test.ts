/**
 * The WebAssembly kernels give the TypeScript kernels' integers bit for bit: every layer's
 * output and every logit, on every fixture model, at uniform 8 bits and at random mixed
 * 2..8-bit assignments; at 16 bits (activations past int16) the layers fall back and the
 * results stay equal. And the committed binary is the one kernels.c builds to.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileProgram } from '../../native-workers/engine/fixedpoint/compile.js';
import { runBatch } from '../../native-workers/engine/fixedpoint/int-executor.js';
import { quantizeArray } from '../../native-workers/engine/fixedpoint/format.js';
import type { Assignment } from '../../native-workers/engine/fixedpoint/plan.js';
import type { IntProgram, IntTensor } from '../../native-workers/engine/fixedpoint/program.js';
import { WasmKernels } from '../../native-workers/engine/fixedpoint/wasm-kernels.js';
import { KERNELS_COMPILER, KERNELS_WASM_BASE64 } from '../../native-workers/engine/fixedpoint/wasm/kernels-wasm.js';
import { operatorModule } from '../../native-workers/engine/ops/registry.js';
import { closePools } from '../../services/pool.js';
import { ALL_MODELS, hasShared, modelPath, repoRoot } from '../helpers/fixtures.js';
import { quantSetup, randomAssignment, uniform, type QuantSetup } from '../helpers/quant-setup.js';

const wasmDir = join(repoRoot, 'native-workers/engine/fixedpoint/wasm');
const cacheDir = mkdtempSync(join(tmpdir(), 'fxpq-wasm-'));
afterAll(() => closePools());

function clangVersion(): string | undefined {
  try {
    return execFileSync('clang', ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return undefined;
  }
}
const clang = clangVersion();

describe('the committed kernels binary', () => {
  it('kernels-wasm.ts holds the bytes of kernels.wasm', () => {
    const committed = readFileSync(join(wasmDir, 'kernels.wasm'));
    expect(Buffer.from(KERNELS_WASM_BASE64, 'base64').equals(committed)).toBe(true);
  });

  // Another clang version may emit other (equally correct) bytes: compare only with the same one.
  it.skipIf(clang !== KERNELS_COMPILER)('is what kernels.c compiles to (npm run build:wasm)', () => {
    const out = mkdtempSync(join(tmpdir(), 'fxpq-wasm-build-'));
    execFileSync('node', [join(repoRoot, 'scripts/build-wasm.mjs'), '--out', out]);
    const rebuilt = readFileSync(join(out, 'kernels.wasm'));
    expect(rebuilt.equals(readFileSync(join(wasmDir, 'kernels.wasm')))).toBe(true);
  });
});

/** Every node's output from both kernels on the same inputs (the TypeScript ones carry on). */
function layerMismatches(program: IntProgram, input: Int32Array, kernels: WasmKernels): string[] {
  const bad: string[] = [];
  const values = new Map<string, IntTensor>();
  values.set(program.input.name, { data: input, shape: program.input.shape, frac: program.input.format.frac });
  for (const node of program.nodes) {
    const inputs = node.inputs.filter((n) => values.has(n)).map((n) => values.get(n)!);
    const rules = operatorModule(node.op)!.fixedPoint!;
    const reference = rules.runInt(node, inputs, program);
    const fast = rules.runFast?.(node, inputs, program, kernels);
    if (fast && !(fast.length === reference.length && fast.every((v, i) => v === reference[i]))) bad.push(node.name);
    values.set(node.output, { data: reference, shape: node.outShape, frac: node.out.frac });
  }
  return bad;
}

function compare(setup: QuantSetup, a: Assignment, kernels: WasmKernels) {
  const program = compileProgram(setup.plan, a);
  const inF = a[setup.plan.activationOf.get(setup.plan.inputName)!]!;
  let mismatches = 0;
  let logits = 0;
  const before = { ...kernels.counts };
  let layers: string[] = [];
  for (const b of setup.batches) {
    const n = b.indices.length;
    const m = quantizeArray(b.data, inF);
    const reference = runBatch(program, m, n);
    const fast = runBatch(program, m, n, kernels);
    for (let i = 0; i < reference.length; i++) if (reference[i] !== fast[i]) mismatches++;
    logits += reference.length;
    if (layers.length === 0) layers = layerMismatches(program, m.subarray(0, m.length / n), kernels);
  }
  return {
    mismatches,
    logits,
    layers,
    fast: kernels.counts.fast - before.fast,
    fallback: kernels.counts.fallback - before.fallback,
  };
}

const IMAGES: Record<string, number> = { 'mobilenet_v1_0.25_224': 20 };

describe.each(ALL_MODELS)('WebAssembly vs TypeScript kernels on %s', (name) => {
  const available = modelPath(name) !== undefined && (hasShared || name === 'fmnist_resnet20' || name === 'mnist-8');
  let setup: QuantSetup;
  let kernels: WasmKernels;

  it.skipIf(!available)(
    'agree on every layer and logit at uniform 8 bits and at random mixed 2..8-bit assignments',
    async () => {
      setup = await quantSetup(name, IMAGES[name] ?? 50, cacheDir);
      kernels = (await WasmKernels.create())!;
      expect(kernels).toBeDefined();
      for (const [label, a] of [
        ['uniform 8', uniform(setup, 8)],
        ['mixed seed 1', randomAssignment(setup, 1, 2, 8)],
        ['mixed seed 2', randomAssignment(setup, 2, 2, 8)],
      ] as const) {
        const r = compare(setup, a, kernels);
        expect({ label, mismatches: r.mismatches, layers: r.layers }).toEqual({ label, mismatches: 0, layers: [] });
        expect(r.logits).toBeGreaterThan(0);
        // Up to 8 bits every layer fits the fast path: the comparison is not vacuous.
        expect({ label, fallback: r.fallback }).toEqual({ label, fallback: 0 });
        expect(r.fast).toBeGreaterThan(0);
      }
    },
    180_000,
  );

  it.skipIf(!available)('agree at 16 bits, where layers whose values pass int16 fall back', async () => {
    const r = compare(setup, uniform(setup, 16), kernels);
    expect({ mismatches: r.mismatches, layers: r.layers }).toEqual({ mismatches: 0, layers: [] });
    expect(r.fallback).toBeGreaterThan(0);
  });
});
