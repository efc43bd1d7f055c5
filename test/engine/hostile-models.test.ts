/**
 * Hostile models of issue 30 (items 6, 8 and 13): each either is refused with an FxpqError whose
 * sentence names the file (and the node), or goes through the whole engine correctly: inspect,
 * onnxruntime, the canonical graph against the original, the statistics pass and the search's
 * teacher fetch, the simulation against the integer executor bit for bit, and the QDQ export
 * against the integer executor.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_CLASSES } from '../../native-workers/engine/data/classes.js';
import { MAX_IMAGE_SIDE, parsePreprocess, preparePixels } from '../../native-workers/engine/data/preprocess.js';
import { seededRandom } from '../../native-workers/engine/data/split.js';
import { isFxpqError } from '../../native-workers/engine/errors.js';
import { structureRanges, uniformAssignment } from '../../native-workers/engine/fixedpoint/assignment.js';
import { compileProgram } from '../../native-workers/engine/fixedpoint/compile.js';
import { dequantizeArray, quantizeArray } from '../../native-workers/engine/fixedpoint/format.js';
import { runBatch } from '../../native-workers/engine/fixedpoint/int-executor.js';
import { buildPlan } from '../../native-workers/engine/fixedpoint/plan.js';
import { importModel } from '../../native-workers/engine/model.js';
import { MAX_LAYERS } from '../../native-workers/engine/passes/validate.js';
import { SimRunner } from '../../native-workers/engine/runtime/sim-runner.js';
import { evaluate, evaluateFloat } from '../../services/evaluate.js';
import { quantize } from '../../services/quantize.js';
import { closePools } from '../../services/pool.js';
import { quantizeSearch } from '../../services/search.js';
import { GraphBuilder, int, ints, seededFloats } from '../helpers/graph-builder.js';
import { runCli } from '../helpers/cli.js';
import { hostileOutcome } from '../helpers/hostile-engine.js';
import { hostileModels } from '../helpers/onnx-mutations.js';

const dir = mkdtempSync(join(tmpdir(), 'fxpq-hostile-'));
afterAll(() => closePools());

describe('hostile models (issue 30)', () => {
  const models = hostileModels();
  for (const m of models) {
    it(`${m.name} (${m.what}): a clean refusal or a correct run`, async () => {
      const path = join(dir, m.name);
      writeFileSync(path, m.bytes);
      const r = await hostileOutcome(path);
      console.log(`${m.name}: ${r.kind}${r.kind !== 'ran' ? ` ${r.message}` : ''}`);
      expect(r.kind).not.toBe('bad');
    }, 60_000);
  }
});

/** A 3-class classifier of 8x8 grey images, and a dataset of 3 classes x 2 images beside it. */
async function smallProject(root: string, sidecar?: unknown, metadata: Record<string, string> = {}) {
  mkdirSync(root, { recursive: true });
  const b = new GraphBuilder();
  const x = b.input('x', [-1, 1, 8, 8]);
  const c = b.node('Conv', [x, b.weight([4, 1, 3, 3], 1), b.weight([4], 2)], { pads: ints([1, 1, 1, 1]) });
  const f = b.node('Flatten', [b.node('GlobalAveragePool', [b.node('Relu', [c])])]);
  b.output(b.node('Gemm', [f, b.weight([3, 4], 3), b.weight([3], 4)], { transB: int(1) }), [-1, 3]);
  Object.assign(b.graph().metadata, metadata);
  const model = join(root, 'model.onnx');
  writeFileSync(model, b.bytes());
  if (sidecar !== undefined) writeFileSync(join(root, 'model.json'), JSON.stringify(sidecar));
  const data = join(root, 'data');
  for (const cls of ['a', 'b', 'c']) {
    mkdirSync(join(data, cls), { recursive: true });
    for (let i = 0; i < 2; i++) {
      const px = Buffer.from(seededFloats(64, 13 * i + 7 * cls.charCodeAt(0)).map((v) => Math.round((v + 1) * 127)));
      await sharp(px, { raw: { width: 8, height: 8, channels: 1 } })
        .png()
        .toFile(join(data, cls, `${i}.png`));
    }
  }
  return { model, data, cache: join(root, 'cache') };
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (!isFxpqError(e)) throw e;
    return e.message;
  }
  throw new Error('expected a refusal');
}

