/** The whole engine on a hostile model, the QDQ export and the search's teacher fetch included (issue 30). */
import * as ort from 'onnxruntime-node';
import { isFxpqError } from '../../native-workers/engine/errors.js';
import { structureRanges, uniformAssignment } from '../../native-workers/engine/fixedpoint/assignment.js';
import { compileProgram } from '../../native-workers/engine/fixedpoint/compile.js';
import { dequantizeArray, quantizeArray } from '../../native-workers/engine/fixedpoint/format.js';
import { runBatch } from '../../native-workers/engine/fixedpoint/int-executor.js';
import { buildPlan, structureId } from '../../native-workers/engine/fixedpoint/plan.js';
import { writeQdqModel } from '../../native-workers/engine/export/qdq.js';
import { writeOnnx } from '../../native-workers/engine/onnx/onnx-format.js';
import { FloatRunner } from '../../native-workers/engine/runtime/float-runner.js';
import { SimRunner } from '../../native-workers/engine/runtime/sim-runner.js';
import { StatsRunner } from '../../native-workers/engine/runtime/stats-runner.js';
import { inspectModelFile, loadModelFile } from '../../services/models.js';
import { seededFloats } from './graph-builder.js';

/** The whole engine on one file, the QDQ export and the search's teacher fetch included. */
export async function throughEngineAndExport(path: string): Promise<void> {
  await inspectModelFile(path);
  const model = await loadModelFile(path);
  try {
    await afterImport(path, model);
  } catch (e) {
    // What import accepts must run: onnxruntime refusing it later printed an internal error
    // from the statistics pass or the simulation (issue 30).
    if (/onnxruntime/.test((e as Error).message ?? ''))
      throw new Error(`accepted at import, refused by onnxruntime later: ${(e as Error).message}`);
    throw e;
  }
}

async function afterImport(path: string, model: Awaited<ReturnType<typeof loadModelFile>>): Promise<void> {
  const g = model.canonical;
  const float = await FloatRunner.create(model.bytes, model.original, path);
  const canonical = await FloatRunner.create(writeOnnx(g), g, path);
  const count = 2;
  const images = seededFloats(count * float.imageSize, 11, 2);
  const [a, b] = [await float.run(images, count), await canonical.run(images, count)];
  await Promise.all([float.release(), canonical.release()]);
  for (let i = 0; i < a.length; i++) {
    const same =
      a[i] === b[i] || Math.abs(a[i]! - b[i]!) <= 1e-4 * Math.max(1, Math.abs(a[i]!)) || (isNaN(a[i]!) && isNaN(b[i]!));
    if (!same) throw new Error(`silent wrong answer: canonical output ${i} is ${b[i]}, the model's is ${a[i]}`);
  }
  const plan = buildPlan(g, { inputNonNegative: false });
  // What the search's statistics pass and teacher fetch (the logits, before a final Softmax).
  const stats = await StatsRunner.create(plan);
  try {
    await stats.run(images, count);
    await stats.run(images, count, [plan.logitsTensor]);
  } finally {
    await stats.release();
  }
  const assignment = uniformAssignment(
    plan,
    8,
    // Ranges that differ between tensors, so that formats differ and a mixed-up name shows.
    structureRanges(plan, (t) => 2 ** ([...t].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) % 997, 7) % 5)),
  );
  const program = compileProgram(plan, assignment);
  const inFormat = assignment[plan.activationOf.get(plan.inputName)!]!;
  const q = quantizeArray(images, inFormat);
  const integer = runBatch(program, q, count);
  const sim = await SimRunner.create(plan);
  try {
    const simulated = await sim.run(assignment, dequantizeArray(q, inFormat.frac), count);
    for (let i = 0; i < integer.length; i++)
      if (simulated[i]! * 2 ** program.output.frac !== integer[i])
        throw new Error(`silent wrong answer: simulation and integer executor differ at output ${i}`);
  } finally {
    await sim.release();
  }
  const qdq = writeQdqModel(
    plan,
    program,
    (name) => assignment[structureId('W', name)] ?? assignment[structureId('B', name)]!,
  );
  const session = await ort.InferenceSession.create(qdq);
  try {
    const shape = plan.shapes.get(plan.inputName)!.slice(1);
    const size = shape.reduce((x, y) => x * y, 1);
    for (let i = 0; i < count; i++) {
      const feeds = { input: new ort.Tensor('float32', images.slice(i * size, (i + 1) * size), [1, ...shape]) };
      const logits = (await session.run(feeds))['logits']!.data as Float32Array;
      const k = logits.length;
      for (let j = 0; j < k; j++)
        if (logits[j]! * 2 ** program.output.frac !== integer[i * k + j])
          throw new Error(
            `silent wrong answer: the QDQ model and the integer executor differ at image ${i}, logit ${j}`,
          );
    }
  } finally {
    await session.release();
  }
}

type Outcome = { kind: 'refused'; message: string } | { kind: 'ran' } | { kind: 'bad'; message: string };

export async function hostileOutcome(path: string): Promise<Outcome> {
  try {
    await throughEngineAndExport(path);
    return { kind: 'ran' };
  } catch (e) {
    const message = (e as Error).message ?? String(e);
    if (isFxpqError(e) && message.includes(path)) return { kind: 'refused', message };
    return { kind: 'bad', message: `${isFxpqError(e) ? 'does not name the file' : 'raw error'}: ${message}` };
  }
}
