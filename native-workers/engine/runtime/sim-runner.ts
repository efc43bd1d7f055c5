/**
 * The fake-quant simulation in onnxruntime: one session per model for every assignment
 * (formats arrive as input feeds), feed tensors reused while their formats do not change.
 */
import * as ort from 'onnxruntime-node';
import { writeOnnx } from '../onnx/onnx-format.js';
import {
  buildSimGraph,
  simFeeds,
  withActivationOutputs,
  type FeedContext,
  type FeedValue,
  type SimGraph,
} from '../fixedpoint/sim-graph.js';
import { QuantizedCache, type ParameterOverrides } from '../fixedpoint/quantized-cache.js';
import { formatOf } from '../fixedpoint/compile.js';
import type { Assignment, QuantPlan } from '../fixedpoint/plan.js';
import { sessionOptions } from './session-options.js';

export class SimRunner {
  private readonly feedCache = new Map<string, { key: string; value: FeedValue }>();
  private readonly tensors = new WeakMap<FeedValue, ort.Tensor>();
  private probe?: Promise<ort.InferenceSession>;

  private constructor(
    readonly plan: QuantPlan,
    readonly sim: SimGraph,
    private readonly session: ort.InferenceSession,
    readonly quantized: QuantizedCache,
  ) {}

  static async create(plan: QuantPlan, options: { threads?: number } = {}): Promise<SimRunner> {
    const sim = buildSimGraph(plan);
    const session = await ort.InferenceSession.create(writeOnnx(sim.graph), sessionOptions(options));
    return new SimRunner(plan, sim, session, new QuantizedCache(plan));
  }

  get imageSize(): number {
    return this.plan.shapes
      .get(this.plan.inputName)!
      .slice(1)
      .reduce((a, b) => a * b, 1);
  }

  feedContext(assignment: Assignment): FeedContext {
    return {
      plan: this.plan,
      format: (id) => formatOf(this.plan, assignment, id),
      fracOf: (t) => formatOf(this.plan, assignment, this.plan.activationOf.get(t)!).frac,
      quantized: (id) => this.quantized.get(id, formatOf(this.plan, assignment, id)),
      version: (id) =>
        this.plan.byId.get(id)!.kind === 'A' ? '' : this.quantized.version(id, formatOf(this.plan, assignment, id)),
    };
  }

  /**
   * Run `count` images whose inputs are already quantized (m * 2^-f of the input format).
   * Returns count x classes logits on the output grid (m_y * 2^-f_y).
   */
  async run(
    assignment: Assignment,
    quantizedInput: Float32Array,
    count: number,
    overrides: ParameterOverrides = {},
  ): Promise<Float32Array> {
    return (await this.runOutputs(assignment, quantizedInput, count, [this.sim.outputName], overrides)).get(
      this.sim.outputName,
    )!;
  }

  /** Like `run`, returning the named activation tensors (dequantized) as well or instead. */
  async runOutputs(
    assignment: Assignment,
    quantizedInput: Float32Array,
    count: number,
    outputs: string[],
    overrides: ParameterOverrides = {},
  ): Promise<Map<string, Float32Array>> {
    this.quantized.setOverrides(overrides);
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, value] of simFeeds(this.sim, this.feedContext(assignment), this.feedCache)) {
      let t = this.tensors.get(value);
      if (!t) {
        t = new ort.Tensor(value.type, value.data, value.dims);
        this.tensors.set(value, t);
      }
      feeds[name] = t;
    }
    const inputShape = this.plan.shapes.get(this.plan.inputName)!;
    feeds[this.plan.inputName] = new ort.Tensor('float32', quantizedInput.subarray(0, count * this.imageSize), [
      count,
      ...inputShape.slice(1),
    ]);
    const onlyLogits = outputs.length === 1 && outputs[0] === this.sim.outputName;
    const session = onlyLogits
      ? this.session
      : await (this.probe ??= ort.InferenceSession.create(
          writeOnnx(withActivationOutputs(this.sim, this.plan).graph),
          sessionOptions(),
        ));
    const result = await session.run(feeds, outputs);
    return new Map(outputs.map((name) => [name, result[name]!.data as Float32Array]));
  }

  async release(): Promise<void> {
    await this.session.release();
    if (this.probe) await (await this.probe).release();
  }
}
