/**
 * What exporters write that is not a layer: shape arithmetic (`x.view(x.size(0), -1)` is
 * Shape -> Gather -> Unsqueeze -> Concat -> Reshape; `F.pad` computes its pads with Shape,
 * ConstantOfShape, Slice and Cast), Squeeze/Unsqueeze, ReduceMean/ReduceMax over the spatial
 * axes, Split, explicit zero Pad, Relu + Clip (`F.relu6`), input normalisation by constants,
 * MaxPool with ceil_mode, and the forms these take from opset 7 to 21. This pass runs
 * before the operator check and rewrites them into the operators FxPQ quantizes, keeping the
 * float function unchanged: shape subgraphs are evaluated to constants (the dynamic batch
 * becomes Reshape's "copy this dimension", 0), the rest become Reshape, GlobalAveragePool,
 * Conv/AveragePool padding, a per-channel affine BatchNormalization (folded later) and explicit
 * end padding. What cannot be rewritten exactly is left for the operator check to name.
 */
import { FxpqError } from '../errors.js';
import {
  attrFloat,
  attrInt,
  attrInts,
  DataType,
  uniqueName,
  type Graph,
  type Node,
  type Shape,
  type Tensor,
} from '../ir/graph.js';
import { operatorModule } from '../ops/registry.js';
import { shapeContext } from '../ir/shape-inference.js';
import { resolveWindow } from '../ops/spatial.js';

/** A small constant: row-major numbers; `batch[i]` marks elements equal to the dynamic batch size. */
interface Value {
  dims: number[];
  data: number[];
  float: boolean;
  batch?: boolean[];
}

class NotFoldable extends Error {}

const size = (dims: number[]): number => dims.reduce((a, b) => a * b, 1);
const MAX_FOLD_ELEMENTS = 1 << 16;

function valueOf(t: Tensor): Value | undefined {
  if (t.data.length > MAX_FOLD_ELEMENTS) return undefined;
  const float = t.dataType === DataType.FLOAT || t.dataType === DataType.DOUBLE;
  return { dims: [...t.dims], data: Array.from(t.data as ArrayLike<number | bigint>, Number), float };
}

function tensorOf(name: string, v: Value): Tensor {
  return v.float
    ? { name, dataType: DataType.FLOAT, dims: v.dims, data: Float32Array.from(v.data) }
    : {
        name,
        dataType: DataType.INT64,
        dims: v.dims,
        data: BigInt64Array.from(v.data.map((x) => BigInt(Math.trunc(x)))),
      };
}

function strides(dims: number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1]! * dims[i + 1]!;
  return s;
}

/** Gather `v` at flat source indices into a new value of `dims` (batch marks move along). */
function pickFrom(v: Value, dims: number[], sources: number[]): Value {
  const out: Value = { dims, data: sources.map((s) => v.data[s]!), float: v.float };
  if (v.batch) out.batch = sources.map((s) => v.batch![s]!);
  return out;
}

/** Unravel every output index and map it to a source index. */
function mapIndices(dims: number[], source: (idx: number[]) => number): number[] {
  const out: number[] = [];
  const idx = new Array<number>(dims.length).fill(0);
  for (let o = 0; o < size(dims); o++) {
    out.push(source(idx));
    for (let i = dims.length - 1; i >= 0; i--) {
      if (++idx[i]! < dims[i]!) break;
      idx[i] = 0;
    }
  }
  return out;
}

const axisOf = (a: number, rank: number): number => (a < 0 ? a + rank : a);
const ints = (v: Value | undefined): number[] | undefined => v?.data.map(Math.trunc);

function broadcastBinary(a: Value, b: Value, fn: (x: number, y: number) => number, float: boolean): Value {
  if (a.batch?.some(Boolean) || b.batch?.some(Boolean)) throw new NotFoldable();
  const rank = Math.max(a.dims.length, b.dims.length);
  const pad = (d: number[]) => [...new Array<number>(rank - d.length).fill(1), ...d];
  const [da, db] = [pad(a.dims), pad(b.dims)];
  const dims = da.map((x, i) => Math.max(x, db[i]!));
  const [sa, sb] = [strides(da), strides(db)];
  const data = mapIndices(dims, () => 0).map((_, o) => {
    let rem = o;
    let ia = 0;
    let ib = 0;
    const st = strides(dims);
    for (let i = 0; i < rank; i++) {
      const k = Math.floor(rem / st[i]!);
      rem -= k * st[i]!;
      ia += (da[i] === 1 ? 0 : k) * sa[i]!;
      ib += (db[i] === 1 ? 0 : k) * sb[i]!;
    }
    return fn(a.data[ia]!, b.data[ib]!);
  });
  return { dims, data, float };
}

