/**
 * `npm run bench int-kernels`: the integer executor on the pool with its TypeScript kernels
 * and with the WebAssembly kernels, against onnxruntime FP32 (its default session, level
 * 'all', both cores), same model, batch and run. Rounds are interleaved (FP32, TS, WASM, ...)
 * so that the shared machine's load falls on all three alike; the figure is total images
 * over total time.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism, loadavg } from 'node:os';
import { compileProgram } from '../native-workers/engine/fixedpoint/compile.js';
import { FloatRunner } from '../native-workers/engine/runtime/float-runner.js';
import { runIntOnPool } from '../services/engines.js';
import { syntheticModel } from './synthetic-model.js';

export async function benchIntKernels(sharedFixtures: string, rounds = 5): Promise<string[]> {
  const models = [
    {
      name: 'fmnist_resnet20',
      path: join(import.meta.dirname, '..', 'test', 'fixtures', 'models', 'fmnist_resnet20.onnx'),
      batch: 32,
    },
    { name: 'mobilenet_v1_0.25_224', path: join(sharedFixtures, 'models', 'mobilenet_v1_0.25_224.onnx'), batch: 16 },
  ].filter((m) => existsSync(m.path));
  const lines = [
    `## Integer kernels: images/s at uniform 8 bits, same batch, one run, ${rounds} interleaved rounds (${availableParallelism()} cores)`,
    '',
    '| model | batch | ORT FP32 | int executor, TS kernels | TS / FP32 | int executor, WASM kernels | WASM / FP32 | WASM / TS |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const m of models) {
    const { model, plan, assignment, x, ints } = await syntheticModel(m.path, m.batch);
    const program = compileProgram(plan, assignment);
    const float = await FloatRunner.create(model.bytes, model.original, m.path);
    const engines: Record<string, () => Promise<unknown>> = {
      fp: () => float.run(x, m.batch),
      ts: () => runIntOnPool(program, ints, m.batch, 'ts'),
      wasm: () => runIntOnPool(program, ints, m.batch, 'wasm'),
    };
    const seconds: Record<string, number> = { fp: 0, ts: 0, wasm: 0 };
    for (const f of Object.values(engines)) await f(); // warm-up: session, workers, JIT, wasm compile
    for (let r = 0; r < rounds; r++) {
      for (const [name, f] of Object.entries(engines)) {
        const t = performance.now();
        await f();
        seconds[name]! += (performance.now() - t) / 1000;
      }
    }
    const rate = (name: string) => (m.batch * rounds) / seconds[name]!;
    const [fp, ts, wasm] = [rate('fp'), rate('ts'), rate('wasm')];
    lines.push(
      `| ${m.name} | ${m.batch} | ${fp.toFixed(0)} | ${ts.toFixed(1)} | ${(ts / fp).toFixed(3)} | ${wasm.toFixed(1)} | ${(wasm / fp).toFixed(3)} | ${(wasm / ts).toFixed(1)} |`,
    );
    await float.release();
  }
  // The machine is shared: say how busy it was (1-minute load average; 2 means both cores taken).
  lines.push('', `Load average at the end: ${loadavg()[0]!.toFixed(1)}.`, '');
  return lines;
}
