/** Data-movement operators: Flatten, Reshape, Transpose. Integers move, formats stay. */
import { attrInt, attrInts, tensorToNumbers } from '../ir/graph.js';
import { requireInput, noMacs, shapeError, type OperatorModule, type FixedPointRules } from './operator.js';
import { elementwise } from '../export/c-util.js';

/** Data movement keeps integers and formats; only Transpose reorders them. */
const moveData = (op: string): FixedPointRules => ({
  outputSigned: (_node, [s]) => s!,
  lowerSim(node, sim) {
    sim.emit(op, [node.inputs[0]!], node.attrs, node.outputs[0]!);
  },
  runInt: (_node, [x]) => x!.data,
  emitC: (node, c) => elementwise(node, c.buffer(node.inputs[0]!), c.buffer(node.output), (v) => v),
});

export const flatten: OperatorModule = {
  op: 'Flatten',
  formatRole: 'passthrough',
  fusesActivation: false,
  inferShapes(ctx) {
    const x = requireInput(ctx, 0);
    const a = attrInt(ctx.node, 'axis', 1);
    const axis = a < 0 ? a + x.length : a;
    if (!Number.isInteger(axis) || axis < 0 || axis > x.length)
      throw shapeError(ctx.node, `axis ${a} is outside the input's rank ${x.length}`);
    // Axis 0 folds the whole batch into one row: the output would depend on the batch size.
    if (axis === 0)
      throw shapeError(ctx.node, 'axis 0 folds the batch into one row; a classifier flattens from axis 1');
    const outer = x.slice(0, axis).reduce((p, d) => p * d, 1);
    const inner = x.slice(axis).reduce((p, d) => p * d, 1);
    return [[outer, inner]];
  },
  macs: noMacs,
  fixedPoint: moveData('Flatten'),
};

type Indexable = { length: number; [i: number]: number | bigint };

/** Permute the axes of a row-major array (any typed array: floats, int64 shapes, integers). */
export function transposeData<T extends Indexable>(
  data: T,
  shape: number[],
  perm: number[],
  out: T,
): { dims: number[]; data: T } {
  const rank = shape.length;
  const dims = perm.map((p) => shape[p]!);
  const inStrides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) inStrides[i] = inStrides[i + 1]! * shape[i + 1]!;
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < data.length; o++) {
    let s = 0;
    for (let i = 0; i < rank; i++) s += idx[i]! * inStrides[perm[i]!]!;
    out[o] = data[s]!;
    for (let i = rank - 1; i >= 0; i--) {
      if (++idx[i]! < dims[i]!) break;
      idx[i] = 0;
    }
  }
  return { dims, data: out };
}

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
  fixedPoint: {
    ...moveData('Reshape'),
    lowerSim(node, sim) {
      // The simulation batches images: a target that fixes batch 1 (mnist-8) copies the batch instead.
      const target = sim.plan.graph.initializers.get(node.inputs[1]!);
      let shapeName = sim.constant(node.inputs[1]!);
      if (target) {
        const dims = tensorToNumbers(target);
        if (dims[0] === 1 && sim.plan.shapes.get(node.inputs[0]!)![0] === 1)
          shapeName = sim.int64(`sim/shape/${node.name}`, [0, ...dims.slice(1)]);
      }
      sim.emit('Reshape', [node.inputs[0]!, shapeName], node.attrs, node.outputs[0]!);
    },
  },
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
  fixedPoint: {
    ...moveData('Transpose'),
    emitC(node, c) {
      const x = node.inputs[0]!;
      const shape = c.shape(x);
      const rank = shape.length;
      const perm = node.attrs['perm']?.kind === 'ints' ? node.attrs['perm'].value : shape.map((_, i) => rank - 1 - i);
      const inStrides = shape.map((_, i) => shape.slice(i + 1).reduce((p, d) => p * d, 1));
      const dims = perm.map((p) => shape[p]!);
      const idx = dims.map((_, i) => `i${i}`);
      const loops = dims.map((d, i) => `${'  '.repeat(i)}    for (i${i} = 0; i${i} < ${d}; i${i}++)`).join('\n');
      const src = perm.map((p, i) => `i${i} * ${inStrides[p]}`).join(' + ');
      return `    int ${idx.join(', ')}, o = 0;\n${loops}\n${'  '.repeat(rank)}    ${c.buffer(node.output)}[o++] = ${c.buffer(x)}[${src}];`;
    },
    runInt(node, [x]) {
      const rank = x!.shape.length;
      const perm =
        node.attrs['perm']?.kind === 'ints' ? node.attrs['perm'].value : x!.shape.map((_, i) => rank - 1 - i);
      return transposeData(x!.data, x!.shape, perm, new Int32Array(x!.data.length)).data;
    },
  },
};
