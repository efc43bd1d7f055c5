/** What Conv, Gemm and MatMul share: the sign rule and the fake-quant lowering of a layer with constant weights. */
import type { Node } from '../ir/graph.js';
import type { SimBuilder } from '../fixedpoint/sim-graph.js';
import type { CEmitContext } from '../export/c-emitter.js';

/** Unsigned exactly when a Relu / Clip(0, x) is fused into the layer. */
export function linearLayerSign(node: Node): boolean {
  return !(node.activation && node.activation.min >= 0);
}

/** Layer in float on quantized inputs, weights fed quantized, bias fed aligned to the accumulator, then the output quantizer. */
export function lowerLinearLayer(node: Node, sim: SimBuilder): void {
  const [x, w, b] = node.inputs as [string, string, string | undefined];
  const inputs = [x, sim.weights(w)];
  if (b) inputs.push(sim.bias(b, w, x));
  const pre = sim.emit(node.op, inputs, node.attrs);
  sim.quantize(pre, node, node.outputs[0]!);
}

/**
 * C of Y[r][n] = requantize(init(n) + sum_k W[n][k] X[r][k]), the weights stored in C as [n][k]
 * (see `CEmitContext.reorder`): each output's weights are unpacked once into a row, so the inner
 * loop is a contiguous multiply-accumulate.
 */
export function linearRowsC(
  c: CEmitContext,
  wName: string,
  x: string,
  y: string,
  o: { rows: number; K: number; N: number; acc: string; init: string; shift: number; out: { lo: number; hi: number } },
): string {
  const tw = c.rowType(wName);
  const tx = c.bufferType(x);
  return `    ${tw} *const ws = ${c.scratch('weights', tw, o.K)};
    int r, n, k;
    for (n = 0; n < ${o.N}; n++) {
      const ${o.acc} init = ${o.init};
      ${c.loadRun(wName, 'ws', `n * ${o.K}`, o.K)}
      for (r = 0; r < ${o.rows}; r++) {
        const ${tx} *restrict xr = ${c.buffer(x)} + r * ${o.K};
        ${o.acc} acc = init;
        for (k = 0; k < ${o.K}; k++) acc += (${o.acc})ws[k] * xr[k];
        ${c.buffer(y)}[r * ${o.N} + n] = fxpq_clamp(fxpq_rsr((int64_t)acc, ${o.shift}), ${o.out.lo}, ${o.out.hi});
      }
    }`;
}
