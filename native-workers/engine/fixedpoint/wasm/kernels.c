/*
 * Integer kernels of the fast executor path, compiled to WebAssembly with SIMD
 * (scripts/build-wasm.mjs). They compute exactly what the TypeScript kernels of the operator modules
 * compute; the TypeScript side (fixedpoint/wasm-linear.ts) only calls them where the bounds
 * make that provable:
 *
 * - activations and weights fit in int16, so i32x4.dot_i16x8_s multiplies them exactly;
 * - every output's sum of |w| * max|x| fits in int32, so the int32 lane sums never wrap
 *   (pack_* return max|x| of the data they saw, for that check);
 * - bias addition and requantization use the same float64 operations, in the same order,
 *   as requantizeInto (kernel-util.ts): every value there is an integer below 2^53, so the
 *   results are the same bits.
 *
 * Layouts (P pixels in blocks of 8, K products per output in pairs kp = k / 2):
 *   columns: [pixel block][kp][8 pixels][2] int16, zero beyond K and P;
 *   weights: [output block of 4][kp][4 outputs] int32 holding the int16 pair (k even low, k odd high).
 * One i32x4.dot_i16x8_s then adds two products for four pixels of one output.
 */
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))

/* Values seen while packing: max and min, to prove the int16 and int32 bounds afterwards. */
typedef struct {
  int32_t max, min;
} Range;

static int32_t range_result(Range r) {
  if (r.max > 32767 || r.min < -32768) return -1;
  return r.max > -r.min ? r.max : -r.min;
}

static void zero16(int16_t *p, int n) { __builtin_memset(p, 0, (unsigned)n * 2); }

/*
 * im2col of the channels [c0, c0 + cg) of a CHW int32 image into the column layout.
 * Returns max|x| of the packed values, or -1 when one does not fit in int16.
 */
EXPORT("pack_conv")
int32_t pack_conv(const int32_t *x, int c0, int cg, int H, int W, int KH, int KW, int sh, int sw, int dh, int dw,
                  int pt, int pl, int OH, int OW, int16_t *col) {
  const int P = OH * OW;
  const int K = cg * KH * KW;
  const int KP = (K + 1) / 2;
  const int PB = (P + 7) / 8;
  zero16(col, PB * KP * 16);
  Range r = {0, 0};
  int k = 0;
  for (int c = 0; c < cg; c++) {
    const int32_t *plane = x + (c0 + c) * H * W;
    for (int kh = 0; kh < KH; kh++) {
      for (int kw = 0; kw < KW; kw++, k++) {
        const int off = kw * dw - pl;
        /* Output columns whose input column is inside the image: lo <= ow < hi. */
        int lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
        int hi = off > W - 1 ? 0 : (W - 1 - off) / sw + 1;
        if (hi > OW) hi = OW;
        int16_t *dst = col + (k >> 1) * 16 + (k & 1);
        for (int oh = 0; oh < OH; oh++) {
          const int ih = oh * sh - pt + kh * dh;
          if (ih < 0 || ih >= H) continue;
          const int32_t *src = plane + ih * W + off;
          for (int ow = lo; ow < hi; ow++) {
            const int32_t v = src[ow * sw];
            const int p = oh * OW + ow;
            r.max = v > r.max ? v : r.max;
            r.min = v < r.min ? v : r.min;
            dst[(p >> 3) * KP * 16 + (p & 7) * 2] = (int16_t)v;
          }
        }
      }
    }
  }
  return range_result(r);
}

/*
 * 1x1 convolution, stride 1, no padding: the columns are the channels themselves, two
 * channels interleaved per pair. Same result as pack_conv, without its per-element work.
 */
