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
 * layers the same per-channel range, sqrt(r1_i r2_i). Residual streams (Convs whose outputs
 * meet in Adds, and the Convs that read them) share one scale per channel (`findGroups`).
 *
 * ReLU6 is not homogeneous: min(z / s, 6) != min(z, 6) / s. The function stays exact by giving
 * that channel the bound 6 / s_i (a per-channel clamp, `FusedActivation.maxPerChannel`), which
 * every stage honours (simulation, integer kernels, C, QDQ). The number format stays per
 * tensor and power-of-two.
 */
import type { EqualizeMode } from '../../../api/contract.js';
import {
  attrInt,
  consumersOf,
  floatTensor,
  producersOf,
  toFloat32,
  uniqueName,
  type Graph,
  type Node,
} from '../ir/graph.js';

export type { EqualizeMode };

/**
 * The groups equalized by default: those holding a depthwise convolution, where per-tensor
 * formats fail without it (MobileNet v1: 0 % at 8 bits). Equalizing every group helps ResNet-8 at
 * 8 bits but costs below it and in the search on small calibration sets (BENCHMARKS.md).
 */
export const DEFAULT_EQUALIZE: EqualizeMode = 'depthwise';

/**
 * Sweeps over all groups (a chain moves a little each sweep). On MobileNet v1, 20 sweeps leave
 * every scale within 9 % of 1 and gave better uniform 10-bit accuracy than 100 or 400 (BENCHMARKS.md).
 */
const SWEEPS = 20;

/**
 * The most a channel is scaled up or down. Equalizing the weights moves their channels' spread
 * into the activations between the two layers (a channel scaled by 1/s has its ReLU6 range 6/s),
 * whose per-tensor formats then carry it: without equalization every MobileNet v1 activation
 * tensor's channels reach 6, with a limit of 16 the largest channel's range is 2-8x the median
 * one's. Rounded to nearest, the weights needed the room (16 was best at 10 bits); since uniform
 * runs round optimized (GPTQ), which mends the weights within a channel, the activations decide:
 * mobilenet_v1_0.25_224 at uniform 8, mean KL of the held-out logits over five 50 / 50 splits:
 * 0.443 with 16, 0.195 with 3, 0.169 with 2 (`npm run bench -- equalize-limit 2 3 16`); on five
 * other splits (a script) 0.223 with 1.5, 0.206 with 1.75, 0.176 with 2.5 (BENCHMARKS.md,
 * "Cross-layer equalization").
 */
export const MAX_SCALE = 2;

/** The limit of runs that recorded none (made before 2026-11-28): they are imported again with it. */
export const LEGACY_MAX_SCALE = 16;

