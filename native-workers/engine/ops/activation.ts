/**
 * Relu and Clip(lo, hi). Directly after Conv/Gemm/MatMul/Add they are folded into the
 * producer at import (its output clamp); a standalone one clamps integers in place, in its
 * input's format. Softmax may only end the graph: integer inference takes top-k on the logits.
 */
import { attrFloat, isFloatType, toFloat32, type Graph, type Node } from '../ir/graph.js';
import { requireInput, noMacs, shapeError, type OperatorModule } from './operator.js';
import { elementwise } from '../export/c-util.js';
import type { ProgramNode } from '../fixedpoint/program.js';

/** A Clip's real bounds: attributes before opset 11, constant inputs from 11 on. */
export function clipLimits(node: Node, graph: Graph): { min: number; max: number } {
  if (node.attrs['min'] || node.attrs['max'] || node.inputs.length === 1) {
    return { min: attrFloat(node, 'min', -Infinity), max: attrFloat(node, 'max', Infinity) };
  }
  const value = (i: number, fallback: number): number => {
    const t = node.inputs[i] ? graph.initializers.get(node.inputs[i]!) : undefined;
    return t && isFloatType(t.dataType) ? toFloat32(t)[0]! : fallback;
  };
  return { min: value(1, -Infinity), max: value(2, Infinity) };
}

/** A compiled standalone Clip's bounds on the integer grid of its input. */
function clipIntBounds(node: ProgramNode, frac: number): { lo: number; hi: number } {
  const min = node.attrs['min']?.kind === 'float' ? node.attrs['min'].value : -Infinity;
  const max = node.attrs['max']?.kind === 'float' ? node.attrs['max'].value : Infinity;
  return { lo: Math.ceil(min * 2 ** frac), hi: Math.floor(max * 2 ** frac) };
}

export const relu: OperatorModule = {
  op: 'Relu',
  formatRole: 'passthrough',
  fusesActivation: false,
  inferShapes: (ctx) => [requireInput(ctx, 0)],
  macs: noMacs,
  fixedPoint: {
    outputSigned: (_node, [s]) => s!,
    lowerSim(node, sim) {
      sim.emit('Relu', [node.inputs[0]!], {}, node.outputs[0]!);
    },
    runInt: (_node, [x]) => x!.data.map((v) => (v < 0 ? 0 : v)),
    emitC: (node, c) =>
      elementwise(node, c.buffer(node.inputs[0]!), c.buffer(node.output), (v) => `(${v} < 0 ? 0 : ${v})`),
  },
};

export const clip: OperatorModule = {
  op: 'Clip',
  formatRole: 'passthrough',
  fusesActivation: false,
  inferShapes(ctx) {
    // min and max (inputs from opset 11 on) are constant scalars: onnxruntime refuses others when it runs.
    for (const [i, what] of [
      [1, 'min'],
      [2, 'max'],
    ] as const) {
      if (!ctx.node.inputs[i]) continue;
      const t = ctx.constant(i);
      if (!t || t.data.length !== 1 || t.dims.length > 1)
        throw shapeError(ctx.node, `its ${what} (${ctx.node.inputs[i]}) is not a constant scalar`);
    }
    if (ctx.node.inputs.length > 3) throw shapeError(ctx.node, `it has ${ctx.node.inputs.length} inputs, at most 3`);
    return [requireInput(ctx, 0)];
  },
  macs: noMacs,
  fixedPoint: {
    outputSigned: (_node, [s]) => s!,
    lowerSim(node, sim) {
      // The bounds on the input's grid: ceil(min 2^f) 2^-f and floor(max 2^f) 2^-f, fed per assignment.
      const x = node.inputs[0]!;
      const id = sim.plan.activationOf.get(x)!;
      const { min, max } = clipLimits(node, sim.plan.graph);
      const bound = (v: number, round: (x: number) => number) => (frac: number) =>
        Float32Array.of(Number.isFinite(v) ? round(v * 2 ** frac) * 2 ** -frac : v);
      const lo = sim.feed(`sim/clip/${node.name}/lo`, {
        dims: [],
        deps: [id],
        make: (ctx) => ({ type: 'float32', dims: [], data: bound(min, Math.ceil)(ctx.format(id).frac) }),
      });
      const hi = sim.feed(`sim/clip/${node.name}/hi`, {
        dims: [],
        deps: [id],
        make: (ctx) => ({ type: 'float32', dims: [], data: bound(max, Math.floor)(ctx.format(id).frac) }),
      });
      sim.emit('Clip', [x, lo, hi], {}, node.outputs[0]!);
    },
    emitC(node, c) {
      const x = node.inputs[0]!;
      const { lo, hi } = clipIntBounds(node, c.program.fracOf[x]!);
      return elementwise(
        node,
        c.buffer(x),
        c.buffer(node.output),
        (v) => `fxpq_clamp(${v}, ${Math.max(lo, -(2 ** 31))}, ${Math.min(hi, 2 ** 31 - 1)})`,
      );
    },
    runInt(node, [x]) {
      const { lo, hi } = clipIntBounds(node, x!.frac);
      return x!.data.map((v) => (v < lo ? lo : v > hi ? hi : v));
    },
  },
};

export const softmax: OperatorModule = {
  op: 'Softmax',
  formatRole: 'terminal',
  fusesActivation: false,
  inferShapes: (ctx) => [requireInput(ctx, 0)],
  macs: noMacs,
};
