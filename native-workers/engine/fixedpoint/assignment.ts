/** Format assignments: the range rule (spec §1), uniform assignments, and the memory metric (spec §4). */
import { toFloat32 } from '../ir/graph.js';
import { initialFrac, type Format } from './format.js';
import type { Assignment, DataStructure, QuantPlan } from './plan.js';

/** max|x| of every data structure: weights and biases from their values, activations from statistics. */
export function structureRanges(plan: QuantPlan, activationMaxAbs: (tensor: string) => number): Map<string, number> {
  const ranges = new Map<string, number>();
  for (const s of plan.structures) {
    if (s.kind === 'A') ranges.set(s.id, activationMaxAbs(s.tensor));
    else {
      const data = toFloat32(plan.graph.initializers.get(s.tensor)!);
      let m = 0;
      for (let i = 0; i < data.length; i++) m = Math.max(m, Math.abs(data[i]!));
      ranges.set(s.id, m);
    }
  }
  return ranges;
}

export function formatFor(s: DataStructure, bits: number, maxAbs: number): Format {
  return { bits, frac: initialFrac(bits, s.signed, maxAbs), signed: s.signed };
}

/** Every data structure at `bits` with the range rule (`quantize --uniform B`). */
export function uniformAssignment(plan: QuantPlan, bits: number, ranges: Map<string, number>): Assignment {
  const a: Assignment = {};
  for (const s of plan.structures) a[s.id] = formatFor(s, bits, ranges.get(s.id)!);
  return a;
}

export interface MemoryReport {
  fp32Bits: number;
  quantBits: number;
  reduction: number;
  /** Over weights and biases (the parameters). */
  weightsReduction: number;
  avgBitsWeights: number;
  avgBitsActivations: number;
}

export function memoryReport(plan: QuantPlan, assignment: Assignment): MemoryReport {
  let fp = 0;
  let q = 0;
  let paramFp = 0;
  let paramQ = 0;
  let wBits = 0;
  let wCount = 0;
  let aBits = 0;
  let aCount = 0;
  for (const s of plan.structures) {
    const b = assignment[s.id]!.bits;
    fp += 32 * s.elements;
    q += b * s.elements;
    if (s.kind !== 'A') {
      paramFp += 32 * s.elements;
      paramQ += b * s.elements;
    }
    if (s.kind === 'W') {
      wBits += b * s.elements;
      wCount += s.elements;
    } else if (s.kind === 'A') {
      aBits += b * s.elements;
      aCount += s.elements;
    }
  }
  return {
    fp32Bits: fp,
    quantBits: q,
    reduction: fp / q,
    weightsReduction: paramFp / paramQ,
    avgBitsWeights: wBits / Math.max(wCount, 1),
    avgBitsActivations: aBits / Math.max(aCount, 1),
  };
}
