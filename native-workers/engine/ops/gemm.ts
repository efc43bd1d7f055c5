/** Gemm with constant B (a fully connected layer): Y = alpha * A' B' + beta * C. */
import { attrFloat, attrInt } from '../ir/graph.js';
import { requireInput, shapeError, type OperatorModule } from './operator.js';
import { asNode, constantOf, requantizeInto } from '../fixedpoint/kernel-util.js';
import { numel } from '../export/c-util.js';
import { linearLayerSign, linearRowsC, lowerLinearLayer } from './linear-layer.js';
import { runLinearWasm } from '../fixedpoint/wasm-linear.js';

export const gemm: OperatorModule = {
  op: 'Gemm',
  formatRole: 'requantize',
  fusesActivation: true,
  inferShapes(ctx) {
    const a = requireInput(ctx, 0);
    const b = requireInput(ctx, 1);
    if (a.length !== 2 || b.length !== 2) throw shapeError(ctx.node, 'Gemm needs 2-D inputs');
    const transA = attrInt(ctx.node, 'transA', 0) === 1;
    const transB = attrInt(ctx.node, 'transB', 0) === 1;
    if (attrFloat(ctx.node, 'alpha', 1) !== 1 && ctx.constant(1) === undefined) {
      throw shapeError(ctx.node, 'alpha != 1 with non-constant weights is not supported');
    }
    const [m, k] = transA ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
    const [kb, n] = transB ? [b[1]!, b[0]!] : [b[0]!, b[1]!];
    if (k !== kb) throw shapeError(ctx.node, `inner dimensions differ (${k} vs ${kb})`);
    return [[m, n]];
  },
  macs(ctx, [y]) {
    const b = requireInput(ctx, 1);
    return y![0]! * b[0]! * b[1]!;
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
      const transB = attrInt(asNode(node), 'transB', 0) === 1;
      const [K, N] = transB ? [w.dims[1]!, w.dims[0]!] : [w.dims[0]!, w.dims[1]!];
      const rows = numel(c.shape(x)) / K;
      const fx = c.program.fracOf[x]!;
      const acc = c.accumulator(wName, x, K, bName);
      const b = bName ? c.program.constants[bName]! : undefined;
      const init = b ? `(${acc})fxpq_rsr(${c.constant(bName!, 'n')}, ${b.frac! - (w.frac! + fx)})` : '0';
      // Weights in C as [n][k]: each output's inner product is one contiguous run, unpacked once into a row.
      if (!transB)
        c.reorder(
          wName,
          Int32Array.from({ length: K * N }, (_, i) => (i % K) * N + Math.floor(i / K)),
        );
      return linearRowsC(c, wName, x, node.output, {
        rows,
        K,
        N,
        acc,
        init,
        shift: w.frac! + fx - node.out.frac,
        out: node.out,
      });
    },
    runInt(node, [x], program) {
      const w = constantOf(program, node, 1);
      const bias = node.inputs[2] ? constantOf(program, node, 2) : undefined;
      const transB = attrInt(asNode(node), 'transB', 0) === 1;
      const [K, N] = transB ? [w.dims[1]!, w.dims[0]!] : [w.dims[0]!, w.dims[1]!];
      const rows = x!.data.length / K;
      const out = new Int32Array(rows * N);
      const acc = new Float64Array(N);
      for (let r = 0; r < rows; r++) {
        for (let n = 0; n < N; n++) acc[n] = bias ? bias.aligned![n]! : 0;
        for (let k = 0; k < K; k++) {
          const xv = x!.data[r * K + k]!;
          if (xv === 0) continue;
          if (transB) for (let n = 0; n < N; n++) acc[n]! += xv * w.data[n * K + k]!;
          else for (let n = 0; n < N; n++) acc[n]! += xv * w.data[k * N + n]!;
        }
        requantizeInto(acc, w.frac! + x!.frac - node.out.frac, node.out.lo, node.out.hi, out, r * N);
      }
      return out;
    },
    runFast(node, [x], program, kernels) {
      const w = constantOf(program, node, 1);
      const bias = node.inputs[2] ? constantOf(program, node, 2) : undefined;
      const transB = attrInt(asNode(node), 'transB', 0) === 1;
      const [K, N] = transB ? [w.dims[1]!, w.dims[0]!] : [w.dims[0]!, w.dims[1]!];
      const rows = x!.data.length / K;
      return runLinearWasm(kernels, {
        node,
        weight: transB ? (n, k) => w.data[n * K + k]! : (n, k) => w.data[k * N + n]!,
        outputs: N,
        groups: 1,
        K,
        bias: bias?.aligned,
        input: x!.data,
        shape: { rows },
        shift: w.frac! + x!.frac - node.out.frac,
        lo: node.out.lo,
        hi: node.out.hi,
      });
    },
  },
};
