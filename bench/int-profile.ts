/**
 * `npm run bench int-profile`: where the integer executor spends its time, per operator, with
 * the TypeScript and with the WebAssembly kernels, one image at a time on this thread. Each
 * layer's figure is its fastest of `repeats` runs, so the busy shared machine inflates it less
 * than a throughput figure; the total is the sum over layers (what one worker needs per image).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { compileProgram } from '../native-workers/engine/fixedpoint/compile.js';
import type { IntProgram, IntTensor } from '../native-workers/engine/fixedpoint/program.js';
import { WasmKernels } from '../native-workers/engine/fixedpoint/wasm-kernels.js';
import { operatorModule } from '../native-workers/engine/ops/registry.js';
import { syntheticModel } from './synthetic-model.js';

/** Fastest time of each node over `repeats` images, in ms. */
function layerTimes(program: IntProgram, input: Int32Array, repeats: number, kernels?: WasmKernels) {
  const best = new Map<string, { op: string; ms: number }>();
  kernels?.use(program);
  for (let r = 0; r < repeats; r++) {
    const values = new Map<string, IntTensor>();
    values.set(program.input.name, { data: input, shape: program.input.shape, frac: program.input.format.frac });
    for (const node of program.nodes) {
      const inputs = node.inputs.filter((n) => values.has(n)).map((n) => values.get(n)!);
      const rules = operatorModule(node.op)!.fixedPoint!;
      const t = performance.now();
      const data = (kernels && rules.runFast?.(node, inputs, program, kernels)) ?? rules.runInt(node, inputs, program);
      const ms = performance.now() - t;
      // The first image packs the weights and warms the JIT: not counted.
      if (r > 0) best.set(node.name, { op: node.op, ms: Math.min(best.get(node.name)?.ms ?? Infinity, ms) });
      values.set(node.output, { data, shape: node.outShape, frac: node.out.frac });
    }
  }
  return best;
}

function byOp(times: Map<string, { op: string; ms: number }>): Map<string, number> {
  const out = new Map<string, number>();
  for (const { op, ms } of times.values()) out.set(op, (out.get(op) ?? 0) + ms);
  return out;
}

export async function benchIntProfile(sharedFixtures: string, repeats = 10): Promise<string[]> {
  const models = [
    {
      name: 'fmnist_resnet20',
      path: join(import.meta.dirname, '..', 'test', 'fixtures', 'models', 'fmnist_resnet20.onnx'),
    },
    { name: 'mobilenet_v1_0.25_224', path: join(sharedFixtures, 'models', 'mobilenet_v1_0.25_224.onnx') },
  ].filter((m) => existsSync(m.path));
  const kernels = (await WasmKernels.create())!;
  const lines = [
    `## Integer executor profile: ms per image on one thread at uniform 8 bits, fastest of ${repeats} runs per layer`,
    '',
    '| model | operator | TS kernels | WASM kernels | TS / WASM |',
    '|---|---|---:|---:|---:|',
  ];
  for (const m of models) {
    const { plan, assignment, ints: input } = await syntheticModel(m.path, 1);
    const program = compileProgram(plan, assignment);
    const ts = byOp(layerTimes(program, input, repeats));
    const wasm = byOp(layerTimes(program, input, repeats, kernels));
    const total = (t: Map<string, number>) => [...t.values()].reduce((a, b) => a + b, 0);
    for (const [op, ms] of [...ts].sort((a, b) => b[1] - a[1])) {
      const w = wasm.get(op)!;
      lines.push(`| ${m.name} | ${op} | ${ms.toFixed(2)} | ${w.toFixed(2)} | ${(ms / w).toFixed(1)} |`);
    }
    const [t, w] = [total(ts), total(wasm)];
    lines.push(`| ${m.name} | **all** | **${t.toFixed(2)}** | **${w.toFixed(2)}** | **${(t / w).toFixed(1)}** |`);
  }
  lines.push('');
  return lines;
}
