import { describe, expect, it } from 'vitest';
import { parseClassList } from '../../native-workers/engine/data/classes.js';
import { AccuracyMeter, topK } from '../../native-workers/engine/data/metrics.js';
import { stratifiedSplit } from '../../native-workers/engine/data/split.js';

describe('class lists', () => {
  it('reads ids, id<TAB>name, and index<TAB>id<TAB>name lines', () => {
    expect(parseClassList('cat\ndog\n', 'a.txt')).toMatchObject({ ids: ['cat', 'dog'], names: ['cat', 'dog'] });
    expect(parseClassList('n1\tcat\nn2\tdog', 'b.txt').names).toEqual(['cat', 'dog']);
    expect(parseClassList('0\tn1\tgreat white shark\n1\tn2\tdog\n', 'c.tsv')).toMatchObject({
      ids: ['n1', 'n2'],
      names: ['great white shark', 'dog'],
    });
  });

  it('explains wrong files', () => {
    expect(() => parseClassList('', 'e.txt')).toThrowError(/e\.txt holds no class names/);
    expect(() => parseClassList('a\nb\na\n', 'd.txt')).toThrowError(/d\.txt lists class a twice/);
    expect(() => parseClassList('1\tn1\tx\n0\tn2\ty\n', 'o.tsv')).toThrowError(
      /o\.tsv, line 1: the index is 1, expected 0/,
    );
  });
});

describe('accuracy', () => {
  it('breaks top-1 ties toward the lower class index', () => {
    expect(topK(Float32Array.of(1, 3, 3, 0), 2)).toEqual([1, 2]);
    expect(topK(Float32Array.of(5, 5, 5), 1)).toEqual([0]);
  });

  it('counts top-1, top-5 and per-class accuracy', () => {
    const m = new AccuracyMeter(6);
    const logits = Float32Array.of(
      ...[9, 1, 0, 0, 0, 0], // label 0: top-1
      ...[9, 8, 7, 6, 5, 0], // label 4: top-5 only
      ...[9, 8, 7, 6, 5, 0], // label 5: neither
    );
    m.add(logits, [0, 4, 5]);
    const r = m.result();
    expect(r.top1).toBeCloseTo(1 / 3);
    expect(r.top5).toBeCloseTo(2 / 3);
    expect(r.perClass[0]).toEqual({ seen: 1, top1: 1 });
    expect(r.perClass[4]).toEqual({ seen: 1, top1: 0 });
  });
});

describe('stratified split', () => {
  const labels = [...Array(60).fill(0), ...Array(30).fill(1), ...Array(10).fill(2)] as number[];

  it('is disjoint, proportional per class, and reproducible from its seed', () => {
    const s = stratifiedSplit(labels, 20, null, 7);
    expect(s.calib.length).toBe(20);
    expect(s.eval.length).toBe(80);
    expect(new Set([...s.calib, ...s.eval]).size).toBe(100);
    const perClass = [0, 1, 2].map((c) => s.calib.filter((i) => labels[i] === c).length);
    expect(perClass).toEqual([12, 6, 2]);
    expect(stratifiedSplit(labels, 20, null, 7)).toEqual(s);
    expect(stratifiedSplit(labels, 20, null, 8).calib).not.toEqual(s.calib);
  });

  it('caps the evaluation split when asked', () => {
    const s = stratifiedSplit(labels, 10, 30, 1);
    expect(s.eval.length).toBe(30);
    expect(s.calib.some((i) => s.eval.includes(i))).toBe(false);
  });
});
