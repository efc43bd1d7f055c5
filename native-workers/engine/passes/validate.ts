/**
 * The model validator: checks a decoded graph before anything reaches onnxruntime, a typed-array
 * constructor or the canonicalizer, and names the file, the node or tensor, and the problem.
 * Linear in the graph size. What it guarantees to the later stages:
 *   - one float32 image input, rank 2 to 5, every fixed dimension at most MAX_DIM and at most
 *     MAX_INPUT_ELEMENTS values per image, a fixed batch of at most MAX_BATCH;
 *   - at least one node; every node input produced by a node, an initializer or the graph input;
 *     every graph output produced; no cycle;
 *   - float initializers finite (NaN or Inf weights would quantize to nonsense) and at most
 *     MAX_WEIGHT_MAGNITUDE in size, at most MAX_INITIALIZER_ELEMENTS values each;
 *   - at most MAX_NODES nodes (and the canonical graph at most MAX_LAYERS, see canonicalize.ts);
 *   - graph input and outputs not named like a member of every JavaScript object (`__proto__`).
 */
import { FxpqError } from '../errors.js';
import { DataType, isObjectKeyName, type Graph } from '../ir/graph.js';

export const MAX_DIM = 1 << 16;
export const MAX_INPUT_ELEMENTS = 1 << 26;
export const MAX_BATCH = 4096;
export const MAX_INITIALIZER_ELEMENTS = 1 << 28;
/** No fixed-point format of a weight this large keeps its shifts within the integer code's 62 bits. */
export const MAX_WEIGHT_MAGNITUDE = 2 ** 32;
/**
 * The most nodes a model file may have before canonicalization (which removes Identity chains,
 * folds constants and shape arithmetic); the canonical graph is bounded by MAX_LAYERS.
 */
export const MAX_NODES = 1 << 16;
/**
 * The most nodes a canonical graph may have: real image classifiers have a few hundred (ResNet-152
 * about 500, EfficientNet-B7 about 1,500 in ONNX); the plan, the search's state and the
 * simulation graph grow with it, and a chain of 5,000 Convs took 2.2 GB to quantize.
 */
export const MAX_LAYERS = 4096;

const fail = (message: string, code: 'invalid-model' | 'unsupported-model' = 'invalid-model'): never => {
  throw new FxpqError(message, code);
};

