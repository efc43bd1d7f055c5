/**
 * `npm run bench -- event-loop`: how responsive the front-end process stays while a ResNet-20
 * search runs through the service API (createServices -> project -> startRun), the way the
 * desktop app and `fxpq serve` run it. Rows, measured side by side in one run:
 *   - pool (the app): the search in a Piscina job worker; the front end only relays events;
 *   - in-thread (before this change): the same search on the front end's own thread.
 * Each row: event-loop delay of the front-end thread (perf_hooks monitorEventLoopDelay, p99 and
 * max), wall time, and whether the result is the same run (assignment, accuracy, evaluations).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { RunReport } from '../api/contract.js';
import { createServices } from '../services/api.js';
import { JobManager, type JobRunnerMode } from '../services/jobs.js';
import { demoInputs } from '../services/demo.js';

interface Row {
  label: string;
  mode: JobRunnerMode;
  p99: number;
  max: number;
  seconds: number;
  report: RunReport;
}

async function searchThroughApi(label: string, mode: JobRunnerMode, calib: number, ortThreads?: number): Promise<Row> {
  const tmp = mkdtempSync(join(tmpdir(), `fxpq-bench-loop-${mode}-`));
  const { api, jobs } = createServices({ host: 'web', jobs: new JobManager({ mode }), configDir: join(tmp, 'config') });
  const inputs = demoInputs();
  const project = join(tmp, 'project');
  await api.createProject(project, 'bench');
  await api.addModel(project, inputs.model);
  const imported = await api.importDataset(project, { source: inputs.images, classes: inputs.classes, name: 'demo' });
  await jobs.get(imported.id)!.result;
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  const started = performance.now();
  histogram.enable();
  let report: RunReport;
  if (ortThreads === undefined) {
    const job = await api.startRun(project, { model: 'fmnist_resnet20', dataset: 'demo', budget: 1, calib, seed: 0 });
    report = (await jobs.get(job.id)!.result) as RunReport;
  } else {
    // The same search with the simulation's onnxruntime on one intra-op thread (not a UI option).
    report = await jobs.start('quantize', {
      modelPath: inputs.model,
      dataPath: join(project, 'datasets', 'demo'),
      out: join(project, 'runs', 'threads'),
      budget: 1,
      calib,
      seed: 0,
      ortThreads,
    }).result;
  }
  histogram.disable();
  return {
    label,
    mode,
    p99: histogram.percentile(99) / 1e6,
    max: histogram.max / 1e6,
    seconds: (performance.now() - started) / 1000,
    report,
  };
}

const essence = (r: RunReport): string =>
  JSON.stringify([r.structures.map((s) => [s.tensor, s.bits, s.frac]), r.quant, r.search.evaluations]);

export async function benchEventLoop(calib = 100): Promise<string[]> {
  const rows: Row[] = [];
  const variants: [string, JobRunnerMode, number | undefined][] = [
    ['Piscina job worker, onnxruntime on every core (the app)', 'pool', undefined],
    ['Piscina job worker, onnxruntime on 1 thread', 'pool', 1],
    ['front-end thread (before this change)', 'in-thread', undefined],
  ];
  for (const [label, mode, threads] of variants) {
    process.stderr.write(`bench event-loop: ${label}...\n`);
    rows.push(await searchThroughApi(label, mode, calib, threads));
  }
  const base = rows.at(-1)!;
  return [
    `## Front-end event loop during a search (fmnist_resnet20, demo images, ${calib} calibration images, budget 1)`,
    '',
    '| where the search runs | event-loop delay p99 (ms) | max (ms) | wall time (s) | vs in-thread | same result |',
    '|---|---:|---:|---:|---:|---|',
    ...rows.map(
      (r) =>
        `| ${r.label} | ${r.p99.toFixed(1)} | ${r.max.toFixed(1)} | ${r.seconds.toFixed(1)} | ${(r.seconds / base.seconds).toFixed(2)}x | ${essence(r.report) === essence(base.report) ? 'yes' : 'NO'} |`,
    ),
    '',
  ];
}