EXPORT("pack_pointwise")
int32_t pack_pointwise(const int32_t *x, int c0, int cg, int P, int16_t *col) {
  const int KP = (cg + 1) / 2;
  const int PB = (P + 7) / 8;
  v128_t vmax = wasm_i32x4_splat(0), vmin = wasm_i32x4_splat(0);
  for (int kp = 0; kp < KP; kp++) {
    const int32_t *a = x + (c0 + 2 * kp) * P;
    const int32_t *b = 2 * kp + 1 < cg ? a + P : 0;
    for (int pb = 0; pb < PB; pb++) {
      int16_t *dst = col + (pb * KP + kp) * 16;
      const int p0 = pb * 8;
      if (p0 + 8 <= P) {
        v128_t a0 = wasm_v128_load(a + p0), a1 = wasm_v128_load(a + p0 + 4);
        v128_t b0 = b ? wasm_v128_load(b + p0) : wasm_i32x4_splat(0);
        v128_t b1 = b ? wasm_v128_load(b + p0 + 4) : wasm_i32x4_splat(0);
        vmax = wasm_i32x4_max(vmax, wasm_i32x4_max(wasm_i32x4_max(a0, a1), wasm_i32x4_max(b0, b1)));
        vmin = wasm_i32x4_min(vmin, wasm_i32x4_min(wasm_i32x4_min(a0, a1), wasm_i32x4_min(b0, b1)));
        v128_t a16 = wasm_i16x8_narrow_i32x4(a0, a1);
        v128_t b16 = wasm_i16x8_narrow_i32x4(b0, b1);
        wasm_v128_store(dst, wasm_i16x8_shuffle(a16, b16, 0, 8, 1, 9, 2, 10, 3, 11));
        wasm_v128_store(dst + 8, wasm_i16x8_shuffle(a16, b16, 4, 12, 5, 13, 6, 14, 7, 15));
      } else {
        for (int j = 0; j < 8; j++) {
          const int p = p0 + j;
          const int32_t va = p < P ? a[p] : 0;
          const int32_t vb = p < P && b ? b[p] : 0;
          vmax = wasm_i32x4_max(vmax, wasm_i32x4_make(va, vb, 0, 0));
          vmin = wasm_i32x4_min(vmin, wasm_i32x4_make(va, vb, 0, 0));
          dst[2 * j] = (int16_t)va;
          dst[2 * j + 1] = (int16_t)vb;
        }
      }
    }
  }
  Range r = {0, 0};
  for (int i = 0; i < 4; i++) {
    const int32_t hi = wasm_i32x4_extract_lane(vmax, 0), lo = wasm_i32x4_extract_lane(vmin, 0);
    r.max = hi > r.max ? hi : r.max;
    r.min = lo < r.min ? lo : r.min;
    vmax = wasm_i32x4_shuffle(vmax, vmax, 1, 2, 3, 0);
    vmin = wasm_i32x4_shuffle(vmin, vmin, 1, 2, 3, 0);
  }
  return range_result(r);
}

/* Rows of a row-major [P][K] int32 matrix (Gemm / MatMul inputs) as columns: pixel p = row p. */
EXPORT("pack_rows")
int32_t pack_rows(const int32_t *x, int P, int K, int16_t *col) {
  const int KP = (K + 1) / 2;
  const int PB = (P + 7) / 8;
  zero16(col, PB * KP * 16);
  Range r = {0, 0};
  for (int p = 0; p < P; p++) {
    for (int k = 0; k < K; k++) {
      const int32_t v = x[p * K + k];
      r.max = v > r.max ? v : r.max;
      r.min = v < r.min ? v : r.min;
      col[((p >> 3) * KP + (k >> 1)) * 16 + (p & 7) * 2 + (k & 1)] = (int16_t)v;
    }
  }
  return range_result(r);
}

/*
 * acc[o][p] = sum_k w[o][k] x[k][p] for OB blocks of 4 outputs and PB blocks of 8 pixels,
 * int32 (exact by the caller's bound). acc rows are PB * 8 long.
 */
