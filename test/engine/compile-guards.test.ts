/**
 * The integer program refuses formats it cannot run exactly, with the structure named: a run's
 * config.json may be damaged or edited by hand, and C leaves shifts of 64 bits or more undefined.
 */
import { describe, expect, it } from 'vitest';
import { structureRanges, uniformAssignment } from '../../native-workers/engine/fixedpoint/assignment.js';
import { compileProgram } from '../../native-workers/engine/fixedpoint/compile.js';
import { buildPlan, type Assignment } from '../../native-workers/engine/fixedpoint/plan.js';
import { importModel } from '../../native-workers/engine/model.js';
import { GraphBuilder, ints } from '../helpers/graph-builder.js';

function setup() {
  const b = new GraphBuilder();
  const x = b.input('x', [-1, 2, 6, 6]);
  const c = b.node('Conv', [x, b.weight([4, 2, 3, 3], 1, 0.5, 'conv_w'), b.weight([4], 2, 0.5, 'conv_b')], {
    pads: ints([1, 1, 1, 1]),
  });
  const f = b.node('Flatten', [b.node('GlobalAveragePool', [b.node('Relu', [c])])]);
  b.output(b.node('Gemm', [f, b.weight([4, 3], 3)]), [-1, 3]);
  const plan = buildPlan(importModel(b.bytes(), 'guards.onnx').canonical, { inputNonNegative: false });
  return {
    plan,
    assignment: uniformAssignment(
      plan,
      8,
      structureRanges(plan, () => 4),
    ),
  };
}

describe('integer program guards', () => {
  it('compiles a sound assignment', () => {
    const { plan, assignment } = setup();
    expect(() => compileProgram(plan, assignment)).not.toThrow();
  });

  it.each<[string, (a: Assignment) => void, RegExp]>([
    ['a 32-bit unsigned format', (a) => (a['A:x'] = { bits: 32, frac: 0, signed: false }), /A:x \(32 bits, unsigned/],
    [
      'a fractional length of 100',
      (a) => (a['W:conv_w'] = { ...a['W:conv_w']!, frac: 100 }),
      /W:conv_w .*fractional length 100/,
    ],
    ['a fractional length that is not whole', (a) => (a['B:conv_b'] = { ...a['B:conv_b']!, frac: 2.5 }), /B:conv_b/],
    [
      'formats whose requantization shift passes 62 bits',
      (a) => {
        a['W:conv_w'] = { ...a['W:conv_w']!, frac: 40 };
        a['A:x'] = { ...a['A:x']!, frac: 40 };
      },
      /needs a shift of \d+ bits, more than the 62/,
    ],
  ])('refuses %s', (_, damage, message) => {
    const { plan, assignment } = setup();
    damage(assignment);
    expect(() => compileProgram(plan, assignment)).toThrow(message);
  });

  it('keeps the sums of Add and the pools exact, or refuses', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [-1, 2, 6, 6]);
    const r = b.node('Relu', [b.node('Conv', [x, b.weight([4, 2, 3, 3], 1)], { pads: ints([1, 1, 1, 1]) })]);
    const c = b.node('Conv', [r, b.weight([4, 4, 3, 3], 2)], { pads: ints([1, 1, 1, 1]) });
    const s = b.node('Add', [c, r]);
    const f = b.node('Flatten', [b.node('GlobalAveragePool', [s])]);
    b.output(b.node('Gemm', [f, b.weight([4, 3], 3)]), [-1, 3]);
    const plan = buildPlan(importModel(b.bytes(), 'residual.onnx').canonical, { inputNonNegative: false });
    const sound = uniformAssignment(
      plan,
      8,
      structureRanges(plan, () => 4),
    );
    expect(() => compileProgram(plan, sound)).not.toThrow();
    const add = plan.nodes.find((n) => n.op === 'Add')!;
    const [ia, ib] = add.inputs.map((t) => plan.activationOf.get(t)!) as [string, string];
    const apart = { ...sound, [ia]: { ...sound[ia]!, bits: 16, frac: 50 }, [ib]: { ...sound[ib]!, bits: 16, frac: 0 } };
    expect(() => compileProgram(plan, apart)).toThrow(/the aligned sum of its inputs needs 67 bits, more than the 52/);
    const pool = plan.nodes.find((n) => n.op === 'GlobalAveragePool')!;
    const ip = plan.activationOf.get(pool.inputs[0]!)!;
    const wide = { ...sound, [ip]: { ...sound[ip]!, bits: 32, signed: true } };
    expect(() => compileProgram(plan, wide)).toThrow(/window sum times its reciprocal needs 54 bits/);
  });
});
