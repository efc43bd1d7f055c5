/**
 * The reliability corpus for models: 320 seeded mutations of small valid classifiers (damaged
 * protobuf, impossible shapes and types, unknown operators, hostile attributes, NaN and external
 * weights, broken wiring, truncated and random bytes). Each file either is refused with an
 * FxpqError whose sentence names the file, or is a valid model that goes through the whole
 * engine: inspect, onnxruntime, the canonical graph against the original, and the fixed-point
 * simulation against the integer executor bit for bit. No other outcome is allowed: no raw
 * JavaScript or onnxruntime text, no hang (a time bound per file), no runaway memory.
 *
 * Beside them, the hand-made hostile models of issue 30 (test/helpers/onnx-mutations.ts,
 * `hostileModels`): shared weights and biases, names that key JavaScript objects or collide with
 * the QDQ and simulation graphs' own, dilations with SAME padding, Flatten axis 0, wrong bias
 * lengths, LeakyRelu slopes, tf2onnx's ReduceMean + Squeeze ending; each must be refused at
 * import or run through the whole engine, the statistics pass and the QDQ export included.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isFxpqError } from '../../native-workers/engine/errors.js';
import { structureRanges, uniformAssignment } from '../../native-workers/engine/fixedpoint/assignment.js';
import { compileProgram } from '../../native-workers/engine/fixedpoint/compile.js';
import { dequantizeArray, quantizeArray } from '../../native-workers/engine/fixedpoint/format.js';
import { runBatch } from '../../native-workers/engine/fixedpoint/int-executor.js';
import { buildPlan } from '../../native-workers/engine/fixedpoint/plan.js';
import { writeOnnx } from '../../native-workers/engine/onnx/onnx-format.js';
import { FloatRunner } from '../../native-workers/engine/runtime/float-runner.js';
import { SimRunner } from '../../native-workers/engine/runtime/sim-runner.js';
import { inspectModelFile, loadModelFile } from '../../services/models.js';
import { closePools } from '../../services/pool.js';
import { runCli } from '../helpers/cli.js';
import { seededFloats } from '../helpers/graph-builder.js';
import { hostileModels, mutatedModels } from '../helpers/onnx-mutations.js';
import { hostileOutcome } from '../helpers/hostile-engine.js';

export const MODEL_CORPUS_SIZE = 320;
/** Generous: a tiny model takes milliseconds; a hang or a quadratic blow-up takes minutes. */
const SECONDS_PER_FILE = 20;

const dir = mkdtempSync(join(tmpdir(), 'fxpq-model-corpus-'));
afterAll(() => closePools());

type Outcome = { kind: 'refused'; message: string } | { kind: 'ran' } | { kind: 'bad'; message: string };

/** The whole engine on one file, as `fxpq inspect` and `fxpq quantize` take it. */
async function throughEngine(path: string): Promise<void> {
  await inspectModelFile(path);
  const model = await loadModelFile(path);
  const g = model.canonical;
  const float = await FloatRunner.create(model.bytes, model.original, path);
  const canonical = await FloatRunner.create(writeOnnx(g), g, path);
  const count = 2;
  const images = seededFloats(count * float.imageSize, 11, 2);
  const [a, b] = [await float.run(images, count), await canonical.run(images, count)];
  await Promise.all([float.release(), canonical.release()]);
  for (let i = 0; i < a.length; i++) {
    const same =
      a[i] === b[i] || Math.abs(a[i]! - b[i]!) <= 1e-4 * Math.max(1, Math.abs(a[i]!)) || (isNaN(a[i]!) && isNaN(b[i]!));
    if (!same) throw new Error(`silent wrong answer: canonical output ${i} is ${b[i]}, the model's is ${a[i]}`);
  }
  const plan = buildPlan(g, { inputNonNegative: false });
  const assignment = uniformAssignment(
    plan,
    8,
    structureRanges(plan, () => 8),
  );
  const program = compileProgram(plan, assignment);
  const inFormat = assignment[plan.activationOf.get(plan.inputName)!]!;
  const q = quantizeArray(images, inFormat);
  const sim = await SimRunner.create(plan);
  try {
    const simulated = await sim.run(assignment, dequantizeArray(q, inFormat.frac), count);
    const integer = runBatch(program, q, count);
    for (let i = 0; i < integer.length; i++)
      if (simulated[i]! * 2 ** program.output.frac !== integer[i])
        throw new Error(`silent wrong answer: simulation and integer executor differ at output ${i}`);
  } finally {
    await sim.release();
  }
}

