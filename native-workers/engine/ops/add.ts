/** Add of two activations (residual connections); a constant operand is folded into a bias at import. */
import { requireInput, noMacs, type OperatorModule } from './operator.js';
import { broadcastShapes } from './broadcast.js';

export const add: OperatorModule = {
  op: 'Add',
  formatRole: 'requantize',
  fusesActivation: true,
  inferShapes(ctx) {
    return [broadcastShapes(ctx.node, requireInput(ctx, 0), requireInput(ctx, 1))];
  },
  macs: noMacs,
};
