/**
 * Decoding with sharp exactly as the fixtures were measured: embedded ICC profiles ignored
 * (PIL, torchvision and Keras ignore them too), alpha removed, any colour space (grey, CMYK,
 * 16-bit) converted to 8-bit sRGB, grey expanded to three equal channels.
 */
import sharp from 'sharp';
import type { PixelImage } from '../engine/data/preprocess.js';

/** The largest image FxPQ decodes: 50 megapixels (a 7000 x 7000 photo). */
export const MAX_PIXELS = 50_000_000;
/** A decode that takes longer is a hostile file (a real 50 MP photo decodes in about a second). */
export const DECODE_TIMEOUT_SECONDS = 20;

export class ImageDecodeError extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** A reason a user can act on, from sharp/libvips' message. */
function reasonFor(e: unknown): string {
  const msg = String((e as Error).message ?? e)
    .split('\n')[0]!
    .trim();
  if (/timeout/i.test(msg)) return `took more than ${DECODE_TIMEOUT_SECONDS} s to decode (a hostile or damaged file)`;
  if (/pixel limit/i.test(msg))
    return `larger than ${MAX_PIXELS / 1e6} megapixels (a decompression bomb or a huge scan)`;
  if (/unsupported image format/i.test(msg))
    return 'not an image: the content is not JPEG, PNG, WebP, GIF, TIFF or AVIF';
  if (
    /premature end|truncat|unexpected end|end of (file|stream)|not enough data|read error|corrupt|damaged/i.test(msg)
  ) {
    return `truncated or corrupt image (${msg})`;
  }
  return `cannot be decoded (${msg})`;
}

const isTiff = (d: Uint8Array): boolean =>
  (d[0] === 0x49 && d[1] === 0x49 && d[2] === 0x2a && d[3] === 0) ||
  (d[0] === 0x4d && d[1] === 0x4d && d[2] === 0 && d[3] === 0x2a);

async function decode(data: Uint8Array): Promise<PixelImage> {
  // A pixel limit: a few hundred bytes of PNG can claim gigapixels (a decompression bomb).
  const { data: pixels, info } = await sharp(data, {
    ignoreIcc: true,
    // libtiff reports a cut-off TIFF only at the 'error' level and fills the rest with zeros,
    // which 'truncated' lets through; JPEG and PNG keep PIL's leniency for harmless warnings.
    failOn: isTiff(data) ? 'error' : 'truncated',
    limitInputPixels: MAX_PIXELS,
  })
    .timeout({ seconds: DECODE_TIMEOUT_SECONDS })
    .removeAlpha()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
  return {
    width: info.width,
    height: info.height,
    channels: 3,
    data: new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.length),
  };
}

let serial: Promise<unknown> = Promise.resolve();

/** Recognise a file cut short by its format's end marker (used when libvips lost its message). */
function truncationHint(data: Uint8Array): string | undefined {
  const n = data.length;
  if (n > 3 && data[0] === 0xff && data[1] === 0xd8 && !(data[n - 2] === 0xff && data[n - 1] === 0xd9))
    return 'the JPEG has no end-of-image marker';
  if (
    n > 8 &&
    data[0] === 0x89 &&
    data[1] === 0x50 &&
    !Buffer.from(data.subarray(Math.max(0, n - 16))).includes('IEND')
  )
    return 'the PNG has no IEND chunk';
  return undefined;
}

export async function decodeRgb(data: Uint8Array): Promise<PixelImage> {
  if (data.length === 0) throw new ImageDecodeError('empty file (0 bytes)');
  try {
    return await decode(data);
  } catch (first) {
    // With several decodes in flight libvips may lose its error text ("Unknown error"):
    // decode the bad file again, alone, for a reason the user can act on.
    const retry = serial.then(() => decode(data));
    serial = retry.catch(() => undefined);
    try {
      return await retry;
    } catch (e) {
      const message = String((e as Error).message ?? e);
      const reason = reasonFor(/unknown error/i.test(message) ? first : e);
      // Under load libvips can lose its error text twice: fall back on the file's structure.
      const hint = /unknown error/i.test(reason) ? truncationHint(data) : undefined;
      throw new ImageDecodeError(hint ? `truncated or corrupt image (${hint})` : reason);
    }
  }
}
