/**
 * Every onnxruntime session of the engine is created here, so that a model onnxruntime refuses
 * (an IR version it does not know, an attribute its schema lacks, a buffer it cannot allocate)
 * becomes a sentence that names the file, not onnxruntime's C++ source path and signature.
 */
import * as ort from 'onnxruntime-node';
import { FxpqError } from '../errors.js';
import { sessionOptions } from './session-options.js';

/** onnxruntime's message without its source location, function signature and status prefix. */
export function onnxruntimeProblem(e: unknown): string {
  const first =
    String((e as Error)?.message ?? e)
      .trim()
      .split('\n')[0] ?? '';
  return (
    first
      .replace(/^\S*onnxruntime_src\S*:\d+\s+(?:[^()]*\([^)]*\)\s*)?/, '')
      .replace(/^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*/, '')
      .replace(/\S*onnxruntime_src\S*:\d+\s+(?:[^()]*\([^)]*\)\s*)?/g, '')
      .trim() || 'no reason given'
  );
}

export async function createOrtSession(
  bytes: Uint8Array,
  source: string,
  options: Parameters<typeof sessionOptions>[0] = {},
): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, sessionOptions(options));
  } catch (e) {
    throw new FxpqError(`${source}: onnxruntime cannot load the model: ${onnxruntimeProblem(e)}`, 'invalid-model');
  }
}

export async function runOrtSession(
  session: ort.InferenceSession,
  source: string,
  feeds: ort.InferenceSession.FeedsType,
  outputs: readonly string[],
): Promise<ort.InferenceSession.ReturnType> {
  try {
    return await session.run(feeds, outputs);
  } catch (e) {
    throw new FxpqError(
      `${source}: onnxruntime failed while running the model: ${onnxruntimeProblem(e)}`,
      'invalid-model',
    );
  }
}

/**
 * onnxruntime failing on a graph FxPQ built from a model (the statistics pass, the simulation):
 * a sentence naming the model's file and the stage, not a raw error printed as internal.
 */
export function derivedGraphFailure(e: unknown, source: string | undefined, stage: string): FxpqError {
  if (e instanceof FxpqError) return e;
  return new FxpqError(
    `${source ?? 'The model'}: onnxruntime failed in ${stage}: ${onnxruntimeProblem(e)}`,
    'invalid-model',
  );
}
