/**
 * `model.fxpq`: one file holding a JSON manifest (graph, shapes, formats per data structure,
 * shifts, classes, preprocessing), every weight and bias bit-packed at exactly its word length,
 * and golden test vectors (inputs and the integer executor's outputs).
 *
 * Layout: "FXPQPKG1" | u32 manifest bytes | manifest (UTF-8 JSON) | packed blobs, back to back.
 * The manifest gives each blob's byte offset (from the end of the manifest) and length.
 */
import { FxpqError } from '../errors.js';
import type { IntProgram, ProgramConstant, ProgramNode } from '../fixedpoint/program.js';
import { rshiftRound, type Format } from '../fixedpoint/format.js';
import { packBits, unpackBits } from './bit-pack.js';

const MAGIC = 'FXPQPKG1';

interface BlobRef {
  offset: number;
  bytes: number;
  count: number;
  bits: number;
  signed: boolean;
}

export interface GoldenVectors {
  /** Integer inputs (input format), one array per vector. */
  inputs: Int32Array[];
  /** The integer executor's logits for each input. */
  outputs: Int32Array[];
}

export interface PackageMeta {
  model: { path: string; sha256: string };
  classes: string[];
  preprocess: string;
  formats: Record<string, Format>;
  memory: Record<string, number>;
}

interface Manifest {
  format: 'fxpq-package';
  version: 1;
  meta: PackageMeta;
  program: Omit<IntProgram, 'constants'> & {
    constants: Record<
      string,
      Omit<ProgramConstant, 'data' | 'aligned'> & { blob: BlobRef; format?: Format; alignShift?: number }
    >;
  };
  golden: { inputs: BlobRef[]; outputs: BlobRef[] };
}

export interface FxpqPackage {
  bytes: Uint8Array;
  /** Bytes of packed weights and biases, manifest and golden vectors: for the size check. */
  sizes: { weights: number; manifest: number; golden: number; header: number };
}

function bitsFor(values: Int32Array, signed: boolean): number {
  let b = 1;
  for (const v of values) {
    while (signed ? v < -(2 ** (b - 1)) || v > 2 ** (b - 1) - 1 : v > 2 ** b - 1) b++;
  }
  return signed ? Math.max(b, 2) : b;
}

/** Write a package. `formatOfConstant` gives the word length of each weight and bias. */
export function writeFxpqPackage(
  program: IntProgram,
  meta: PackageMeta,
  golden: GoldenVectors,
  formatOfConstant: (name: string) => Format | undefined,
): FxpqPackage {
  const blobs: Uint8Array[] = [];
  let offset = 0;
  const addBlob = (values: Int32Array, bits: number, signed: boolean): BlobRef => {
    const bytes = packBits(values, bits);
    blobs.push(bytes);
    const ref = { offset, bytes: bytes.length, count: values.length, bits, signed };
    offset += bytes.length;
    return ref;
  };
  const constants: Manifest['program']['constants'] = {};
  let weightBytes = 0;
  for (const [name, c] of Object.entries(program.constants)) {
    const f = formatOfConstant(name);
    const bits = f?.bits ?? bitsFor(c.data, true);
    const blob = addBlob(c.data, bits, f?.signed ?? true);
    if (f) weightBytes += blob.bytes;
    const { data: _data, aligned: _aligned, ...rest } = c;
    constants[name] = { ...rest, blob, ...(f ? { format: f } : {}) };
  }
  const inputBits = program.input.format;
  const outNode = program.nodes.find((n) => n.output === program.output.name);
  const goldenIn = golden.inputs.map((v) => addBlob(v, inputBits.bits, inputBits.signed));
  const goldenOut = golden.outputs.map((v) =>
    addBlob(v, outNode ? outNode.out.bits : 32, outNode ? outNode.out.signed : true),
  );
  const goldenBytes = [...goldenIn, ...goldenOut].reduce((s, b) => s + b.bytes, 0);
  const { constants: _c, ...programRest } = program;
  const manifest: Manifest = {
    format: 'fxpq-package',
    version: 1,
    meta,
    program: { ...programRest, constants },
    golden: { inputs: goldenIn, outputs: goldenOut },
  };
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest));
  const header = 8 + 4;
  const out = new Uint8Array(header + manifestBytes.length + offset);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, manifestBytes.length, true);
  out.set(manifestBytes, header);
  let pos = header + manifestBytes.length;
  for (const b of blobs) {
    out.set(b, pos);
    pos += b.length;
  }
  return { bytes: out, sizes: { weights: weightBytes, manifest: manifestBytes.length, golden: goldenBytes, header } };
}

export interface ReadPackage {
  meta: PackageMeta;
  program: IntProgram;
  golden: GoldenVectors;
}

/** Read a package back into an integer program (biases re-aligned from their packed integers). */
export function readFxpqPackage(bytes: Uint8Array, source: string): ReadPackage {
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (bytes.length < 12 || magic !== MAGIC) throw new FxpqError(`${source} is not an FxPQ package (model.fxpq).`, 'io');
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + length))) as Manifest;
  } catch {
    throw new FxpqError(`${source} has a damaged manifest.`, 'io');
  }
  const base = 12 + length;
  const blob = (ref: BlobRef): Int32Array => {
    if (base + ref.offset + ref.bytes > bytes.length) throw new FxpqError(`${source} is truncated.`, 'io');
    return unpackBits(
      bytes.subarray(base + ref.offset, base + ref.offset + ref.bytes),
      ref.count,
      ref.bits,
      ref.signed,
    );
  };
  const constants: IntProgram['constants'] = {};
  for (const [name, c] of Object.entries(manifest.program.constants)) {
    const { blob: ref, format: _f, ...rest } = c;
    constants[name] = { ...rest, data: blob(ref) };
  }
  // Re-derive each bias's accumulator alignment from the layer it feeds.
  for (const node of manifest.program.nodes as ProgramNode[]) {
    const w = constants[node.inputs[1] ?? ''];
    const b = constants[node.inputs[2] ?? ''];
    if (!w || !b || b.frac === undefined || w.frac === undefined) continue;
    const shift = b.frac - (w.frac + manifest.program.fracOf[node.inputs[0]!]!);
    b.aligned = Float64Array.from(b.data, (v) => rshiftRound(v, shift));
  }
  const program: IntProgram = { ...manifest.program, constants };
  return {
    meta: manifest.meta,
    program,
    golden: { inputs: manifest.golden.inputs.map(blob), outputs: manifest.golden.outputs.map(blob) },
  };
}
