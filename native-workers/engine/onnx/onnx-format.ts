/**
 * ONNX <-> graph IR. Everything that knows the ONNX protobuf schema lives in this file
 * (the schema itself comes from `onnx-buf`, decoded by `@bufbuild/protobuf`).
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType as AttrType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  TensorProto_DataLocation,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from 'onnx-buf';
import { FxpqError } from '../errors.js';
import {
  DataType,
  isObjectKeyName,
  type AttrValue,
  type Graph,
  type Node,
  type Tensor,
  type TensorData,
  type ValueInfo,
} from '../ir/graph.js';

export const MIN_OPSET = 7;
export const MAX_OPSET = 21;

const DATA_TYPE_NAMES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  16: 'bfloat16',
};

function typeName(code: number): string {
  return DATA_TYPE_NAMES[code] ?? `${code} (not an ONNX type)`;
}

const SUPPORTED_TYPES = new Set<number>(Object.values(DataType));

/** Decode ONNX bytes into the IR. `source` names the file in every error message. */
export function readOnnx(bytes: Uint8Array, source: string, options: { minOpset?: number } = {}): Graph {
  if (bytes.length === 0) {
    throw new FxpqError(`${source} is empty (0 bytes), so it is not an ONNX model.`, 'not-onnx');
  }
  let model: ModelProto;
  try {
    // A Node Buffer's slice() is a view, not a copy: decode from a plain Uint8Array.
    model = fromBinary(ModelProtoSchema, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch {
    throw new FxpqError(
      `${source} is not a valid ONNX model: its protobuf data cannot be decoded (the file is truncated or of another kind).`,
      'not-onnx',
    );
  }
  const g = model.graph;
  if (!g || (g.node.length === 0 && g.output.length === 0) || model.irVersion === 0n) {
    throw new FxpqError(
      `${source} is not an ONNX model: it decodes, but holds no model graph (the file is truncated or of another kind).`,
      'not-onnx',
    );
  }
  const defaultOpset = model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  const opset = defaultOpset ? Number(defaultOpset.version) : 0;
  if (opset < (options.minOpset ?? MIN_OPSET) || opset > MAX_OPSET) {
    throw new FxpqError(
      `${source} uses ONNX opset ${opset}; FxPQ reads opsets ${MIN_OPSET} to ${MAX_OPSET}. Convert the model with onnx.version_converter first.`,
      'unsupported-model',
    );
  }
  const foreignDomains = new Set(g.node.filter((n) => n.domain !== '' && n.domain !== 'ai.onnx').map((n) => n.domain));
  if (foreignDomains.size > 0) {
    const names = g.node
      .filter((n) => n.domain !== '' && n.domain !== 'ai.onnx')
      .map((n) => `${n.domain}.${n.opType} (node ${n.name || '?'})`);
    throw new FxpqError(
      `${source} uses operators outside the standard ONNX domain, which FxPQ does not support: ${names.join(', ')}.`,
      'unsupported-op',
    );
  }

  const initializers = new Map<string, Tensor>();
  for (const t of g.initializer) initializers.set(t.name, decodeTensor(t, source));
  const initNames = new Set(initializers.keys());

  const nodes: Node[] = g.node.map((n, i) => decodeNode(n, i, source));
  const metadata: Record<string, string> = {};
  // A key such as __proto__ or toString would replace a member of the plain object: such keys mean nothing to FxPQ.
  for (const p of model.metadataProps) if (!isObjectKeyName(p.key)) metadata[p.key] = p.value;

  return {
    name: g.name || 'graph',
    opset,
    irVersion: Number(model.irVersion),
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
    // Older exporters list initializers among the inputs; those are weights, not inputs.
    inputs: g.input.filter((v) => !initNames.has(v.name)).map((v) => decodeValueInfo(v, source)),
    outputs: g.output.map((v) => decodeValueInfo(v, source)),
    nodes,
    initializers,
    metadata,
  };
}

function decodeValueInfo(v: ValueInfoProto, source: string): ValueInfo {
  const t = v.type?.value;
  if (v.type?.value.case !== 'tensorType' || !t) {
    throw new FxpqError(
      `${source}: graph value ${v.name} is not a tensor; FxPQ supports tensor inputs and outputs only.`,
      'unsupported-model',
    );
  }
  const tensorType = v.type.value.value;
  const dims = tensorType.shape?.dim ?? [];
  const shape: number[] = [];
  const dimParams: (string | undefined)[] = [];
  for (const d of dims) {
    if (d.value.case === 'dimValue' && d.value.value > 0n) {
      shape.push(Number(d.value.value));
      dimParams.push(undefined);
    } else {
      shape.push(-1);
      dimParams.push(d.value.case === 'dimParam' ? d.value.value : undefined);
    }
  }
  const dataType = tensorType.elemType;
  if (!SUPPORTED_TYPES.has(dataType)) {
    throw new FxpqError(
      `${source}: graph value ${v.name} has element type ${typeName(dataType)}, which FxPQ does not support.`,
      'unsupported-model',
    );
  }
  return { name: v.name, dataType: dataType as DataType, shape, dimParams };
}

function decodeNode(n: NodeProto, index: number, source: string): Node {
  const attrs: Record<string, AttrValue> = {};
  for (const a of n.attribute) {
    if (a.type === AttrType.GRAPH || a.type === AttrType.GRAPHS || a.g || a.graphs.length > 0)
      throw new FxpqError(
        `${source}: node ${n.name || n.opType} (${n.opType}) carries a subgraph (attribute ${a.name}); FxPQ quantizes feed-forward CNNs without control flow.`,
        'unsupported-model',
      );
    if (isObjectKeyName(a.name))
      throw new FxpqError(
        `${source}: node ${n.name || n.opType} (${n.opType}) has an attribute named ${a.name}, which no ONNX operator has; the model is damaged.`,
        'invalid-model',
      );
    const v = decodeAttribute(a, source);
    if (v) attrs[a.name] = v;
  }
  return {
    name: n.name || `${n.opType}_${index}`,
    op: n.opType,
    inputs: [...n.input],
    outputs: [...n.output],
    attrs,
  };
}

function decodeAttribute(a: AttributeProto, source: string): AttrValue | undefined {
  switch (a.type) {
    case AttrType.INT:
      return { kind: 'int', value: Number(a.i) };
    case AttrType.INTS:
      return { kind: 'ints', value: a.ints.map(Number) };
    case AttrType.FLOAT:
      return { kind: 'float', value: a.f };
    case AttrType.FLOATS:
      return { kind: 'floats', value: [...a.floats] };
    case AttrType.STRING:
      return { kind: 'string', value: new TextDecoder().decode(a.s) };
    case AttrType.TENSOR:
      return a.t ? { kind: 'tensor', value: decodeTensor(a.t, source) } : undefined;
    default:
      // Sparse-tensor and type-proto attributes belong to operators FxPQ refuses anyway.
      return undefined;
  }
}

/** Copy `bytes` into a fresh, aligned buffer and view it as `ctor`. */
const ELEMENT_BYTES: Partial<Record<DataType, number>> = {
  [DataType.FLOAT]: 4,
  [DataType.DOUBLE]: 8,
  [DataType.INT64]: 8,
  [DataType.INT32]: 4,
  [DataType.INT16]: 2,
  [DataType.UINT16]: 2,
  [DataType.INT8]: 1,
  [DataType.UINT8]: 1,
  [DataType.BOOL]: 1,
};

function viewRaw<T>(bytes: Uint8Array, ctor: { new (b: ArrayBuffer): T }): T {
  return new ctor(Uint8Array.prototype.slice.call(bytes).buffer as ArrayBuffer);
}

export function decodeTensor(t: TensorProto, source: string): Tensor {
  if (t.dataLocation === TensorProto_DataLocation.EXTERNAL || t.externalData.length > 0) {
    throw new FxpqError(
      `${source} stores tensor ${t.name} as external data in a separate file; FxPQ needs a self-contained model. Save it with onnx.save(model, path, save_as_external_data=False).`,
      'unsupported-model',
    );
  }
  if (!SUPPORTED_TYPES.has(t.dataType)) {
    throw new FxpqError(
      `${source}: tensor ${t.name} has element type ${typeName(t.dataType)}, which FxPQ does not support.`,
      'unsupported-model',
    );
  }
  const dims = t.dims.map(Number);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0))
    throw new FxpqError(
      `${source}: tensor ${t.name} has an impossible shape [${dims.join(', ')}]; the file is damaged.`,
      'invalid-model',
    );
  const count = dims.reduce((a, b) => a * b, 1);
  const raw = t.rawData;
  const hasRaw = raw.length > 0;
  const width = ELEMENT_BYTES[t.dataType as DataType];
  if (hasRaw && width !== undefined && raw.length % width !== 0)
    throw new FxpqError(
      `${source}: tensor ${t.name} has ${raw.length} bytes of raw data, not a whole number of ${width}-byte values; the file is damaged.`,
      'invalid-model',
    );
  let data: TensorData;
  switch (t.dataType as DataType) {
    case DataType.FLOAT:
      data = hasRaw ? viewRaw(raw, Float32Array) : Float32Array.from(t.floatData);
      break;
    case DataType.DOUBLE:
      data = hasRaw ? viewRaw(raw, Float64Array) : Float64Array.from(t.doubleData);
      break;
    case DataType.INT64:
      data = hasRaw ? viewRaw(raw, BigInt64Array) : BigInt64Array.from(t.int64Data);
      break;
    case DataType.INT32:
      data = hasRaw ? viewRaw(raw, Int32Array) : Int32Array.from(t.int32Data);
      break;
    // Narrow integer types travel in int32_data when not raw.
    case DataType.INT16:
      data = hasRaw ? viewRaw(raw, Int16Array) : Int16Array.from(t.int32Data);
      break;
    case DataType.UINT16:
      data = hasRaw ? viewRaw(raw, Uint16Array) : Uint16Array.from(t.int32Data);
      break;
    case DataType.INT8:
      data = hasRaw ? viewRaw(raw, Int8Array) : Int8Array.from(t.int32Data);
      break;
    case DataType.UINT8:
    case DataType.BOOL:
      data = hasRaw ? viewRaw(raw, Uint8Array) : Uint8Array.from(t.int32Data);
      break;
  }
  if (data.length !== count) {
    throw new FxpqError(
      `${source}: tensor ${t.name} should hold ${count} values for shape [${dims.join(', ')}] but holds ${data.length}; the file is damaged.`,
      'invalid-model',
    );
  }
  return { name: t.name, dataType: t.dataType as DataType, dims, data };
}

