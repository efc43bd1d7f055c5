/** Data-movement operators: Flatten, Reshape, Transpose. Integers move, formats stay. */
import { attrInt, attrInts, tensorToNumbers } from '../ir/graph.js';
import { requireInput, noMacs, shapeError, type OperatorModule } from './operator.js';

export const flatten: OperatorModule = {
  op: 'Flatten',
  formatRole: 'passthrough',
  fusesActivation: false,
  inferShapes(ctx) {
    const x = requireInput(ctx, 0);
    const a = attrInt(ctx.node, 'axis', 1);
    const axis = a < 0 ? a + x.length : a;
    const outer = x.slice(0, axis).reduce((p, d) => p * d, 1);
    const inner = x.slice(axis).reduce((p, d) => p * d, 1);
    return [[outer, inner]];
  },
  macs: noMacs,
};

/** ONNX Reshape semantics: 0 copies the input dimension (unless allowzero), -1 is inferred. */
export function reshapeTarget(input: number[], requested: number[], allowZero: boolean): number[] | string {
  const total = input.reduce((p, d) => p * d, 1);
  const out = requested.map((d, i) => (d === 0 && !allowZero ? input[i]! : d));
  const unknown = out.filter((d) => d === -1).length;
  if (unknown > 1) return 'more than one -1 in the target shape';
  const known = out.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  if (unknown === 1) {
    if (known === 0 || total % known !== 0) return `cannot reshape ${total} values into [${requested.join(', ')}]`;
    out[out.indexOf(-1)] = total / known;
  } else if (known !== total) {
    return `cannot reshape ${total} values into [${requested.join(', ')}]`;
  }
  return out;
}

export const reshape: OperatorModule = {
  op: 'Reshape',
  formatRole: 'passthrough',
  fusesActivation: false,
  inferShapes(ctx) {
    const x = requireInput(ctx, 0);
    const shapeTensor = ctx.constant(1);
    const requested = shapeTensor ? tensorToNumbers(shapeTensor) : attrInts(ctx.node, 'shape', []);
    if (!shapeTensor && !ctx.node.attrs['shape']) throw shapeError(ctx.node, 'the target shape must be a constant');
    const out = reshapeTarget(x, requested, attrInt(ctx.node, 'allowzero', 0) === 1);
    if (typeof out === 'string') throw shapeError(ctx.node, out);
    return [out];
  },
  macs: noMacs,
};

export const transpose: OperatorModule = {
  op: 'Transpose',
  formatRole: 'passthrough',
  fusesActivation: false,
  inferShapes(ctx) {
    const x = requireInput(ctx, 0);
    const perm = attrInts(
      ctx.node,
      'perm',
      x.map((_, i) => x.length - 1 - i),
    );
    return [perm.map((p) => x[p]!)];
  },
  macs: noMacs,
};
