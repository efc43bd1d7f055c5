/**
 * Hostile image folders: a FIFO, a link to /dev/zero, a link out of the folder, an SVG named
 * .png, a decompression bomb and a file over the size limit. Import finishes (no hang, bounded
 * memory), keeps the good images and names each bad one with its reason.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { scanDataset } from '../../services/datasets.js';
import { closePools } from '../../services/pool.js';
import { readImageFile, sniffImage } from '../../native-workers/pool/image-file.js';
import { repoRoot } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-hostile-'));
afterAll(() => closePools());

describe('hostile image folders', () => {
  it('imports the good images and names every bad one, without hanging', async () => {
    const src = join(tmp, 'data');
    const cls = join(src, 'cat');
    mkdirSync(cls, { recursive: true });
    const good = readdirSync(join(repoRoot, 'test/fixtures/mnist/0')).slice(0, 3);
    for (const f of good) copyFileSync(join(repoRoot, 'test/fixtures/mnist/0', f), join(cls, f));
    execFileSync('mkfifo', [join(cls, 'fifo.png')]);
    symlinkSync('/dev/zero', join(cls, 'zero.jpg'));
    writeFileSync(
      join(tmp, 'outside.png'),
      await sharp({ create: { width: 4, height: 4, channels: 3, background: 'red' } })
        .png()
        .toBuffer(),
    );
    symlinkSync(join(tmp, 'outside.png'), join(cls, 'escape.png'));
    writeFileSync(
      join(cls, 'drawing.png'),
      '<svg xmlns="http://www.w3.org/2000/svg" width="15000" height="15000"><rect width="15000" height="15000"/></svg>',
    );
    // 8000 x 8000 black: a small PNG that claims 64 megapixels.
    writeFileSync(
      join(cls, 'bomb.png'),
      await sharp({ create: { width: 8000, height: 8000, channels: 3, background: 'black' } })
        .toColourspace('b-w')
        .png({ compressionLevel: 9 })
        .toBuffer(),
    );
    const started = Date.now();
    const dataset = await scanDataset(src, { layout: 'imagefolder' });
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(dataset.images.map((i) => i.path).sort()).toEqual(good.map((f) => join('cat', f)).sort());
    const reason = (name: string): string =>
      dataset.skipped.find((s) => s.path === join('cat', name))?.reason ?? 'not skipped';
    expect(reason('fifo.png')).toMatch(/not a regular file/);
    expect(reason('zero.jpg')).toMatch(/a link to \/dev\/zero, outside the dataset folder/);
    // Without a folder to stay in (evaluation reads indexed paths), a device is still refused.
    await expect(readImageFile(join(cls, 'zero.jpg'))).rejects.toThrow(/not a regular file/);
    expect(reason('escape.png')).toMatch(/outside the dataset folder/);
    expect(reason('drawing.png')).toMatch(/an SVG drawing, not a photo/);
    expect(reason('bomb.png')).toMatch(/larger than 50 megapixels/);
  }, 120_000);

  it('sniffs formats from their first bytes', () => {
    const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
    expect(sniffImage(bytes('\xff\xd8\xff\xe0'))).toEqual({ format: 'jpeg' });
    expect(sniffImage(bytes('\x89PNG\r\n\x1a\n'))).toEqual({ format: 'png' });
    expect(sniffImage(bytes('RIFF\0\0\0\0WEBPVP8 '))).toEqual({ format: 'webp' });
    expect(sniffImage(bytes('<?xml version="1.0"?><svg'))).toMatchObject({ reason: /SVG/ });
    expect(sniffImage(bytes('hello'))).toMatchObject({ reason: /not an image/ });
  });
});
