/** What `fxpq inspect` reports: operators, layers with shapes, parameters, MACs, float memory. */
export type { InspectLayer, InspectReport };
import type { InspectLayer, InspectReport } from '../../../api/contract.js';
import { elementCount, isFloatType, type Graph } from '../ir/graph.js';
import { inferShapes, shapeContext } from '../ir/shape-inference.js';
import { operatorModule } from '../ops/registry.js';
import type { ImportedModel } from '../model.js';

/** Elements of the model's floating-point initializers (shape and index tensors excluded). */
export function countParameters(graph: Graph): number {
  let n = 0;
  for (const t of graph.initializers.values()) if (isFloatType(t.dataType)) n += elementCount(t.dims);
  return n;
}

function publicShape(shape: number[], params?: (string | undefined)[]): (number | string)[] {
  return shape.map((d, i) => (d >= 0 ? d : (params?.[i] ?? 'N')));
}

/** NHWC when the input's first consumer is the usual NHWC -> NCHW Transpose. */
export function inputLayout(graph: Graph, input: string): 'nchw' | 'nhwc' {
  const first = graph.nodes.find((n) => n.inputs.includes(input));
  const perm = first?.op === 'Transpose' ? first.attrs['perm'] : undefined;
  return perm?.kind === 'ints' && perm.value.join(',') === '0,3,1,2' ? 'nhwc' : 'nchw';
}

export function inspectModel(model: ImportedModel): InspectReport {
  const { original, canonical } = model;
  const shapes = inferShapes(canonical, 1);
  const ops: Record<string, number> = {};
  for (const n of original.nodes) ops[n.op] = (ops[n.op] ?? 0) + 1;

  const layers: InspectLayer[] = canonical.nodes.map((node) => {
    const ctx = shapeContext(canonical, node, shapes);
    const outShapes = node.outputs.map((o) => shapes.get(o)!);
    const params = node.inputs
      .map((i) => canonical.initializers.get(i))
      .filter((t) => t !== undefined && isFloatType(t.dataType))
      .reduce((sum, t) => sum + elementCount(t!.dims), 0);
    const act = node.activation;
    const activation = act
      ? act.op === 'Relu' || act.max === Infinity
        ? 'Relu'
        : `Clip(${act.min},${act.max})`
      : undefined;
    const dataInput = node.inputs.find((i) => !canonical.initializers.has(i)) ?? node.inputs[0]!;
    return {
      name: node.name,
      op: node.op,
      ...(activation ? { activation } : {}),
      inputShape: shapes.get(dataInput) ?? [],
      outputShape: outShapes[0] ?? [],
      params,
      macs: operatorModule(node.op)!.macs(ctx, outShapes),
    };
  });

  const params = countParameters(original);
  const batchDims = original.inputs.map((v) => v.shape[0]).filter((d) => d !== undefined);
  return {
    model: {
      path: model.source,
      producer: original.producer,
      opset: original.opset,
      irVersion: original.irVersion,
      inputs: original.inputs.map((v) => ({
        name: v.name,
        shape: publicShape(v.shape, v.dimParams),
        layout: inputLayout(canonical, v.name),
      })),
      outputs: original.outputs.map((v) => ({ name: v.name, shape: publicShape(v.shape, v.dimParams) })),
      fixedBatch: batchDims.length > 0 && batchDims.every((d) => d! > 0) ? batchDims[0]! : null,
    },
    ops,
    layers,
    totals: { params, macs: layers.reduce((s, l) => s + l.macs, 0), fp32Bytes: params * 4 },
  };
}