describe('hostile models from the CLI (issue 30, item 13)', () => {
  it('fxpq inspect exits 0, or 1 with a sentence naming the file and never "internal error"', async () => {
    const models = hostileModels();
    const results = await Promise.all(
      [0, 1].map(async (half) => {
        const out: { name: string; code: number; stderr: string; path: string }[] = [];
        for (const m of models.filter((_, i) => i % 2 === half)) {
          const path = join(dir, `cli-${m.name}`);
          writeFileSync(path, m.bytes);
          const r = await runCli(['inspect', path]);
          out.push({ name: m.name, code: r.code, stderr: r.stderr, path });
        }
        return out;
      }),
    );
    for (const r of results.flat()) {
      expect({ name: r.name, internal: /internal error|\n\s+at /i.test(r.stderr) }).toEqual({
        name: r.name,
        internal: false,
      });
      expect({ name: r.name, code: r.code === 0 || r.code === 1 }).toEqual({ name: r.name, code: true });
      if (r.code === 1) expect(r.stderr).toContain(r.path);
    }
  }, 300_000);
});

describe('shared parameters (issue 30, item 6)', () => {
  it('gives each layer its own copy of a shared bias, so the simulation and the integer executor agree bit for bit', async () => {
    const m = hostileModels().find((h) => h.name === 'h-shared-bias.onnx')!;
    const model = importModel(m.bytes, m.name);
    const plan = buildPlan(model.canonical, { inputNonNegative: false });
    const biases = plan.structures.filter((s) => s.kind === 'B');
    expect(new Set(biases.map((s) => s.tensor)).size).toBe(biases.length);
    expect(biases.length).toBe(3); // two Convs and the Gemm
    const sim = await SimRunner.create(plan);
    try {
      const rand = seededRandom(5);
      const images = seededFloats(4 * 144, 3, 2);
      for (let trial = 0; trial < 6; trial++) {
        // Mixed formats: the two Convs' inputs get different fractional lengths.
        const assignment = uniformAssignment(
          plan,
          8,
          structureRanges(plan, () => 2 ** Math.floor(rand() * 6)),
        );
        const program = compileProgram(plan, assignment);
        const inF = assignment[plan.activationOf.get(plan.inputName)!]!;
        const q = quantizeArray(images, inF);
        const simulated = await sim.run(assignment, dequantizeArray(q, inF.frac), 4);
        const integer = runBatch(program, q, 4);
        expect(Array.from(integer)).toEqual(Array.from(simulated, (v) => v * 2 ** program.output.frac));
      }
    } finally {
      await sim.release();
    }
  });
});

describe('shared bias through the services (issue 30, item 6)', () => {
  it('evaluate --engine int scores a shared-bias model as the simulation does', async () => {
    const root = join(dir, 'shared-bias-run');
    const p = await smallProject(root, { preprocess: 'channels=1', classes: ['a', 'b', 'c'] });
    // Replace the model: two Convs reading one bias, between a 1-channel input and the classifier.
    const b = new GraphBuilder();
    const x = b.input('x', [-1, 1, 8, 8]);
    const bias = b.weight([4], 22, 2);
    const pads = { pads: ints([1, 1, 1, 1]) };
    const c1 = b.node('Relu', [b.node('Conv', [x, b.weight([4, 1, 3, 3], 21, 0.5), bias], pads)]);
    const c2 = b.node('Relu', [b.node('Conv', [c1, b.weight([4, 4, 3, 3], 23, 0.3), bias], pads)]);
    const f = b.node('Flatten', [b.node('GlobalAveragePool', [c2])]);
    b.output(b.node('Gemm', [f, b.weight([3, 4], 25), b.weight([3], 26)], { transB: int(1) }), [-1, 3]);
    writeFileSync(p.model, b.bytes());
    const out = join(root, 'run');
    await quantize({
      modelPath: p.model,
      dataPath: p.data,
      out,
      uniform: 6,
      calib: 3,
      eval: 3,
      seed: 1,
      cacheDir: p.cache,
    });
    const common = { modelPath: p.model, dataPath: p.data, run: out, cacheDir: p.cache, split: 'all' as const };
    const logitsOf = async (engine: 'sim' | 'int'): Promise<number[]> => {
      const file = join(root, `${engine}.f32`);
      await evaluate({ ...common, engine, saveLogits: file });
      const bytes = readFileSync(file);
      return Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4));
    };
    expect(await logitsOf('int')).toEqual(await logitsOf('sim'));
  }, 120_000);
});

