/**
 * What the engine benchmarks share: a fixture model at uniform 8 bits with unit ranges and
 * synthetic inputs in [-1, 1] (throughput does not depend on the values), and its integers.
 */
import { formatFor } from '../native-workers/engine/fixedpoint/assignment.js';
import { quantizeArray } from '../native-workers/engine/fixedpoint/format.js';
import { buildPlan, type Assignment, type QuantPlan } from '../native-workers/engine/fixedpoint/plan.js';
import { loadModelFile, type LoadedModel } from '../services/models.js';

export interface SyntheticModel {
  model: LoadedModel;
  plan: QuantPlan;
  assignment: Assignment;
  /** Values per image. */
  size: number;
  /** `batch` images of synthetic floats, and the same quantized to the input format. */
  x: Float32Array;
  ints: Int32Array;
}

export async function syntheticModel(path: string, batch: number): Promise<SyntheticModel> {
  const model = await loadModelFile(path);
  const plan = buildPlan(model.canonical, { inputNonNegative: false });
  const assignment = Object.fromEntries(plan.structures.map((s) => [s.id, formatFor(s, 8, 4)]));
  const size = plan.shapes
    .get(plan.inputName)!
    .slice(1)
    .reduce((a, b) => a * b, 1);
  const x = new Float32Array(batch * size).map((_, i) => Math.sin(i));
  const ints = quantizeArray(x, assignment[plan.activationOf.get(plan.inputName)!]!);
  return { model, plan, assignment, size, x, ints };
}
