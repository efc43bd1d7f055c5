/**
 * Kept activations (runtime/activation-cache.ts): a candidate that reads the state's kept
 * activations and runs only the layers after its change gives the whole graph's logits bit for
 * bit, through a search-like sequence of one-structure changes, accepted or not, bias
 * corrections and layer reads; a search ends the same with and without them.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SimRunner } from '../../native-workers/engine/runtime/sim-runner.js';
import { ActivationCache, TensorKeys } from '../../native-workers/engine/runtime/activation-cache.js';
import { formatFor } from '../../native-workers/engine/fixedpoint/assignment.js';
import type { Assignment } from '../../native-workers/engine/fixedpoint/plan.js';
import { seededRandom } from '../../native-workers/engine/data/split.js';
import { quantize } from '../../services/quantize.js';
import { closePools } from '../../services/pool.js';
import { smallSearch } from '../helpers/fixtures.js';
import { quantSetup, uniform, type QuantSetup } from '../helpers/quant-setup.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-kept-'));
const cacheDir = join(tmp, 'cache');
afterAll(() => closePools());

const relu = (name: string, inputs: string[], outputs: string[]) => ({ name, op: 'Relu', inputs, outputs, attrs: {} });

describe('TensorKeys', () => {
  const nodes = [relu('a', ['x'], ['t1']), relu('b', ['t1', 'w1'], ['t2']), relu('c', ['t2', 'w2', 'k'], ['y'])];
  const keys = new TensorKeys(nodes, 'x', new Set(['w1', 'w2']));
  const of = (w1: string, w2: string, input = '8,0') => keys.keys((f) => (f === 'w1' ? w1 : w2), input);

  it('gives a tensor the same key exactly when what it depends on is the same', () => {
    const base = of('p', 'q');
    const later = of('p', 'q2');
    expect(later.get('t1')).toBe(base.get('t1'));
    expect(later.get('t2')).toBe(base.get('t2'));
    expect(later.get('y')).not.toBe(base.get('y'));
    const earlier = of('p2', 'q');
    expect(earlier.get('t1')).toBe(base.get('t1'));
    expect(earlier.get('t2')).not.toBe(base.get('t2'));
    expect(earlier.get('y')).not.toBe(base.get('y'));
    // The input's format reaches everything; asking again gives the same keys.
    const input = of('p', 'q', '8,1');
    for (const t of ['t1', 't2', 'y']) expect(input.get(t)).not.toBe(base.get(t));
    expect(of('p', 'q')).toEqual(base);
  });
});

describe('ActivationCache', () => {
  it('keeps per tensor one key, per batch one array, within its limit, and forgets what the state no longer matches', () => {
    const cache = new ActivationCache(64);
    cache.put('t', 1, 0, new Float32Array(4));
    cache.put('t', 1, 1, new Float32Array(4));
    expect(cache.size).toBe(32);
    expect(cache.get('t', 1, 1)).toBeDefined();
    expect(cache.get('t', 2, 1)).toBeUndefined();
    expect(cache.fits(32)).toBe(true);
    expect(cache.fits(33)).toBe(false);
    // Another key replaces the tensor's arrays.
    cache.put('t', 2, 0, new Float32Array(2));
    expect(cache.get('t', 1, 0)).toBeUndefined();
    expect(cache.size).toBe(8);
    cache.put('u', 5, 0, new Float32Array(2));
    cache.retain(new Map([['u', 5]]));
    expect(cache.get('t', 2, 0)).toBeUndefined();
    expect(cache.get('u', 5, 0)).toBeDefined();
    expect(cache.size).toBe(8);
  });
});

/** A copy of `a` with one random structure moved to another format (as a reduction or distillation move would). */
function moved(setup: QuantSetup, a: Assignment, rand: () => number): Assignment {
  const s = setup.plan.structures[Math.floor(rand() * setup.plan.structures.length)]!;
  const bits = Math.max(s.kind === 'B' ? 8 : 2, a[s.id]!.bits - 1 - Math.floor(rand() * 2));
  const f = formatFor(s, bits, setup.ranges.get(s.id)!);
  return { ...a, [s.id]: { ...f, frac: f.frac + Math.floor(rand() * 3) } };
}

