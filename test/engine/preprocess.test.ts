import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  centerCrop,
  geometryKey,
  normalizeInto,
  parsePreprocess,
  preparePixels,
  resizeBilinear,
  resizeTarget,
  toLuma,
} from '../../native-workers/engine/data/preprocess.js';
import { repoRoot } from '../helpers/fixtures.js';

describe('preprocessing spec', () => {
  it('expands the imagenet preset and lets later keys override it', () => {
    const p = parsePreprocess('imagenet,crop=200,order=bgr,layout=nhwc');
    expect(p).toMatchObject({ resize: 256, crop: 200, channels: 3, order: 'bgr', layout: 'nhwc', scale: 1 / 255 });
    expect(p.mean).toEqual([0.485, 0.456, 0.406]);
    expect(p.std).toEqual([0.229, 0.224, 0.225]);
  });

  it('accepts fractions and the fixture specs', () => {
    expect(parsePreprocess('scale=1/127.5').scale).toBeCloseTo(1 / 127.5, 12);
    expect(parsePreprocess('resize=28,crop=28,channels=1,mean=0.2860,std=0.3530')).toMatchObject({
      channels: 1,
      mean: [0.286],
      std: [0.353],
    });
  });

  it('explains bad specs', () => {
    expect(() => parsePreprocess('resize=-3')).toThrowError(/resize must be a positive integer/);
    expect(() => parsePreprocess('colour=red')).toThrowError(/unknown key "colour"/);
    expect(() => parsePreprocess('channels=3,mean=0.1/0.2')).toThrowError(/mean has 2 values for 3 channels/);
    expect(() => parsePreprocess('std=0')).toThrowError(/std must not be 0/);
    expect(() => parsePreprocess('vgg')).toThrowError(/neither a preset/);
  });

  it('keys the pixel cache by geometry only (normalization is applied on the fly)', () => {
    expect(geometryKey(parsePreprocess('resize=28,crop=28,mean=0.5'))).toBe(
      geometryKey(parsePreprocess('resize=28,crop=28,mean=0.1,std=3')),
    );
    expect(geometryKey(parsePreprocess('resize=28,crop=28'))).not.toBe(
      geometryKey(parsePreprocess('resize=28,crop=27')),
    );
  });
});

describe('pixel pipeline', () => {
  it("matches PIL's bilinear resize bit for bit (up, down, one axis, RGB and L)", () => {
    const cases = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/pil-resize/cases.json'), 'utf8')) as {
      cases: {
        width: number;
        height: number;
        channels: number;
        outWidth: number;
        outHeight: number;
        input: string;
        output: string;
      }[];
    };
    expect(cases.cases.length).toBe(5);
    for (const c of cases.cases) {
      const out = resizeBilinear(
        {
          width: c.width,
          height: c.height,
          channels: c.channels,
          data: new Uint8Array(Buffer.from(c.input, 'base64')),
        },
        c.outWidth,
        c.outHeight,
      );
      expect(Buffer.from(out.data).equals(Buffer.from(c.output, 'base64'))).toBe(true);
    }
  });

  it('resizes the shorter side like torchvision (long side floored)', () => {
    expect(resizeTarget(500, 375, 256)).toEqual([341, 256]);
    expect(resizeTarget(375, 500, 256)).toEqual([256, 341]);
    expect(resizeTarget(28, 28, 28)).toEqual([28, 28]);
  });

  it('center-crops with offsets rounded half to even', () => {
    const img = { width: 5, height: 4, channels: 1, data: Uint8Array.from({ length: 20 }, (_, i) => i) };
    // (5-2)/2 = 1.5 -> 2, (4-2)/2 = 1 -> 1
    expect(Array.from(centerCrop(img, 2).data)).toEqual([7, 8, 12, 13]);
    const img2 = { width: 7, height: 3, channels: 1, data: Uint8Array.from({ length: 21 }, (_, i) => i) };
    // (7-2)/2 = 2.5 -> 2, (3-2)/2 = 0.5 -> 0
    expect(Array.from(centerCrop(img2, 2).data)).toEqual([2, 3, 9, 10]);
    expect(() => centerCrop(img, 6)).toThrowError(/smaller than the crop 6/);
  });

  it('computes luma as trunc((299 R + 587 G + 114 B) / 1000)', () => {
    const img = { width: 2, height: 1, channels: 3, data: Uint8Array.of(255, 0, 0, 10, 200, 30) };
    expect(Array.from(toLuma(img).data)).toEqual([76, 123]);
  });

  it('does not resample when the size already matches', () => {
    const data = Uint8Array.from({ length: 28 * 28 * 3 }, (_, i) => (i * 7) % 256);
    const out = preparePixels({ width: 28, height: 28, channels: 3, data }, parsePreprocess('resize=28,crop=28'));
    expect(Buffer.from(out.data).equals(Buffer.from(data))).toBe(true);
  });

  it('normalizes into NCHW or NHWC, RGB or BGR', () => {
    const img = { width: 2, height: 1, channels: 3, data: Uint8Array.of(10, 20, 30, 40, 50, 60) };
    const nchw = new Float32Array(6);
    normalizeInto(img, parsePreprocess('scale=1,mean=10,std=2'), nchw, 0);
    expect(Array.from(nchw)).toEqual([0, 15, 5, 20, 10, 25]);
    const nhwcBgr = new Float32Array(6);
    normalizeInto(img, parsePreprocess('scale=1,order=bgr,layout=nhwc'), nhwcBgr, 0);
    expect(Array.from(nhwcBgr)).toEqual([30, 20, 10, 60, 50, 40]);
  });
});
