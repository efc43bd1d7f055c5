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
 * Layouts (pixels in blocks of 8, K products per output in pairs kp = k / 2):
 *   columns: [pixel block][kp][8 pixels][2] int16, zero beyond K;
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

static Range range_of(Range r, v128_t vmax, v128_t vmin) {
  for (int i = 0; i < 4; i++) {
    const int32_t hi = wasm_i32x4_extract_lane(vmax, 0), lo = wasm_i32x4_extract_lane(vmin, 0);
    r.max = hi > r.max ? hi : r.max;
    r.min = lo < r.min ? lo : r.min;
    vmax = wasm_i32x4_shuffle(vmax, vmax, 1, 2, 3, 0);
    vmin = wasm_i32x4_shuffle(vmin, vmin, 1, 2, 3, 0);
  }
  return r;
}

/*
 * Lane shifts by a run-time count. clang 14 hoists the count's splat out of loops and then
 * lowers the shift lane by lane (four extract/shift/replace); the empty asm keeps the count
 * opaque at the shift, so it stays one i32x4.shr_s / i32x4.shl.
 */
static inline v128_t shr_lanes(v128_t v, int r) {
  __asm__ volatile("" : "+r"(r));
  return wasm_i32x4_shr(v, r);
}

static inline v128_t shl_lanes(v128_t v, int r) {
  __asm__ volatile("" : "+r"(r));
  return wasm_i32x4_shl(v, r);
}

static void zero16(int16_t *p, int n) { __builtin_memset(p, 0, (unsigned)n * 2); }

/*
 * The CHW int32 image as int16 planes of Hp x Wp with the image at row pt, column pl and
 * zeros around it: the convolution's padding becomes plain data, so packing needs no bounds
 * tests. Returns max|x|, or -1 when a value does not fit in int16.
 */
EXPORT("pad_input")
int32_t pad_input(const int32_t *x, int C, int H, int W, int pt, int pl, int Hp, int Wp, int16_t *xp) {
  zero16(xp, C * Hp * Wp);
  v128_t vmax = wasm_i32x4_splat(0), vmin = vmax;
  Range r = {0, 0};
  for (int c = 0; c < C; c++) {
    for (int h = 0; h < H; h++) {
      const int32_t *src = x + (c * H + h) * W;
      int16_t *dst = xp + (c * Hp + h + pt) * Wp + pl;
      int w = 0;
      for (; w + 8 <= W; w += 8) {
        const v128_t a = wasm_v128_load(src + w), b = wasm_v128_load(src + w + 4);
        vmax = wasm_i32x4_max(vmax, wasm_i32x4_max(a, b));
        vmin = wasm_i32x4_min(vmin, wasm_i32x4_min(a, b));
        wasm_v128_store(dst + w, wasm_i16x8_narrow_i32x4(a, b));
      }
      for (; w < W; w++) {
        const int32_t v = src[w];
        r.max = v > r.max ? v : r.max;
        r.min = v < r.min ? v : r.min;
        dst[w] = (int16_t)v;
      }
    }
  }
  return range_result(range_of(r, vmax, vmin));
}

/* Eight values p[0], p[sw], ..., p[7 sw]. */
static inline v128_t load8(const int16_t *p, int sw) {
  if (sw == 1) return wasm_v128_load(p);
  if (sw == 2) return wasm_i16x8_shuffle(wasm_v128_load(p), wasm_v128_load(p + 8), 0, 2, 4, 6, 8, 10, 12, 14);
  return wasm_i16x8_make(p[0], p[sw], p[2 * sw], p[3 * sw], p[4 * sw], p[5 * sw], p[6 * sw], p[7 * sw]);
}

/* Columns of pixel blocks [pb0, pb0 + n) (block pb: output row pb / BR, columns 8 (pb % BR) + 0..7). */
static inline __attribute__((always_inline)) void pack_body(const int16_t *xp, int K, const int32_t *off, int sh,
                                                             int sw, int Wp, int BR, int pb0, int n, int16_t *col) {
  const int KP = (K + 1) / 2;
  const v128_t zero = wasm_i32x4_splat(0);
  int16_t *dst = col;
  for (int pb = pb0; pb < pb0 + n; pb++) {
    const int16_t *base = xp + (pb / BR) * sh * Wp + (pb % BR) * 8 * sw;
    for (int kp = 0; kp < KP; kp++, dst += 16) {
      const v128_t va = load8(base + off[2 * kp], sw);
      const v128_t vb = 2 * kp + 1 < K ? load8(base + off[2 * kp + 1], sw) : zero;
      wasm_v128_store(dst, wasm_i16x8_shuffle(va, vb, 0, 8, 1, 9, 2, 10, 3, 11));
      wasm_v128_store(dst + 8, wasm_i16x8_shuffle(va, vb, 4, 12, 5, 13, 6, 14, 7, 15));
    }
  }
}

