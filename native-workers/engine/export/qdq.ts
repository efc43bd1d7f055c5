/**
 * `model.qdq.onnx`: standard ONNX (opset 21) that any tool runs as a float model. Each
 * quantized tensor passes QuantizeLinear -> Clip -> DequantizeLinear with scale 2^-f and zero
 * point 0 in an int8/uint8 container (b <= 8) or QuantizeLinear -> DequantizeLinear -> Clip in
 * an int16/uint16 one (onnxruntime's Clip has no 16-bit integer kernel), clipped to the b-bit
 * range (the pattern Brevitas uses below 8 bits). Weights are stored as integers; biases as
 * int32 on the accumulator grid.
 *
 * onnxruntime's QuantizeLinear rounds half to even where FxPQ rounds half up, and ties are
 * common (a value on a grid only one bit finer than the output is a tie half the time). So
 * before each requantization that drops bits, the graph adds half a step of the finer grid:
 * ties then round up, and no other value crosses a rounding boundary. For Conv/Gemm this
 * offset is folded into the bias (int32 on a grid one bit finer).
 */
import { FxpqError } from '../errors.js';
import { DataType, floatTensor, int64Tensor, type Graph, type Node, type Tensor } from '../ir/graph.js';
import { writeOnnx } from '../onnx/onnx-format.js';
import { POOL_RECIPROCAL_BITS, poolReciprocal, type Format } from '../fixedpoint/format.js';
import type { IntProgram } from '../fixedpoint/program.js';
import type { QuantPlan } from '../fixedpoint/plan.js';
import { leakySlope, SLOPE_FRAC } from '../ops/leaky-relu.js';

const INT8 = 3;
const UINT8 = 2;
const INT16 = 5;
const UINT16 = 4;

function container(f: { bits: number; signed: boolean }, what: string): number {
  if (f.bits <= 8) return f.signed ? INT8 : UINT8;
  if (f.bits <= 16) return f.signed ? INT16 : UINT16;
  throw new FxpqError(
    `${what} has ${f.bits} bits; standard ONNX QDQ holds at most 16-bit integers.`,
    'unsupported-model',
  );
}

function typedFor(type: number, values: ArrayLike<number>): Tensor['data'] {
  if (type === INT8) return Int8Array.from(values);
  if (type === UINT8) return Uint8Array.from(values);
  if (type === INT16) return Int16Array.from(values);
  if (type === UINT16) return Uint16Array.from(values);
  return Int32Array.from(values);
}

