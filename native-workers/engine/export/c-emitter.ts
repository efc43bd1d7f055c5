/**
 * Portable integer-only C99 from an integer program: no float, no malloc, no libm. Weights
 * and biases are `static const` arrays, bit-packed at their word length (smallest flash) or
 * one C integer each (`bytes`: no unpacking, fastest). Activations live in static arenas, one
 * per element width (so reused bytes keep one C type: strict aliasing holds), each tensor in the
 * smallest C type that holds its word length, at offsets from a liveness plan over the schedule.
 * Layers may store a constant in their own element order and use small static scratch buffers
 * (a convolution stages its input channel-last and unpacks one output channel's weights at a
 * time), counted in the RAM of the plan. Every operator's code comes from its module's `emitC`,
 * each layer in a static function of its own that `fxpq_run` calls in order. Text from the model
 * reaches the C only through c-text.ts: names in comments, escaped; identifiers generated.
 */
import { FxpqError } from '../errors.js';
import { operatorModule } from '../ops/registry.js';
import type { IntProgram } from '../fixedpoint/program.js';
import type { Format } from '../fixedpoint/format.js';
import { packBits } from './bit-pack.js';
import { PRELUDE, UNPACK, UNPACK_RUN } from './c-runtime.js';
import type { GoldenVectors } from './fxpq-package.js';
import { cCommentText, cIdentifierPart, cInt } from './c-text.js';

export interface CEmitContext {
  program: IntProgram;
  /** C name of an activation tensor's buffer (a pointer into the arena, int8/16/32 by its word length). */
  buffer(tensor: string): string;
  /** Shape (batch 1) of an activation tensor. */
  shape(tensor: string): number[];
  /** C expression for element `index` of a packed weight or bias. */
  constant(name: string, index: string): string;
  /** int32_t when b_w + b_x + ceil(log2 K) <= 31 (spec §2) and the aligned bias fits, int64_t otherwise. */
  accumulator(weights: string, input: string, fanIn: number, bias?: string): 'int32_t' | 'int64_t';
  /** Smallest C type that holds an activation tensor's values (what a layer stages it as). */
  elementType(tensor: string): string;
  /** C element type of `buffer(tensor)` (int32_t for the network input, the caller's array). */
  bufferType(tensor: string): string;
  /**
   * Store a constant in C in another element order: C element i holds `data[order[i]]` (a layer
   * lays out its weights so that each output's inner product reads one contiguous run).
   * `constant` and `loadRun` then index that order.
   */
  reorder(name: string, order: ArrayLike<number>): void;
  /** C type of the scratch row `loadRun` fills for a weight constant (int16_t, or int32_t when wider). */
  rowType(name: string): 'int16_t' | 'int32_t';
  /** C statements filling `dst[0..count)` with elements first.. of a constant: unpacked once (packed) or copied (bytes). */
  loadRun(name: string, dst: string, first: string, count: number): string;
  /**
   * A static scratch buffer for `role` of at least `elements` values of `type` (C pointer
   * expression). One buffer per role and element width, sized for the largest request; its bytes
   * count in the RAM of the memory plan.
   */
  scratch(role: 'input' | 'weights' | 'columns', type: string, elements: number): string;
}

/**
 * The C identifier of a constant or tensor: a generated prefix and the name reduced to
 * [A-Za-z0-9_] (never the name itself), made unique with a counter.
 */
function cName(s: string, prefix: string, used: { byName: Map<string, string>; taken: Set<string> }): string {
  const existing = used.byName.get(`${prefix}:${s}`);
  if (existing) return existing;
  const stem = `${prefix}_${cIdentifierPart(s)}`.slice(0, 60);
  let base = stem;
  for (let i = 1; used.taken.has(base); i++) base = `${stem.slice(0, 52)}_${i}`;
  used.byName.set(`${prefix}:${s}`, base);
  used.taken.add(base);
  return base;
}

function byteArray(name: string, bytes: Uint8Array): string {
  const rows: string[] = [];
  for (let i = 0; i < bytes.length; i += 24) rows.push('  ' + Array.from(bytes.subarray(i, i + 24)).join(','));
  return `static const uint8_t ${name}[${Math.max(bytes.length, 1)}] = {\n${rows.join(',\n') || '  0'}\n};`;
}

function intArray(name: string, values: ArrayLike<number>, type = 'int32_t', qualifier = 'static const'): string {
  const rows: string[] = [];
  // One pass over the values (copying the whole array per row made large layers quadratic).
  for (let i = 0; i < values.length; i += 16) {
    const row: number[] = [];
    for (let k = i; k < Math.min(i + 16, values.length); k++) row.push(values[k]!);
    rows.push('  ' + row.join(','));
  }
  return `${qualifier} ${type} ${name}[${Math.max(values.length, 1)}] = {\n${rows.join(',\n') || '  0'}\n};`;
}