async function outcome(path: string): Promise<Outcome> {
  try {
    await throughEngine(path);
    return { kind: 'ran' };
  } catch (e) {
    const message = (e as Error).message ?? String(e);
    if (isFxpqError(e) && message.includes(path)) return { kind: 'refused', message };
    return { kind: 'bad', message: `${isFxpqError(e) ? 'does not name the file' : 'raw error'}: ${message}` };
  }
}

describe('model corpus', () => {
  const corpus = mutatedModels(MODEL_CORPUS_SIZE, 20261127);
  mkdirSync(dir, { recursive: true });
  for (const m of corpus) writeFileSync(join(dir, m.name), m.bytes);

  it(`gives every one of ${MODEL_CORPUS_SIZE} mutated models a clean refusal or a correct run`, async () => {
    const bad: string[] = [];
    const slow: string[] = [];
    const counts = { refused: 0, ran: 0 };
    const rssBefore = process.memoryUsage().rss;
    let peakRss = rssBefore;
    for (const m of corpus) {
      const path = join(dir, m.name);
      const started = performance.now();
      const r = await outcome(path);
      const seconds = (performance.now() - started) / 1000;
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      if (seconds > SECONDS_PER_FILE) slow.push(`${m.name} (${m.what}): ${seconds.toFixed(1)} s`);
      if (r.kind === 'bad') bad.push(`${m.name} (${m.what}): ${r.message}`);
      else counts[r.kind]++;
    }
    console.log(
      `model corpus: ${corpus.length} tried, ${counts.refused} refused cleanly, ${counts.ran} valid and ran, ${bad.length} bad, ${slow.length} slow, peak RSS growth ${((peakRss - rssBefore) / 2 ** 20).toFixed(0)} MB`,
    );
    expect(bad).toEqual([]);
    expect(slow).toEqual([]);
    // Memory bound: a tiny model must never cost more than a few hundred megabytes.
    expect(peakRss - rssBefore).toBeLessThan(1024 * 2 ** 20);
    // The corpus is hostile: most files must be refused, and some must survive as valid models.
    expect(counts.refused).toBeGreaterThan(MODEL_CORPUS_SIZE / 2);
  }, 600_000);

  it('gives every hand-made hostile model (issue 30) a refusal at import or a correct run, QDQ export included', async () => {
    const hostile = hostileModels();
    const bad: string[] = [];
    const counts = { refused: 0, ran: 0 };
    for (const m of hostile) {
      const path = join(dir, m.name);
      writeFileSync(path, m.bytes);
      const r = await hostileOutcome(path);
      if (r.kind === 'bad') bad.push(`${m.name} (${m.what}): ${r.message}`);
      else counts[r.kind]++;
    }
    console.log(
      `hostile models: ${hostile.length} tried, ${counts.refused} refused cleanly, ${counts.ran} valid and ran, ${bad.length} bad`,
    );
    expect(bad).toEqual([]);
  }, 300_000);

  it('exits 1 from the CLI with a sentence naming the file', async () => {
    const sample = corpus.filter((_, i) => i % 40 === 3).slice(0, 6);
    for (const m of sample) {
      const path = join(dir, m.name);
      const r = await runCli(['inspect', path]);
      if (r.code === 0) continue; // a mutation that left a valid model
      expect({ file: m.name, code: r.code }).toEqual({ file: m.name, code: 1 });
      expect(r.stderr).toContain(path);
      expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    }
  }, 120_000);
});
