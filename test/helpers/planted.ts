/** A dataset folder with every kind of bad and awkward file a user's folder may hold. */
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { repoRoot } from './fixtures.js';
import { seededFloats } from './graph-builder.js';

function noiseRgb(w: number, h: number, seed: number): Buffer {
  return Buffer.from(seededFloats(w * h * 3, seed, 1).map((v) => Math.round((v + 1) * 127.5)));
}

export interface PlantedFolder {
  root: string;
  good: string[];
  bad: Record<string, RegExp>;
  duplicate: [string, string];
}

export async function makePlantedFolder(root: string): Promise<PlantedFolder> {
  const fm = join(repoRoot, 'test/fixtures/fashion-mnist');
  const good: string[] = [];
  for (const cls of ['bag', 'coat']) {
    mkdirSync(join(root, cls), { recursive: true });
    for (const f of readdirSync(join(fm, cls)).slice(0, 3)) {
      copyFileSync(join(fm, cls, f), join(root, cls, f));
      good.push(`${cls}/${f}`);
    }
  }
  const raw = { raw: { width: 40, height: 30, channels: 3 as const } };
  const jpeg = await sharp(noiseRgb(40, 30, 1), raw)
    .jpeg()
    .toBuffer();
  writeFileSync(join(root, 'bag', 'truncated.jpg'), jpeg.subarray(0, Math.floor(jpeg.length / 2)));
  writeFileSync(join(root, 'bag', 'zero.png'), Buffer.alloc(0));
  writeFileSync(join(root, 'coat', 'notes.JPEG'), 'This is a text file with an image extension.\n');
  writeFileSync(join(root, 'coat', 'readme.txt'), 'not an image\n');
  writeFileSync(
    join(root, 'coat', 'alpha.png'),
    await sharp({ create: { width: 20, height: 20, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 0.5 } } })
      .png()
      .toBuffer(),
  );
  writeFileSync(
    join(root, 'coat', 'cmyk.jpg'),
    await sharp(noiseRgb(16, 16, 2), { raw: { width: 16, height: 16, channels: 3 } })
      .toColourspace('cmyk')
      .jpeg()
      .toBuffer(),
  );
  writeFileSync(
    join(root, 'bag', 'gray.jpg'),
    await sharp(noiseRgb(16, 16, 3), { raw: { width: 16, height: 16, channels: 3 } })
      .toColourspace('b-w')
      .jpeg()
      .toBuffer(),
  );
  writeFileSync(
    join(root, 'bag', 'deep16.png'),
    await sharp(noiseRgb(16, 16, 4), { raw: { width: 16, height: 16, channels: 3 } })
      .toColourspace('rgb16')
      .png()
      .toBuffer(),
  );
  good.push('coat/alpha.png', 'coat/cmyk.jpg', 'bag/gray.jpg', 'bag/deep16.png');
  copyFileSync(join(root, good[0]!), join(root, 'bag', 'zz-copy.png'));
  return {
    root,
    good,
    bad: {
      'bag/truncated.jpg': /truncated or corrupt image/,
      'bag/zero.png': /empty file \(0 bytes\)/,
      'coat/notes.JPEG': /not an image/,
      'coat/readme.txt': /not an image file \(extension "\.txt"\)/,
    },
    duplicate: [good[0]!, 'bag/zz-copy.png'],
  };
}
