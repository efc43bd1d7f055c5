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
import type { AttrValue } from '../../native-workers/engine/ir/graph.js';
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
  // Issue 30: names that key JavaScript objects or collide with FxPQ's own graphs, shared initializers.
  objectKeyName(m, rand) {
    const g = m.graph!;
    const name = pick(rand, [
      '__proto__',
      'constructor',
      'toString',
      'valueOf',
      'input',
      'logits',
      'sim/half',
      'qdq/Conv_1',
    ]);
    const from = rand() < 0.5 && g.initializer.length ? pick(rand, g.initializer).name : pick(rand, g.node).output[0]!;
    for (const n of g.node) {
      n.input = n.input.map((x) => (x === from ? name : x));
      n.output = n.output.map((x) => (x === from ? name : x));
    }
    for (const t of g.initializer) if (t.name === from) t.name = name;
    for (const o of g.output) if (o.name === from) o.name = name;
    return `${from} renamed ${name}`;
  },
  shareInitializer(m, rand) {
    const g = m.graph!;
    const layers = g.node.filter((n) => ['Conv', 'Gemm', 'MatMul'].includes(n.opType) && n.input.length > 1);
    const [a, b] = [pick(rand, layers), pick(rand, layers)];
    const i = 1 + index(rand, Math.min(a.input.length, b.input.length) - 1);
    b.input[i] = a.input[i]!;
    return `${b.opType} reads ${a.opType}'s input ${i}`;
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

/** Rename tensor `from` to `to` everywhere in a graph (node inputs and outputs, initializers, graph outputs). */
function renameTensor(g: ReturnType<GraphBuilder['graph']>, from: string, to: string): void {
  for (const n of g.nodes) {
    n.inputs = n.inputs.map((x) => (x === from ? to : x));
    n.outputs = n.outputs.map((x) => (x === from ? to : x));
  }
  const t = g.initializers.get(from);
  if (t) {
    g.initializers.delete(from);
    g.initializers.set(to, { ...t, name: to });
  }
  for (const o of g.outputs) if (o.name === from) o.name = to;
  for (const i of g.inputs) if (i.name === from) i.name = to;
}

/** A Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm classifier; `conv` sets the Conv's attributes. */
function plainClassifier(
  conv: Record<string, AttrValue> = { pads: ints([1, 1, 1, 1]) },
  edit?: (b: GraphBuilder, names: { x: string; w: string; b: string; conv: string; gemm: string }) => void,
): GraphBuilder {
  const b = new GraphBuilder();
  const x = b.input('x', [-1, 2, 8, 8]);
  const w = b.weight([4, 2, 3, 3], 1);
  const bias = b.weight([4], 2);
  const c = b.node('Conv', [x, w, bias], conv);
  const r = b.node('Relu', [c]);
  const p = b.node('GlobalAveragePool', [r]);
  const f = b.node('Flatten', [p]);
  const gemm = b.node('Gemm', [f, b.weight([3, 4], 3), b.weight([3], 4)], { transB: int(1) });
  b.output(gemm, [-1, 3]);
  edit?.(b, { x, w, b: bias, conv: c, gemm });
  return b;
}

export interface HostileModel {
  name: string;
  bytes: Uint8Array;
  what: string;
}

/**
 * Hand-made hostile models (issue 30, item 13 and item 8), each one a file that once made FxPQ
 * print an internal error or allocate without bound: every one must be refused with a sentence
 * naming the file, or go through the whole engine (the QDQ export included) correctly.
 */
export function hostileModels(): HostileModel[] {
  const out: HostileModel[] = [];
  const add = (name: string, what: string, b: GraphBuilder): void => {
    out.push({ name: `h-${name}.onnx`, bytes: b.bytes(), what });
  };
  const auto = (v: string): AttrValue => ({ kind: 'string', value: v });
  add(
    'dilation-same-upper',
    'Conv with dilations 2 and auto_pad SAME_UPPER',
    plainClassifier({ dilations: ints([2, 2]), auto_pad: auto('SAME_UPPER') }),
  );
  add(
    'dilation-same-lower',
    'Conv with dilations 2 and auto_pad SAME_LOWER',
    plainClassifier({ dilations: ints([2, 2]), auto_pad: auto('SAME_LOWER') }),
  );
  add(
    'dilation-huge',
    'Conv with dilations 1e6',
    plainClassifier({ dilations: ints([1e6, 1e6]), pads: ints([1, 1, 1, 1]) }),
  );
  add(
    'flatten-axis-0',
    'Flatten with axis 0',
    plainClassifier(undefined, (b) => {
      const n = b.graph().nodes.find((m) => m.op === 'Flatten')!;
      n.attrs['axis'] = int(0);
    }),
  );
  const qdqNames = [
    ['input', 'output', 'logits', 'w'],
    ['logits', 'input', 'qdq/Gemm_40', 'input/scale'],
    ['qdq/QuantizeLinear_0', 'input/qdq', 'input/down', 'logits/int'],
  ];
  qdqNames.forEach(([relu, pool, flat, gemmWeight], i) => {
    add(
      `tensors-named-like-qdq-${i}`,
      `intermediate tensors named ${relu}, ${pool}, ${flat}, a weight named ${gemmWeight}`,
      plainClassifier(undefined, (b) => {
        const g = b.graph();
        const out = (op: string): string => g.nodes.find((m) => m.op === op)!.outputs[0]!;
        renameTensor(g, out('Relu'), relu!);
        renameTensor(g, out('GlobalAveragePool'), pool!);
        renameTensor(g, out('Flatten'), flat!);
        renameTensor(g, g.nodes.find((m) => m.op === 'Gemm')!.inputs[1]!, gemmWeight!);
      }),
    );
  });
  const names = [
    ['__proto__', 'constructor', 'toString', 'hasOwnProperty'],
    ['toString', '__proto__', 'constructor', 'valueOf'],
    ['constructor', 'valueOf', '__proto__', 'toString'],
  ];
  names.forEach(([w, bias, conv, relu], i) => {
    add(
      `names-object-keys-${i}`,
      `weight ${w}, bias ${bias}, Conv output ${conv}, Relu output ${relu}, node ${w}`,
      plainClassifier(undefined, (b, n) => {
        const g = b.graph();
        const reluOut = g.nodes.find((m) => m.op === 'Relu')!.outputs[0]!;
        renameTensor(g, n.w, w!);
        renameTensor(g, n.b, bias!);
        renameTensor(g, n.conv, conv!);
        renameTensor(g, reluOut, relu!);
        g.nodes[0]!.name = w!;
        g.nodes[1]!.name = bias!;
      }),
    );
  });
  add(
    'graph-input-proto',
    'the graph input named __proto__',
    plainClassifier(undefined, (b, n) => renameTensor(b.graph(), n.x, '__proto__')),
  );
  for (const alpha of [-3, 0, 1, 5]) {
    const b = new GraphBuilder();
    const x = b.input('x', [-1, 2, 8, 8]);
    const c = b.node('Conv', [x, b.weight([4, 2, 3, 3], 1), b.weight([4], 2)], { pads: ints([1, 1, 1, 1]) });
    const l = b.node('LeakyRelu', [c], { alpha: { kind: 'float', value: alpha } });
    const f = b.node('Flatten', [b.node('GlobalAveragePool', [l])]);
    b.output(b.node('Gemm', [f, b.weight([3, 4], 3), b.weight([3], 4)], { transB: int(1) }), [-1, 3]);
    add(`leaky-alpha-${alpha}`, `LeakyRelu with alpha ${alpha}`, b);
  }
  add(
    'zero-dim-weight',
    'a Conv weight with a zero dimension',
    plainClassifier(undefined, (b, n) => {
      const g = b.graph();
      g.initializers.set(n.w, { ...g.initializers.get(n.w)!, dims: [0, 2, 3, 3], data: new Float32Array(0) });
    }),
  );
  add(
    'zero-dim-bias',
    'a Conv bias with a zero dimension',
    plainClassifier(undefined, (b, n) => {
      const g = b.graph();
      g.initializers.set(n.b, { ...g.initializers.get(n.b)!, dims: [0], data: new Float32Array(0) });
    }),
  );
  for (const len of [3, 5, 1]) {
    add(
      `bias-length-${len}`,
      `a Conv bias of ${len} values for 4 channels`,
      plainClassifier(undefined, (b, n) => {
        const g = b.graph();
        g.initializers.set(n.b, { ...g.initializers.get(n.b)!, dims: [len], data: new Float32Array(len).fill(0.1) });
      }),
    );
  }
  add(
    'gemm-bias-length',
    'a Gemm bias of 2 values for 3 outputs',
    plainClassifier(undefined, (b) => {
      const g = b.graph();
      const gemm = g.nodes.find((m) => m.op === 'Gemm')!;
      const name = gemm.inputs[2]!;
      g.initializers.set(name, { ...g.initializers.get(name)!, dims: [2], data: new Float32Array(2).fill(0.1) });
    }),
  );
  {
    // LeakyRelu with a negative slope where its input is unsigned (after a Relu, after a MaxPool of
    // the image) and as the last layer: the negative branch then has no values, or flips sign.
    const b = new GraphBuilder();
    const x = b.input('x', [-1, 2, 8, 8]);
    const l0 = b.node('LeakyRelu', [b.node('MaxPool', [x], { kernel_shape: ints([2, 2]) })], {
      alpha: { kind: 'float', value: -3 },
    });
    const c = b.node('Conv', [l0, b.weight([4, 2, 3, 3], 1), b.weight([4], 2)], { pads: ints([1, 1, 1, 1]) });
    const l1 = b.node('LeakyRelu', [b.node('Relu', [c])], { alpha: { kind: 'float', value: -3 } });
    const f = b.node('Flatten', [b.node('GlobalAveragePool', [l1])]);
    const g = b.node('Gemm', [f, b.weight([3, 4], 3), b.weight([3], 4)], { transB: int(1) });
    b.output(b.node('LeakyRelu', [g], { alpha: { kind: 'float', value: -3 } }), [-1, 3]);
    add('leaky-alpha--3-unsigned', 'LeakyRelu alpha -3 after a MaxPool of the input, after a Relu, and last', b);
  }
  add(
    'tensors-named-like-sim',
    "intermediate tensors named like the simulation graph's own (sim/half, sim/W/..., sim/Q/...)",
    plainClassifier(undefined, (b, n) => {
      const g = b.graph();
      const out = (op: string): string => g.nodes.find((m) => m.op === op)!.outputs[0]!;
      renameTensor(g, out('Relu'), 'sim/half');
      renameTensor(g, out('GlobalAveragePool'), 'sim/Q/A:sim/half/scale');
      renameTensor(g, out('Flatten'), 'sim/Conv_0');
      renameTensor(g, n.w, 'sim/W/w1');
    }),
  );
  for (const len of [2, 5]) {
    const b = new GraphBuilder();
    const x = b.input('x', [-1, 2, 8, 8]);
    const c = b.node('Conv', [x, b.weight([4, 2, 3, 3], 1), b.weight([4], 2)], { pads: ints([1, 1, 1, 1]) });
    const f = b.node('Flatten', [b.node('GlobalAveragePool', [b.node('Relu', [c])])]);
    const mm = b.node('MatMul', [f, b.weight([4, 3], 3)]);
    b.output(b.node('Add', [mm, b.weight([len], 4)]), [-1, 3]);
    add(`matmul-add-bias-length-${len}`, `MatMul then an Add of ${len} values for 3 outputs`, b);
  }
  add(
    'zero-dim-gemm-weight',
    'a Gemm weight with a zero dimension',
    plainClassifier(undefined, (b) => {
      const g = b.graph();
      const name = g.nodes.find((m) => m.op === 'Gemm')!.inputs[1]!;
      g.initializers.set(name, { ...g.initializers.get(name)!, dims: [3, 0], data: new Float32Array(0) });
    }),
  );
  add(
    'zero-dim-reshape-shape',
    'a Reshape whose shape initializer has a zero dimension',
    plainClassifier(undefined, (b) => {
      const g = b.graph();
      const flat = g.nodes.find((m) => m.op === 'Flatten')!;
      flat.op = 'Reshape';
      const shape = b.constant({ name: 'shape0', dataType: 7, dims: [0], data: new BigInt64Array(0) });
      flat.inputs = [flat.inputs[0]!, shape];
    }),
  );
  // Shared parameters (item 6): one weight or bias initializer read by two layers whose inputs
  // have different formats, so the bias is aligned differently in each.
  const shared = (what: 'bias' | 'weights' | 'both' | 'weights-bn'): GraphBuilder => {
    const b = new GraphBuilder();
    const x = b.input('x', [-1, 4, 6, 6]);
    const w = b.weight([4, 4, 3, 3], 21, 0.3);
    const bias = b.weight([4], 22, 2);
    const w2 = what === 'bias' ? b.weight([4, 4, 3, 3], 23, 0.3) : w;
    const b1 = what === 'weights' || what === 'weights-bn' ? b.weight([4], 24, 2) : bias;
    const pads = { pads: ints([1, 1, 1, 1]) };
    const bn = (t: string, seed: number): string =>
      what !== 'weights-bn'
        ? t
        : b.node('BatchNormalization', [
            t,
            b.weight([4], seed, 0.5),
            b.weight([4], seed + 1, 0.5),
            b.weight([4], seed + 2, 0.5),
            b.constant({ name: `var${seed}`, dataType: 1, dims: [4], data: Float32Array.of(1, 2, 0.5, 3) }),
          ]);
    const first = b.node('Relu', [bn(b.node('Conv', [x, w, b1], pads), 30)]);
    const second = b.node('Relu', [bn(b.node('Conv', [first, w2, bias], pads), 40)]);
    const f = b.node('Flatten', [b.node('GlobalAveragePool', [second])]);
    b.output(b.node('Gemm', [f, b.weight([3, 4], 25), b.weight([3], 26)], { transB: int(1) }), [-1, 3]);
    return b;
  };
  add('shared-bias', 'two Convs sharing one bias initializer', shared('bias'));
  add('shared-weights', 'two Convs sharing one weight initializer', shared('weights'));
  add('shared-weights-and-bias', 'two Convs sharing their weights and bias', shared('both'));
  add(
    'shared-weights-bn',
    'two Convs sharing weights, each followed by its own BatchNormalization',
    shared('weights-bn'),
  );
  for (const nhwcMean of [false, true]) {
    // tf2onnx's SqueezeNet ending: an NHWC input transposed, Conv, Relu, a spatial ReduceMean
    // kept to rank 4 then a Squeeze (named like tf2onnx's, with '/' and ':'), then Softmax.
    // `nhwcMean`: the mean taken over axes 1 and 2 after a Transpose back to NHWC.
    const b = new GraphBuilder(9);
    const x = b.input('input_1:0', [-1, 8, 8, 2]);
    const t = b.node('Transpose', [x], { perm: ints([0, 3, 1, 2]) });
    const c = b.node('Conv', [t, b.weight([3, 2, 3, 3], 1), b.weight([3], 2)], { pads: ints([1, 1, 1, 1]) });
    const r = b.node('Relu', [c]);
    const back = nhwcMean ? b.node('Transpose', [r], { perm: ints([0, 2, 3, 1]) }) : r;
    const axes = nhwcMean ? [1, 2] : [2, 3];
    const m = b.node('ReduceMean', [back], { axes: ints(axes), keepdims: int(1) });
    const s = b.node('Squeeze', [m], { axes: ints(axes) });
    const sm = b.node('Softmax', [s], { axis: int(1) });
    b.output(sm, [-1, 3]);
    const g = b.graph();
    renameTensor(g, s, 'squeezenet/Mean_Squeeze__83:0');
    renameTensor(g, m, 'squeezenet/Mean:0');
    renameTensor(g, sm, 'Identity:0');
    add(
      `tf2onnx-squeezenet-tail${nhwcMean ? '-nhwc-mean' : ''}`,
      `tf2onnx SqueezeNet ending: NHWC input Transpose, Conv, ${nhwcMean ? 'Transpose back, ' : ''}ReduceMean, Squeeze, Softmax`,
      b,
    );
  }
  {
    const b = new GraphBuilder(9);
    const x = b.input('x', [-1, 2, 8, 8]);
    const c = b.node('Conv', [x, b.weight([3, 2, 3, 3], 1), b.weight([3], 2)], { pads: ints([1, 1, 1, 1]) });
    const r = b.node('Relu', [c]);
    const m = b.node('ReduceMean', [r], { axes: ints([2, 3]), keepdims: int(0) });
    b.output(b.node('Softmax', [m], { axis: int(1) }), [-1, 3]);
    add('reducemean-softmax', 'Conv, Relu, spatial ReduceMean (keepdims 0), Softmax', b);
  }
  return out;
}