/** Constant evaluation of the operators that shape arithmetic uses. */
const FOLD: Record<string, (node: Node, inputs: (Value | undefined)[]) => Value> = {
  Identity: (_n, [x]) => x!,
  Cast(node, [x]) {
    const to = attrInt(node, 'to', DataType.FLOAT);
    const float = to === DataType.FLOAT || to === DataType.DOUBLE || to === 10;
    return { ...x!, float, data: float ? x!.data : x!.data.map(Math.trunc) };
  },
  Shape(node, [x]) {
    const rank = x!.dims.length;
    const start = axisOf(attrInt(node, 'start', 0), rank);
    const end = axisOf(attrInt(node, 'end', rank), rank);
    const dims = x!.dims.slice(start, end);
    return { dims: [dims.length], data: dims, float: false };
  },
  ConstantOfShape(node, [shape]) {
    const a = node.attrs['value'];
    const fill = a?.kind === 'tensor' ? valueOf(a.value) : undefined;
    const dims = ints(shape)!;
    if (size(dims) > MAX_FOLD_ELEMENTS) throw new NotFoldable();
    return { dims, data: new Array<number>(size(dims)).fill(fill?.data[0] ?? 0), float: fill?.float ?? true };
  },
  Gather(node, [x, indices]) {
    const axis = axisOf(attrInt(node, 'axis', 0), x!.dims.length);
    const idx = ints(indices)!.map((i) => (i < 0 ? i + x!.dims[axis]! : i));
    const dims = [...x!.dims.slice(0, axis), ...indices!.dims, ...x!.dims.slice(axis + 1)];
    const sx = strides(x!.dims);
    const ir = indices!.dims.length;
    return pickFrom(
      x!,
      dims,
      mapIndices(dims, (o) => {
        const flatIndex = o.slice(axis, axis + ir).reduce((s, k, j) => s * indices!.dims[j]! + k, 0);
        const src = [...o.slice(0, axis), idx[flatIndex]!, ...o.slice(axis + ir)];
        return src.reduce((s, k, j) => s + k * sx[j]!, 0);
      }),
    );
  },
  Unsqueeze(node, [x, axesInput]) {
    const axes = ints(axesInput) ?? attrInts(node, 'axes', []);
    const rank = x!.dims.length + axes.length;
    const dims = [...x!.dims];
    for (const a of axes.map((a) => axisOf(a, rank)).sort((p, q) => p - q)) dims.splice(a, 0, 1);
    return { ...x!, dims };
  },
  Squeeze(node, [x, axesInput]) {
    const axes = (ints(axesInput) ?? attrInts(node, 'axes', [])).map((a) => axisOf(a, x!.dims.length));
    return { ...x!, dims: x!.dims.filter((d, i) => (axes.length ? !axes.includes(i) : d !== 1)) };
  },
  Concat(node, inputs) {
    const parts = inputs.filter((v): v is Value => v !== undefined && size(v.dims) > 0);
    const axis = axisOf(attrInt(node, 'axis', 0), parts[0]!.dims.length);
    if (axis !== 0 || parts.some((p) => p.dims.length !== 1)) throw new NotFoldable();
    const out: Value = {
      dims: [parts.reduce((s, p) => s + p.dims[0]!, 0)],
      data: [],
      float: parts[0]!.float,
      batch: [],
    };
    for (const p of parts) {
      out.data.push(...p.data);
      out.batch!.push(...(p.batch ?? p.data.map(() => false)));
    }
    return out;
  },
  Reshape(node, [x, shape]) {
    const requested = ints(shape)!;
    const dims = requested.map((d, i) => (d === 0 && attrInt(node, 'allowzero', 0) === 0 ? x!.dims[i]! : d));
    const known = dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    return { ...x!, dims: dims.map((d) => (d === -1 ? size(x!.dims) / known : d)) };
  },
  Transpose(node, [x]) {
    const perm = attrInts(
      node,
      'perm',
      x!.dims.map((_, i) => x!.dims.length - 1 - i),
    );
    const dims = perm.map((p) => x!.dims[p]!);
    const sx = strides(x!.dims);
    return pickFrom(
      x!,
      dims,
      mapIndices(dims, (o) => o.reduce((s, k, j) => s + k * sx[perm[j]!]!, 0)),
    );
  },
  Slice(node, [x, startsIn, endsIn, axesIn, stepsIn]) {
    const rank = x!.dims.length;
    const starts = ints(startsIn) ?? attrInts(node, 'starts', []);
    const ends = ints(endsIn) ?? attrInts(node, 'ends', []);
    const axes = (
      ints(axesIn) ??
      attrInts(
        node,
        'axes',
        starts.map((_, i) => i),
      )
    ).map((a) => axisOf(a, rank));
    const steps = ints(stepsIn) ?? starts.map(() => 1);
    const first = x!.dims.map(() => 0);
    const step = x!.dims.map(() => 1);
    const dims = [...x!.dims];
    axes.forEach((a, i) => {
      const n = x!.dims[a]!;
      const s = steps[i]!;
      const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
      let b = starts[i]! < 0 ? starts[i]! + n : starts[i]!;
      let e = ends[i]! < 0 ? ends[i]! + n : ends[i]!;
      if (s > 0) [b, e] = [clamp(b, 0, n), clamp(e, 0, n)];
      else [b, e] = [clamp(b, -1, n - 1), clamp(e, -1, n - 1)];
      first[a] = b;
      step[a] = s;
      dims[a] = Math.max(0, Math.ceil((e - b) / s));
    });
    const sx = strides(x!.dims);
    return pickFrom(
      x!,
      dims,
      mapIndices(dims, (o) => o.reduce((acc, k, j) => acc + (first[j]! + k * step[j]!) * sx[j]!, 0)),
    );
  },
  Add: (_n, [a, b]) => broadcastBinary(a!, b!, (x, y) => x + y, a!.float),
  Sub: (_n, [a, b]) => broadcastBinary(a!, b!, (x, y) => x - y, a!.float),
  Mul: (_n, [a, b]) => broadcastBinary(a!, b!, (x, y) => x * y, a!.float),
  Div: (_n, [a, b]) => broadcastBinary(a!, b!, (x, y) => (a!.float ? x / y : Math.trunc(x / y)), a!.float),
};

