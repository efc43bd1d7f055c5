/**
 * The export's host evaluation of the C network: writes c/Makefile and c/eval/ (the program, the
 * evaluation images as integer inputs, their labels and the integer executor's argmax), builds
 * the program with the export's flags and requires its argmax to equal the executor's on every
 * image, so the C is checked on the whole evaluation split, not only on the golden vectors.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  MAKEFILE,
  evalInputsBin,
  evalLabelsTxt,
  evalMainC,
  type EvalSet,
} from '../native-workers/engine/export/c-eval.js';
import { FxpqError } from '../native-workers/engine/errors.js';

/**
 * How long the export lets gcc and the programs it built run (each call). gcc: 60 s, plus 0.5 s
 * a layer (its optimizer grows with the one function of all layers) and 30 s per MB of C (the
 * constant arrays); the programs: 30 s plus a second per ten million multiply-accumulates
 * (a slow core at -O2 does several hundred million a second). Past the limit the whole process
 * group is killed and the export fails with one sentence.
 */
export function compileLimitMs(layers: number, sourceBytes: number): number {
  return Math.round(60_000 + 500 * layers + (30_000 * sourceBytes) / 2 ** 20);
}
export function runLimitMs(operationsPerImage: number, images: number): number {
  return Math.round(30_000 + (operationsPerImage * images) / 10_000);
}

export interface BoundedResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The process groups runBounded started that are still running, killed when this thread's
 * process exits (a normal exit or process.exit mid-export). A SIGTERM or SIGHUP with Node's
 * default handling, a SIGKILL, or a job worker ended by force run no hook at all: for those the
 * watchdog below ends the group.
 */
const liveGroups = new Set<number>();
let exitHook = false;
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * The group's watchdog (POSIX sh): the program runs in the background with its own stdin from
 * /dev/null, while a subshell reads the pipe this process holds open as the shell's stdin. That
 * read returns only when the pipe closes, i.e. when this process (or the worker thread that
 * spawned it) is gone, however it died, SIGKILL included; it then kills the whole group (gcc's
 * cc1 and as, the built program and whatever it started). When the program ends normally the
 * shell stops the watchdog and exits with the program's status.
 */
const WATCHDOG =
  'exec 3<&0; "$@" </dev/null 3<&- & c=$!; ' +
  '(read x <&3; kill -s KILL 0) </dev/null >/dev/null 2>&1 & w=$!; exec 3<&-; ' +
  'wait $c; r=$?; kill $w 2>/dev/null; exit $r';

/**
 * Run a program with a time limit, in a process group of its own so that a timeout kills what it
 * started too (gcc's cc1 and as). `what` names it in the sentence a timeout throws. A non-zero
 * exit is returned, not thrown; a program that cannot start throws. The group does not outlive
 * this process: it is killed on exit, and a watchdog in the group kills it when this process
 * dies without running any hook (a signal, SIGKILL included).
 */
export function runBounded(
  file: string,
  args: string[],
  o: { limitMs: number; what: string; maxBuffer?: number; signal?: AbortSignal },
): Promise<BoundedResult> {
  const maxBuffer = o.maxBuffer ?? 1024 * 1024;
  return new Promise((resolvePromise, reject) => {
    const group = process.platform !== 'win32';
    const child = group
      ? spawn('/bin/sh', ['-c', WATCHDOG, 'fxpq-bounded', file, ...args], {
          detached: true,
          stdio: ['pipe', 'pipe', 'pipe'],
        })
      : spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const pid = child.pid;
    if (group && pid !== undefined) {
      liveGroups.add(pid);
      if (!exitHook) {
        exitHook = true;
        process.on('exit', () => {
          for (const g of liveGroups) killGroup(g);
        });
      }
    }
    // Never written to: the watchdog's pipe, closed only when this process is gone.
    child.stdin?.on('error', () => {});
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let ended: 'timeout' | 'aborted' | undefined;
    const kill = (): void => {
      try {
        if (group && pid !== undefined) process.kill(-pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      ended = 'timeout';
      kill();
    }, o.limitMs);
    const onAbort = (): void => {
      ended = 'aborted';
      kill();
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    if (o.signal?.aborted) onAbort();
    child.stdout.on('data', (b: Buffer) => {
      if (outBytes < maxBuffer) out.push(b);
      outBytes += b.length;
    });
    child.stderr.on('data', (b: Buffer) => {
      if (errBytes < maxBuffer) err.push(b);
      errBytes += b.length;
    });
    const finish = (): void => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      if (pid !== undefined) liveGroups.delete(pid);
      child.stdin?.destroy();
    };
    child.on('error', (e) => {
      finish();
      reject(e);
    });
    child.on('close', (code) => {
      // A timeout or a cancel also ends whatever the program left running in its group.
      if (ended) kill();
      finish();
      if (ended === 'timeout')
        reject(
          new FxpqError(
            `Verification failed: ${o.what} did not finish within ${o.limitMs >= 10_000 ? Math.round(o.limitMs / 1000) : (o.limitMs / 1000).toFixed(1)} s, the limit for a model of this size; it was stopped and nothing was written.`,
            'io',
          ),
        );
      else if (ended === 'aborted') reject(new FxpqError('The export was cancelled.', 'io'));
      else
        resolvePromise({
          code,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
        });
    });
  });
}

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

/** `dir`: the export's c/ folder; `build`: a scratch folder for the binary, linked with `modelObject`. */
export async function writeAndCheckCEval(
  dir: string,
  build: string,
  set: EvalSet,
  input: { bits: number; signed: boolean },
  /** model.c compiled with the export's flags. */
  modelObject: string,
  limits: { compileMs: number; runMs: number; signal?: AbortSignal },
): Promise<CEvalResult> {
  await mkdir(join(dir, 'eval'), { recursive: true });
  await writeFile(join(dir, 'Makefile'), MAKEFILE);
  await writeFile(join(dir, 'eval', 'eval_main.c'), evalMainC(input));
  await writeFile(join(dir, 'eval', 'inputs.bin'), evalInputsBin(set, input));
  await writeFile(join(dir, 'eval', 'labels.txt'), evalLabelsTxt(set));
  const bin = join(build, 'fxpq_eval');
  const compiled = await runBounded(
    'gcc',
    [
      ...['-std=c99', '-Wall', '-Wextra', '-Werror', '-O2', `-I${dir}`],
      ...[join(dir, 'eval', 'eval_main.c'), modelObject, '-o', bin],
    ],
    { limitMs: limits.compileMs, what: 'gcc, building the C evaluation program,', signal: limits.signal },
  );
  if (compiled.code !== 0)
    throw new FxpqError(
      `Verification failed: the C evaluation program does not compile warning-free (${compiled.stderr.split('\n')[0]}).`,
      'io',
    );
  const { stdout } = await runBounded(bin, [join(dir, 'eval', 'inputs.bin'), join(dir, 'eval', 'labels.txt')], {
    limitMs: limits.runMs,
    what: `the C evaluation program on ${set.reference.length} images`,
    maxBuffer: 64 * 1024 * 1024,
    signal: limits.signal,
  });
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
