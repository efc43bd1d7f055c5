/** Model files: load, canonicalize and inspect, and find the preprocessing and class list a model carries. */
import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { inspectModel as inspectImported } from '../native-workers/engine/analysis/inspect.js';
import { decodeModel, importModel, type ImportedModel } from '../native-workers/engine/model.js';
import { createOrtSession } from '../native-workers/engine/runtime/ort-session.js';
import type { ClassList } from '../native-workers/engine/data/classes.js';
import { FxpqError, isFxpqError } from '../native-workers/engine/errors.js';
import { parsePreprocess } from '../native-workers/engine/data/preprocess.js';
import type { EqualizeMode, InspectReport } from '../api/contract.js';
import { classesFromValue } from './classes.js';
import { readUserFile } from './files.js';
import { engineEntry } from './engine-thread.js';

export interface LoadedModel extends ImportedModel {
  bytes: Uint8Array;
}

/**
 * Read, validate and canonicalize a model, and have onnxruntime load it once: a model that
 * FxPQ's checks accept but onnxruntime refuses (an IR version it does not know, an attribute
 * its schema lacks) is refused here with the file named, not in the middle of a job.
 */
export async function loadModelFile(
  path: string,
  options: { canonicalize?: boolean; equalize?: EqualizeMode; equalizeMaxScale?: number } = {},
): Promise<LoadedModel> {
  const bytes = await readUserFile(path, 'an ONNX model file');
  const model = {
    ...(options.canonicalize === false
      ? decodeModel(bytes, path)
      : importModel(bytes, path, {
          equalize: options.equalize,
          ...(options.equalizeMaxScale !== undefined ? { equalizeMaxScale: options.equalizeMaxScale } : {}),
        })),
    bytes,
  };
  await (await createOrtSession(bytes, path, { optimization: 'disabled' })).release();
  return model;
}

export async function inspectModelFile(path: string): Promise<InspectReport> {
  engineEntry('inspect');
  return inspectImported(await loadModelFile(path));
}

/** What a model says about its own inputs: from ONNX metadata, else a sidecar `<model>.json`. */
export interface ModelHints {
  preprocess?: string;
  /** Where the preprocessing spec came from. */
  preprocessSource?: string;
  classes?: ClassList;
}

/**
 * A spec a model file carries, checked where it is read so that a refusal names the file:
 * every size it sets is bounded (data/preprocess.ts) before any image is resized.
 */
function checkedPreprocess(spec: string, source: string): string {
  try {
    parsePreprocess(spec);
  } catch (e) {
    if (isFxpqError(e)) throw new FxpqError(`${source}: ${e.message}`, e.code);
    throw e;
  }
  return spec;
}

/** The largest sidecar read: an inline list of 100,000 long class names fits in a few megabytes. */
const MAX_SIDECAR_BYTES = 64 * 2 ** 20;

export function sidecarPath(modelPath: string): string {
  return modelPath.replace(/\.onnx$/i, '') + '.json';
}

export async function modelHints(model: LoadedModel): Promise<ModelHints> {
  const meta = model.original.metadata;
  const hints: ModelHints = {};
  const metaPre = meta['fxpq.preprocess'] ?? meta['preprocess'];
  if (metaPre) {
    hints.preprocess = checkedPreprocess(metaPre, `model metadata of ${model.source}`);
    hints.preprocessSource = `model metadata of ${model.source}`;
  }
  const metaClasses = meta['fxpq.classes'] ?? meta['classes'];
  if (metaClasses) {
    const where = `model metadata of ${model.source}`;
    let parsed: unknown;
    if (metaClasses.trim().startsWith('[')) {
      try {
        parsed = JSON.parse(metaClasses) as unknown;
      } catch {
        throw new FxpqError(
          `${where}: the "classes" entry starts like a JSON list but is not valid JSON.`,
          'invalid-model',
        );
      }
    } else parsed = metaClasses.split(/\r?\n/).filter((l) => l.trim() !== '');
    hints.classes = await classesFromValue(parsed, dirname(model.source), where);
  }
  const sidecar = sidecarPath(model.source);
  let text: string | undefined;
  try {
    const info = await stat(sidecar);
    if (!info.isFile()) return hints;
    if (info.size > MAX_SIDECAR_BYTES)
      throw new FxpqError(
        `${sidecar} (the model's sidecar) holds ${info.size} bytes, more than the ${MAX_SIDECAR_BYTES} a preprocessing spec and class list need.`,
        'io',
      );
    text = await readFile(sidecar, 'utf8');
  } catch (e) {
    if (isFxpqError(e)) throw e;
    return hints;
  }
  let json: { preprocess?: unknown; classes?: unknown };
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    throw new FxpqError(`${sidecar} (the model's sidecar) is not valid JSON.`, 'io');
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new FxpqError(`${sidecar} (the model's sidecar) is not a JSON object.`, 'io');
  if (!hints.preprocess && json.preprocess !== undefined) {
    if (typeof json.preprocess !== 'string')
      throw new FxpqError(
        `sidecar ${sidecar}: "preprocess" must be a spec string such as "imagenet".`,
        'invalid-model',
      );
    hints.preprocess = checkedPreprocess(json.preprocess, `sidecar ${sidecar}`);
    hints.preprocessSource = `sidecar ${sidecar}`;
  }
  if (!hints.classes && json.classes !== undefined)
    hints.classes = await classesFromValue(json.classes, dirname(sidecar), `sidecar ${sidecar}`);
  return hints;
}
