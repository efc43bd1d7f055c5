/**
 * The bit-exact integer-only reference executor: integer typed arrays in and out, every
 * operator through its module's integer kernel. It defines what "integer-only" means.
 *
 * With `kernels` (the WebAssembly kernels, wasm-kernels.ts), an operator that has a fast
 * kernel (`runFast`: Conv, Gemm, MatMul, Add) runs it where its bounds hold, and its TypeScript
 * kernel otherwise; both give the same integers (test/engine/wasm-kernels.test.ts).
 */
import { operatorModule } from '../ops/registry.js';
import type { IntProgram, IntTensor } from './program.js';
import type { WasmKernels } from './wasm-kernels.js';

/**
 * Run one image: `input` holds its integers (input format), the result the integer logits.
 * `kernels` must serve this program (`use`, as runBatch does); its
 * layers' output arrays are reused from image to image, so the logits returned are a copy.
 */
export function runImage(program: IntProgram, input: Int32Array, kernels?: WasmKernels): Int32Array {
  const values = new Map<string, IntTensor>();
  values.set(program.input.name, { data: input, shape: program.input.shape, frac: program.input.format.frac });
  for (const node of program.nodes) {
    const inputs = node.inputs.filter((name) => values.has(name)).map((name) => values.get(name)!);
    const rules = operatorModule(node.op)!.fixedPoint!;
    let data = kernels && rules.runFast ? rules.runFast(node, inputs, program, kernels) : undefined;
    if (kernels && rules.runFast) kernels.counts[data ? 'fast' : 'fallback']++;
    data ??= rules.runInt(node, inputs, program);
    values.set(node.output, { data, shape: node.outShape, frac: node.out.frac });
  }
  const logits = values.get(program.output.name)!.data;
  return kernels ? logits.slice() : logits;
}

/**
 * Run `count` images laid out one after another; returns count x outputs integers.
 * `programKey` names the program for the kernels' packed weights (default: the object).
 */
export function runBatch(
  program: IntProgram,
  inputs: Int32Array,
  count: number,
  kernels?: WasmKernels,
  programKey: unknown = program,
): Int32Array {
  kernels?.use(programKey);
  const size = inputs.length / count;
  const outSize = program.output.shape.reduce((a, b) => a * b, 1);
  const out = new Int32Array(count * outSize);
  for (let i = 0; i < count; i++)
    out.set(runImage(program, inputs.subarray(i * size, (i + 1) * size), kernels), i * outSize);
  return out;
}
