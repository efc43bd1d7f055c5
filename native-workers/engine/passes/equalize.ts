/**
 * Cross-layer equalization (Nagel et al., "Data-Free Quantization Through Weight Equalization
 * and Bias Correction", ICCV 2019), a function-preserving rewrite of the canonical graph.
 *
 * Why: a per-tensor format must cover a layer's widest output channel, so with folded
 * BatchNorm a depthwise layer whose channels differ by 100x in range keeps most channels
 * at a handful of levels (MobileNet v1 collapses to 0 % at 8 bits). For two consecutive layers
 * y = W2 act(W1 x + b1) with a positively homogeneous act, act(z / s) = act(z) / s for s > 0,
 * so scaling output channel i of the first layer by 1/s_i and input channel i of the second by
 * s_i changes nothing. s_i = sqrt(r1_i / r2_i) (r: the channel's largest |weight|) gives both
 * layers the same per-channel range, sqrt(r1_i r2_i).
 *
 * ReLU6 is not homogeneous: min(z / s, 6) != min(z, 6) / s. The function stays exact by giving
 * that channel the bound 6 / s_i (a per-channel clamp, `FusedActivation.maxPerChannel`), which
 * every stage honours (simulation, integer kernels, C, QDQ). The number format stays per
 * tensor and power-of-two.
 */
import { floatTensor, toFloat32, producersOf, consumersOf, attrInt, type Graph, type Node } from '../ir/graph.js';

/**
 * Sweeps over all pairs (a chain moves a little each sweep). On MobileNet v1, 20 sweeps leave
 * every scale within 9 % of 1 and gave better uniform 10-bit accuracy than 100 or 400 (BENCHMARKS.md).
 */
const SWEEPS = 20;

export interface EqualizeReport {
  /** Pairs of layers equalized. */
  pairs: number;
  /** Output channels found always zero, whose weights in both layers were set to zero. */
  deadChannels?: number;
}

interface Layer {
  node: Node;
  w: Float32Array;
  dims: number[];
  bias: Float32Array;
  hasBias: boolean;
  group: number;
}

function convLayer(graph: Graph, node: Node, consumers: Map<string, Node[]>): Layer | undefined {
  if (node.op !== 'Conv') return undefined;
  // A weight or bias shared with another node cannot be rescaled for this one alone.
  if (node.inputs.slice(1).some((t) => t && (consumers.get(t) ?? []).length !== 1)) return undefined;
  const wT = graph.initializers.get(node.inputs[1]!);
  if (!wT || wT.dims.length !== 4) return undefined;
  const bT = node.inputs[2] ? graph.initializers.get(node.inputs[2]) : undefined;
  if (node.inputs[2] && !bT) return undefined;
  return {
    node,
    w: toFloat32(wT).slice(),
    dims: wT.dims,
    bias: bT ? toFloat32(bT).slice() : new Float32Array(wT.dims[0]!),
    hasBias: bT !== undefined,
    group: attrInt(node, 'group', 1),
  };
}

/** Whether act(z / s) = act(z) / s can be kept exact for s > 0 (ReLU; ReLU6 through a per-channel bound). */
function scalable(node: Node): boolean {
  const a = node.activation;
  return !a || (a.min === 0 && a.max > 0);
}

/** Largest |w| of each output channel of a Conv weight [O, I/g, kh, kw]. */
function outputRanges(l: Layer): Float64Array {
  const [o] = l.dims as [number];
  const inner = l.w.length / o;
  const r = new Float64Array(o);
  for (let c = 0; c < o; c++) for (let k = 0; k < inner; k++) r[c] = Math.max(r[c]!, Math.abs(l.w[c * inner + k]!));
  return r;
}

/** Largest |w| over each input channel of a Conv weight (grouped convolutions included). */
function inputRanges(l: Layer): Float64Array {
  const [o, ig, kh, kw] = l.dims as [number, number, number, number];
  const perGroupOut = o / l.group;
  const r = new Float64Array(ig * l.group);
  const k = kh * kw;
  for (let oc = 0; oc < o; oc++) {
    const g = Math.floor(oc / perGroupOut);
    for (let j = 0; j < ig; j++) {
      const c = g * ig + j;
      for (let t = 0; t < k; t++) r[c] = Math.max(r[c]!, Math.abs(l.w[(oc * ig + j) * k + t]!));
    }
  }
  return r;
}

function scaleInputChannels(l: Layer, s: Float64Array): void {
  const [o, ig, kh, kw] = l.dims as [number, number, number, number];
  const perGroupOut = o / l.group;
  const k = kh * kw;
  for (let oc = 0; oc < o; oc++) {
    const g = Math.floor(oc / perGroupOut);
    for (let j = 0; j < ig; j++) {
      const f = s[g * ig + j]!;
      for (let t = 0; t < k; t++) l.w[(oc * ig + j) * k + t]! *= f;
    }
  }
}

/**
 * The largest |value| a layer's input can take: its producer's activation bound where it has one,
 * else a bound for preprocessed images (normalized, or raw 0..255) with a wide margin.
 */
const IMAGE_BOUND = 1e4;
function inputBound(node: Node, producers: Map<string, Node>): number {
  const act = producers.get(node.inputs[0]!)?.activation;
  return act && act.min >= 0 && Number.isFinite(act.max) ? act.max : IMAGE_BOUND;
}

