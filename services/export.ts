/**
 * `fxpq export RUN --out DIR`: the deployable formats of spec §6, each verified before it is
 * written (a failed verification is an error, never a warning). Everything is built in a
 * temporary folder beside DIR and moved in only when every format passed.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { topK } from '../native-workers/engine/data/metrics.js';
import { compileProgram } from '../native-workers/engine/fixedpoint/compile.js';
import { quantizeArray, type Format } from '../native-workers/engine/fixedpoint/format.js';
import { runImage } from '../native-workers/engine/fixedpoint/int-executor.js';
import { buildPlan, structureId } from '../native-workers/engine/fixedpoint/plan.js';
import { cTypeFor, emitC, type CWeights } from '../native-workers/engine/export/c-emitter.js';
import { readFxpqPackage, writeFxpqPackage } from '../native-workers/engine/export/fxpq-package.js';
import { runRoundedWeights } from './optimized-rounding.js';
import { writeQdqModel } from '../native-workers/engine/export/qdq.js';
import { renderHtmlReport, type HtmlTrajectoryPoint } from '../native-workers/engine/export/report-html.js';
import { FxpqError } from '../native-workers/engine/errors.js';
import { runIntOnPool } from './engines.js';
import {
  C_EVAL_BYTES,
  C_EVAL_FILES,
  compileLimitMs,
  runBounded,
  runLimitMs,
  writeAndCheckCEval,
} from './export-c-eval.js';
import { describeFsError } from './files.js';
import { imageBatches, refuseSkipped } from './image-feed.js';
import { readRunConfig, readRunReport, runEqualized, sha256 } from './runs.js';
import { checkRunConfigAgainstDataset, checkRunConfigAgainstPlan, readTrajectory } from './run-schemas.js';
import { openSession } from './session.js';
import { loadModelFile } from './models.js';
import { defaultCacheDir, TensorCache } from './tensor-cache.js';
import { engineEntry } from './engine-thread.js';
import type { ExportFormat, ExportResult } from '../api/contract.js';

export type { ExportFormat };
export const EXPORT_FORMATS: ExportFormat[] = ['qdq', 'fxpq', 'c'];

export interface ExportOptions {
  run: string;
  out: string;
  formats?: ExportFormat[];
  /** Held-out images the QDQ model is checked on (default: the run's evaluation split, up to 1000). */
  verifyImages?: number;
  goldenVectors?: number;
  cacheDir?: string;
  /** C weights storage (default packed). */
  cWeights?: CWeights;
  onProgress?: (stage: string) => void;
  signal?: AbortSignal;
  /**
   * Time limits of each gcc call and of each program it built, in ms (default: by the model's
   * size, `compileLimitMs` and `runLimitMs` in export-c-eval.ts).
   */
  cTimeLimits?: { compileMs?: number; runMs?: number };
}

export type { ExportResult };

async function gccAvailable(): Promise<boolean> {
  try {
    return (await runBounded('gcc', ['--version'], { limitMs: 30_000, what: 'gcc --version' })).code === 0;
  } catch {
    return false;
  }
}

