/**
 * The simulation's activations of the search's current state, kept per calibration batch, so
 * that a candidate runs only the layers its change reaches (the search issue's "suffix
 * evaluation"): a candidate that changes one structure computes the same values as the state
 * everywhere upstream of it.
 *
 * Whether a kept tensor still holds what an assignment would compute is decided by a key per
 * tensor that hashes, Merkle-style, everything it depends on: the key of each node's output is
 * built from the keys of its inputs, where a feed's key is its format (and values) key and the
 * graph input's is the input format. Two assignments that agree on every structure upstream of a
 * tensor give it the same key, whatever they do elsewhere.
 *
 * Only tensors that match the state (`base`) are kept: a candidate's own downstream values are
 * rarely used again (most candidates are rejected), and keeping them would double the memory.
 * After the state changes, what it changed downstream is recomputed when a run needs it and kept
 * again then.
 */
import type { Node } from '../ir/graph.js';

/** Small integers for the keys' strings, so that keys stay short however deep the graph. */
class Interner {
  private readonly ids = new Map<string, number>();
  id(s: string): number {
    let v = this.ids.get(s);
    if (v === undefined) {
      v = this.ids.size;
      this.ids.set(s, v);
    }
    return v;
  }
  get size(): number {
    return this.ids.size;
  }
}

/** Keys of every tensor of a graph under an assignment (see the module comment). */
export class TensorKeys {
  private interner = new Interner();

  constructor(
    private readonly nodes: Node[],
    /** The graph input, whose key is its format's. */
    private readonly input: string,
    /** The feeds: inputs whose values the assignment decides. */
    private readonly feeds: ReadonlySet<string>,
  ) {}

  /** Keys of all node outputs, given each feed's key and the input format's key. */
  keys(feedKey: (name: string) => string, inputKey: string): Map<string, number> {
    const keys = new Map<string, number>();
    const feedIds = new Map<string, number>();
    const of = (t: string): number => {
      if (!t) return -1;
      const known = keys.get(t);
      if (known !== undefined) return known;
      if (t === this.input) return this.interner.id(`in=${inputKey}`);
      if (this.feeds.has(t)) {
        let id = feedIds.get(t);
        if (id === undefined) {
          id = this.interner.id(`${t}=${feedKey(t)}`);
          feedIds.set(t, id);
        }
        return id;
      }
      // A constant of the graph: the same for every assignment.
      return -2;
    };
    for (const [i, n] of this.nodes.entries()) {
      const own = this.interner.id(`${i}:${n.inputs.map(of).join(',')}`);
      for (const [j, o] of n.outputs.entries()) keys.set(o, j === 0 ? own : this.interner.id(`${own}.${j}`));
    }
    return keys;
  }

  /** Distinct strings interned so far (the table only grows; `reset` empties it with the cache). */
  get interned(): number {
    return this.interner.size;
  }

  reset(): void {
    this.interner = new Interner();
  }
}

interface Entry {
  key: number;
  /** Per batch id: the tensor's values for that batch's images. */
  batches: Map<number, Float32Array>;
}

/** Kept activations, per tensor and batch, under a memory limit. */
export class ActivationCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  /** The most bytes held at once. */
  peak = 0;

  constructor(readonly limitBytes: number) {}

  get(tensor: string, key: number, batch: number): Float32Array | undefined {
    const e = this.entries.get(tensor);
    return e?.key === key ? e.batches.get(batch) : undefined;
  }

  /** Whether `bytes` more would still fit. */
  fits(bytes: number): boolean {
    return this.bytes + bytes <= this.limitBytes;
  }

  put(tensor: string, key: number, batch: number, data: Float32Array): void {
    let e = this.entries.get(tensor);
    if (e && e.key !== key) {
      this.drop(tensor);
      e = undefined;
    }
    if (!e) {
      e = { key, batches: new Map() };
      this.entries.set(tensor, e);
    }
    const old = e.batches.get(batch);
    if (old) this.bytes -= old.byteLength;
    e.batches.set(batch, data);
    this.bytes += data.byteLength;
    this.peak = Math.max(this.peak, this.bytes);
  }

  /** Forget every tensor whose key is not the one given (the state moved on). */
  retain(keys: ReadonlyMap<string, number>): void {
    for (const [tensor, e] of this.entries) if (keys.get(tensor) !== e.key) this.drop(tensor);
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  get size(): number {
    return this.bytes;
  }

  private drop(tensor: string): void {
    const e = this.entries.get(tensor);
    if (!e) return;
    for (const d of e.batches.values()) this.bytes -= d.byteLength;
    this.entries.delete(tensor);
  }
}