// ---------------------------------------------------------------- writing

function copyBytes(d: TensorData): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(d.byteLength);
  bytes.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  return bytes;
}

export function encodeTensor(t: Tensor): TensorProto {
  const d = t.data;
  return create(TensorProtoSchema, {
    name: t.name,
    dataType: t.dataType,
    dims: t.dims.map((x) => BigInt(x)),
    rawData: copyBytes(d),
  });
}

function encodeValueInfo(v: ValueInfo): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name: v.name,
    type: create(TypeProtoSchema, {
      value: {
        case: 'tensorType',
        value: create(TypeProto_TensorSchema, {
          elemType: v.dataType,
          shape: create(TensorShapeProtoSchema, {
            dim: v.shape.map((d, i) =>
              create(TensorShapeProto_DimensionSchema, {
                value:
                  d >= 0
                    ? { case: 'dimValue', value: BigInt(d) }
                    : { case: 'dimParam', value: v.dimParams?.[i] ?? `d${i}` },
              }),
            ),
          }),
        }),
      },
    }),
  });
}

function encodeAttribute(name: string, a: AttrValue): AttributeProto {
  switch (a.kind) {
    case 'int':
      return create(AttributeProtoSchema, { name, type: AttrType.INT, i: BigInt(a.value) });
    case 'ints':
      return create(AttributeProtoSchema, { name, type: AttrType.INTS, ints: a.value.map((x) => BigInt(x)) });
    case 'float':
      return create(AttributeProtoSchema, { name, type: AttrType.FLOAT, f: a.value });
    case 'floats':
      return create(AttributeProtoSchema, { name, type: AttrType.FLOATS, floats: a.value });
    case 'string':
      return create(AttributeProtoSchema, { name, type: AttrType.STRING, s: new TextEncoder().encode(a.value) });
    case 'tensor':
      return create(AttributeProtoSchema, { name, type: AttrType.TENSOR, t: encodeTensor(a.value) });
  }
}

