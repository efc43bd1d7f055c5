/** Tiny ONNX graphs built in tests, through the same IR and writer the engine uses. */
import {
  DataType,
  floatTensor,
  type AttrValue,
  type Graph,
  type Node,
  type Tensor,
} from '../../native-workers/engine/ir/graph.js';
import { writeOnnx } from '../../native-workers/engine/onnx/onnx-format.js';

export function ints(value: number[]): AttrValue {
  return { kind: 'ints', value };
}
export function int(value: number): AttrValue {
  return { kind: 'int', value };
}
export function float(value: number): AttrValue {
  return { kind: 'float', value };
}

/** Deterministic pseudo-random floats (tests must not depend on Math.random). */
export function seededFloats(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (((s >>> 0) / 0xffffffff) * 2 - 1) * scale;
  }
  return out;
}

export class GraphBuilder {
  private readonly g: Graph;
  private counter = 0;

  constructor(opset = 13) {
    this.g = {
      name: 'test',
      opset,
      irVersion: opset >= 13 ? 7 : 3,
      producer: 'test',
      inputs: [],
      outputs: [],
      nodes: [],
      initializers: new Map(),
      metadata: {},
    };
  }

  input(name: string, shape: number[]): string {
    this.g.inputs.push({
      name,
      dataType: DataType.FLOAT,
      shape,
      dimParams: shape.map((d) => (d < 0 ? 'N' : undefined)),
    });
    return name;
  }

  weight(dims: number[], seed: number, scale = 0.5, name = `w${this.counter++}`): string {
    const n = dims.reduce((a, b) => a * b, 1);
    this.g.initializers.set(name, floatTensor(name, dims, seededFloats(n, seed, scale)));
    return name;
  }

  constant(t: Tensor): string {
    this.g.initializers.set(t.name, t);
    return t.name;
  }

  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1): string {
    const name = `${op.toLowerCase()}_${this.counter++}`;
    const outs = Array.from({ length: outputs }, (_, i) => `${name}_out${i}`);
    const n: Node = { name, op, inputs, outputs: outs, attrs };
    this.g.nodes.push(n);
    return outs[0]!;
  }

  output(name: string, shape: number[]): void {
    this.g.outputs.push({
      name,
      dataType: DataType.FLOAT,
      shape,
      dimParams: shape.map((d) => (d < 0 ? 'N' : undefined)),
    });
  }

  graph(): Graph {
    return this.g;
  }

  bytes(): Uint8Array {
    return writeOnnx(this.g);
  }
}
