/**
 * Import-time rewrites that turn an exported model into FxPQ's canonical graph (spec §2):
 * constants become initializers, Identity/Dropout vanish, constant weight reshapes are
 * folded, BatchNormalization folds into the Conv/Gemm before it (or becomes a per-channel
 * affine depthwise Conv), a constant Add after Conv/Gemm/MatMul becomes its bias, Gemm is
 * normalised (alpha = beta = 1, transA = 0), and Relu / Clip(0, x) fuse into their
 * producer. Every pass keeps the float function of the graph unchanged.
 */
import { FxpqError } from '../errors.js';
import {
  attrFloat,
  attrInt,
  cloneGraph,
  consumersOf,
  DataType,
  floatTensor,
  isFloatType,
  isGraphOutput,
  isObjectKeyName,
  producersOf,
  toFloat32,
  type Graph,
  type Node,
  type Tensor,
} from '../ir/graph.js';
import { inferShapes, type ShapeMap } from '../ir/shape-inference.js';
import { DEFAULT_EQUALIZE, equalizeLayers, type EqualizeMode } from './equalize.js';
import { rewriteExporterIdioms } from './exporter-idioms.js';
import { operatorModule } from '../ops/registry.js';
import { MAX_LAYERS } from './validate.js';
import { reshapeTarget, transposeData } from '../ops/layout.js';
import { clipLimits } from '../ops/activation.js';
import { tensorToNumbers, attrInts, uniqueName } from '../ir/graph.js';

/** Operators accepted in an input model because canonicalization removes or rewrites them. */
export const IMPORT_ONLY_OPS: ReadonlySet<string> = new Set(['BatchNormalization', 'Identity', 'Dropout', 'Constant']);

/** Refuse a model naming every unsupported operator type, with a node name for each. */
export function checkSupportedOperators(graph: Graph, source: string): void {
  const unsupported = new Map<string, string[]>();
  for (const n of graph.nodes) {
    if (operatorModule(n.op) || IMPORT_ONLY_OPS.has(n.op)) continue;
    const list = unsupported.get(n.op) ?? [];
    list.push(n.name);
    unsupported.set(n.op, list);
  }
  if (unsupported.size === 0) return;
  const parts = [...unsupported].map(([op, names]) => {
    const shown = names.slice(0, 3).join(', ') + (names.length > 3 ? `, and ${names.length - 3} more` : '');
    return `${op} (node ${shown})`;
  });
  throw new FxpqError(
    `${source} uses ${unsupported.size === 1 ? 'an operator' : 'operators'} that FxPQ does not support: ${parts.join('; ')}.`,
    'unsupported-op',
  );
}

export interface CanonicalizeOptions {
  source: string;
  /** Cross-layer equalization (passes/equalize.ts); default 'depthwise'. */
  equalize?: EqualizeMode;
  /** Its per-channel scale limit; default MAX_SCALE (a run records the one it was made with). */
  equalizeMaxScale?: number;
}

export function canonicalize(input: Graph, options: CanonicalizeOptions): Graph {
  const graph = cloneGraph(input);
  renameObjectKeyNames(graph);
  constantsToInitializers(graph);
  sortTopologically(graph, options.source); // every later pass walks producers before consumers
  rewriteExporterIdioms(graph, options.source);
  checkSupportedOperators(graph, options.source);
  removeNoOps(graph);
  foldConstantLayout(graph);
  unshareLayerParameters(graph); // before any pass rewrites a layer's weights in place
  normalizeGemm(graph); // first: the BatchNorm fold assumes alpha = beta = 1
  foldBatchNorm(graph, inferShapes(graph, 1, { BatchNormalization: (ctx) => [ctx.inputs[0]!] }));
  foldBiasAdd(graph, inferShapes(graph));
  fuseActivations(graph);
  // After the fold and fusion it needs; opset 8 for the broadcasting Min an equalized ReLU6 is written with.
  const equalize = options.equalize ?? DEFAULT_EQUALIZE;
  if (equalize !== 'off' && graph.opset >= 8) equalizeLayers(graph, equalize, options.equalizeMaxScale);
  checkTerminalOps(graph, options.source);
  removeUnusedInitializers(graph);
  if (graph.nodes.length > MAX_LAYERS)
    throw new FxpqError(
      `${options.source} has ${graph.nodes.length} layers after canonicalization, more than the ${MAX_LAYERS} FxPQ quantizes (real image classifiers have a few hundred to about two thousand).`,
      'unsupported-model',
    );
  checkRunnable(graph, inferShapes(graph), options.source); // also validates the final graph
  return graph;
}

