/**
 * Pad with zeros on the spatial axes of an NCHW tensor, where it cannot fold into the next
 * layer's own padding (before a MaxPool, say). Zero is exact in every format, so the integers
 * and the format pass through; the kernel copies into a zero-filled output.
 */
import { attrInts, attrString, tensorToNumbers, type Node } from '../ir/graph.js';
import { requireInput, noMacs, shapeError, type OperatorModule, type ShapeContext } from './operator.js';
import type { IntProgram, ProgramNode } from '../fixedpoint/program.js';

/** [top, left, bottom, right] of a 4-D NCHW pad; refuses anything else by name. */
function spatialPads(node: Node, pads: number[], value: number): [number, number, number, number] {
  if (attrString(node, 'mode', 'constant') !== 'constant' || value !== 0)
    throw shapeError(node, 'FxPQ pads with zeros only (mode constant, value 0)');
  if (pads.length !== 8 || pads[0] !== 0 || pads[1] !== 0 || pads[4] !== 0 || pads[5] !== 0 || pads.some((p) => p < 0))
    throw shapeError(node, 'FxPQ pads the height and width of an NCHW tensor only, never by a negative amount');
  return [pads[2]!, pads[3]!, pads[6]!, pads[7]!];
}

function padsOf(ctx: ShapeContext): [number, number, number, number] {
  const p = ctx.constant(1);
  const v = ctx.constant(2);
  return spatialPads(ctx.node, p ? tensorToNumbers(p) : attrInts(ctx.node, 'pads', []), v ? tensorToNumbers(v)[0]! : 0);
}

/** [top, left] of a compiled Pad: its pads constant (opset 11 on) or attribute. */
function programPads(node: ProgramNode, program: IntProgram): [number, number] {
  const c = node.inputs[1] ? program.constants[node.inputs[1]] : undefined;
  const pads = c ? Array.from(c.data) : attrInts(node as unknown as Node, 'pads', []);
  return [pads[2]!, pads[3]!];
}

export const pad: OperatorModule = {
  op: 'Pad',
  formatRole: 'passthrough',
  fusesActivation: false,
  inferShapes(ctx) {
    const x = requireInput(ctx, 0);
    if (x.length !== 4) throw shapeError(ctx.node, 'FxPQ pads 4-D NCHW tensors only');
    const [t, l, b, r] = padsOf(ctx);
    return [[x[0]!, x[1]!, x[2]! + t + b, x[3]! + l + r]];
  },
  macs: noMacs,
  fixedPoint: {
    outputSigned: (_node, [s]) => s!,
    lowerSim(node, sim) {
      const rest = node.inputs.slice(1).map((name) => (name ? sim.constant(name) : ''));
      sim.emit('Pad', [node.inputs[0]!, ...rest], node.attrs, node.outputs[0]!);
    },
    runInt(node, [x], program) {
      const [t, l] = programPads(node, program);
      const [, C, H, W] = node.outShape as [number, number, number, number];
      const [h, w] = [x!.shape[2]!, x!.shape[3]!];
      const out = new Int32Array(C * H * W);
      for (let c = 0; c < C; c++)
        for (let i = 0; i < h; i++)
          out.set(x!.data.subarray((c * h + i) * w, (c * h + i + 1) * w), (c * H + i + t!) * W + l!);
      return out;
    },
    emitC(node, c) {
      const x = node.inputs[0]!;
      const [t, l] = programPads(node, c.program);
      const [, C, H, W] = node.outShape as [number, number, number, number];
      const [, , h, w] = c.shape(x) as [number, number, number, number];
      return `    int i, ch, row, col;
    for (i = 0; i < ${C * H * W}; i++) ${c.buffer(node.output)}[i] = 0;
    for (ch = 0; ch < ${C}; ch++)
      for (row = 0; row < ${h}; row++)
        for (col = 0; col < ${w}; col++)
          ${c.buffer(node.output)}[(ch * ${H} + row + ${t}) * ${W} + col + ${l}] = ${c.buffer(x)}[(ch * ${h} + row) * ${w} + col];`;
    },
  },
};