/** The output shapes of `n` as far as they can be known during the rewrites, or undefined. */
function inferNode(graph: Graph, n: Node, shapes: Map<string, Shape>, ints: ConstantInts): Shape[] | undefined {
  const x = shapes.get(n.inputs[0] ?? '');
  if (['BatchNormalization', 'Identity', 'Dropout', 'LeakyRelu', 'PRelu'].includes(n.op)) return x ? [x] : undefined;
  if (n.op === 'Pad') {
    const pads = ints(n.inputs[1]) ?? attrInts(n, 'pads', []);
    return x && pads.length === 2 * x.length ? [x.map((d, i) => d + pads[i]! + pads[i + x.length]!)] : undefined;
  }
  const module = operatorModule(n.op);
  if (!module) return undefined;
  const ctx = shapeContext(graph, n, shapes);
  // Folded values are not initializers yet: the operator's shape rule must see them as constants.
  const constant = ctx.constant;
  ctx.constant = (i) => {
    const name = n.inputs[i];
    // A Reshape target may hold the batch: Reshape's 0 copies it (what materialize writes).
    const v = name ? ints(name, n.op === 'Reshape' && i === 1) : undefined;
    return constant(i) ?? (v && name ? tensorOf(name, { dims: [v.length], data: v, float: false }) : undefined);
  };
  try {
    return module.inferShapes(ctx);
  } catch {
    return undefined;
  }
}

type ConstantInts = (name?: string, batchAsZero?: boolean) => number[] | undefined;

function addInitializer(graph: Graph, base: string, t: Omit<Tensor, 'name'>): string {
  const name = uniqueName(graph, base);
  graph.initializers.set(name, { ...t, name });
  return name;
}

function consumers(graph: Graph, tensor: string): Node[] {
  return graph.nodes.filter((n) => n.inputs.includes(tensor));
}

/** Squeeze / Unsqueeze of an activation: a Reshape to the known shape, the batch copied (0). */
function layoutToReshape(graph: Graph, n: Node, shapes: Map<string, Shape>, constantInts: ConstantInts): void {
  const x = shapes.get(n.inputs[0]!);
  if (!x) return;
  const axesIn = constantInts(n.inputs[1]);
  let dims: number[];
  if (n.op === 'Squeeze') {
    const axes = (axesIn ?? attrInts(n, 'axes', [])).map((a) => axisOf(a, x.length));
    if (axes.includes(0) || (axes.length === 0 && x[0] === 1)) return;
    dims = x.filter((d, i) => (axes.length ? !axes.includes(i) : d !== 1));
  } else {
    const axes = axesIn ?? attrInts(n, 'axes', []);
    const rank = x.length + axes.length;
    const resolved = axes.map((a) => axisOf(a, rank)).sort((p, q) => p - q);
    if (resolved.includes(0)) return;
    dims = [...x];
    for (const a of resolved) dims.splice(a, 0, 1);
  }
  const target = addInitializer(graph, `${n.name}_shape`, {
    dataType: DataType.INT64,
    dims: [dims.length],
    data: BigInt64Array.from([0, ...dims.slice(1)].map(BigInt)),
  });
  n.op = 'Reshape';
  n.inputs = [n.inputs[0]!, target];
  n.attrs = {};
}