// ------------------------------------------------------------------ helpers

/**
 * Tensors and nodes inside the graph named like a member of every JavaScript object
 * (`__proto__`, `constructor`, `toString`) get a plain name (`__proto___t`): later stages key
 * objects by tensor name, and onnxruntime's JavaScript API keys its fetches by name. The graph
 * input and outputs keep theirs (the validator refuses such names there).
 */
function renameObjectKeyNames(graph: Graph): void {
  const keep = new Set([...graph.inputs, ...graph.outputs].map((v) => v.name));
  const taken = new Set<string>([...keep, ...graph.initializers.keys()]);
  for (const n of graph.nodes) for (const o of n.outputs) taken.add(o);
  const renamed = new Map<string, string>();
  const fresh = (name: string): string => {
    let r = renamed.get(name);
    if (r) return r;
    r = `${name}_t`;
    for (let i = 1; taken.has(r); i++) r = `${name}_t${i}`;
    taken.add(r);
    renamed.set(name, r);
    return r;
  };
  const safe = (name: string): string => (name && isObjectKeyName(name) && !keep.has(name) ? fresh(name) : name);
  for (const [name, t] of [...graph.initializers]) {
    const to = safe(name);
    if (to === name) continue;
    graph.initializers.delete(name);
    graph.initializers.set(to, { ...t, name: to });
  }
  const nodeNames = new Set(graph.nodes.map((n) => n.name));
  for (const n of graph.nodes) {
    n.inputs = n.inputs.map(safe);
    n.outputs = n.outputs.map(safe);
    if (isObjectKeyName(n.name)) {
      let name = `${n.name}_node`;
      for (let i = 1; nodeNames.has(name); i++) name = `${n.name}_node${i}`;
      nodeNames.add(name);
      n.name = name;
    }
  }
}

function replaceUses(graph: Graph, from: string, to: string): void {
  for (const n of graph.nodes) n.inputs = n.inputs.map((i) => (i === from ? to : i));
}

/** Delete `node` (one input -> one output) and connect its consumers to its input. */
function bypassNode(graph: Graph, node: Node): void {
  const input = node.inputs[0]!;
  const output = node.outputs[0]!;
  graph.nodes = graph.nodes.filter((n) => n !== node);
  if (isGraphOutput(graph, output)) {
    // Keep the public output name: the producer of `input` now writes `output`.
    const producer = producersOf(graph).get(input);
    const otherUses = consumersOf(graph).get(input)?.length ?? 0;
    if (producer && otherUses === 0 && !isGraphOutput(graph, input)) {
      producer.outputs = producer.outputs.map((o) => (o === input ? output : o));
      return;
    }
    // Rare: the input is also used elsewhere or is a graph input; keep an Identity then.
    graph.nodes.push({ ...node });
    return;
  }
  replaceUses(graph, output, input);
}

function singleConsumer(graph: Graph, tensor: string): Node | undefined {
  if (isGraphOutput(graph, tensor)) return undefined;
  const c = consumersOf(graph).get(tensor);
  return c && c.length === 1 ? c[0] : undefined;
}

function constantFloat(graph: Graph, name: string | undefined): Float32Array | undefined {
  if (!name) return undefined;
  const t = graph.initializers.get(name);
  return t && isFloatType(t.dataType) ? toFloat32(t) : undefined;
}

// ------------------------------------------------------------------ passes

/**
 * A weight or bias initializer read by more than one node (two layers sharing a bias, say)
 * becomes one copy per reader, so that every layer's parameters are its own data structures:
 * each gets its own format and its own alignment to its accumulator (a shared bias aligned for
 * one layer was silently used by the other), and in-place folds (BatchNorm, Gemm's normal form)
 * change only the layer they belong to. Shared parameters are rare in classifiers; the copies
 * cost their size once more.
 */