export interface EqualizeReport {
  /** Groups of layers equalized (pairs, residual streams). */
  groups: number;
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
 * Layers that share one channel space: producers write it (their output channels), consumers
 * read it (their input channels). A plain pair has one of each; a residual stream joins the
 * Convs whose outputs meet in Adds with every Conv that reads the stream.
 */
interface Group {
  producers: Layer[];
  consumers: Layer[];
}

/**
 * The groups of the graph. A tensor belongs to a stream when a Conv (ReLU/ReLU6/none) or an Add
 * (ReLU/none) writes it; an Add joins its inputs' and output's streams. A stream is usable when
 * only Convs (as their data input) and its own Adds read it and it is no graph output: scaling a
 * channel by 1/s is then undone by the readers' input channels, and an Add of two scaled
 * tensors is the scaled sum.
 */
function findGroups(graph: Graph, layer: (n: Node) => Layer | undefined): Group[] {
  const producers = producersOf(graph);
  const consumers = consumersOf(graph);
  const parent = new Map<string, string>();
  const find = (t: string): string => {
    let r = t;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(t, r);
    return r;
  };
  const streamWriter = (n: Node | undefined): boolean =>
    !!n &&
    ((n.op === 'Conv' && scalable(n)) ||
      (n.op === 'Add' && (!n.activation || (n.activation.min === 0 && !Number.isFinite(n.activation.max)))));
  for (const n of graph.nodes) if (streamWriter(n)) parent.set(n.outputs[0]!, n.outputs[0]!);
  const broken = new Set<string>();
  for (const n of graph.nodes) {
    if (n.op !== 'Add' || !parent.has(n.outputs[0]!)) continue;
    for (const x of n.inputs) {
      if (!parent.has(x)) {
        broken.add(n.outputs[0]!);
        continue;
      }
      parent.set(find(x), find(n.outputs[0]!));
    }
  }
  const members = new Map<string, string[]>();
  for (const t of parent.keys()) members.set(find(t), [...(members.get(find(t)) ?? []), t]);
  const groups: Group[] = [];
  for (const tensors of members.values()) {
    const inStream = new Set(tensors);
    let usable = !tensors.some((t) => broken.has(t) || graph.outputs.some((o) => o.name === t));
    const group: Group = { producers: [], consumers: [] };
    for (const t of tensors) {
      const writer = producers.get(t)!;
      if (writer.op === 'Conv') {
        const l = layer(writer);
        if (l) group.producers.push(l);
        else usable = false;
      }
      for (const reader of consumers.get(t) ?? []) {
        if (reader.op === 'Add' && inStream.has(reader.outputs[0]!)) continue;
        const l = reader.op === 'Conv' && reader.inputs[0] === t ? layer(reader) : undefined;
        if (l) group.consumers.push(l);
        else usable = false;
      }
    }
    if (!usable || group.producers.length === 0 || group.consumers.length === 0) continue;
    const channels = group.producers[0]!.dims[0]!;
    if (
      group.producers.some((l) => l.dims[0] !== channels) ||
      group.consumers.some((l) => l.dims[1]! * l.group !== channels)
    )
      continue;
    groups.push(group);
  }
  return groups;
}

/**
 * The scales of one group: for a pair, s_i = sqrt(r1_i / r2_i) (DFQ); for a larger group, the s
 * that brings the member farthest above its tensor's typical channel and the one farthest below
 * equally close (a per-tensor format is set by its largest channel; each producer's output
 * channel ranges become r / s, each consumer's input ranges r * s). Measured against the
 * least-squares choice of the logs: ResNet-8 at uniform 8 bits 75.4 % against 73.0 %
 * (BENCHMARKS.md, cross-layer equalization).
 */
function groupScales(g: Group): Float64Array {
  const ranges = [...g.producers.map(outputRanges), ...g.consumers.map(inputRanges)];
  const channels = ranges[0]!.length;
  const s = new Float64Array(channels).fill(1);
  if (g.producers.length === 1 && g.consumers.length === 1) {
    const [r1, r2] = ranges as [Float64Array, Float64Array];
    for (let c = 0; c < channels; c++) s[c] = r1[c]! > 0 && r2[c]! > 0 ? Math.sqrt(r1[c]! / r2[c]!) : 1;
    return s;
  }
  // A channel that is zero in some member (dead, or cleared) takes no part.
  const live = (c: number) => ranges.every((r) => r[c]! > 0);
  // Each member's log ranges against their mean (its typical channel).
  const deviations = ranges.map((r) => {
    let mean = 0;
    let n = 0;
    for (let c = 0; c < channels; c++)
      if (live(c)) {
        mean += Math.log(r[c]!);
        n++;
      }
    mean /= Math.max(n, 1);
    return Float64Array.from(r, (v) => (v > 0 ? Math.log(v) - mean : 0));
  });
  for (let c = 0; c < channels; c++) {
    if (!live(c)) continue;
    const targets = deviations.map((d, i) => (i < g.producers.length ? d[c]! : -d[c]!));
    s[c] = Math.exp((Math.max(...targets) + Math.min(...targets)) / 2);
  }
  return s;
}

/**
 * Equalize every group of layers (a Conv -> ReLU/ReLU6/none -> Conv pair whose first output feeds
 * the second alone, or a residual stream). Weights are updated in float64 and rounded to float32
 * once.
 */
export function equalizeLayers(
  graph: Graph,
  mode: Exclude<EqualizeMode, 'off'> = 'all',
  /** The most a channel is scaled up or down (default MAX_SCALE; `npm run bench -- equalize-limit` compares them). */
  maxScale = MAX_SCALE,
): EqualizeReport {
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
  const depthwise = (l: Layer) => l.group > 1 && l.group === l.dims[0];
  const groups = findGroups(graph, layer).filter(
    (g) => mode === 'all' || [...g.producers, ...g.consumers].some(depthwise),
  );
  if (groups.length === 0) return { groups: 0 };
  let deadChannels = 0;
  for (const g of groups)
    if (g.producers.length === 1 && g.consumers.length === 1)
      deadChannels += removeDeadChannels(g.producers[0]!, g.consumers[0]!, inputBound(g.producers[0]!.node, producers));
  // Per-channel bounds of each producer's activation, scaled with its channels.
  const bounds = new Map<Node, Float64Array>();
  for (const g of groups) for (const a of g.producers) bounds.set(a.node, channelMax(a.node, a.dims[0]!));
  const totals: Float64Array[] = [];
  for (let sweep = 0; sweep < SWEEPS; sweep++) {
    let moved = 0;
    for (const [gi, g] of groups.entries()) {
      const s = groupScales(g);
      // Each channel's scale, over all sweeps, stays within [1/maxScale, maxScale].
      const total = (totals[gi] ??= new Float64Array(s.length).fill(1));
      for (let c = 0; c < s.length; c++) {
        const t = Math.min(maxScale, Math.max(1 / maxScale, total[c]! * s[c]!));
        s[c] = t / total[c]!;
        total[c] = t;
      }
      for (const v of s) moved = Math.max(moved, Math.abs(Math.log(v)));
      for (const a of g.producers) {
        const inner = a.w.length / s.length;
        for (let c = 0; c < s.length; c++) {
          for (let k = 0; k < inner; k++) a.w[c * inner + k]! /= s[c]!;
          a.bias[c]! /= s[c]!;
        }
        const bound = bounds.get(a.node)!;
        for (let c = 0; c < s.length; c++) bound[c]! /= s[c]!;
      }
      for (const b of g.consumers) scaleInputChannels(b, s);
    }
    if (moved < 1e-3) break;
  }
  for (const l of layers.values()) {
    const wName = uniqueName(graph, `${l.node.inputs[1]!}_equalized`);
    const bName = uniqueName(graph, `${l.node.name}_bias_equalized`);
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
  return { groups: groups.length, deadChannels };
}
