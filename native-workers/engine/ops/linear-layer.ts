/** What Conv, Gemm and MatMul share: the sign rule and the fake-quant lowering of a layer with constant weights. */
import type { Node } from '../ir/graph.js';
import type { SimBuilder } from '../fixedpoint/sim-graph.js';

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
