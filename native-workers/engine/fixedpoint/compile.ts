/** Compile a plan and an assignment into the integer program (spec §2). */
import { FxpqError } from '../errors.js';
import { attrInts, tensorToNumbers, toFloat32 } from '../ir/graph.js';
import { quantizeSlopes, SLOPE_FRAC } from '../ops/leaky-relu.js';
import { operatorModule } from '../ops/registry.js';
import { clipLimits } from '../ops/activation.js';
import { checkAccumulator } from './kernel-util.js';
import { formatRange, MAX_BITS, MIN_BITS, POOL_RECIPROCAL_BITS, rshiftRound, type Format } from './format.js';
import { outputBounds, structureId, type Assignment, type QuantPlan } from './plan.js';
import type { IntProgram, ProgramConstant, ProgramNode } from './program.js';
import { QuantizedCache, type ParameterOverrides } from './quantized-cache.js';
import type { RoundedWeights } from './optimized-rounding.js';

/** The most a shift may move: C leaves shifts by the width of an int64 or more undefined. */
export const MAX_SHIFT = 62;

export function formatOf(plan: QuantPlan, assignment: Assignment, id: string): Format {
  const f = assignment[id];
  if (!f) throw new FxpqError(`The format assignment has no format for ${id}.`, 'invalid-model');
  // Formats come from a run's config.json too, which may be damaged or edited by hand.
  const fine =
    Number.isInteger(f.bits) &&
    f.bits >= MIN_BITS &&
    f.bits <= MAX_BITS &&
    !(f.bits === MAX_BITS && !f.signed) && // a 32-bit unsigned value does not fit the C int32 storage
    Number.isInteger(f.frac) &&
    Math.abs(f.frac) <= MAX_SHIFT;
  if (!fine)
    throw new FxpqError(
      `The format of ${id} (${f.bits} bits, ${f.signed ? 'signed' : 'unsigned'}, fractional length ${f.frac}) is outside what the integer code runs: ${MIN_BITS} to ${MAX_BITS} bits (31 unsigned), fractional lengths within +-${MAX_SHIFT}.`,
      'invalid-model',
    );
  return f;
}

/**
 * The sums of Add and the pools must stay exact like the linear layers' (float64 in the executor,
 * int64 in the C): below 2^52 after alignment, with every shift within MAX_SHIFT.
 */
function checkExactSums(
  plan: QuantPlan,
  node: QuantPlan['nodes'][number],
  fmt: (t: string) => Format,
  out: Format,
): void {
  const tooWide = (bits: number, what: string): void => {
    if (bits > 52)
      throw new FxpqError(
        `Layer ${node.name}: the ${what} needs ${bits} bits, more than the 52 that stay exact; use closer or shorter formats.`,
        'invalid-model',
      );
  };
  if (node.op === 'Add') {
    const [a, b] = node.inputs.map(fmt) as [Format, Format];
    const F = Math.max(a.frac, b.frac);
    for (const x of [a, b]) tooWide(x.bits + (F - x.frac) + 1, 'aligned sum of its inputs');
    checkShift(node.name, 'rounding of its sum', F - out.frac);
  } else if (node.op === 'AveragePool' || node.op === 'GlobalAveragePool') {
    const x = fmt(node.inputs[0]!);
    const shape = plan.shapes.get(node.inputs[0]!)!;
    const n =
      node.op === 'GlobalAveragePool'
        ? shape.slice(2).reduce((p, d) => p * d, 1)
        : attrInts(node, 'kernel_shape', []).reduce((p, d) => p * d, 1);
    tooWide(x.bits + Math.ceil(Math.log2(Math.max(n, 1))) + POOL_RECIPROCAL_BITS, 'window sum times its reciprocal');
    checkShift(node.name, 'rounding of its average', POOL_RECIPROCAL_BITS + x.frac - out.frac);
  }
}

function checkShift(node: string, what: string, shift: number): void {
  if (Math.abs(shift) > MAX_SHIFT)
    throw new FxpqError(
      `Layer ${node}: the ${what} needs a shift of ${shift} bits, more than the ${MAX_SHIFT} the integer code allows; its formats are too far apart.`,
      'invalid-model',
    );
}