function unshareLayerParameters(graph: Graph): void {
  const uses = new Map<string, number>();
  for (const n of graph.nodes) for (const x of n.inputs) uses.set(x, (uses.get(x) ?? 0) + 1);
  for (const n of graph.nodes) {
    const rules = operatorModule(n.op)?.fixedPoint;
    for (const i of [rules?.weightInput, rules?.biasInput]) {
      const name = i === undefined ? undefined : n.inputs[i];
      const t = name ? graph.initializers.get(name) : undefined;
      if (!name || !t || (uses.get(name) ?? 0) < 2) continue;
      // Each layer reading a shared parameter gets a copy; the original stays for other readers
      // and is dropped with the unused initializers.
      const copy = uniqueName(graph, `${name}_${n.name}`);
      graph.initializers.set(copy, { ...t, name: copy, dims: [...t.dims], data: t.data.slice() });
      n.inputs[i!] = copy;
    }
  }
}

function constantsToInitializers(graph: Graph): void {
  for (const n of [...graph.nodes]) {
    if (n.op !== 'Constant') continue;
    const a =
      n.attrs['value'] ??
      n.attrs['value_float'] ??
      n.attrs['value_floats'] ??
      n.attrs['value_int'] ??
      n.attrs['value_ints'];
    let t: Tensor;
    const name = n.outputs[0]!;
    if (a?.kind === 'tensor') t = { ...a.value, name };
    else if (a?.kind === 'float') t = { name, dataType: DataType.FLOAT, dims: [], data: Float32Array.of(a.value) };
    else if (a?.kind === 'floats')
      t = { name, dataType: DataType.FLOAT, dims: [a.value.length], data: Float32Array.from(a.value) };
    else if (a?.kind === 'int')
      t = { name, dataType: DataType.INT64, dims: [], data: BigInt64Array.of(BigInt(a.value)) };
    else if (a?.kind === 'ints')
      t = { name, dataType: DataType.INT64, dims: [a.value.length], data: BigInt64Array.from(a.value, BigInt) };
    else throw new FxpqError(`Node ${n.name} (Constant) has no supported value attribute.`, 'unsupported-model');
    graph.initializers.set(name, t);
    graph.nodes = graph.nodes.filter((x) => x !== n);
  }
}

/** Identity and Dropout vanish: one pass over the graph, chains resolved at once (linear in its size). */
function removeNoOps(graph: Graph): void {
  const consumed = new Set(graph.nodes.flatMap((n) => n.inputs));
  const alias = new Map<string, string>();
  const atOutputs: Node[] = [];
  for (const n of graph.nodes) {
    if (n.op !== 'Identity' && n.op !== 'Dropout') continue;
    if (n.op === 'Dropout') {
      const mask = n.outputs[1];
      if (mask && (consumed.has(mask) || isGraphOutput(graph, mask))) {
        throw new FxpqError(
          `Node ${n.name} (Dropout): its mask output is used, which an inference graph should not do.`,
          'unsupported-model',
        );
      }
      n.outputs = n.outputs.slice(0, 1);
    }
    // A no-op that writes a graph output keeps the public name: handled one by one below.
    if (isGraphOutput(graph, n.outputs[0]!)) atOutputs.push(n);
    else alias.set(n.outputs[0]!, n.inputs[0]!);
  }
  const resolveName = (t: string): string => {
    let r = t;
    while (alias.has(r)) r = alias.get(r)!;
    // Path compression: a long chain is walked once.
    for (let x = t; alias.has(x) && x !== r;) {
      const next = alias.get(x)!;
      alias.set(x, r);
      x = next;
    }
    return r;
  };
  graph.nodes = graph.nodes.filter((n) => !((n.op === 'Identity' || n.op === 'Dropout') && alias.has(n.outputs[0]!)));
  for (const n of graph.nodes) n.inputs = n.inputs.map((i) => (alias.has(i) ? resolveName(i) : i));
  for (const n of atOutputs) bypassNode(graph, n);
}