export function validateGraph(g: Graph, source: string): void {
  if (g.nodes.length === 0) fail(`${source} has no operators (zero nodes); there is no network to quantize.`);
  if (g.nodes.length > MAX_NODES)
    fail(
      `${source} has ${g.nodes.length} nodes, more than the ${MAX_NODES} FxPQ reads (real image classifiers have a few hundred to about two thousand).`,
      'unsupported-model',
    );
  if (g.outputs.length === 0) fail(`${source} declares no graph output; a classifier must output its class scores.`);
  if (g.inputs.length !== 1)
    fail(
      `${source} has ${g.inputs.length} inputs (${g.inputs.map((i) => i.name).join(', ') || 'none'}); FxPQ quantizes image classifiers with one input.`,
      'unsupported-model',
    );
  const input = g.inputs[0]!;
  // onnxruntime's JavaScript API keys feeds and fetches by name in plain objects.
  for (const v of [input, ...g.outputs])
    if (isObjectKeyName(v.name))
      fail(
        `${source}: graph ${v === input ? 'input' : 'output'} ${v.name} has a name that onnxruntime's JavaScript API cannot feed or fetch (a member of every JavaScript object); rename it.`,
        'unsupported-model',
      );
  if (input.dataType !== DataType.FLOAT)
    fail(
      `${source}: input ${input.name} is not float32 (element type ${Object.entries(DataType).find(([, v]) => v === input.dataType)?.[0] ?? input.dataType}); FxPQ needs a float model with an image input.`,
      'unsupported-model',
    );
  if (input.shape.length < 2 || input.shape.length > 5)
    fail(
      `${source}: input ${input.name} has rank ${input.shape.length}; FxPQ expects an image batch of rank 2 to 5, e.g. [N, C, H, W].`,
      'unsupported-model',
    );
  const [batch, ...image] = input.shape;
  if (batch! > MAX_BATCH)
    fail(
      `${source}: input ${input.name} fixes a batch of ${batch}, more than ${MAX_BATCH}; export the model with batch 1 or a dynamic batch.`,
      'unsupported-model',
    );
  let elements = 1;
  for (const d of image) {
    if (d > MAX_DIM)
      fail(
        `${source}: input ${input.name} has a dimension of ${d}, more than ${MAX_DIM}; this is not an image input FxPQ can run.`,
        'unsupported-model',
      );
    if (d > 0) elements *= d;
  }
  if (elements > MAX_INPUT_ELEMENTS)
    fail(
      `${source}: input ${input.name} holds ${elements} values per image, more than ${MAX_INPUT_ELEMENTS}.`,
      'unsupported-model',
    );

  for (const t of g.initializers.values()) {
    if (t.dims.some((d) => !Number.isSafeInteger(d) || d < 0))
      fail(`${source}: tensor ${t.name} has an impossible shape [${t.dims.join(', ')}].`);
    if (t.data.length > MAX_INITIALIZER_ELEMENTS)
      fail(
        `${source}: tensor ${t.name} holds ${t.data.length} values, more than FxPQ accepts (${MAX_INITIALIZER_ELEMENTS}).`,
      );
    if (t.dataType === DataType.FLOAT || t.dataType === DataType.DOUBLE) {
      const d = t.data as Float32Array | Float64Array;
      for (let i = 0; i < d.length; i++) {
        if (!Number.isFinite(d[i]!))
          fail(
            `${source}: tensor ${t.name} holds ${Number.isNaN(d[i]!) ? 'NaN' : 'an infinite value'} at element ${i}; the model's weights are damaged.`,
          );
        if (Math.abs(d[i]!) > MAX_WEIGHT_MAGNITUDE)
          fail(
            `${source}: tensor ${t.name} holds ${d[i]} at element ${i}, beyond the ${MAX_WEIGHT_MAGNITUDE} any trained weight reaches; the model's weights are damaged.`,
          );
      }
    }
  }

  // Structure: every input is known, every output produced, no cycle (Kahn's algorithm, linear).
  const producer = new Map<string, number>();
  g.nodes.forEach((n, i) => {
    for (const o of n.outputs) {
      if (!o) continue;
      if (producer.has(o) || g.initializers.has(o) || o === input.name)
        fail(`${source}: tensor ${o} is produced twice (node ${n.name || n.op}); the graph is damaged.`);
      producer.set(o, i);
    }
  });
  const consumers: number[][] = g.nodes.map(() => []);
  const waiting = new Array<number>(g.nodes.length).fill(0);
  g.nodes.forEach((n, i) => {
    for (const x of n.inputs) {
      if (!x || g.initializers.has(x) || x === input.name) continue;
      const p = producer.get(x);
      if (p === undefined)
        fail(
          `${source}: node ${n.name || n.op} (${n.op}) reads ${x}, which no node, weight or input provides; the graph is damaged.`,
        );
      consumers[p!]!.push(i);
      waiting[i]!++;
    }
  });
  for (const o of g.outputs)
    if (!producer.has(o.name) && o.name !== input.name)
      fail(`${source}: graph output ${o.name} is not produced by any node; the graph is damaged.`);
  const ready = waiting.flatMap((w, i) => (w === 0 ? [i] : []));
  let visited = 0;
  while (ready.length > 0) {
    const i = ready.pop()!;
    visited++;
    for (const c of consumers[i]!) if (--waiting[c]! === 0) ready.push(c);
  }
  if (visited < g.nodes.length) {
    const stuck = g.nodes[waiting.findIndex((w) => w > 0)]!;
    fail(`${source}: the graph has a cycle through node ${stuck.name || stuck.op}; an ONNX graph must be acyclic.`);
  }
}