export interface CSources {
  header: string;
  source: string;
  harness: string;
  memory: CMemoryPlan;
  /**
   * About how many multiply-accumulates and element copies `fxpq_run` does per image (each
   * layer's outputs times its fan-in, plus its inputs): what the export sizes the harness's time limit by.
   */
  operations: number;
}

/** Weights storage: bit-packed at their word length, or one C integer of the smallest type each. */
export type CWeights = 'packed' | 'bytes';

/** Where every activation lives in the arena, and what the model needs in RAM and flash. */
export interface CMemoryPlan {
  /** Bytes of the static activation arenas, one per element width (the RAM peak of the activations). */
  arenaBytes: number;
  /**
   * The liveness lower bound: the most bytes of activations alive at any one node. No placement
   * can use less; `arenaBytes` above it is fragmentation or the split into element widths.
   */
  liveBytesBound: number;
  /** Bytes of the layers' static scratch buffers (staged inputs, unpacked weight rows, columns): RAM beside the arena. */
  scratchBytes: number;
  /** What one int32_t buffer per tensor would take (the plan's baseline). */
  unplannedBytes: number;
  /** Bytes of the weight and bias arrays (flash). */
  weightsBytes: number;
  largest: { tensor: string; bytes: number };
  /** `offset`: bytes into the arena of the tensor's element width. */
  tensors: { tensor: string; type: string; bytes: number; offset: number; live: [number, number] }[];
}

/** The smallest C integer type that holds `bits`-bit values of this signedness. */
export function cTypeFor(bits: number, signed: boolean): { type: string; bytes: number } {
  if (bits <= 8) return { type: signed ? 'int8_t' : 'uint8_t', bytes: 1 };
  if (bits <= 16) return { type: signed ? 'int16_t' : 'uint16_t', bytes: 2 };
  return { type: 'int32_t', bytes: 4 };
}

/**
 * Offsets of tensors in one arena: a tensor lives from the node that writes it to the last node
 * that reads it; tensors alive at the same node never overlap (an operator may read its inputs
 * while it writes its output). Largest first, each at the lowest offset that fits.
 */
export function planArena(tensors: { name: string; bytes: number; start: number; end: number }[]): {
  offsets: Map<string, number>;
  peak: number;
} {
  const placed: { start: number; end: number; lo: number; hi: number }[] = [];
  const offsets = new Map<string, number>();
  let peak = 0;
  const align = (n: number): number => Math.ceil(n / 4) * 4;
  for (const t of [...tensors].sort((a, b) => b.bytes - a.bytes || a.start - b.start || (a.name < b.name ? -1 : 1))) {
    const conflicts = placed.filter((p) => p.start <= t.end && t.start <= p.end).sort((a, b) => a.lo - b.lo);
    let offset = 0;
    for (const p of conflicts) {
      if (offset + t.bytes <= p.lo) break;
      offset = Math.max(offset, align(p.hi));
    }
    placed.push({ start: t.start, end: t.end, lo: offset, hi: offset + t.bytes });
    offsets.set(t.name, offset);
    peak = Math.max(peak, align(offset + t.bytes));
  }
  return { offsets, peak };
}

function typedArray(name: string, type: string, values: ArrayLike<number>): string {
  return intArray(name, values, type);
}

