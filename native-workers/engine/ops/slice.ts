/**
 * Slice of an activation with constant bounds and step 1, never on the batch axis: the channel
 * split of ShuffleNet (`x.chunk(2, dim=1)`). Integers and the format pass through; the kernel
 * copies the kept box.
 */
import { attrInts, tensorToNumbers, type Node } from '../ir/graph.js';
import { requireInput, noMacs, shapeError, type OperatorModule, type ShapeContext } from './operator.js';
import type { IntProgram, ProgramNode } from '../fixedpoint/program.js';

/** Per axis of `x`: the first kept index (the box's shape is the output shape). */
function boxStart(
  node: Node,
  x: number[],
  starts: number[],
  ends: number[],
  axesIn: number[] | undefined,
  steps: number[] | undefined,
): { begin: number[]; shape: number[] } {
  const rank = x.length;
  const axes = (axesIn ?? starts.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a));
  if (steps && steps.some((s) => s !== 1)) throw shapeError(node, 'FxPQ slices activations with step 1 only');
  if (axes.includes(0)) throw shapeError(node, 'FxPQ does not slice the batch axis');
  const begin = x.map(() => 0);
  const shape = [...x];
  axes.forEach((a, i) => {
    const n = x[a]!;
    const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
    begin[a] = clamp(starts[i]!);
    shape[a] = Math.max(0, clamp(ends[i]!) - begin[a]!);
  });
  return { begin, shape };
}

function constants(get: (i: number) => number[] | undefined, node: Node) {
  return {
    starts: get(1) ?? attrInts(node, 'starts', []),
    ends: get(2) ?? attrInts(node, 'ends', []),
    axes: get(3) ?? (node.attrs['axes'] ? attrInts(node, 'axes', []) : undefined),
    steps: get(4),
  };
}

function box(node: ProgramNode, x: number[], program: IntProgram): { begin: number[]; shape: number[] } {
  const asNode = node as unknown as Node;
  const c = constants((i) => {
    const name = node.inputs[i];
    const k = name ? program.constants[name] : undefined;
    return k ? Array.from(k.data) : undefined;
  }, asNode);
  return boxStart(asNode, x, c.starts, c.ends, c.axes, c.steps);
}

/** Flat index of each kept element, in output order. */
function sources(x: number[], begin: number[], shape: number[]): number[] {
  const strides = x.map((_, i) => x.slice(i + 1).reduce((p, d) => p * d, 1));
  const out: number[] = [];
  const idx = shape.map(() => 0);
  const total = shape.reduce((p, d) => p * d, 1);
  for (let o = 0; o < total; o++) {
    out.push(idx.reduce((s, k, i) => s + (k + begin[i]!) * strides[i]!, 0));
    for (let i = shape.length - 1; i >= 0; i--) {
      if (++idx[i]! < shape[i]!) break;
      idx[i] = 0;
    }
  }
  return out;
}

export const slice: OperatorModule = {
  op: 'Slice',
  formatRole: 'passthrough',
  fusesActivation: false,
  inferShapes(ctx: ShapeContext) {
    const x = requireInput(ctx, 0);
    const c = constants((i) => {
      const t = ctx.node.inputs[i] ? ctx.constant(i) : undefined;
      if (ctx.node.inputs[i] && !t) throw shapeError(ctx.node, 'its bounds must be constants');
      return t ? tensorToNumbers(t) : undefined;
    }, ctx.node);
    return [boxStart(ctx.node, x, c.starts, c.ends, c.axes, c.steps).shape];
  },
  macs: noMacs,
  fixedPoint: {
    outputSigned: (_node, [s]) => s!,
    lowerSim(node, sim) {
      const rest = node.inputs.slice(1).map((name) => (name ? sim.constant(name) : ''));
      sim.emit('Slice', [node.inputs[0]!, ...rest], node.attrs, node.outputs[0]!);
    },
    runInt(node, [x], program) {
      const { begin, shape } = box(node, x!.shape, program);
      return Int32Array.from(sources(x!.shape, begin, shape), (s) => x!.data[s]!);
    },
    emitC(node, c) {
      const x = node.inputs[0]!;
      const xs = c.shape(x);
      const { begin, shape } = box(node, xs, c.program);
      const strides = xs.map((_, i) => xs.slice(i + 1).reduce((p, d) => p * d, 1));
      const idx = shape.map((_, i) => `i${i}`);
      const loops = shape.map((d, i) => `${'  '.repeat(i)}    for (i${i} = 0; i${i} < ${d}; i${i}++)`).join('\n');
      const src = shape.map((_, i) => `(i${i} + ${begin[i]}) * ${strides[i]}`).join(' + ');
      return `    int ${idx.join(', ')}, o = 0;\n${loops}\n${'  '.repeat(shape.length)}    ${c.buffer(node.output)}[o++] = ${c.buffer(x)}[${src}];`;
    },
  },
};
