/**
 * The contract every operator module fulfils. One module per ONNX operator holds
 * everything FxPQ knows about it: shape rule and cost here; the fixed-point format rule,
 * fake-quant lowering, integer kernel and C emitter join the same module (later issues),
 * so adding an operator means adding one file and one line in `registry.ts`.
 */
import type { Node, Shape, Tensor } from '../ir/graph.js';
import { FxpqError } from '../errors.js';
import type { IntProgram, IntTensor, ProgramNode } from '../fixedpoint/program.js';
import type { SimBuilder } from '../fixedpoint/sim-graph.js';
import type { CEmitContext } from '../export/c-emitter.js';
import type { WasmKernels } from '../fixedpoint/wasm-kernels.js';

export interface ShapeContext {
  node: Node;
  /** Shapes of the inputs, in order; undefined for an omitted optional input. */
  inputs: (Shape | undefined)[];
  /** The constant value of an input, when it is an initializer. */
  constant(index: number): Tensor | undefined;
}

export interface OperatorModule {
  readonly op: string;
  /**
   * How the op treats fixed-point formats (spec §3): `requantize` ops produce a new
   * quantized activation (a quantization point), `passthrough` ops keep their input's
   * format, `terminal` ops may only end the graph (they are dropped for integer inference).
   */
  readonly formatRole: 'requantize' | 'passthrough' | 'terminal';
  /** Whether a following Relu / Clip(0, x) folds into this op's output clamp. */
  readonly fusesActivation: boolean;
  /** Output shapes from input shapes (batch dimension included). */
  inferShapes(ctx: ShapeContext): Shape[];
  /** Multiply-accumulates for the given shapes (0 for data movement). */
  macs(ctx: ShapeContext, outputs: Shape[]): number;
  /** The fixed-point rules (spec §2, §3); absent only for `terminal` ops. */
  fixedPoint?: FixedPointRules;
}

export interface FixedPointRules {
  /**
   * Format rule: is the output signed, given the signs of the activation inputs?
   * (Unsigned when provably non-negative.) Pass-through ops return their input's sign.
   */
  outputSigned(node: Node, inputSigned: boolean[]): boolean;
  /** Indices of the node inputs that are quantized data structures: weights and bias. */
  weightInput?: number;
  biasInput?: number;
  /** Fake-quant lowering: emit the float nodes that reproduce the integer kernel exactly. */
  lowerSim(node: Node, sim: SimBuilder): void;
  /** Integer kernel for one image: shifts, clamps and exact integer sums only. */
  runInt(node: ProgramNode, inputs: IntTensor[], program: IntProgram): Int32Array;
  /**
   * Optional fast kernel on the WebAssembly kernels: the same integers as `runInt`, or
   * undefined where its bounds do not hold for this call (the executor then runs `runInt`).
   */
  runFast?(node: ProgramNode, inputs: IntTensor[], program: IntProgram, kernels: WasmKernels): Int32Array | undefined;
  /** C emitter: C99 statements computing the node's output buffer from its inputs' (integer-only). */
  emitC?(node: ProgramNode, c: CEmitContext): string;
}

export function shapeError(node: Node, problem: string): FxpqError {
  return new FxpqError(`Node ${node.name} (${node.op}): ${problem}.`, 'invalid-model');
}

export function requireInput(ctx: ShapeContext, index: number): Shape {
  const s = ctx.inputs[index];
  if (!s)
    throw shapeError(
      ctx.node,
      ctx.node.inputs[index] ? `input ${index} has no known shape` : `lacks its input ${index}; the graph is damaged`,
    );
  return s;
}

export const noMacs = (): number => 0;
