/** Piscina worker: the integer executor on a batch of images. */
import { runBatch } from '../engine/fixedpoint/int-executor.js';
import type { IntProgram } from '../engine/fixedpoint/program.js';
import { WasmKernels } from '../engine/fixedpoint/wasm-kernels.js';

/** Which kernels run the layers that have a fast one: 'wasm' (the default) where WebAssembly SIMD runs, else 'ts'. */
export type IntKernels = 'wasm' | 'ts';

export interface IntTask {
  program: IntProgram;
  inputs: Int32Array;
  count: number;
  kernels?: IntKernels;
  /** Names the program across tasks (each task gets its own copy), so the worker packs its weights once. */
  programId?: string;
}

// One kernels instance per worker thread, reused by every task (it repacks weights when the program changes).
let kernels: Promise<WasmKernels | undefined> | undefined;

export default async function run(task: IntTask): Promise<Int32Array> {
  const fast = task.kernels === 'ts' ? undefined : await (kernels ??= WasmKernels.create());
  return runBatch(task.program, task.inputs, task.count, fast, task.programId ?? task.program);
}
