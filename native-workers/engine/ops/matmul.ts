/** MatMul with a constant 2-D right-hand side (a fully connected layer without bias). */
import { requireInput, shapeError, type OperatorModule } from './operator.js';
import { constantOf, requantizeInto } from '../fixedpoint/kernel-util.js';
import { numel } from '../export/c-util.js';
import { linearLayerSign, lowerLinearLayer, linearRowsC } from './linear-layer.js';
import { runLinearWasm } from '../fixedpoint/wasm-linear.js';

export const matmul: OperatorModule = {
  op: 'MatMul',
  formatRole: 'requantize',
  fusesActivation: true,
  inferShapes(ctx) {
    const a = requireInput(ctx, 0);
    const b = requireInput(ctx, 1);
    if (b.length !== 2 || a.length < 2) {
      throw shapeError(ctx.node, 'only MatMul of an N-D input by a constant 2-D matrix is supported');
    }
    if (a[a.length - 1] !== b[0]) throw shapeError(ctx.node, `inner dimensions differ (${a[a.length - 1]} vs ${b[0]})`);
    return [[...a.slice(0, -1), b[1]!]];
  },
  macs(ctx, [y]) {
    const b = requireInput(ctx, 1);
    return (y!.reduce((p, d) => p * d, 1) / b[1]!) * b[0]! * b[1]!;
  },
  fixedPoint: {
    weightInput: 1,
    outputSigned: linearLayerSign,
    lowerSim: lowerLinearLayer,
    emitC(node, c) {
      const x = node.inputs[0]!;
      const wName = node.inputs[1]!;
      const w = c.program.constants[wName]!;
      const [K, N] = w.dims as [number, number];
      const rows = numel(c.shape(x)) / K;
      const acc = c.accumulator(wName, x, K);
      c.reorder(
        wName,
        Int32Array.from({ length: K * N }, (_, i) => (i % K) * N + Math.floor(i / K)),
      );
      const shift = w.frac! + c.program.fracOf[x]! - node.out.frac;
      return linearRowsC(c, wName, x, node.output, { rows, K, N, acc, init: '0', shift, out: node.out });
    },
    runInt(node, [x], program) {
      const w = constantOf(program, node, 1);
      const [K, N] = w.dims as [number, number];
      const rows = x!.data.length / K;
      const out = new Int32Array(rows * N);
      const acc = new Float64Array(N);
      for (let r = 0; r < rows; r++) {
        acc.fill(0);
        for (let k = 0; k < K; k++) {
          const xv = x!.data[r * K + k]!;
          if (xv !== 0) for (let n = 0; n < N; n++) acc[n]! += xv * w.data[k * N + n]!;
        }
        requantizeInto(acc, w.frac! + x!.frac - node.out.frac, node.out.lo, node.out.hi, out, r * N);
      }
      return out;
    },
    runFast(node, [x], program, kernels) {
      const w = constantOf(program, node, 1);
      const [K, N] = w.dims as [number, number];
      const rows = x!.data.length / K;
      return runLinearWasm(kernels, {
        node,
        weight: (n, k) => w.data[k * N + n]!,
        outputs: N,
        groups: 1,
        K,
        input: x!.data,
        shape: { rows },
        shift: w.frac! + x!.frac - node.out.frac,
        lo: node.out.lo,
        hi: node.out.hi,
      });
    },
  },
};
