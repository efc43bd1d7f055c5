/** Class lists from the places contracts.md names: --classes, the model's metadata or sidecar, folder names. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkClassIds, MAX_CLASSES, parseClassList, type ClassList } from '../native-workers/engine/data/classes.js';
import { FxpqError } from '../native-workers/engine/errors.js';
import { projectRoot } from './app-info.js';
import { readUserFile } from './files.js';

/** The standard ImageNet-1k order (sorted WordNet ids), shipped as data. */
export function imagenet1k(): ClassList {
  const path = join(projectRoot(), 'data', 'imagenet_classes.tsv');
  return { ...parseClassList(readFileSync(path, 'utf8'), path), source: 'imagenet1k' };
}

/** `--classes imagenet1k|FILE`. */
export async function loadClassOption(option: string): Promise<ClassList> {
  if (option === 'imagenet1k') return imagenet1k();
  const text = new TextDecoder().decode(await readUserFile(option, 'a class list file'));
  return { ...parseClassList(text, option), source: `file ${option}` };
}

export function sortedFolderClasses(ids: Iterable<string>): ClassList {
  const sorted = [...new Set(ids)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { ids: sorted, names: sorted, source: 'sorted folder names' };
}

/** A class list given inline (a sidecar's array) or as a path relative to `baseDir`. */
export async function classesFromValue(
  value: unknown,
  baseDir: string,
  source: string,
): Promise<ClassList | undefined> {
  if (Array.isArray(value)) {
    if (value.length > MAX_CLASSES || !value.every((v) => typeof v === 'string'))
      throw new FxpqError(
        value.length > MAX_CLASSES
          ? `${source} lists ${value.length} classes, more than the ${MAX_CLASSES} FxPQ accepts.`
          : `${source}: "classes" must be a list of class ids (strings).`,
        'invalid-model',
      );
    const ids = value.map((v: string) => v.trim());
    checkClassIds(ids, source);
    return { ids, names: ids, source };
  }
  if (typeof value === 'string') {
    if (value === 'imagenet1k') return imagenet1k();
    const path = join(baseDir, value);
    return { ...parseClassList(new TextDecoder().decode(await readUserFile(path, 'a class list file')), path), source };
  }
  throw new FxpqError(
    `${source}: "classes" must be a list of class ids, a class list file or imagenet1k, not ${value === null ? 'null' : typeof value}.`,
    'invalid-model',
  );
}
