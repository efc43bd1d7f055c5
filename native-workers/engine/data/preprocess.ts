/**
 * The preprocessing spec of contracts.md and the pixel pipeline after decoding:
 * resize of the shorter side (PIL-style antialiased bilinear), center crop, channels,
 * then `(pixel * scale - mean) / std` into an NCHW or NHWC float tensor.
 *
 * The resize kernel is PIL's (torchvision's on PIL images), not sharp's: the fixture
 * models were measured through it, and libvips' reduce kernels round differently.
 */
import { FxpqError } from '../errors.js';

export interface PreprocessSpec {
  resize: number | null;
  crop: number | null;
  channels: 1 | 3;
  order: 'rgb' | 'bgr';
  layout: 'nchw' | 'nhwc';
  scale: number;
  mean: number[];
  std: number[];
}

const PRESETS: Record<string, string> = {
  imagenet: 'resize=256,crop=224,channels=3,mean=0.485/0.456/0.406,std=0.229/0.224/0.225',
};

function parseNumber(key: string, value: string, spec: string): number {
  const frac = /^\s*(-?[\d.]+)\s*\/\s*([\d.]+)\s*$/.exec(value);
  const n = frac ? Number(frac[1]) / Number(frac[2]) : Number(value);
  if (!Number.isFinite(n))
    throw new FxpqError(`Preprocessing spec "${spec}": ${key}=${value} is not a number.`, 'invalid-model');
  return n;
}

/**
 * The largest `resize` and `crop` a spec may ask for: four times what the largest classifiers
 * take (ImageNet models up to 600 pixels, detection backbones about 1,300). A spec comes from a
 * model's metadata or sidecar too, and `resize=20000` once allocated 1.7 GB per image.
 */
export const MAX_IMAGE_SIDE = 4096;
/** The most pixels a resized image may have (a very long image keeps its aspect ratio). */
export const MAX_RESIZED_PIXELS = 4 * MAX_IMAGE_SIDE * MAX_IMAGE_SIDE;

function positiveInt(key: string, value: string, spec: string): number {
  const n = parseNumber(key, value, spec);
  if (!Number.isInteger(n) || n <= 0)
    throw new FxpqError(
      `Preprocessing spec "${spec}": ${key} must be a positive integer, not ${value}.`,
      'invalid-model',
    );
  return n;
}

function imageSide(key: string, value: string, spec: string): number {
  const n = positiveInt(key, value, spec);
  if (n > MAX_IMAGE_SIDE)
    throw new FxpqError(
      `Preprocessing spec "${spec}": ${key}=${value} is larger than the ${MAX_IMAGE_SIDE} pixels FxPQ accepts.`,
      'invalid-model',
    );
  return n;
}

export function parsePreprocess(spec: string): PreprocessSpec {
  const result: PreprocessSpec = {
    resize: null,
    crop: null,
    channels: 3,
    order: 'rgb',
    layout: 'nchw',
    scale: 1 / 255,
    mean: [0],
    std: [1],
  };
  const parts = spec
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const expanded = parts.flatMap((p) => (PRESETS[p] ? PRESETS[p]!.split(',') : [p]));
  for (const part of expanded) {
    const eq = part.indexOf('=');
    if (eq < 0)
      throw new FxpqError(
        `Preprocessing spec "${spec}": "${part}" is neither a preset (${Object.keys(PRESETS).join(', ')}) nor key=value.`,
        'invalid-model',
      );
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    switch (key) {
      case 'resize':
        result.resize = imageSide(key, value, spec);
        break;
      case 'crop':
        result.crop = imageSide(key, value, spec);
        break;
      case 'channels':
        if (value !== '1' && value !== '3')
          throw new FxpqError(`Preprocessing spec "${spec}": channels must be 1 or 3.`, 'invalid-model');
        result.channels = value === '1' ? 1 : 3;
        break;
      case 'order':
        if (value !== 'rgb' && value !== 'bgr')
          throw new FxpqError(`Preprocessing spec "${spec}": order must be rgb or bgr.`, 'invalid-model');
        result.order = value;
        break;
      case 'layout':
        if (value !== 'nchw' && value !== 'nhwc')
          throw new FxpqError(`Preprocessing spec "${spec}": layout must be nchw or nhwc.`, 'invalid-model');
        result.layout = value;
        break;
      case 'scale':
        result.scale = parseNumber(key, value, spec);
        break;
      case 'mean':
      case 'std':
        result[key] = value.split('/').map((v) => parseNumber(key, v, spec));
        break;
      default:
        throw new FxpqError(
          `Preprocessing spec "${spec}": unknown key "${key}" (known: resize, crop, channels, order, layout, scale, mean, std).`,
          'invalid-model',
        );
    }
  }
  for (const key of ['mean', 'std'] as const) {
    const n = result[key].length;
    if (n !== 1 && n !== result.channels)
      throw new FxpqError(
        `Preprocessing spec "${spec}": ${key} has ${n} values for ${result.channels} channels.`,
        'invalid-model',
      );
    if (key === 'std' && result.std.some((s) => s === 0))
      throw new FxpqError(`Preprocessing spec "${spec}": std must not be 0.`, 'invalid-model');
  }
  // The shorter side is resized to `resize`: a larger crop fits no image (the spec is wrong, not the images).
  if (result.resize !== null && result.crop !== null && result.crop > result.resize)
    throw new FxpqError(
      `Preprocessing spec "${spec}": crop ${result.crop} is larger than resize ${result.resize}, so no image can be cropped; use crop <= resize.`,
      'invalid-model',
    );
  return result;
}

