/** Helpers shared by the integer kernels of the operator modules. */
import { FxpqError } from '../errors.js';
import type { Node } from '../ir/graph.js';
import type { IntProgram, ProgramConstant, ProgramNode } from './program.js';

/** Kernels read attributes through the IR helpers, which take a Node. */
export function asNode(node: ProgramNode): Node {
  return {
    name: node.name,
    op: node.op,
    attrs: node.attrs,
    inputs: node.inputs,
    outputs: [node.output],
    activation: node.activation,
  };
}

/** m = clamp(rshift_round(acc, r), lo, hi) for a whole accumulator array (exact below 2^53). */
export function requantizeInto(
  acc: Float64Array,
  r: number,
  lo: number,
  hi: number,
  out: Int32Array,
  offset = 0,
): void {
  if (r > 0) {
    const half = 2 ** (r - 1);
    const inv = 2 ** -r;
    for (let i = 0; i < acc.length; i++) {
      const m = Math.floor((acc[i]! + half) * inv);
      out[offset + i] = m < lo ? lo : m > hi ? hi : m;
    }
  } else {
    const mul = 2 ** -r;
    for (let i = 0; i < acc.length; i++) {
      const m = acc[i]! * mul;
      out[offset + i] = m < lo ? lo : m > hi ? hi : m;
    }
  }
}

export function constantOf(program: IntProgram, node: ProgramNode, index: number): ProgramConstant {
  const c = program.constants[node.inputs[index]!];
  if (!c) throw new FxpqError(`Node ${node.name}: input ${index} is not a compiled constant.`, 'invalid-model');
  return c;
}

/** Refuse formats whose exact sums could pass 2^53 (JS numbers are exact below it). */
export function checkAccumulator(layer: string, bitsW: number, bitsX: number, fanIn: number): void {
  if (bitsW + bitsX + Math.ceil(Math.log2(Math.max(fanIn, 1))) > 52) {
    throw new FxpqError(
      `Layer ${layer}: ${bitsW}-bit weights times ${bitsX}-bit inputs over ${fanIn} terms need more than 52 bits; use shorter formats.`,
      'invalid-model',
    );
  }
}
