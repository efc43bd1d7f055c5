/**
 * The FxP-QNet search as a state machine, on a synthetic model whose accuracy is a known
 * function of the word lengths: it ends within the budget, smaller than uniform 8 bits, and a
 * search interrupted at any checkpoint and resumed ends exactly where an uninterrupted one does.
 */
import { describe, expect, it } from 'vitest';
import { buildPlan, type Assignment } from '../../native-workers/engine/fixedpoint/plan.js';
import { canonicalize } from '../../native-workers/engine/passes/canonicalize.js';
import { memoryReport } from '../../native-workers/engine/fixedpoint/assignment.js';
import { initialFrac } from '../../native-workers/engine/fixedpoint/format.js';
import {
  DEFAULT_SEARCH,
  FxpQNetSearch,
  initialState,
  type SearchEnv,
  type SearchOptions,
  type SearchState,
  type TrajectoryStep,
} from '../../native-workers/engine/search/fxp-qnet.js';
import {
  decidedAgainst,
  dropUpperBound,
  type PairedCounts,
} from '../../native-workers/engine/search/prediction-error.js';
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

  it('resumes from every checkpoint to the same result, trajectory and evaluation count', async () => {
    const plan = tinyPlan();
    const refLog: TrajectoryStep[] = [];
    const refEnv = syntheticEnv(plan, refLog, {});
    let written = 0;
    const save = refEnv.checkpoint;
    refEnv.checkpoint = async (state) => {
      written++;
      await save(state);
    };
    const reference = await new FxpQNetSearch(refEnv, options).run(initialState());
    // A kill right after any checkpoint (every phase's last one included) must not redo counted work.
    expect(written).toBeGreaterThan(40);
    for (let crashAt = 1; crashAt <= written; crashAt++) {
      const log: TrajectoryStep[] = [];
      const saved: { state?: SearchState } = {};
      await expect(
        new FxpQNetSearch(syntheticEnv(plan, log, saved, crashAt), options).run(initialState()),
      ).rejects.toThrow('crash');
      log.length = saved.state!.steps; // the run folder keeps the trajectory up to the checkpoint
      const resumed = await new FxpQNetSearch(syntheticEnv(plan, log, saved), options).run(
        structuredClone(saved.state!),
      );
      expect({ crashAt, assignment: resumed.assignment }).toEqual({ crashAt, assignment: reference.assignment });
      expect({ crashAt, evaluations: resumed.evaluations }).toEqual({ crashAt, evaluations: reference.evaluations });
      expect(log.map((s) => [s.structure, s.bits, s.frac, s.accepted, s.note])).toEqual(
        refLog.map((s) => [s.structure, s.bits, s.frac, s.accepted, s.note]),
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

  it('accepts only on all of D_c: a slice that looks fine never accepts a move the whole split rejects', async () => {
    const plan = tinyPlan();
    const log: TrajectoryStep[] = [];
    const env = syntheticEnv(plan, log, {});
    const honest = env.evaluate;
    // The slice (first 250 images) sees no harm at all; D_c sees the real harm.
    env.evaluate = async (a, b, n, phase) =>
      n < 1000 ? { n, n10: 0, n01: 0, correct: n, kl: 0 } : honest(a, b, n, phase);
    const state = await new FxpQNetSearch(env, options).run(initialState());
    const final = await honest(state.assignment, {}, 1000, 'done');
    expect(dropUpperBound(final, 1)).toBeLessThanOrEqual(0.01);
    // Every accepted reduction was measured on the 1000 images of D_c, within its eps_t.
    for (const step of log.filter((l) => l.phase === 'reduce' && l.accepted))
      expect(step.bound).toBeLessThanOrEqual(step.budget + 1e-9);
    // The final check (at z = 2) holds the result within the budget on D_c too.
    expect(state.final).toMatchObject({ z: 2, within: true });
    expect(state.final!.bound).toBeLessThanOrEqual(1);
    expect(dropUpperBound(final, 2)).toBeLessThanOrEqual(0.01);
    expect(log.at(-1)!.note).toMatch(/^final check/);
  });

  it('checks the result at the final z and rolls back to the last state that met the budget there', async () => {
    const plan = tinyPlan();
    // The steps accept on z = 1; with the final check at z = 1 too, the result's z = 2 bound is over the budget.
    const atOne: TrajectoryStep[] = [];
    const one = await new FxpQNetSearch(syntheticEnv(plan, atOne, {}), { ...options, finalZ: 1 }).run(initialState());
    const honest = syntheticEnv(plan, [], {});
    const resultAtOne = await honest.evaluate(one.assignment, {}, 1000, 'done');
    expect(dropUpperBound(resultAtOne, 1)).toBeLessThanOrEqual(0.01);
    expect(dropUpperBound(resultAtOne, 2)).toBeGreaterThan(0.01);
    expect(one.final).toMatchObject({ z: 1, rolledBack: false, within: true });

    const atTwo: TrajectoryStep[] = [];
    const two = await new FxpQNetSearch(syntheticEnv(plan, atTwo, {}), options).run(initialState());
    expect(two.final).toMatchObject({ z: 2, rolledBack: true, within: true });
    const result = await honest.evaluate(two.assignment, {}, 1000, 'done');
    expect(dropUpperBound(result, 2)).toBeLessThanOrEqual(0.01);
    expect(two.final!.bound).toBeCloseTo(100 * dropUpperBound(result, 2), 9);
    // The same steps up to the check, then the last accepted state measured on all of D_c whose
    // z = 2 bound (drop + 2 (bound - drop), from its z = 1 figures) is within the budget.
    expect(atTwo.slice(0, -1)).toEqual(atOne.slice(0, -1));
    const lastWithin = atOne
      // Distillation's moves are measured on the slice only; its verdict (no structure) on all of D_c.
      .filter((l) => l.accepted && !(l.phase === 'distill' && l.structure !== null) && l.phase !== 'check')
      .filter((l) => l.drop + 2 * (l.bound - l.drop) <= 1 + 1e-9)
      .at(-1)!;
    expect(atTwo.at(-1)!.reduction).toBeCloseTo(lastWithin.reduction, 9);
    expect(memoryReport(plan, two.assignment).reduction).toBeLessThan(memoryReport(plan, one.assignment).reduction);
    expect(atTwo.at(-1)!.note).toMatch(/rolled back .*at z = 2/);
  });

  it('checks the result also without distillation and bias correction', async () => {
    const plan = tinyPlan();
    const log: TrajectoryStep[] = [];
    const state = await new FxpQNetSearch(syntheticEnv(plan, log, {}), {
      ...options,
      distill: false,
      biasCorrection: false,
    }).run(initialState());
    expect(log.some((l) => l.phase === 'distill' || l.phase === 'bias')).toBe(false);
    expect(log.at(-1)!.phase).toBe('check');
    expect(state.final).toMatchObject({ z: 2, within: true });
  });

  it('keeps the result and says so when no state meets the budget at the final z', async () => {
    const plan = tinyPlan();
    const log: TrajectoryStep[] = [];
    const env = syntheticEnv(plan, log, {});
    const honest = env.evaluate;
    // Every state changes 9 of 1000 predictions each way: drop 0, bound 0.42 at z = 1, 8.5 at z = 20.
    env.evaluate = async (a, b, n, phase) => ({ ...(await honest(a, b, n, phase)), n10: 0.009 * n, n01: 0.009 * n });
    const state = await new FxpQNetSearch(env, { ...options, finalZ: 20 }).run(initialState());
    expect(state.final).toMatchObject({ z: 20, rolledBack: false, within: false });
    expect(state.lastGood).toBeUndefined();
    expect(log.at(-1)!.note).toMatch(/no state met the budget at z = 20/);
  });

  it('rolls back to the last state within the budget when the final check fails', async () => {
    const plan = tinyPlan();
    const log: TrajectoryStep[] = [];
    const env = syntheticEnv(plan, log, {});
    const honest = env.evaluate;
    let checking = false;
    // Nondeterminism stand-in: the final check sees the result over budget.
    env.evaluate = async (a, b, n, phase) => {
      if (phase === 'check' && !checking) {
        checking = true;
        return { n, n10: Math.round(n * 0.05), n01: 0, correct: 0, kl: 1 };
      }
      return honest(a, b, n, phase);
    };
    const state = await new FxpQNetSearch(env, options).run(initialState());
    expect(state.final!.rolledBack).toBe(true);
    expect(state.assignment).toEqual(state.lastGood!.assignment);
    // The state it returns to meets the budget at the final check's z on all of D_c.
    expect(dropUpperBound(await honest(state.assignment, {}, 1000, 'done'), 2)).toBeLessThanOrEqual(0.01);
    expect(state.final).toMatchObject({ z: 2, within: true });
    expect(log.at(-1)!.note).toMatch(/rolled back/);
  });

  it('keeps a bias correction only if the KL falls and the budget holds on D_c', async () => {
    const plan = tinyPlan();
    const log: TrajectoryStep[] = [];
    const env = syntheticEnv(plan, log, {});
    const honest = env.evaluate;
    // Corrected biases lower the KL on the slice but break the budget on D_c.
    env.evaluate = async (a, b, n, phase) => {
      const c = await honest(a, b, n, phase);
      if (Object.keys(b).length === 0) return c;
      return n < 1000 ? { ...c, kl: c.kl / 10 } : { ...c, n10: c.n10 + 50, correct: c.correct - 50 };
    };
    env.layerError = async (_a, _b, node) => new Float64Array(plan.shapes.get(node.outputs[0]!)![1]!).fill(0.5);
    const state = await new FxpQNetSearch(env, options).run(initialState());
    expect(state.biases).toEqual({});
    const bias = log.filter((l) => l.note === 'bias correction');
    expect(bias.length).toBeGreaterThan(0);
    expect(bias.every((l) => !l.accepted)).toBe(true);
  });

  it('starts at 16 bits with f = f0, keeps the logits at 16 bits, and refuses an unknown phase', async () => {
    const plan = tinyPlan();
    const log: TrajectoryStep[] = [];
    const env = syntheticEnv(plan, log, {});
    const state = await new FxpQNetSearch(env, options).run(initialState());
    const logits = plan.structures.find((s) => s.kind === 'A' && s.tensor === plan.logitsTensor)!;
    expect(state.assignment[logits.id]!.bits).toBe(16);
    expect(log[0]!.note).toBe('uniform 16 bits');
    await expect(new FxpQNetSearch(env, options).run({ ...initialState(), phase: 'bogus' as never })).rejects.toThrow(
      /unknown phase "bogus"/,
    );
  });

  it.each(['sensitivity', 'tradeoff'] as const)(
    'ends the reduce phase with the %s strategy once every structure is at its floor, not at maxPasses',
    async (strategy) => {
      const plan = tinyPlan();
      const env = syntheticEnv(plan, [], {});
      // Nothing ever hurts: every structure goes down to its floor.
      env.evaluate = async (_a, _b, n) => ({ n, n10: 0, n01: 0, correct: n, kl: 0 });
      let lastReducePass = -1;
      const checkpoint = env.checkpoint;
      env.checkpoint = async (state) => {
        if (state.phase === 'reduce') lastReducePass = Math.max(lastReducePass, state.pass);
        await checkpoint(state);
      };
      const state = await new FxpQNetSearch(env, { ...options, strategy, distill: false, biasCorrection: false }).run(
        initialState(),
      );
      expect(state.phase).toBe('done');
      // From the 8-bit start to the 2-bit floor is 6 moves a structure: the pass after ends it.
      expect(lastReducePass).toBeLessThan(10);
      expect(lastReducePass).toBeGreaterThanOrEqual(5);
    },
  );

  it('raises eps_t pass by pass to eps, and freezes a structure only when it fails at the full budget', async () => {
    const plan = tinyPlan();
    const log: TrajectoryStep[] = [];
    const env = syntheticEnv(plan, log, {});
    // Needs of 15 and 16 bits, so that reductions fail while eps_t is still rising.
    env.evaluate = async (a, _b, n) => {
      let harm = 0;
      plan.structures.forEach((s, i) => (harm += Math.max(0, 15 + (i % 2) - a[s.id]!.bits) ** 2));
      const n10 = Math.round((harm * n) / 1000);
      return { n, n10, n01: 0, correct: n - n10, kl: harm / 100 };
    };
    const state = await new FxpQNetSearch(env, options).run(initialState());
    const reduce = log.filter((l) => l.phase === 'reduce' && l.structure);
    // The budget in force never falls from one pass to the next, and reaches eps (1 point).
    const perPass = new Map<number, number>();
    for (const l of reduce) perPass.set(l.pass, Math.max(perPass.get(l.pass) ?? 0, l.budget));
    const budgets = [...perPass.keys()].sort((a, b) => a - b).map((p) => perPass.get(p)!);
    for (let i = 1; i < budgets.length; i++) expect(budgets[i]!).toBeGreaterThanOrEqual(budgets[i - 1]!);
    expect(budgets.at(-1)!).toBeCloseTo(1, 9);
    expect(budgets[0]!).toBeLessThan(1);
    // Rejected under a smaller eps_t: proposed again in a later pass. Rejected at eps: never again.
    for (const [i, l] of reduce.entries()) {
      if (l.accepted) continue;
      const later = reduce.slice(i + 1).filter((m) => m.structure === l.structure);
      if (l.budget < 1 - 1e-9)
        expect({ structure: l.structure, retried: later.length > 0 }).toEqual({
          structure: l.structure,
          retried: true,
        });
      else expect({ structure: l.structure, after: later.length }).toEqual({ structure: l.structure, after: 0 });
    }
    expect(reduce.some((l) => !l.accepted && l.budget < 1 - 1e-9)).toBe(true);
    expect(reduce.some((l) => !l.accepted && l.budget >= 1 - 1e-9)).toBe(true);
    expect(state.phase).toBe('done');
  });

  it("proposes every format at the range rule's f0 when the fractional-length choice is off", async () => {
    const plan = tinyPlan();
    const run = async (fracChoice: boolean) => {
      const log: TrajectoryStep[] = [];
      await new FxpQNetSearch(syntheticEnv(plan, log, {}), { ...options, fracChoice, distill: false }).run(
        initialState(),
      );
      return log.filter((l) => l.phase === 'reduce' && l.structure);
    };
    const f0 = (l: TrajectoryStep) =>
      initialFrac(l.bits!, plan.byId.get(l.structure!)!.signed, 1.5 /* the synthetic env's ranges */);
    const off = await run(false);
    expect(off.length).toBeGreaterThan(0);
    for (const l of off) expect({ s: l.structure, frac: l.frac }).toEqual({ s: l.structure, frac: f0(l) });
    // With the choice on, the weights' exact error picks another fractional length somewhere.
    expect((await run(true)).some((l) => l.frac !== f0(l))).toBe(true);
  });

  it('keeps a distillation move only when the KL falls, and the distilled mapping only within the budget', async () => {
    const plan = tinyPlan();
    const log: TrajectoryStep[] = [];
    const env = syntheticEnv(plan, log, {});
    const honest = env.evaluate;
    // The KL falls for +1 on every structure; the drop is untouched by fractional lengths.
    env.evaluate = async (a, b, n, phase) => {
      const c = await honest(a, b, n, phase);
      const fracSum = plan.structures.reduce((t, s) => t + a[s.id]!.frac, 0);
      return { ...c, kl: 100 - fracSum };
    };
    await new FxpQNetSearch(env, options).run(initialState());
    const moves = log.filter((l) => l.note === 'distillation');
    expect(moves.length).toBeGreaterThan(0);
    let loss = Infinity;
    for (const m of moves) {
      if (m.accepted) {
        expect(m.kl!).toBeLessThan(loss);
        loss = m.kl!;
      } else expect(m.kl!).toBeGreaterThanOrEqual(loss);
    }
    // When the distilled mapping breaks the budget on D_c it is dropped for the one before it.
    const log2: TrajectoryStep[] = [];
    const env2 = syntheticEnv(plan, log2, {});
    const honest2 = env2.evaluate;
    env2.evaluate = async (a, b, n, phase) => {
      const c = await honest2(a, b, n, phase);
      const fracSum = plan.structures.reduce((t, s) => t + a[s.id]!.frac, 0);
      // Any distilled change costs 5 % on D_c.
      const harm = n === 1000 && phase === 'distill' ? Math.round(n * 0.05) : 0;
      return { ...c, kl: 100 - fracSum, n10: c.n10 + harm, correct: c.correct - harm };
    };
    const state2 = await new FxpQNetSearch(env2, options).run(initialState());
    const verdict = log2.find((l) => l.phase === 'distill' && l.structure === null);
    expect(verdict?.accepted).toBe(false);
    expect(state2.final!.bound).toBeLessThanOrEqual(1);
  });

  it('decides a bound early only when no outcome of the remaining images could change it', () => {
    // Exhaustive on small splits: every prefix, every completion of the rest.
    const z = 1;
    for (const total of [6, 9]) {
      for (let seen = 1; seen < total; seen++) {
        const rest = total - seen;
        for (let n10 = 0; n10 <= seen; n10++) {
          for (let n01 = 0; n10 + n01 <= seen; n01++) {
            for (let teacherRight = 0; teacherRight <= rest; teacherRight++) {
              for (const eps of [0.05, 0.2, 0.5]) {
                const decided = decidedAgainst({ n: seen, n10, n01, correct: 0, kl: 0 }, total, teacherRight, z, eps);
                if (!decided) continue;
                // Every completion: a of the teacher-right rest become n10, b of the teacher-wrong rest n01.
                for (let a = 0; a <= teacherRight; a++)
                  for (let b = 0; b <= rest - teacherRight; b++) {
                    const full = { n: total, n10: n10 + a, n01: n01 + b, correct: 0, kl: 0 };
                    expect(dropUpperBound(full, z) <= eps ? 'accept' : 'reject').toBe(decided);
                  }
              }
            }
          }
        }
      }
    }
  });
});
