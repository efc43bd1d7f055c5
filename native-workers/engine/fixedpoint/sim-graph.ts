/**
 * The fake-quant simulation graph: the canonical graph in float, with every quantization
 * point spelled out so that onnxruntime reproduces the integer semantics of spec §2. Every
 * format-dependent value (quantized weights, aligned biases, scales, clamp bounds) is a
 * graph *input*, so one onnxruntime session serves every format assignment of a search.
 */
import {
  DataType,
  floatTensor,
  int64Tensor,
  type AttrValue,
  type Graph,
  type Node,
  type Tensor,
  type ValueInfo,
} from '../ir/graph.js';
import { operatorModule } from '../ops/registry.js';
import { dequantizeArray, POOL_RECIPROCAL_BITS, poolReciprocal, rshiftRound, type Format } from './format.js';
import { outputBounds, structureId, type QuantPlan } from './plan.js';

export interface FeedValue {
  type: 'float32' | 'float64';
  dims: number[];
  data: Float32Array | Float64Array;
}

export interface FeedContext {
  plan: QuantPlan;
  format(id: string): Format;
  /** Fractional length of an activation tensor. */
  fracOf(tensor: string): number;
  /** Integers of a quantized W or B tensor under the current assignment. */
  quantized(id: string): Int32Array;
  /** A key of the structure's values ('' unless bias correction replaced them). */
  version(id: string): string;
}

export interface FeedSpec {
  dims: number[];
  /**
   * A layer's weights or bias: the runner may bake these into a session of their own as
   * constants, which lets onnxruntime use its blocked (NCHWc) convolution kernels.
   */
  parameter?: true;
  /** Structure ids whose formats decide this feed (its cache key). */
  deps: string[];
  make(ctx: FeedContext): FeedValue;
}

export interface SimGraph {
  graph: Graph;
  feeds: Map<string, FeedSpec>;
  outputName: string;
}

const scalar32 = (v: number): FeedValue => ({ type: 'float32', dims: [], data: Float32Array.of(v) });
const scalar64 = (v: number): FeedValue => ({ type: 'float64', dims: [], data: Float64Array.of(v) });

