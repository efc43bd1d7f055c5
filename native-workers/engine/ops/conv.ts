/** Conv (grouped and depthwise included), 1-D/2-D, with an optional fused Relu/Clip. */
import { attrInt, attrInts } from '../ir/graph.js';
import { requireInput, shapeError, type OperatorModule } from './operator.js';
import { resolveWindow, windowOutputSize } from './spatial.js';
import { asNode, constantOf, requantizeInto } from '../fixedpoint/kernel-util.js';
import { linearLayerSign, lowerLinearLayer } from './linear-layer.js';
import { runLinearWasm } from '../fixedpoint/wasm-linear.js';
import type { IntTensor, ProgramNode } from '../fixedpoint/program.js';

/** Shapes and window of a 2-D Conv, shared by both integer kernels. */
function geometry(node: ProgramNode, x: IntTensor, wDims: number[]) {
  const [, , H, W] = x.shape as [number, number, number, number];
  const [OC, Cg, KH, KW] = wDims as [number, number, number, number];
  const [, , OH, OW] = node.outShape as [number, number, number, number];
  const group = attrInt(asNode(node), 'group', 1);
  const window = resolveWindow(asNode(node), x.shape, [KH, KW]);
  const [sh, sw] = window.strides as [number, number];
  const [dh, dw] = window.dilations as [number, number];
  const [pt, pl] = window.pads as [number, number];
  return { H, W, OC, Cg, KH, KW, OH, OW, group, sh, sw, dh, dw, pt, pl };
}

