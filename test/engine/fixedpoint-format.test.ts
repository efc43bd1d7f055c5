import { describe, expect, it } from 'vitest';
import {
  formatRange,
  initialFrac,
  quantizeArray,
  quantizeValue,
  rshiftRound,
} from '../../native-workers/engine/fixedpoint/format.js';
import { requantizeInto } from '../../native-workers/engine/fixedpoint/kernel-util.js';
import { add } from '../../native-workers/engine/ops/add.js';
import type { ProgramNode } from '../../native-workers/engine/fixedpoint/program.js';

describe('dynamic fixed point by hand (spec §1)', () => {
  it('rounds half up, also for negative values and ties', () => {
    const f = { bits: 8, frac: 1, signed: true };
    // x * 2 = 2.5 -> 3; -2.5 -> -2 (half up, not away from zero); -2.6 -> -3; 2.49 -> 2
    expect([1.25, -1.25, -1.3, 1.245].map((x) => quantizeValue(x, f))).toEqual([3, -2, -3, 2]);
    expect(rshiftRound(5, 1)).toBe(3); // 2.5 -> 3
    expect(rshiftRound(-5, 1)).toBe(-2); // -2.5 -> -2
    expect(rshiftRound(-7, 2)).toBe(-2); // -1.75 -> -2
    expect(rshiftRound(6, 2)).toBe(2); // 1.5 -> 2
    expect(rshiftRound(-6, 2)).toBe(-1); // -1.5 -> -1
  });

  it('shifts left for r <= 0 (bias shifts both ways)', () => {
    expect(rshiftRound(3, 0)).toBe(3);
    expect(rshiftRound(3, -4)).toBe(48);
    expect(rshiftRound(-3, -2)).toBe(-12);
    // A bias with f_b = 10 aligned to an accumulator with f_w + f_x = 7: right shift by 3 with rounding.
    expect(rshiftRound(1234, 10 - 7)).toBe(154); // 154.25 -> 154
    expect(rshiftRound(1236, 3)).toBe(155); // 154.5 -> 155
    // f_b = 4 to f_acc = 9: exact left shift by 5.
    expect(rshiftRound(-9, 4 - 9)).toBe(-288);
  });

  it('saturates at the word length, signed and unsigned', () => {
    expect(formatRange({ bits: 4, signed: true })).toEqual({ lo: -8, hi: 7 });
    expect(formatRange({ bits: 4, signed: false })).toEqual({ lo: 0, hi: 15 });
    expect(quantizeValue(100, { bits: 4, frac: 0, signed: true })).toBe(7);
    expect(quantizeValue(-100, { bits: 4, frac: 0, signed: true })).toBe(-8);
    expect(quantizeValue(-0.7, { bits: 4, frac: 0, signed: false })).toBe(0);
    expect(quantizeValue(15.4, { bits: 4, frac: 0, signed: false })).toBe(15);
    expect(Array.from(quantizeArray([0.5, 7.6, -3], { bits: 3, frac: 0, signed: false }))).toEqual([1, 7, 0]);
  });

  it('handles a negative frac (steps of 2^k) and frac larger than bits (tiny values)', () => {
    // frac -2: steps of 4. 10 / 4 = 2.5 -> 3 (= 12); 4 bits signed saturates at 7 (= 28).
    expect(quantizeValue(10, { bits: 4, frac: -2, signed: true })).toBe(3);
    expect(quantizeValue(1000, { bits: 4, frac: -2, signed: true })).toBe(7);
    // frac 10 with 4 bits: steps of 1/1024, range [-8, 7] / 1024.
    expect(quantizeValue(0.0049, { bits: 4, frac: 10, signed: true })).toBe(5);
    expect(quantizeValue(0.01, { bits: 4, frac: 10, signed: true })).toBe(7);
  });

  it('picks f0 = b - sigma - ceil(log2 max|x|), with no clipping', () => {
    expect(initialFrac(8, true, 1.7)).toBe(6); // 2^1 covers 1.7: 8 - 1 - 1
    expect(initialFrac(8, false, 1.7)).toBe(7);
    expect(initialFrac(8, true, 100)).toBe(0); // ceil(log2 100) = 7
    expect(initialFrac(8, true, 300)).toBe(-2); // negative frac for large ranges
    expect(initialFrac(4, true, 0.001)).toBe(12); // frac larger than bits for tiny ranges
    expect(initialFrac(8, true, 0)).toBe(7);
    // The largest value is representable within one step (the top code is 2^(b-1) - 1).
    const f = { bits: 8, frac: initialFrac(8, true, 1.7), signed: true };
    expect(Math.abs(quantizeValue(1.7, f) / 2 ** f.frac - 1.7)).toBeLessThanOrEqual(2 ** -f.frac / 2);
  });

  it('requantizes an accumulator with one rounding and a fused-Relu clamp', () => {
    const out = new Int32Array(4);
    requantizeInto(Float64Array.of(37, -37, 40, 1000), 3, 0, 100, out); // /8: 4.625->5, -4.625->0 (relu), 5, 125->100
    expect(Array.from(out)).toEqual([5, 0, 5, 100]);
    requantizeInto(Float64Array.of(3, -2), -2, -128, 127, out); // left shift by 2
    expect(Array.from(out.subarray(0, 2))).toEqual([12, -8]);
  });

  it('adds on the finer grid, then rounds once', () => {
    const node = {
      name: 'a',
      op: 'Add',
      attrs: {},
      inputs: ['x', 'y'],
      output: 'z',
      outShape: [1, 3],
      out: { frac: 1, lo: -128, hi: 127, bits: 8, signed: true },
    } as ProgramNode;
    // x = [3, -3, 1] * 2^-2 = [0.75, -0.75, 0.25]; y = [1, 1, 0] * 2^-1 = [0.5, 0.5, 0]
    // sums on grid 2^-2: [5, -1, 1] -> to 2^-1: 2.5 -> 3, -0.5 -> 0, 0.5 -> 1
    const z = add.fixedPoint!.runInt(
      node,
      [
        { data: Int32Array.of(3, -3, 1), shape: [1, 3], frac: 2 },
        { data: Int32Array.of(1, 1, 0), shape: [1, 3], frac: 1 },
      ],
      null as never,
    );
    expect(Array.from(z)).toEqual([3, 0, 1]);
  });
});
