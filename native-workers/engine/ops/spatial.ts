/** Window arithmetic shared by Conv and the pooling operators (ONNX auto_pad/pads rules). */
import { attrInt, attrInts, attrString, type Node, type Shape } from '../ir/graph.js';
import { shapeError } from './operator.js';

/** The largest kernel, stride or dilation a window may have (the validator's largest dimension). */
export const MAX_WINDOW = 1 << 16;

export interface Window {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** [begin..., end...] as in ONNX `pads`. */
  pads: number[];
}

export function resolveWindow(node: Node, input: Shape, kernel: number[], ceilMode = false): Window {
  const rank = kernel.length;
  const strides = attrInts(node, 'strides', Array(rank).fill(1));
  const dilations = attrInts(node, 'dilations', Array(rank).fill(1));
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  let pads = attrInts(node, 'pads', Array(2 * rank).fill(0));
  const within = (v: number[], n: number, lo: number): boolean =>
    v.length === n && v.every((d) => Number.isSafeInteger(d) && d >= lo && d <= MAX_WINDOW);
  if (!within(kernel, rank, 1))
    throw shapeError(node, `kernel [${kernel.join(', ')}] is not ${rank} sizes from 1 to ${MAX_WINDOW}`);
  if (!within(strides, rank, 1))
    throw shapeError(node, `strides [${strides.join(', ')}] are not ${rank} values from 1 to ${MAX_WINDOW}`);
  if (!within(dilations, rank, 1))
    throw shapeError(node, `dilations [${dilations.join(', ')}] are not ${rank} values from 1 to ${MAX_WINDOW}`);
  if ((autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') && dilations.some((d) => d !== 1))
    // onnxruntime refuses this combination when it runs the model, not when it loads it.
    throw shapeError(
      node,
      `auto_pad ${autoPad} with dilations [${dilations.join(', ')}] is not supported (onnxruntime does not run it); use explicit pads`,
    );
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = Array(2 * rank).fill(0);
    for (let i = 0; i < rank; i++) {
      const size = input[2 + i]!;
      const out = Math.ceil(size / strides[i]!);
      const effective = (kernel[i]! - 1) * dilations[i]! + 1;
      const total = Math.max(0, (out - 1) * strides[i]! + effective - size);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + rank] = total - pads[i]!;
    }
  } else if (autoPad === 'VALID') {
    pads = Array(2 * rank).fill(0);
  } else if (autoPad !== 'NOTSET') {
    throw shapeError(node, `auto_pad ${autoPad} is not an ONNX value`);
  }
  if (ceilMode) {
    // Not needed by the supported models; refuse rather than guess the ONNX edge rules.
    throw shapeError(node, 'ceil_mode=1 is not supported');
  }
  return { kernel, strides, dilations, pads };
}

export function windowOutputSize(input: Shape, w: Window): number[] {
  return w.kernel.map((k, i) => {
    const size = input[2 + i]!;
    const effective = (k - 1) * w.dilations[i]! + 1;
    return Math.floor((size + w.pads[i]! + w.pads[i + w.kernel.length]! - effective) / w.strides[i]!) + 1;
  });
}

export function poolWindow(node: Node, input: Shape): Window {
  const kernel = attrInts(node, 'kernel_shape', []);
  if (kernel.length !== input.length - 2) throw shapeError(node, 'kernel_shape does not match the input rank');
  return resolveWindow(node, input, kernel, attrInt(node, 'ceil_mode', 0) === 1);
}
