/**
 * Decoding with sharp exactly as the fixtures were measured: embedded ICC profiles ignored
 * (PIL, torchvision and Keras ignore them too), alpha removed, any colour space (grey, CMYK,
 * 16-bit) converted to 8-bit sRGB, grey expanded to three equal channels.
 */
import sharp from 'sharp';
import type { PixelImage } from '../engine/data/preprocess.js';

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
  if (/unsupported image format/i.test(msg))
    return 'not an image: the content is not JPEG, PNG, WebP, GIF, TIFF or AVIF';
  if (
    /premature end|truncat|unexpected end|end of (file|stream)|not enough data|read error|corrupt|damaged/i.test(msg)
  ) {
    return `truncated or corrupt image (${msg})`;
  }
  return `cannot be decoded (${msg})`;
}

async function decode(data: Uint8Array): Promise<PixelImage> {
  const { data: pixels, info } = await sharp(data, { ignoreIcc: true, failOn: 'truncated' })
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
      throw new ImageDecodeError(reasonFor(/unknown error/i.test(message) ? first : e));
    }
  }
}
