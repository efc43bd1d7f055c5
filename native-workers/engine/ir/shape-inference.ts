/** Static shapes of every tensor, from the graph inputs through each operator module's rule. */
import { FxpqError } from '../errors.js';
import { operatorModule } from '../ops/registry.js';
import { shapeError, type ShapeContext } from '../ops/operator.js';
import type { Graph, Node, Shape } from './graph.js';

export type ShapeMap = Map<string, Shape>;

/**
 * Infer all shapes with symbolic (dynamic) dimensions set to `batch`; a fixed batch
 * dimension in the model (mnist-8 has 1) is kept as it is.
 */
export function inferShapes(
  graph: Graph,
  batch = 1,
  /** Shape rules for operators that exist only before canonicalization (BatchNormalization). */
  importOnlyRules: Record<string, (ctx: ShapeContext) => Shape[]> = {},
): ShapeMap {
  const shapes: ShapeMap = new Map();
  for (const v of graph.inputs)
    shapes.set(
      v.name,
      v.shape.map((d) => (d < 0 ? batch : d)),
    );
  for (const [name, t] of graph.initializers) shapes.set(name, t.dims);
  for (const node of graph.nodes) {
    const rule = importOnlyRules[node.op];
    const out = rule ? rule(shapeContext(graph, node, shapes)) : inferNode(graph, node, shapes);
    for (const shape of out) checkShape(node, shape);
    node.outputs.forEach((name, i) => {
      if (name && out[i]) shapes.set(name, out[i]);
    });
  }
  return shapes;
}

/** The most values one activation tensor of one image may hold (1 GiB of float32). */
export const MAX_ACTIVATION_ELEMENTS = 1 << 28;

/**
 * Hostile attributes (pads of 1e9, strides of 2^31, a lost weight dimension) must stop here,
 * with the node named, not as NaN in a message or a 512 GB allocation in onnxruntime.
 */
function checkShape(node: Node, shape: Shape | undefined): void {
  if (!shape) return;
  if (shape.some((d) => !Number.isSafeInteger(d) || d <= 0))
    throw shapeError(
      node,
      `computes an impossible output shape [${shape.join(', ')}]; check its attributes and weights`,
    );
  const elements = shape.slice(1).reduce((a, b) => a * b, 1);
  if (elements > MAX_ACTIVATION_ELEMENTS)
    throw shapeError(node, `computes ${elements} values per image (shape [${shape.join(', ')}]), more than FxPQ runs`);
}

export function shapeContext(graph: Graph, node: Node, shapes: ShapeMap): ShapeContext {
  return {
    node,
    inputs: node.inputs.map((n) => (n ? shapes.get(n) : undefined)),
    constant: (i) => {
      const name = node.inputs[i];
      return name ? graph.initializers.get(name) : undefined;
    },
  };
}

function inferNode(graph: Graph, node: Node, shapes: ShapeMap): Shape[] {
  const module = operatorModule(node.op);
  if (!module) {
    throw new FxpqError(`Node ${node.name}: operator ${node.op} is not supported.`, 'unsupported-op');
  }
  return module.inferShapes(shapeContext(graph, node, shapes));
}
