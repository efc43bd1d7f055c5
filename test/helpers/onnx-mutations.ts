/**
 * A seeded generator of damaged and hostile ONNX files, for the reliability corpus: each file is
 * a small valid classifier with one to three mutations, either of the decoded protobuf (shapes,
 * element types, operators, attributes, weights, opsets, the graph's wiring) or of the raw bytes
 * (truncation, flipped bytes, garbage). Some mutations leave a valid model (a flipped byte inside
 * a weight); the corpus test runs those through the whole engine instead.
 */
import { clone, create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  StringStringEntryProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorProto_DataLocation,
  type ModelProto,
} from 'onnx-buf';
import { seededRandom } from '../../native-workers/engine/data/split.js';
import { GraphBuilder, int, ints } from './graph-builder.js';

type Rand = () => number;
const pick = <T>(rand: Rand, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
const index = (rand: Rand, n: number): number => Math.floor(rand() * n);

/** Three small valid classifiers covering the operators FxPQ supports. */
export function baseModels(): { name: string; bytes: Uint8Array }[] {
  const plain = new GraphBuilder();
  {
    const b = plain;
    const x = b.input('x', [-1, 2, 8, 8]);
    const c = b.node('Conv', [x, b.weight([4, 2, 3, 3], 1), b.weight([4], 2)], { pads: ints([1, 1, 1, 1]) });
    const r = b.node('Relu', [c]);
    const p = b.node('GlobalAveragePool', [r]);
    const f = b.node('Flatten', [p]);
    b.output(b.node('Gemm', [f, b.weight([3, 4], 3), b.weight([3], 4)], { transB: int(1) }), [-1, 3]);
  }
  const residual = new GraphBuilder();
  {
    const b = residual;
    const x = b.input('x', [1, 3, 8, 8]);
    const c1 = b.node('Conv', [x, b.weight([4, 3, 3, 3], 5), b.weight([4], 6)], { pads: ints([1, 1, 1, 1]) });
    const r1 = b.node('Relu', [c1]);
    const c2 = b.node('Conv', [r1, b.weight([4, 4, 3, 3], 7), b.weight([4], 8)], { pads: ints([1, 1, 1, 1]) });
    const s = b.node('Add', [c2, r1]);
    const m = b.node('MaxPool', [s], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) });
    const a = b.node('AveragePool', [r1], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) });
    const cat = b.node('Concat', [m, a], { axis: int(1) });
    const f = b.node('Flatten', [cat]);
    const g = b.node('Gemm', [f, b.weight([128, 5], 9)]);
    b.output(b.node('Softmax', [g], { axis: int(1) }), [1, 5]);
  }
  const depthwise = new GraphBuilder(11);
  {
    const b = depthwise;
    const x = b.input('x', [-1, 4, 6, 6]);
    const d = b.node('Conv', [x, b.weight([4, 1, 3, 3], 10), b.weight([4], 11)], { group: int(4) });
    const c = b.node('Clip', [d], {}); // opset 11 Clip without bounds: an identity
    const p = b.node('Conv', [c, b.weight([2, 4, 1, 1], 12)]);
    const f = b.node('Flatten', [b.node('GlobalAveragePool', [p])]);
    b.output(b.node('MatMul', [f, b.weight([2, 3], 13)]), [-1, 3]);
  }
  return [
    { name: 'plain', bytes: plain.bytes() },
    { name: 'residual', bytes: residual.bytes() },
    { name: 'depthwise', bytes: depthwise.bytes() },
  ];
}

const HOSTILE_INTS = [0, -1, -7, 3, 65, 2 ** 31, 2 ** 40, 1e9] as const;

type ProtoMutation = (m: ModelProto, rand: Rand) => string;

