/**
 * Hostile run folders (issue 30): `--out` on a folder that is not a run (item 5), two quantize
 * processes on one run (item 11), half-written runs (item 14), and every persisted file of a run
 * with every field of the wrong type or removed (item 13), through evaluate --run, export and a
 * resumed quantize: always an FxpqError naming the file, never a TypeError.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFxpqError } from '../../native-workers/engine/errors.js';
import { seededRandom } from '../../native-workers/engine/data/split.js';
import { quantize } from '../../services/quantize.js';
import { evaluate } from '../../services/evaluate.js';
import { exportRun } from '../../services/export.js';
import { closePools } from '../../services/pool.js';
import { runCli } from '../helpers/cli.js';
import { modelPath, repoRoot, smallSearch, smallUniform } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-hostile-runs-'));
const cacheDir = join(tmp, 'cache');
const env = { FXPQ_CACHE_DIR: cacheDir };
const modelFile = modelPath('mnist-8')!;
const dataPath = join(repoRoot, 'test/fixtures/mnist');
const uniform = { modelPath: modelFile, dataPath, ...smallUniform(cacheDir) };
const search = smallSearch(cacheDir);
afterAll(() => closePools());

/** Every file under `dir` with its bytes. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string): void => {
    for (const name of readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${name.name}` : name.name;
      if (name.isDirectory()) walk(join(d, name.name), r);
      else out[r] = readFileSync(join(d, name.name), 'utf8');
    }
  };
  walk(dir, '');
  return out;
}

/** A pid that is certainly not running: a child that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => child.on('close', r));
  return child.pid!;
}

describe('--out on a folder that is not a run (item 5)', () => {
  it('refuses a non-empty foreign folder and changes nothing in it', async () => {
    const foreign = join(tmp, 'foreign');
    mkdirSync(join(foreign, 'rounding'), { recursive: true });
    writeFileSync(join(foreign, 'notes.txt'), 'my notes');
    writeFileSync(join(foreign, 'config.json'), '{"theme": "dark"}');
    writeFileSync(join(foreign, 'report.json'), '{"pages": 3}');
    writeFileSync(join(foreign, 'trajectory.jsonl'), '{"x": 1}\n');
    writeFileSync(join(foreign, 'rounding', 'keep.txt'), 'keep me');
    const before = snapshot(foreign);
    await expect(quantize({ ...uniform, out: foreign })).rejects.toThrow(
      /foreign is not empty and is not an FxPQ run folder \(it holds notes\.txt, which FxPQ does not write\); nothing in it was changed or deleted/,
    );
    expect(snapshot(foreign)).toEqual(before);
  }, 60_000);

  it('refuses a folder with a foreign checkpoint.json, with --restart too, without advising --restart', async () => {
    const foreign = join(tmp, 'foreign-checkpoint');
    mkdirSync(foreign, { recursive: true });
    writeFileSync(join(foreign, 'checkpoint.json'), '{"epoch": 12, "weights": "model.pt"}');
    writeFileSync(join(foreign, 'trajectory.jsonl'), 'loss 0.1\n');
    const before = snapshot(foreign);
    for (const checkpoint of ['latest', 'restart'] as const) {
      const e = await quantize({ ...search, out: foreign, checkpoint }).catch((x: Error) => x);
      expect(String(e)).toMatch(/is not an FxPQ run folder \(none of its files .* is recognisably an FxPQ run's\)/);
      expect(String(e)).not.toMatch(/--restart/);
    }
    expect(snapshot(foreign)).toEqual(before);
    const cli = await runCli(
      ['quantize', '--model', modelFile, '--data', dataPath, '--budget', '2', '--out', foreign, '--restart'],
      { env },
    );
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/is not an FxPQ run folder/);
    expect(snapshot(foreign)).toEqual(before);
  }, 60_000);

  it('marks its runs, recognises runs made before the marker, and deletes only the files it wrote', async () => {
    const out = join(tmp, 'own');
    await quantize({ ...uniform, out });
    expect(JSON.parse(readFileSync(join(out, '.fxpq-run'), 'utf8'))).toMatchObject({
      format: 'fxpq-run-folder',
      version: 1,
    });
    // A run made before the marker: only FxPQ's files, its config.json an FxPQ run configuration.
    rmSync(join(out, '.fxpq-run'));
    await quantize({ ...uniform, out });
    expect(existsSync(join(out, '.fxpq-run'))).toBe(true);
    // The user's own files in a marked run, and in its rounding/, survive a restart.
    await expect(quantize({ ...search, out, stopAfterCheckpoints: 2 })).rejects.toThrow(/stopped at a checkpoint/);
    writeFileSync(join(out, 'notes.txt'), 'mine');
    mkdirSync(join(out, 'rounding'), { recursive: true });
    writeFileSync(join(out, 'rounding', 'notes.txt'), 'mine too');
    await expect(quantize({ ...search, out, checkpoint: 'restart', stopAfterCheckpoints: 1 })).rejects.toThrow(
      /stopped at a checkpoint/,
    );
    expect(readFileSync(join(out, 'notes.txt'), 'utf8')).toBe('mine');
    expect(readFileSync(join(out, 'rounding', 'notes.txt'), 'utf8')).toBe('mine too');
    // A run made before the marker with a user's file in it is not recognisable: refused.
    rmSync(join(out, '.fxpq-run'));
    await expect(quantize({ ...search, out })).rejects.toThrow(/is not an FxPQ run folder \(it holds notes\.txt/);
  }, 120_000);
});

describe('one process per run folder (item 11)', () => {
  it('refuses a second quantize on a run in use, says who holds it, and releases on success, error and cancel', async () => {
    const out = join(tmp, 'locked');
    const first = quantize({ ...uniform, out });
    // The first holds the lock once its marker is written.
    while (!existsSync(join(out, '.fxpq-run.lock'))) await new Promise((r) => setTimeout(r, 5));
    const since = JSON.parse(readFileSync(join(out, '.fxpq-run.lock'), 'utf8')).started as string;
    await expect(quantize({ ...uniform, out })).rejects.toThrow(
      `${out} is in use by fxpq quantize, pid ${process.pid}, since ${since}; wait for it to finish, or delete ${join(out, '.fxpq-run.lock')} if that process is gone.`,
    );
    // evaluate and export refuse to read it meanwhile, with the same sentence.
    await expect(evaluate({ modelPath: modelFile, dataPath, run: out, cacheDir })).rejects.toThrow(
      `${out} is in use by fxpq quantize, pid ${process.pid}, since ${since}; read it when that run has finished.`,
    );
    await first;
    expect(existsSync(join(out, '.fxpq-run.lock'))).toBe(false);
    // Released after an error ...
    await expect(quantize({ ...uniform, out, modelPath: join(tmp, 'missing.onnx') })).rejects.toThrow(/does not exist/);
    expect(existsSync(join(out, '.fxpq-run.lock'))).toBe(false);
    // ... and after a cancel.
    const controller = new AbortController();
    await expect(
      quantize({
        ...search,
        out: join(tmp, 'locked-cancel'),
        signal: controller.signal,
        onStep: () => controller.abort(),
      }),
    ).rejects.toThrow(/cancelled/);
    expect(existsSync(join(tmp, 'locked-cancel', '.fxpq-run.lock'))).toBe(false);
  }, 120_000);

  it('takes over a stale lock whose process is gone, and names a live holder on another host', async () => {
    const out = join(tmp, 'stale');
    mkdirSync(out, { recursive: true });
    const lock = join(out, '.fxpq-run.lock');
    const pid = await deadPid();
    writeFileSync(
      lock,
      JSON.stringify({ pid, host: hostname(), started: '2026-01-01T00:00:00.000Z', command: 'fxpq quantize' }),
    );
    await quantize({ ...uniform, out });
    expect(existsSync(lock)).toBe(false);
    writeFileSync(
      lock,
      JSON.stringify({ pid: 1234, host: 'elsewhere', started: '2026-01-01T00:00:00.000Z', command: 'fxpq quantize' }),
    );
    await expect(quantize({ ...uniform, out })).rejects.toThrow(
      `${out} is in use by fxpq quantize, pid 1234 on elsewhere, since 2026-01-01T00:00:00.000Z; wait for it to finish, or delete ${lock} if that process is gone.`,
    );
    rmSync(lock);
  }, 60_000);

  it('two CLI processes on one --out: one runs, the other exits 1 naming the holder; no duplicated steps', async () => {
    const out = join(tmp, 'two-cli');
    const args = [
      'quantize',
      '--model',
      modelFile,
      '--data',
      dataPath,
      '--budget',
      '2',
      '--calib',
      '60',
      '--seed',
      '3',
      '--slice',
      '20',
      '--out',
      out,
    ];
    const [a, b] = await Promise.all([runCli(args, { env }), runCli(args, { env })]);
    expect([a.code, b.code].sort()).toEqual([0, 1]);
    const refused = a.code === 1 ? a : b;
    expect(refused.stderr).toMatch(
      /two-cli is in use by fxpq quantize, pid \d+, since \d{4}-\d\d-\d\dT[\d:.]+Z; wait for it to finish, or delete \S+two-cli\/\.fxpq-run\.lock if that process is gone\./,
    );
    expect(refused.stderr).not.toMatch(/internal error|\n\s+at /);
    const steps = readFileSync(join(out, 'trajectory.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { step: number }).step);
    expect(steps).toEqual(steps.map((_, i) => i));
    expect(existsSync(join(out, '.fxpq-run.lock'))).toBe(false);
  }, 240_000);
});

describe('half-written runs (item 14)', () => {
  it('reads a run without report.json as unfinished, and a cancelled rerun leaves no old report beside a new config', async () => {
    const out = join(tmp, 'half');
    await quantize({ ...uniform, out });
    const half = join(tmp, 'half-copy');
    cpSync(out, half, { recursive: true });
    rmSync(join(half, 'report.json'));
    const unfinished = /half-copy is incomplete: report\.json is missing \(the quantize run did not finish/;
    await expect(evaluate({ modelPath: modelFile, dataPath, run: half, cacheDir })).rejects.toThrow(unfinished);
    await expect(exportRun({ run: half, out: join(tmp, 'half-export'), cacheDir })).rejects.toThrow(unfinished);
    // A rerun at 4 bits cancelled in its evaluation: the 8-bit report must not stay as if finished.
    await expect(
      quantize({
        ...uniform,
        uniform: 4,
        out,
        onProgress: (p) => {
          if (p.stage === 'evaluation') throw new Error('interrupted');
        },
      }),
    ).rejects.toThrow(/interrupted/);
    expect(existsSync(join(out, 'report.json'))).toBe(false);
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------
// Item 13: every persisted file with every field of the wrong type or removed.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** A parsed run document edited in place by a case (its shape is the file's, deliberately unchecked). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = Record<string, any>;
type Path = (string | number)[];

/** Every path into `v`: each key of each object, the first and last element of each array. */
function pathsOf(v: Json, path: Path = [], out: Path[] = []): Path[] {
  out.push(path);
  if (Array.isArray(v)) {
    const picks = [...new Set([0, v.length - 1])].filter((i) => i >= 0);
    for (const i of picks) pathsOf(v[i]!, [...path, i], out);
  } else if (v !== null && typeof v === 'object') for (const k of Object.keys(v)) pathsOf(v[k]!, [...path, k], out);
  return out;
}