/**
 * ReduceMean over every spatial axis of an NCHW tensor is GlobalAveragePool, ReduceMax over them
 * a MaxPool whose window is the whole image (+ Reshape when keepdims=0). The axes are an
 * attribute before opset 18 and an input from 18 on; with no axes and noop_with_empty_axes=1
 * (opset 18+) the reduction is the identity.
 */
function reduceToPool(graph: Graph, n: Node, shapes: Map<string, Shape>, constantInts: ConstantInts): Node | undefined {
  const x = shapes.get(n.inputs[0]!);
  if (!x || x.length < 3) return undefined;
  if (n.inputs[1] && !constantInts(n.inputs[1])) return undefined; // axes computed at run time
  const given = constantInts(n.inputs[1]) ?? attrInts(n, 'axes', []);
  if (given.length === 0 && attrInt(n, 'noop_with_empty_axes', 0) === 1) {
    n.op = 'Identity';
    n.inputs = [n.inputs[0]!];
    n.attrs = {};
    return undefined;
  }
  const axes = given.map((a) => axisOf(a, x.length)).sort((p, q) => p - q);
  const spatial = x.slice(2).map((_, i) => i + 2);
  if (axes.join() !== spatial.join()) return undefined;
  const keep = attrInt(n, 'keepdims', 1) === 1;
  if (n.op === 'ReduceMax') {
    if (x.slice(2).some((d) => !(d > 0))) return undefined;
    n.op = 'MaxPool';
    n.attrs = { kernel_shape: { kind: 'ints', value: x.slice(2) } };
  } else {
    n.op = 'GlobalAveragePool';
    n.attrs = {};
  }
  if (keep) {
    n.inputs = [n.inputs[0]!];
    return undefined;
  }
  const pooled = `${n.outputs[0]}_pooled`;
  const target = addInitializer(graph, `${n.name}_shape`, {
    dataType: DataType.INT64,
    dims: [2],
    data: BigInt64Array.from([0n, BigInt(x[1]!)]),
  });
  const reshape: Node = {
    name: `${n.name}_squeeze`,
    op: 'Reshape',
    inputs: [pooled, target],
    outputs: [n.outputs[0]!],
    attrs: {},
  };
  n.inputs = [n.inputs[0]!];
  n.outputs = [pooled];
  graph.nodes.splice(graph.nodes.indexOf(n) + 1, 0, reshape);
  return reshape;
}

/**
 * Split (sizes as the `split` attribute before opset 13, an input from 13 on, or `num_outputs`
 * equal parts from 18 on, the last one smaller) of an activation along a non-batch axis: one
 * Slice per output. Returns the Slices after the first, which reuses `n`.
 */
function splitToSlices(graph: Graph, n: Node, shapes: Map<string, Shape>, constantInts: ConstantInts): Node[] {
  const x = shapes.get(n.inputs[0]!);
  if (!x || n.outputs.some((o) => !o)) return [];
  const axis = axisOf(attrInt(n, 'axis', 0), x.length);
  const total = x[axis]!;
  if (axis <= 0 || axis >= x.length || !(total > 0)) return [];
  if (n.inputs[1] && !constantInts(n.inputs[1])) return [];
  let sizes = constantInts(n.inputs[1]) ?? (n.attrs['split'] ? attrInts(n, 'split', []) : undefined);
  if (!sizes) {
    const parts = attrInt(n, 'num_outputs', n.outputs.length);
    const chunk = Math.ceil(total / parts);
    sizes = Array.from({ length: parts }, (_, i) => Math.max(0, Math.min(chunk, total - i * chunk)));
  }
  if (sizes.length !== n.outputs.length || sizes.reduce((a, b) => a + b, 0) !== total || sizes.some((s) => s < 0))
    return [];
  const int64 = (base: string, v: number[]) =>
    addInitializer(graph, base, {
      dataType: DataType.INT64,
      dims: [v.length],
      data: BigInt64Array.from(v.map(BigInt)),
    });
  const axes = int64(`${n.name}_axes`, [axis]);
  const outputs = [...n.outputs];
  const slices: Node[] = [];
  let start = 0;
  outputs.forEach((out, i) => {
    const inputs = [
      n.inputs[0]!,
      int64(`${n.name}_starts_${i}`, [start]),
      int64(`${n.name}_ends_${i}`, [start + sizes[i]!]),
      axes,
    ];
    start += sizes[i]!;
    if (i === 0) Object.assign(n, { op: 'Slice', inputs, outputs: [out], attrs: {} });
    else slices.push({ name: `${n.name}_${i}`, op: 'Slice', inputs, outputs: [out], attrs: {} });
  });
  graph.nodes.splice(graph.nodes.indexOf(n) + 1, 0, ...slices);
  return slices;
}

