/**
 * On-disk cache of prepared images (uint8 after channels, resize and crop), keyed by the
 * SHA-256 of the image file's bytes as they were read for this lookup (never a hash a
 * dataset.json records: a forged or stale index would otherwise serve, or store, another
 * image's pixels) and the preprocessing geometry; normalization is applied on the fly.
 * Entries are written atomically and carry a CRC: a torn or corrupt entry is rebuilt.
 * The cache is only an optimisation: a folder that cannot be written turns it off for this
 * instance with one warning, and the work goes on without it.
 */
import { crc32 } from 'node:zlib';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { readFile, rm } from 'node:fs/promises';
import type { PixelImage } from '../native-workers/engine/data/preprocess.js';
import { writeFileAtomic } from './files.js';

const MAGIC = 'FXPQPX01';
const HEADER = 24; // magic 8, width 4, height 4, channels 4, crc 4

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['FXPQ_CACHE_DIR']) return env['FXPQ_CACHE_DIR'];
  return join(env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'fxpq', 'tensors');
}

const ERRNO_WORDS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'a read-only file system',
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is used up',
  ENOTDIR: 'a file is where a folder should be',
  EEXIST: 'a file is where a folder should be',
};

/** Why a cache write failed, in words (an errno code, or the sentence of a described error). */
function cannotWrite(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code && /^E[A-Z]+$/.test(code)) return ERRNO_WORDS[code] ?? code;
  return (e as Error).message.replace(/\.$/, '');
}

export class TensorCache {
  hits = 0;
  misses = 0;
  rebuilt = 0;
  /** Why entries are no longer written (the first write that failed), once one failed. */
  warning: string | undefined;

  /** `onWarning`: told once when the cache turns itself off (default: a line on stderr). */
  constructor(
    readonly dir: string,
    private readonly onWarning: (message: string) => void = (m) => process.stderr.write(`fxpq: warning: ${m}\n`),
  ) {}

  private path(sha256: string, geometry: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`tensor cache key is not a SHA-256: ${sha256.slice(0, 80)}`);
    if (!/^[A-Za-z0-9._,=-]+$/.test(geometry) || geometry.startsWith('.'))
      throw new Error(`tensor cache geometry key is not a plain name: ${geometry.slice(0, 80)}`);
    return join(this.dir, geometry, sha256.slice(0, 2), `${sha256}.px`);
  }

  async get(sha256: string, geometry: string): Promise<PixelImage | undefined> {
    const file = this.path(sha256, geometry);
    let buf: Buffer;
    try {
      buf = await readFile(file);
    } catch {
      this.misses++;
      return undefined;
    }
    const valid =
      buf.length >= HEADER &&
      buf.toString('latin1', 0, 8) === MAGIC &&
      buf.length === HEADER + buf.readUInt32LE(8) * buf.readUInt32LE(12) * buf.readUInt32LE(16) &&
      crc32(buf.subarray(HEADER)) === buf.readUInt32LE(20);
    if (!valid) {
      // Never trust a damaged entry: drop it, and the caller decodes again.
      await rm(file, { force: true }).catch(() => undefined);
      this.rebuilt++;
      this.misses++;
      return undefined;
    }
    this.hits++;
    return {
      width: buf.readUInt32LE(8),
      height: buf.readUInt32LE(12),
      channels: buf.readUInt32LE(16),
      data: new Uint8Array(buf.buffer, buf.byteOffset + HEADER, buf.length - HEADER),
    };
  }

  /** Store an entry; never throws for the file system (the cache turns off instead, see `warning`). */
  async put(sha256: string, geometry: string, img: PixelImage): Promise<void> {
    if (this.warning !== undefined) return;
    const file = this.path(sha256, geometry);
    const buf = Buffer.alloc(HEADER + img.data.length);
    buf.write(MAGIC, 0, 'latin1');
    buf.writeUInt32LE(img.width, 8);
    buf.writeUInt32LE(img.height, 12);
    buf.writeUInt32LE(img.channels, 16);
    buf.set(img.data, HEADER);
    buf.writeUInt32LE(crc32(buf.subarray(HEADER)), 20);
    try {
      await writeFileAtomic(file, buf);
    } catch (e) {
      if (this.warning !== undefined) return;
      const why = cannotWrite(e);
      this.warning = `the tensor cache ${this.dir} cannot be written (${why}); going on without it (set FXPQ_CACHE_DIR to a writable folder to cache prepared images)`;
      this.onWarning(this.warning);
    }
  }
}