export function compileProgram(
  plan: QuantPlan,
  assignment: Assignment,
  overrides: ParameterOverrides = {},
  cache = new QuantizedCache(plan),
  rounded?: RoundedWeights,
): IntProgram {
  cache.setOverrides(overrides);
  if (rounded) cache.setRounded(rounded);
  const g = plan.graph;
  // Keyed by tensor names: no prototype, whatever the names (canonicalization also renames __proto__ and the like).
  const fracOf: Record<string, number> = Object.create(null) as Record<string, number>;
  const fmtOfTensor = (t: string): Format => formatOf(plan, assignment, plan.activationOf.get(t)!);
  for (const t of plan.activationOf.keys()) fracOf[t] = fmtOfTensor(t).frac;
  const constants: Record<string, ProgramConstant> = Object.create(null) as Record<string, ProgramConstant>;
  const nodes: ProgramNode[] = [];
  for (const node of plan.nodes) {
    const module = operatorModule(node.op)!;
    const rules = module.fixedPoint!;
    const x = node.inputs[0]!;
    const attrs = { ...node.attrs };
    if (rules.weightInput !== undefined) {
      const wName = node.inputs[rules.weightInput]!;
      const wId = structureId('W', wName);
      const wf = formatOf(plan, assignment, wId);
      const w = g.initializers.get(wName)!;
      constants[wName] = { dims: w.dims, data: cache.get(wId, wf), frac: wf.frac, structure: wId };
      const fanIn =
        node.op === 'Conv'
          ? w.dims.slice(1).reduce((a, b) => a * b, 1)
          : node.op === 'Gemm' && node.attrs['transB']?.kind === 'int' && node.attrs['transB'].value === 1
            ? w.dims[1]!
            : w.dims[0]!;
      checkAccumulator(node.name, wf.bits, fmtOfTensor(x).bits, fanIn);
      checkShift(node.name, 'requantization of its sums', wf.frac + fracOf[x]! - fmtOfTensor(node.outputs[0]!).frac);
      const bName = rules.biasInput !== undefined ? node.inputs[rules.biasInput] : undefined;
      if (bName) {
        const bId = structureId('B', bName);
        const bf = formatOf(plan, assignment, bId);
        const m = cache.get(bId, bf);
        const shift = bf.frac - (wf.frac + fracOf[x]!);
        checkShift(node.name, 'alignment of its bias', shift);
        constants[bName] = {
          dims: g.initializers.get(bName)!.dims,
          data: m,
          frac: bf.frac,
          aligned: Float64Array.from(m, (v) => rshiftRound(v, shift)),
          structure: bId,
        };
      }
    }
    for (const name of node.inputs) {
      const t = g.initializers.get(name);
      if (
        t &&
        !constants[name] &&
        (node.op === 'Reshape' || node.op === 'Slice' || (node.op === 'Pad' && name === node.inputs[1]))
      )
        constants[name] = { dims: t.dims, data: Int32Array.from(tensorToNumbers(t)) };
      if (t && !constants[name] && node.op === 'PRelu')
        constants[name] = { dims: t.dims, data: quantizeSlopes(toFloat32(t)), frac: SLOPE_FRAC };
    }
    if (node.op === 'Clip') {
      const { min, max } = clipLimits(node, g);
      attrs['min'] = { kind: 'float', value: min };
      attrs['max'] = { kind: 'float', value: max };
    }
    const out = node.outputs[0]!;
    const f = fmtOfTensor(out);
    checkExactSums(plan, node, fmtOfTensor, f);
    const bounds = module.formatRole === 'requantize' ? outputBounds(node, f) : formatRange(f);
    nodes.push({
      name: node.name,
      op: node.op,
      attrs,
      ...(node.activation ? { activation: node.activation } : {}),
      inputs: node.inputs,
      output: out,
      outShape: plan.shapes.get(out)!,
      out: { frac: f.frac, bits: f.bits, signed: f.signed, ...bounds },
    });
  }
  const inputId = plan.activationOf.get(plan.inputName)!;
  return {
    input: {
      name: plan.inputName,
      shape: plan.shapes.get(plan.inputName)!,
      format: formatOf(plan, assignment, inputId),
      structure: inputId,
    },
    output: { name: plan.logitsTensor, frac: fracOf[plan.logitsTensor]!, shape: plan.shapes.get(plan.logitsTensor)! },
    nodes,
    constants,
    fracOf,
  };
}