export function emitC(
  program: IntProgram,
  golden: GoldenVectors,
  formatOfConstant: (name: string) => Format | undefined,
  options: { weights?: CWeights } = {},
): CSources {
  const weights = options.weights ?? 'packed';
  checkNumbers(program);
  const used = { byName: new Map<string, string>(), taken: new Set<string>() };
  const decls: string[] = [];
  const packed = new Map<string, { name: string; bits: number; signed: boolean }>();
  for (const name of Object.keys(program.constants)) {
    const f = formatOfConstant(name);
    if (f) {
      cInt(f.bits, `the word length of ${name}`);
      packed.set(name, { name: cName(name, 'P', used), bits: f.bits, signed: f.signed });
    }
  }
  // Element orders the layers asked for (`reorder`); the arrays are written after the layers' code.
  const orders = new Map<string, ArrayLike<number>>();
  // Only the unpacking helpers the code calls are written (an unused static function is a -Wall warning).
  const helpers = { unpack: false, unpackRun: false };
  const scratch = new Map<string, { name: string; storage: string; width: number; elements: number }>();
  const shapes = new Map<string, number[]>([[program.input.name, program.input.shape]]);
  for (const n of program.nodes) shapes.set(n.output, n.outShape);
  const size = (t: string): number => shapes.get(t)!.reduce((a, b) => a * b, 1);
  // The arena plan: each activation in its smallest type, alive from its producer to its last reader.
  const live = new Map<string, { start: number; end: number }>();
  program.nodes.forEach((n, i) => {
    live.set(n.output, { start: i, end: i });
    for (const input of n.inputs) {
      const l = live.get(input);
      if (l) l.end = Math.max(l.end, i);
    }
  });
  live.get(program.output.name)!.end = program.nodes.length;
  const typeOf = new Map<string, { type: string; bytes: number }>();
  for (const n of program.nodes) typeOf.set(n.output, cTypeFor(formatBits(program, n.output), n.out.lo < 0));
  // One arena per element width, so memory is only ever reused by values of one C type (or its
  // signed/unsigned twin): C's aliasing rules then hold, whatever the optimizer does.
  const STORAGE: Record<number, string> = { 1: 'unsigned char', 2: 'int16_t', 4: 'int32_t', 8: 'int64_t' };
  const arenas = [1, 2, 4].map((width) => ({
    width,
    name: `fxpq_arena${8 * width}`,
    plan: planArena(
      [...live.entries()]
        .filter(([name]) => typeOf.get(name)!.bytes === width)
        .map(([name, l]) => ({ name, bytes: size(name) * width, ...l })),
    ),
  }));
  const arenaOf = new Map<string, (typeof arenas)[number]>();
  for (const a of arenas) {
    for (const t of a.plan.offsets.keys()) arenaOf.set(t, a);
    if (a.plan.peak > 0) decls.push(`static ${STORAGE[a.width]} ${a.name}[${a.plan.peak / a.width}];`);
  }
  const offsetOf = (t: string): number => arenaOf.get(t)!.plan.offsets.get(t)!;
  const buffers = new Map<string, string>();
  const buffer = (t: string): string => {
    let b = buffers.get(t);
    if (!b) {
      b = cName(t, 'T', used);
      buffers.set(t, b);
      const { type } = typeOf.get(t)!;
      const a = arenaOf.get(t)!;
      decls.push(`static ${type} *const ${b} = (${type} *)(${a.name} + ${offsetOf(t) / a.width});`);
    }
    return b;
  };
  let liveBytesBound = 0;
  for (let i = 0; i <= program.nodes.length; i++) {
    let alive = 0;
    for (const [t, l] of live) if (l.start <= i && i <= l.end) alive += size(t) * typeOf.get(t)!.bytes;
    liveBytesBound = Math.max(liveBytesBound, alive);
  }
  const memory: CMemoryPlan = {
    arenaBytes: arenas.reduce((n, a) => n + a.plan.peak, 0),
    liveBytesBound,
    scratchBytes: 0,
    unplannedBytes: [...live.keys()].reduce((n, t) => n + 4 * size(t), 0),
    weightsBytes: 0,
    largest: [...live.keys()]
      .map((t) => ({ tensor: t, bytes: size(t) * typeOf.get(t)!.bytes }))
      .reduce((a, b) => (b.bytes > a.bytes ? b : a), { tensor: '', bytes: 0 }),
    tensors: [...live.entries()].map(([t, l]) => ({
      tensor: t,
      type: typeOf.get(t)!.type,
      bytes: size(t) * typeOf.get(t)!.bytes,
      offset: offsetOf(t),
      live: [l.start, l.end],
    })),
  };
  const ctx: CEmitContext = {
    program,
    buffer,
    shape: (t) => shapes.get(t)!,
    constant: (name, index) => {
      const p = packed.get(name);
      if (!p) throw new FxpqError(`Constant ${name} has no packed format.`, 'invalid-model');
      if (weights === 'bytes') return `(int32_t)${p.name}[${index}]`;
      helpers.unpack = true;
      return `fxpq_unpack(${p.name}, (uint32_t)(${index}), ${p.bits}, ${p.signed ? 1 : 0})`;
    },
    accumulator: (weights, input, fanIn, bias) => {
      const bw = packed.get(weights)!.bits;
      const bx = formatBits(program, input);
      let biasMax = 0;
      for (const v of bias ? program.constants[bias]!.aligned! : []) biasMax = Math.max(biasMax, Math.abs(v));
      return bw + bx + Math.ceil(Math.log2(Math.max(fanIn, 1))) <= 30 && biasMax < 2 ** 29 ? 'int32_t' : 'int64_t';
    },
    elementType: (t) =>
      t === program.input.name
        ? cTypeFor(program.input.format.bits, program.input.format.signed).type
        : typeOf.get(t)!.type,
    bufferType: (t) => (t === program.input.name ? 'int32_t' : typeOf.get(t)!.type),
    reorder: (name, order) => {
      if (order.length !== program.constants[name]!.data.length)
        throw new FxpqError(`C element order of ${name} has the wrong length.`, 'invalid-model');
      orders.set(name, order);
    },
    rowType: (name) => rowTypeOf(packed.get(name)!),
    loadRun: (name, dst, first, count) => {
      const p = packed.get(name)!;
      if (weights === 'bytes')
        return `{ int i_; for (i_ = 0; i_ < ${count}; i_++) (${dst})[i_] = ${p.name}[(${first}) + i_]; }`;
      if (rowTypeOf(p) === 'int16_t') {
        helpers.unpackRun = true;
        return `fxpq_unpack_run(${p.name}, (uint32_t)(${first}), ${count}u, ${p.bits}, ${p.signed ? 1 : 0}, ${dst});`;
      }
      helpers.unpack = true;
      return `{ int i_; for (i_ = 0; i_ < ${count}; i_++) (${dst})[i_] = fxpq_unpack(${p.name}, (uint32_t)(${first}) + (uint32_t)i_, ${p.bits}, ${p.signed ? 1 : 0}); }`;
    },
    scratch: (role, type, elements) => {
      const width = WIDTH[type];
      if (!width) throw new FxpqError(`No scratch storage for C type ${type}.`, 'invalid-model');
      const key = `${role}${8 * width}`;
      const s = scratch.get(key) ?? { name: `fxpq_${key}`, storage: STORAGE[width]!, width, elements: 0 };
      s.elements = Math.max(s.elements, elements);
      scratch.set(key, s);
      return `(${type} *)${s.name}`;
    },
  };
  // The input buffer is the caller's array.
  buffers.set(program.input.name, 'input');
  // One static function per layer, called in order by fxpq_run: gcc's optimizer grows faster
  // than linearly with the size of one function, and a single function of every layer made a
  // 1,000-layer model take minutes to compile.
  const layers: string[] = [];
  const body: string[] = [];
  program.nodes.forEach((node, i) => {
    const emit = operatorModule(node.op)?.fixedPoint?.emitC;
    if (!emit) throw new FxpqError(`Operator ${node.op} (node ${node.name}) has no C emitter.`, 'unsupported-op');
    const takesInput = node.inputs.includes(program.input.name);
    // Names from the model reach the C only here, and only through the one comment escaper.
    layers.push(
      `/* ${cCommentText(node.op)} ${cCommentText(node.name)} */\nstatic void fxpq_layer${i}(${takesInput ? 'const int32_t *input' : 'void'}) {\n  {\n${emit(node, ctx)}\n  }\n}`,
    );
    body.push(`  fxpq_layer${i}(${takesInput ? 'input' : ''});`);
  });
  const constants: string[] = [];
  for (const [name, p] of packed) {
    const data = program.constants[name]!.data;
    const order = orders.get(name);
    const values = order ? Int32Array.from(order, (i) => data[i]!) : data;
    if (weights === 'bytes') {
      const { type, bytes } = cTypeFor(p.bits, p.signed);
      constants.push(typedArray(p.name, type, values));
      memory.weightsBytes += bytes * values.length;
    } else {
      const bytes = packBits(values, p.bits);
      constants.push(byteArray(p.name, bytes));
      memory.weightsBytes += bytes.length;
    }
  }
  for (const s of scratch.values()) {
    decls.push(`static ${s.storage} ${s.name}[${s.elements}];`);
    memory.scratchBytes += s.width * s.elements;
  }
  const outSize = size(program.output.name);
  const inSize = size(program.input.name);
  body.push(`  { int i; for (i = 0; i < ${outSize}; i++) output[i] = ${buffer(program.output.name)}[i]; }`);
  const inFrac = cInt(program.input.format.frac, 'the input fractional length');
  const outFrac = cInt(program.output.frac, 'the output fractional length');
  const header = `/* Generated by FxPQ: integer-only inference, C99, no float, no malloc. */
#ifndef FXPQ_MODEL_H
#define FXPQ_MODEL_H
#include <stdint.h>

#define FXPQ_INPUT_SIZE ${cInt(inSize, 'the input size')}
#define FXPQ_OUTPUT_SIZE ${cInt(outSize, 'the output size')}
/* Input: integers m of the input format (value = m * 2^-${inFrac}, ${cInt(program.input.format.bits, 'the input word length')} bits, ${program.input.format.signed ? 'signed' : 'unsigned'}). */
#define FXPQ_INPUT_FRAC ${inFrac}
/* Output logits: integers m (value = m * 2^-${outFrac}); top-1 is the largest, ties to the lower index. */
#define FXPQ_OUTPUT_FRAC ${outFrac}

void fxpq_run(const int32_t *input, int32_t *output);

#endif
`;
  const source = `/* Generated by FxPQ: integer-only inference, C99, no float, no malloc. */
${PRELUDE}${helpers.unpack ? UNPACK : ''}${helpers.unpackRun ? UNPACK_RUN : ''}
${constants.join('\n')}
${decls.join('\n')}

${layers.join('\n\n')}

void fxpq_run(const int32_t *input, int32_t *output) {
${body.join('\n')}
}
`;
  let operations = 0;
  for (const node of program.nodes) {
    const weights = Math.max(0, ...node.inputs.map((t) => program.constants[t]?.data.length ?? 0));
    const fanIn = Math.max(1, weights / Math.max(1, node.outShape[1] ?? 1));
    operations += size(node.output) * fanIn;
    for (const t of node.inputs) if (shapes.has(t)) operations += size(t);
  }
  const n = golden.inputs.length;
  const harness = `/* Generated by FxPQ: runs the golden vectors; exit 0 only if every output matches. */
#include <stdio.h>
#include <stdint.h>
#include "model.h"

${golden.inputs.map((v, i) => intArray(`golden_in_${i}`, v)).join('\n')}
${golden.outputs.map((v, i) => intArray(`golden_out_${i}`, v)).join('\n')}
static const int32_t *const golden_in[${n}] = {${golden.inputs.map((_, i) => `golden_in_${i}`).join(', ')}};
static const int32_t *const golden_out[${n}] = {${golden.outputs.map((_, i) => `golden_out_${i}`).join(', ')}};

int main(void) {
  static int32_t out[FXPQ_OUTPUT_SIZE];
  int v, i, failed = 0;
  for (v = 0; v < ${n}; v++) {
    fxpq_run(golden_in[v], out);
    for (i = 0; i < FXPQ_OUTPUT_SIZE; i++) {
      if (out[i] != golden_out[v][i]) {
        if (failed < 10) printf("vector %d, output %d: %ld, expected %ld\\n", v, i, (long)out[i], (long)golden_out[v][i]);
        failed++;
      }
    }
  }
  printf("%d golden vectors, %d mismatching outputs\\n", ${n}, failed);
  return failed == 0 ? 0 : 1;
}
`;
  return { header, source, harness, memory, operations: Math.round(operations) };
}

