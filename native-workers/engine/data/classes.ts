/** Class lists: the model's output order, as ids (folder names or WordNet ids) with readable names. */
import { FxpqError } from '../errors.js';

export interface ClassList {
  ids: string[];
  names: string[];
  /** Where the order came from, stated in every report (sorted folder names are often wrong). */
  source: string;
}

/**
 * Parse a class list file: one id per line, optionally `id<TAB>name`, or
 * `index<TAB>id<TAB>name` lines as in imagenet_classes.tsv.
 */
export function parseClassList(text: string, source: string): ClassList {
  // Bounded before splitting: a class id takes at least two bytes (a character and a newline).
  if (text.length > 2 * MAX_CLASSES * 64)
    throw new FxpqError(`${source} is too large for a class list (${text.length} characters).`, 'invalid-model');
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '' && !l.startsWith('#'));
  if (lines.length === 0) throw new FxpqError(`${source} holds no class names.`, 'invalid-model');
  const ids: string[] = [];
  const names: string[] = [];
  lines.forEach((line, i) => {
    const cols = line.split('\t');
    if (cols.length >= 3) {
      if (Number(cols[0]) !== i)
        throw new FxpqError(
          `${source}, line ${i + 1}: the index is ${cols[0]}, expected ${i}; lines must be in output order.`,
          'invalid-model',
        );
      ids.push(cols[1]!.trim());
      names.push(cols.slice(2).join('\t').trim());
    } else {
      ids.push(cols[0]!.trim());
      names.push((cols[1] ?? cols[0]!).trim());
    }
  });
  checkClassIds(ids, source);
  return { ids, names, source };
}

/**
 * The most classes a list may have: ImageNet-21k has 21,841. Per-class tables and the confusion
 * matrix grow with it (a 1,000,000-class list once ran out of memory before any check).
 */
export const MAX_CLASSES = 100_000;

/** Refuse a class list that is too long or names a class twice (labels would be ambiguous). */
export function checkClassIds(ids: readonly string[], source: string): void {
  if (ids.length > MAX_CLASSES)
    throw new FxpqError(
      `${source} lists ${ids.length} classes, more than the ${MAX_CLASSES} FxPQ accepts.`,
      'invalid-model',
    );
  const seen = new Set<string>();
  for (const id of ids) {
    if (id === '') throw new FxpqError(`${source} lists an empty class id.`, 'invalid-model');
    if (seen.has(id))
      throw new FxpqError(
        `${source} lists class ${id} twice; every output of the model needs its own class id.`,
        'invalid-model',
      );
    seen.add(id);
  }
}

export function classIndex(list: ClassList): Map<string, number> {
  return new Map(list.ids.map((id, i) => [id, i]));
}