/** Pad with the `axes` input (opset 18+): the same pads written over every axis. */
function padAxesToFull(graph: Graph, n: Node, shapes: Map<string, Shape>, constantInts: ConstantInts): void {
  const x = shapes.get(n.inputs[0]!);
  const axes = constantInts(n.inputs[3]);
  const pads = constantInts(n.inputs[1]);
  if (!x || !axes || !pads || pads.length !== 2 * axes.length) return;
  const full = new Array<number>(2 * x.length).fill(0);
  const seen = new Set<number>();
  for (const [i, a] of axes.entries()) {
    const k = axisOf(a, x.length);
    if (k < 0 || k >= x.length || seen.has(k)) return;
    seen.add(k);
    full[k] = pads[i]!;
    full[k + x.length] = pads[i + axes.length]!;
  }
  const name = addInitializer(graph, `${n.name}_pads`, {
    dataType: DataType.INT64,
    dims: [full.length],
    data: BigInt64Array.from(full.map(BigInt)),
  });
  n.inputs = n.inputs[2] ? [n.inputs[0]!, name, n.inputs[2]] : [n.inputs[0]!, name];
}

/** A zero Pad of the spatial axes moves into the Conv or counting AveragePool that reads it. */
function foldPad(graph: Graph, n: Node, constantInts: ConstantInts): void {
  const mode = n.attrs['mode'];
  if (mode && !(mode.kind === 'string' && mode.value === 'constant')) return;
  const pads = constantInts(n.inputs[1]) ?? attrInts(n, 'pads', []);
  const fill = constantInts(n.inputs[2]) ?? [n.attrs['value']?.kind === 'float' ? n.attrs['value'].value : 0];
  if (pads.length === 0 || pads.length % 2 || fill.some((v) => v !== 0) || pads.some((p) => p < 0)) return;
  const rank = pads.length / 2;
  const [x, y] = [n.inputs[0]!, n.outputs[0]!];
  if (pads.every((p) => p === 0)) {
    graph.nodes = graph.nodes.filter((m) => m !== n);
    for (const m of graph.nodes) m.inputs = m.inputs.map((i) => (i === y ? x : i));
    for (const o of graph.outputs) if (o.name === y) return void graph.nodes.push(n);
    return;
  }
  if (pads[0] !== 0 || pads[1] !== 0 || pads[rank] !== 0 || pads[rank + 1] !== 0) return;
  const users = consumers(graph, y);
  if (users.length !== 1 || graph.outputs.some((o) => o.name === y)) return;
  const user = users[0]!;
  const counting = user.op === 'AveragePool' && attrInt(user, 'count_include_pad', 0) === 1;
  if (!(user.op === 'Conv' || counting) || user.inputs[0] !== y) return;
  const auto = user.attrs['auto_pad'];
  if (auto && !(auto.kind === 'string' && auto.value === 'NOTSET')) return;
  const spatial = rank - 2;
  const old = attrInts(user, 'pads', new Array<number>(2 * spatial).fill(0));
  const added = [...pads.slice(2, rank), ...pads.slice(rank + 2)];
  user.attrs['pads'] = { kind: 'ints', value: old.map((p, i) => p + added[i]!) };
  if (user.op === 'AveragePool') user.attrs['count_include_pad'] = { kind: 'int', value: 1 };
  user.inputs[0] = x;
  graph.nodes = graph.nodes.filter((m) => m !== n);
}

/**
 * Relu then Clip(lo <= 0, hi >= 0), F.relu6 as torch writes it: one Clip(0, hi), which fuses
 * into the layer before it (clip(relu(x), lo, hi) = clip(x, 0, hi) for such bounds).
 */
function clipAfterRelu(graph: Graph, n: Node, values: Map<string, Value>): void {
  const relu = graph.nodes.find((m) => m.outputs[0] === n.inputs[0]);
  if (!relu || relu.op !== 'Relu' || consumers(graph, relu.outputs[0]!).length !== 1) return;
  if (graph.outputs.some((o) => o.name === relu.outputs[0])) return;
  const bound = (i: number, fallback: number): number | undefined => {
    if (!n.inputs[i]) return fallback;
    const v = values.get(n.inputs[i]);
    return v && v.float && v.data.length === 1 ? v.data[0] : undefined;
  };
  const [lo, hi] = [bound(1, -Infinity), bound(2, Infinity)];
  if (lo === undefined || hi === undefined || lo > 0 || hi < 0) return;
  const zero = addInitializer(graph, `${n.name}_min`, { dataType: DataType.FLOAT, dims: [], data: Float32Array.of(0) });
  n.inputs = n.inputs[2] ? [relu.inputs[0]!, zero, n.inputs[2]] : [relu.inputs[0]!, zero];
  graph.nodes = graph.nodes.filter((m) => m !== relu);
}

