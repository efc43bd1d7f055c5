/**
 * The C emitter of Conv. The input is staged once per layer channel-last (HWC) with its zero
 * padding, and the weights are stored in C as [oc][kh][kw][ic] and unpacked into int16_t rows,
 * so the inner loop is a contiguous multiply-accumulate over a constant trip count, which gcc -O2
 * vectorizes (its cheap cost model wants trip counts that need no scalar epilogue).
 */
import { attrInt } from '../ir/graph.js';
import { asNode } from '../fixedpoint/kernel-util.js';
import type { ProgramNode } from '../fixedpoint/program.js';
import type { CEmitContext } from '../export/c-emitter.js';
import { resolveWindow } from './spatial.js';

/** Largest weight scratch (values) the small-channel path may unpack a whole layer into. */
const SMALL_LAYER_WEIGHTS = 4096;

export function emitConvC(node: ProgramNode, c: CEmitContext): string {
  const x = node.inputs[0]!;
  const [wName, bName] = [node.inputs[1]!, node.inputs[2]];
  const w = c.program.constants[wName]!;
  const [, C, H, W] = c.shape(x) as [number, number, number, number];
  const [OC, Cg, KH, KW] = w.dims as [number, number, number, number];
  const [, , OH, OW] = node.outShape as [number, number, number, number];
  const group = attrInt(asNode(node), 'group', 1);
  const win = resolveWindow(asNode(node), c.shape(x), [KH, KW]);
  const [sh, sw] = win.strides as [number, number];
  const [dh, dw] = win.dilations as [number, number];
  const [pt, pl, pb, pr] = win.pads as [number, number, number, number];
  const [Hp, Wp] = [H + pt + pb, W + pl + pr];
  const Kc = Cg * KH * KW;
  const fx = c.program.fracOf[x]!;
  const acc = c.accumulator(wName, x, Kc, bName);
  const b = bName ? c.program.constants[bName]! : undefined;
  const init = b ? `(${acc})fxpq_rsr(${c.constant(bName!, 'oc')}, ${b.frac! - (w.frac! + fx)})` : '0';
  const order = new Int32Array(OC * Kc);
  for (let oc = 0, i = 0; oc < OC; oc++)
    for (let kh = 0; kh < KH; kh++)
      for (let kw = 0; kw < KW; kw++) for (let ic = 0; ic < Cg; ic++) order[i++] = ((oc * Cg + ic) * KH + kh) * KW + kw;
  c.reorder(wName, order);
  const tx = c.elementType(x);
  const tw = c.rowType(wName);
  const X = c.buffer(x);
  // An equalized ReLU6 clamps each output channel at its own bound: a constant table in flash.
  const perChannel = node.out.hiPerChannel;
  const hiTable = perChannel ? `    static const int32_t hi_channel[${OC}] = {${perChannel.join(', ')}};\n` : '';
  const hi = perChannel ? 'hi_channel[oc]' : `${node.out.hi}`;
  const store = `${c.buffer(node.output)}[(oc * ${OH} + oh) * ${OW} + ow] = fxpq_clamp(fxpq_rsr((int64_t)acc, ${w.frac! + fx - node.out.frac}), ${node.out.lo}, ${hi});`;
  const stage = `${tx} *const xs = ${c.scratch('input', tx, Hp * Wp * C)};
    for (i = 0; i < ${Hp * Wp * C}; i++) xs[i] = 0;
    for (oh = 0; oh < ${H}; oh++)
      for (ow = 0; ow < ${W}; ow++)
        for (i = 0; i < ${C}; i++) xs[(${(pt * Wp + pl) * C} + oh * ${Wp * C}) + ow * ${C} + i] = (${tx})${X}[(i * ${H} + oh) * ${W} + ow];`;
  const Kp = Math.ceil(Kc / 16) * 16;
  if (group === 1 && dw === 1 && (KW * C) % 16 !== 0 && OC * Kp <= SMALL_LAYER_WEIGHTS) {
    // Few input channels (a first layer): a kernel row is too short to vectorize, so each output
    // row's windows are copied into columns of Kp = Kc rounded up to 16 values (zeros after Kc,
    // as in the weight rows: the sum is unchanged), and the whole layer's weights, small here,
    // are unpacked once.
    return `${hiTable}    int oc, oh, ow, kh, i;
    ${tw} *const ws = ${c.scratch('weights', tw, OC * Kp)};
    ${tx} *const col = ${c.scratch('columns', tx, OW * Kp)};
    ${stage}
    for (oc = 0; oc < ${OC}; oc++) {
      ${c.loadRun(wName, `ws + oc * ${Kp}`, `oc * ${Kc}`, Kc)}
      for (i = ${Kc}; i < ${Kp}; i++) ws[oc * ${Kp} + i] = 0;
    }
    for (i = 0; i < ${OW * Kp}; i++) col[i] = 0;
    for (oh = 0; oh < ${OH}; oh++) {
      for (ow = 0; ow < ${OW}; ow++)
        for (kh = 0; kh < ${KH}; kh++)
          for (i = 0; i < ${KW * C}; i++) col[ow * ${Kp} + kh * ${KW * C} + i] = xs[((oh * ${sh} + kh * ${dh}) * ${Wp} + ow * ${sw}) * ${C} + i];
      for (oc = 0; oc < ${OC}; oc++) {
        const ${tw} *restrict wr = ws + oc * ${Kp};
        const ${acc} init = ${init};
        for (ow = 0; ow < ${OW}; ow++) {
          const ${tx} *restrict xr = col + ow * ${Kp};
          ${acc} acc = init;
          for (i = 0; i < ${Kp}; i++) acc += (${acc})wr[i] * xr[i];
          ${store}
        }
      }
    }`;
  }
  // With one group and no dilation a kernel row's window is KW * C contiguous values.
  const row =
    group === 1 && dw === 1
      ? `for (i = 0; i < ${KW * C}; i++) acc += (${acc})wr[i] * xr[i];`
      : `for (kw = 0; kw < ${KW}; kw++)
              for (i = 0; i < ${Cg}; i++) acc += (${acc})wr[kw * ${Cg} + i] * xr[kw * ${dw * C} + i];`;
  // Each output channel's weights are unpacked once into a row.
  return `${hiTable}    int oc, oh, ow, kh, kw, i;
    ${tw} *const ws = ${c.scratch('weights', tw, Kc)};
    ${stage}
    (void)kw;
    for (oc = 0; oc < ${OC}; oc++) {
      const int g = oc / ${OC / group};
      ${c.loadRun(wName, 'ws', `oc * ${Kc}`, Kc)}
      const ${acc} init = ${init};
      for (oh = 0; oh < ${OH}; oh++) {
        for (ow = 0; ow < ${OW}; ow++) {
          ${acc} acc = init;
          for (kh = 0; kh < ${KH}; kh++) {
            const ${tx} *restrict xr = xs + ((oh * ${sh} + kh * ${dh}) * ${Wp} + ow * ${sw}) * ${C} + g * ${Cg};
            const ${tw} *restrict wr = ws + kh * ${KW * Cg};
            ${row}
          }
          ${store}
        }
      }
    }`;
}