describe('runs that read kept activations', () => {
  it('give the whole graph logits and layer inputs bit for bit through a search-like sequence on fmnist_resnet20', async () => {
    const setup = await quantSetup('fmnist_resnet20', 50, cacheDir);
    const kept = await SimRunner.create(setup.plan, { activationCacheBytes: 1e9 });
    const whole = await SimRunner.create(setup.plan);
    const rand = seededRandom(7);
    let state = uniform(setup, 8);
    let stateBiases: Record<string, number[]> = {};
    const inputs = (a: Assignment) => setup.batches.map((b) => whole.quantizeInput(a, b.data));
    const inputId = setup.plan.activationOf.get(setup.plan.inputName)!;
    const inputStructure = setup.plan.byId.get(inputId)!;
    const totalNodes = kept.sim.graph.nodes.length;
    let logitRuns = 0;
    let logitNodes = 0;
    let partialRuns = 0;
    const bias = setup.plan.structures.find((s) => s.kind === 'B')!;
    const biasLength = setup.plan.graph.initializers.get(bias.tensor)!.dims[0]!;
    const layerInput = setup.plan.nodes.filter((n) => n.op === 'Conv').at(-1)!.inputs[0]!;
    for (let step = 0; step < 14; step++) {
      // Every fifth step corrects a bias (bias correction), the others change one structure's format.
      const correcting = step % 5 === 4;
      // Step 6 changes the input's format alone, which reaches every tensor.
      const candidate = correcting
        ? state
        : step === 6
          ? { ...state, [inputId]: formatFor(inputStructure, state[inputId]!.bits - 1, setup.ranges.get(inputId)!) }
          : moved(setup, state, rand);
      const biases = correcting
        ? { ...stateBiases, [bias.tensor]: Array.from({ length: biasLength }, (_, i) => 0.01 * (i - step)) }
        : stateBiases;
      kept.setActivationBase(state, stateBiases);
      const x = inputs(candidate);
      for (const [i, b] of setup.batches.entries()) {
        const n = b.indices.length;
        const before = kept.activationReuse.nodes;
        const got = await kept.run(candidate, x[i]!, n, biases, i);
        const ran = kept.activationReuse.nodes - before;
        logitRuns++;
        logitNodes += ran;
        if (ran > 0 && ran < totalNodes) partialRuns++;
        expect(Array.from(got)).toEqual(Array.from(await whole.run(candidate, x[i]!, n, biases)));
        // What the weight rounder reads: a late layer's input under the candidate.
        const read = (await kept.runOutputs(candidate, x[i]!, n, [layerInput], biases, i)).get(layerInput)!;
        expect(Array.from(read)).toEqual(
          Array.from((await whole.runOutputs(candidate, x[i]!, n, [layerInput], biases)).get(layerInput)!),
        );
      }
      if (rand() < 0.5) {
        state = candidate;
        stateBiases = biases;
      }
    }
    // The logits runs started from kept tensors and ran part of the graph (the layer reads are
    // counted apart: most are served whole from what is kept).
    expect(partialRuns).toBeGreaterThan(logitRuns / 3);
    expect(logitNodes / (logitRuns * totalNodes)).toBeLessThan(0.8);
    expect(kept.activationReuse.bytes).toBeGreaterThan(0);
    await kept.release();
    await whole.release();
  }, 300_000);

  it('keep within their memory limit, the later tensors first, and still give the same logits', async () => {
    const setup = await quantSetup('fmnist_resnet20', 50, cacheDir);
    const whole = await SimRunner.create(setup.plan);
    const a = uniform(setup, 6);
    const x = setup.batches.map((b) => whole.quantizeInput(a, b.data));
    const expected = await Promise.all(setup.batches.map((b, i) => whole.run(a, x[i]!, b.indices.length)));
    // Everything the graph could keep for these batches, and a limit of a fifth of it.
    const all = await SimRunner.create(setup.plan, { activationCacheBytes: 1e9 });
    all.setActivationBase(a);
    for (const [i, b] of setup.batches.entries()) await all.run(a, x[i]!, b.indices.length, {}, i);
    const everything = all.activationReuse.bytes;
    await all.release();
    for (const limit of [100, Math.floor(everything / 5)]) {
      const limited = await SimRunner.create(setup.plan, { activationCacheBytes: limit });
      limited.setActivationBase(a);
      let firstPass = 0;
      for (let again = 0; again < 2; again++) {
        for (const [i, b] of setup.batches.entries())
          expect(Array.from(await limited.run(a, x[i]!, b.indices.length, {}, i))).toEqual(Array.from(expected[i]!));
        if (again === 0) firstPass = limited.activationReuse.nodes;
      }
      const reuse = limited.activationReuse;
      expect(reuse.bytes).toBeLessThanOrEqual(limit);
      if (limit === 100) expect(reuse).toMatchObject({ bytes: 0, hits: 0 });
      else {
        // What fits is the end of the graph: the second pass runs only the nodes after it.
        expect(reuse.bytes).toBeGreaterThan(0);
        const share = (reuse.nodes - firstPass) / (setup.batches.length * limited.sim.graph.nodes.length);
        expect(share).toBeLessThan(0.5);
      }
      await limited.release();
    }
    await whole.release();
  }, 300_000);
});

