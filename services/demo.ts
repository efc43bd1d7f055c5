/**
 * `fxpq demo`: the whole pipeline on the built-in demo (fmnist_resnet20 and 300 Fashion-MNIST
 * test images committed in the repository): import, search within a 1-point budget, held-out
 * evaluation with the simulation and with the integer-only executor.
 */
import { join } from 'node:path';
import { importDataset } from './datasets.js';
import { evaluate } from './evaluate.js';
import { quantize, type ProgressEvent } from './quantize.js';
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

export async function runDemo(
  out: string,
  onProgress?: (stage: string, e?: ProgressEvent) => void,
  signal?: AbortSignal,
): Promise<DemoSummary> {
  const inputs = demoInputs();
  const data = join(out, 'dataset');
  const run = join(out, 'run');
  onProgress?.('import');
  await importDataset(inputs.images, data, { classes: inputs.classes, calib: 150, seed: 0 });
  const report = await quantize({
    modelPath: inputs.model,
    dataPath: data,
    out: run,
    budget: 1,
    onProgress: (e) => onProgress?.('quantize', e),
    signal,
  });
  onProgress?.('integer');
  const integer = await evaluate({
    modelPath: inputs.model,
    dataPath: data,
    run,
    engine: 'int',
    split: 'eval',
    signal,
  });
  return { out, report, integer: { top1: integer.quant!.top1, agreement: integer.quant!.agreement, n: integer.n } };
}