/** (x - c), (x + c), x * c, x / c with a per-channel or scalar constant: an affine BatchNormalization. */
function affineToBatchNorm(graph: Graph, n: Node, shapes: Map<string, Shape>, values: Map<string, Value>): void {
  const [a, b] = n.inputs as [string, string];
  const constFirst = values.has(a) && !values.has(b);
  const [x, c] = constFirst ? [b, a] : [a, b];
  const t = values.get(c);
  const xs = shapes.get(x);
  if (!t || values.has(x) || !xs || xs.length < 2 || (n.op !== 'Mul' && n.op !== 'Add' && constFirst && n.op !== 'Sub'))
    return;
  if (!t.float || t.batch?.some(Boolean)) return;
  const channels = xs[1]!;
  const constants = t.data;
  // Per-channel: every axis but the channel axis of x is 1 (right-aligned broadcasting).
  const dims = [...new Array<number>(Math.max(0, xs.length - t.dims.length)).fill(1), ...t.dims];
  const perChannel = dims.length === xs.length && dims.every((d, i) => d === 1 || (i === 1 && d === channels));
  if (!(constants.length === 1 || perChannel)) return;
  if (n.op === 'Add') {
    const producer = graph.nodes.find((m) => m.outputs.includes(x));
    if (producer && ['Conv', 'Gemm', 'MatMul'].includes(producer.op)) return; // the bias fold's case
  }
  const at = (k: number): number => (constants.length === 1 ? constants[0]! : constants[k]!);
  const scale = new Float32Array(channels).fill(1);
  const shift = new Float32Array(channels);
  for (let k = 0; k < channels; k++) {
    if (n.op === 'Mul') scale[k] = at(k);
    else if (n.op === 'Div') scale[k] = 1 / at(k);
    else if (n.op === 'Add') shift[k] = at(k);
    else if (constFirst) [scale[k], shift[k]] = [-1, at(k)];
    else shift[k] = -at(k);
  }
  const param = (suffix: string, data: Float32Array) =>
    addInitializer(graph, `${n.name}_${suffix}`, { dataType: DataType.FLOAT, dims: [channels], data });
  n.op = 'BatchNormalization';
  n.inputs = [
    x,
    param('scale', scale),
    param('shift', shift),
    param('mean', new Float32Array(channels)),
    param('var', new Float32Array(channels).fill(1)),
  ];
  n.attrs = { epsilon: { kind: 'float', value: 0 } };
}

/** MaxPool with ceil_mode=1: the same windows with explicit end padding (padding never wins a max). */
function ceilModeToPads(n: Node, shapes: Map<string, Shape>): void {
  const x = shapes.get(n.inputs[0]!);
  if (!x) return;
  const ceiled = resolveWindow(n, x, attrInts(n, 'kernel_shape', []));
  const rank = ceiled.kernel.length;
  const pads = [...ceiled.pads];
  for (let i = 0; i < rank; i++) {
    const size = x[i + 2]!;
    const effective = (ceiled.kernel[i]! - 1) * ceiled.dilations[i]! + 1;
    let out = Math.ceil((size + pads[i]! + pads[i + rank]! - effective) / ceiled.strides[i]!) + 1;
    // A window must start inside the input or the begin padding (ONNX and PyTorch agree).
    if ((out - 1) * ceiled.strides[i]! >= size + pads[i]!) out--;
    pads[i + rank] = Math.max(pads[i + rank]!, (out - 1) * ceiled.strides[i]! + effective - size - pads[i]!);
  }
  n.attrs['pads'] = { kind: 'ints', value: pads };
  delete n.attrs['ceil_mode'];
  delete n.attrs['auto_pad'];
}

