/** MaxPool (format pass-through), AveragePool and GlobalAveragePool (requantized through a fixed-point reciprocal). */
import { requireInput, noMacs, shapeError, type OperatorModule } from './operator.js';
import { poolWindow, windowOutputSize } from './spatial.js';
import { attrInt, floatTensor } from '../ir/graph.js';
import { asNode } from '../fixedpoint/kernel-util.js';
import { POOL_RECIPROCAL_BITS, poolReciprocal } from '../fixedpoint/format.js';
import type { IntTensor, ProgramNode } from '../fixedpoint/program.js';
import type { Window } from './spatial.js';

const samesign = (_node: unknown, [s]: boolean[]): boolean => s!;

/** Visit each output position's window over one channel plane; padded positions are skipped. */
function forEachWindow(
  x: IntTensor,
  outShape: number[],
  w: Window,
  visit: (plane: number, o: number, values: (fn: (v: number) => void) => void) => void,
): void {
  const [, C, H, W] = x.shape as [number, number, number, number];
  const [, , OH, OW] = outShape as [number, number, number, number];
  const [KH, KW] = w.kernel as [number, number];
  const [sh, sw] = w.strides as [number, number];
  const [dh, dw] = w.dilations as [number, number];
  const [pt, pl] = w.pads as [number, number];
  for (let c = 0; c < C; c++) {
    const base = c * H * W;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        visit(c, (c * OH + oh) * OW + ow, (fn) => {
          for (let kh = 0; kh < KH; kh++) {
            const ih = oh * sh - pt + kh * dh;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < KW; kw++) {
              const iw = ow * sw - pl + kw * dw;
              if (iw >= 0 && iw < W) fn(x.data[base + ih * W + iw]!);
            }
          }
        });
      }
    }
  }
}

/** C loops over each output position's window of one channel plane (padded positions skipped). */
function windowLoopC(
  xShape: number[],
  outShape: number[],
  w: Window,
  body: { init: string; visit: (v: string) => string; done: string },
  X: string,
): string {
  const [, C, H, W] = xShape as [number, number, number, number];
  const [, , OH, OW] = outShape as [number, number, number, number];
  const [KH, KW] = w.kernel as [number, number];
  const [sh, sw] = w.strides as [number, number];
  const [dh, dw] = w.dilations as [number, number];
  const [pt, pl] = w.pads as [number, number];
  return `    int c, oh, ow, kh, kw;
    for (c = 0; c < ${C}; c++) {
      for (oh = 0; oh < ${OH}; oh++) {
        for (ow = 0; ow < ${OW}; ow++) {
          const int o = (c * ${OH} + oh) * ${OW} + ow;
          ${body.init}
          for (kh = 0; kh < ${KH}; kh++) {
            const int ih = oh * ${sh} - ${pt} + kh * ${dh};
            if (ih < 0 || ih >= ${H}) continue;
            for (kw = 0; kw < ${KW}; kw++) {
              const int iw = ow * ${sw} - ${pl} + kw * ${dw};
              if (iw < 0 || iw >= ${W}) continue;
              ${body.visit(`${X}[(c * ${H} + ih) * ${W} + iw]`)}
            }
          }
          ${body.done}
        }
      }
    }`;
}

/** m_y = clamp(rshift_round(sum * R, P + f_x - f_y)) with R = round(2^P / n): spec §2. */
function averageRequantize(sum: number, n: number, x: IntTensor, node: ProgramNode): number {
  const R = poolReciprocal(n);
  const r = POOL_RECIPROCAL_BITS + x.frac - node.out.frac;
  const v = sum * R;
  const m = r > 0 ? Math.floor((v + 2 ** (r - 1)) * 2 ** -r) : v * 2 ** -r;
  return m < node.out.lo ? node.out.lo : m > node.out.hi ? node.out.hi : m;
}

export const maxPool: OperatorModule = {
  op: 'MaxPool',
  formatRole: 'passthrough',
  fusesActivation: false,
  inferShapes(ctx) {
    if (ctx.node.outputs.length > 1 && ctx.node.outputs[1])
      throw shapeError(ctx.node, 'the Indices output is not supported');
    const x = requireInput(ctx, 0);
    return [[x[0]!, x[1]!, ...windowOutputSize(x, poolWindow(ctx.node, x))]];
  },
  macs: noMacs,
  fixedPoint: {
    outputSigned: samesign,
    lowerSim(node, sim) {
      sim.emit('MaxPool', [node.inputs[0]!], node.attrs, node.outputs[0]!);
    },
    emitC(node, c) {
      const x = node.inputs[0]!;
      const Y = c.buffer(node.output);
      return windowLoopC(
        c.shape(x),
        node.outShape,
        poolWindow(asNode(node), c.shape(x)),
        { init: 'int32_t best = INT32_MIN;', visit: (v) => `if (${v} > best) best = ${v};`, done: `${Y}[o] = best;` },
        c.buffer(x),
      );
    },
    runInt(node, [x]) {
      const out = new Int32Array(node.outShape.reduce((p, d) => p * d, 1));
      forEachWindow(x!, node.outShape, poolWindow(asNode(node), x!.shape), (_c, o, values) => {
        let best = -Infinity;
        values((v) => {
          if (v > best) best = v;
        });
        out[o] = best;
      });
      return out;
    },
  },
};

