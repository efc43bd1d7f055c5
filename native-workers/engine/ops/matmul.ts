/** MatMul with a constant 2-D right-hand side (a fully connected layer without bias). */
import { requireInput, shapeError, type OperatorModule } from './operator.js';

export const matmul: OperatorModule = {
  op: 'MatMul',
  formatRole: 'requantize',
  fusesActivation: true,
  inferShapes(ctx) {
    const a = requireInput(ctx, 0);
    const b = requireInput(ctx, 1);
    if (b.length !== 2 || a.length < 2) {
      throw shapeError(ctx.node, 'only MatMul of an N-D input by a constant 2-D matrix is supported');
    }
    if (a[a.length - 1] !== b[0]) throw shapeError(ctx.node, `inner dimensions differ (${a[a.length - 1]} vs ${b[0]})`);
    return [[...a.slice(0, -1), b[1]!]];
  },
  macs(ctx, [y]) {
    const b = requireInput(ctx, 1);
    return (y!.reduce((p, d) => p * d, 1) / b[1]!) * b[0]! * b[1]!;
  },
};
