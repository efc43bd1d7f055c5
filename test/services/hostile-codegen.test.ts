/**
 * Issue 30, items 1, 8 (gcc and harness time limits), 10 and 13 (FIFOs): what a hostile model or
 * run folder can put into the export's generated files. A model whose node and tensor names carry
 * C that would call system() exports and verifies with nothing run; a foreign report.json cannot
 * put markup into report.html; gcc and the programs it builds run under a time limit; a FIFO
 * named config.json, report.json or trajectory.jsonl is refused at once.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportRun } from '../../services/export.js';
import { runBounded } from '../../services/export-c-eval.js';
import { quantize } from '../../services/quantize.js';
import { closePools, tsxLoaderUrl } from '../../services/pool.js';
import { renderHtmlReport, REPORT_CSP, type HtmlReportInput } from '../../native-workers/engine/export/report-html.js';
import { modelPath, repoRoot, smallUniform } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-hostile-codegen-'));
/** A process still running (a zombie, dead but not yet reaped by init, counts as ended). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
const cacheDir = join(tmp, 'cache');
const marker = join(tmp, 'pwned');
const fifos: string[] = [];
afterAll(async () => {
  // A reader still blocked on a FIFO (the bug) is released: open it for writing and close it.
  for (const f of fifos) {
    try {
      closeSync(openSync(f, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // no reader left
    }
  }
  await closePools();
  rmSync(tmp, { recursive: true, force: true });
});

const hasGcc = (() => {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** Ways out of a C comment (and of its line), each followed by code that would create the marker. */
const call = `{ extern int system(const char *); system("touch ${marker}"); }`;
const ESCAPES = [
  `X **// ${call} /*`,
  `*/ ${call} /*`,
  `*\\\n/ ${call} /*`,
  `??/\n*/ ${call} /*`,
  `\n#include "/etc/passwd"\n`,
  `a\0*/ ${call} /*`,
  `é*/ ${call} /*`,
  `" */ ${call} /* "`,
  `// */ ${call} /*`,
  `</style><script>alert(1)</script>" onload="alert(1)`,
];

/** mnist-8 with every node name and every intermediate tensor and initializer name hostile. */
function hostileModel(dir: string, name: string, escapes: string[]): string {
  const m = fromBinary(ModelProtoSchema, readFileSync(modelPath('mnist-8')!));
  const g = m.graph!;
  const keep = new Set([...g.input.map((v) => v.name), ...g.output.map((v) => v.name)]);
  const renamed = new Map<string, string>();
  const rename = (t: string): string => {
    if (!t || keep.has(t)) return t;
    let r = renamed.get(t);
    if (!r) renamed.set(t, (r = `${escapes[renamed.size % escapes.length]}${t}`));
    return r;
  };
  g.node.forEach((n, i) => {
    n.name = `${escapes[i % escapes.length]}${n.name}`;
    n.input = n.input.map(rename);
    n.output = n.output.map(rename);
  });
  for (const t of g.initializer) t.name = rename(t.name);
  for (const v of g.valueInfo) v.name = rename(v.name);
  for (const v of g.input) v.name = rename(v.name);
  const path = join(dir, `${name}.onnx`);
  writeFileSync(path, toBinary(ModelProtoSchema, m));
  writeFileSync(join(dir, `${name}.json`), readFileSync(join(repoRoot, 'test/fixtures/models/mnist-8.json')));
  return path;
}

/** A finished uniform-8 run of the hostile model. */
async function hostileRun(name: string, escapes: string[]): Promise<string> {
  const out = join(tmp, name);
  await quantize({
    modelPath: hostileModel(tmp, name, escapes),
    dataPath: join(repoRoot, 'test/fixtures/mnist'),
    out,
    ...smallUniform(cacheDir),
  });
  return out;
}

let run = '';
beforeAll(async () => {
  run = await hostileRun('run', ESCAPES);
}, 120_000);

/** A copy of the run to damage. */
function copyRun(name: string): string {
  const dir = join(tmp, name);
  execFileSync('cp', ['-r', run, dir]);
  return dir;
}

