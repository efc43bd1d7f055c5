/** The float model in onnxruntime-node: batched inference, one session reused for every batch. */
import * as ort from 'onnxruntime-node';
import { FxpqError } from '../errors.js';
import type { Graph } from '../ir/graph.js';
import { createOrtSession, runOrtSession } from './ort-session.js';

export class FloatRunner {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly source: string,
    readonly inputName: string,
    /** Per-image input shape, without the batch dimension. */
    readonly imageShape: number[],
    /** The batch the model fixes, or null when it is dynamic. */
    readonly fixedBatch: number | null,
    readonly outputName: string,
  ) {}

  static async create(
    bytes: Uint8Array,
    graph: Graph,
    source: string,
    options: { optimization?: 'basic' | 'extended' | 'all' } = {},
  ): Promise<FloatRunner> {
    const input = graph.inputs[0];
    const output = graph.outputs[0];
    if (!input || !output || graph.inputs.length !== 1) {
      throw new FxpqError(
        `${source} must have exactly one input and at least one output; it has ${graph.inputs.length} inputs.`,
        'unsupported-model',
      );
    }
    if (input.shape.slice(1).some((d) => d < 0)) {
      throw new FxpqError(
        `${source}: input ${input.name} has a dynamic size [${input.shape.join(', ')}] besides the batch; FxPQ needs fixed image sizes.`,
        'unsupported-model',
      );
    }
    const session = await createOrtSession(bytes, source, { optimization: options.optimization ?? 'all' });
    const batch = input.shape[0]!;
    return new FloatRunner(session, source, input.name, input.shape.slice(1), batch > 0 ? batch : null, output.name);
  }

  get imageSize(): number {
    return this.imageShape.reduce((a, b) => a * b, 1);
  }

  /** Run `count` images laid out one after another in `data`; returns count x outputs logits. */
  async run(data: Float32Array, count: number): Promise<Float32Array> {
    const batch = this.fixedBatch ?? count;
    if (this.fixedBatch !== null && count !== this.fixedBatch) {
      // A fixed-batch model takes exactly its batch: run image groups of that size, zero-padded.
      const parts: Float32Array[] = [];
      for (let start = 0; start < count; start += batch) {
        const chunk = new Float32Array(batch * this.imageSize);
        const n = Math.min(batch, count - start);
        chunk.set(data.subarray(start * this.imageSize, (start + n) * this.imageSize));
        const out = await this.runExact(chunk, batch);
        parts.push(out.subarray(0, (out.length / batch) * n));
      }
      const total = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
      let o = 0;
      for (const p of parts) total.set(p, (o += p.length) - p.length);
      return total;
    }
    return this.runExact(data.subarray(0, count * this.imageSize), count);
  }

  private async runExact(data: Float32Array, batch: number): Promise<Float32Array> {
    const feeds = { [this.inputName]: new ort.Tensor('float32', data, [batch, ...this.imageShape]) };
    const result = await runOrtSession(this.session, this.source, feeds, [this.outputName]);
    return result[this.outputName]!.data as Float32Array;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
