/**
 * `npm run bench -- ort-parallel`: how to spread onnxruntime runs over the cores. Rows, side by
 * side in one run, each running 20 batches of 50 images (one synthetic batch, so 1000 image
 * runs) through fmnist_resnet20's float graph (the committed test model; the simulation's graph
 * has the same convolutions plus its fake-quant chain):
 *   - one session, one intra-op thread (the baseline);
 *   - one session, an intra-op thread per core (what the search does);
 *   - a worker thread per core, each with a one-thread session and its share of the batches
 *     (what spreading one evaluation's batches over the pool would do). Sessions are created
 *     and warmed up first, as in a long-lived pool; the row times from one start signal to the
 *     last worker's end, in this thread.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { sessionOptions } from '../native-workers/engine/runtime/session-options.js';
import { modelPath } from '../test/helpers/fixtures.js';

const BATCH = 50;
const BATCHES = 20;

// The worker's code is plain CommonJS text (no transpiled helpers to go missing in it), so it
// restates sessionOptions' one-thread, no-spinning session.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ort);
(async () => {
  const s = await ort.InferenceSession.create(workerData.model, {
    intraOpNumThreads: 1,
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  const name = s.inputNames[0];
  const data = new Float32Array(workerData.batch * 28 * 28);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 256) / 255;
  const x = new ort.Tensor('float32', data, [workerData.batch, 1, 28, 28]);
  await s.run({ [name]: x });
  parentPort.postMessage('ready');
  parentPort.once('message', async () => {
    for (let i = 0; i < workerData.batches; i++) await s.run({ [name]: x });
    parentPort.postMessage('done');
  });
})().catch((e) => { throw e; });
`;

function syntheticBatch(): ort.Tensor {
  const data = new Float32Array(BATCH * 28 * 28);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 256) / 255;
  return new ort.Tensor('float32', data, [BATCH, 1, 28, 28]);
}

/** ms for BATCHES runs of one session with `threads` intra-op threads, after a warm-up run. */
async function inOneSession(model: string, threads: number): Promise<number> {
  const s = await ort.InferenceSession.create(model, sessionOptions({ threads }));
  const feeds = { [s.inputNames[0]!]: syntheticBatch() };
  await s.run(feeds);
  const t = performance.now();
  for (let i = 0; i < BATCHES; i++) await s.run(feeds);
  const ms = performance.now() - t;
  await s.release();
  return ms;
}

/** A message from a worker, or its error or early exit as a rejection. */
function next(w: Worker): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number) => reject(new Error(`a bench worker exited with code ${code}`));
    w.once('error', reject);
    w.once('exit', onExit);
    w.once('message', (m) => {
      w.off('error', reject);
      w.off('exit', onExit);
      resolve(m);
    });
  });
}

/** ms from the start signal to the last of `workers` workers, BATCHES split as evenly as they go. */
async function inWorkers(model: string, workers: number): Promise<number> {
  const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
  const pool = Array.from(
    { length: workers },
    (_, i) =>
      new Worker(WORKER, {
        eval: true,
        workerData: {
          ort: ortPath,
          model,
          batch: BATCH,
          batches: Math.floor(BATCHES / workers) + (i < BATCHES % workers ? 1 : 0),
        },
      }),
  );
  try {
    await Promise.all(pool.map(next));
    const t = performance.now();
    const done = Promise.all(pool.map(next));
    for (const w of pool) w.postMessage('go');
    await done;
    return performance.now() - t;
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
}

export async function benchOrtParallel(): Promise<string[]> {
  const model = modelPath('fmnist_resnet20')!;
  const cores = availableParallelism();
  const best = new Map<string, number>();
  const keep = (label: string, ms: number) => best.set(label, Math.min(best.get(label) ?? Infinity, ms));
  for (let round = 0; round < 3; round++) {
    keep('one session, 1 thread', await inOneSession(model, 1));
    keep(`one session, ${cores} threads`, await inOneSession(model, cores));
    keep(`${cores} workers, 1 thread each`, await inWorkers(model, cores));
  }
  const base = best.get('one session, 1 thread')!;
  return [
    `## onnxruntime over ${cores} cores (fmnist_resnet20 float graph, ${BATCHES} batches of ${BATCH}, best of 3 rounds)`,
    '',
    '| layout | ms | speed-up over one thread |',
    '| --- | ---: | ---: |',
    ...[...best].map(([label, ms]) => `| ${label} | ${ms.toFixed(0)} | ${(base / ms).toFixed(2)}x |`),
    '',
  ];
}
