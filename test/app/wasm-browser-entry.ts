/**
 * Bundled by wasm-browser.test.ts and run in chromium: the engine's WebAssembly kernels load
 * there from the same bytes as in Node and give the TypeScript kernels' integers. Sets
 * globalThis.fxpqWasmCheck to 'equal N' (N values compared), or to what went wrong.
 */
import type { IntProgram, IntTensor, ProgramNode } from '../../native-workers/engine/fixedpoint/program.js';
import { WasmKernels } from '../../native-workers/engine/fixedpoint/wasm-kernels.js';
import { operatorModule } from '../../native-workers/engine/ops/registry.js';

const ints = (n: number, mod: number, mul: number) =>
  Int32Array.from({ length: n }, (_, i) => ((i * mul) % mod) - (mod >> 1));

function conv(group: number, C: number, OC: number, stride: number): [ProgramNode, IntProgram, IntTensor[]] {
  const [H, W] = [9, 11];
  const OH = Math.floor((H + 2 - 3) / stride) + 1;
  const OW = Math.floor((W + 2 - 3) / stride) + 1;
  const node: ProgramNode = {
    name: `conv${group}`,
    op: 'Conv',
    attrs: {
      group: { kind: 'int', value: group },
      pads: { kind: 'ints', value: [1, 1, 1, 1] },
      strides: { kind: 'ints', value: [stride, stride] },
    },
    inputs: ['x', 'w'],
    output: 'y',
    outShape: [1, OC, OH, OW],
    out: { frac: 2, lo: -128, hi: 127, bits: 8, signed: true },
  };
  const w = { dims: [OC, C / group, 3, 3], data: ints((OC * C * 9) / group, 15, 13), frac: 4 };
  const program = { constants: { w } } as unknown as IntProgram;
  return [node, program, [{ data: ints(C * H * W, 41, 37), shape: [1, C, H, W], frac: 4 }]];
}

async function check(): Promise<string> {
  const kernels = await WasmKernels.create();
  if (!kernels) return 'no WebAssembly kernels in this browser';
  let compared = 0;
  for (const [node, program, inputs] of [conv(1, 4, 8, 1), conv(6, 6, 6, 2)]) {
    kernels.use(program);
    const rules = operatorModule(node.op)!.fixedPoint!;
    const reference = rules.runInt(node, inputs, program);
    const fast = rules.runFast!(node, inputs, program, kernels);
    if (!fast) return `${node.name}: no fast result`;
    if (!fast.every((v, i) => v === reference[i])) return `${node.name}: different integers`;
    compared += fast.length;
  }
  return `equal ${compared}`;
}

const target = globalThis as { fxpqWasmCheck?: string };
check().then(
  (r) => (target.fxpqWasmCheck = r),
  (e: unknown) => (target.fxpqWasmCheck = `error: ${String(e)}`),
);
