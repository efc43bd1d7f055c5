/**
 * The FxP-QNet search as a state machine, on a synthetic model whose accuracy is a known
 * function of the word lengths: it ends within the budget, smaller than uniform 8 bits, and a
 * search interrupted at any checkpoint and resumed ends exactly where an uninterrupted one does.
 */
import { describe, expect, it } from 'vitest';
import { buildPlan, type Assignment } from '../../native-workers/engine/fixedpoint/plan.js';
import { canonicalize } from '../../native-workers/engine/passes/canonicalize.js';
import { memoryReport } from '../../native-workers/engine/fixedpoint/assignment.js';
import {
  DEFAULT_SEARCH,
  FxpQNetSearch,
  initialState,
  type SearchEnv,
  type SearchOptions,
  type SearchState,
  type TrajectoryStep,
} from '../../native-workers/engine/search/fxp-qnet.js';
import { dropUpperBound, type PairedCounts } from '../../native-workers/engine/search/prediction-error.js';
import { GraphBuilder, ints } from '../helpers/graph-builder.js';

function tinyPlan() {
  const b = new GraphBuilder();
  const x = b.input('x', [-1, 2, 8, 8]);
  const c1 = b.node('Conv', [x, b.weight([8, 2, 3, 3], 1), b.weight([8], 2)], { pads: ints([1, 1, 1, 1]) });
  const r1 = b.node('Relu', [c1]);
  const c2 = b.node('Conv', [r1, b.weight([8, 8, 3, 3], 3), b.weight([8], 4)], { pads: ints([1, 1, 1, 1]) });
  const g = b.node('GlobalAveragePool', [c2]);
  const f = b.node('Flatten', [g]);
  b.output(b.node('Gemm', [f, b.weight([8, 4], 5), b.weight([4], 6)]), [-1, 4]);
  return buildPlan(canonicalize(b.graph(), { source: 'tiny' }), { inputNonNegative: false });
}

/** Synthetic accuracy: every structure below its "need" costs flips; 1000 images. */
function syntheticEnv(
  plan: ReturnType<typeof tinyPlan>,
  log: TrajectoryStep[],
  saved: { state?: SearchState },
  crashAt?: number,
): SearchEnv {
  const need = new Map(plan.structures.map((s, i) => [s.id, 3 + (i % 4)]));
  let checkpoints = 0;
  const counts = (a: Assignment, n: number): PairedCounts => {
    let harm = 0;
    for (const s of plan.structures)
      harm += Math.max(0, need.get(s.id)! - a[s.id]!.bits) * 3 + Math.abs(a[s.id]!.frac % 3 === 0 ? 0 : 0.1);
    const n10 = Math.round((harm * n) / 1000);
    return { n, n10, n01: 0, correct: n - n10, kl: harm / 100 };
  };
  return {
    plan,
    ranges: new Map(plan.structures.map((s) => [s.id, 1.5])),
    histograms: new Map(),
    calibCount: 1000,
    sliceCount: 250,
    evaluate: async (a, _b, n) => counts(a, n),
    layerError: async (_a, _b, node) => new Float64Array(plan.shapes.get(node.outputs[0]!)![1]!),
    record: async (s) => {
      log.length = s.step;
      log.push(s);
    },
    checkpoint: async (state) => {
      saved.state = structuredClone(state);
      if (crashAt !== undefined && ++checkpoints === crashAt) throw new Error('crash');
    },
    progress: () => {},
  };
}

const options: SearchOptions = { ...DEFAULT_SEARCH, budget: 1 };

describe('FxP-QNet search', () => {
  it('ends within the budget and smaller than uniform 8 bits', async () => {
    const plan = tinyPlan();
    const log: TrajectoryStep[] = [];
    const saved: { state?: SearchState } = {};
    const env = syntheticEnv(plan, log, saved);
    const state = await new FxpQNetSearch(env, options).run(initialState());
    expect(state.phase).toBe('done');
    const final = await env.evaluate(state.assignment, {}, 1000, 'done');
    expect(dropUpperBound(final, 1)).toBeLessThanOrEqual(0.01);
    expect(memoryReport(plan, state.assignment).reduction).toBeGreaterThan(4);
    expect(log.some((s) => !s.accepted)).toBe(true);
    // Biases stay at their 8-bit floor or above.
    for (const s of plan.structures) if (s.kind === 'B') expect(state.assignment[s.id]!.bits).toBeGreaterThanOrEqual(8);
  });

  it('resumes from any checkpoint to the same result and trajectory', async () => {
    const plan = tinyPlan();
    const refLog: TrajectoryStep[] = [];
    const reference = await new FxpQNetSearch(syntheticEnv(plan, refLog, {}), options).run(initialState());
    for (const crashAt of [1, 2, 5, 17, 40]) {
      const log: TrajectoryStep[] = [];
      const saved: { state?: SearchState } = {};
      await expect(
        new FxpQNetSearch(syntheticEnv(plan, log, saved, crashAt), options).run(initialState()),
      ).rejects.toThrow('crash');
      log.length = saved.state!.steps; // the run folder keeps the trajectory up to the checkpoint
      const resumed = await new FxpQNetSearch(syntheticEnv(plan, log, saved), options).run(
        structuredClone(saved.state!),
      );
      expect(resumed.assignment).toEqual(reference.assignment);
      expect(resumed.evaluations).toBe(reference.evaluations);
      expect(log.map((s) => [s.structure, s.bits, s.frac, s.accepted])).toEqual(
        refLog.map((s) => [s.structure, s.bits, s.frac, s.accepted]),
      );
    }
  });

  it('refuses a budget that even 16 bits cannot meet', async () => {
    const plan = tinyPlan();
    const env = syntheticEnv(plan, [], {});
    env.evaluate = async (_a, _b, n) => ({ n, n10: Math.round(n * 0.05), n01: 0, correct: 0, kl: 1 });
    await expect(new FxpQNetSearch(env, options).run(initialState())).rejects.toThrow(
      /budget of 1 point cannot be met: even at 16 bits/,
    );
  });
});