function encodeNode(n: {
  name: string;
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}): NodeProto {
  return create(NodeProtoSchema, {
    name: n.name,
    opType: n.op,
    input: n.inputs,
    output: n.outputs,
    attribute: Object.entries(n.attrs).map(([k, v]) => encodeAttribute(k, v)),
  });
}

/**
 * A fused activation is written back as the standard node it came from, so that any
 * ONNX tool (onnxruntime first) runs the canonical graph unchanged.
 */
function expandFusedActivations(graph: Graph): {
  nodes: Array<{ name: string; op: string; inputs: string[]; outputs: string[]; attrs: Record<string, AttrValue> }>;
  extraInitializers: Tensor[];
} {
  const nodes: ReturnType<typeof expandFusedActivations>['nodes'] = [];
  const extraInitializers: Tensor[] = [];
  for (const n of graph.nodes) {
    if (!n.activation) {
      nodes.push(n);
      continue;
    }
    const out = n.outputs[0]!;
    const pre = `${out}__preact`;
    nodes.push({ ...n, outputs: [pre, ...n.outputs.slice(1)] });
    const act = n.activation;
    if (act.maxPerChannel) {
      // An equalized ReLU6 (passes/equalize.ts): Relu, then Min with one bound per output channel.
      const spatial = (graph.initializers.get(n.inputs[1]!)?.dims.length ?? 4) - 2;
      const bounds = `${n.name}/max_per_channel`;
      const relu = `${out}__relu`;
      extraInitializers.push({
        name: bounds,
        dataType: DataType.FLOAT,
        dims: [act.maxPerChannel.length, ...new Array<number>(spatial).fill(1)],
        data: Float32Array.from(act.maxPerChannel),
      });
      nodes.push({ name: `${n.name}/Relu`, op: 'Relu', inputs: [pre], outputs: [relu], attrs: {} });
      nodes.push({ name: `${n.name}/Min`, op: 'Min', inputs: [relu, bounds], outputs: [out], attrs: {} });
    } else if (act.op === 'Relu') {
      nodes.push({ name: `${n.name}/Relu`, op: 'Relu', inputs: [pre], outputs: [out], attrs: {} });
    } else if (graph.opset >= 11) {
      const lo = `${n.name}/clip_min`;
      const hi = `${n.name}/clip_max`;
      extraInitializers.push(
        { name: lo, dataType: DataType.FLOAT, dims: [], data: Float32Array.of(act.min) },
        { name: hi, dataType: DataType.FLOAT, dims: [], data: Float32Array.of(act.max) },
      );
      nodes.push({ name: `${n.name}/Clip`, op: 'Clip', inputs: [pre, lo, hi], outputs: [out], attrs: {} });
    } else {
      nodes.push({
        name: `${n.name}/Clip`,
        op: 'Clip',
        inputs: [pre],
        outputs: [out],
        attrs: { min: { kind: 'float', value: act.min }, max: { kind: 'float', value: act.max } },
      });
    }
  }
  return { nodes, extraInitializers };
}

/** Encode the IR as an ONNX model (fused activations expanded back to standard nodes). */
export function writeOnnx(graph: Graph): Uint8Array {
  const { nodes, extraInitializers } = expandFusedActivations(graph);
  const model = create(ModelProtoSchema, {
    irVersion: BigInt(Math.max(graph.irVersion, 3)),
    producerName: 'fxpq',
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(graph.opset) })],
    metadataProps: Object.entries(graph.metadata).map(([key, value]) =>
      create(StringStringEntryProtoSchema, { key, value }),
    ),
    graph: create(GraphProtoSchema, {
      name: graph.name,
      node: nodes.map(encodeNode),
      initializer: [...graph.initializers.values(), ...extraInitializers].map(encodeTensor),
      input: graph.inputs.map(encodeValueInfo),
      output: graph.outputs.map(encodeValueInfo),
    }),
  });
  return toBinary(ModelProtoSchema, model);
}
