/** Gemm with constant B (a fully connected layer): Y = alpha * A' B' + beta * C. */
import { attrFloat, attrInt } from '../ir/graph.js';
import { requireInput, shapeError, type OperatorModule } from './operator.js';

export const gemm: OperatorModule = {
  op: 'Gemm',
  formatRole: 'requantize',
  fusesActivation: true,
  inferShapes(ctx) {
    const a = requireInput(ctx, 0);
    const b = requireInput(ctx, 1);
    if (a.length !== 2 || b.length !== 2) throw shapeError(ctx.node, 'Gemm needs 2-D inputs');
    const transA = attrInt(ctx.node, 'transA', 0) === 1;
    const transB = attrInt(ctx.node, 'transB', 0) === 1;
    if (attrFloat(ctx.node, 'alpha', 1) !== 1 && ctx.constant(1) === undefined) {
      throw shapeError(ctx.node, 'alpha != 1 with non-constant weights is not supported');
    }
    const [m, k] = transA ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
    const [kb, n] = transB ? [b[1]!, b[0]!] : [b[0]!, b[1]!];
    if (k !== kb) throw shapeError(ctx.node, `inner dimensions differ (${k} vs ${kb})`);
    return [[m, n]];
  },
  macs(ctx, [y]) {
    const b = requireInput(ctx, 1);
    return y![0]! * b[0]! * b[1]!;
  },
};