export class SimBuilder {
  readonly nodes: Node[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly initializers = new Map<string, Tensor>();
  readonly feeds = new Map<string, FeedSpec>();
  private counter = 0;
  /** The model's tensor names, which the builder's own names (`sim/...`) must not take. */
  private readonly modelNames: Set<string>;
  private readonly owned = new Map<string, string>();
  private readonly taken = new Set<string>();

  constructor(readonly plan: QuantPlan) {
    const g = plan.graph;
    this.modelNames = new Set([...g.inputs.map((i) => i.name), ...g.initializers.keys()]);
    for (const n of g.nodes) for (const o of n.outputs) this.modelNames.add(o);
  }

  /** The name the builder gives to its own tensor `base`: `base`, unless the model has a tensor of that name. */
  private own(base: string): string {
    let name = this.owned.get(base);
    if (name !== undefined) return name;
    name = base;
    for (let i = 1; this.modelNames.has(name) || this.taken.has(name); i++) name = `${base}~${i}`;
    this.owned.set(base, name);
    this.taken.add(name);
    return name;
  }

  emit(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    const out = output ?? this.own(`sim/${op}_${this.counter++}`);
    this.nodes.push({ name: `sim/${op}_${this.counter++}`, op, inputs, outputs: [out], attrs });
    return out;
  }

  feed(base: string, spec: FeedSpec, type: DataType = DataType.FLOAT): string {
    const name = this.own(base);
    if (!this.feeds.has(name)) {
      this.feeds.set(name, spec);
      this.inputs.push({ name, dataType: type, shape: spec.dims });
    }
    return name;
  }

  /** A constant of the source graph (a Reshape shape, say), copied as is. */
  constant(name: string): string {
    const t = this.plan.graph.initializers.get(name);
    if (t && !this.initializers.has(name)) this.initializers.set(name, t);
    return name;
  }

  newConstant(t: Tensor): string {
    const name = this.own(t.name);
    this.initializers.set(name, { ...t, name });
    return name;
  }

  /** Dequantized weights m_w * 2^-f_w, as a feed. */
  weights(tensor: string): string {
    const id = structureId('W', tensor);
    const dims = this.plan.graph.initializers.get(tensor)!.dims;
    return this.feed(`sim/W/${tensor}`, {
      dims,
      parameter: true,
      deps: [id],
      make: (ctx) => ({ type: 'float32', dims, data: dequantizeArray(ctx.quantized(id), ctx.format(id).frac) }),
    });
  }

  /** The bias aligned to the accumulator (rshift_round(m_b, f_b - f_w - f_x)) in real units, as a feed. */
  bias(tensor: string, weightTensor: string, inputTensor: string): string {
    const id = structureId('B', tensor);
    const wId = structureId('W', weightTensor);
    const xId = this.plan.activationOf.get(inputTensor)!;
    const dims = this.plan.graph.initializers.get(tensor)!.dims;
    return this.feed(`sim/B/${tensor}`, {
      dims,
      parameter: true,
      deps: [id, wId, xId],
      make: (ctx) => {
        const fAcc = ctx.format(wId).frac + ctx.format(xId).frac;
        const shift = ctx.format(id).frac - fAcc;
        const m = ctx.quantized(id);
        const out = new Float32Array(m.length);
        for (let i = 0; i < m.length; i++) out[i] = rshiftRound(m[i]!, shift) * 2 ** -fAcc;
        return { type: 'float32', dims, data: out };
      },
    });
  }

  /** clamp(floor(x 2^f + 0.5), lo, hi) 2^-f with the format (and fused activation) of `node`'s output. */
  quantize(x: string, node: Node, output: string): string {
    const id = this.plan.activationOf.get(node.outputs[0]!)!;
    const key = `sim/Q/${id}`;
    const s = this.feed(`${key}/scale`, { dims: [], deps: [id], make: (ctx) => scalar32(2 ** ctx.format(id).frac) });
    const lo = this.feed(`${key}/lo`, {
      dims: [],
      deps: [id],
      make: (ctx) => scalar32(outputBounds(node, ctx.format(id)).lo),
    });
    const hi = this.feed(`${key}/hi`, {
      dims: [],
      deps: [id],
      make: (ctx) => scalar32(outputBounds(node, ctx.format(id)).hi),
    });
    const inv = this.feed(`${key}/inv`, { dims: [], deps: [id], make: (ctx) => scalar32(2 ** -ctx.format(id).frac) });
    const half = this.newConstant(floatTensor('sim/half', [], Float32Array.of(0.5)));
    const scaled = this.emit('Mul', [x, s]);
    const rounded = this.emit('Floor', [this.emit('Add', [scaled, half])]);
    let clamped = this.emit('Clip', [rounded, lo, hi]);
    if (node.activation?.maxPerChannel) {
      // An equalized ReLU6: one more bound per output channel (axis 1).
      const rank = this.plan.shapes.get(node.outputs[0]!)!.length;
      const channels = node.activation.maxPerChannel.length;
      const dims = [1, channels, ...new Array<number>(rank - 2).fill(1)];
      const perChannel = this.feed(`${key}/hi-per-channel`, {
        dims,
        deps: [id],
        make: (ctx) => ({
          type: 'float32',
          dims,
          data: Float32Array.from(outputBounds(node, ctx.format(id)).hiPerChannel!),
        }),
      });
      clamped = this.emit('Min', [clamped, perChannel]);
    }
    return this.emit('Mul', [clamped, inv], {}, output);
  }

  /**
   * The AveragePool rule: m_y = clamp(rshift_round(sum * R, P + f_x - f_y)), from the exact
   * float32 window sum, in float64 (sum * R may pass 2^24).
   */
  quantizePooledSum(sum: string, count: number, node: Node, output: string): string {
    const id = this.plan.activationOf.get(node.outputs[0]!)!;
    const xId = this.plan.activationOf.get(node.inputs[0]!)!;
    const key = `sim/Q/${id}`;
    const r = poolReciprocal(count);
    const k = this.feed(
      `${key}/k`,
      { dims: [], deps: [id, xId], make: (ctx) => scalar64(r * 2 ** (ctx.format(id).frac - POOL_RECIPROCAL_BITS)) },
      DataType.DOUBLE,
    );
    const lo = this.feed(
      `${key}/lo`,
      { dims: [], deps: [id], make: (ctx) => scalar64(outputBounds(node, ctx.format(id)).lo) },
      DataType.DOUBLE,
    );
    const hi = this.feed(
      `${key}/hi`,
      { dims: [], deps: [id], make: (ctx) => scalar64(outputBounds(node, ctx.format(id)).hi) },
      DataType.DOUBLE,
    );
    const inv = this.feed(
      `${key}/inv`,
      { dims: [], deps: [id], make: (ctx) => scalar64(2 ** -ctx.format(id).frac) },
      DataType.DOUBLE,
    );
    const half = this.newConstant({
      name: 'sim/half64',
      dataType: DataType.DOUBLE,
      dims: [],
      data: Float64Array.of(0.5),
    });
    const d = this.emit('Cast', [sum], { to: { kind: 'int', value: DataType.DOUBLE } });
    const rounded = this.emit('Floor', [this.emit('Add', [this.emit('Mul', [d, k]), half])]);
    const y = this.emit('Mul', [this.emit('Clip', [rounded, lo, hi]), inv]);
    return this.emit('Cast', [y], { to: { kind: 'int', value: DataType.FLOAT } }, output);
  }

  int64(name: string, values: number[]): string {
    return this.newConstant(int64Tensor(name, values));
  }
}

/** Build the simulation graph of a plan (opset 13, dynamic batch). */
export function buildSimGraph(plan: QuantPlan): SimGraph {
  const b = new SimBuilder(plan);
  const input = plan.graph.inputs[0]!;
  b.inputs.push({ name: input.name, dataType: DataType.FLOAT, shape: [-1, ...input.shape.slice(1)], dimParams: ['N'] });
  for (const node of plan.nodes) operatorModule(node.op)!.fixedPoint!.lowerSim(node, b);
  const graph: Graph = {
    name: `${plan.graph.name}-fxpq-sim`,
    opset: 13,
    irVersion: 7,
    producer: 'fxpq',
    inputs: b.inputs,
    outputs: [
      {
        name: plan.logitsTensor,
        dataType: DataType.FLOAT,
        shape: [-1, ...plan.shapes.get(plan.logitsTensor)!.slice(1)],
        dimParams: ['N'],
      },
    ],
    nodes: b.nodes,
    initializers: b.initializers,
    metadata: {},
  };
  return { graph, feeds: b.feeds, outputName: plan.logitsTensor };
}

/**
 * The activations a run may return besides the logits: every quantized activation, and the inputs
 * of the layers with weights (optimized rounding reads them; a Flatten's output, say).
 */
export function readableActivations(plan: QuantPlan): string[] {
  const activations = plan.structures
    .filter((s) => s.kind === 'A' && s.tensor !== plan.logitsTensor && s.tensor !== plan.inputName)
    .map((s) => s.tensor);
  const layerInputs = plan.nodes
    .filter((n) => operatorModule(n.op)?.fixedPoint?.weightInput !== undefined)
    .map((n) => n.inputs[0]!)
    .filter((t) => t !== plan.inputName && t !== plan.logitsTensor);
  return [...new Set([...activations, ...layerInputs])];
}

/**
 * The same graph with every activation as an output as well, for reading any layer's output
 * (bias correction). A separate session: declaring them all slows the main graph down (measured
 * 5x on fmnist_resnet20), since onnxruntime can no longer reuse their memory.
 */
export function withActivationOutputs(sim: SimGraph, plan: QuantPlan): SimGraph {
  const extra = readableActivations(plan);
  return {
    ...sim,
    graph: {
      ...sim.graph,
      outputs: [
        ...sim.graph.outputs,
        ...extra.map((name) => ({
          name,
          dataType: DataType.FLOAT,
          shape: [-1, ...plan.shapes.get(name)!.slice(1)],
          dimParams: ['N'],
        })),
      ],
    },
  };
}

/** The names of the feeds that carry weights and biases, in a fixed order. */
export function parameterFeeds(sim: SimGraph): string[] {
  return [...sim.feeds].filter(([, spec]) => spec.parameter).map(([name]) => name);
}

/** The simulation graph with the given parameter feeds turned into constants (initializers). */
export function withParametersBaked(sim: SimGraph, values: Map<string, FeedValue>): Graph {
  const initializers = new Map(sim.graph.initializers);
  for (const [name, v] of values) {
    const dataType = v.type === 'float64' ? DataType.DOUBLE : DataType.FLOAT;
    initializers.set(name, { name, dataType, dims: v.dims, data: v.data });
  }
  return { ...sim.graph, inputs: sim.graph.inputs.filter((i) => !values.has(i.name)), initializers };
}

/** What a feed's value depends on under an assignment: the formats (and values) of its structures. */
export function feedKey(spec: FeedSpec, ctx: Pick<FeedContext, 'format' | 'version'>): string {
  return spec.deps
    .map((d) => {
      const f = ctx.format(d);
      return `${f.bits},${f.frac},${f.signed ? 1 : 0},${ctx.version(d)}`;
    })
    .join('|');
}

/** Compute the feeds of an assignment, reusing `cache` for those whose formats did not change. */
export function simFeeds(
  sim: SimGraph,
  ctx: FeedContext,
  cache?: Map<string, { key: string; value: FeedValue }>,
  /** Filled with each feed's key. */
  keysOut?: Map<string, string>,
): Map<string, FeedValue> {
  const out = new Map<string, FeedValue>();
  for (const [name, spec] of sim.feeds) {
    const key = feedKey(spec, ctx);
    keysOut?.set(name, key);
    const hit = cache?.get(name);
    if (hit && hit.key === key) {
      out.set(name, hit.value);
      continue;
    }
    const value = spec.make(ctx);
    cache?.set(name, { key, value });
    out.set(name, value);
  }
  return out;
}
