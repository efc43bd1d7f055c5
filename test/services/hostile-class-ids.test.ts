/**
 * Class ids are user text (folder names, CSV labels, class lists): `__proto__` and
 * `constructor` must be keys like any other in the per-class tables (issue 30, item 13). A
 * plain object took `__proto__` for its prototype (the class vanished from the table) and
 * `constructor` for Object's own (its count read "function Object() { [native code] }1").
 */
import { cpSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { datasetInfo, importDataset } from '../../services/datasets.js';
import { evaluateFloat } from '../../services/evaluate.js';
import { closePools } from '../../services/pool.js';
import { modelPath, repoRoot } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-class-ids-'));
afterAll(() => closePools());

/** The model's order (its sidecar), with two classes renamed. */
const ORDER = [
  't-shirt_top',
  'trouser',
  'pullover',
  'dress',
  'coat',
  'sandal',
  'shirt',
  'sneaker',
  'bag',
  'ankle_boot',
];
const RENAMED: Record<string, string> = { 't-shirt_top': '__proto__', trouser: 'constructor', bag: 'toString' };

/** fashion-mnist with class folders named `__proto__`, `constructor` and `toString`, and its class list. */
function hostileFolder(): { images: string; classes: string } {
  const images = join(tmp, 'images');
  cpSync(join(repoRoot, 'test/fixtures/fashion-mnist'), images, { recursive: true });
  for (const [from, to] of Object.entries(RENAMED)) renameSync(join(images, from), join(images, to));
  const classes = join(tmp, 'classes.txt');
  writeFileSync(classes, ORDER.map((c) => RENAMED[c] ?? c).join('\n') + '\n');
  return { images, classes };
}

describe('class ids that name Object.prototype members', () => {
  const { images, classes } = hostileFolder();

  it('datasetInfo counts a class named __proto__, constructor or toString like any other', async () => {
    const ds = await importDataset(images, join(tmp, 'index'));
    const info = datasetInfo(ds);
    expect(info.classes).toBe(10);
    for (const id of Object.values(RENAMED)) {
      expect(Object.hasOwn(info.perClass, id), id).toBe(true);
      expect(info.perClass[id], id).toBe(30);
    }
    // The JSON the CLI prints keeps the plain shape.
    const json = JSON.parse(JSON.stringify(info.perClass)) as Record<string, number>;
    expect(Object.keys(json).sort()).toEqual(ORDER.map((c) => RENAMED[c] ?? c).sort());
    expect(Object.values(json)).toEqual(new Array(10).fill(30));
  });

  it("an evaluation's perClass has an entry for each of them", async () => {
    const r = await evaluateFloat({
      modelPath: modelPath('fmnist_resnet20')!,
      dataPath: images,
      classes,
      cacheDir: join(tmp, 'cache'),
    });
    expect(r.n).toBe(300);
    expect(Object.keys(r.perClass)).toHaveLength(10);
    for (const id of Object.values(RENAMED)) {
      expect(Object.hasOwn(r.perClass, id), id).toBe(true);
      expect(r.perClass[id]!.n, id).toBe(30);
      expect(r.perClass[id]!.top1, id).toBeGreaterThan(0.5);
    }
    const json = JSON.parse(JSON.stringify(r)) as { perClass: Record<string, { n: number }> };
    expect(Object.keys(json.perClass)).toHaveLength(10);
    expect(json.perClass['__proto__']).toEqual(r.perClass['__proto__']);
  }, 120_000);
});
