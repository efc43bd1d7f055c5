/** The operator modules FxPQ supports. Adding an operator: write its module, list it here. */
import type { OperatorModule } from './operator.js';
import { conv } from './conv.js';
import { gemm } from './gemm.js';
import { matmul } from './matmul.js';
import { add } from './add.js';
import { concat } from './concat.js';
import { averagePool, globalAveragePool, maxPool } from './pooling.js';
import { flatten, reshape, transpose } from './layout.js';
import { clip, relu, softmax } from './activation.js';
import { leakyRelu, prelu } from './leaky-relu.js';
import { pad } from './pad.js';
import { slice } from './slice.js';

const modules: OperatorModule[] = [
  conv,
  gemm,
  matmul,
  add,
  concat,
  maxPool,
  averagePool,
  globalAveragePool,
  flatten,
  reshape,
  transpose,
  relu,
  clip,
  leakyRelu,
  prelu,
  pad,
  slice,
  softmax,
];

export const operatorRegistry: ReadonlyMap<string, OperatorModule> = new Map(modules.map((m) => [m.op, m]));

export function operatorModule(op: string): OperatorModule | undefined {
  return operatorRegistry.get(op);
}
