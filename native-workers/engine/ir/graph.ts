/**
 * The typed graph IR every engine stage works on. It is deliberately close to ONNX (so a
 * canonical graph can always be written back and run in onnxruntime) but holds decoded
 * typed arrays, plain numbers and one optional fused activation per node.
 */

/** ONNX TensorProto.DataType codes we keep (others are refused at import). */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  DOUBLE: 11,
} as const;
export type DataType = (typeof DataType)[keyof typeof DataType];

export type TensorData =
  Float32Array | Float64Array | Uint8Array | Int8Array | Uint16Array | Int16Array | Int32Array | BigInt64Array;

export interface Tensor {
  name: string;
  dataType: DataType;
  dims: number[];
  data: TensorData;
}

/** A dimension is a number, or -1 when it is symbolic (a dynamic batch, say). */
export type Shape = number[];

export interface ValueInfo {
  name: string;
  dataType: DataType;
  /** -1 marks a symbolic dimension. */
  shape: Shape;
  /** The symbolic names of the -1 dimensions, kept for the round trip. */
  dimParams?: (string | undefined)[];
}

export type AttrValue =
  | { kind: 'int'; value: number }
  | { kind: 'ints'; value: number[] }
  | { kind: 'float'; value: number }
  | { kind: 'floats'; value: number[] }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: Tensor };

/** A Relu or a Clip(lo, hi) folded into the node that produces its input. */
export interface FusedActivation {
  op: 'Relu' | 'Clip';
  min: number;
  /** The upper bound; with `maxPerChannel`, the largest of them. */
  max: number;
  /** Upper bounds per output channel (axis 1), set by cross-layer equalization of a ReLU6. */
  maxPerChannel?: number[];
}

export interface Node {
  name: string;
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
  activation?: FusedActivation;
}

export interface Graph {
  name: string;
  /** The default-domain opset the model was written for. */
  opset: number;
  irVersion: number;
  producer: string;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  nodes: Node[];
  initializers: Map<string, Tensor>;
  /** Model metadata_props (a preprocessing spec or class list may live here). */
  metadata: Record<string, string>;
  /** The file the graph was read from, for messages about it (not written to ONNX). */
  source?: string;
}

export function attrInt(node: Node, name: string, fallback: number): number {
  const a = node.attrs[name];
  return a?.kind === 'int' ? a.value : fallback;
}

export function attrInts(node: Node, name: string, fallback: number[]): number[] {
  const a = node.attrs[name];
  return a?.kind === 'ints' ? a.value : fallback;
}

export function attrFloat(node: Node, name: string, fallback: number): number {
  const a = node.attrs[name];
  return a?.kind === 'float' ? a.value : fallback;
}

export function attrString(node: Node, name: string, fallback: string): string {
  const a = node.attrs[name];
  return a?.kind === 'string' ? a.value : fallback;
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function isFloatType(t: DataType): boolean {
  return t === DataType.FLOAT || t === DataType.DOUBLE;
}

/** Integer view of an index/shape tensor (int64 and int32 alike). */
export function tensorToNumbers(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

/**
 * Whether a name is a key every plain JavaScript object already has (`__proto__`, `constructor`,
 * `toString`, ...): such a name must never key a plain object (it would read or replace the
 * prototype's member), and onnxruntime's JavaScript API keys its feeds and fetches by name.
 */
export function isObjectKeyName(name: string): boolean {
  return name in Object.prototype;
}

/** `base`, or `base_1`, `base_2`, ... : the first name no initializer of the graph has yet. */
export function uniqueName(graph: Graph, base: string): string {
  let name = base;
  for (let i = 1; graph.initializers.has(name); i++) name = `${base}_${i}`;
  return name;
}

export function floatTensor(name: string, dims: number[], data: Float32Array): Tensor {
  return { name, dataType: DataType.FLOAT, dims, data };
}

export function int64Tensor(name: string, values: number[]): Tensor {
  return {
    name,
    dataType: DataType.INT64,
    dims: [values.length],
    data: BigInt64Array.from(values, (v) => BigInt(v)),
  };
}

/** A float32 copy of any float tensor's values. */
export function toFloat32(t: Tensor): Float32Array {
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>);
}

/** Index of which node consumes which tensor, rebuilt on demand by passes. */
export function consumersOf(graph: Graph): Map<string, Node[]> {
  const map = new Map<string, Node[]>();
  for (const n of graph.nodes) {
    for (const i of n.inputs) {
      if (!i) continue;
      const list = map.get(i);
      if (list) list.push(n);
      else map.set(i, [n]);
    }
  }
  return map;
}

/**
 * The nodes (in their order, which must be topological, as every canonical graph's is) that `outputs`
 * depend on. Tensors in `available` are given (fed to the graph): their producers are not needed for them.
 */
export function nodesNeededFor(nodes: Node[], outputs: string[], available?: ReadonlySet<string>): Node[] {
  const needed = new Set(outputs.filter((o) => !available?.has(o)));
  const keep = new Array<boolean>(nodes.length).fill(false);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!n.outputs.some((o) => needed.has(o))) continue;
    keep[i] = true;
    for (const input of n.inputs) if (input && !available?.has(input)) needed.add(input);
  }
  return nodes.filter((_, i) => keep[i]);
}

export function producersOf(graph: Graph): Map<string, Node> {
  const map = new Map<string, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) map.set(o, n);
  return map;
}

export function isGraphOutput(graph: Graph, name: string): boolean {
  return graph.outputs.some((o) => o.name === name);
}

export function cloneGraph(g: Graph): Graph {
  return {
    ...g,
    inputs: g.inputs.map((v) => ({ ...v, shape: [...v.shape] })),
    outputs: g.outputs.map((v) => ({ ...v, shape: [...v.shape] })),
    nodes: g.nodes.map((n) => ({
      ...n,
      inputs: [...n.inputs],
      outputs: [...n.outputs],
      attrs: { ...n.attrs },
      activation: n.activation ? { ...n.activation } : undefined,
    })),
    initializers: new Map(g.initializers),
    metadata: { ...g.metadata },
  };
}