/** The part of a spec that decides the cached uint8 pixels (normalization is applied on the fly). */
export function geometryKey(p: PreprocessSpec): string {
  return `r${p.resize ?? 'none'}-c${p.crop ?? 'none'}-ch${p.channels}-${p.order}`;
}

/** An 8-bit image, interleaved HWC. */
export interface PixelImage {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}

/** torchvision Resize(N): the shorter side becomes N, the longer floor(N * long / short). */
export function resizeTarget(width: number, height: number, n: number): [number, number] {
  if (width <= height) return [n, Math.floor((n * height) / width)];
  return [Math.floor((n * width) / height), n];
}

/** Python's round(): half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const PRECISION_BITS = 32 - 8 - 2;

/** PIL's bilinear coefficients for one axis, normalised to fixed point as PIL does for 8-bit images. */
function coefficients(inSize: number, outSize: number): { bounds: Int32Array; kernel: Int32Array; ksize: number } {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 1 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kernel = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterScale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      const w = t < 1 ? 1 - t : 0;
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? k[x]! / ww : k[x]!;
      kernel[xx * ksize + x] =
        v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, kernel, ksize };
}

const SCALE = 1 / (1 << PRECISION_BITS);

function clip8(v: number): number {
  // v * 2^-22 is exact in float64, so floor() equals PIL's arithmetic shift.
  const s = Math.floor(v * SCALE);
  return s < 0 ? 0 : s > 255 ? 255 : s;
}

/**
 * PIL ImagingResample with the BILINEAR filter: horizontal pass, then vertical, uint8 after
 * each. Sums use PIL's fixed-point coefficients and stay below 2^53, so float64 is exact.
 */
