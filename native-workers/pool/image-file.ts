/**
 * Reading an image file safely: only regular files (a FIFO would hang, a device would stream
 * forever), links only within the dataset's folder, a size limit, and the format sniffed from
 * the first bytes before the file is read whole (an SVG named .png is a drawing, not a photo).
 */
import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { sep } from 'node:path';

export const MAX_IMAGE_BYTES = 64 * 1024 * 1024;

export class ImageFileError extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** The format by its magic bytes, or a reason it is not a photo FxPQ decodes. */
export function sniffImage(head: Uint8Array): { format: string } | { reason: string } {
  const ascii = Buffer.from(head).toString('latin1');
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return { format: 'jpeg' };
  if (ascii.startsWith('\x89PNG\r\n\x1a\n')) return { format: 'png' };
  if (ascii.startsWith('GIF87a') || ascii.startsWith('GIF89a')) return { format: 'gif' };
  if (ascii.startsWith('RIFF') && ascii.slice(8, 12) === 'WEBP') return { format: 'webp' };
  if (ascii.startsWith('II*\0') || ascii.startsWith('MM\0*')) return { format: 'tiff' };
  if (ascii.slice(4, 8) === 'ftyp' && /^(avif|avis|heic|heix|mif1)/.test(ascii.slice(8, 12))) return { format: 'heif' };
  if (/^\s*(<\?xml|<svg|<!DOCTYPE svg)/i.test(ascii))
    return { reason: 'an SVG drawing, not a photo (FxPQ does not rasterize SVG)' };
  return { reason: 'not an image: the content is not JPEG, PNG, WebP, GIF, TIFF or AVIF' };
}

/**
 * Read an image file after the checks above; `root`: the file must really be inside it. `sniff`
 * false reads any regular file (a raw folder is only hashed when indexed; its contents are
 * judged when an evaluation decodes them, and reported there).
 */
export async function readImageFile(path: string, root?: string, sniff = true): Promise<Uint8Array> {
  if (root) {
    // The real path, through every link on the way (a linked class folder included).
    const [target, base] = await Promise.all([
      realpath(path).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') throw new ImageFileError('a link to a file that does not exist');
        if (e.code === 'ELOOP') throw new ImageFileError('a link that loops back on itself');
        throw e;
      }),
      realpath(root),
    ]);
    if (target !== base && !target.startsWith(base + sep))
      throw new ImageFileError(`a link to ${target}, outside the dataset folder`);
  }
  // Non-blocking open, then checks on the opened handle: a FIFO cannot hang the open, and the
  // file cannot be swapped between the check and the read.
  const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const info = await file.stat();
    if (!info.isFile()) throw new ImageFileError('not a regular file (a device, pipe or socket)');
    if (info.size === 0) throw new ImageFileError('empty file (0 bytes)');
    if (info.size > MAX_IMAGE_BYTES)
      throw new ImageFileError(
        `${(info.size / 1048576).toFixed(0)} MB, larger than the ${MAX_IMAGE_BYTES / 1048576} MB limit for one image`,
      );
    const head = new Uint8Array(64);
    const { bytesRead } = await file.read(head, 0, head.length, 0);
    const sniffed = sniffImage(head.subarray(0, bytesRead));
    if (sniff && 'reason' in sniffed) throw new ImageFileError(sniffed.reason);
    const bytes = new Uint8Array(info.size);
    let offset = 0;
    while (offset < info.size) {
      const { bytesRead: n } = await file.read(bytes, offset, info.size - offset, offset);
      if (n === 0) break;
      offset += n;
    }
    return offset === info.size ? bytes : bytes.subarray(0, offset);
  } finally {
    await file.close();
  }
}
