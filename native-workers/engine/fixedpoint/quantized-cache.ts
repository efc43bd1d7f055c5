/**
 * Quantized weights and biases per (structure, format, values): computed once, reused by
 * every evaluation. Bias correction replaces a bias's float values; `setOverrides` says
 * which, and the override's key becomes part of the cache key.
 */
import { toFloat32 } from '../ir/graph.js';
import { quantizeArray, type Format } from './format.js';
import type { QuantPlan } from './plan.js';

/** Corrected float values per bias tensor name. */
export type ParameterOverrides = Record<string, number[]>;

export class QuantizedCache {
  private readonly entries = new Map<string, { key: string; value: Int32Array }>();
  private overrides = new Map<string, { key: string; values: Float32Array }>();

  constructor(private readonly plan: QuantPlan) {}

  setOverrides(overrides: ParameterOverrides): void {
    const next = new Map<string, { key: string; values: Float32Array }>();
    for (const [tensor, values] of Object.entries(overrides)) {
      const key = values.join(',');
      const previous = this.overrides.get(tensor);
      next.set(tensor, previous?.key === key ? previous : { key, values: Float32Array.from(values) });
    }
    this.overrides = next;
  }

  /** The values' version of a structure: '' for the model's own values. */
  version(id: string): string {
    return this.overrides.get(this.plan.byId.get(id)!.tensor)?.key ?? '';
  }

  get(id: string, f: Format): Int32Array {
    const s = this.plan.byId.get(id)!;
    const override = this.overrides.get(s.tensor);
    const key = `${f.bits},${f.frac},${f.signed}|${override?.key ?? ''}`;
    const hit = this.entries.get(id);
    if (hit?.key === key) return hit.value;
    const values = override?.values ?? toFloat32(this.plan.graph.initializers.get(s.tensor)!);
    const value = quantizeArray(values, f);
    this.entries.set(id, { key, value });
    return value;
  }
}
