/**
 * `fxpq export RUN --out DIR`: the deployable formats of spec §6, each verified before it is
 * written (a failed verification is an error, never a warning). Everything is built in a
 * staging folder beside DIR and moved in only when every format passed.
 *
 * Ownership (issue 30): an export folder holds DIR/.fxpq-export (a marker with a format
 * version). DIR may be absent or empty, marked, or an export made before the marker existed (a
 * folder holding nothing but the names FxPQ writes: model.qdq.onnx, model.fxpq, report.json,
 * report.html, c/ with its files, and a report.json with FxPQ's export section); anything else is refused before a byte is written, and a DIR
 * that is a link is refused too. An existing export is replaced as a whole: the old folder is
 * renamed aside, the staging folder renamed in, and then the old one is removed by the names FxPQ
 * writes only; a failure before the second rename puts the old folder back. Nothing is written
 * through DIR or into it.
 *
 * Lock: PARENT/.NAME.fxpq-export.lock, through file-lock.ts; a second export to DIR is refused
 * with who holds it, a lock whose process is gone (a dead pid, another boot, a reused pid) is
 * taken over. Staging folders are named .NAME.export-PID-HEX (the old folder, while
 * replaced, .NAME.export-old-PID-HEX); only those of a dead pid are cleared, and an old folder
 * left aside by a killed export is put back when DIR is missing.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
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
import { exportLockPath, type FileLock, processAlive, takeLock } from './file-lock.js';
import { removeOwned, removeOwnedIfEmpty } from './owned-paths.js';
import { imageBatches, refuseSkipped } from './image-feed.js';
import { readRunConfig, readRunReport, runEqualized, sha256 } from './runs.js';
import { checkRunConfigAgainstDataset, checkRunConfigAgainstPlan, readRunText, readTrajectory } from './run-schemas.js';
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
  const name = basename(out);
  // Refused before anything is written: a folder that is not FxPQ's, or another export on it.
  await assertExportFolder(out);
  const lock = await lockExport(parent, name, out);
  let staging: string;
  try {
    await clearAbandoned(parent, name, out);
    await assertExportFolder(out);
    staging = join(parent, `.${name}.export-${process.pid}-${randomBytes(6).toString('hex')}`);
    await mkdir(staging);
  } catch (e) {
    await lock.release();
    throw e instanceof FxpqError
      ? e
      : new FxpqError(`${out} cannot be written: ${describeFsError(e, parent).message}`, 'io');
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

    // Everything verified: the folder appears, or replaces the old export, as a whole.
    await writeFile(join(staging, EXPORT_MARKER), EXPORT_MARKER_TEXT());
    await rm(join(staging, 'build'), { recursive: true, force: true });
    await replaceExport(parent, name, out, staging);
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
    await lock.release();
  }
}

// ---------------------------------------------------------------------------------------------
// The export folder: ownership, lock, staging, replacement.

export const EXPORT_MARKER = '.fxpq-export';
const EXPORT_MARKER_TEXT = (): string =>
  JSON.stringify({ format: 'fxpq-export-folder', version: 1, created: new Date().toISOString() }) + '\n';

/** Every file FxPQ writes into an export folder, by its path there (the marker aside). */
const EXPORT_FILES = [
  'model.qdq.onnx',
  'model.fxpq',
  'report.json',
  'report.html',
  'c/model.h',
  'c/model.c',
  'c/test_main.c',
  ...C_EVAL_FILES,
];
/** The folders holding them, deepest first. */
const EXPORT_DIRS = ['c/eval', 'c'];

/** The first entry of `out` (recursively in c/) that FxPQ does not write, or undefined. */
async function foreignEntry(out: string, rel = ''): Promise<string | undefined> {
  for (const entry of await readdir(join(out, rel))) {
    const path = rel ? `${rel}/${entry}` : entry;
    const info = await lstat(join(out, path));
    if (EXPORT_DIRS.includes(path)) {
      if (!info.isDirectory()) return `${path} (not a folder)`;
      const inner = await foreignEntry(out, path);
      if (inner !== undefined) return inner;
    } else if (path === EXPORT_MARKER && rel === '') {
      if (!info.isFile()) return path;
    } else if (!EXPORT_FILES.includes(path) || !info.isFile()) return path;
  }
  return undefined;
}

/** What `out` is: missing, empty, marked, an export made before the marker, or foreign (why). */
async function exportFolderKind(
  out: string,
): Promise<{ kind: 'missing' | 'empty' | 'marked' | 'legacy' } | { kind: 'foreign'; reason: string }> {
  let info;
  try {
    info = await lstat(out);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    throw describeFsError(e, out, 'a folder');
  }
  if (info.isSymbolicLink()) return { kind: 'foreign', reason: 'it is a link, and FxPQ does not write through links' };
  if (!info.isDirectory()) return { kind: 'foreign', reason: 'it is not a folder' };
  const names = await readdir(out).catch((e: unknown) => {
    throw describeFsError(e, out, 'a folder');
  });
  if (names.length === 0) return { kind: 'empty' };
  const foreign = await foreignEntry(out).catch((e: unknown) => {
    throw describeFsError(e, out, 'a folder');
  });
  if (foreign !== undefined) return { kind: 'foreign', reason: `it holds ${foreign}, which FxPQ does not write` };
  if (!names.includes(EXPORT_MARKER)) {
    // An export made before the marker always wrote report.json last, with its export section:
    // FxPQ's names alone (a user's own report.json) are not enough.
    try {
      const report = JSON.parse(await readRunText(join(out, 'report.json'), 'an export report')) as {
        export?: { files?: unknown };
      };
      if (Array.isArray(report?.export?.files)) return { kind: 'legacy' };
    } catch {
      // missing or not FxPQ's
    }
    return {
      kind: 'foreign',
      reason: 'none of its files is recognisably an FxPQ export (no report.json with an export section)',
    };
  }
  try {
    const marker = JSON.parse(await readRunText(join(out, EXPORT_MARKER), 'an export marker')) as { format?: unknown };
    if (marker?.format === 'fxpq-export-folder') return { kind: 'marked' };
  } catch {
    // not FxPQ's marker
  }
  return { kind: 'foreign', reason: `${join(out, EXPORT_MARKER)} is not the marker FxPQ writes` };
}

