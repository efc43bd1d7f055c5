/**
 * The fake-quant simulation in onnxruntime: formats arrive as input feeds, feed tensors reused
 * while their formats do not change. Runs go to a session with the assignment's weights and
 * biases baked in as constants and only the asked-for outputs declared (a few such sessions
 * kept, keyed by those values and outputs): onnxruntime's blocked (NCHWc) convolution kernels
 * need constant weights, and a session takes milliseconds to build against about a second for
 * a search's evaluation, while those kernels run the simulation 1.4-1.7x as fast (BENCHMARKS.md,
 * engines).
 */
import * as ort from 'onnxruntime-node';
import { writeOnnx } from '../onnx/onnx-format.js';
import { DataType, nodesNeededFor } from '../ir/graph.js';
import {
  buildSimGraph,
  parameterFeeds,
  simFeeds,
  withParametersBaked,
  withActivationOutputs,
  type FeedContext,
  type FeedValue,
  type SimGraph,
} from '../fixedpoint/sim-graph.js';
import { QuantizedCache, type ParameterOverrides } from '../fixedpoint/quantized-cache.js';
import { formatOf } from '../fixedpoint/compile.js';
import { dequantizeArray, quantizeArray } from '../fixedpoint/format.js';
import type { Assignment, QuantPlan } from '../fixedpoint/plan.js';
import { sessionOptions } from './session-options.js';

/** Baked sessions kept: the search's current state and its candidate. */
const BAKED_SESSIONS = 2;

interface BakedSession {
  /** The parameter feed values it was built from (feed values are reused while unchanged). */
  values: FeedValue[];
  /** The tensors it returns. */
  outputs: string;
  session: Promise<ort.InferenceSession>;
  running: number;
}

export interface SimRunnerOptions {
  threads?: number;
  /** Bake weights and biases into per-assignment sessions (default); false: one session, all feeds. */
  baked?: boolean;
}

export class SimRunner {
  private readonly feedCache = new Map<string, { key: string; value: FeedValue }>();
  private readonly tensors = new WeakMap<FeedValue, ort.Tensor>();
  private probe?: Promise<ort.InferenceSession>;
  private fed?: Promise<ort.InferenceSession>;
  private readonly baked: BakedSession[] = [];
  private readonly parameters: Set<string>;

  private constructor(
    readonly plan: QuantPlan,
    readonly sim: SimGraph,
    readonly quantized: QuantizedCache,
    private readonly options: SimRunnerOptions,
  ) {
    this.parameters = new Set(options.baked === false ? [] : parameterFeeds(sim));
  }

  static async create(plan: QuantPlan, options: SimRunnerOptions = {}): Promise<SimRunner> {
    const sim = buildSimGraph(plan);
    const runner = new SimRunner(plan, sim, new QuantizedCache(plan), options);
    // The session fed every value is what runs unless weights are baked: build it now, so a
    // broken graph is reported here; baked runs build it only if something asks for it.
    if (options.baked === false) await runner.fedSession();
    return runner;
  }

  /**
   * The session with these parameter values baked in that returns `outputs`, built on first use;
   * the oldest idle one is released.
   */
  private bakedSession(values: Map<string, FeedValue>, outputs: string[]): BakedSession {
    const list = [...values.values()];
    const key = outputs.join('\n');
    const at = this.baked.findIndex((b) => b.outputs === key && b.values.every((v, i) => v === list[i]));
    if (at >= 0) {
      // Most recently used last: eviction takes the first idle one.
      const [hit] = this.baked.splice(at, 1);
      this.baked.push(hit!);
      return hit!;
    }
    const graph = withParametersBaked(this.sim, values);
    // Only the nodes the outputs need: onnxruntime runs every node of a graph, so reading an early
    // layer's input (the weight rounder's Hessians) cost a whole pass and more.
    graph.nodes = nodesNeededFor(graph.nodes, outputs);
    const used = new Set(graph.nodes.flatMap((n) => n.inputs));
    // The cut layers' baked weights would only be serialized for onnxruntime to drop.
    graph.initializers = new Map([...graph.initializers].filter(([name]) => used.has(name)));
    // Only the tensors asked for: declaring more outputs keeps onnxruntime from reusing their memory.
    graph.outputs = outputs.map((name) => ({
      name,
      dataType: DataType.FLOAT,
      shape: [-1, ...this.plan.shapes.get(name)!.slice(1)],
      dimParams: ['N'],
    }));
    const made: BakedSession = {
      values: list,
      outputs: key,
      session: ort.InferenceSession.create(writeOnnx(graph), sessionOptions({ threads: this.options.threads })),
      running: 0,
    };
    // A session that fails to build is forgotten, so the next run tries again.
    made.session.catch(() => {
      const i = this.baked.indexOf(made);
      if (i >= 0) this.baked.splice(i, 1);
    });
    this.baked.push(made);
    const idle = this.baked.findIndex((b) => b.running === 0 && b !== made);
    if (this.baked.length > BAKED_SESSIONS && idle >= 0) {
      const [old] = this.baked.splice(idle, 1);
      void old!.session.then((s) => s.release()).catch(() => undefined);
    }
    return made;
  }

  /** The one session with every weight, bias and format fed as an input. */
  private fedSession(): Promise<ort.InferenceSession> {
    return (this.fed ??= ort.InferenceSession.create(writeOnnx(this.sim.graph), sessionOptions(this.options)));
  }

  /** Images in the input's format of `assignment` (m * 2^-f), what `run` takes. */
  quantizeInput(assignment: Assignment, data: Float32Array): Float32Array {
    const f = formatOf(this.plan, assignment, this.plan.activationOf.get(this.plan.inputName)!);
    return dequantizeArray(quantizeArray(data, f), f.frac);
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
    const onlyLogits = outputs.length === 1 && outputs[0] === this.sim.outputName;
    const parameters = new Map<string, FeedValue>();
    for (const [name, value] of simFeeds(this.sim, this.feedContext(assignment), this.feedCache)) {
      if (this.parameters.has(name)) {
        parameters.set(name, value);
        continue;
      }
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
    if (parameters.size > 0) {
      const baked = this.bakedSession(parameters, outputs);
      baked.running++;
      try {
        const result = await (await baked.session).run(feeds, outputs);
        return new Map(outputs.map((name) => [name, result[name]!.data as Float32Array]));
      } finally {
        baked.running--;
      }
    }
    const session = onlyLogits
      ? await this.fedSession()
      : await (this.probe ??= ort.InferenceSession.create(
          writeOnnx(withActivationOutputs(this.sim, this.plan).graph),
          sessionOptions(),
        ));
    const result = await session.run(feeds, outputs);
    return new Map(outputs.map((name) => [name, result[name]!.data as Float32Array]));
  }

  async release(): Promise<void> {
    const sessions = this.baked.splice(0).map((b) => b.session);
    if (this.fed) sessions.push(this.fed);
    if (this.probe) sessions.push(this.probe);
    // Every session is released even if one failed to build or to release.
    await Promise.allSettled(sessions.map(async (s) => (await s).release()));
  }
}