describe('quantized inputs by batch id', () => {
  it('are kept while the input format stays, and quantized again when it changes', async () => {
    const setup = await quantSetup('fmnist_resnet20', 50, cacheDir);
    const sim = await SimRunner.create(setup.plan);
    const data = setup.batches[0]!.data;
    const a = uniform(setup, 8);
    const inputId = setup.plan.activationOf.get(setup.plan.inputName)!;
    const b = { ...a, [inputId]: { ...a[inputId]!, frac: a[inputId]!.frac - 1 } };
    const first = sim.quantizeInput(a, data, 0);
    expect(Array.from(first)).toEqual(Array.from(sim.quantizeInput(a, data)));
    expect(sim.quantizeInput(a, data, 0)).toBe(first);
    const other = sim.quantizeInput(b, data, 0);
    expect(other).not.toBe(first);
    expect(Array.from(other)).toEqual(Array.from(sim.quantizeInput(b, data)));
    expect(Array.from(other)).not.toEqual(Array.from(first));
    // Back to the first format: quantized again, the same values.
    expect(Array.from(sim.quantizeInput(a, data, 0))).toEqual(Array.from(first));
    // Other images under the same id (other values of the same length, or part of the batch) are not
    // taken for the kept ones.
    const copy = data.map((v) => v / 2);
    expect(Array.from(sim.quantizeInput(a, copy, 0))).toEqual(Array.from(sim.quantizeInput(a, copy)));
    const part = data.subarray(0, data.length / 2);
    expect(Array.from(sim.quantizeInput(a, part, 0))).toEqual(Array.from(sim.quantizeInput(a, part)));
    await sim.release();
  }, 120_000);
});

describe('a search with kept activations', () => {
  it('takes the same steps and ends on the same result as without them (optimized rounding reads them too)', async () => {
    const run = async (name: string, activationCacheBytes: number) => {
      const out = join(tmp, name);
      const report = await quantize({ ...smallSearch(cacheDir), out, rounding: 'optimized', activationCacheBytes });
      return { report, trajectory: readFileSync(join(out, 'trajectory.jsonl'), 'utf8') };
    };
    const without = await run('without', 0);
    const withKept = await run('with', 1e9);
    expect(withKept.trajectory).toBe(without.trajectory);
    expect(withKept.report.structures).toEqual(without.report.structures);
    expect(withKept.report.quant).toEqual(without.report.quant);
    // The report says how the kept activations were used.
    const kept = withKept.report.search.keptActivations!;
    // (mnist-8 has three layers with weights: about half the runs change the first one.)
    expect(kept.hits).toBeGreaterThan(kept.runs / 4);
    expect(kept.nodeShare).toBeLessThan(0.9);
    expect(kept.peakBytes).toBeGreaterThan(0);
    expect(without.report.search.keptActivations!.runs).toBe(0);
  }, 600_000);
});