describe('size bombs (issue 30, item 8)', () => {
  it('bounds resize and crop before any image is resized', () => {
    expect(() => parsePreprocess('resize=20000')).toThrow(/resize=20000 is larger than the 4096 pixels/);
    expect(() => parsePreprocess('resize=60000,crop=224')).toThrow(/larger than the 4096/);
    expect(() => parsePreprocess('crop=5000')).toThrow(/crop=5000 is larger than the 4096/);
    expect(parsePreprocess(`resize=${MAX_IMAGE_SIDE},crop=${MAX_IMAGE_SIDE}`).resize).toBe(MAX_IMAGE_SIDE);
    // A very long image resized to the largest shorter side would be 4096 x 4,096,000.
    const long = { width: 1, height: 1000, channels: 3, data: new Uint8Array(3000) };
    expect(() => preparePixels(long, parsePreprocess('resize=4096'))).toThrow(/more than the \d+ pixels/);
  });

  it('refuses a sidecar or metadata preprocess of resize=20000, naming the file', async () => {
    const root = join(dir, 'resize-sidecar');
    const p = await smallProject(root, { preprocess: 'resize=20000,crop=8,channels=1' });
    expect(await refusal(evaluateFloat({ modelPath: p.model, dataPath: p.data, cacheDir: p.cache }))).toMatch(
      /sidecar .*model\.json: Preprocessing spec "resize=20000,crop=8,channels=1": resize=20000 is larger/,
    );
    const root2 = join(dir, 'resize-metadata');
    const p2 = await smallProject(root2, undefined, { 'fxpq.preprocess': 'resize=60000,channels=1' });
    expect(await refusal(evaluateFloat({ modelPath: p2.model, dataPath: p2.data, cacheDir: p2.cache }))).toMatch(
      /model metadata of .*model\.onnx: .*resize=60000 is larger/,
    );
  });

  it('compares the class list with the model outputs before allocating per class pair', async () => {
    const root = join(dir, 'many-classes');
    const ids = ['a', 'b', 'c', ...Array.from({ length: 20_000 - 3 }, (_, i) => `extra${i}`)];
    const p = await smallProject(root, { preprocess: 'channels=1', classes: ids });
    const before = process.memoryUsage().rss;
    expect(await refusal(evaluateFloat({ modelPath: p.model, dataPath: p.data, cacheDir: p.cache }))).toMatch(
      /model\.onnx has 3 outputs but the class list \(sidecar .*model\.json\) has 20000 classes/,
    );
    expect(process.memoryUsage().rss - before).toBeLessThan(512 * 2 ** 20);
    const huge = Array.from({ length: MAX_CLASSES + 1 }, (_, i) => `c${i}`);
    const p2 = await smallProject(join(dir, 'huge-classes'), { preprocess: 'channels=1', classes: huge });
    expect(await refusal(evaluateFloat({ modelPath: p2.model, dataPath: p2.data, cacheDir: p2.cache }))).toMatch(
      /sidecar .*model\.json lists 100001 classes, more than the 100000/,
    );
  }, 60_000);

  it(`refuses a chain of 5,000 Convs at import, naming the file (at most ${MAX_LAYERS} layers)`, () => {
    const b = new GraphBuilder();
    let t = b.input('x', [-1, 2, 4, 4]);
    const w = b.weight([2, 2, 1, 1], 1);
    for (let i = 0; i < 5000; i++) t = b.node('Conv', [t, i === 0 ? w : b.weight([2, 2, 1, 1], i)]);
    b.output(b.node('Flatten', [b.node('GlobalAveragePool', [t])]), [-1, 2]);
    const started = performance.now();
    expect(() => importModel(b.bytes(), 'chain.onnx')).toThrow(
      /chain\.onnx has 500\d layers after canonicalization, more than the 4096/,
    );
    expect(performance.now() - started).toBeLessThan(30_000);
  }, 60_000);
});