export function rewriteExporterIdioms(graph: Graph, source: string): void {
  olderOpsetForms(graph, source);
  const shapes = new Map<string, Shape>();
  for (const v of graph.inputs)
    shapes.set(
      v.name,
      v.shape.map((d) => (d < 0 ? 1 : d)),
    );
  for (const [name, t] of graph.initializers) shapes.set(name, t.dims);
  const dynamicBatch = graph.inputs.some((v) => v.shape[0]! < 0);
  const values = new Map<string, Value>();
  for (const [name, t] of graph.initializers) {
    const v = valueOf(t);
    if (v) values.set(name, v);
  }
  const constantInts: ConstantInts = (name, batchAsZero = false) => {
    const v = name ? values.get(name) : undefined;
    if (!v) return undefined;
    if (!v.batch?.some(Boolean)) return v.data;
    return batchAsZero && v.batch.every((b, k) => !b || k === 0) ? v.data.map((d, k) => (k === 0 ? 0 : d)) : undefined;
  };
  /** Constants a rewrite added (pads, slice bounds) are read like the others. */
  const learnConstants = (m: Node): void => {
    for (const name of m.inputs) {
      const t = graph.initializers.get(name);
      if (!t || values.has(name)) continue;
      shapes.set(name, t.dims);
      const v = valueOf(t);
      if (v) values.set(name, v);
    }
  };
  const folded = new Set<Node>();
  // The graph is in topological order (canonicalize sorts it first).
  for (const n of [...graph.nodes]) {
    if (evaluate(n, shapes, values, dynamicBatch)) {
      folded.add(n);
      continue;
    }
    // Rewrites one node at a time in graph order, so that each sees its inputs' shapes.
    let extra: Node[] = [];
    if (n.op === 'Squeeze' || n.op === 'Unsqueeze') layoutToReshape(graph, n, shapes, constantInts);
    else if (n.op === 'ReduceMean' || n.op === 'ReduceMax') {
      const reshape = reduceToPool(graph, n, shapes, constantInts);
      if (reshape) extra = [reshape];
    } else if (n.op === 'Split') extra = splitToSlices(graph, n, shapes, constantInts);
    else if (n.op === 'Pad') {
      if (n.inputs[3]) padAxesToFull(graph, n, shapes, constantInts);
      learnConstants(n);
      foldPad(graph, n, constantInts);
    } else if (n.op === 'Clip') {
      clipAfterRelu(graph, n, values);
    } else if (['Sub', 'Add', 'Mul', 'Div'].includes(n.op)) affineToBatchNorm(graph, n, shapes, values);
    else if (n.op === 'MaxPool' && attrInt(n, 'ceil_mode', 0) === 1) ceilModeToPads(n, shapes);
    for (const m of [n, ...extra]) {
      learnConstants(m);
      const out = inferNode(graph, m, shapes, constantInts);
      out?.forEach((s, i) => m.outputs[i] && shapes.set(m.outputs[i]!, s));
    }
  }
  materialize(graph, folded, values, source);
}

/**
 * What changed between the opsets FxPQ reads (7 to 21) in the operators a canonical graph may
 * keep, written once in the opset-11 to 13 form so that the canonical graph, the simulation (opset 13)
 * and the QDQ export (opset 21) read one form: Pad's `pads` and `value`, Slice's `starts`,
 * `ends` and `axes`, and Clip's `min` and `max` attributes (before opsets 11, 10 and 11) become
 * constant inputs, and a graph below opset 11 is then written at 11 (the other operators FxPQ
 * keeps mean the same there: Softmax and Flatten still coerce to 2-D at opset 11). A
 * BatchNormalization's `spatial` attribute (opsets 7 and 8) must be 1, per channel.
 */
function olderOpsetForms(graph: Graph, source: string): void {
  const constant = (base: string, t: Omit<Tensor, 'name'>): string => addInitializer(graph, base, t);
  const int64 = (base: string, v: number[]) =>
    constant(base, { dataType: DataType.INT64, dims: [v.length], data: BigInt64Array.from(v.map(BigInt)) });
  const float = (base: string, v: number) =>
    constant(base, { dataType: DataType.FLOAT, dims: [], data: Float32Array.of(v) });
  for (const n of graph.nodes) {
    if (n.op === 'BatchNormalization' && n.attrs['spatial']) {
      if (attrInt(n, 'spatial', 1) !== 1)
        throw new FxpqError(
          `${source}: node ${n.name} (BatchNormalization) has spatial=0 (statistics per activation, not per channel), which FxPQ does not support.`,
          'unsupported-model',
        );
      delete n.attrs['spatial'];
    }
    // Opset 14's Reshape `allowzero` and opset 19's AveragePool `dilations` at their defaults
    // mean what the operators meant before them (the simulation graph is written at opset 13).
    if (n.op === 'Reshape' && attrInt(n, 'allowzero', 0) === 0) delete n.attrs['allowzero'];
    if (n.op === 'AveragePool' && n.attrs['dilations']) {
      if (attrInts(n, 'dilations', []).some((d) => d !== 1))
        throw new FxpqError(
          `${source}: node ${n.name} (AveragePool) has dilations (opset 19), which FxPQ does not support.`,
          'unsupported-model',
        );
      delete n.attrs['dilations'];
    }
    if (graph.opset >= 11) continue;
    if (n.op === 'Pad' && n.attrs['pads']) {
      const value = attrFloat(n, 'value', 0);
      const inputs = [n.inputs[0]!, int64(`${n.name}_pads`, attrInts(n, 'pads', []))];
      if (value !== 0) inputs.push(float(`${n.name}_value`, value));
      n.inputs = inputs;
      delete n.attrs['pads'];
      delete n.attrs['value'];
    } else if (n.op === 'Slice' && n.attrs['starts']) {
      const starts = attrInts(n, 'starts', []);
      const axes = attrInts(
        n,
        'axes',
        starts.map((_, i) => i),
      );
      n.inputs = [
        n.inputs[0]!,
        int64(`${n.name}_starts`, starts),
        int64(`${n.name}_ends`, attrInts(n, 'ends', [])),
        int64(`${n.name}_axes`, axes),
      ];
      n.attrs = {};
    } else if (n.op === 'Clip' && (n.attrs['min'] || n.attrs['max'])) {
      const bound = (name: 'min' | 'max') => (n.attrs[name] ? float(`${n.name}_${name}`, attrFloat(n, name, 0)) : '');
      const inputs = [n.inputs[0]!, bound('min'), bound('max')];
      while (inputs[inputs.length - 1] === '') inputs.pop();
      n.inputs = inputs;
      delete n.attrs['min'];
      delete n.attrs['max'];
    }
  }
  if (graph.opset < 11) {
    graph.opset = 11;
    graph.irVersion = Math.max(graph.irVersion, 6);
  }
}