/** Mutations of the decoded model; each returns a short description of what it did. */
const PROTO_MUTATIONS: Record<string, ProtoMutation> = {
  inputDim(m, rand) {
    const dims = m.graph!.input[0]!.type!.value.value as { shape?: { dim: { value: unknown }[] } };
    const dim = dims.shape!.dim;
    const i = index(rand, dim.length);
    const v = pick(rand, [0, -3, 1, 3, 2 ** 31, 2 ** 62, 1e9, 100000]);
    dim[i]!.value = { case: 'dimValue', value: BigInt(v) };
    return `input dim ${i} = ${v}`;
  },
  inputElemType(m, rand) {
    const t = m.graph!.input[0]!.type!.value.value as { elemType: number };
    t.elemType = pick(rand, [0, 2, 3, 6, 7, 10, 11, 16, 99]);
    return `input element type ${t.elemType}`;
  },
  inputRank(m, rand) {
    const dims = (m.graph!.input[0]!.type!.value.value as { shape?: { dim: unknown[] } }).shape!.dim;
    const n = pick(rand, [0, 1, 3, 6, 10]);
    const one = (): unknown => create(TensorShapeProto_DimensionSchema, { value: { case: 'dimValue', value: 1n } });
    while (dims.length < n) dims.push(one());
    dims.length = n;
    return `input rank ${n}`;
  },
  noInputType(m) {
    m.graph!.input[0]!.type = undefined;
    return 'input without a type';
  },
  secondInput(m) {
    m.graph!.input.push({ ...m.graph!.input[0]!, name: 'y' });
    return 'a second input';
  },
  dropNode(m, rand) {
    const i = index(rand, m.graph!.node.length);
    const [n] = m.graph!.node.splice(i, 1);
    return `node ${n!.opType} removed`;
  },
  opType(m, rand) {
    const n = pick(rand, m.graph!.node);
    const op = pick(rand, ['Conv', 'Relu', 'Gemm', 'MaxPool', 'Add', 'Softmax', 'Foo', '', 'LSTM', 'Loop', 'Identity']);
    const was = n.opType;
    n.opType = op;
    return `${was} -> ${op || '(empty)'}`;
  },
  dropNodeInput(m, rand) {
    const n = pick(rand, m.graph!.node);
    n.input.splice(index(rand, n.input.length), 1);
    return `${n.opType} lost an input`;
  },
  extraNodeInput(m, rand) {
    const n = pick(rand, m.graph!.node);
    n.input.push(pick(rand, [m.graph!.input[0]!.name, m.graph!.initializer[0]?.name ?? 'w', 'nowhere', '']));
    return `${n.opType} got an extra input`;
  },
  renameNodeOutput(m, rand) {
    const n = pick(rand, m.graph!.node);
    n.output[0] = pick(rand, ['renamed', m.graph!.input[0]!.name, m.graph!.node[0]!.output[0]!, '']);
    return `${n.opType} output renamed`;
  },
  duplicateNode(m, rand) {
    const n = pick(rand, m.graph!.node);
    m.graph!.node.push(create(NodeProtoSchema, { ...n, name: `${n.name}_copy` }));
    return `${n.opType} duplicated`;
  },
  reverseNodes(m) {
    m.graph!.node.reverse();
    return 'nodes in reverse order';
  },
  attribute(m, rand) {
    const withAttrs = m.graph!.node.filter((n) => n.attribute.length > 0);
    const n = pick(rand, withAttrs.length ? withAttrs : m.graph!.node);
    const v = pick(rand, HOSTILE_INTS);
    const a = n.attribute.length ? pick(rand, n.attribute) : undefined;
    if (a && a.ints.length) a.ints[index(rand, a.ints.length)] = BigInt(v);
    else if (a) a.i = BigInt(v);
    else
      n.attribute.push(
        create(AttributeProtoSchema, { name: 'axis', type: AttributeProto_AttributeType.INT, i: BigInt(v) }),
      );
    return `${n.opType} attribute ${a?.name ?? 'axis'} = ${v}`;
  },
  addAttribute(m, rand) {
    const n = pick(rand, m.graph!.node);
    const name = pick(rand, ['group', 'strides', 'dilations', 'pads', 'auto_pad', 'kernel_shape', 'transA', 'axis']);
    const v = pick(rand, HOSTILE_INTS);
    const attr =
      name === 'auto_pad'
        ? {
            name,
            type: AttributeProto_AttributeType.STRING,
            s: new TextEncoder().encode(pick(rand, ['SAME_UPPER', 'VALID', 'BOGUS'])),
          }
        : name === 'group' || name === 'transA' || name === 'axis'
          ? { name, type: AttributeProto_AttributeType.INT, i: BigInt(v) }
          : {
              name,
              type: AttributeProto_AttributeType.INTS,
              ints: [BigInt(v), BigInt(v), 0n, 0n].slice(0, name === 'pads' ? 4 : 2),
            };
    n.attribute = n.attribute.filter((a) => a.name !== name);
    n.attribute.push(create(AttributeProtoSchema, attr));
    return `${n.opType} ${name} set`;
  },
  graphAttribute(m, rand) {
    const n = pick(rand, m.graph!.node);
    n.attribute.push(
      create(AttributeProtoSchema, {
        name: 'body',
        type: AttributeProto_AttributeType.GRAPH,
        g: clone(GraphProtoSchema, m.graph!),
      }),
    );
    return `${n.opType} got a graph attribute`;
  },
  weightDims(m, rand) {
    const t = pick(rand, m.graph!.initializer);
    const i = index(rand, t.dims.length);
    const v = pick(rand, [0, 1, -2, 5, 2 ** 33]);
    if (t.dims.length === 0) t.dims.push(BigInt(v));
    else t.dims[i] = BigInt(v);
    return `${t.name} dim ${i} = ${v}`;
  },
  weightTranspose(m, rand) {
    const t = pick(rand, m.graph!.initializer);
    t.dims.reverse();
    return `${t.name} dims reversed`;
  },
  weightType(m, rand) {
    const t = pick(rand, m.graph!.initializer);
    t.dataType = pick(rand, [0, 3, 6, 7, 8, 10, 11, 16, 99]);
    return `${t.name} data type ${t.dataType}`;
  },
  weightBytes(m, rand) {
    const t = pick(rand, m.graph!.initializer);
    const data = t.rawData.length ? t.rawData : new Uint8Array(Float32Array.from(t.floatData).buffer);
    t.floatData = [];
    t.rawData = data.subarray(0, index(rand, data.length + 1) + (rand() < 0.5 ? 1 : 0));
    return `${t.name} raw data cut to ${t.rawData.length} bytes`;
  },
  weightValue(m, rand) {
    const t = pick(rand, m.graph!.initializer);
    const values = t.rawData.length ? new Float32Array(t.rawData.slice().buffer) : Float32Array.from(t.floatData);
    const v = pick(rand, [NaN, Infinity, -Infinity, 3e38, 1e-40, 0]);
    values[index(rand, values.length)] = v;
    t.rawData = new Uint8Array(values.buffer);
    t.floatData = [];
    return `${t.name} holds ${v}`;
  },
  externalWeight(m, rand) {
    const t = pick(rand, m.graph!.initializer);
    t.dataLocation = TensorProto_DataLocation.EXTERNAL;
    t.rawData = new Uint8Array();
    t.floatData = [];
    t.externalData = [
      create(StringStringEntryProtoSchema, {
        key: 'location',
        value: pick(rand, ['../../../etc/passwd', '/dev/zero', 'weights.bin']),
      }),
      create(StringStringEntryProtoSchema, { key: 'length', value: '4096' }),
    ];
    return `${t.name} stored in an external file`;
  },
  dropWeight(m, rand) {
    const i = index(rand, m.graph!.initializer.length);
    const [t] = m.graph!.initializer.splice(i, 1);
    return `${t!.name} removed`;
  },
  opset(m, rand) {
    const o = m.opsetImport[0]!;
    if (rand() < 0.3) {
      o.domain = pick(rand, ['com.microsoft', 'ai.onnx.ml', 'bogus']);
      return `opset domain ${o.domain}`;
    }
    o.version = BigInt(pick(rand, [0, 1, 6, 99, 1000]));
    return `opset ${o.version}`;
  },
  noOpset(m) {
    m.opsetImport = [];
    return 'no opset import';
  },
  irVersion(m, rand) {
    m.irVersion = BigInt(pick(rand, [0, 1, 99]));
    return `IR version ${m.irVersion}`;
  },
  outputs(m, rand) {
    const g = m.graph!;
    const choice = index(rand, 3);
    if (choice === 0) g.output = [];
    else if (choice === 1) g.output[0]!.name = 'ghost';
    else g.output.push({ ...g.output[0]!, name: g.node[0]!.output[0]! });
    return ['no outputs', 'output renamed', 'an extra output'][choice]!;
  },
  noGraph(m) {
    m.graph = undefined;
    return 'no graph';
  },
};

