/**
 * Quantized weights and biases per (structure, format, values): computed once, reused by
 * every evaluation. Bias correction replaces a bias's float values; `setOverrides` says
 * which, and the override's key becomes part of the cache key. Optimized rounding
 * (optimized-rounding.ts) gives some weight structures other integers in some formats;
 * `setRounded` names the store, which wins over rounding to nearest wherever it has an entry.
 */
import { toFloat32 } from '../ir/graph.js';
import { quantizeArray, type Format } from './format.js';
import type { QuantPlan } from './plan.js';
import type { RoundedWeights } from './optimized-rounding.js';

/** Corrected float values per bias tensor name. */
export type ParameterOverrides = Record<string, number[]>;

export class QuantizedCache {
  private readonly entries = new Map<string, { key: string; value: Int32Array }>();
  private overrides = new Map<string, { key: string; values: Float32Array }>();
  private rounded?: RoundedWeights;

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

  /** Weights of optimized rounding, per structure and format (undefined: rounding to nearest everywhere). */
  setRounded(rounded: RoundedWeights | undefined): void {
    this.rounded = rounded;
  }

  /**
   * The values' version of a structure in format `f`: '' for the model's own values rounded to
   * nearest. `overrides` names other corrected biases than those set (the same key as theirs).
   */
  version(id: string, f?: Format, overrides?: ParameterOverrides): string {
    const tensor = this.plan.byId.get(id)!.tensor;
    const override = overrides ? (overrides[tensor]?.join(',') ?? '') : (this.overrides.get(tensor)?.key ?? '');
    return f && this.rounded?.has(id, f) ? `${override}|optimized` : override;
  }

  get(id: string, f: Format): Int32Array {
    const optimized = this.rounded?.get(id, f);
    if (optimized) return optimized;
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
