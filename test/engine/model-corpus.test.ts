/**
 * The reliability corpus for models: 320 seeded mutations of small valid classifiers (damaged
 * protobuf, impossible shapes and types, unknown operators, hostile attributes, NaN and external
 * weights, broken wiring, truncated and random bytes). Each file either is refused with an
 * FxpqError whose sentence names the file, or is a valid model that goes through the whole
 * engine (test/helpers/hostile-engine.ts): inspect, onnxruntime, the canonical graph against the
 * original, the statistics pass and the search's teacher fetch, the fixed-point simulation against
 * the integer executor bit for bit, and the QDQ export against the integer executor. No other
 * outcome is allowed: no raw JavaScript or onnxruntime text, nothing onnxruntime refuses after
 * import accepted it, no hang (a time bound per file), no runaway memory.
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
import { closePools } from '../../services/pool.js';
import { runCli } from '../helpers/cli.js';
import { hostileModels, mutatedModels } from '../helpers/onnx-mutations.js';
import { hostileOutcome } from '../helpers/hostile-engine.js';

export const MODEL_CORPUS_SIZE = 320;
/** Generous: a tiny model takes milliseconds; a hang or a quadratic blow-up takes minutes. */
const SECONDS_PER_FILE = 20;

const dir = mkdtempSync(join(tmpdir(), 'fxpq-model-corpus-'));
afterAll(() => closePools());

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
      const r = await hostileOutcome(path);
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
