/** Where the test models live: committed copies in test/fixtures, the rest in ../shared when present. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const committedModels = join(repoRoot, 'test', 'fixtures', 'models');
export const sharedFixtures = resolve(repoRoot, process.env['FXPQ_SHARED_FIXTURES'] ?? '../shared/fixtures');
export const sharedModels = join(sharedFixtures, 'models');
export const hasShared = existsSync(join(sharedModels, 'mobilenet_v1_0.25_224.onnx'));

export const ALL_MODELS = [
  'mnist-8',
  'fmnist_resnet20',
  'fmnist_vgg_small',
  'resnet8_mlperf_tiny_cifar10',
  'mobilenet_v1_0.25_224',
] as const;

/** Path of a fixture model, preferring the committed copy; undefined when not available here. */
export function modelPath(name: string): string | undefined {
  const committed = join(committedModels, `${name}.onnx`);
  if (existsSync(committed)) return committed;
  const shared = join(sharedModels, `${name}.onnx`);
  return existsSync(shared) ? shared : undefined;
}

export const cliEntry = join(repoRoot, 'bin', 'fxpq.mjs');

/** A small real search used by the job tests: mnist-8 on the committed MNIST images, budget 2, 60 calibration images. */
export function smallSearch(cacheDir: string) {
  return {
    modelPath: modelPath('mnist-8')!,
    dataPath: join(repoRoot, 'test/fixtures/mnist'),
    budget: 2,
    calib: 60,
    slice: 20,
    seed: 3,
    cacheDir,
  };
}

/**
 * A small uniform 8-bit run's options (20 calibration and 20 held-out images), rounded to nearest:
 * the tests that start from it edit its formats, and optimized integers exist per format only.
 */
export function smallUniform(cacheDir: string) {
  return { uniform: 8, rounding: 'nearest' as const, calib: 20, eval: 20, seed: 1, cacheDir };
}