describe('class lists and --save-logits (issue 30, item 12)', () => {
  it('refuses duplicate class ids in a sidecar, naming the file', async () => {
    const p = await smallProject(join(dir, 'dup-classes'), { preprocess: 'channels=1', classes: ['a', 'b', 'a'] });
    expect(await refusal(evaluateFloat({ modelPath: p.model, dataPath: p.data, cacheDir: p.cache }))).toMatch(
      /sidecar .*model\.json lists class a twice/,
    );
  });

  it('skips a sidecar that is a FIFO instead of blocking on it', async () => {
    const p = await smallProject(join(dir, 'fifo-sidecar'));
    execFileSync('mkfifo', [join(dir, 'fifo-sidecar', 'model.json')]);
    const r = await evaluateFloat({
      modelPath: p.model,
      dataPath: p.data,
      cacheDir: p.cache,
      preprocess: 'channels=1',
    });
    expect(r.n).toBeGreaterThan(0);
  }, 60_000);

  it('refuses a broken-JSON classes metadata entry, naming the file', async () => {
    const p = await smallProject(
      join(dir, 'broken-classes'),
      { preprocess: 'channels=1' },
      { 'fxpq.classes': '["a", "b"' },
    );
    expect(await refusal(evaluateFloat({ modelPath: p.model, dataPath: p.data, cacheDir: p.cache }))).toMatch(
      /model metadata of .*model\.onnx: the "classes" entry starts like a JSON list but is not valid JSON/,
    );
  });

  it('--save-logits refuses the model, a dataset image, a link to them and any other existing file; writes and rewrites logits', async () => {
    const root = join(dir, 'save-logits');
    const p = await smallProject(root, { preprocess: 'channels=1', classes: ['a', 'b', 'c'] });
    const modelBytes = readFileSync(p.model);
    const image = join(p.data, 'a', '0.png');
    const imageBytes = readFileSync(image);
    const notes = join(root, 'notes.txt');
    writeFileSync(notes, 'my notes, 24 bytes long\n');
    symlinkSync(p.model, join(root, 'link.f32'));
    const run = (saveLogits: string) =>
      evaluateFloat({ modelPath: p.model, dataPath: p.data, cacheDir: p.cache, saveLogits });
    expect(await refusal(run(p.model))).toMatch(/--save-logits .*model\.onnx: that is the model file/);
    expect(await refusal(run(join(root, 'link.f32')))).toMatch(/that is the model file/);
    expect(await refusal(run(join(root, 'model.json')))).toMatch(/that is the model's sidecar/);
    expect(await refusal(run(image))).toMatch(/that is inside the dataset's folder/);
    expect(await refusal(run(notes))).toMatch(/that file exists and is not logits of this model's 3 classes/);
    expect(await refusal(run(p.data))).toMatch(/inside the dataset's folder/);
    expect(readFileSync(p.model).equals(modelBytes)).toBe(true);
    expect(readFileSync(image).equals(imageBytes)).toBe(true);
    expect(readFileSync(notes, 'utf8')).toBe('my notes, 24 bytes long\n');
    const logits = join(root, 'logits.f32');
    const first = await run(logits);
    expect(readFileSync(logits).length).toBe(first.n * 3 * 4);
    await run(logits); // its own earlier output may be replaced
    expect(readFileSync(logits).length).toBe(first.n * 3 * 4);
  }, 60_000);
});

describe("tf2onnx's SqueezeNet ending (issue 30, item 13)", () => {
  it('searches a model whose logits are a Squeeze of a spatial ReduceMean (the statistics session fetches them)', async () => {
    const root = join(dir, 'squeezenet-search');
    const b = new GraphBuilder(9);
    const x = b.input('input_1:0', [-1, 8, 8, 3]);
    const t = b.node('Transpose', [x], { perm: ints([0, 3, 1, 2]) });
    const c = b.node('Conv', [t, b.weight([3, 3, 3, 3], 1), b.weight([3], 2)], { pads: ints([1, 1, 1, 1]) });
    const m = b.node('ReduceMean', [b.node('Relu', [c])], { axes: ints([2, 3]), keepdims: int(1) });
    const s = b.node('Squeeze', [m], { axes: ints([2, 3]) });
    b.output(b.node('Softmax', [s], { axis: int(1) }), [-1, 3]);
    for (const n of b.graph().nodes) {
      n.inputs = n.inputs.map((o) => (o === s ? 'squeezenet/Mean_Squeeze__83:0' : o));
      n.outputs = n.outputs.map((o) => (o === s ? 'squeezenet/Mean_Squeeze__83:0' : o));
    }
    mkdirSync(join(root, 'run'), { recursive: true });
    writeFileSync(join(root, 'm.onnx'), b.bytes());
    writeFileSync(join(root, 'm.json'), JSON.stringify({ preprocess: 'layout=nhwc' }));
    for (const cls of ['a', 'b', 'c']) {
      mkdirSync(join(root, 'data', cls), { recursive: true });
      for (let i = 0; i < 8; i++) {
        const px = Buffer.from(seededFloats(192, 31 * i + 7 * cls.charCodeAt(0)).map((v) => Math.round((v + 1) * 127)));
        await sharp(px, { raw: { width: 8, height: 8, channels: 3 } })
          .png()
          .toFile(join(root, 'data', cls, `${i}.png`));
      }
    }
    const report = await quantizeSearch({
      modelPath: join(root, 'm.onnx'),
      dataPath: join(root, 'data'),
      out: join(root, 'run'),
      budget: 2,
      calib: 12,
      eval: 12,
      slice: 6,
      seed: 1,
      cacheDir: join(root, 'cache'),
    });
    expect(report.quant.agreement).toBeGreaterThan(0);
  }, 120_000);
});