/** A value of another type than `v`, chosen by `rand`. */
function wrongType(v: Json, rand: () => number): Json {
  const options: Json[] = Array.isArray(v)
    ? [{}, 3, 'x', null]
    : v === null
      ? [{}, [1], true]
      : typeof v === 'object'
        ? [[], 3, 'x', null]
        : typeof v === 'number'
          ? ['7', true, [], {}]
          : typeof v === 'string'
            ? [7, false, [], {}]
            : ['true', 1, {}];
  return options[Math.floor(rand() * options.length)]!;
}

function mutate(doc: Json, path: Path, how: 'wrong' | 'removed', rand: () => number): Json | undefined {
  if (path.length === 0) return how === 'wrong' ? wrongType(doc, rand) : undefined;
  const copy = JSON.parse(JSON.stringify(doc)) as Json;
  let parent = copy as Record<string | number, Json>;
  for (const p of path.slice(0, -1)) parent = parent[p] as Record<string | number, Json>;
  const last = path.at(-1)!;
  if (how === 'wrong') parent[last] = wrongType(parent[last]!, rand);
  else if (Array.isArray(parent)) parent.splice(last as number, 1);
  else delete parent[last];
  return copy;
}

interface Case {
  label: string;
  /** The file the case edits, relative to the run folder. */
  file: string;
  /** Wrong types must be refused; a removal may be of an optional field. */
  mustRefuse: boolean;
  /** Write the edited file into a copy of the run. */
  write(run: string): void;
}