type ByteMutation = (bytes: Uint8Array, rand: Rand) => { bytes: Uint8Array; what: string };

const BYTE_MUTATIONS: Record<string, ByteMutation> = {
  truncate: (b, rand) => {
    const n = index(rand, b.length);
    return { bytes: b.subarray(0, n), what: `cut to ${n} bytes` };
  },
  flip: (b, rand) => {
    const out = b.slice();
    const k = 1 + index(rand, 8);
    for (let i = 0; i < k; i++) out[index(rand, out.length)] = index(rand, 256);
    return { bytes: out, what: `${k} bytes changed` };
  },
  garbage: (_, rand) => {
    const out = new Uint8Array(index(rand, 512));
    for (let i = 0; i < out.length; i++) out[i] = index(rand, 256);
    return { bytes: out, what: `${out.length} random bytes` };
  },
  hugeLength: (b) => {
    // A field claiming a 2^62-byte payload right after a valid prefix.
    const out = new Uint8Array(b.length + 10);
    out.set(b);
    out.set([0x3a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f], b.length);
    return { bytes: out, what: 'a field with a huge length' };
  },
  text: () => ({
    bytes: new TextEncoder().encode('ir_version: 7\ngraph { node { op_type: "Relu" } }\n'),
    what: 'ONNX text format',
  }),
  empty: () => ({ bytes: new Uint8Array(), what: 'empty file' }),
};

