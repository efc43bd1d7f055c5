/**
 * `fxpq demo`: the whole pipeline on the built-in demo (fmnist_resnet20 and 300 Fashion-MNIST
 * test images committed in the repository): import, search within a 1-point budget, held-out
 * evaluation with the simulation and with the integer-only executor.
 */
import { join } from 'node:path';
import type { JobProgress } from '../api/contract.js';
import { JobManager } from './jobs.js';
import { projectRoot } from './app-info.js';
import type { RunReport } from './runs.js';

export interface DemoSummary {
  out: string;
  report: RunReport;
  integer: { top1: number; agreement: number; n: number };
}

export function demoInputs(): { model: string; images: string; classes: string } {
  const root = projectRoot();
  return {
    model: join(root, 'test', 'fixtures', 'models', 'fmnist_resnet20.onnx'),
    images: join(root, 'test', 'fixtures', 'fashion-mnist'),
    classes: join(root, 'test', 'fixtures', 'fashion-mnist_classes.txt'),
  };
}

/** The demo as three jobs of `jobs` (on the pool): import, search, integer-only evaluation. */
export async function runDemo(
  out: string,
  onProgress?: (stage: string, e?: JobProgress) => void,
  jobs: JobManager = new JobManager(),
): Promise<DemoSummary> {
  const inputs = demoInputs();
  const data = join(out, 'dataset');
  const run = join(out, 'run');
  const unsubscribe = jobs.subscribe((e) => {
    if (e.type === 'progress') onProgress?.(jobs.get(e.job)?.kind ?? 'job', e.progress);
  });
  try {
    onProgress?.('import');
    await jobs.start('import', {
      source: inputs.images,
      out: data,
      options: { classes: inputs.classes, calib: 150, seed: 0 },
    }).result;
    const report = await jobs.start('quantize', { modelPath: inputs.model, dataPath: data, out: run, budget: 1 })
      .result;
    onProgress?.('integer');
    const integer = await jobs.start('evaluate', {
      modelPath: inputs.model,
      dataPath: data,
      run,
      engine: 'int',
      split: 'eval',
    }).result;
    return { out, report, integer: { top1: integer.quant!.top1, agreement: integer.quant!.agreement, n: integer.n } };
  } finally {
    unsubscribe();
  }
}
