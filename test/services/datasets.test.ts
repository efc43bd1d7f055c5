import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { datasetInfo, importDataset, openDataset } from '../../services/datasets.js';
import { decodeRgb } from '../../native-workers/pool/image-decode.js';
import { closePools } from '../../services/pool.js';
import { makePlantedFolder } from '../helpers/planted.js';
import { hasShared, repoRoot, sharedFixtures } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-ds-'));
afterAll(() => closePools());

describe('dataset import', () => {
  it('imports the good files of a planted folder and reports each bad one with its reason', async () => {
    const planted = await makePlantedFolder(join(tmp, 'planted'));
    const ds = await importDataset(planted.root, join(tmp, 'planted-out'));
    expect(ds.images.map((i) => i.path).sort()).toEqual([...planted.good].sort());
    for (const [path, reason] of Object.entries(planted.bad)) {
      const entry = ds.skipped.find((s) => s.path === path);
      expect(entry, path).toBeDefined();
      expect(entry!.reason).toMatch(reason);
    }
    expect(ds.skipped.length).toBe(Object.keys(planted.bad).length);
    expect(ds.duplicates).toEqual([planted.duplicate]);
    // Sizes and hashes recorded; the index is on disk and reads back the same.
    expect(ds.images.every((i) => i.sha256.length === 64 && i.bytes > 0 && (i.width ?? 0) > 0)).toBe(true);
    expect(await openDataset(join(tmp, 'planted-out'))).toEqual(JSON.parse(JSON.stringify(ds)));
    expect(datasetInfo(ds).perClass).toEqual({ bag: 5, coat: 5 });
  });

  it('converts grayscale, RGBA, CMYK and 16-bit images to 8-bit RGB', async () => {
    const planted = join(tmp, 'planted');
    for (const f of ['coat/alpha.png', 'coat/cmyk.jpg', 'bag/gray.jpg', 'bag/deep16.png']) {
      const img = await decodeRgb(readFileSync(join(planted, f)));
      expect(img.channels).toBe(3);
      expect(img.data.length).toBe(img.width * img.height * 3);
    }
    const gray = await decodeRgb(readFileSync(join(planted, 'bag/gray.jpg')));
    expect(gray.data[0]).toBe(gray.data[1]);
    const deep = await decodeRgb(readFileSync(join(planted, 'bag/deep16.png')));
    const expected = await sharp(readFileSync(join(planted, 'bag/deep16.png')))
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer();
    expect(Buffer.from(deep.data).equals(expected)).toBe(true);
  });

  it('records a seeded, stratified, disjoint split', async () => {
    const ds = await importDataset(join(repoRoot, 'test/fixtures/fashion-mnist'), join(tmp, 'fm'), {
      calib: 100,
      seed: 3,
    });
    expect(ds.images.length).toBe(300);
    expect(ds.split!.calib.length).toBe(100);
    expect(ds.split!.eval.length).toBe(200);
    expect(new Set([...ds.split!.calib, ...ds.split!.eval]).size).toBe(300);
    const perClass = new Map<string, number>();
    for (const i of ds.split!.calib)
      perClass.set(ds.images[i]!.classId, (perClass.get(ds.images[i]!.classId) ?? 0) + 1);
    expect([...perClass.values()]).toEqual(Array(10).fill(10));
    const again = await importDataset(join(repoRoot, 'test/fixtures/fashion-mnist'), join(tmp, 'fm2'), {
      calib: 100,
      seed: 3,
    });
    expect(again.split).toEqual(ds.split);
  });

  it('maps folders through a class file and copies images with --copy', async () => {
    const ds = await importDataset(join(repoRoot, 'test/fixtures/fashion-mnist'), join(tmp, 'fm-copy'), {
      classes: join(repoRoot, 'test/fixtures/fashion-mnist_classes.txt'),
      copy: true,
    });
    expect(ds.classes!.ids[0]).toBe('t-shirt_top');
    expect(ds.images.find((i) => i.classId === 'ankle_boot')!.label).toBe(9);
    expect(ds.root).toBe(join(tmp, 'fm-copy', 'images'));
    expect(existsSync(join(ds.root, ds.images[0]!.path))).toBe(true);
  });

  it('reads the CSV layout and explains a malformed labels file', async () => {
    const root = join(tmp, 'csv');
    mkdirSync(root, { recursive: true });
    const src = join(repoRoot, 'test/fixtures/mnist');
    const rows = ['path,label'];
    for (const d of ['3', '7']) {
      for (const f of readdirSync(join(src, d)).slice(0, 2)) {
        copyFileSync(join(src, d, f), join(root, `${d}-${f}`));
        rows.push(`${d}-${f},${d}`);
      }
    }
    writeFileSync(join(root, 'labels.csv'), rows.join('\n'));
    const ds = await importDataset(root, join(tmp, 'csv-out'));
    expect(ds.layout).toBe('csv');
    expect(datasetInfo(ds).perClass).toEqual({ '3': 2, '7': 2 });
    writeFileSync(join(root, 'bad.csv'), 'path,label\nonly-a-path.png\n');
    await expect(
      importDataset(root, join(tmp, 'csv-bad'), { layout: 'csv', labels: join(root, 'bad.csv') }),
    ).rejects.toThrow(/bad\.csv, line 2: expected "path,label"/);
  });

  it('reads the ImageNet-val layout from LOC_val_solution.csv, and the ground-truth file only with a synset order', async () => {
    const root = join(tmp, 'val');
    mkdirSync(root, { recursive: true });
    const png = readFileSync(
      join(repoRoot, 'test/fixtures/mnist/1', readdirSync(join(repoRoot, 'test/fixtures/mnist/1'))[0]!),
    );
    for (let i = 1; i <= 3; i++)
      writeFileSync(
        join(root, `ILSVRC2012_val_0000000${i}.JPEG`),
        await sharp(png)
          .resize(8 + i)
          .jpeg()
          .toBuffer(),
      );
    writeFileSync(
      join(root, 'LOC_val_solution.csv'),
      'ImageId,PredictionString\nILSVRC2012_val_00000001,n01751748 1 2 3 4\nILSVRC2012_val_00000002,n09193705 1 2 3 4 n09193705 5 6 7 8\nILSVRC2012_val_00000003,n01440764 0 0 1 1\n',
    );
    const ds = await importDataset(root, join(tmp, 'val-out'), { classes: 'imagenet1k' });
    expect(ds.layout).toBe('imagenet-val');
    expect(ds.images.map((i) => [i.classId, i.label])).toEqual([
      ['n01751748', 65],
      ['n09193705', 970],
      ['n01440764', 0],
    ]);

    const gt = join(tmp, 'ILSVRC2012_validation_ground_truth.txt');
    writeFileSync(gt, '2\n1\n2\n');
    await expect(importDataset(root, join(tmp, 'val-gt'), { labels: gt })).rejects.toThrow(
      /devkit's synset order; pass --synsets FILE/,
    );
    const synsets = join(tmp, 'synsets.txt');
    writeFileSync(synsets, 'n01751748\nn01440764\n');
    const withSynsets = await importDataset(root, join(tmp, 'val-gt'), { labels: gt, synsets, classes: 'imagenet1k' });
    expect(withSynsets.images.map((i) => i.classId)).toEqual(['n01440764', 'n01751748', 'n01440764']);
  });

  it('explains a missing source folder and a folder without a layout', async () => {
    await expect(importDataset(join(tmp, 'nope'), join(tmp, 'x'))).rejects.toThrow(/nope does not exist/);
    const flat = join(tmp, 'flat');
    mkdirSync(flat, { recursive: true });
    writeFileSync(join(flat, 'a.txt'), 'x');
    await expect(importDataset(flat, join(tmp, 'y'))).rejects.toThrow(/layout is unknown; pass --layout and --labels/);
  });

  it.skipIf(!hasShared)('gives every ImageNet sample image its standard index with --classes imagenet1k', async () => {
    const ds = await importDataset(join(sharedFixtures, 'imagenet-sample'), join(tmp, 'inet'), {
      classes: 'imagenet1k',
    });
    expect(ds.images.length).toBe(100);
    const tsv = readFileSync(join(sharedFixtures, 'imagenet_classes.tsv'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    const byWnid = new Map(tsv.map(([i, w]) => [w!, Number(i)]));
    for (const image of ds.images) expect(image.label).toBe(byWnid.get(image.classId));
    expect(ds.images.map((i) => i.label).sort((a, b) => a! - b!)).toEqual(
      Array.from({ length: 100 }, (_, k) => k * 10),
    );
  });
});

describe('labels a user can trust', () => {
  const mnist = (d: string, i: number) =>
    join(repoRoot, 'test/fixtures/mnist', d, readdirSync(join(repoRoot, 'test/fixtures/mnist', d))[i]!);

  it('leaves out and names an image that sits in two class folders', async () => {
    const root = join(tmp, 'conflict');
    for (const [cls, n] of [
      ['3', 3],
      ['7', 3],
    ] as const) {
      mkdirSync(join(root, cls), { recursive: true });
      for (let i = 0; i < n; i++) copyFileSync(mnist(cls, i), join(root, cls, `${i}.png`));
    }
    copyFileSync(mnist('3', 0), join(root, '7', 'copy-of-a-three.png'));
    copyFileSync(mnist('3', 1), join(root, '3', 'same-class-copy.png'));
    const ds = await importDataset(root, join(tmp, 'conflict-out'));
    const reason = (p: string) => ds.skipped.find((s) => s.path === p)?.reason;
    expect(reason(join('3', '0.png'))).toMatch(
      /conflicting labels: labelled 3 here, but the same image is labelled 7 at 7\/copy-of-a-three\.png/,
    );
    expect(reason(join('7', 'copy-of-a-three.png'))).toMatch(
      /labelled 7 here, but the same image is labelled 3 at 3\/0\.png/,
    );
    // A copy within one class is a plain duplicate, not a conflict.
    expect(ds.duplicates).toEqual([[join('3', '1.png'), join('3', 'same-class-copy.png')]]);
    expect(datasetInfo(ds).perClass).toEqual({ '3': 2, '7': 3 });
  });

  it('names both lines of a CSV that labels one file twice, counting blank lines', async () => {
    const root = join(tmp, 'csv-conflict');
    mkdirSync(root, { recursive: true });
    for (const [d, i] of [
      ['3', 0],
      ['3', 1],
      ['7', 0],
    ] as const)
      copyFileSync(mnist(d, i), join(root, `${d}-${i}.png`));
    writeFileSync(join(root, 'labels.csv'), 'path,label\n\n3-0.png,3\n\n3-1.png,3\n7-0.png,7\n3-0.png,7\n3-1.png,3\n');
    const ds = await importDataset(root, join(tmp, 'csv-conflict-out'));
    expect(ds.skipped).toEqual([
      { path: '3-0.png', reason: 'labelled 3 on line 3 and 7 on line 7 of labels.csv; fix the labels file' },
    ]);
    expect(ds.images.map((i) => i.path).sort()).toEqual(['3-1.png', '7-0.png']);
    writeFileSync(join(root, 'broken.csv'), 'path,label\n\n\n3-0.png,3\n\nbroken\n');
    await expect(
      importDataset(root, join(tmp, 'csv-broken'), { layout: 'csv', labels: join(root, 'broken.csv') }),
    ).rejects.toThrow(/broken\.csv, line 6: expected "path,label"/);
  });

  it('says when dataset info reads a folder that was never imported', async () => {
    const { runCli } = await import('../helpers/cli.js');
    const r = await runCli(['dataset', 'info', join(repoRoot, 'test/fixtures/mnist')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/mnist is not an imported dataset \(no dataset\.json\).*fxpq dataset import/);
    expect(r.stdout).toMatch(/images in 10 classes/);
  }, 60_000);
});