export async function exportRun(o: ExportOptions): Promise<ExportResult> {
  engineEntry('export');
  const formats = o.formats ?? EXPORT_FORMATS;
  // Both through their schemas, opened without blocking: a FIFO named config.json or report.json
  // is refused at once (run-schemas.ts readRunText), and a missing report.json is named.
  const config = await readRunConfig(o.run);
  const report = await readRunReport(o.run);
  const model = await loadModelFile(config.model.path);
  if (sha256(model.bytes) !== config.model.sha256) {
    throw new FxpqError(
      `${config.model.path} is not the model ${o.run} was made from (its sha256 differs); export needs the original model.`,
      'io',
    );
  }
  // The run's own class order decides the labels.
  const classList = { ids: config.classes.ids, names: config.classes.ids, source: config.classes.source };
  const s = await openSession({
    modelPath: config.model.path,
    dataPath: config.data.path,
    preprocess: config.preprocess,
    classList,
    ...runEqualized(config),
  });
  const out = resolve(o.out);
  const parent = dirname(out);
  try {
    await mkdir(parent, { recursive: true });
  } catch (e) {
    throw describeFsError(e, parent, 'a folder');
  }
  let staging: string;
  const stagingPrefix = `.${basename(out)}.export-`;
  try {
    // An export killed before it finished left its staging folder: clear those of this output.
    for (const name of await readdir(parent))
      if (name.startsWith(stagingPrefix)) await rm(join(parent, name), { recursive: true, force: true });
    staging = await mkdtemp(join(parent, stagingPrefix));
  } catch (e) {
    throw new FxpqError(`${out} cannot be written: ${describeFsError(e, parent).message}`, 'io');
  }
  try {
    const plan = buildPlan(s.model.canonical, { inputNonNegative: config.inputNonNegative });
    // A hand-edited config.json that does not fit the model or the dataset is named (run-schemas.ts).
    checkRunConfigAgainstPlan(config, plan, o.run);
    checkRunConfigAgainstDataset(config, s.dataset.images.length, o.run);
    const rounded =
      config.rounding === 'optimized' ? await runRoundedWeights(o.run, config.assignment, plan) : undefined;
    const program = compileProgram(plan, config.assignment, config.biases ?? {}, undefined, rounded);
    const formatOfConstant = (name: string): Format | undefined =>
      config.assignment[structureId('W', name)] ?? config.assignment[structureId('B', name)];
    const inputFormat = program.input.format;

    // The reference: integer logits of held-out images.
    o.onProgress?.('reference');
    const cache = new TensorCache(o.cacheDir ?? defaultCacheDir());
    const indices = config.data.eval.slice(0, o.verifyImages ?? 1000);
    const imageShape = s.model.original.inputs[0]!.shape.slice(1);
    const imageSize = imageShape.reduce((a, b) => a * b, 1);
    const images: { input: Float32Array; ints: Int32Array; reference: Int32Array; label: number }[] = [];
    for await (const b of imageBatches({
      dataset: s.dataset,
      indices,
      spec: s.spec,
      imageSize,
      batchSize: 32,
      cache,
      onSkip: refuseSkipped(s.dataset, "the export's verification"),
    })) {
      if (o.signal?.aborted) throw new FxpqError('The export was cancelled.', 'io');
      const ints = quantizeArray(b.data, inputFormat);
      const ref = await runIntOnPool(program, ints, b.indices.length);
      const outSize = ref.length / b.indices.length;
      for (let i = 0; i < b.indices.length; i++) {
        images.push({
          input: b.data.slice(i * imageSize, (i + 1) * imageSize),
          ints: ints.slice(i * imageSize, (i + 1) * imageSize),
          reference: ref.slice(i * outSize, (i + 1) * outSize),
          label: s.labels[b.indices[i]!] ?? -1,
        });
      }
    }
    if (images.length === 0)
      throw new FxpqError(
        `No evaluation image of ${config.data.path} could be read for the export's verification.`,
        'io',
      );
    const goldenCount = Math.min(o.goldenVectors ?? (imageSize > 50_000 ? 2 : 4), images.length);
    const golden = {
      inputs: images.slice(0, goldenCount).map((im) => im.ints),
      outputs: images.slice(0, goldenCount).map((im) => im.reference),
    };
    const result: ExportResult = { out, files: [] };

    if (formats.includes('qdq')) {
      o.onProgress?.('qdq');
      // The run's preprocessing and class order travel in the model, so `fxpq evaluate --model
      // model.qdq.onnx` scores it as the run did, with no --preprocess or --classes.
      const bytes = writeQdqModel(plan, program, (name) => formatOfConstant(name)!, {
        'fxpq.preprocess': config.preprocess,
        'fxpq.classes': JSON.stringify(config.classes.ids),
      });
      const session = await ort.InferenceSession.create(bytes);
      let agree = 0;
      let mismatches = 0;
      try {
        for (const im of images) {
          const feeds = { input: new ort.Tensor('float32', im.input, [1, ...imageShape]) };
          const logits = (await session.run(feeds))['logits']!.data as Float32Array;
          const ints = Float64Array.from(logits, (v) => v * 2 ** program.output.frac);
          if (topK(ints, 1)[0] === topK(Float64Array.from(im.reference), 1)[0]) agree++;
          ints.forEach((v, i) => (mismatches += v === im.reference[i] ? 0 : 1));
        }
      } finally {
        await session.release();
      }
      const agreement = agree / images.length;
      if (agreement < 0.999) {
        throw new FxpqError(
          `Verification failed: model.qdq.onnx agrees with the integer executor on ${(100 * agreement).toFixed(2)} % of ${images.length} images (needed: 99.9 %); nothing was written.`,
          'io',
        );
      }
      await writeFile(join(staging, 'model.qdq.onnx'), bytes);
      result.qdq = { images: images.length, top1Agreement: agreement, logitMismatches: mismatches };
      result.files.push({
        name: 'model.qdq.onnx',
        bytes: bytes.length,
        note: `onnxruntime top-1 = integer executor on ${agree}/${images.length} images; ${mismatches} differing logits`,
      });
    }

    if (formats.includes('fxpq')) {
      o.onProgress?.('fxpq');
      const pkg = writeFxpqPackage(
        program,
        {
          model: config.model,
          classes: config.classes.ids,
          preprocess: config.preprocess,
          formats: config.assignment,
          memory: { ...report.memory },
        },
        golden,
        formatOfConstant,
      );
      const back = readFxpqPackage(pkg.bytes, 'model.fxpq');
      back.golden.inputs.forEach((input, v) => {
        const again = runImage(back.program, input);
        if (again.some((m, i) => m !== golden.outputs[v]![i]))
          throw new FxpqError(
            'Verification failed: model.fxpq read back does not reproduce the golden outputs; nothing was written.',
            'io',
          );
      });
      const weightBits = report.structures
        .filter((st) => st.kind !== 'A')
        .reduce((sum, st) => sum + st.bits * st.elements, 0);
      const expected = weightBits / 8 + pkg.sizes.manifest;
      const measured = pkg.bytes.length - pkg.sizes.golden;
      if (measured > expected * 1.02) {
        throw new FxpqError(
          `Verification failed: model.fxpq holds ${measured} bytes besides its golden vectors, over 2 % above the ${Math.ceil(expected)} bytes of packed weights and manifest.`,
          'io',
        );
      }
      await writeFile(join(staging, 'model.fxpq'), pkg.bytes);
      result.fxpq = {
        bytes: pkg.bytes.length,
        weightsBytes: pkg.sizes.weights,
        manifestBytes: pkg.sizes.manifest,
        goldenBytes: pkg.sizes.golden,
        expectedBytes: Math.ceil(expected),
      };
      result.files.push({
        name: 'model.fxpq',
        bytes: pkg.bytes.length,
        note: `read back and bit-exact on ${goldenCount} golden vectors; ${measured} bytes vs ${Math.ceil(expected)} for packed weights + manifest`,
      });
    }

    if (formats.includes('c')) {
      o.onProgress?.('c');
      if (!(await gccAvailable()))
        throw new FxpqError(
          'The C export is verified by compiling it, and gcc was not found on PATH; install gcc or leave out --format c.',
          'io',
        );
      const c = emitC(program, golden, formatOfConstant, { weights: o.cWeights ?? 'packed' });
      const dir = join(staging, 'c');
      await mkdir(dir);
      await writeFile(join(dir, 'model.h'), c.header);
      await writeFile(join(dir, 'model.c'), c.source);
      await writeFile(join(dir, 'test_main.c'), c.harness);
      const build = join(staging, 'build');
      await mkdir(build);
      // Bounded by the model's size: a model (or a run) must not hold the export forever.
      const compileMs = o.cTimeLimits?.compileMs ?? compileLimitMs(program.nodes.length, Buffer.byteLength(c.source));
      const runMs = (images: number): number => o.cTimeLimits?.runMs ?? runLimitMs(c.operations, images);
      // model.c is compiled once, with the flags the contract states, and linked into the golden
      // test and the evaluation program; its object is the one `size` measures (warnings do not
      // change code). Three compiles of a large model were most of an export's time.
      const object = join(build, 'model.o');
      const flags = ['-std=c99', '-Wall', '-Wextra', '-Werror', '-O2'];
      const compiled = await runBounded('gcc', [...flags, '-c', join(dir, 'model.c'), '-o', object], {
        limitMs: compileMs,
        what: 'gcc, compiling the generated C,',
        signal: o.signal,
      });
      const linked =
        compiled.code === 0
          ? await runBounded('gcc', [...flags, join(dir, 'test_main.c'), object, '-o', join(build, 'golden')], {
              limitMs: o.cTimeLimits?.compileMs ?? compileLimitMs(0, Buffer.byteLength(c.harness)),
              what: 'gcc, building the golden-vector test,',
              signal: o.signal,
            })
          : compiled;
      if (linked.code !== 0)
        throw new FxpqError(
          `Verification failed: the generated C does not compile warning-free (${linked.stderr.split('\n')[0]}).`,
          'io',
        );
      const tested = await runBounded(join(build, 'golden'), [], {
        limitMs: runMs(goldenCount),
        what: `the golden-vector test of the generated C (${goldenCount} vectors)`,
        signal: o.signal,
      });
      if (tested.code !== 0)
        throw new FxpqError(
          `Verification failed: the generated C differs from the integer executor on the golden vectors (${tested.stdout
            .trim()
            .split('\n')
            .pop()}).`,
          'io',
        );
      o.onProgress?.('c-eval');
      // The evaluation images go into the export folder: as many as fit in C_EVAL_BYTES (all 1000
      // of a CIFAR-10 run, about 200 ImageNet-sized ones).
      const imageBytes = imageSize * cTypeFor(inputFormat.bits, inputFormat.signed).bytes;
      const evalImages = images.slice(0, Math.max(1, Math.floor(C_EVAL_BYTES / imageBytes)));
      const evaluation = await writeAndCheckCEval(
        dir,
        build,
        {
          inputs: evalImages.map((im) => im.ints),
          labels: evalImages.map((im) => im.label),
          reference: evalImages.map((im) => topK(Float64Array.from(im.reference), 1)[0]!),
        },
        inputFormat,
        object,
        {
          compileMs: o.cTimeLimits?.compileMs ?? compileLimitMs(0, 64 * 1024),
          runMs: runMs(evalImages.length),
          signal: o.signal,
        },
      );
      const sized = await runBounded('size', [object], { limitMs: 60_000, what: 'size', signal: o.signal });
      if (sized.code !== 0)
        throw new FxpqError(
          `The size of the compiled model.c could not be measured (${(sized.stderr || sized.stdout).split('\n')[0]}).`,
          'io',
        );
      const size = sized.stdout.trim().split('\n')[1]!.trim().split(/\s+/).map(Number);
      await rm(build, { recursive: true, force: true });
      result.c = {
        text: size[0]!,
        data: size[1]!,
        bss: size[2]!,
        goldenVectors: goldenCount,
        weights: o.cWeights ?? 'packed',
        weightsBytes: c.memory.weightsBytes,
        arenaBytes: c.memory.arenaBytes,
        liveBytesBound: c.memory.liveBytesBound,
        evaluation,
        scratchBytes: c.memory.scratchBytes,
        unplannedBytes: c.memory.unplannedBytes,
        largest: c.memory.largest,
        plan: c.memory.tensors,
      };
      result.files.push({
        name: 'c/eval/inputs.bin',
        bytes: evaluation.images * imageBytes,
        note: `\`make eval\` in c/: the C network's argmax equals the integer executor's on ${evaluation.agree}/${evaluation.images} evaluation images; top-1 ${evaluation.correct}/${evaluation.labelled}`,
      });
      result.files.push({
        name: 'c/model.c',
        bytes: Buffer.byteLength(c.source),
        note: `gcc -std=c99 -Wall -Wextra -Werror -O2 clean; ${goldenCount} golden vectors bit-exact; weights ${o.cWeights ?? 'packed'} ${c.memory.weightsBytes} B (flash), activation arena ${c.memory.arenaBytes} B + layer scratch ${c.memory.scratchBytes} B (RAM; ${c.memory.unplannedBytes} B unplanned); object: text ${size[0]} B, data ${size[1]} B, bss ${size[2]} B`,
      });
    }

    o.onProgress?.('report');
    // Read like config.json: a FIFO is refused, each line through the schema.
    const trajectory: HtmlTrajectoryPoint[] = existsSync(join(o.run, 'trajectory.jsonl'))
      ? (await readTrajectory(o.run)).map((t) => ({
          step: t.step,
          accepted: t.accepted,
          reduction: t.reduction,
          drop: t.drop,
          phase: t.phase,
        }))
      : [];
    await writeFile(join(staging, 'report.json'), JSON.stringify({ ...report, export: result }, null, 2));
    await writeFile(
      join(staging, 'report.html'),
      renderHtmlReport({
        title: `FxPQ export of ${basename(config.model.path)}`,
        report,
        trajectory,
        exports: result.files,
        ...(result.c ? { c: result.c } : {}),
      }),
    );

    // Everything verified. A new folder appears in one rename, complete or not at all; into an
    // existing folder the files move a file at a time, each an atomic rename.
    try {
      if (!existsSync(out)) {
        await rm(join(staging, 'build'), { recursive: true, force: true });
        await chmod(staging, 0o755); // mkdtemp made it private
        await rename(staging, out);
        return result;
      }
      await mkdir(out, { recursive: true });
      if (formats.includes('c')) await mkdir(join(out, 'c', 'eval'), { recursive: true });
      for (const name of [
        'model.qdq.onnx',
        'model.fxpq',
        'c/model.h',
        'c/model.c',
        'c/test_main.c',
        ...C_EVAL_FILES,
        'report.json',
        'report.html',
      ]) {
        if (existsSync(join(staging, name))) await rename(join(staging, name), join(out, name));
      }
    } catch (e) {
      throw new FxpqError(`${out} cannot be written: ${describeFsError(e, out).message}`, 'io');
    }
    return result;
  } catch (e) {
    // A full disk or a read-only folder while the files are written (they go to the staging
    // folder, removed below, so nothing half-written is left) is a sentence, not an internal error.
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    if (!(e instanceof FxpqError) && typeof code === 'string' && /^E[A-Z]+$/.test(code))
      throw new FxpqError(`${out} cannot be written: ${describeFsError(e, out).message}`, 'io');
    throw e;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