export function buildQdqGraph(
  plan: QuantPlan,
  program: IntProgram,
  formatOf: (tensor: string) => Format,
  metadata: Record<string, string> = {},
): Graph {
  const nodes: Node[] = [];
  const inits = new Map<string, Tensor>();
  let k = 0;
  // Every name in the QDQ graph is given once: the model's own tensor names (which the names of
  // their scales and integers are built from) may be anything, `input`, `logits` or
  // `qdq/Conv_3` included, and two tensors of one name would silently share a value.
  const used = new Set<string>(['input', 'logits']);
  const fresh = (base: string): string => {
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}~${i}`;
    used.add(name);
    return name;
  };
  const emit = (op: string, inputs: string[], attrs: Node['attrs'] = {}, output?: string): string => {
    const out = fresh(output ?? `qdq/${op}_${k++}`);
    nodes.push({ name: fresh(`qdq/${op}_${k++}`), op, inputs, outputs: [out], attrs });
    return out;
  };
  const constant = (t: Tensor): string => {
    const name = fresh(t.name);
    inits.set(name, { ...t, name });
    return name;
  };
  /** The model's own constants (Reshape shapes, Pad amounts), each under one fresh name. */
  const modelConstants = new Map<string, string>();
  const scalar = (name: string, type: number, v: number): string =>
    constant({ name, dataType: type as DataType, dims: [], data: typedFor(type, [v]) });
  const fscalar = (name: string, v: number): string => constant(floatTensor(name, [], Float32Array.of(v)));

  /** x -> Q -> Clip -> DQ (or Q -> DQ -> Clip for 16-bit containers) on format f with clamp [lo, hi]. */
  const qdq = (x: string, f: Format, lo: number, hi: number, tag: string, output?: string): string => {
    const type = container(f, tag);
    const scale = fscalar(`${tag}/scale`, 2 ** -f.frac);
    const zero = scalar(`${tag}/zero`, type, 0);
    const q = emit('QuantizeLinear', [x, scale, zero]);
    if (type === INT8 || type === UINT8) {
      const c = emit('Clip', [q, scalar(`${tag}/lo`, type, lo), scalar(`${tag}/hi`, type, hi)]);
      return emit('DequantizeLinear', [c, scale, zero], {}, output);
    }
    const dq = emit('DequantizeLinear', [q, scale, zero]);
    return emit(
      'Clip',
      [dq, fscalar(`${tag}/lo`, lo * 2 ** -f.frac), fscalar(`${tag}/hi`, hi * 2 ** -f.frac)],
      {},
      output,
    );
  };

  /** Half a step of the grid 2^-fGrid when requantizing to 2^-fOut drops bits (see above). */
  const halfUp = (x: string, fGrid: number, fOut: number, tag: string): string =>
    fGrid - fOut >= 1 ? emit('Add', [x, fscalar(`${tag}/half-up`, 2 ** -(fGrid + 1))]) : x;

  const inputFormat = program.input.format;
  const inputRange = inputFormat.signed
    ? [-(2 ** (inputFormat.bits - 1)), 2 ** (inputFormat.bits - 1) - 1]
    : [0, 2 ** inputFormat.bits - 1];
  // An NHWC model (tf2onnx) starts with a Transpose of its input: apply it to the float input,
  // before the quantization it commutes with. Left between a DequantizeLinear and a
  // QuantizeLinear, onnxruntime's transpose optimizer inserts a QuantizeLinear of the wrong type.
  const leading = plan.nodes.find(
    (n) =>
      n.op === 'Transpose' &&
      n.inputs[0] === program.input.name &&
      plan.nodes.filter((m) => m.inputs.includes(n.inputs[0]!)).length === 1,
  );
  const floatInput = leading ? emit('Transpose', ['input'], leading.attrs) : 'input';
  // The input comes from arbitrary floats, where no half-step offset is safe: round it half
  // up explicitly (floor(x 2^f + 0.5) 2^-f), so the QuantizeLinear that follows sees grid values.
  const rounded = emit('Mul', [
    emit('Floor', [
      emit('Add', [emit('Mul', [floatInput, fscalar('input/up', 2 ** inputFormat.frac)]), fscalar('input/half', 0.5)]),
    ]),
    fscalar('input/down', 2 ** -inputFormat.frac),
  ]);
  const xq = qdq(rounded, inputFormat, inputRange[0]!, inputRange[1]!, 'input', 'input/qdq');
  const rename = new Map<string, string>([[leading ? leading.outputs[0]! : program.input.name, xq]]);
  const t = (name: string): string => rename.get(name) ?? name;

  const byOutput = new Map(program.nodes.map((n) => [n.output, n]));
  /** The lowest value an activation takes: its clamp's lower bound on its grid. */
  const lowestOf = (tensor: string): number => {
    const p = byOutput.get(tensor);
    return p ? p.out.lo * 2 ** -p.out.frac : inputRange[0]! * 2 ** -inputFormat.frac;
  };
  for (const node of plan.nodes) {
    if (node === leading) continue;
    const p = byOutput.get(node.outputs[0]!)!;
    const f: Format = { bits: p.out.bits, frac: p.out.frac, signed: p.out.signed };
    const out = node.outputs[0]!;
    const linear = node.op === 'Conv' || node.op === 'Gemm' || node.op === 'MatMul';
    if (linear) {
      const wName = node.inputs[1]!;
      const w = program.constants[wName]!;
      const wf = formatOf(wName);
      const wType = container(wf, `weights ${wName}`);
      const wInt = constant({
        name: `${wName}/int`,
        dataType: wType as DataType,
        dims: w.dims,
        data: typedFor(wType, w.data),
      });
      const wDq = emit('DequantizeLinear', [
        wInt,
        fscalar(`${wName}/scale`, 2 ** -w.frac!),
        scalar(`${wName}/zero`, wType, 0),
      ]);
      const inputs = [t(node.inputs[0]!), wDq];
      const bName = node.inputs[2];
      const fAcc = w.frac! + program.fracOf[node.inputs[0]!]!;
      const dropsBits = fAcc - f.frac >= 1;
      if (bName) {
        const b = program.constants[bName]!;
        // On a grid one bit finer than the accumulator, plus the half-up offset when bits are dropped.
        const aligned = Array.from(b.aligned!, (v) => 2 * v + (dropsBits ? 1 : 0));
        if (aligned.some((v) => Math.abs(v) >= 2 ** 31))
          throw new FxpqError(`The aligned bias of ${node.name} does not fit int32.`, 'unsupported-model');
        const bInt = constant({
          name: `${bName}/int32`,
          dataType: DataType.INT32,
          dims: b.dims,
          data: Int32Array.from(aligned),
        });
        inputs.push(
          emit('DequantizeLinear', [
            bInt,
            fscalar(`${bName}/scale`, 2 ** -(fAcc + 1)),
            scalar(`${bName}/zero`, DataType.INT32, 0),
          ]),
        );
      }
      let pre = emit(node.op, inputs, node.attrs);
      if (!bName) pre = halfUp(pre, fAcc, f.frac, out);
      if (p.out.hiPerChannel) {
        // An equalized ReLU6: each channel's bound, a value of the output grid, so it commutes with
        // the (monotone) QuantizeLinear that follows.
        const rank = plan.shapes.get(out)!.length;
        const bounds = Float32Array.from(p.out.hiPerChannel, (v) => v * 2 ** -f.frac);
        const dims = [1, bounds.length, ...new Array<number>(rank - 2).fill(1)];
        pre = emit('Min', [pre, constant(floatTensor(`${out}/hi-per-channel`, dims, bounds))]);
      }
      rename.set(out, qdq(pre, f, p.out.lo, p.out.hi, out));
    } else if (node.op === 'Add') {
      const F = Math.max(...node.inputs.map((x) => program.fracOf[x]!));
      rename.set(out, qdq(halfUp(emit('Add', node.inputs.map(t)), F, f.frac, out), f, p.out.lo, p.out.hi, out));
    } else if (node.op === 'Concat') {
      const parts = node.inputs.map((x, i) =>
        qdq(halfUp(t(x), program.fracOf[x]!, f.frac, `${out}/part${i}`), f, p.out.lo, p.out.hi, `${out}/part${i}`),
      );
      rename.set(out, emit('Concat', parts, node.attrs));
    } else if (node.op === 'AveragePool' || node.op === 'GlobalAveragePool') {
      // Window sum, times R * 2^-P (the integer rule's reciprocal), then the output quantizer.
      const x = t(node.inputs[0]!);
      const shape = plan.shapes.get(node.inputs[0]!)!;
      let sum: string;
      let n: number;
      if (node.op === 'GlobalAveragePool') {
        n = shape.slice(2).reduce((a, b) => a * b, 1);
        sum = emit(
          'ReduceSum',
          [
            x,
            constant(
              int64Tensor(
                `${out}/axes`,
                shape.slice(2).map((_, i) => i + 2),
              ),
            ),
          ],
          { keepdims: { kind: 'int', value: 1 } },
        );
      } else {
        const kernel = (node.attrs['kernel_shape'] as { value: number[] }).value;
        n = kernel.reduce((a, b) => a * b, 1);
        const attrs = { ...node.attrs, group: { kind: 'int' as const, value: shape[1]! } };
        delete (attrs as Record<string, unknown>)['count_include_pad'];
        delete (attrs as Record<string, unknown>)['ceil_mode'];
        sum = emit(
          'Conv',
          [x, constant(floatTensor(`${out}/ones`, [shape[1]!, 1, ...kernel], new Float32Array(shape[1]! * n).fill(1)))],
          attrs,
        );
      }
      const scaled = emit('Mul', [sum, fscalar(`${out}/reciprocal`, poolReciprocal(n) * 2 ** -POOL_RECIPROCAL_BITS)]);
      const fSum = POOL_RECIPROCAL_BITS + program.fracOf[node.inputs[0]!]!;
      rename.set(out, qdq(halfUp(scaled, fSum, f.frac, out), f, p.out.lo, p.out.hi, out));
    } else if (node.op === 'LeakyRelu' || node.op === 'PRelu') {
      // The slope on its grid; the negative branch lands on the grid f_x + SLOPE_FRAC.
      const x = t(node.inputs[0]!);
      const slopes = program.constants[node.inputs[1] ?? ''];
      const act =
        node.op === 'LeakyRelu'
          ? emit('LeakyRelu', [x], { alpha: { kind: 'float', value: leakySlope(node) } })
          : emit('PRelu', [
              x,
              constant(
                floatTensor(
                  `${out}/slope`,
                  slopes!.dims,
                  Float32Array.from(slopes!.data, (a) => a * 2 ** -SLOPE_FRAC),
                ),
              ),
            ]);
      const fGrid = program.fracOf[node.inputs[0]!]! + SLOPE_FRAC;
      rename.set(out, qdq(halfUp(act, fGrid, f.frac, out), f, p.out.lo, p.out.hi, out));
    } else if (node.op === 'Clip') {
      const lo = p.attrs['min']?.kind === 'float' ? p.attrs['min'].value : -3.4e38;
      const hi = p.attrs['max']?.kind === 'float' ? p.attrs['max'].value : 3.4e38;
      rename.set(out, emit('Clip', [t(node.inputs[0]!), fscalar(`${out}/min`, lo), fscalar(`${out}/max`, hi)]));
    } else {
      // Data movement, MaxPool, Relu: float semantics equal the integer ones on grid values.
      const extra = node.inputs.slice(1).map((name) => {
        const init = plan.graph.initializers.get(name);
        if (!init) return name === '' ? name : t(name);
        let given = modelConstants.get(name);
        if (given === undefined) modelConstants.set(name, (given = constant(init)));
        return given;
      });
      // Before a Pad, Reshape, Transpose or MaxPool, an exact Max(x, lowest float) keeps a
      // DequantizeLinear from feeding it directly: onnxruntime's QDQ propagation would insert a
      // QuantizeLinear after it (or after the MaxPool that follows) with an int8 output type and
      // a uint8 default zero point, and refuse the model (onnxruntime-node 1.30; the zoo's
      // padded_leaky, and a MaxPool of an unsigned input before a LeakyRelu of negative slope).
      // The bound is the input's own lowest value (its clamp), which keeps the Max exact and the
      // model's constants within what FxPQ's validator reads back (`fxpq evaluate` of the export).
      const x = t(node.inputs[0]!);
      const barrier = ['Pad', 'Reshape', 'Transpose', 'MaxPool'].includes(node.op);
      const input = barrier ? emit('Max', [x, fscalar(`${out}/lowest`, lowestOf(node.inputs[0]!))]) : x;
      rename.set(out, emit(node.op, [input, ...extra], node.attrs));
    }
  }
  const logits = t(program.output.name);
  nodes.push({ name: fresh('qdq/output'), op: 'Identity', inputs: [logits], outputs: ['logits'], attrs: {} });
  const inputShape = plan.graph.inputs[0]!.shape;
  return {
    name: `${plan.graph.name}-fxpq-qdq`,
    opset: 21,
    irVersion: 10,
    producer: 'fxpq',
    inputs: [
      { name: 'input', dataType: DataType.FLOAT, shape: inputShape, dimParams: plan.graph.inputs[0]!.dimParams },
    ],
    outputs: [
      {
        name: 'logits',
        dataType: DataType.FLOAT,
        shape: [inputShape[0]!, ...program.output.shape.slice(1)],
        dimParams: plan.graph.inputs[0]!.dimParams,
      },
    ],
    nodes,
    initializers: inits,
    metadata,
  };
}

/** `metadata`: what the model needs to be evaluated alone (the run's preprocessing and class order). */
export function writeQdqModel(
  plan: QuantPlan,
  program: IntProgram,
  formatOf: (tensor: string) => Format,
  metadata: Record<string, string> = {},
): Uint8Array {
  return writeOnnx(buildQdqGraph(plan, program, formatOf, metadata));
}