/** A Reshape/Flatten/Transpose of a constant (mnist-8 reshapes its FC weight) becomes a constant. */
function foldConstantLayout(graph: Graph): void {
  for (const n of [...graph.nodes]) {
    if (!['Reshape', 'Flatten', 'Transpose'].includes(n.op)) continue;
    const t = graph.initializers.get(n.inputs[0]!);
    if (!t) continue;
    let dims: number[];
    let data = t.data;
    if (n.op === 'Reshape') {
      const target = graph.initializers.get(n.inputs[1] ?? '');
      const requested = target ? tensorToNumbers(target) : attrInts(n, 'shape', []);
      const r = reshapeTarget(t.dims, requested, attrInt(n, 'allowzero', 0) === 1);
      if (typeof r === 'string') throw new FxpqError(`Node ${n.name} (Reshape): ${r}.`, 'invalid-model');
      dims = r;
    } else if (n.op === 'Flatten') {
      const axis = attrInt(n, 'axis', 1);
      const a = axis < 0 ? axis + t.dims.length : axis;
      dims = [t.dims.slice(0, a).reduce((p, d) => p * d, 1), t.dims.slice(a).reduce((p, d) => p * d, 1)];
    } else {
      const perm = attrInts(
        n,
        'perm',
        t.dims.map((_, i) => t.dims.length - 1 - i),
      );
      ({ dims, data } = transposeTensor(t, perm));
    }
    const name = n.outputs[0]!;
    graph.initializers.set(name, { name, dataType: t.dataType, dims, data });
    graph.nodes = graph.nodes.filter((x) => x !== n);
  }
}

function transposeTensor(t: Tensor, perm: number[]): { dims: number[]; data: Tensor['data'] } {
  const out = new (t.data.constructor as { new (n: number): Tensor['data'] })(t.data.length);
  return transposeData(t.data as never, t.dims, perm, out as never);
}

/**
 * Producers before consumers, otherwise in file order: always the first remaining node whose
 * inputs are all available (a heap of ready nodes by index keeps it linear in the graph size).
 */
function sortTopologically(graph: Graph, source: string): void {
  const available = new Set<string>([...graph.inputs.map((v) => v.name), ...graph.initializers.keys(), '']);
  const producer = new Map<string, number>();
  graph.nodes.forEach((n, i) => n.outputs.forEach((o) => o && producer.set(o, i)));
  const waiting = graph.nodes.map((n) => n.inputs.filter((x) => !available.has(x)).length);
  const readers = graph.nodes.map((): number[] => []);
  graph.nodes.forEach((n, i) =>
    n.inputs.forEach((x) => {
      if (available.has(x)) return;
      const p = producer.get(x);
      if (p !== undefined) readers[p]!.push(i);
    }),
  );
  const ready: number[] = [];
  const push = (i: number): void => {
    ready.push(i);
    for (let k = ready.length - 1; k > 0;) {
      const up = (k - 1) >> 1;
      if (ready[up]! <= ready[k]!) break;
      [ready[up], ready[k]] = [ready[k]!, ready[up]!];
      k = up;
    }
  };
  const pop = (): number => {
    const top = ready[0]!;
    const last = ready.pop()!;
    if (ready.length > 0) {
      ready[0] = last;
      for (let k = 0; ;) {
        const [l, r] = [2 * k + 1, 2 * k + 2];
        let m = k;
        if (l < ready.length && ready[l]! < ready[m]!) m = l;
        if (r < ready.length && ready[r]! < ready[m]!) m = r;
        if (m === k) break;
        [ready[m], ready[k]] = [ready[k]!, ready[m]!];
        k = m;
      }
    }
    return top;
  };
  waiting.forEach((w, i) => w === 0 && push(i));
  const ordered: Node[] = [];
  while (ready.length > 0) {
    const i = pop();
    ordered.push(graph.nodes[i]!);
    for (const r of readers[i]!) if (--waiting[r]! === 0) push(r);
  }
  if (ordered.length < graph.nodes.length) {
    const n = graph.nodes.find((_, i) => waiting[i]! > 0)!;
    const missing = n.inputs.filter((x) => !available.has(x) && !producer.has(x));
    throw new FxpqError(
      missing.length
        ? `${source}: node ${n.name} reads ${missing.join(', ')}, which no node, input or initializer provides.`
        : `${source}: the graph has a cycle through node ${n.name}; an ONNX graph must be acyclic.`,
      'invalid-model',
    );
  }
  graph.nodes = ordered;
}

