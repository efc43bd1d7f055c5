/**
 * The architecture zoo (test/fixtures/zoo, made by scripts/zoo/generate.py with torch.onnx and
 * in tf2onnx's form, opsets 7 to 21; every `.onnx` of the folder): each model imports, its canonical graph gives onnxruntime's outputs, the
 * fake-quant simulation and the integer executor agree bit for bit at uniform 8 bits and at a
 * random mixed 2..8-bit assignment, and the mixed export verifies (QDQ in onnxruntime equal to
 * the integer executor, the C compiled and bit-exact on its golden vectors).
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../native-workers/engine/data/split.js';
import { formatFor } from '../../native-workers/engine/fixedpoint/assignment.js';
import { compileProgram } from '../../native-workers/engine/fixedpoint/compile.js';
import { dequantizeArray, quantizeArray } from '../../native-workers/engine/fixedpoint/format.js';
import { runBatch } from '../../native-workers/engine/fixedpoint/int-executor.js';
import { buildPlan, type Assignment } from '../../native-workers/engine/fixedpoint/plan.js';
import { readOnnx, writeOnnx } from '../../native-workers/engine/onnx/onnx-format.js';
import { FloatRunner } from '../../native-workers/engine/runtime/float-runner.js';
import { SimRunner } from '../../native-workers/engine/runtime/sim-runner.js';
import { evaluate } from '../../services/evaluate.js';
import { exportRun } from '../../services/export.js';
import { loadModelFile } from '../../services/models.js';
import { closePools } from '../../services/pool.js';
import { quantize } from '../../services/quantize.js';
import { seededFloats } from '../helpers/graph-builder.js';
import { repoRoot, smallUniform } from '../helpers/fixtures.js';

const zoo = join(repoRoot, 'test/fixtures/zoo');
const data = join(repoRoot, 'test/fixtures/fashion-mnist');
const tmp = mkdtempSync(join(tmpdir(), 'fxpq-zoo-'));
const cacheDir = join(tmp, 'cache');
afterAll(() => closePools());

/** Every model in the zoo folder (each `.onnx` beside its `.json` sidecar). */
export const ZOO = readdirSync(zoo)
  .filter((f) => f.endsWith('.onnx'))
  .map((f) => f.slice(0, -'.onnx'.length))
  .sort();

it('the zoo holds the models and the opsets it is said to: 7 or 8 up to 21', () => {
  expect(ZOO.length).toBeGreaterThanOrEqual(19);
  for (const name of ZOO) expect(existsSync(join(zoo, `${name}.json`))).toBe(true);
  const opsets = new Set(ZOO.map((name) => readOnnx(readFileSync(join(zoo, `${name}.onnx`)), name).opset));
  for (const opset of [7, 8, 9, 10, 11, 12, 13, 14, 17, 18, 19, 20, 21]) expect(opsets.has(opset)).toBe(true);
});

/** A random 2..8-bit format for every structure, fractional lengths near the range rule. */
function mixed(assignment: Assignment, plan: ReturnType<typeof buildPlan>, seed: number): Assignment {
  const rand = seededRandom(seed);
  const out: Assignment = {};
  for (const s of plan.structures) {
    const f = assignment[s.id]!;
    const bits = 2 + Math.floor(rand() * 7);
    out[s.id] = {
      ...formatFor(s, bits, 2 ** (f.bits - 1 - (s.signed ? 1 : 0) - f.frac + 1)),
      frac: f.frac - (f.bits - bits) + Math.floor(rand() * 3),
    };
  }
  return out;
}

describe.each(ZOO)('zoo model %s', (name) => {
  it('imports, keeps its float function, and runs bit-exact in the simulation, the integer executor and the C', async () => {
    const path = join(zoo, `${name}.onnx`);
    const model = await loadModelFile(path);
    const float = await FloatRunner.create(model.bytes, model.original, path);
    const canonical = await FloatRunner.create(writeOnnx(model.canonical), model.canonical, path);
    const images = seededFloats(4 * float.imageSize, 5, 2);
    const [a, b] = [await float.run(images, 4), await canonical.run(images, 4)];
    await Promise.all([float.release(), canonical.release()]);
    for (let i = 0; i < a.length; i++)
      expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(a[i]!)));

    const run = join(tmp, `run-${name}`);
    if (!existsSync(join(run, 'report.json')))
      await quantize({ modelPath: path, dataPath: data, out: run, ...smallUniform(cacheDir) });
    const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as {
      assignment: Assignment;
      inputNonNegative: boolean;
    };
    const plan = buildPlan(model.canonical, { inputNonNegative: config.inputNonNegative });
    const sim = await SimRunner.create(plan);
    const assignments = [config.assignment, mixed(config.assignment, plan, 11)];
    try {
      for (const assignment of assignments) {
        const program = compileProgram(plan, assignment);
        const inFormat = assignment[plan.activationOf.get(plan.inputName)!]!;
        const q = quantizeArray(images, inFormat);
        const simulated = await sim.run(assignment, dequantizeArray(q, inFormat.frac), 4);
        const integer = runBatch(program, q, 4);
        let differing = 0;
        for (let i = 0; i < integer.length; i++)
          if (simulated[i]! * 2 ** program.output.frac !== integer[i]) differing++;
        expect(differing).toBe(0);
      }
    } finally {
      await sim.release();
    }

    const mixedRun = join(tmp, `mixed-${name}`);
    cpSync(run, mixedRun, { recursive: true });
    writeFileSync(join(mixedRun, 'config.json'), JSON.stringify({ ...config, assignment: assignments[1] }));
    const r = await exportRun({ run: mixedRun, out: join(tmp, `export-${name}`), cacheDir });
    expect(r.qdq!.top1Agreement).toBe(1);
    expect(r.qdq!.logitMismatches).toBe(0);
    expect(r.c!.goldenVectors).toBeGreaterThan(0);
    if (name === 'vgg') {
      // The exported QDQ model is evaluated as any onnxruntime model (no FxPQ import), with the
      // same top-1 as the integer executor on the same images.
      const spec = 'resize=32,crop=32,channels=3,mean=0.5,std=0.25';
      const qdq = await evaluate({
        modelPath: join(tmp, `export-${name}`, 'model.qdq.onnx'),
        dataPath: data,
        preprocess: spec,
        cacheDir,
      });
      const int = await evaluate({ modelPath: path, dataPath: data, run: mixedRun, engine: 'int', cacheDir });
      expect(qdq.n).toBe(int.n);
      expect(qdq.fp.top1).toBe(int.quant!.top1);
    }
  }, 240_000);
});
