/**
 * The only ways text from a model, a run or a project (node, tensor and constant names, file
 * names) reaches generated C: inside a comment through `cCommentText`, or as part of an
 * identifier through `cIdentifierPart`. No such text reaches a C string literal, a preprocessor
 * line, the Makefile or model.h. Numbers that reach C go through `cInt`.
 */
import { FxpqError } from '../errors.js';

/** Longest comment text kept (a name longer than this is cut and ends in `...`). */
export const C_COMMENT_MAX = 160;

/**
 * Text that cannot end, nest or extend the C comment it is written into, nor the line it is on:
 * only printable ASCII is kept, less `*` and `/` (no `*` `/` pair, however split), `\` (no line
 * splice) and `?` (no `??/` trigraph, which is a backslash under -trigraphs or C89); newlines,
 * control characters, NUL and non-ASCII become `_`. Every character is replaced on its own, so
 * no pair can form across a replacement.
 */
export function cCommentText(text: string, max = C_COMMENT_MAX): string {
  const safe = String(text).replace(/[^\x20-\x7e]|[*/\\?]/g, '_');
  return safe.length > max ? `${safe.slice(0, max - 3)}...` : safe;
}

/** A name as the tail of a C identifier: only [A-Za-z0-9_] (the caller adds a letter prefix). */
export function cIdentifierPart(text: string): string {
  return String(text).replace(/[^A-Za-z0-9_]/g, '_');
}

/** A number written into C: a safe integer, or the export stops (a damaged run, never C text from a string). */
export function cInt(value: unknown, what: string): string {
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    throw new FxpqError(
      `The C export needs ${cCommentText(what)} to be an integer, and it is ${typeof value === 'number' ? value : typeof value}; the run or model is damaged.`,
      'invalid-model',
    );
  return String(value);
}
