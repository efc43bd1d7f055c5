/**
 * The statistics pass (spec §5 step 0): the float canonical graph with every activation
 * data structure as an extra output; streams batches, keeping max|x|, min and a histogram
 * per activation (bounded memory, whatever the number of images).
 */
import * as ort from 'onnxruntime-node';
import { writeOnnx } from '../onnx/onnx-format.js';
import { DataType, int64Tensor, tensorToNumbers, type Graph } from '../ir/graph.js';
import type { QuantPlan } from '../fixedpoint/plan.js';
import { sessionOptions } from './session-options.js';
import { derivedGraphFailure } from './ort-session.js';

export const HISTOGRAM_BINS = 2048;

export interface ActivationStats {
  maxAbs: number;
  min: number;
  /** |x| histogram over [0, histMax], HISTOGRAM_BINS bins. */
  histMax: number;
  histogram: Float64Array;
  count: number;
}

export class StatsRunner {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly tensors: string[],
    private readonly inputName: string,
    private readonly imageShape: number[],
    private readonly source?: string,
  ) {}

  /** `extra`: more tensors of the canonical graph it can return (`run`'s `only`), beside the activations. */
  static async create(plan: QuantPlan, extra: string[] = []): Promise<StatsRunner> {
    const tensors = plan.structures.filter((s) => s.kind === 'A' && s.tensor !== plan.inputName).map((s) => s.tensor);
    // The logits too: the search's teacher fetches them, and they need not be an activation
    // structure of their own (a Reshape after the last pool, as tf2onnx's Squeeze becomes).
    const wanted = [...extra, plan.logitsTensor];
    const outputs = [...tensors, ...wanted.filter((t) => t !== plan.inputName && !tensors.includes(t))];
    const g: Graph = {
      ...plan.graph,
      initializers: new Map(plan.graph.initializers),
      inputs: plan.graph.inputs.map((v) => ({ ...v, shape: [-1, ...v.shape.slice(1)] })),
      outputs: [...new Set(outputs)].map((name) => ({
        name,
        dataType: DataType.FLOAT,
        shape: [-1, ...plan.shapes.get(name)!.slice(1)],
      })),
    };
    // Batch-1 models (mnist-8) carry Reshape targets with a literal batch of 1: copy the batch (0) instead.
    for (const n of g.nodes) {
      const target = n.op === 'Reshape' ? g.initializers.get(n.inputs[1]!) : undefined;
      if (target && tensorToNumbers(target)[0] === 1)
        g.initializers.set(target.name, int64Tensor(target.name, [0, ...tensorToNumbers(target).slice(1)]));
    }
    const session = await ort.InferenceSession.create(writeOnnx(g), sessionOptions()).catch((e: unknown) => {
      throw derivedGraphFailure(e, plan.graph.source, 'the statistics pass');
    });
    return new StatsRunner(
      session,
      tensors,
      plan.inputName,
      plan.shapes.get(plan.inputName)!.slice(1),
      plan.graph.source,
    );
  }

  /** Float activations of a batch, by tensor name (the input included); `only` fetches just those. */
  async run(input: Float32Array, count: number, only: string[] = this.tensors): Promise<Map<string, Float32Array>> {
    const result = await this.session
      .run(
        { [this.inputName]: new ort.Tensor('float32', input, [count, ...this.imageShape]) },
        only.filter((t) => t !== this.inputName),
      )
      .catch((e: unknown) => {
        throw derivedGraphFailure(e, this.source, 'the statistics pass');
      });
    const out = new Map<string, Float32Array>([[this.inputName, input]]);
    for (const name of only) if (name !== this.inputName) out.set(name, result[name]!.data as Float32Array);
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Accumulate statistics over batches; the histogram range is fixed by the first batch, doubling as needed. */
export class StatsAccumulator {
  readonly stats = new Map<string, ActivationStats>();

  add(values: Map<string, Float32Array>): void {
    for (const [name, data] of values) {
      let s = this.stats.get(name);
      let maxAbs = 0;
      let min = Infinity;
      for (let i = 0; i < data.length; i++) {
        const v = data[i]!;
        const a = v < 0 ? -v : v;
        if (a > maxAbs) maxAbs = a;
        if (v < min) min = v;
      }
      if (!s) {
        s = {
          maxAbs: 0,
          min: Infinity,
          histMax: maxAbs > 0 ? maxAbs : 1,
          histogram: new Float64Array(HISTOGRAM_BINS),
          count: 0,
        };
        this.stats.set(name, s);
      }
      while (maxAbs > s.histMax) {
        // Double the range: merge bin pairs, so earlier counts stay where they belong.
        const h = s.histogram;
        for (let i = 0; i < HISTOGRAM_BINS / 2; i++) h[i] = h[2 * i]! + h[2 * i + 1]!;
        h.fill(0, HISTOGRAM_BINS / 2);
        s.histMax *= 2;
      }
      const scale = HISTOGRAM_BINS / s.histMax;
      for (let i = 0; i < data.length; i++) {
        const a = data[i]! < 0 ? -data[i]! : data[i]!;
        s.histogram[Math.min(HISTOGRAM_BINS - 1, Math.floor(a * scale))]!++;
      }
      s.maxAbs = Math.max(s.maxAbs, maxAbs);
      s.min = Math.min(s.min, min);
      s.count += data.length;
    }
  }
}
