/**
 * The fake-quant simulation in onnxruntime: formats arrive as input feeds, feed tensors reused
 * while their formats do not change. Runs go to a session with the assignment's weights and
 * biases baked in as constants and only the asked-for outputs declared (a few such sessions
 * kept, keyed by those values and outputs): onnxruntime's blocked (NCHWc) convolution kernels
 * need constant weights, and a session takes milliseconds to build against about a second for
 * a search's evaluation, while those kernels run the simulation 1.4-1.7x as fast (BENCHMARKS.md,
 * engines). A run given a batch id reads what it can from the activations kept for the search's
 * state (activation-cache.ts) and runs only the nodes after them.
 */
import * as ort from 'onnxruntime-node';
import { writeOnnx } from '../onnx/onnx-format.js';
import { DataType, elementCount, nodesNeededFor, type ValueInfo } from '../ir/graph.js';
import {
  buildSimGraph,
  feedKey,
  parameterFeeds,
  readableActivations,
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
import { derivedGraphFailure } from './ort-session.js';
import { ActivationCache, TensorKeys } from './activation-cache.js';

/**
 * Baked sessions kept: the search's current state and its candidate, each possibly in two cuts
 * (a candidate's first batches may find more kept activations than its later ones).
 */
const BAKED_SESSIONS = 4;

/** Interned key strings after which the keys and the kept activations start afresh (bounds their memory). */
const MAX_INTERNED = 2_000_000;

interface BakedSession {
  /** The parameter feed values it was built from (feed values are reused while unchanged). */
  values: FeedValue[];
  /** The tensors it returns, and those it is given besides the feeds (kept activations). */
  outputs: string;
  session: Promise<ort.InferenceSession>;
  running: number;
}

export interface SimRunnerOptions {
  threads?: number;
  /** Bake weights and biases into per-assignment sessions (default); false: one session, all feeds. */
  baked?: boolean;
  /** Bytes of activations kept for runs given a batch id (0 or absent: none kept). Needs baked sessions. */
  activationCacheBytes?: number;
}

/** What runs given a batch id share: the kept activations, their keys, and the state's keys. */
interface KeptActivations {
  cache: ActivationCache;
  keys: TensorKeys;
  /** The tensors that may be kept, and their elements per image. */
  readable: Map<string, number>;
  /** Keys of the search's state: what matches them is kept. */
  base?: Map<string, number>;
  /** Runs that read at least one kept tensor, and all runs given a batch id (for tests and reports). */
  hits: number;
  runs: number;
  /** Nodes run, summed over those runs (against runs x the graph's nodes: the share computed). */
  nodes: number;
  /** The last keys computed from feed keys, and those feed keys: the batches of one evaluation share them. */
  last?: { signature: string; keys: Map<string, number> };
}

export class SimRunner {
  private readonly feedCache = new Map<string, { key: string; value: FeedValue }>();
  private readonly tensors = new WeakMap<FeedValue, ort.Tensor>();
  private probe?: Promise<ort.InferenceSession>;
  private fed?: Promise<ort.InferenceSession>;
  private readonly baked: BakedSession[] = [];
  private readonly parameters: Set<string>;
  private readonly kept?: KeptActivations;
  /** Per batch id, its images in the input format they were last quantized to, and where they were read. */
  private readonly quantizedInputs = new Map<
    number,
    { key: string; value: Float32Array; source: ArrayBufferLike; offset: number }
  >();

  private constructor(
    readonly plan: QuantPlan,
    readonly sim: SimGraph,
    readonly quantized: QuantizedCache,
    private readonly options: SimRunnerOptions,
  ) {
    this.parameters = new Set(options.baked === false ? [] : parameterFeeds(sim));
    if (options.baked !== false && (options.activationCacheBytes ?? 0) > 0)
      this.kept = {
        cache: new ActivationCache(options.activationCacheBytes!),
        keys: new TensorKeys(sim.graph.nodes, plan.inputName, new Set(sim.feeds.keys())),
        readable: new Map(readableActivations(plan).map((t) => [t, elementCount(plan.shapes.get(t)!.slice(1))])),
        hits: 0,
        runs: 0,
        nodes: 0,
      };
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
  private bakedSession(values: Map<string, FeedValue>, outputs: string[], given: string[] = []): BakedSession {
    const list = [...values.values()];
    const key = `${outputs.join('\n')}\n<-\n${given.join('\n')}`;
    const at = this.baked.findIndex((b) => b.outputs === key && b.values.every((v, i) => v === list[i]));
    if (at >= 0) {
      // Most recently used last: eviction takes the first idle one.
      const [hit] = this.baked.splice(at, 1);
      this.baked.push(hit!);
      return hit!;
    }
    const graph = withParametersBaked(this.sim, values);
    // Only the nodes the outputs need: onnxruntime runs every node of a graph, so reading an early
    // layer's input (the weight rounder's Hessians) cost a whole pass and more. Given tensors
    // become graph inputs, and what computes them is dropped.
    graph.nodes = nodesNeededFor(graph.nodes, outputs, new Set(given));
    graph.inputs = [...graph.inputs, ...given.map((name) => this.batchedInfo(name))];
    const used = new Set(graph.nodes.flatMap((n) => n.inputs));
    // The cut layers' baked weights would only be serialized for onnxruntime to drop.
    graph.initializers = new Map([...graph.initializers].filter(([name]) => used.has(name)));
    // Only the tensors asked for: declaring more outputs keeps onnxruntime from reusing their memory.
    graph.outputs = outputs.map((name) => this.batchedInfo(name));
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

  private batchedInfo(name: string): ValueInfo {
    return { name, dataType: DataType.FLOAT, shape: [-1, ...this.plan.shapes.get(name)!.slice(1)], dimParams: ['N'] };
  }

  /** The one session with every weight, bias and format fed as an input. */
  private fedSession(): Promise<ort.InferenceSession> {
    return (this.fed ??= ort.InferenceSession.create(writeOnnx(this.sim.graph), sessionOptions(this.options)));
  }

  /**
   * Images in the input's format of `assignment` (m * 2^-f), what `run` takes. With a `batch` id
   * (the same images every time, as for `runOutputs`) the result is kept while the input's format
   * stays: on MobileNet's 224x224 images quantizing the input again for every evaluation took a
   * third of the search (BENCHMARKS.md, kept activations). The array returned may be the kept one:
   * read it, do not modify it.
   */
  quantizeInput(assignment: Assignment, data: Float32Array, batch?: number): Float32Array {
    const f = formatOf(this.plan, assignment, this.plan.activationOf.get(this.plan.inputName)!);
    const key = this.inputKey(assignment);
    const hit = batch === undefined ? undefined : this.quantizedInputs.get(batch);
    // The same images: the same memory (a view of the whole batch, say), not only the same id.
    const same = hit?.source === data.buffer && hit.offset === data.byteOffset && hit.value.length === data.length;
    if (hit?.key === key && same) return hit.value;
    const value = dequantizeArray(quantizeArray(data, f), f.frac);
    if (batch !== undefined)
      this.quantizedInputs.set(batch, { key, value, source: data.buffer, offset: data.byteOffset });
    return value;
  }

  get imageSize(): number {
    return elementCount(this.plan.shapes.get(this.plan.inputName)!.slice(1));
  }

  /** What the quantized input depends on: the input's format. */
  private inputKey(assignment: Assignment): string {
    const f = formatOf(this.plan, assignment, this.plan.activationOf.get(this.plan.inputName)!);
    return `${f.bits},${f.frac},${f.signed}`;
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
    batch?: number,
  ): Promise<Float32Array> {
    return (await this.runOutputs(assignment, quantizedInput, count, [this.sim.outputName], overrides, batch)).get(
      this.sim.outputName,
    )!;
  }

  /**
   * Keys of every tensor under an assignment (activation-cache.ts): equal keys, equal values.
   * `overrides` are the corrected biases the assignment runs with.
   */
  private tensorKeys(
    kept: KeptActivations,
    assignment: Assignment,
    overrides: ParameterOverrides,
    /** The feeds' keys when already computed (by `simFeeds` for this run). */
    feedKeys?: Map<string, string>,
  ): Map<string, number> {
    const format = (id: string) => formatOf(this.plan, assignment, id);
    const inputKey = this.inputKey(assignment);
    if (feedKeys) {
      const signature = `${inputKey}\n${[...feedKeys.values()].join('\n')}`;
      if (kept.last?.signature !== signature)
        kept.last = { signature, keys: kept.keys.keys((name) => feedKeys.get(name)!, inputKey) };
      return kept.last.keys;
    }
    const ctx = {
      format,
      version: (id: string) =>
        this.plan.byId.get(id)!.kind === 'A' ? '' : this.quantized.version(id, format(id), overrides),
    };
    return kept.keys.keys((name) => feedKey(this.sim.feeds.get(name)!, ctx), inputKey);
  }

  /**
   * The search's current state: runs given a batch id keep the activations that match it, and
   * what no longer matches is forgotten. An assignment without a format for every structure (a
   * search not started yet) keeps nothing.
   */
  setActivationBase(assignment: Assignment, overrides: ParameterOverrides = {}): void {
    const kept = this.kept;
    if (!kept) return;
    if (kept.keys.interned > MAX_INTERNED) {
      kept.keys.reset();
      kept.cache.clear();
      kept.last = undefined;
    }
    if (this.plan.structures.some((s) => !assignment[s.id])) {
      kept.base = undefined;
      kept.cache.clear();
      return;
    }
    kept.base = this.tensorKeys(kept, assignment, overrides);
    kept.cache.retain(kept.base);
  }

  /** Forget every kept activation and input (the search is over: its memory is the held-out evaluation's). */
  forgetActivations(): void {
    this.quantizedInputs.clear();
    if (!this.kept) return;
    this.kept.cache.clear();
    this.kept.base = undefined;
  }

  /**
   * Runs given a batch id, those of them that read kept activations, the nodes they ran and that
   * share of the graph's, and the bytes kept (now and at most).
   */
  get activationReuse(): {
    runs: number;
    hits: number;
    nodes: number;
    nodeShare: number;
    bytes: number;
    peakBytes: number;
  } {
    const k = this.kept;
    return {
      runs: k?.runs ?? 0,
      hits: k?.hits ?? 0,
      nodes: k?.nodes ?? 0,
      nodeShare: k && k.runs > 0 ? k.nodes / (k.runs * this.sim.graph.nodes.length) : 1,
      bytes: k?.cache.size ?? 0,
      peakBytes: k?.cache.peak ?? 0,
    };
  }

  /**
   * Like `run`, returning the named activation tensors (dequantized) as well or instead. With a
   * `batch` id (the same images, `count` of them, every time it is given), tensors kept for the
   * search's state are read instead of computed where this assignment gives them the same values.
   * The arrays returned may be the kept ones: read them, do not modify them.
   */
  async runOutputs(
    assignment: Assignment,
    quantizedInput: Float32Array,
    count: number,
    outputs: string[],
    overrides: ParameterOverrides = {},
    batch?: number,
  ): Promise<Map<string, Float32Array>> {
    this.quantized.setOverrides(overrides);
    const feeds: Record<string, ort.Tensor> = {};
    const onlyLogits = outputs.length === 1 && outputs[0] === this.sim.outputName;
    const parameters = new Map<string, FeedValue>();
    const feedKeys = batch !== undefined && this.kept ? new Map<string, string>() : undefined;
    for (const [name, value] of simFeeds(this.sim, this.feedContext(assignment), this.feedCache, feedKeys)) {
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
    if (parameters.size > 0 && batch !== undefined && this.kept)
      return this.runKept(
        this.kept,
        this.tensorKeys(this.kept, assignment, overrides, feedKeys),
        parameters,
        feeds,
        count,
        outputs,
        batch,
      );
    if (parameters.size > 0) return this.runBaked(parameters, feeds, outputs);
    const fail = (e: unknown): never => {
      throw derivedGraphFailure(e, this.plan.graph.source, 'the fixed-point simulation');
    };
    const session = await (
      onlyLogits
        ? this.fedSession()
        : (this.probe ??= ort.InferenceSession.create(
            writeOnnx(withActivationOutputs(this.sim, this.plan).graph),
            sessionOptions(),
          ))
    ).catch(fail);
    const result = await session.run(feeds, outputs).catch(fail);
    return new Map(outputs.map((name) => [name, result[name]!.data as Float32Array]));
  }

  private async runBaked(
    parameters: Map<string, FeedValue>,
    feeds: Record<string, ort.Tensor>,
    outputs: string[],
    given: string[] = [],
  ): Promise<Map<string, Float32Array>> {
    const baked = this.bakedSession(parameters, outputs, given);
    baked.running++;
    try {
      const fail = (e: unknown): never => {
        throw derivedGraphFailure(e, this.plan.graph.source, 'the fixed-point simulation');
      };
      const result = await (await baked.session.catch(fail)).run(feeds, outputs).catch(fail);
      return new Map(outputs.map((name) => [name, result[name]!.data as Float32Array]));
    } finally {
      baked.running--;
    }
  }

  /** A baked run that reads kept activations and keeps those it computes that match the state. */
  private async runKept(
    kept: KeptActivations,
    /** The run's tensor keys. */
    keys: Map<string, number>,
    parameters: Map<string, FeedValue>,
    feeds: Record<string, ort.Tensor>,
    count: number,
    outputs: string[],
    batch: number,
  ): Promise<Map<string, Float32Array>> {
    kept.runs++;
    const available = new Map<string, Float32Array>();
    for (const [t, size] of kept.readable) {
      const data = kept.cache.get(t, keys.get(t)!, batch);
      if (data && data.length === count * size) available.set(t, data);
    }
    const result = new Map<string, Float32Array>();
    for (const o of outputs) if (available.has(o)) result.set(o, available.get(o)!);
    const missing = outputs.filter((o) => !available.has(o));
    if (missing.length === 0) {
      kept.hits++;
      return result;
    }
    const nodes = nodesNeededFor(this.sim.graph.nodes, missing, new Set(available.keys()));
    kept.nodes += nodes.length;
    const read = new Set(nodes.flatMap((n) => n.inputs));
    const produced = new Set(nodes.flatMap((n) => n.outputs));
    // A tensor both given and computed (a node kept for another of its outputs) would be defined twice.
    const given = [...available.keys()].filter((t) => read.has(t) && !produced.has(t));
    if (given.length > 0) kept.hits++;
    // What this run computes anyway and the state would compute the same: kept while memory allows,
    // the graph's later tensors first (they save a run the most nodes per byte in a CNN).
    const keep: string[] = [];
    let bytes = 0;
    for (const [t, size] of [...kept.readable].reverse()) {
      if (!produced.has(t) || kept.base?.get(t) !== keys.get(t)) continue;
      if (!kept.cache.fits(bytes + count * size * 4)) continue;
      keep.push(t);
      bytes += count * size * 4;
    }
    const declared = [...new Set([...missing, ...keep])];
    for (const t of given)
      feeds[t] = new ort.Tensor('float32', available.get(t)!, [count, ...this.plan.shapes.get(t)!.slice(1)]);
    const computed = await this.runBaked(parameters, feeds, declared, given);
    for (const t of keep) kept.cache.put(t, keys.get(t)!, batch, computed.get(t)!);
    for (const o of missing) result.set(o, computed.get(o)!);
    return result;
  }

  async release(): Promise<void> {
    this.forgetActivations();
    const sessions = this.baked.splice(0).map((b) => b.session);
    if (this.fed) sessions.push(this.fed);
    if (this.probe) sessions.push(this.probe);
    // Every session is released even if one failed to build or to release.
    await Promise.allSettled(sessions.map(async (s) => (await s).release()));
  }
}