describe('a model whose names carry C', () => {
  it.skipIf(!hasGcc)(
    "the issue's name (`X **// { ...system(...); } /*`, warning-free C before the fix) exports and runs nothing",
    async () => {
      rmSync(marker, { force: true });
      const issueRun = await hostileRun('issue-run', [ESCAPES[0]!]);
      const result = await exportRun({ run: issueRun, out: join(tmp, 'export-issue'), formats: ['c'], cacheDir });
      expect(result.c!.goldenVectors).toBeGreaterThan(0);
      expect(existsSync(marker)).toBe(false);
    },
    180_000,
  );

  it.skipIf(!hasGcc)(
    'exports to C that compiles warning-free and matches the golden vectors, and nothing of the names runs',
    async () => {
      rmSync(marker, { force: true });
      const out = join(tmp, 'export-c');
      const result = await exportRun({ run, out, formats: ['c', 'fxpq'], cacheDir });
      expect(existsSync(marker)).toBe(false);
      expect(result.c!.goldenVectors).toBeGreaterThan(0);
      expect(result.c!.evaluation!.agree).toBe(result.c!.evaluation!.images);
      const source = readFileSync(join(out, 'c', 'model.c'), 'utf8');
      // The names are there, as comments: each layer's comment is one line and ends once.
      const comments = source.split('\n').filter((l) => /^\/\* (Conv|Relu|MaxPool|Reshape|Gemm|Add|MatMul) /.test(l));
      expect(comments.length).toBeGreaterThan(3);
      for (const l of comments) {
        expect(l.indexOf('*/')).toBe(l.length - 2);
        expect(l).toMatch(/^[\x20-\x7e]*$/);
      }
      // Outside comments, no trace of the payload but identifiers reduced to [A-Za-z0-9_]: the
      // preprocessed C declares and calls no system(), includes nothing of the names.
      const pre = execFileSync(
        'gcc',
        ['-std=c99', '-trigraphs', '-fpreprocessed', '-dD', '-E', '-P', join(out, 'c', 'model.c')],
        {
          encoding: 'utf8',
        },
      );
      expect(pre.split('\n').filter((l) => /\bsystem\s*\(|\bextern\b|\/etc\/|\/tmp\//.test(l))).toEqual([]);
      expect(pre).toMatch(/fxpq_run/);
      // The names reach report.html too (layers, tensors): as text.
      expectInert(readFileSync(join(out, 'report.html'), 'utf8'));
      // And the folder builds as the Makefile says, still without running a name.
      execFileSync('make', ['-s', 'test'], { cwd: join(out, 'c'), stdio: 'ignore' });
      expect(existsSync(marker)).toBe(false);
    },
    180_000,
  );
});

/** Every tag of the page, and whether any carries an event handler or a script. */
function markup(html: string): { tags: string[]; handlers: string[] } {
  const tags = [...html.matchAll(/<\/?([A-Za-z][A-Za-z0-9-]*)([^>]*)>/g)];
  return {
    tags: [...new Set(tags.map((t) => t[1]!.toLowerCase()))].sort(),
    handlers: tags.filter((t) => /\son[a-z]+\s*=|javascript:/i.test(t[2]!)).map((t) => t[0]),
  };
}
const PAGE_TAGS = [
  'body',
  'circle',
  'h1',
  'h2',
  'head',
  'html',
  'line',
  'meta',
  'path',
  'rect',
  'style',
  'svg',
  'table',
  'td',
  'text',
  'th',
  'title',
  'tr',
];

const HOSTILE = [
  '<script>document.title="pwned"</script>',
  '"onload="alert(1)',
  "' onmouseover='alert(1)",
  '</style><script>alert(1)</script>',
  '<img src=x onerror=alert(1)>',
  '</td></tr></table><iframe src="javascript:alert(1)"></iframe>',
];

function hostileReport(): HtmlReportInput['report'] {
  const h = (i: number): never => HOSTILE[i % HOSTILE.length] as never;
  return {
    budget: h(0),
    data: { calib: h(1), eval: h(2), seed: h(3) },
    fp: { top1: h(4), top5: 0.99 },
    quant: { top1: h(5), top5: h(0), agreement: h(1), n10: h(2), n01: h(3), dropStandardError: h(4) },
    memory: {
      reduction: h(0),
      weightsReduction: h(1),
      avgBitsWeights: h(2),
      avgBitsActivations: h(3),
      fp32Bits: h(4),
      quantBits: h(5),
    },
    structures: HOSTILE.map((s, i) => ({
      layer: s,
      kind: h(i + 1),
      tensor: h(i + 2),
      elements: h(i + 3),
      signed: h(i),
      bits: h(i + 4),
      frac: h(i + 5),
    })),
    search: { evaluations: h(0), seconds: h(1) },
  };
}

function expectInert(html: string): void {
  const { tags, handlers } = markup(html);
  expect(tags).toEqual(PAGE_TAGS.filter((t) => tags.includes(t)));
  expect(tags).not.toContain('script');
  expect(handlers).toEqual([]);
  expect(html.match(/<\/style>/g)!.length).toBe(1);
  expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="${REPORT_CSP.replace(/'/g, '&#39;')}">`);
  expect(REPORT_CSP).toMatch(/default-src 'none'/);
  expect(REPORT_CSP).not.toMatch(/script-src/);
}

describe('report.html from a foreign report.json', () => {
  it('writes every value as text or a number, and carries a CSP that allows no script', () => {
    const html = renderHtmlReport({
      title: HOSTILE[0]!,
      report: hostileReport(),
      trajectory: HOSTILE.map((s, i) => ({
        step: s as never,
        accepted: s as never,
        reduction: i,
        drop: s as never,
        phase: s,
      })),
      exports: HOSTILE.map((s) => ({ name: s, bytes: s as never, note: s })),
      c: {
        weights: HOSTILE[3]!,
        weightsBytes: HOSTILE[4] as never,
        arenaBytes: HOSTILE[5] as never,
        liveBytesBound: HOSTILE[0] as never,
        scratchBytes: HOSTILE[1] as never,
        unplannedBytes: HOSTILE[2] as never,
        largest: { tensor: HOSTILE[3]!, bytes: HOSTILE[4] as never },
      },
    });
    expectInert(html);
    expect(html).toContain('&lt;script&gt;');
    expect(html).toContain('budget -');
  });

  it('an export of a run whose report.json is hostile refuses it by its schema, or writes an inert report.html', async () => {
    // Wrong types (the budget, a kind, element counts as markup): refused in a sentence naming the file.
    const typed = copyRun('hostile-report-types');
    const report = JSON.parse(readFileSync(join(typed, 'report.json'), 'utf8'));
    report.budget = HOSTILE[0];
    report.structures[0].kind = HOSTILE[1];
    report.structures[1].elements = HOSTILE[3];
    writeFileSync(join(typed, 'report.json'), JSON.stringify(report));
    await expect(
      exportRun({ run: typed, out: join(tmp, 'export-types'), formats: ['fxpq'], cacheDir }),
    ).rejects.toThrow(/report\.json is not a run report/);
    // Markup in the strings a report holds (layer and tensor names): written as text.
    const named = copyRun('hostile-report-names');
    const again = JSON.parse(readFileSync(join(named, 'report.json'), 'utf8'));
    again.structures = again.structures.map((st: Record<string, unknown>, i: number) => ({
      ...st,
      layer: HOSTILE[i % HOSTILE.length],
      tensor: HOSTILE[(i + 1) % HOSTILE.length],
    }));
    writeFileSync(join(named, 'report.json'), JSON.stringify(again));
    const out = join(tmp, 'export-hostile-report');
    await exportRun({ run: named, out, formats: ['fxpq'], cacheDir });
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expectInert(html);
    expect(html).toContain('&lt;/style&gt;&lt;script&gt;');
  }, 120_000);
});

describe('time limits of gcc and of the programs it built', () => {
  it('kills the whole process group at the limit and says so in one sentence', async () => {
    const late = join(tmp, 'late');
    const started = Date.now();
    await expect(
      runBounded('sh', ['-c', `(sleep 1; touch ${late}) & sleep 30`], { limitMs: 300, what: 'the test program' }),
    ).rejects.toThrow(
      /^Verification failed: the test program did not finish within 0\.3 s, the limit for a model of this size; it was stopped and nothing was written\.$/,
    );
    expect(Date.now() - started).toBeLessThan(5000);
    await new Promise((r) => setTimeout(r, 1500));
    expect(existsSync(late)).toBe(false);
    const ok = await runBounded('sh', ['-c', 'echo hi; exit 3'], { limitMs: 10_000, what: 'x' });
    expect(ok).toEqual({ code: 3, stdout: 'hi\n', stderr: '' });
  });

  // A CLI killed mid-export used to leave gcc and the built programs running in their own
  // process group (30 s here, minutes for a large model).
  for (const how of ['exit', 'SIGTERM', 'SIGHUP', 'SIGKILL'] as const)
    it(`the group it started does not outlive this process when it ends by ${how}`, async () => {
      const pidFile = join(tmp, `group-${how}`);
      const script = join(tmp, `group-${how}.mts`);
      writeFileSync(
        script,
        [
          `import { runBounded } from ${JSON.stringify(join(repoRoot, 'services/export-c-eval.ts'))};`,
          `const running = runBounded('sh', ['-c', 'sleep 30 & echo $! > ${pidFile}; wait'], { limitMs: 60_000, what: 'x' });`,
          `import { existsSync } from 'node:fs';`,
          // 'exit': the process ends by itself (process.exit) while the program runs.
          `if (process.argv[2] === 'exit') setInterval(() => existsSync(${JSON.stringify(pidFile)}) && setTimeout(() => process.exit(0), 200), 20);`,
          `await running;`,
        ].join('\n'),
      );
      const child = spawn(process.execPath, ['--import', 'tsx', script, how], { cwd: repoRoot, stdio: 'ignore' });
      const closed = new Promise((r) => child.on('close', r));
      const deadline = Date.now() + 20_000;
      while (!existsSync(pidFile) || readFileSync(pidFile, 'utf8').trim() === '') {
        if (Date.now() > deadline) throw new Error('the program did not start');
        await new Promise((r) => setTimeout(r, 50));
      }
      const sleeper = Number(readFileSync(pidFile, 'utf8').trim());
      expect(running(sleeper)).toBe(true);
      if (how !== 'exit') child.kill(how);
      await closed;
      const until = Date.now() + 5000;
      while (running(sleeper) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(running(sleeper)).toBe(false);
    }, 30_000);

  it('the group it started does not outlive a job worker ended by force (a cancel it did not answer)', async () => {
    const pidFile = join(tmp, 'group-worker');
    const entry = join(tmp, 'group-worker.ts');
    writeFileSync(
      entry,
      [
        `import { runBounded } from ${JSON.stringify(join(repoRoot, 'services/export-c-eval.ts'))};`,
        `export default async function (): Promise<void> {`,
        `  await runBounded('sh', ['-c', 'sleep 30 & echo $! > ${pidFile}; wait'], { limitMs: 60_000, what: 'x' });`,
        `}`,
      ].join('\n'),
    );
    const pool = new Piscina({ filename: pathToFileURL(entry).href, execArgv: ['--import', tsxLoaderUrl()] });
    const hard = new AbortController();
    const task = pool.run({}, { signal: hard.signal }).catch((e: unknown) => e);
    try {
      const deadline = Date.now() + 20_000;
      while (!existsSync(pidFile) || readFileSync(pidFile, 'utf8').trim() === '') {
        if (Date.now() > deadline) throw new Error('the program did not start');
        await new Promise((r) => setTimeout(r, 50));
      }
      const sleeper = Number(readFileSync(pidFile, 'utf8').trim());
      expect(running(sleeper)).toBe(true);
      hard.abort();
      await task;
      const until = Date.now() + 5000;
      while (running(sleeper) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(running(sleeper)).toBe(false);
    } finally {
      await pool.destroy();
    }
  }, 30_000);

  it.skipIf(!hasGcc)(
    'an export whose gcc or golden-vector test runs past its limit fails and writes nothing',
    async () => {
      const out = join(tmp, 'export-slow');
      await expect(exportRun({ run, out, formats: ['c'], cacheDir, cTimeLimits: { compileMs: 1 } })).rejects.toThrow(
        /gcc, compiling the generated C, did not finish within/,
      );
      // A golden-vector test that never ends: a stand-in gcc on PATH whose "program" sleeps (and
      // leaves a child of its own, which the limit kills with it).
      const bin = join(tmp, 'fake-gcc');
      mkdirSync(bin, { recursive: true });
      const late = join(tmp, 'harness-survived');
      writeFileSync(
        join(bin, 'gcc'),
        `#!/bin/sh\nout=""\nwhile [ $# -gt 0 ]; do [ "$1" = "-o" ] && out="$2"; shift; done\n[ -n "$out" ] && printf '#!/bin/sh\\n(sleep 2; touch ${late}) &\\nsleep 60\\n' > "$out" && chmod +x "$out"\nexit 0\n`,
        { mode: 0o755 },
      );
      const path = process.env['PATH'];
      process.env['PATH'] = `${bin}:${path}`;
      try {
        const started = Date.now();
        await expect(exportRun({ run, out, formats: ['c'], cacheDir, cTimeLimits: { runMs: 500 } })).rejects.toThrow(
          /^Verification failed: the golden-vector test of the generated C \(\d+ vectors\) did not finish within 0\.5 s, the limit for a model of this size; it was stopped and nothing was written\.$/,
        );
        expect(Date.now() - started).toBeLessThan(30_000);
      } finally {
        process.env['PATH'] = path;
      }
      await new Promise((r) => setTimeout(r, 2500));
      expect(existsSync(late)).toBe(false);
      expect(existsSync(out)).toBe(false);
    },
    120_000,
  );
});

describe('run files that are not regular files', () => {
  for (const name of ['config.json', 'report.json', 'trajectory.jsonl']) {
    it(`a FIFO named ${name} is refused at once instead of blocking the export`, async () => {
      const dir = copyRun(`fifo-${name}`);
      rmSync(join(dir, name), { force: true });
      execFileSync('mkfifo', [join(dir, name)]);
      fifos.push(join(dir, name));
      const started = Date.now();
      await expect(
        exportRun({ run: dir, out: join(tmp, `export-fifo-${name}`), formats: ['fxpq'], cacheDir }),
      ).rejects.toThrow(new RegExp(`${name.replace('.', '\\.')} is not a regular file`));
      expect(Date.now() - started).toBeLessThan(20_000);
    }, 30_000);
  }
});
