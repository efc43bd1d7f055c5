/**
 * The integer program: the canonical graph compiled against one format assignment. It holds
 * quantized weights, aligned biases and every tensor's fractional length and clamp bounds:
 * everything the integer executor (and the exporters) need, as plain structured-cloneable data.
 */
import type { AttrValue, FusedActivation } from '../ir/graph.js';
import type { Format } from './format.js';

export interface ProgramNode {
  name: string;
  op: string;
  attrs: Record<string, AttrValue>;
  activation?: FusedActivation;
  /** Tensor names: activations, or keys of `IntProgram.constants`. */
  inputs: string[];
  output: string;
  /** Output shape for one image (batch 1). */
  outShape: number[];
  /**
   * The output format and clamp bounds (fused activation included); `hiPerChannel`: an
   * equalized ReLU6's upper bound per output channel (Conv only), within [lo, hi].
   */
  out: { frac: number; lo: number; hi: number; bits: number; signed: boolean; hiPerChannel?: number[] };
}

export interface ProgramConstant {
  dims: number[];
  /** Weights: m_w. Biases: m_b. Index tensors (Reshape shapes): plain integers. */
  data: Int32Array;
  frac?: number;
  /** Biases only: m_b aligned to the accumulator, rshift_round(m_b, f_b - (f_w + f_x)); exact in float64. */
  aligned?: Float64Array;
  /** Which data structure it is, for formats and export. */
  structure?: string;
}

export interface IntProgram {
  input: { name: string; shape: number[]; format: Format; structure: string };
  /** The integer logits (the tensor before a final Softmax). */
  output: { name: string; frac: number; shape: number[] };
  nodes: ProgramNode[];
  constants: Record<string, ProgramConstant>;
  /** Fractional length of every activation tensor. */
  fracOf: Record<string, number>;
}

/** Integer activations of one image: a flat Int32Array in NCHW (batch 1) order. */
export interface IntTensor {
  data: Int32Array;
  shape: number[];
  frac: number;
}