/** The cases of one JSON document: every path, wrong-typed and removed. */
function documentCases(file: string, doc: Json, seed: number): Case[] {
  const rand = seededRandom(seed);
  const cases: Case[] = [];
  for (const path of pathsOf(doc)) {
    for (const how of ['wrong', 'removed'] as const) {
      if (how === 'removed' && path.length === 0) continue;
      const edited = mutate(doc, path, how, rand);
      cases.push({
        label: `${file} ${JSON.stringify(path)} ${how}`,
        file,
        mustRefuse: how === 'wrong',
        write: (run) => writeFileSync(join(run, file), edited === undefined ? '' : JSON.stringify(edited)),
      });
    }
  }
  return cases;
}

const allowed = /stopped at a checkpoint \(test hook\)|holds a run started with other inputs or options/;

/** Run `action` on a fresh copy of `base` with the case's edit: it succeeds, or fails with a sentence naming the file. */
async function outcome(
  c: Case,
  base: string,
  action: (run: string) => Promise<unknown>,
): Promise<'accepted' | 'refused'> {
  const run = join(tmp, `case-${Math.random().toString(36).slice(2)}`);
  cpSync(base, run, { recursive: true });
  c.write(run);
  let accepted = false;
  try {
    await action(run);
    accepted = true;
  } catch (e) {
    if (!isFxpqError(e)) throw new Error(`${c.label}: not an FxpqError: ${(e as Error).stack}`);
    const named = e.message.includes(join(run, c.file.split('/')[0]!));
    if (!named && allowed.test(e.message) && !c.mustRefuse) return 'accepted';
    if (!named) throw new Error(`${c.label}: the sentence does not name ${c.file}: ${e.message}`);
    return 'refused';
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
  if (accepted && c.mustRefuse) throw new Error(`${c.label}: accepted, expected a refusal naming ${c.file}`);
  return 'accepted';
}

describe('every persisted file with every field of the wrong type or removed (item 13)', () => {
  const finished = join(tmp, 'gen-finished');
  const stopped = join(tmp, 'gen-stopped');
  const tally: Record<string, { tried: number; refused: number; accepted: number }> = {};
  const count = (key: string, r: 'accepted' | 'refused'): void => {
    tally[key] ??= { tried: 0, refused: 0, accepted: 0 };
    tally[key].tried++;
    tally[key][r]++;
  };
  afterAll(() => console.log(JSON.stringify(tally)));

  beforeAll(async () => {
    // A finished uniform run with optimized rounding (rounding/*.bin), and a search stopped at its
    // fourth checkpoint; the finished run gets the search's trajectory for the export's report.
    await quantize({ ...uniform, rounding: 'optimized', out: finished });
    await expect(quantize({ ...search, out: stopped, stopAfterCheckpoints: 4 })).rejects.toThrow(/stopped/);
    cpSync(join(stopped, 'trajectory.jsonl'), join(finished, 'trajectory.jsonl'));
  }, 240_000);

  const evaluateRun = (run: string) => evaluate({ modelPath: modelFile, dataPath, run, cacheDir });
  const exportIt = (run: string) =>
    exportRun({
      run,
      out: join(run, '..', `${run.split('/').at(-1)}-export`),
      formats: ['fxpq'],
      verifyImages: 4,
      cacheDir,
    });
  const resume = (run: string) => quantize({ ...search, out: run, stopAfterCheckpoints: 1 });

  const json = (run: string, file: string): Json => JSON.parse(readFileSync(join(run, file), 'utf8')) as Json;

  /** The semantic edits no schema can see: indices out of range, a short bias, unknown ids. */
  function semanticCases(): { config: Case[]; checkpoint: Case[]; trajectory: Case[] } {
    const edit =
      (file: string, f: (doc: Doc) => void) =>
      (run: string): void => {
        const doc = json(run, file) as Doc;
        f(doc);
        writeFileSync(join(run, file), JSON.stringify(doc));
      };
    const refuse = (label: string, file: string, write: (run: string) => void): Case => ({
      label,
      file,
      mustRefuse: true,
      write,
    });
    return {
      config: [
        refuse(
          'eval index out of range',
          'config.json',
          edit('config.json', (d) => (d.data.eval[0] = 1_000_000)),
        ),
        refuse(
          'calib index out of range',
          'config.json',
          edit('config.json', (d) => (d.data.calib[3] = 100)),
        ),
        refuse(
          'eval not an array',
          'config.json',
          edit('config.json', (d) => (d.data.eval = { 0: 1 })),
        ),
        refuse(
          'classes.ids an object',
          'config.json',
          edit('config.json', (d) => (d.classes.ids = { a: '0' })),
        ),
        refuse(
          'preprocess a number',
          'config.json',
          edit('config.json', (d) => (d.preprocess = 28)),
        ),
        refuse(
          'short bias override',
          'config.json',
          edit('config.json', (d) => (d.biases = { Convolution28_bias: [0.5] })),
        ),
        refuse(
          'bias of an unknown tensor',
          'config.json',
          edit('config.json', (d) => (d.biases = { nothing: [0.5] })),
        ),
        refuse(
          'unknown structure',
          'config.json',
          edit('config.json', (d) => (d.assignment['W:nothing'] = d.assignment['W:Parameter5'])),
        ),
        refuse(
          'a structure without format',
          'config.json',
          edit('config.json', (d) => delete d.assignment['W:Parameter5']),
        ),
        refuse(
          'a sign flipped',
          'config.json',
          edit('config.json', (d) => (d.assignment['W:Parameter5'].signed = false)),
        ),
        refuse('a FIFO-free folder named config.json', 'config.json', (run) => {
          rmSync(join(run, 'config.json'));
          mkdirSync(join(run, 'config.json'));
        }),
      ],
      checkpoint: [
        refuse(
          'state null',
          'checkpoint.json',
          edit('checkpoint.json', (d) => (d.state = null)),
        ),
        refuse(
          'unknown id in order',
          'checkpoint.json',
          edit('checkpoint.json', (d) => d.state.order.push('W:nothing')),
        ),
        refuse(
          'unknown id in frozen',
          'checkpoint.json',
          edit('checkpoint.json', (d) => d.state.frozen.push('A:nothing')),
        ),
        refuse(
          'short bias in the state',
          'checkpoint.json',
          edit('checkpoint.json', (d) => (d.state.biases = { Convolution28_bias: [1] })),
        ),
        refuse(
          'more steps than the trajectory',
          'checkpoint.json',
          edit('checkpoint.json', (d) => (d.state.steps += 50)),
        ),
      ],
      trajectory: [
        refuse('a non-JSON trajectory line', 'trajectory.jsonl', (run) => {
          const lines = readFileSync(join(run, 'trajectory.jsonl'), 'utf8').split('\n');
          lines[1] = 'not json';
          writeFileSync(join(run, 'trajectory.jsonl'), lines.join('\n'));
        }),
        refuse('a trajectory line of the wrong shape', 'trajectory.jsonl', (run) => {
          const lines = readFileSync(join(run, 'trajectory.jsonl'), 'utf8').split('\n');
          lines[0] = '{"step": "zero"}';
          writeFileSync(join(run, 'trajectory.jsonl'), lines.join('\n'));
        }),
      ],
    };
  }

  /** The header of one rounded-weights file, as a document. */
  function roundingCases(run: string): Case[] {
    const name = readdirSync(join(run, 'rounding')).find((n) => n.endsWith('.bin'))!;
    const bytes = readFileSync(join(run, 'rounding', name));
    const nl = bytes.indexOf(10);
    const header = JSON.parse(bytes.subarray(0, nl).toString('utf8')) as Json;
    return documentCases(`rounding/${name}`, header, 13).map((c) => ({
      ...c,
      write: (r: string) => {
        const probe = join(r, 'probe');
        mkdirSync(join(probe, 'rounding'), { recursive: true });
        c.write(probe);
        const edited = readFileSync(join(probe, 'rounding', name));
        rmSync(probe, { recursive: true });
        writeFileSync(join(r, 'rounding', name), Buffer.concat([edited, Buffer.from('\n'), bytes.subarray(nl + 1)]));
      },
    }));
  }

  /**
   * Trajectory lines: the first and the last, every field (`covered`: only the lines the
   * checkpoint covers, the ones a resume reads; those after it are dropped unread).
   */
  function trajectoryCases(run: string, covered?: number): Case[] {
    const lines = readFileSync(join(run, 'trajectory.jsonl'), 'utf8').trim().split('\n');
    const cases: Case[] = [];
    for (const index of [0, (covered ?? lines.length) - 1])
      for (const c of documentCases('trajectory.jsonl', JSON.parse(lines[index]!) as Json, 17 + index)) {
        if (c.label.includes('[] wrong') && index > 0) continue;
        cases.push({
          ...c,
          write: (r: string) => {
            const probe = join(r, 'probe');
            mkdirSync(probe, { recursive: true });
            c.write(probe);
            const edited = readFileSync(join(probe, 'trajectory.jsonl'), 'utf8') || 'null';
            rmSync(probe, { recursive: true });
            const copy = [...lines];
            copy[index] = edited;
            writeFileSync(join(r, 'trajectory.jsonl'), copy.join('\n') + '\n');
          },
        });
      }
    return cases;
  }

  it('config.json through evaluate --run and export', async () => {
    const cases = [...documentCases('config.json', json(finished, 'config.json'), 1), ...semanticCases().config];
    for (const c of cases) {
      count('config.json evaluate', await outcome(c, finished, evaluateRun));
      count('config.json export', await outcome(c, finished, exportIt));
    }
  }, 600_000);

  it('report.json and the trajectory through export', async () => {
    for (const c of documentCases('report.json', json(finished, 'report.json'), 2))
      count('report.json export', await outcome(c, finished, exportIt));
    // The export draws the trajectory in report.html and leaves a line that is not a step out of
    // the chart: it may succeed, and when it refuses, it names the file.
    for (const c of [...trajectoryCases(finished), ...semanticCases().trajectory])
      count('trajectory.jsonl export', await outcome({ ...c, mustRefuse: false }, finished, exportIt));
  }, 600_000);

  it('the rounded weights through evaluate --run and export', async () => {
    for (const c of roundingCases(finished)) {
      count('rounding evaluate', await outcome(c, finished, evaluateRun));
      count('rounding export', await outcome(c, finished, exportIt));
    }
  }, 600_000);

  it('checkpoint.json, the trajectory and the marker through a resumed quantize', async () => {
    const cases = [
      ...documentCases('checkpoint.json', json(stopped, 'checkpoint.json'), 3),
      ...semanticCases().checkpoint,
      ...trajectoryCases(stopped, (json(stopped, 'checkpoint.json') as { state: { steps: number } }).state.steps),
      ...semanticCases().trajectory,
      ...documentCases('.fxpq-run', json(stopped, '.fxpq-run'), 4),
    ];
    for (const c of cases) count(`${c.file} resume`, await outcome(c, stopped, resume));
  }, 600_000);

  it('exits 1 from the CLI with the sentence, never an internal error or a stack trace', async () => {
    const bad = join(tmp, 'cli-bad');
    cpSync(finished, bad, { recursive: true });
    const config = json(bad, 'config.json') as Doc;
    config.data.eval[0] = 1_000_000;
    writeFileSync(join(bad, 'config.json'), JSON.stringify(config));
    const evaluated = await runCli(['evaluate', '--model', modelFile, '--data', dataPath, '--run', bad], { env });
    const report = json(bad, 'report.json') as Doc;
    report.structures = 'none';
    writeFileSync(join(bad, 'report.json'), JSON.stringify(report));
    const exported = await runCli(['export', bad, '--out', join(tmp, 'cli-bad-export')], { env });
    const resumed = join(tmp, 'cli-resumed');
    cpSync(stopped, resumed, { recursive: true });
    const checkpoint = json(resumed, 'checkpoint.json') as Doc;
    checkpoint.state = null;
    writeFileSync(join(resumed, 'checkpoint.json'), JSON.stringify(checkpoint));
    const quantized = await runCli(
      [
        'quantize',
        '--model',
        modelFile,
        '--data',
        dataPath,
        '--budget',
        '2',
        '--calib',
        '60',
        '--seed',
        '3',
        '--slice',
        '20',
        '--out',
        resumed,
      ],
      { env },
    );
    for (const [r, file, what] of [
      [
        evaluated,
        'config.json',
        /does not fit its dataset: data\.eval\[0\] is image 1000000, the dataset has 100 images/,
      ],
      [exported, 'report.json', /is not a run report \(field structures is a string, expected array\)/],
      [quantized, 'checkpoint.json', /is not a search checkpoint \(field state is null, expected object\)/],
    ] as const) {
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(file);
      expect(r.stderr).toMatch(what);
      expect(r.stderr).not.toMatch(/internal error|\n\s+at /i);
    }
  }, 240_000);
});