EXPORT("dot_4x8")
void dot_4x8(const int32_t *w, const int16_t *col, int OB, int KP, int PB, int32_t *acc) {
  const int stride = PB * 8;
  for (int ob = 0; ob < OB; ob++) {
    const int32_t *wb = w + ob * KP * 4;
    int32_t *out = acc + ob * 4 * stride;
    for (int pb = 0; pb < PB; pb++) {
      const int16_t *c = col + pb * KP * 16;
      v128_t s00 = wasm_i32x4_splat(0), s01 = s00, s10 = s00, s11 = s00;
      v128_t s20 = s00, s21 = s00, s30 = s00, s31 = s00;
      for (int kp = 0; kp < KP; kp++) {
        const v128_t c0 = wasm_v128_load(c + kp * 16);
        const v128_t c1 = wasm_v128_load(c + kp * 16 + 8);
        const v128_t wv = wasm_v128_load(wb + kp * 4);
        const v128_t w0 = wasm_i32x4_shuffle(wv, wv, 0, 0, 0, 0);
        const v128_t w1 = wasm_i32x4_shuffle(wv, wv, 1, 1, 1, 1);
        const v128_t w2 = wasm_i32x4_shuffle(wv, wv, 2, 2, 2, 2);
        const v128_t w3 = wasm_i32x4_shuffle(wv, wv, 3, 3, 3, 3);
        s00 = wasm_i32x4_add(s00, wasm_i32x4_dot_i16x8(c0, w0));
        s01 = wasm_i32x4_add(s01, wasm_i32x4_dot_i16x8(c1, w0));
        s10 = wasm_i32x4_add(s10, wasm_i32x4_dot_i16x8(c0, w1));
        s11 = wasm_i32x4_add(s11, wasm_i32x4_dot_i16x8(c1, w1));
        s20 = wasm_i32x4_add(s20, wasm_i32x4_dot_i16x8(c0, w2));
        s21 = wasm_i32x4_add(s21, wasm_i32x4_dot_i16x8(c1, w2));
        s30 = wasm_i32x4_add(s30, wasm_i32x4_dot_i16x8(c0, w3));
        s31 = wasm_i32x4_add(s31, wasm_i32x4_dot_i16x8(c1, w3));
      }
      int32_t *o = out + pb * 8;
      wasm_v128_store(o, s00);
      wasm_v128_store(o + 4, s01);
      wasm_v128_store(o + stride, s10);
      wasm_v128_store(o + stride + 4, s11);
      wasm_v128_store(o + 2 * stride, s20);
      wasm_v128_store(o + 2 * stride + 4, s21);
      wasm_v128_store(o + 3 * stride, s30);
      wasm_v128_store(o + 3 * stride + 4, s31);
    }
  }
}

/*
 * One output (a depthwise channel): acc[p] = sum_k w[k] x[k][p]. w holds the int16 pairs of
 * one output, one int32 per kp (no padding to 4 outputs, which would waste 3/4 of the work).
 */
EXPORT("dot_1x8")
void dot_1x8(const int32_t *w, const int16_t *col, int KP, int PB, int32_t *acc) {
  for (int pb = 0; pb < PB; pb++) {
    const int16_t *c = col + pb * KP * 16;
    v128_t s0 = wasm_i32x4_splat(0), s1 = s0;
    for (int kp = 0; kp < KP; kp++) {
      const v128_t wv = wasm_v128_load32_splat(w + kp);
      s0 = wasm_i32x4_add(s0, wasm_i32x4_dot_i16x8(wasm_v128_load(c + kp * 16), wv));
      s1 = wasm_i32x4_add(s1, wasm_i32x4_dot_i16x8(wasm_v128_load(c + kp * 16 + 8), wv));
    }
    wasm_v128_store(acc + pb * 8, s0);
    wasm_v128_store(acc + pb * 8 + 4, s1);
  }
}

/*
 * out[o * so + p * sp] = clamp(rshift_round(bias[o] + acc[o][p], r), lo, hi) for O outputs
 * and P pixels, with the float64 operations of requantizeInto: r > 0: floor((a + half) * scale),
 * r <= 0: a * scale. bias may be null (no bias: 0). The clamped value is stored as a JS
 * Int32Array store would (modulo 2^32). Strides: Conv writes [O][P], Gemm and MatMul [P][O].
 */
EXPORT("requantize")
void requantize(const int32_t *acc, int accStride, const double *bias, int O, int P, int shiftRight, double half,
                double scale, double lo, double hi, int32_t *out, int so, int sp) {
  for (int o = 0; o < O; o++) {
    const double b = bias ? bias[o] : 0.0;
    const int32_t *a = acc + o * accStride;
    int32_t *y = out + o * so;
    if (shiftRight) {
      for (int p = 0; p < P; p++) {
        double m = __builtin_floor((b + (double)a[p] + half) * scale);
        m = m < lo ? lo : m > hi ? hi : m;
        y[p * sp] = (int32_t)(int64_t)m;
      }
    } else {
      for (int p = 0; p < P; p++) {
        double m = (b + (double)a[p]) * scale;
        m = m < lo ? lo : m > hi ? hi : m;
        y[p * sp] = (int32_t)(int64_t)m;
      }
    }
  }
}
