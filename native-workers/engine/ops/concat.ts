/** Concat along one axis; each input is requantized to the output format. */
import { attrInt } from '../ir/graph.js';
import { requireInput, noMacs, shapeError, type OperatorModule } from './operator.js';

export const concat: OperatorModule = {
  op: 'Concat',
  formatRole: 'requantize',
  fusesActivation: false,
  inferShapes(ctx) {
    const shapes = ctx.inputs.map((_, i) => requireInput(ctx, i));
    const first = shapes[0]!;
    const axisAttr = attrInt(ctx.node, 'axis', 1);
    const axis = axisAttr < 0 ? axisAttr + first.length : axisAttr;
    const out = [...first];
    out[axis] = 0;
    for (const s of shapes) {
      if (s.length !== first.length) throw shapeError(ctx.node, 'inputs differ in rank');
      out[axis]! += s[axis]!;
    }
    return [out];
  },
  macs: noMacs,
};
