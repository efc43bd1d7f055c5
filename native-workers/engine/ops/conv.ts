/** Conv (grouped and depthwise included), 1-D/2-D, with an optional fused Relu/Clip. */
import { attrInt, attrInts } from '../ir/graph.js';
import { requireInput, shapeError, type OperatorModule } from './operator.js';
import { resolveWindow, windowOutputSize } from './spatial.js';
import { asNode, constantOf, requantizeInto } from '../fixedpoint/kernel-util.js';
import { linearLayerSign, lowerLinearLayer } from './linear-layer.js';
import { emitConvC } from './conv-c.js';
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
    if (w.some((d) => !(d > 0)))
      throw shapeError(ctx.node, `its weights have the shape [${w.join(', ')}], with a zero dimension`);
    const b = ctx.node.inputs[2] ? ctx.inputs[2] : undefined;
    if (b && !(b.length === 1 && b[0] === w[0]))
      throw shapeError(ctx.node, `its bias has the shape [${b.join(', ')}] but the layer has ${w[0]} output channels`);
    const kernel = attrInts(ctx.node, 'kernel_shape', w.slice(2));
    if (kernel.join() !== w.slice(2).join())
      throw shapeError(
        ctx.node,
        `kernel_shape [${kernel.join(', ')}] differs from its weights' [${w.slice(2).join(', ')}]`,
      );
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
    emitC: emitConvC,
    runInt(node, [x], program) {
      const w = constantOf(program, node, 1);
      const bias = node.inputs[2] ? constantOf(program, node, 2) : undefined;
      const { H, W, OC, Cg, KH, KW, OH, OW, group, sh, sw, dh, dw, pt, pl } = geometry(node, x!, w.dims);
      const out = new Int32Array(OC * OH * OW);
      const hiPerChannel = node.out.hiPerChannel;
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
          requantizeInto(
            acc,
            w.frac! + x!.frac - node.out.frac,
            node.out.lo,
            hiPerChannel?.[oc] ?? node.out.hi,
            out,
            oc * P,
          );
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
      const out = runLinearWasm(kernels, {
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
      if (out && node.out.hiPerChannel) clampChannels(out, node.out.hiPerChannel, OH * OW);
      return out;
    },
  },
};

/** An equalized ReLU6's upper bound per output channel, after the kernel's common clamp. */
function clampChannels(out: Int32Array, hiPerChannel: number[], plane: number): void {
  for (let c = 0; c < hiPerChannel.length; c++) {
    const hi = hiPerChannel[c]!;
    for (let i = c * plane; i < (c + 1) * plane; i++) if (out[i]! > hi) out[i] = hi;
  }
}
