/** MaxPool (format pass-through), AveragePool and GlobalAveragePool (requantized through a fixed-point reciprocal). */
import { requireInput, noMacs, shapeError, type OperatorModule } from './operator.js';
import { poolWindow, windowOutputSize } from './spatial.js';
import { attrInt } from '../ir/graph.js';

export const maxPool: OperatorModule = {
  op: 'MaxPool',
  formatRole: 'passthrough',
  fusesActivation: false,
  inferShapes(ctx) {
    if (ctx.node.outputs.length > 1 && ctx.node.outputs[1])
      throw shapeError(ctx.node, 'the Indices output is not supported');
    const x = requireInput(ctx, 0);
    return [[x[0]!, x[1]!, ...windowOutputSize(x, poolWindow(ctx.node, x))]];
  },
  macs: noMacs,
};

export const averagePool: OperatorModule = {
  op: 'AveragePool',
  formatRole: 'requantize',
  fusesActivation: false,
  inferShapes(ctx) {
    const x = requireInput(ctx, 0);
    const window = poolWindow(ctx.node, x);
    if (window.pads.some((p) => p > 0) && attrInt(ctx.node, 'count_include_pad', 0) === 0) {
      // The divisor would vary per position; the fixed-point rule needs one reciprocal.
      throw shapeError(ctx.node, 'padded AveragePool with count_include_pad=0 is not supported');
    }
    return [[x[0]!, x[1]!, ...windowOutputSize(x, window)]];
  },
  macs: noMacs,
};

export const globalAveragePool: OperatorModule = {
  op: 'GlobalAveragePool',
  formatRole: 'requantize',
  fusesActivation: false,
  inferShapes(ctx) {
    const x = requireInput(ctx, 0);
    return [[x[0]!, x[1]!, ...x.slice(2).map(() => 1)]];
  },
  macs: noMacs,
};
