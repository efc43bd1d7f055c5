/**
 * Relu and Clip(lo, hi). Directly after Conv/Gemm/MatMul/Add they are folded into the
 * producer at import (its output clamp); a standalone one clamps integers in place.
 * Softmax may only end the graph: integer inference takes top-k on the logits.
 */
import { requireInput, noMacs, type OperatorModule } from './operator.js';

export const relu: OperatorModule = {
  op: 'Relu',
  formatRole: 'passthrough',
  fusesActivation: false,
  inferShapes: (ctx) => [requireInput(ctx, 0)],
  macs: noMacs,
};

export const clip: OperatorModule = {
  op: 'Clip',
  formatRole: 'passthrough',
  fusesActivation: false,
  inferShapes: (ctx) => [requireInput(ctx, 0)],
  macs: noMacs,
};

export const softmax: OperatorModule = {
  op: 'Softmax',
  formatRole: 'terminal',
  fusesActivation: false,
  inferShapes: (ctx) => [requireInput(ctx, 0)],
  macs: noMacs,
};