export function resizeBilinear(img: PixelImage, outW: number, outH: number): PixelImage {
  let cur = img;
  const c = img.channels;
  const half = 1 << (PRECISION_BITS - 1);
  if (outW !== cur.width) {
    const { bounds, kernel, ksize } = coefficients(cur.width, outW);
    const src = cur.data;
    const out = new Uint8Array(outW * cur.height * c);
    for (let y = 0; y < cur.height; y++) {
      const row = y * cur.width * c;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[xx * 2]!;
        const xmax = bounds[xx * 2 + 1]!;
        const k0 = xx * ksize;
        const o = (y * outW + xx) * c;
        if (c === 3) {
          // The common RGB case in locals: one pass over the taps for all three channels.
          let r = half;
          let g = half;
          let b = half;
          for (let x = 0; x < xmax; x++) {
            const w = kernel[k0 + x]!;
            const base = row + (xmin + x) * 3;
            r += src[base]! * w;
            g += src[base + 1]! * w;
            b += src[base + 2]! * w;
          }
          out[o] = clip8(r);
          out[o + 1] = clip8(g);
          out[o + 2] = clip8(b);
        } else {
          for (let ch = 0; ch < c; ch++) {
            let ss = half;
            for (let x = 0; x < xmax; x++) ss += src[row + (xmin + x) * c + ch]! * kernel[k0 + x]!;
            out[o + ch] = clip8(ss);
          }
        }
      }
    }
    cur = { width: outW, height: cur.height, channels: c, data: out };
  }
  if (outH !== cur.height) {
    const { bounds, kernel, ksize } = coefficients(cur.height, outH);
    const src = cur.data;
    const stride = cur.width * c;
    const out = new Uint8Array(stride * outH);
    for (let yy = 0; yy < outH; yy++) {
      const ymin = bounds[yy * 2]!;
      const ymax = bounds[yy * 2 + 1]!;
      const k0 = yy * ksize;
      const o = yy * stride;
      for (let i = 0; i < stride; i++) {
        let ss = half;
        for (let y = 0; y < ymax; y++) ss += src[(ymin + y) * stride + i]! * kernel[k0 + y]!;
        out[o + i] = clip8(ss);
      }
    }
    cur = { width: cur.width, height: outH, channels: c, data: out };
  }
  return cur;
}

/** Center crop with torchvision's offsets: round((W - N) / 2), half to even. */
export function centerCrop(img: PixelImage, n: number): PixelImage {
  if (img.width < n || img.height < n) {
    throw new FxpqError(
      `Image of ${img.width}x${img.height} is smaller than the crop ${n}; add resize=${n} to the preprocessing.`,
      'invalid-model',
    );
  }
  const left = roundHalfEven((img.width - n) / 2);
  const top = roundHalfEven((img.height - n) / 2);
  const c = img.channels;
  const out = new Uint8Array(n * n * c);
  for (let y = 0; y < n; y++)
    out.set(img.data.subarray(((top + y) * img.width + left) * c, ((top + y) * img.width + left + n) * c), y * n * c);
  return { width: n, height: n, channels: c, data: out };
}

/** PIL-convention luma, as the reference pipeline computes it: trunc((299 R + 587 G + 114 B) / 1000). */
export function toLuma(img: PixelImage): PixelImage {
  if (img.channels === 1) return img;
  const n = img.width * img.height;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = img.data[i * 3]!;
    const g = img.data[i * 3 + 1]!;
    const b = img.data[i * 3 + 2]!;
    out[i] = Math.trunc((299 * r + 587 * g + 114 * b) / 1000);
  }
  return { width: img.width, height: img.height, channels: 1, data: out };
}

/** Decoded RGB pixels -> the cached uint8 image: channels, resize, crop. */
export function preparePixels(rgb: PixelImage, p: PreprocessSpec): PixelImage {
  let img = p.channels === 1 ? toLuma(rgb) : rgb;
  if (p.resize !== null) {
    const [w, h] = resizeTarget(img.width, img.height, p.resize);
    if (w * h > MAX_RESIZED_PIXELS)
      throw new FxpqError(
        `resizing its ${img.width} x ${img.height} pixels to a shorter side of ${p.resize} would make ${w} x ${h}, more than the ${MAX_RESIZED_PIXELS} pixels FxPQ allows`,
        'invalid-model',
      );
    if (w !== img.width || h !== img.height) img = resizeBilinear(img, w, h);
  }
  if (p.crop !== null) img = centerCrop(img, p.crop);
  return img;
}

/** Write one prepared image as normalized floats at `offset` of `out` (one image of the batch). */
export function normalizeInto(img: PixelImage, p: PreprocessSpec, out: Float32Array, offset: number): void {
  const c = img.channels;
  const hw = img.width * img.height;
  for (let ch = 0; ch < c; ch++) {
    const src = p.order === 'bgr' && c === 3 ? 2 - ch : ch;
    const mean = p.mean.length === 1 ? p.mean[0]! : p.mean[ch]!;
    const std = p.std.length === 1 ? p.std[0]! : p.std[ch]!;
    for (let i = 0; i < hw; i++) {
      const v = (img.data[i * c + src]! * p.scale - mean) / std;
      out[offset + (p.layout === 'nchw' ? ch * hw + i : i * c + ch)] = v;
    }
  }
}
