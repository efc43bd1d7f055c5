/**
 * A seeded corpus of bad image files in one ImageFolder dataset: truncated and damaged images of
 * every format, random bytes, text and HTML and SVG named as photos, forged headers, a
 * decompression bomb, files over the size limit, FIFOs, device links, dangling and looping links,
 * links out of the folder, and a file name that is not UTF-8. A few good images sit beside them.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { seededRandom } from '../../native-workers/engine/data/split.js';

export interface ImageCorpus {
  root: string;
  /** Files that must be imported. */
  good: string[];
  /** Files that must be skipped, with what the reason must say. */
  bad: Map<string, RegExp>;
  /** Damaged files that a decoder may still read (a changed byte inside the pixel data). */
  either: string[];
  /** Everything written that import sees (good + bad + either). */
  total: number;
}

const CLASS = 'cat';

/** PNG chunk CRC (forged headers must pass the CRC check to reach the dimension check). */
function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function forgedPng(width: number, height: number): Uint8Array {
  const ihdr = Buffer.alloc(17);
  ihdr.write('IHDR', 0, 'latin1');
  ihdr.writeUInt32BE(width, 4);
  ihdr.writeUInt32BE(height, 8);
  ihdr.set([8, 2, 0, 0, 0], 12);
  const chunk = Buffer.alloc(25);
  chunk.writeUInt32BE(13, 0);
  ihdr.copy(chunk, 4);
  chunk.writeUInt32BE(crc32(ihdr), 21);
  const iend = Buffer.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
  return Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), chunk, iend]);
}

