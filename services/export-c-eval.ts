/**
 * The export's host evaluation of the C network: writes c/Makefile and c/eval/ (the program, the
 * evaluation images as integer inputs, their labels and the integer executor's argmax), builds
 * the program with the export's flags and requires its argmax to equal the executor's on every
 * image, so the C is checked on the whole evaluation split, not only on the golden vectors.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  MAKEFILE,
  evalInputsBin,
  evalLabelsTxt,
  evalMainC,
  type EvalSet,
} from '../native-workers/engine/export/c-eval.js';
import { FxpqError } from '../native-workers/engine/errors.js';

const run = promisify(execFile);

/** At most this many bytes of evaluation images in c/eval/inputs.bin. */
export const C_EVAL_BYTES = 32 * 1024 * 1024;

export const C_EVAL_FILES = ['c/Makefile', 'c/eval/eval_main.c', 'c/eval/inputs.bin', 'c/eval/labels.txt'];

export interface CEvalResult {
  images: number;
  labelled: number;
  correct: number;
  /** Images whose C argmax equals the integer executor's (all of them, or the export fails). */
  agree: number;
}

/** `dir`: the export's c/ folder; `build`: a scratch folder for the binary. */
export async function writeAndCheckCEval(
  dir: string,
  build: string,
  set: EvalSet,
  input: { bits: number; signed: boolean },
): Promise<CEvalResult> {
  await mkdir(join(dir, 'eval'), { recursive: true });
  await writeFile(join(dir, 'Makefile'), MAKEFILE);
  await writeFile(join(dir, 'eval', 'eval_main.c'), evalMainC(input));
  await writeFile(join(dir, 'eval', 'inputs.bin'), evalInputsBin(set, input));
  await writeFile(join(dir, 'eval', 'labels.txt'), evalLabelsTxt(set));
  const bin = join(build, 'fxpq_eval');
  try {
    await run('gcc', [
      ...['-std=c99', '-Wall', '-Wextra', '-Werror', '-O2', `-I${dir}`],
      ...[join(dir, 'model.c'), join(dir, 'eval', 'eval_main.c'), '-o', bin],
    ]);
  } catch (e) {
    throw new FxpqError(
      `Verification failed: the C evaluation program does not compile warning-free (${String((e as { stderr?: string }).stderr ?? e).split('\n')[0]}).`,
      'io',
    );
  }
  let stdout: string;
  try {
    stdout = (
      await run(bin, [join(dir, 'eval', 'inputs.bin'), join(dir, 'eval', 'labels.txt')], {
        maxBuffer: 64 * 1024 * 1024,
      })
    ).stdout;
  } catch (e) {
    stdout = String((e as { stdout?: string }).stdout ?? '');
  }
  const argmax = [...stdout.matchAll(/^image (\d+): label (-?\d+), argmax (\d+)$/gm)].map((m) => Number(m[3]));
  const differing = set.reference.filter((r, i) => argmax[i] !== r).length;
  if (argmax.length !== set.reference.length || differing > 0)
    throw new FxpqError(
      `Verification failed: the C evaluation program's argmax differs from the integer executor on ${differing} of ${set.reference.length} images.`,
      'io',
    );
  const labelled = set.labels.filter((l) => l >= 0).length;
  const correct = set.labels.filter((l, i) => l >= 0 && argmax[i] === l).length;
  return { images: argmax.length, labelled, correct, agree: argmax.length - differing };
}