/** Output channel of weight element i: Conv [O, ...] and Gemm with transB; Gemm without transB is [K, N]. */
function scaleOutputChannels(
  w: Float32Array,
  dims: number[],
  channelAxisLast: boolean,
  scale: Float32Array,
): Float32Array {
  const out = new Float32Array(w.length);
  const channels = scale.length;
  const inner = channelAxisLast ? 1 : w.length / channels;
  for (let i = 0; i < w.length; i++) {
    const c = channelAxisLast ? i % channels : Math.floor(i / inner);
    out[i] = w[i]! * scale[c]!;
  }
  void dims;
  return out;
}

function foldBatchNorm(graph: Graph, shapes: ShapeMap): void {
  for (const bn of [...graph.nodes]) {
    if (bn.op !== 'BatchNormalization') continue;
    if (bn.outputs.length > 1 && bn.outputs.slice(1).some(Boolean)) {
      throw new FxpqError(
        `Node ${bn.name} (BatchNormalization) is in training mode (it has running-statistics outputs); export the model in eval mode.`,
        'unsupported-model',
      );
    }
    const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => constantFloat(graph, bn.inputs[i]));
    if (!gamma || !beta || !mean || !variance) {
      throw new FxpqError(`Node ${bn.name} (BatchNormalization) has non-constant parameters.`, 'unsupported-model');
    }
    const eps = attrFloat(bn, 'epsilon', 1e-5);
    const channels = gamma.length;
    const scale = new Float32Array(channels);
    const shift = new Float32Array(channels);
    for (let c = 0; c < channels; c++) {
      // float64 on purpose: the folded value is rounded to float32 once.
      const s = gamma[c]! / Math.sqrt(variance[c]! + eps);
      scale[c] = s;
      shift[c] = beta[c]! - mean[c]! * s;
    }
    const x = bn.inputs[0]!;
    const producer = producersOf(graph).get(x);
    const foldable =
      producer &&
      (producer.op === 'Conv' || producer.op === 'Gemm') &&
      !producer.activation &&
      singleConsumer(graph, x) === bn &&
      graph.initializers.has(producer.inputs[1]!);
    if (foldable) {
      const wName = producer.inputs[1]!;
      const wT = graph.initializers.get(wName)!;
      const transB = producer.op === 'Gemm' && attrInt(producer, 'transB', 0) === 1;
      const channelLast = producer.op === 'Gemm' && !transB;
      const w = scaleOutputChannels(toFloat32(wT), wT.dims, channelLast, scale);
      const newW = uniqueName(graph, `${wName}_bnfold`);
      graph.initializers.set(newW, floatTensor(newW, wT.dims, w));
      const b = constantFloat(graph, producer.inputs[2]) ?? new Float32Array(channels);
      const newB = uniqueName(graph, `${producer.name}_bias_bnfold`);
      const bias = new Float32Array(channels);
      for (let c = 0; c < channels; c++) bias[c] = Math.fround(b[c]! * scale[c]! + shift[c]!);
      graph.initializers.set(newB, floatTensor(newB, [channels], bias));
      producer.inputs = [producer.inputs[0]!, newW, newB];
      producer.outputs = [bn.outputs[0]!];
      graph.nodes = graph.nodes.filter((n) => n !== bn);
      continue;
    }
    // No Conv/Gemm to fold into: a per-channel affine layer, as a depthwise 1x1 Conv.
    const rank = shapes.get(x)?.length ?? 0;
    if (rank < 3) {
      throw new FxpqError(
        `Node ${bn.name} (BatchNormalization) follows no Conv/Gemm and acts on a ${rank}-D tensor; only 3-D and 4-D are supported there.`,
        'unsupported-model',
      );
    }
    const wName = uniqueName(graph, `${bn.name}_affine_W`);
    const bName = uniqueName(graph, `${bn.name}_affine_B`);
    const kernel = new Array<number>(rank - 2).fill(1);
    graph.initializers.set(wName, floatTensor(wName, [channels, 1, ...kernel], scale));
    graph.initializers.set(bName, floatTensor(bName, [channels], shift));
    bn.op = 'Conv';
    bn.inputs = [x, wName, bName];
    bn.outputs = [bn.outputs[0]!];
    bn.attrs = { group: { kind: 'int', value: channels }, kernel_shape: { kind: 'ints', value: kernel } };
  }
}