static void pack_range(const int16_t *xp, int K, const int32_t *off, int sh, int sw, int Wp, int BR, int pb0, int n,
                       int16_t *col) {
  /* Copies for strides 1 and 2, where load8 is one load or two loads and a shuffle. */
  if (sw == 1) pack_body(xp, K, off, sh, 1, Wp, BR, pb0, n, col);
  else if (sw == 2) pack_body(xp, K, off, sh, 2, Wp, BR, pb0, n, col);
  else pack_body(xp, K, off, sh, sw, Wp, BR, pb0, n, col);
}

/* Offsets in the padded planes of every product k = (channel, kh, kw) of output (0, 0). */
static void tap_offsets(int K, int Hp, int Wp, int KH, int KW, int dh, int dw, int32_t *off) {
  for (int k = 0; k < K; k++) off[k] = ((k / (KW * KH)) * Hp + ((k / KW) % KH) * dh) * Wp + (k % KW) * dw;
}

/*
 * im2col of channels [c0, c0 + cg) of the padded planes into the column layout. Pixel blocks
 * are 8 output columns of one output row (rows padded to BR blocks): each block's input is one
 * strided run of a padded row, two of them interleaved per product pair. Written in column
 * order (the reads stay within the group's planes); off: K int32 of scratch for the offsets.
 * (conv_4x8 below packs and multiplies tile by tile instead.)
 */
EXPORT("pack_conv")
void pack_conv(const int16_t *xp, int c0, int cg, int Hp, int Wp, int KH, int KW, int sh, int sw, int dh, int dw,
               int OH, int BR, int16_t *col, int32_t *off) {
  const int K = cg * KH * KW;
  tap_offsets(K, Hp, Wp, KH, KW, dh, dw, off);
  pack_range(xp + c0 * Hp * Wp, K, off, sh, sw, Wp, BR, 0, OH * BR, col);
}

/*
 * Depthwise convolution (one input channel per output) without a column buffer: each product
 * pair's two input runs are read from the padded planes and interleaved in registers, then
 * one i32x4.dot_i16x8_s per four pixels as in dot_1x8. w: [C][KP] int16 pairs; acc: [C][OH *
 * BR * 8]. K = KH * KW <= 64.
 */
static inline __attribute__((always_inline)) void depthwise_body(const int16_t *xp, int C, int Hp, int Wp, int K,
                                                                  const int *off, int sh, int sw, int OH, int BR,
                                                                  const int32_t *w, int32_t *acc) {
  const int KP = (K + 1) / 2;
  const v128_t zero = wasm_i32x4_splat(0);
  for (int c = 0; c < C; c++) {
    const int16_t *plane = xp + c * Hp * Wp;
    const int32_t *wc = w + c * KP;
    int32_t *out = acc + c * OH * BR * 8;
    for (int oh = 0; oh < OH; oh++) {
      const int16_t *row = plane + oh * sh * Wp;
      for (int bi = 0; bi < BR; bi++, out += 8) {
        const int16_t *base = row + bi * 8 * sw;
        v128_t s0 = zero, s1 = zero;
        int kp = 0;
        for (; 2 * kp + 1 < K; kp++) {
          const v128_t va = load8(base + off[2 * kp], sw);
          const v128_t vb = load8(base + off[2 * kp + 1], sw);
          const v128_t wv = wasm_v128_load32_splat(wc + kp);
          s0 = wasm_i32x4_add(s0, wasm_i32x4_dot_i16x8(wasm_i16x8_shuffle(va, vb, 0, 8, 1, 9, 2, 10, 3, 11), wv));
          s1 = wasm_i32x4_add(s1, wasm_i32x4_dot_i16x8(wasm_i16x8_shuffle(va, vb, 4, 12, 5, 13, 6, 14, 7, 15), wv));
        }
        if (kp < KP) { /* odd K: the last product pairs with a zero weight */
          const v128_t va = load8(base + off[2 * kp], sw);
          const v128_t wv = wasm_v128_load32_splat(wc + kp);
          s0 = wasm_i32x4_add(s0, wasm_i32x4_dot_i16x8(wasm_i16x8_shuffle(va, zero, 0, 8, 1, 9, 2, 10, 3, 11), wv));
          s1 = wasm_i32x4_add(s1, wasm_i32x4_dot_i16x8(wasm_i16x8_shuffle(va, zero, 4, 12, 5, 13, 6, 14, 7, 15), wv));
        }
        wasm_v128_store(out, s0);
        wasm_v128_store(out + 4, s1);
      }
    }
  }
}

