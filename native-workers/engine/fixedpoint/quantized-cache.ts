/** Quantized weights and biases per (structure, format): computed once, reused by every evaluation. */
import { toFloat32 } from '../ir/graph.js';
import { quantizeArray, type Format } from './format.js';
import type { QuantPlan } from './plan.js';

export class QuantizedCache {
  private readonly entries = new Map<string, { key: string; value: Int32Array }>();

  constructor(private readonly plan: QuantPlan) {}

  get(id: string, f: Format): Int32Array {
    const key = `${f.bits},${f.frac},${f.signed}`;
    const hit = this.entries.get(id);
    if (hit?.key === key) return hit.value;
    const s = this.plan.byId.get(id)!;
    const value = quantizeArray(toFloat32(this.plan.graph.initializers.get(s.tensor)!), f);
    this.entries.set(id, { key, value });
    return value;
  }
}
