/** Conv (grouped and depthwise included), 1-D/2-D, with an optional fused Relu/Clip. */
import { attrInt, attrInts } from '../ir/graph.js';
import { requireInput, shapeError, type OperatorModule } from './operator.js';
import { resolveWindow, windowOutputSize } from './spatial.js';

export const conv: OperatorModule = {
  op: 'Conv',
  formatRole: 'requantize',
  fusesActivation: true,
  inferShapes(ctx) {
    const x = requireInput(ctx, 0);
    const w = requireInput(ctx, 1);
    const group = attrInt(ctx.node, 'group', 1);
    if (x.length < 3) throw shapeError(ctx.node, `input rank ${x.length} is too small for a convolution`);
    if (x[1] !== w[1]! * group) {
      throw shapeError(ctx.node, `input has ${x[1]} channels but weights expect ${w[1]! * group}`);
    }
    const kernel = attrInts(ctx.node, 'kernel_shape', w.slice(2));
    const window = resolveWindow(ctx.node, x, kernel);
    return [[x[0]!, w[0]!, ...windowOutputSize(x, window)]];
  },
  macs(ctx, [y]) {
    const w = requireInput(ctx, 1);
    // Per output element: (Cin / group) * kernel volume products.
    const perOutput = w.slice(1).reduce((a, b) => a * b, 1);
    return y!.slice(1).reduce((a, b) => a * b, 1) * perOutput;
  },
};