EXPORT("depthwise")
void depthwise(const int16_t *xp, int C, int Hp, int Wp, int KH, int KW, int sh, int sw, int dh, int dw, int OH, int BR,
               const int32_t *w, int32_t *acc) {
  const int K = KH * KW;
  int off[64];
  for (int k = 0; k < K; k++) off[k] = (k / KW) * dh * Wp + (k % KW) * dw;
  /* Copies for strides 1 and 2, where load8 is one load or two loads and a shuffle. */
  if (sw == 1) depthwise_body(xp, C, Hp, Wp, K, off, sh, 1, OH, BR, w, acc);
  else if (sw == 2) depthwise_body(xp, C, Hp, Wp, K, off, sh, 2, OH, BR, w, acc);
  else depthwise_body(xp, C, Hp, Wp, K, off, sh, sw, OH, BR, w, acc);
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
static void dot_4x8_range(const int32_t *w, const int16_t *col, int OB, int KP, int PB, int32_t *acc, int stride) {
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

EXPORT("dot_4x8")
void dot_4x8(const int32_t *w, const int16_t *col, int OB, int KP, int PB, int32_t *acc) {
  dot_4x8_range(w, col, OB, KP, PB, acc, PB * 8);
}

/*
 * pack_conv then dot_4x8, a tile of pixel blocks at a time: the tile's columns (about 16 KiB)
 * stay in the L1 cache while every block of four outputs reads them, instead of the whole
 * column buffer (hundreds of KiB) being written out and read back OB times.
 */
EXPORT("conv_4x8")
void conv_4x8(const int16_t *xp, int c0, int cg, int Hp, int Wp, int KH, int KW, int sh, int sw, int dh, int dw, int OH,
              int BR, const int32_t *w, int OB, int16_t *col, int32_t *off, int32_t *acc) {
  const int K = cg * KH * KW;
  const int KP = (K + 1) / 2;
  const int PB = OH * BR;
  int tile = 16384 / (KP * 32);
  if (tile < 1) tile = 1;
  tap_offsets(K, Hp, Wp, KH, KW, dh, dw, off);
  xp += c0 * Hp * Wp;
  for (int pb0 = 0; pb0 < PB; pb0 += tile) {
    const int n = pb0 + tile <= PB ? tile : PB - pb0;
    pack_range(xp, K, off, sh, sw, Wp, BR, pb0, n, col);
    dot_4x8_range(w, col, OB, KP, n, acc + pb0 * 8, PB * 8);
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
 * out[o * so + (oh * OW + ow) * sp] = clamp(rshift_round(bias[o] + acc[o][oh][ow], r), lo, hi)
 * (acc rows OWpad long, outputs accStride apart), with the float64 operations of
 * requantizeInto: r > 0: floor((a + half) * scale), r <= 0: a * scale. bias may be null (0).
 * The clamped value is stored as a JS Int32Array store would (modulo 2^32). Conv writes
 * [O][OH][OW] (so = OH * OW, sp = 1), Gemm and MatMul [P][O] (OH = 1, so = 1, sp = O).
 */
EXPORT("requantize")
void requantize(const int32_t *acc, int accStride, const double *bias, int O, int OH, int OW, int OWpad, int shiftRight,
                double half, double scale, double lo, double hi, int32_t *out, int so, int sp) {
  for (int o = 0; o < O; o++) {
    const double b = bias ? bias[o] : 0.0;
    for (int oh = 0; oh < OH; oh++) {
      const int32_t *a = acc + o * accStride + oh * OWpad;
      int32_t *y = out + o * so + oh * OW * sp;
      if (shiftRight) {
        for (int ow = 0; ow < OW; ow++) {
          double m = __builtin_floor((b + (double)a[ow] + half) * scale);
          m = m < lo ? lo : m > hi ? hi : m;
          y[ow * sp] = (int32_t)(int64_t)m;
        }
      } else {
        for (int ow = 0; ow < OW; ow++) {
          double m = (b + (double)a[ow]) * scale;
          m = m < lo ? lo : m > hi ? hi : m;
          y[ow * sp] = (int32_t)(int64_t)m;
        }
      }
    }
  }
}

/*
 * requantize for the common case, in int32 lanes: out[o][oh][ow] = clamp((acc + bias[o] +
 * 2^(r-1)) >> r, lo, hi) with 1 <= r <= 31, outputs written in order (see the spill below). The caller has proved |acc + bias + 2^(r-1)| <
 * 2^31 and lo, hi within int32; on exact integers floor((v + half) * 2^-r) and the arithmetic
 * shift are the same number, so this equals requantize.
 */
EXPORT("requantize_shift")
void requantize_shift(const int32_t *acc, int accStride, const int32_t *bias, int O, int OH, int OW, int OWpad, int r,
                      int32_t lo, int32_t hi, int32_t *out) {
  const int32_t half = 1 << (r - 1);
  const v128_t vlo = wasm_i32x4_splat(lo), vhi = wasm_i32x4_splat(hi);
  for (int o = 0; o < O; o++) {
    const int32_t add = (bias ? bias[o] : 0) + half;
    const v128_t vadd = wasm_i32x4_splat(add);
    for (int oh = 0; oh < OH; oh++) {
      const int32_t *a = acc + o * accStride + oh * OWpad;
      int32_t *y = out + (o * OH + oh) * OW;
      /* Whole vectors: up to 3 values spill into the next row, which rewrites them next
         (the caller leaves 16 bytes after the last row). acc rows are OWpad >= OW long. */
      for (int ow = 0; ow < OW; ow += 4) {
        const v128_t m = shr_lanes(wasm_i32x4_add(wasm_v128_load(a + ow), vadd), r);
        wasm_v128_store(y + ow, wasm_i32x4_max(wasm_i32x4_min(m, vhi), vlo));
      }
    }
  }
}

/*
 * Add (add.ts): out = clamp(((a << la) + (b << lb) + half) >> r, lo, hi) with r <= 31, half =
 * 2^(r-1) (0 when r <= 0; r < 0 shifts left), in int32 lanes. It first finds max|a| and max|b| and returns -1
 * without writing when the sum could leave int32 (the caller then runs the TypeScript
 * kernel), else 0. On integers this is the kernel's float64 floor((sum + half) * 2^-r).
 */
EXPORT("add_shift")
int32_t add_shift(const int32_t *a, const int32_t *b, int n, int la, int lb, int r, int32_t lo, int32_t hi,
                  int32_t *out) {
  v128_t amax = wasm_i32x4_splat(0), amin = amax, bmax = amax, bmin = amax;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t va = wasm_v128_load(a + i), vb = wasm_v128_load(b + i);
    amax = wasm_i32x4_max(amax, va);
    amin = wasm_i32x4_min(amin, va);
    bmax = wasm_i32x4_max(bmax, vb);
    bmin = wasm_i32x4_min(bmin, vb);
  }
  Range ra = {0, 0}, rb = {0, 0};
  for (int j = i; j < n; j++) {
    ra.max = a[j] > ra.max ? a[j] : ra.max;
    ra.min = a[j] < ra.min ? a[j] : ra.min;
    rb.max = b[j] > rb.max ? b[j] : rb.max;
    rb.min = b[j] < rb.min ? b[j] : rb.min;
  }
  ra = range_of(ra, amax, amin);
  rb = range_of(rb, bmax, bmin);
  const double A = ra.max > -(double)ra.min ? ra.max : -(double)ra.min;
  const double B = rb.max > -(double)rb.min ? rb.max : -(double)rb.min;
  if (r < 0) { /* a left shift of the sum: fold it into the input shifts */
    la -= r;
    lb -= r;
    r = 0;
  }
  if (la > 30 || lb > 30 || r > 31) return -1;
  const int32_t half = r > 0 ? 1 << (r - 1) : 0;
  if (A * (double)(1 << la) + B * (double)(1 << lb) + half > 2147483647.0) return -1;
  const v128_t vhalf = wasm_i32x4_splat(half), vlo = wasm_i32x4_splat(lo), vhi = wasm_i32x4_splat(hi);
  for (i = 0; i + 4 <= n; i += 4) {
    const v128_t s = wasm_i32x4_add(shl_lanes(wasm_v128_load(a + i), la), shl_lanes(wasm_v128_load(b + i), lb));
    const v128_t m = shr_lanes(wasm_i32x4_add(s, vhalf), r);
    wasm_v128_store(out + i, wasm_i32x4_max(wasm_i32x4_min(m, vhi), vlo));
  }
  for (; i < n; i++) {
    const int32_t m = (a[i] * (1 << la) + b[i] * (1 << lb) + half) >> r;
    out[i] = m < lo ? lo : m > hi ? hi : m;
  }
  return 0;
}