async function assertExportFolder(out: string): Promise<void> {
  const kind = await exportFolderKind(out);
  if (kind.kind === 'foreign')
    throw new FxpqError(
      `${out} is not empty and is not an FxPQ export folder (${kind.reason}); nothing in it was changed or deleted. Choose a new or empty folder for --out.`,
      'io',
    );
}

/**
 * Take the lock of exporting to `out` (PARENT/.NAME.fxpq-export.lock, through file-lock.ts): a
 * second export is refused with a sentence naming the holder; a lock whose process is gone is
 * taken over.
 */
async function lockExport(parent: string, name: string, out: string): Promise<FileLock> {
  const path = exportLockPath(join(parent, name));
  return takeLock(
    path,
    'fxpq export',
    (info) =>
      new FxpqError(
        info
          ? `${out} is being exported by ${info.command}, pid ${info.pid}${info.host !== hostname() ? ` on ${info.host}` : ''}, since ${info.started}; wait for it to finish, or delete ${path} if that process is gone.`
          : `${out} is being exported by another FxPQ process (its lock ${path} cannot be read); wait for it, or delete the lock if no FxPQ process is running.`,
        'io',
      ),
    (e) => new FxpqError(`${out} cannot be written: ${describeFsError(e, parent).message}`, 'io'),
  );
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Clear what killed exports of `out` left in `parent`: staging folders named exactly
 * .NAME.export-PID-HEX whose pid is dead (another export's live staging stays), and old
 * folders set aside during a replacement (.NAME.export-old-PID-HEX): put back when `out` is
 * missing, removed by FxPQ's names otherwise. Called with the lock held.
 */
async function clearAbandoned(parent: string, name: string, out: string): Promise<void> {
  const pattern = new RegExp(`^\\.${escapeRegExp(name)}\\.export-(old-)?([1-9][0-9]*)-[0-9a-f]{12}$`);
  for (const entry of await readdir(parent)) {
    const m = pattern.exec(entry);
    if (!m || processAlive(Number(m[2]))) continue;
    if (m[1] === undefined) {
      await removeOwned(parent, entry, 'an abandoned staging folder');
    } else if (!existsSync(out) && (await exportFolderKind(join(parent, entry))).kind !== 'foreign') {
      await rename(join(parent, entry), out);
    } else {
      await removeOldExport(parent, entry);
    }
  }
}

/** Remove an old export folder by the names FxPQ writes only; whatever else it holds stays. */
async function removeOldExport(parent: string, entry: string): Promise<void> {
  for (const file of [...EXPORT_FILES, EXPORT_MARKER])
    await removeOwned(parent, `${entry}/${file}`, 'an old export file');
  for (const dir of EXPORT_DIRS) await removeOwnedIfEmpty(parent, `${entry}/${dir}`);
  await removeOwnedIfEmpty(parent, entry);
}

/**
 * Put the verified `staging` folder at `out`: one rename when `out` is missing or empty; an
 * existing export is renamed aside first and put back if the staging folder cannot be renamed
 * in, then removed by FxPQ's names (a failure there leaves it aside, cleared by the next export).
 */
async function replaceExport(parent: string, name: string, out: string, staging: string): Promise<void> {
  const kind = await exportFolderKind(out);
  if (kind.kind === 'foreign') await assertExportFolder(out);
  if (kind.kind === 'missing' || kind.kind === 'empty') {
    if (kind.kind === 'empty') await rmdir(out).catch(() => undefined);
    try {
      await rename(staging, out);
    } catch (e) {
      throw new FxpqError(`${out} cannot be written: ${describeFsError(e, out).message}`, 'io');
    }
    return;
  }
  const asideName = `.${name}.export-old-${process.pid}-${randomBytes(6).toString('hex')}`;
  const aside = join(parent, asideName);
  try {
    await rename(out, aside);
  } catch (e) {
    throw new FxpqError(`${out} cannot be written: ${describeFsError(e, out).message}`, 'io');
  }
  try {
    await rename(staging, out);
  } catch (e) {
    // The old export goes back whole; the new one is dropped with the staging folder.
    await rename(aside, out).catch(() => undefined);
    throw new FxpqError(
      `${out} cannot be written: ${describeFsError(e, out).message} The previous export there was kept as it was.`,
      'io',
    );
  }
  await removeOldExport(parent, asideName).catch(() => undefined);
}
