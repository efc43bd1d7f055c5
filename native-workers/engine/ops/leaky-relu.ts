/**
 * LeakyRelu (one slope) and PRelu (a slope per channel): y = x for x >= 0, a x below. The slope
 * is a fixed-point constant with SLOPE_FRAC fractional bits, a = round(alpha 2^SLOPE_FRAC); the
 * output has its own format (the negative branch lands on a finer grid), so each branch is
 * requantized with one rounding: m_y = rshift_round(m_x, f_x - f_y) or
 * rshift_round(m_x a, f_x + SLOPE_FRAC - f_y), then clamped to the output format.
 */
import { attrFloat, toFloat32, floatTensor, type Node } from '../ir/graph.js';
import { requireInput, noMacs, shapeError, type OperatorModule, type FixedPointRules } from './operator.js';
import type { IntProgram, ProgramNode } from '../fixedpoint/program.js';
import { rshiftRound } from '../fixedpoint/format.js';

export const SLOPE_FRAC = 15;

/** Slopes on their fixed-point grid: round(alpha 2^SLOPE_FRAC). */
export function quantizeSlopes(slopes: ArrayLike<number>): Int32Array {
  return Int32Array.from(slopes, (s) => Math.round(s * 2 ** SLOPE_FRAC));
}

/** The slopes as fixed-point integers: one for LeakyRelu, one per channel (or one) for PRelu. */
function slopesOf(node: Node | ProgramNode, program?: IntProgram): ArrayLike<number> {
  if (node.op === 'LeakyRelu') return quantizeSlopes([attrFloat(node as Node, 'alpha', 0.01)]);
  return program!.constants[node.inputs[1]!]!.data;
}

/** Values per channel of one image (the spatial size of an NCHW tensor, 1 for NC). */
const channelStride = (shape: number[]): number => shape.slice(2).reduce((a, b) => a * b, 1);

const rules: FixedPointRules = {
  outputSigned: (_node, [s]) => s!,
  lowerSim(node, sim) {
    const x = node.inputs[0]!;
    // The float op with the slope already on its fixed-point grid: products and the one
    // rounding of sim.quantize equal the integer kernel's (exact while they fit float32).
    if (node.op === 'LeakyRelu') {
      const alpha = leakySlope(node);
      sim.quantize(sim.emit('LeakyRelu', [x], { alpha: { kind: 'float', value: alpha } }), node, node.outputs[0]!);
    } else {
      const t = sim.plan.graph.initializers.get(node.inputs[1]!)!;
      const q = Float32Array.from(quantizeSlopes(toFloat32(t)), (a) => a * 2 ** -SLOPE_FRAC);
      const slope = sim.newConstant(floatTensor(`sim/prelu/${node.name}/slope`, t.dims, q));
      sim.quantize(sim.emit('PRelu', [x, slope]), node, node.outputs[0]!);
    }
  },
  runInt(node, [x], program) {
    const a = slopesOf(node, program);
    const { lo, hi, frac } = node.out;
    const [rPos, rNeg] = [x!.frac - frac, x!.frac + SLOPE_FRAC - frac];
    const [inner, channels] = [channelStride(node.outShape), node.outShape[1]!];
    const out = new Int32Array(x!.data.length);
    for (let i = 0; i < out.length; i++) {
      const v = x!.data[i]!;
      const m =
        v >= 0
          ? rshiftRound(v, rPos)
          : rshiftRound(v * a[a.length === 1 ? 0 : Math.floor(i / inner) % channels]!, rNeg);
      out[i] = m < lo ? lo : m > hi ? hi : m;
    }
    return out;
  },
  emitC(node, c) {
    const x = node.inputs[0]!;
    const a = slopesOf(node, c.program);
    const fx = c.program.fracOf[x]!;
    const [rPos, rNeg] = [fx - node.out.frac, fx + SLOPE_FRAC - node.out.frac];
    const slope = a.length === 1 ? `${a[0]}` : `slope[(i / ${channelStride(node.outShape)}) % ${node.outShape[1]}]`;
    const n = node.outShape.reduce((p, d) => p * d, 1);
    return `    static const int32_t slope[${a.length}] = {${Array.from(a).join(', ')}};
    int i;
    (void)slope;
    for (i = 0; i < ${n}; i++) {
      const int64_t v = ${c.buffer(x)}[i];
      ${c.buffer(node.output)}[i] = fxpq_clamp(v >= 0 ? fxpq_rsr(v, ${rPos}) : fxpq_rsr(v * ${slope}, ${rNeg}), ${node.out.lo}, ${node.out.hi});
    }`;
  },
};

export const leakyRelu: OperatorModule = {
  op: 'LeakyRelu',
  formatRole: 'requantize',
  fusesActivation: false,
  inferShapes: (ctx) => [requireInput(ctx, 0)],
  macs: noMacs,
  fixedPoint: rules,
};

export const prelu: OperatorModule = {
  op: 'PRelu',
  formatRole: 'requantize',
  fusesActivation: false,
  inferShapes(ctx) {
    const x = requireInput(ctx, 0);
    const slope = ctx.constant(1);
    const n = slope?.data.length ?? 0;
    // One slope, or one per channel broadcast over the spatial axes: what FxPQ's kernel covers.
    if (!slope || !(n === 1 || (n === x[1] && slope.dims.filter((d) => d !== 1).length <= 1)))
      throw shapeError(ctx.node, 'FxPQ supports a constant PRelu slope that is one value or one per channel');
    return [x];
  },
  macs: noMacs,
  fixedPoint: rules,
};

/** LeakyRelu's slope on its fixed-point grid, as a float (exact). */
export function leakySlope(node: Node | ProgramNode): number {
  return slopesOf(node)[0]! * 2 ** -SLOPE_FRAC;
}