export const averagePool: OperatorModule = {
  op: 'AveragePool',
  formatRole: 'requantize',
  fusesActivation: false,
  inferShapes(ctx) {
    const x = requireInput(ctx, 0);
    const window = poolWindow(ctx.node, x);
    if (window.pads.some((p) => p > 0) && attrInt(ctx.node, 'count_include_pad', 0) === 0) {
      // The divisor would vary per position; the fixed-point rule needs one reciprocal.
      throw shapeError(ctx.node, 'padded AveragePool with count_include_pad=0 is not supported');
    }
    return [[x[0]!, x[1]!, ...windowOutputSize(x, window)]];
  },
  macs: noMacs,
  fixedPoint: {
    outputSigned: samesign,
    lowerSim(node, sim) {
      // The window sum, exact in float32, as a depthwise convolution with a kernel of ones
      // (padded positions add zeros, as count_include_pad=1 counts them).
      const x = node.inputs[0]!;
      const channels = sim.plan.shapes.get(x)![1]!;
      const kernel = (node.attrs['kernel_shape'] as { value: number[] }).value;
      const n = kernel.reduce((p, d) => p * d, 1);
      const ones = sim.newConstant(
        floatTensor(`sim/ones/${node.name}`, [channels, 1, ...kernel], new Float32Array(channels * n).fill(1)),
      );
      const attrs = { ...node.attrs, group: { kind: 'int' as const, value: channels } };
      delete (attrs as Record<string, unknown>)['count_include_pad'];
      delete (attrs as Record<string, unknown>)['ceil_mode'];
      const sum = sim.emit('Conv', [x, ones], attrs);
      sim.quantizePooledSum(sum, n, node, node.outputs[0]!);
    },
    emitC(node, c) {
      const x = node.inputs[0]!;
      const window = poolWindow(asNode(node), c.shape(x));
      const n = window.kernel.reduce((p, d) => p * d, 1);
      const R = poolReciprocal(n);
      const r = POOL_RECIPROCAL_BITS + c.program.fracOf[x]! - node.out.frac;
      const Y = c.buffer(node.output);
      return windowLoopC(
        c.shape(x),
        node.outShape,
        window,
        {
          init: 'int64_t sum = 0;',
          visit: (v) => `sum += ${v};`,
          done: `${Y}[o] = fxpq_clamp(fxpq_rsr(sum * ${R}, ${r}), ${node.out.lo}, ${node.out.hi});`,
        },
        c.buffer(x),
      );
    },
    runInt(node, [x]) {
      const window = poolWindow(asNode(node), x!.shape);
      const n = window.kernel.reduce((p, d) => p * d, 1);
      const out = new Int32Array(node.outShape.reduce((p, d) => p * d, 1));
      forEachWindow(x!, node.outShape, window, (_c, o, values) => {
        let sum = 0;
        values((v) => (sum += v));
        out[o] = averageRequantize(sum, n, x!, node);
      });
      return out;
    },
  },
};

export const globalAveragePool: OperatorModule = {
  op: 'GlobalAveragePool',
  formatRole: 'requantize',
  fusesActivation: false,
  inferShapes(ctx) {
    const x = requireInput(ctx, 0);
    return [[x[0]!, x[1]!, ...x.slice(2).map(() => 1)]];
  },
  macs: noMacs,
  fixedPoint: {
    outputSigned: samesign,
    lowerSim(node, sim) {
      const x = node.inputs[0]!;
      const shape = sim.plan.shapes.get(x)!;
      const axes = shape.slice(2).map((_, i) => i + 2);
      const sum = sim.emit('ReduceSum', [x, sim.int64(`sim/axes/${node.name}`, axes)], {
        keepdims: { kind: 'int', value: 1 },
      });
      sim.quantizePooledSum(
        sum,
        shape.slice(2).reduce((p, d) => p * d, 1),
        node,
        node.outputs[0]!,
      );
    },
    emitC(node, c) {
      const x = node.inputs[0]!;
      const channels = c.shape(x)[1]!;
      const n = c
        .shape(x)
        .slice(2)
        .reduce((p, d) => p * d, 1);
      const R = poolReciprocal(n);
      const r = POOL_RECIPROCAL_BITS + c.program.fracOf[x]! - node.out.frac;
      return `    int ch, i;
    for (ch = 0; ch < ${channels}; ch++) {
      int64_t sum = 0;
      for (i = 0; i < ${n}; i++) sum += ${c.buffer(x)}[ch * ${n} + i];
      ${c.buffer(node.output)}[ch] = fxpq_clamp(fxpq_rsr(sum * ${R}, ${r}), ${node.out.lo}, ${node.out.hi});
    }`;
    },
    runInt(node, [x]) {
      const channels = x!.shape[1]!;
      const n = x!.data.length / channels;
      const out = new Int32Array(channels);
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let i = 0; i < n; i++) sum += x!.data[c * n + i]!;
        out[c] = averageRequantize(sum, n, x!, node);
      }
      return out;
    },
  },
};