/** Fold `n` when its inputs are constants (or, for Shape, of known shape); true when folded. */
function evaluate(n: Node, shapes: Map<string, Shape>, values: Map<string, Value>, dynamicBatch: boolean): boolean {
  const fold = FOLD[n.op];
  if (!fold || !n.outputs[0]) return false;
  try {
    if (n.op === 'Shape') {
      const constant = values.get(n.inputs[0]!);
      const s = constant ? constant.dims : shapes.get(n.inputs[0]!);
      if (!s) return false;
      const v = fold(n, [{ dims: s, data: [], float: true }]);
      // Dimension 0 of an activation is the batch: a symbol, not the 1 used to infer shapes.
      if (dynamicBatch && !constant) v.batch = v.data.map((_, i) => i === 0 && attrInt(n, 'start', 0) === 0);
      values.set(n.outputs[0], v);
      return true;
    }
    const inputs = n.inputs.map((i) => (i ? values.get(i) : undefined));
    if (n.inputs.some((name, i) => name && !inputs[i])) return false;
    values.set(n.outputs[0], fold(n, inputs));
    return true;
  } catch {
    // NotFoldable, or inputs too odd to evaluate: the node stays, and the operator check names it.
    return false;
  }
}

/**
 * Folded values read by the remaining nodes become initializers; a batch-dependent shape is
 * accepted only as a Reshape target whose first entry is the batch (Reshape's 0 copies it).
 */
function materialize(graph: Graph, folded: Set<Node>, values: Map<string, Value>, source: string): void {
  if (folded.size === 0) return;
  const kept = graph.nodes.filter((n) => !folded.has(n));
  for (const n of kept) {
    n.inputs = n.inputs.map((name, i) => {
      const v = name ? values.get(name) : undefined;
      if (!v || graph.initializers.has(name)) return name;
      const marks = v.batch?.map((b, k) => (b ? k : -1)).filter((k) => k >= 0) ?? [];
      if (marks.length === 0) {
        graph.initializers.set(name, tensorOf(name, v));
        return name;
      }
      if (n.op === 'Reshape' && i === 1 && marks.length === 1 && marks[0] === 0 && attrInt(n, 'allowzero', 0) === 0) {
        if (v.data.length === 2 && v.data[1] === -1) {
          // x.view(x.size(0), -1) is Flatten. (As a Reshape to [0, -1] between a DequantizeLinear
          // and a Gemm, onnxruntime's QDQ fusion rounds the Gemm differently from the integers.)
          n.op = 'Flatten';
          n.attrs = { axis: { kind: 'int', value: 1 } };
          return '';
        }
        const copy = `${name}_batch_copied`;
        graph.initializers.set(copy, tensorOf(copy, { ...v, data: v.data.map((d, k) => (k === 0 ? 0 : d)) }));
        return copy;
      }
      throw new FxpqError(
        `${source}: node ${n.name} (${n.op}) uses a shape computed from the batch size; export the model with a fixed batch, or flatten with torch.flatten(x, 1).`,
        'unsupported-model',
      );
    });
  }
  for (const n of kept) if (n.op === 'Flatten') n.inputs = n.inputs.filter(Boolean);
  graph.nodes = kept;
}
