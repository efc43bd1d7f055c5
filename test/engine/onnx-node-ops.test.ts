/**
 * Float semantics of the integer kernels at 16 bits against ONNX's own operator test data
 * (Debian libonnx-testdata, node/ folder): each single-operator model runs through import,
 * canonicalization, planning, compilation and the integer executor; its dequantized output
 * must equal the reference output within the 16-bit quantization error.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { TensorProtoSchema } from 'onnx-buf';
import { describe, expect, it } from 'vitest';
import { decodeTensor, readOnnx } from '../../native-workers/engine/onnx/onnx-format.js';
import { canonicalize } from '../../native-workers/engine/passes/canonicalize.js';
import { buildPlan } from '../../native-workers/engine/fixedpoint/plan.js';
import { formatFor } from '../../native-workers/engine/fixedpoint/assignment.js';
import { compileProgram } from '../../native-workers/engine/fixedpoint/compile.js';
import { runImage } from '../../native-workers/engine/fixedpoint/int-executor.js';
import { quantizeArray } from '../../native-workers/engine/fixedpoint/format.js';
import { toFloat32, type Tensor } from '../../native-workers/engine/ir/graph.js';
import { add } from '../../native-workers/engine/ops/add.js';
import { concat } from '../../native-workers/engine/ops/concat.js';
import type { ProgramNode } from '../../native-workers/engine/fixedpoint/program.js';

const ROOT = process.env['ONNX_TESTDATA'] ?? '/usr/share/libonnx-testdata/data/node';
const BITS = 16;

function readPb(path: string): Tensor {
  return decodeTensor(fromBinary(TensorProtoSchema, new Uint8Array(readFileSync(path))), path);
}

const maxAbs = (a: Float32Array): number => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/**
 * Tolerance: two output steps plus 2^-14 of the output range (16-bit inputs and weights over
 * small fan-ins); average pools add the spec's reciprocal error |R n / 2^16 - 1| <= n / 2^17.
 */
function expectClose(actual: Float32Array, expected: Float32Array, outFrac: number, relative = 2 ** -14): void {
  expect(actual.length).toBe(expected.length);
  const tol = 2 * 2 ** -outFrac + maxAbs(expected) * relative;
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst).toBeLessThanOrEqual(tol);
}

function runNodeTest(name: string): void {
  const dir = join(ROOT, name);
  const bytes = readFileSync(join(dir, 'model.onnx'));
  // A few reference models declare opset 1 (GlobalAveragePool, unchanged since): read them as opset 7.
  const graph = readOnnx(bytes, name, { minOpset: 1 });
  const data = join(dir, 'test_data_set_0');
  // Inputs after the first become constants: FxPQ quantizes layers with constant parameters.
  graph.inputs.forEach((v, i) => {
    if (i === 0) return;
    const t = readPb(join(data, `input_${i}.pb`));
    graph.initializers.set(v.name, { ...t, name: v.name });
  });
  graph.inputs = graph.inputs.slice(0, 1);
  const x = toFloat32(readPb(join(data, 'input_0.pb')));
  const expected = toFloat32(readPb(join(data, 'output_0.pb')));
  const canonical = canonicalize(graph, { source: name });
  const plan = buildPlan(canonical, { inputNonNegative: false });
  const assignment = Object.fromEntries(
    plan.structures.map((s) => {
      const range =
        s.tensor === plan.inputName
          ? maxAbs(x)
          : s.kind === 'A'
            ? maxAbs(expected)
            : maxAbs(toFloat32(canonical.initializers.get(s.tensor)!));
      return [s.id, formatFor(s, BITS, range)];
    }),
  );
  const program = compileProgram(plan, assignment);
  const inputFormat = assignment[plan.activationOf.get(plan.inputName)!]!;
  const out = runImage(program, quantizeArray(x, inputFormat));
  const pool = graph.nodes.find((n) => n.op === 'AveragePool' || n.op === 'GlobalAveragePool');
  const kernel = pool?.attrs['kernel_shape'];
  const window = !pool
    ? 0
    : kernel?.kind === 'ints'
      ? kernel.value.reduce((a, b) => a * b, 1)
      : x.length / expected.length;
  expectClose(
    Float32Array.from(out, (m) => m * 2 ** -program.output.frac),
    expected,
    program.output.frac,
    2 ** -14 + window * 2 ** -17,
  );
}

const PIPELINE_TESTS = [
  'test_conv_with_autopad_same',
  'test_conv_with_strides_and_asymmetric_padding',
  'test_conv_with_strides_no_padding',
  'test_conv_with_strides_padding',
  'test_gemm_alpha',
  'test_gemm_beta',
  'test_gemm_default_no_bias',
  'test_gemm_default_scalar_bias',
  'test_gemm_default_single_elem_vector_bias',
  'test_gemm_default_vector_bias',
  'test_gemm_default_zero_bias',
  'test_gemm_transposeB',
  'test_matmul_2d',
  'test_maxpool_2d_default',
  'test_maxpool_2d_pads',
  'test_maxpool_2d_precomputed_strides',
  'test_maxpool_2d_same_upper',
  'test_maxpool_2d_same_lower',
  'test_maxpool_2d_dilations',
  'test_averagepool_2d_default',
  'test_averagepool_2d_precomputed_strides',
  'test_averagepool_2d_pads_count_include_pad',
  'test_averagepool_2d_precomputed_pads_count_include_pad',
  'test_globalaveragepool',
  'test_globalaveragepool_precomputed',
  'test_flatten_axis1',
  'test_flatten_default_axis',
];

describe.skipIf(!existsSync(ROOT))('integer kernels against ONNX operator test data at 16 bits', () => {
  it.each(PIPELINE_TESTS)('%s', (name) => runNodeTest(name));

  /** Two-activation operators: the kernel itself on the reference inputs. */
  function kernelCase(name: string, op: 'Add' | 'Concat'): void {
    const dir = join(ROOT, name);
    const graph = readOnnx(readFileSync(join(dir, 'model.onnx')), name);
    const data = join(dir, 'test_data_set_0');
    const inputs = graph.inputs.map((_, i) => toFloat32(readPb(join(data, `input_${i}.pb`))));
    const shapes = graph.inputs.map((v) => v.shape);
    const expected = toFloat32(readPb(join(data, 'output_0.pb')));
    const fy = formatFor({ signed: true } as never, BITS, maxAbs(expected));
    const ints = inputs.map((x, i) => {
      const f = formatFor({ signed: true } as never, BITS, maxAbs(x) * (i + 1)); // different fracs on purpose
      return { data: quantizeArray(x, f), shape: shapes[i]!, frac: f.frac };
    });
    const node = {
      name,
      op,
      attrs: graph.nodes[0]!.attrs,
      inputs: graph.inputs.map((v) => v.name),
      output: 'y',
      outShape: graph.outputs[0]!.shape,
      out: { frac: fy.frac, lo: -(2 ** 15), hi: 2 ** 15 - 1, bits: 16, signed: true },
    } as ProgramNode;
    const module = op === 'Add' ? add : concat;
    const out = module.fixedPoint!.runInt(node, ints, null as never);
    expectClose(
      Float32Array.from(out, (m) => m * 2 ** -fy.frac),
      expected,
      fy.frac,
    );
  }

  it.each(['test_add'])('%s (kernel)', (name) => kernelCase(name, 'Add'));
  it.each([
    'test_concat_2d_axis_0',
    'test_concat_2d_axis_1',
    'test_concat_3d_axis_1',
    'test_concat_3d_axis_2',
    'test_concat_3d_axis_negative_1',
  ])('%s (kernel)', (name) => kernelCase(name, 'Concat'));
});
