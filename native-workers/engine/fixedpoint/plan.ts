/**
 * The data structures of a canonical graph (spec §1, §3): weights W and biases B of every
 * Conv/Gemm/MatMul, and activations A at the network input and at the output of every
 * requantizing operator. Pass-through operators (MaxPool, Flatten, Reshape, Transpose,
 * standalone Relu/Clip) carry their input's structure; a final Softmax is dropped.
 */
import { FxpqError } from '../errors.js';
import { elementCount, isGraphOutput, type Graph, type Node, type Shape } from '../ir/graph.js';
import { inferShapes } from '../ir/shape-inference.js';
import { operatorModule } from '../ops/registry.js';
import type { Format } from './format.js';

export type StructureKind = 'W' | 'B' | 'A';

export interface DataStructure {
  id: string;
  kind: StructureKind;
  /** The layer (node) it belongs to; "input" for the network input. */
  layer: string;
  tensor: string;
  /** Elements for one image. */
  elements: number;
  signed: boolean;
}

/** One format per data structure id. */
export type Assignment = Record<string, Format>;

export interface QuantPlan {
  graph: Graph;
  /** Shapes for one image (batch 1). */
  shapes: Map<string, Shape>;
  structures: DataStructure[];
  byId: Map<string, DataStructure>;
  /** Activation tensor -> the A structure whose format it carries. */
  activationOf: Map<string, string>;
  /** The nodes integer inference runs (a final Softmax left out). */
  nodes: Node[];
  inputName: string;
  /** The tensor whose integers are the logits. */
  logitsTensor: string;
}

export const structureId = (kind: StructureKind, tensor: string): string => `${kind}:${tensor}`;

export interface PlanOptions {
  /** The preprocessing makes every input value >= 0 (mean <= 0), so the input can be unsigned. */
  inputNonNegative: boolean;
}

export function buildPlan(graph: Graph, options: PlanOptions): QuantPlan {
  const shapes = inferShapes(graph, 1);
  const structures: DataStructure[] = [];
  const activationOf = new Map<string, string>();
  const signedOf = new Map<string, boolean>();
  if (graph.inputs.length !== 1)
    throw new FxpqError(
      `FxPQ quantizes models with one input; this one has ${graph.inputs.length}.`,
      'unsupported-model',
    );
  const inputName = graph.inputs[0]!.name;
  const add = (s: DataStructure): void => {
    structures.push(s);
  };
  const inputId = structureId('A', inputName);
  add({
    id: inputId,
    kind: 'A',
    layer: 'input',
    tensor: inputName,
    elements: elementCount(shapes.get(inputName)!),
    signed: !options.inputNonNegative,
  });
  activationOf.set(inputName, inputId);
  signedOf.set(inputName, !options.inputNonNegative);

  const nodes: Node[] = [];
  let logitsTensor = inputName;
  for (const node of graph.nodes) {
    const module = operatorModule(node.op)!;
    if (module.formatRole === 'terminal') {
      logitsTensor = node.inputs[0]!;
      continue;
    }
    const rules = module.fixedPoint!;
    nodes.push(node);
    const activationInputs = node.inputs.filter(
      (name, i) => name && i !== rules.weightInput && i !== rules.biasInput && !graph.initializers.has(name),
    );
    for (const name of activationInputs) {
      if (!activationOf.has(name))
        throw new FxpqError(`Node ${node.name} reads ${name}, which has no fixed-point format.`, 'invalid-model');
    }
    for (const [index, kind] of [
      [rules.weightInput, 'W'],
      [rules.biasInput, 'B'],
    ] as const) {
      const name = index === undefined ? undefined : node.inputs[index];
      if (!name) continue;
      const t = graph.initializers.get(name);
      if (!t)
        throw new FxpqError(
          `Node ${node.name} (${node.op}) has non-constant ${kind === 'W' ? 'weights' : 'bias'}; FxPQ quantizes constant parameters.`,
          'unsupported-model',
        );
      add({
        id: structureId(kind, name),
        kind,
        layer: node.name,
        tensor: name,
        elements: elementCount(t.dims),
        signed: true,
      });
    }
    const signed = rules.outputSigned(
      node,
      activationInputs.map((n) => signedOf.get(n)!),
    );
    const out = node.outputs[0]!;
    signedOf.set(out, signed);
    if (module.formatRole === 'requantize') {
      const id = structureId('A', out);
      add({ id, kind: 'A', layer: node.name, tensor: out, elements: elementCount(shapes.get(out)!), signed });
      activationOf.set(out, id);
    } else {
      activationOf.set(out, activationOf.get(activationInputs[0]!)!);
    }
    logitsTensor = out;
  }
  if (!graph.outputs.some((o) => isGraphOutput(graph, o.name)))
    throw new FxpqError('The graph has no output.', 'invalid-model');
  return {
    graph,
    shapes,
    structures,
    byId: new Map(structures.map((s) => [s.id, s])),
    activationOf,
    nodes,
    inputName,
    logitsTensor,
  };
}

/**
 * Output clamp of a node: its format's range, narrowed by a fused Relu (lo 0) or Clip(0, x) (hi
 * floor(x 2^f)); an equalized ReLU6 has one upper bound per output channel (`hiPerChannel`,
 * each at most `hi`, which is then their largest).
 */
export function outputBounds(node: Node, f: Format): { lo: number; hi: number; hiPerChannel?: number[] } {
  let lo = f.signed ? -(2 ** (f.bits - 1)) : 0;
  let hi = f.signed ? 2 ** (f.bits - 1) - 1 : 2 ** f.bits - 1;
  const act = node.activation;
  if (!act) return { lo, hi };
  lo = Math.max(lo, Math.ceil(act.min * 2 ** f.frac));
  if (Number.isFinite(act.max)) hi = Math.min(hi, Math.floor(act.max * 2 ** f.frac));
  if (!act.maxPerChannel) return { lo, hi };
  const hiPerChannel = act.maxPerChannel.map((m) => Math.max(lo, Math.min(hi, Math.floor(m * 2 ** f.frac))));
  return { lo, hi, hiPerChannel };
}