export const conv: OperatorModule = {
  op: 'Conv',
  formatRole: 'requantize',
  fusesActivation: true,
  inferShapes(ctx) {
    const x = requireInput(ctx, 0);
    const w = requireInput(ctx, 1);
    const group = attrInt(ctx.node, 'group', 1);
    if (x.length < 3) throw shapeError(ctx.node, `input rank ${x.length} is too small for a convolution`);
    if (w.length !== x.length)
      throw shapeError(ctx.node, `weights of rank ${w.length} do not fit an input of rank ${x.length}`);
    if (!Number.isSafeInteger(group) || group < 1 || w[0]! % group !== 0)
      throw shapeError(ctx.node, `group ${group} does not divide its ${w[0]} output channels`);
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
  fixedPoint: {
    weightInput: 1,
    biasInput: 2,
    outputSigned: linearLayerSign,
    lowerSim: lowerLinearLayer,
    emitC(node, c) {
      const x = node.inputs[0]!;
      const [wName, bName] = [node.inputs[1]!, node.inputs[2]];
      const w = c.program.constants[wName]!;
      const [, , H, W] = c.shape(x) as [number, number, number, number];
      const [OC, Cg, KH, KW] = w.dims as [number, number, number, number];
      const [, , OH, OW] = node.outShape as [number, number, number, number];
      const group = attrInt(asNode(node), 'group', 1);
      const win = resolveWindow(asNode(node), c.shape(x), [KH, KW]);
      const [sh, sw] = win.strides as [number, number];
      const [dh, dw] = win.dilations as [number, number];
      const [pt, pl] = win.pads as [number, number];
      const fx = c.program.fracOf[x]!;
      const acc = c.accumulator(wName, x, Cg * KH * KW, bName);
      const b = bName ? c.program.constants[bName]! : undefined;
      const init = b ? `(${acc})fxpq_rsr(${c.constant(bName!, 'oc')}, ${b.frac! - (w.frac! + fx)})` : '0';
      const X = c.buffer(x);
      // The valid kernel rows and columns of each output position are computed once per row and
      // column, so the innermost loop is a plain multiply-accumulate without padding tests.
      return `    int oc, oh, ow, ic, kh, kw;
    for (oc = 0; oc < ${OC}; oc++) {
      const int g = oc / ${OC / group};
      for (oh = 0; oh < ${OH}; oh++) {
        const int ih0 = oh * ${sh} - ${pt};
        const int kh_lo = ih0 >= 0 ? 0 : (-ih0 + ${dh - 1}) / ${dh};
        const int kh_hi_raw = (${H - 1} - ih0) / ${dh} + 1;
        const int kh_hi = ih0 > ${H - 1} ? 0 : (kh_hi_raw < ${KH} ? kh_hi_raw : ${KH});
        for (ow = 0; ow < ${OW}; ow++) {
          const int iw0 = ow * ${sw} - ${pl};
          const int kw_lo = iw0 >= 0 ? 0 : (-iw0 + ${dw - 1}) / ${dw};
          const int kw_hi_raw = (${W - 1} - iw0) / ${dw} + 1;
          const int kw_hi = iw0 > ${W - 1} ? 0 : (kw_hi_raw < ${KW} ? kw_hi_raw : ${KW});
          ${acc} acc = ${init};
          for (ic = 0; ic < ${Cg}; ic++) {
            for (kh = kh_lo; kh < kh_hi; kh++) {
              const int ih = ih0 + kh * ${dh};
              for (kw = kw_lo; kw < kw_hi; kw++) {
                acc += (${acc})${c.constant(wName, `((oc * ${Cg} + ic) * ${KH} + kh) * ${KW} + kw`)} * ${X}[((g * ${Cg} + ic) * ${H} + ih) * ${W} + iw0 + kw * ${dw}];
              }
            }
          }
          ${c.buffer(node.output)}[(oc * ${OH} + oh) * ${OW} + ow] = fxpq_clamp(fxpq_rsr((int64_t)acc, ${w.frac! + fx - node.out.frac}), ${node.out.lo}, ${node.out.hi});
        }
      }
    }`;
    },
    runInt(node, [x], program) {
      const w = constantOf(program, node, 1);
      const bias = node.inputs[2] ? constantOf(program, node, 2) : undefined;
      const { H, W, OC, Cg, KH, KW, OH, OW, group, sh, sw, dh, dw, pt, pl } = geometry(node, x!, w.dims);
      const out = new Int32Array(OC * OH * OW);
      const P = OH * OW;
      const Kc = Cg * KH * KW;
      const acc = new Float64Array(P);
      const col = new Float64Array(Kc * P);
      const ocPerGroup = OC / group;
      const xs = x!.data;
      const ws = w.data;
      for (let g = 0; g < group; g++) {
        // im2col of this group's input channels: one row per (channel, kh, kw), zeros in the padding.
        // The multiply-accumulate below then runs over long contiguous rows.
        col.fill(0);
        for (let icg = 0; icg < Cg; icg++) {
          const plane = (g * Cg + icg) * H * W;
          for (let kh = 0; kh < KH; kh++) {
            for (let kw = 0; kw < KW; kw++) {
              const rowBase = ((icg * KH + kh) * KW + kw) * P;
              const off = kw * dw - pl;
              const lo = Math.max(0, Math.ceil(-off / sw));
              const hi = Math.min(OW, Math.floor((W - 1 - off) / sw) + 1);
              for (let oh = 0; oh < OH; oh++) {
                const ih = oh * sh - pt + kh * dh;
                if (ih < 0 || ih >= H) continue;
                const src = plane + ih * W + off;
                const dst = rowBase + oh * OW;
                for (let ow = lo; ow < hi; ow++) col[dst + ow] = xs[src + ow * sw]!;
              }
            }
          }
        }
        for (let oc = g * ocPerGroup; oc < (g + 1) * ocPerGroup; oc++) {
          acc.fill(bias ? bias.aligned![oc]! : 0);
          const wBase = oc * Kc;
          let k = 0;
          // Four weights per sweep: a quarter of the accumulator traffic. Integer-valued
          // float64 sums below 2^53 are exact in any order.
          for (; k + 3 < Kc; k += 4) {
            const w0 = ws[wBase + k]!;
            const w1 = ws[wBase + k + 1]!;
            const w2 = ws[wBase + k + 2]!;
            const w3 = ws[wBase + k + 3]!;
            const c0 = k * P;
            const c1 = c0 + P;
            const c2 = c1 + P;
            const c3 = c2 + P;
            for (let p = 0; p < P; p++)
              acc[p]! += w0 * col[c0 + p]! + w1 * col[c1 + p]! + w2 * col[c2 + p]! + w3 * col[c3 + p]!;
          }
          for (; k < Kc; k++) {
            const wv = ws[wBase + k]!;
            const c0 = k * P;
            for (let p = 0; p < P; p++) acc[p]! += wv * col[c0 + p]!;
          }
          requantizeInto(acc, w.frac! + x!.frac - node.out.frac, node.out.lo, node.out.hi, out, oc * P);
        }
      }
      return out;
    },
    runFast(node, [x], program, kernels) {
      if (x!.shape.length !== 4) return undefined; // 1-D convolutions: the TypeScript kernel
      const w = constantOf(program, node, 1);
      const bias = node.inputs[2] ? constantOf(program, node, 2) : undefined;
      const { H, W, OC, Cg, KH, KW, OH, OW, group, sh, sw, dh, dw, pt, pl } = geometry(node, x!, w.dims);
      const K = Cg * KH * KW;
      return runLinearWasm(kernels, {
        node,
        weight: (o, k) => w.data[o * K + k]!,
        outputs: OC,
        groups: group,
        K,
        bias: bias?.aligned,
        input: x!.data,
        shape: { C: Cg * group, H, W, KH, KW, sh, sw, dh, dw, pt, pl, OH, OW },
        shift: w.frac! + x!.frac - node.out.frac,
        lo: node.out.lo,
        hi: node.out.hi,
      });
    },
  },
};