export async function buildImageCorpus(root: string, seed: number): Promise<ImageCorpus> {
  const rand = seededRandom(seed);
  const dir = join(root, 'data', CLASS);
  mkdirSync(dir, { recursive: true });
  const corpus: ImageCorpus = { root: join(root, 'data'), good: [], bad: new Map(), either: [], total: 0 };
  const write = (name: string, bytes: Uint8Array | string): string => {
    writeFileSync(join(dir, name), bytes);
    return join(CLASS, name);
  };
  const bad = (rel: string, reason: RegExp): void => void corpus.bad.set(rel, reason);

  const noise = Buffer.alloc(48 * 40 * 3);
  for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(rand() * 256);
  const raw = () => sharp(noise, { raw: { width: 48, height: 40, channels: 3 } });
  const bases: Record<string, Uint8Array> = {
    jpg: await raw().jpeg().toBuffer(),
    png: await raw().png().toBuffer(),
    webp: await raw().webp().toBuffer(),
    gif: await raw().gif().toBuffer(),
    tiff: await raw().tiff().toBuffer(),
  };
  for (const [ext, bytes] of Object.entries(bases)) corpus.good.push(write(`good.${ext}`, bytes));
  corpus.good.push(write('grey16.png', await raw().toColourspace('grey16').png().toBuffer()));

  const DAMAGED = /truncated or corrupt|cannot be decoded|not an image/;
  for (const [ext, bytes] of Object.entries(bases)) {
    // Cut inside the header or the pixel data: never decodable as the whole image.
    for (const fraction of [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 0.95]) {
      const n = Math.max(1, Math.floor(bytes.length * fraction));
      bad(
        write(`cut-${Math.round(fraction * 100)}.${ext}`, bytes.subarray(0, n)),
        /truncated|corrupt|cannot be decoded|not an image/,
      );
    }
    // Damage in the header: magic intact (so sniffing passes), structure broken.
    for (let k = 0; k < 3; k++) {
      const out = bytes.slice();
      for (let i = 0; i < 6; i++) out[4 + Math.floor(rand() * Math.min(60, out.length - 4))] = Math.floor(rand() * 256);
      const rel = write(`header-${k}.${ext}`, out);
      corpus.either.push(rel);
    }
    // Damage in the pixel data: some decoders read it as other pixels.
    for (let k = 0; k < 2; k++) {
      const out = bytes.slice();
      for (let i = 0; i < 16; i++)
        out[Math.floor(out.length / 2 + rand() * (out.length / 2 - 2))] = Math.floor(rand() * 256);
      corpus.either.push(write(`pixels-${k}.${ext}`, out));
    }
  }
  for (let k = 0; k < 20; k++) {
    const out = new Uint8Array(1 + Math.floor(rand() * 4096));
    for (let i = 0; i < out.length; i++) out[i] = Math.floor(rand() * 256);
    bad(write(`random-${k}.${['jpg', 'png', 'jpeg', 'webp', 'bmp'][k % 5]}`, out), /not an image/);
  }
  for (const [name, text] of [
    ['readme.jpg', 'This is not a photo.\n'],
    ['page.png', '<!doctype html><html><body>hello</body></html>'],
    ['script.webp', '#!/bin/sh\nrm -rf /\n'],
    ['json.jpeg', '{"not": "an image"}'],
    ['csv.tif', 'a,b\n1,2\n'],
    ['bitmap.bmp', 'BM\x36\x00\x0c\x00\x00\x00\x00\x00\x36\x00\x00\x00'],
    ['photoshop.jpg', '8BPS\x00\x01\x00\x00\x00\x00\x00\x00'],
    ['document.png', '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n'],
    ['archive.jpg', 'PK\x03\x04\x14\x00\x00\x00'],
    ['program.png', '\x7fELF\x02\x01\x01\x00'],
    ['icon.png', '\x00\x00\x01\x00\x01\x00\x10\x10'],
  ] as const)
    bad(write(name, text), /not an image/);
  const svg = (w: number) =>
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${w}"><rect width="${w}" height="${w}"/></svg>`;
  for (const [name, text] of [
    ['drawing.png', svg(15000)],
    ['drawing.jpg', `<?xml version="1.0"?>${svg(100)}`],
    ['drawing.webp', `  \n${svg(20000)}`],
    ['drawing2.png', `<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x">${svg(64)}`],
    ['drawing.gif', `<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n${svg(30000)}`],
  ] as const)
    bad(write(name, text), /SVG drawing/);
  for (const [w, h] of [
    [100_000, 100_000],
    [0, 10],
    [10, 0],
    [2 ** 31 - 1, 1],
  ] as const)
    bad(write(`forged-${w}x${h}.png`, forgedPng(w, h)), /megapixels|truncated|corrupt|cannot be decoded|not an image/);
  bad(
    write(
      'bomb.png',
      await sharp({ create: { width: 8000, height: 8000, channels: 3, background: 'black' } })
        .toColourspace('b-w')
        .png({ compressionLevel: 9 })
        .toBuffer(),
    ),
    /larger than 50 megapixels/,
  );
  bad(write('magic-only.jpg', new Uint8Array([0xff, 0xd8, 0xff])), DAMAGED);
  bad(write('magic-only.png', Buffer.from('\x89PNG\r\n\x1a\n', 'latin1')), DAMAGED);
  bad(
    write('avif-garbage.avif', Buffer.concat([Buffer.from('\0\0\0\x1cftypavif', 'latin1'), Buffer.alloc(200, 7)])),
    DAMAGED,
  );
  bad(
    write('tiff-garbage.tif', Buffer.concat([Buffer.from('II*\0\xff\xff\xff\x7f', 'latin1'), Buffer.alloc(64, 1)])),
    DAMAGED,
  );
  bad(
    write('gif-garbage.gif', Buffer.concat([Buffer.from('GIF89a\xff\xff\xff\xff', 'latin1'), Buffer.alloc(64, 2)])),
    DAMAGED,
  );
  bad(write('empty.jpg', ''), /empty file/);
  bad(write('empty.png', ''), /empty file/);
  for (const name of ['huge.jpg', 'huge.png']) {
    write(name, '');
    truncateSync(join(dir, name), 65 * 1024 * 1024); // sparse: costs no disk
    bad(join(CLASS, name), /larger than the 64 MB limit/);
  }
  for (const name of ['fifo.png', 'fifo.jpg']) {
    execFileSync('mkfifo', [join(dir, name)]);
    bad(join(CLASS, name), /not a regular file/);
  }
  for (const [name, target] of [
    ['zero.jpg', '/dev/zero'],
    ['urandom.png', '/dev/urandom'],
    ['null.jpg', '/dev/null'],
    ['passwd.png', '/etc/passwd'],
    ['dangling.jpg', join(dir, 'nothing-here.jpg')],
  ] as const) {
    symlinkSync(target, join(dir, name));
    bad(join(CLASS, name), /outside the dataset folder|cannot be read|not a regular file|does not exist|ENOENT/);
  }
  symlinkSync(join(dir, 'loop-b.jpg'), join(dir, 'loop-a.jpg'));
  symlinkSync(join(dir, 'loop-a.jpg'), join(dir, 'loop-b.jpg'));
  bad(join(CLASS, 'loop-a.jpg'), /cannot be read|link/);
  bad(join(CLASS, 'loop-b.jpg'), /cannot be read|link/);
  writeFileSync(join(root, 'outside.png'), bases['png']!);
  symlinkSync(join(root, 'outside.png'), join(dir, 'escape.png'));
  bad(join(CLASS, 'escape.png'), /outside the dataset folder/);
  // A name that is not UTF-8 (bytes 0xff 0xfe): written through a Buffer path.
  const badName = Buffer.concat([
    Buffer.from(join(dir, 'bad-'), 'utf8'),
    Buffer.from([0xff, 0xfe]),
    Buffer.from('.png'),
  ]);
  writeFileSync(badName, bases['png']!);
  bad(join(CLASS, `bad-\uFFFD\uFFFD.png`), /not valid UTF-8/);
  bad(write('notes.txt', 'a text file'), /not an image file \(extension/);
  corpus.total = corpus.good.length + corpus.bad.size + corpus.either.length;
  return corpus;
}