export interface MutatedModel {
  name: string;
  bytes: Uint8Array;
  what: string;
}

/** `count` mutated models from `seed`: about three quarters protobuf mutations, one quarter raw bytes. */
export function mutatedModels(count: number, seed: number): MutatedModel[] {
  const rand = seededRandom(seed);
  const bases = baseModels();
  const protoNames = Object.keys(PROTO_MUTATIONS);
  const byteNames = Object.keys(BYTE_MUTATIONS);
  const out: MutatedModel[] = [];
  for (let i = 0; i < count; i++) {
    const base = pick(rand, bases);
    let bytes: Uint8Array;
    const whats: string[] = [];
    if (rand() < 0.75) {
      const model = fromBinary(ModelProtoSchema, base.bytes);
      const k = rand() < 0.7 ? 1 : 2 + index(rand, 2);
      for (let j = 0; j < k; j++) {
        const name = pick(rand, protoNames);
        try {
          whats.push(PROTO_MUTATIONS[name]!(model, rand));
        } catch {
          whats.push(`${name} (not applicable)`);
        }
      }
      bytes = toBinary(ModelProtoSchema, model);
    } else {
      const r = BYTE_MUTATIONS[pick(rand, byteNames)]!(base.bytes, rand);
      bytes = r.bytes;
      whats.push(r.what);
    }
    out.push({ name: `m${String(i).padStart(3, '0')}-${base.name}.onnx`, bytes, what: whats.join('; ') });
  }
  return out;
}
