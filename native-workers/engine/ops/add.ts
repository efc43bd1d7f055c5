/** Add of two activations (residual connections); a constant operand is folded into a bias at import. */
import { requireInput, noMacs, type OperatorModule } from './operator.js';
import { broadcastShapes } from './broadcast.js';
import { shapeError } from './operator.js';
import { asNode } from '../fixedpoint/kernel-util.js';
import { numel } from '../export/c-util.js';

export const add: OperatorModule = {
  op: 'Add',
  formatRole: 'requantize',
  fusesActivation: true,
  inferShapes(ctx) {
    return [broadcastShapes(ctx.node, requireInput(ctx, 0), requireInput(ctx, 1))];
  },
  macs: noMacs,
  fixedPoint: {
    outputSigned: (node, [a, b]) => (node.activation && node.activation.min >= 0 ? false : a! || b!),
    lowerSim(node, sim) {
      sim.quantize(sim.emit('Add', node.inputs), node, node.outputs[0]!);
    },
    /** Align both inputs exactly to F = max(f_a, f_b), add, then one rounding to f_y. */
    emitC(node, c) {
      const [a, b] = node.inputs as [string, string];
      const [fa, fb] = [c.program.fracOf[a]!, c.program.fracOf[b]!];
      const F = Math.max(fa, fb);
      return `    int i;
    for (i = 0; i < ${numel(node.outShape)}; i++) {
      const int64_t sum = (int64_t)${c.buffer(a)}[i] * ${2 ** (F - fa)} + (int64_t)${c.buffer(b)}[i] * ${2 ** (F - fb)};
      ${c.buffer(node.output)}[i] = fxpq_clamp(fxpq_rsr(sum, ${F - node.out.frac}), ${node.out.lo}, ${node.out.hi});
    }`;
    },
    runInt(node, [a, b]) {
      if (a!.data.length !== b!.data.length)
        throw shapeError(asNode(node), 'integer Add needs inputs of the same shape');
      const F = Math.max(a!.frac, b!.frac);
      const sa = 2 ** (F - a!.frac);
      const sb = 2 ** (F - b!.frac);
      const r = F - node.out.frac;
      const { lo, hi } = node.out;
      const out = new Int32Array(a!.data.length);
      const half = r > 0 ? 2 ** (r - 1) : 0;
      const scale = 2 ** -r;
      for (let i = 0; i < out.length; i++) {
        const sum = a!.data[i]! * sa + b!.data[i]! * sb;
        const m = r > 0 ? Math.floor((sum + half) * scale) : sum * scale;
        out[i] = m < lo ? lo : m > hi ? hi : m;
      }
      return out;
    },
    // Where the inputs' values allow int32 sums (add_shift checks them), else the kernel above.
    runFast(node, [a, b], _program, kernels) {
      const n = a!.data.length;
      if (b!.data.length !== n || node.out.lo < -(2 ** 31) || node.out.hi > 2 ** 31 - 1) return undefined;
      const F = Math.max(a!.frac, b!.frac);
      const pointers = kernels.scratch([n * 4, n * 4, n * 4]);
      if (!pointers) return undefined;
      const [pa, pb, out] = pointers;
      kernels.i32(pa!, n).set(a!.data);
      kernels.i32(pb!, n).set(b!.data);
      const { lo, hi, frac } = node.out;
      const done = kernels.fn.add_shift(pa!, pb!, n, F - a!.frac, F - b!.frac, F - frac, lo, hi, out!) === 0;
      return done ? kernels.copyOut(out!, n, node.name) : undefined;
    },
  },
};