/**
 * A channel of a ReLU layer whose pre-activation cannot be positive (sum |w| * input bound + b <= 0;
 * MobileNet v1 has such channels, weights ~1e-13 with negative biases) outputs 0 for every input:
 * its weights in both layers are set to 0, which keeps the function and frees both formats
 * from weights that never contribute.
 */
function removeDeadChannels(a: Layer, b: Layer, bound: number): number {
  if (!a.node.activation || a.node.activation.min !== 0) return 0;
  const channels = a.dims[0]!;
  const inner = a.w.length / channels;
  const zero = new Float64Array(channels).fill(1);
  let dead = 0;
  for (let c = 0; c < channels; c++) {
    let l1 = 0;
    for (let k = 0; k < inner; k++) l1 += Math.abs(a.w[c * inner + k]!);
    if (l1 * bound + a.bias[c]! > 0) continue;
    a.w.fill(0, c * inner, (c + 1) * inner);
    a.bias[c] = 0;
    zero[c] = 0;
    dead++;
  }
  if (dead > 0) scaleInputChannels(b, zero);
  return dead;
}

/** The current per-channel upper bound of a layer's fused activation (Infinity for ReLU). */
function channelMax(node: Node, channels: number): Float64Array {
  const a = node.activation;
  const out = new Float64Array(channels).fill(Infinity);
  if (!a) return out;
  for (let c = 0; c < channels; c++) out[c] = a.maxPerChannel?.[c] ?? a.max;
  return out;
}

/**
 * Equalize every Conv -> (ReLU/ReLU6/none) -> Conv pair where the first layer's output feeds the
 * second alone. Weights are updated in float64 and rounded to float32 once.
 */
export function equalizeLayers(graph: Graph): EqualizeReport {
  const producers = producersOf(graph);
  const consumers = consumersOf(graph);
  const layers = new Map<Node, Layer>();
  const layer = (n: Node) => {
    if (!layers.has(n)) {
      const l = convLayer(graph, n, consumers);
      if (!l) return undefined;
      layers.set(n, l);
    }
    return layers.get(n);
  };
  const pairs: Array<[Layer, Layer]> = [];
  for (const second of graph.nodes) {
    if (second.op !== 'Conv') continue;
    const first = producers.get(second.inputs[0]!);
    if (!first || first.op !== 'Conv' || !scalable(first)) continue;
    const out = first.outputs[0]!;
    if ((consumers.get(out) ?? []).length !== 1 || graph.outputs.some((o) => o.name === out)) continue;
    const a = layer(first);
    const b = layer(second);
    if (!a || !b || a.dims[0] !== b.dims[1]! * b.group) continue;
    pairs.push([a, b]);
  }
  if (pairs.length === 0) return { pairs: 0 };
  let deadChannels = 0;
  for (const [a, b] of pairs) deadChannels += removeDeadChannels(a, b, inputBound(a.node, producers));
  // Per-channel bounds of each first layer's activation, scaled with its channels.
  const bounds = new Map<Node, Float64Array>();
  for (const [a] of pairs) bounds.set(a.node, channelMax(a.node, a.dims[0]!));
  for (let sweep = 0; sweep < SWEEPS; sweep++) {
    let moved = 0;
    for (const [a, b] of pairs) {
      const r1 = outputRanges(a);
      const r2 = inputRanges(b);
      const s = new Float64Array(r1.length);
      for (let c = 0; c < s.length; c++) {
        s[c] = r1[c]! > 0 && r2[c]! > 0 ? Math.sqrt(r1[c]! / r2[c]!) : 1;
        moved = Math.max(moved, Math.abs(Math.log(s[c]!)));
      }
      const inner = a.w.length / s.length;
      for (let c = 0; c < s.length; c++) {
        for (let k = 0; k < inner; k++) a.w[c * inner + k]! /= s[c]!;
        a.bias[c]! /= s[c]!;
      }
      const bound = bounds.get(a.node)!;
      for (let c = 0; c < s.length; c++) bound[c]! /= s[c]!;
      scaleInputChannels(b, s);
    }
    if (moved < 1e-3) break;
  }
  const fresh = (base: string): string => {
    let name = base;
    for (let i = 1; graph.initializers.has(name); i++) name = `${base}_${i}`;
    return name;
  };
  for (const l of layers.values()) {
    const wName = fresh(`${l.node.inputs[1]!}_equalized`);
    const bName = fresh(`${l.node.name}_bias_equalized`);
    graph.initializers.set(wName, floatTensor(wName, l.dims, Float32Array.from(l.w)));
    l.node.inputs = [l.node.inputs[0]!, wName];
    // A layer without a bias keeps none (its bias, zeros, only scales to zeros).
    if (!l.hasBias) continue;
    graph.initializers.set(bName, floatTensor(bName, [l.dims[0]!], Float32Array.from(l.bias)));
    l.node.inputs.push(bName);
  }
  for (const [node, bound] of bounds) {
    const a = node.activation;
    if (!a || !Number.isFinite(a.max)) continue;
    // Bounds in float32, like every constant of the graph: the writer, ORT and the plan read the same values.
    const perChannel = Array.from(bound, (v) => Math.fround(v));
    node.activation = { ...a, max: Math.max(...perChannel), maxPerChannel: perChannel };
  }
  return { pairs: pairs.length, deadChannels };
}