const WIDTH: Record<string, number> = {
  int8_t: 1,
  uint8_t: 1,
  int16_t: 2,
  uint16_t: 2,
  int32_t: 4,
  int64_t: 8,
};

/** Weight rows are unpacked to int16_t when every value fits it (the multiply-accumulate loops then widen only the activations). */
function rowTypeOf(p: { bits: number; signed: boolean }): 'int16_t' | 'int32_t' {
  return p.bits <= (p.signed ? 16 : 15) ? 'int16_t' : 'int32_t';
}

/**
 * Every number of the program an operator's C is written from (shapes, formats, clamp bounds) is
 * an integer: formats come from a run's config.json, and only numbers may reach the C as numbers.
 * (Attributes are decoded from the model's protobuf, typed; constants are Int32Arrays.)
 */
function checkNumbers(program: IntProgram): void {
  const ints = (values: unknown, what: string): void => {
    if (!Array.isArray(values))
      throw new FxpqError(
        `The C export needs ${cCommentText(what)} to be a list of integers; the run or model is damaged.`,
        'invalid-model',
      );
    for (const v of values) cInt(v, what);
  };
  ints(program.input.shape, 'the input shape');
  for (const n of program.nodes) {
    const what = `node ${n.name}`;
    ints(n.outShape, `the output shape of ${what}`);
    for (const k of ['frac', 'lo', 'hi', 'bits'] as const) cInt(n.out[k], `the output ${k} of ${what}`);
    if (n.out.hiPerChannel) ints(n.out.hiPerChannel, `the upper bounds of ${what}`);
  }
  for (const [name, c] of Object.entries(program.constants))
    if (!(c.data instanceof Int32Array))
      throw new FxpqError(
        `The C export needs the constant ${cCommentText(name)} as integers; the run or model is damaged.`,
        'invalid-model',
      );
}

function formatBits(program: IntProgram, tensor: string): number {
  if (tensor === program.input.name) return program.input.format.bits;
  // Pass-through tensors share their producer's clamp range: derive the width from it.
  const producer = program.nodes.find((n) => n.output === tensor)!;
  return producer.out.bits;
}
