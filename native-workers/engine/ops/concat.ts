/** Concat along one axis; each input is requantized to the output format. */
import { attrInt } from '../ir/graph.js';
import { requireInput, noMacs, shapeError, type OperatorModule } from './operator.js';
import { rshiftRound } from '../fixedpoint/format.js';
import { numel } from '../export/c-util.js';

export const concat: OperatorModule = {
  op: 'Concat',
  formatRole: 'requantize',
  fusesActivation: false,
  inferShapes(ctx) {
    const shapes = ctx.inputs.map((_, i) => requireInput(ctx, i));
    const first = shapes[0]!;
    const axisAttr = attrInt(ctx.node, 'axis', 1);
    const axis = axisAttr < 0 ? axisAttr + first.length : axisAttr;
    const out = [...first];
    out[axis] = 0;
    for (const s of shapes) {
      if (s.length !== first.length) throw shapeError(ctx.node, 'inputs differ in rank');
      out[axis]! += s[axis]!;
    }
    return [out];
  },
  macs: noMacs,
  fixedPoint: {
    outputSigned: (_node, signs) => signs.some((s) => s),
    lowerSim(node, sim) {
      const parts = node.inputs.map((x, i) => sim.quantize(x, node, `${node.outputs[0]}/part${i}`));
      sim.emit('Concat', parts, node.attrs, node.outputs[0]!);
    },
    /** Each input rshift_round to the output format and clamped, then laid side by side. */
    emitC(node, c) {
      const axisAttr = node.attrs['axis'];
      const a = axisAttr?.kind === 'int' ? axisAttr.value : 1;
      const axis = a < 0 ? a + node.outShape.length : a;
      const outer = node.outShape.slice(0, axis).reduce((p, d) => p * d, 1);
      const outInner = numel(node.outShape) / outer;
      let offset = 0;
      const parts = node.inputs.map((x) => {
        const inner = numel(c.shape(x)) / outer;
        const code = `    for (o = 0; o < ${outer}; o++) for (i = 0; i < ${inner}; i++) ${c.buffer(node.output)}[o * ${outInner} + ${offset} + i] = fxpq_clamp(fxpq_rsr(${c.buffer(x)}[o * ${inner} + i], ${c.program.fracOf[x]! - node.out.frac}), ${node.out.lo}, ${node.out.hi});`;
        offset += inner;
        return code;
      });
      return `    int o, i;
${parts.join('\n')}`;
    },
    runInt(node, inputs) {
      const axisAttr = node.attrs['axis'];
      const rank = node.outShape.length;
      const a = axisAttr?.kind === 'int' ? axisAttr.value : 1;
      const axis = a < 0 ? a + rank : a;
      const outer = node.outShape.slice(0, axis).reduce((p, d) => p * d, 1);
      const out = new Int32Array(node.outShape.reduce((p, d) => p * d, 1));
      const outInner = out.length / outer;
      let offset = 0;
      for (const x of inputs) {
        const inner = x.data.length / outer;
        const r = x.frac - node.out.frac;
        for (let o = 0; o < outer; o++) {
          for (let i = 0; i < inner; i++) {
            const m = rshiftRound(x.data[o * inner + i]!, r);
            out[o * outInner + offset + i] = m < node.out.lo ? node.out.lo : m > node.out.hi ? node.out.hi : m;
          }
        }
        offset += inner;
      }
      return out;
    },
  },
};
