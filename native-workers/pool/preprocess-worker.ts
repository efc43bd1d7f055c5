/** Piscina worker: read, decode and prepare one image (channels, resize, crop) off the main thread. */
import { preparePixels, type PreprocessSpec } from '../engine/data/preprocess.js';
import { decodeRgb, ImageDecodeError } from './image-decode.js';
import { ImageFileError, readImageFile } from './image-file.js';

export interface PrepareTask {
  /** The file to read, or `bytes`: the file's content already read (and hashed) by the caller. */
  path?: string;
  bytes?: Uint8Array;
  spec: PreprocessSpec;
}

export type PrepareResult =
  { ok: true; width: number; height: number; channels: number; data: Uint8Array } | { ok: false; reason: string };

export default async function prepare(task: PrepareTask): Promise<PrepareResult> {
  let bytes: Uint8Array;
  try {
    bytes = task.bytes ?? (await readImageFile(task.path ?? ''));
  } catch (e) {
    if (e instanceof ImageFileError) return { ok: false, reason: e.reason };
    return { ok: false, reason: `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})` };
  }
  try {
    return { ok: true, ...preparePixels(await decodeRgb(bytes), task.spec) };
  } catch (e) {
    return { ok: false, reason: e instanceof ImageDecodeError ? e.reason : (e as Error).message };
  }
}