/** Gemm becomes Y = A B' + C with alpha = beta = 1 and a 1-D bias, so every later stage sees one form. */
function normalizeGemm(graph: Graph): void {
  for (const n of graph.nodes) {
    if (n.op !== 'Gemm') continue;
    if (attrInt(n, 'transA', 0) !== 0) {
      throw new FxpqError(
        `Node ${n.name} (Gemm) transposes its activation input (transA=1), which is not supported.`,
        'unsupported-model',
      );
    }
    const alpha = attrFloat(n, 'alpha', 1);
    const beta = attrFloat(n, 'beta', 1);
    const wT = graph.initializers.get(n.inputs[1]!);
    if (!wT)
      throw new FxpqError(
        `Node ${n.name} (Gemm) has non-constant weights; FxPQ quantizes layers with constant weights.`,
        'unsupported-model',
      );
    if (alpha !== 1) {
      const name = uniqueName(graph, `${wT.name}_alpha`);
      graph.initializers.set(
        name,
        floatTensor(
          name,
          wT.dims,
          toFloat32(wT).map((v) => v * alpha),
        ),
      );
      n.inputs[1] = name;
    }
    const transB = attrInt(n, 'transB', 0) === 1;
    const outFeatures = transB ? wT.dims[0]! : wT.dims[1]!;
    const cT = n.inputs[2] ? graph.initializers.get(n.inputs[2]) : undefined;
    if (n.inputs[2] && !cT)
      throw new FxpqError(`Node ${n.name} (Gemm) has a non-constant C input.`, 'unsupported-model');
    if (cT) {
      const c = toFloat32(cT);
      if (c.length !== outFeatures && c.length !== 1) {
        throw new FxpqError(`Node ${n.name} (Gemm): its C input is not a per-output bias.`, 'unsupported-model');
      }
      if (beta !== 1 || c.length !== outFeatures || cT.dims.length !== 1) {
        const name = uniqueName(graph, `${cT.name}_bias`);
        const bias = new Float32Array(outFeatures).map((_, i) => c[c.length === 1 ? 0 : i]! * beta);
        graph.initializers.set(name, floatTensor(name, [outFeatures], bias));
        n.inputs[2] = name;
      }
    }
    const attrs = { ...n.attrs };
    delete attrs['alpha'];
    delete attrs['beta'];
    delete attrs['transA'];
    n.attrs = attrs;
  }
}

/**
 * Conv/Gemm/MatMul followed by an Add of a per-output-channel constant (mnist-8's CNTK
 * export) gets that constant as its bias; MatMul on 2-D input becomes a Gemm.
 */
