/** Piscina worker: the integer executor on a batch of images. */
import { runBatch } from '../engine/fixedpoint/int-executor.js';
import type { IntProgram } from '../engine/fixedpoint/program.js';

export interface IntTask {
  program: IntProgram;
  inputs: Int32Array;
  count: number;
}

export default function run(task: IntTask): Int32Array {
  return runBatch(task.program, task.inputs, task.count);
}
