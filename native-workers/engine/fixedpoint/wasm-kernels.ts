/**
 * The WebAssembly integer kernels (wasm/kernels.c, built by scripts/build-wasm.mjs): loading
 * and the memory they work in. The engine reads no files, so the binary comes in as base64
 * from a generated module: the same bytes load in Node, in the Electron bundles and in a
 * browser, with nothing fetched. Where WebAssembly or its SIMD is missing, `wasmKernelModule`
 * gives undefined and the executor keeps the TypeScript kernels.
 */
import { KERNELS_WASM_BASE64 } from './wasm/kernels-wasm.js';

interface KernelExports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  pad_input(
    x: number,
    C: number,
    H: number,
    W: number,
    pt: number,
    pl: number,
    Hp: number,
    Wp: number,
    xp: number,
  ): number;
  pack_conv(...args: number[]): void;
  depthwise(...args: number[]): void;
  conv_4x8(...args: number[]): void;
  pack_rows(x: number, P: number, K: number, col: number): number;
  dot_4x8(w: number, col: number, OB: number, KP: number, PB: number, acc: number): void;
  dot_1x8(w: number, col: number, KP: number, PB: number, acc: number): void;
  requantize(...args: number[]): void;
  requantize_shift(...args: number[]): void;
  add_shift(
    a: number,
    b: number,
    n: number,
    la: number,
    lb: number,
    r: number,
    lo: number,
    hi: number,
    out: number,
  ): number;
}

let compiled: Promise<WebAssembly.Module | undefined> | undefined;

function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The compiled kernels (compiled once per thread), or undefined where this runtime cannot run them. */
export function wasmKernelModule(): Promise<WebAssembly.Module | undefined> {
  compiled ??= (async () => {
    if (typeof WebAssembly === 'undefined') return undefined;
    try {
      return await WebAssembly.compile(decodeBase64(KERNELS_WASM_BASE64));
    } catch {
      return undefined; // no SIMD or bulk memory here: the TypeScript kernels stay
    }
  })();
  return compiled;
}

const PAGE = 65536;
const align16 = (n: number) => (n + 15) & ~15;

/**
 * One instance of the kernels with its own memory: packed weights of the current program
 * below `top`, per-call scratch above it. Not shared between threads.
 */
export class WasmKernels {
  readonly fn: KernelExports;
  private readonly base: number;
  private top: number;
  private readonly packed = new Map<string, unknown>();
  private readonly outputs = new Map<string, Int32Array>();
  /** Layer calls served by the kernels, and those that fell back to TypeScript (tests, benchmarks). */
  readonly counts = { fast: 0, fallback: 0 };

  private constructor(instance: WebAssembly.Instance) {
    this.fn = instance.exports as unknown as KernelExports;
    this.base = align16(this.fn.__heap_base.value as number);
    this.top = this.base;
  }

  static async create(module?: WebAssembly.Module): Promise<WasmKernels | undefined> {
    const m = module ?? (await wasmKernelModule());
    if (!m) return undefined;
    return new WasmKernels(await WebAssembly.instantiate(m, {}));
  }

  private current: unknown;

  /**
   * Serve the program known by `key`: a different key than the last forgets the packed
   * weights and output arrays of the earlier program (a pool worker passes the same key for
   * every task of one program, so it packs the weights once).
   */
  use(key: unknown): void {
    if (key !== this.current) this.reset();
    this.current = key;
  }

  /** Forget the packed weights of an earlier program: its memory is reused. */
  reset(): void {
    this.current = undefined;
    this.packed.clear();
    this.outputs.clear();
    this.top = this.base;
  }

  /** Data packed once per program (weights), by node name: names hold across a program's copies. */
  cached<T>(key: string, make: () => T): T {
    if (!this.packed.has(key)) this.packed.set(key, make());
    return this.packed.get(key) as T;
  }

  /** Persistent bytes (packed weights, biases) until the next reset; undefined when memory cannot grow. */
  allocate(bytes: number): number | undefined {
    const at = this.top;
    if (!this.ensure(align16(at + bytes))) return undefined;
    this.top = align16(at + bytes);
    return at;
  }

  /**
   * Scratch pointers for one kernel call, laid out above the persistent data; undefined when
   * the memory cannot grow that far (wasm32 stops at 4 GiB): the caller then falls back.
   */
  scratch(sizes: number[]): number[] | undefined {
    let at = this.top;
    const out = sizes.map((s) => {
      const p = at;
      at = align16(at + s);
      return p;
    });
    return this.ensure(at) ? out : undefined;
  }

  private ensure(end: number): boolean {
    const have = this.fn.memory.buffer.byteLength;
    if (end <= have) return true;
    try {
      this.fn.memory.grow(Math.ceil((end - have) / PAGE));
      return true;
    } catch {
      return false; // RangeError: past the engine's limit for this memory
    }
  }

  /** Views are made per use: growing the memory detaches earlier ones. */
  i32(ptr: number, length: number): Int32Array {
    return new Int32Array(this.fn.memory.buffer, ptr, length);
  }

  /**
   * `length` int32 at `ptr` copied into the output array of node `node`, one per node reused for
   * every image of the program: allocating a fresh array per layer and image (page faults on
   * large ones) cost as much as some kernels. Valid until that node runs again.
   */
  copyOut(ptr: number, length: number, node: string): Int32Array {
    let out = this.outputs.get(node);
    if (out?.length !== length) this.outputs.set(node, (out = new Int32Array(length)));
    out.set(this.i32(ptr, length));
    return out;
  }

  f64(ptr: number, length: number): Float64Array {
    return new Float64Array(this.fn.memory.buffer, ptr, length);
  }
}