function foldBiasAdd(graph: Graph, shapes: ShapeMap): void {
  for (const add of [...graph.nodes]) {
    if (add.op !== 'Add') continue;
    const constIndex = add.inputs.findIndex((i) => graph.initializers.has(i));
    if (constIndex < 0) continue;
    const x = add.inputs[1 - constIndex]!;
    const producer = producersOf(graph).get(x);
    if (!producer || !['Conv', 'Gemm', 'MatMul'].includes(producer.op) || producer.activation) continue;
    if (singleConsumer(graph, x) !== add) continue;
    const cT = graph.initializers.get(add.inputs[constIndex]!)!;
    const yShape = shapes.get(x)!;
    const channelAxis = producer.op === 'Conv' ? 1 : yShape.length - 1;
    const channels = yShape[channelAxis]!;
    // The constant must vary along the channel axis only, once right-aligned against the output.
    const aligned = [...new Array<number>(yShape.length - cT.dims.length).fill(1), ...cT.dims];
    if (aligned.length !== yShape.length || aligned.some((d, i) => d !== 1 && !(i === channelAxis && d === channels)))
      continue;
    if (producer.op === 'MatMul' && yShape.length !== 2) continue;
    const c = toFloat32(cT);
    const existing = constantFloat(graph, producer.inputs[2]) ?? new Float32Array(channels);
    const bias = new Float32Array(channels).map((_, i) => existing[i]! + c[c.length === 1 ? 0 : i]!);
    const bName = uniqueName(graph, `${producer.name}_bias`);
    graph.initializers.set(bName, floatTensor(bName, [channels], bias));
    if (producer.op === 'MatMul') {
      producer.op = 'Gemm';
      producer.attrs = {};
    }
    producer.inputs = [producer.inputs[0]!, producer.inputs[1]!, bName];
    producer.outputs = [add.outputs[0]!];
    graph.nodes = graph.nodes.filter((n) => n !== add);
  }
}

function fuseActivations(graph: Graph): void {
  for (const act of [...graph.nodes]) {
    if (act.op !== 'Relu' && act.op !== 'Clip') continue;
    const x = act.inputs[0]!;
    const producer = producersOf(graph).get(x);
    if (!producer || producer.activation || !operatorModule(producer.op)?.fusesActivation) continue;
    if (singleConsumer(graph, x) !== act) continue;
    let bounds = { min: 0, max: Infinity };
    if (act.op === 'Clip') {
      // Bounds given as non-constant inputs cannot be folded into a clamp.
      if (act.inputs.slice(1).some((i) => i && !graph.initializers.has(i))) continue;
      const b = clipLimits(act, graph);
      // Only Relu-like clips (lower bound 0) fuse: the unsigned output format relies on it.
      if (b.min !== 0 || !(b.max > 0)) continue;
      bounds = b;
    }
    producer.activation = { op: act.op, ...bounds };
    producer.outputs = [act.outputs[0]!];
    graph.nodes = graph.nodes.filter((n) => n !== act);
  }
}

function checkTerminalOps(graph: Graph, source: string): void {
  for (const n of graph.nodes) {
    if (operatorModule(n.op)?.formatRole !== 'terminal') continue;
    if (!n.outputs.every((o) => isGraphOutput(graph, o))) {
      throw new FxpqError(
        `${source}: ${n.op} node ${n.name} is inside the network; FxPQ supports ${n.op} only as the final operator.`,
        'unsupported-op',
      );
    }
  }
}

/** Spatial operators whose integer kernels and C are written for 2-D images (N, C, H, W). */
const SPATIAL_2D = new Set(['Conv', 'MaxPool', 'AveragePool', 'GlobalAveragePool']);

/**
 * What the canonical graph may hold that plans but could not run in the integer kernels: refused
 * here, at import, rather than after a search.
 */
function checkRunnable(graph: Graph, shapes: ShapeMap, source: string): void {
  for (const n of graph.nodes) {
    const x = shapes.get(n.inputs[0]!);
    if (SPATIAL_2D.has(n.op) && x && x.length !== 4)
      throw new FxpqError(
        `${source}: node ${n.name} (${n.op}) works on a ${x.length - 2}-D signal; FxPQ's integer kernels cover 2-D images (N, C, H, W) only.`,
        'unsupported-model',
      );
    if (n.op === 'Add') {
      const [a, b] = [shapes.get(n.inputs[0]!), shapes.get(n.inputs[1]!)];
      if (a && b && a.join() !== b.join())
        throw new FxpqError(
          `${source}: node ${n.name} (Add) broadcasts [${a.join(', ')}] with [${b.join(', ')}]; FxPQ's integer Add adds tensors of the same shape.`,
          'unsupported-model',
        );
    }
  }
}

function removeUnusedInitializers(graph: Graph): void {
  const used = new Set(graph.nodes.flatMap((n) => n.inputs));
  for (const name of [...graph.initializers.keys()]) if (!used.has(name)) graph.initializers.delete(name);
}
