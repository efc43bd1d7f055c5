/** Import an ONNX model: decode, check, canonicalize. The one entry point the services use. */
import type { EqualizeMode } from './passes/equalize.js';
import { FxpqError, isFxpqError } from './errors.js';
import { readOnnx } from './onnx/onnx-format.js';
import { canonicalize } from './passes/canonicalize.js';
import { validateGraph } from './passes/validate.js';
import type { Graph } from './ir/graph.js';

export interface ImportedModel {
  /** Where the bytes came from, used in every message about this model. */
  source: string;
  /** The graph as the file holds it. */
  original: Graph;
  /** The canonical graph all later stages work on (spec §2). */
  canonical: Graph;
}

/**
 * Decode and validate only, for a model that onnxruntime alone will run (float evaluation of any
 * model, an exported QDQ model included): `canonical` is the graph as the file holds it.
 */
export function decodeModel(bytes: Uint8Array, source: string): ImportedModel {
  const original = { ...readOnnx(bytes, source), source };
  validateGraph(original, source);
  return { source, original, canonical: original };
}

export interface ImportOptions {
  /** Cross-layer equalization (passes/equalize.ts); default 'depthwise'. */
  equalize?: EqualizeMode;
  /** Its per-channel scale limit (default MAX_SCALE). */
  equalizeMaxScale?: number;
}

export function importModel(bytes: Uint8Array, source: string, options: ImportOptions = {}): ImportedModel {
  try {
    const original = { ...readOnnx(bytes, source), source };
    validateGraph(original, source);
    const canonical = canonicalize(original, {
      source,
      equalize: options.equalize,
      ...(options.equalizeMaxScale !== undefined ? { equalizeMaxScale: options.equalizeMaxScale } : {}),
    });
    return { source, original, canonical };
  } catch (e) {
    // Operator rules speak of nodes; the user also needs to know which file.
    if (isFxpqError(e) && !e.message.includes(source)) throw new FxpqError(`${source}: ${e.message}`, e.code);
    throw e;
  }
}
