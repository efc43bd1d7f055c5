/**
 * Paired prediction-error statistics of teacher and student on the same images (spec §5):
 * n10 images the teacher gets right and the student wrong, n01 the reverse. The drop is
 * (n10 - n01) / n and its upper bound drop + z sqrt(n10 + n01) / n; accepting on the bound
 * keeps a search from overshooting its budget on held-out images.
 */

export interface PairedCounts {
  n: number;
  n10: number;
  n01: number;
  /** Student top-1 correct. */
  correct: number;
  /** Mean KL(softmax(teacher / T) || softmax(student / T)). */
  kl: number;
  /** Set when the evaluation stopped before its last image because the outcome was decided. */
  decided?: 'accept' | 'reject';
  /** Images of `n` whose counts came from an earlier evaluation of the same assignment (not rerun). */
  reused?: number;
}

export function dropOf(c: PairedCounts): number {
  return c.n === 0 ? 0 : (c.n10 - c.n01) / c.n;
}

/** The paired standard error of the drop, sqrt(n10 + n01) / n: only images that change count. */
export function dropStandardError(c: Pick<PairedCounts, 'n' | 'n10' | 'n01'>): number {
  return c.n === 0 ? 0 : Math.sqrt(c.n10 + c.n01) / c.n;
}

// The bounds keep their own arithmetic, (z * sqrt) / n, so that a resumed search decides exactly as before.
export function dropUpperBound(c: PairedCounts, z: number): number {
  return c.n === 0 ? 0 : dropOf(c) + (z * Math.sqrt(c.n10 + c.n01)) / c.n;
}

export function dropLowerBound(c: PairedCounts, z: number): number {
  return c.n === 0 ? 0 : dropOf(c) - (z * Math.sqrt(c.n10 + c.n01)) / c.n;
}

/**
 * Whether the bound on all `total` images is already decided by the first `c.n` of them,
 * whatever the student does on the rest: on the `teacherRight` remaining images the teacher
 * gets right the student can only add to n10, on the others only to n01. Deciding here gives
 * the same answer as evaluating every image (sequential testing without approximation).
 */
export function decidedAgainst(
  c: PairedCounts,
  total: number,
  teacherRight: number,
  z: number,
  eps: number,
): 'accept' | 'reject' | undefined {
  const rest = total - c.n;
  if (rest <= 0) return undefined;
  const teacherWrong = rest - teacherRight;
  const bound = (n10: number, n01: number): number => (n10 - n01 + z * Math.sqrt(n10 + n01)) / total;
  // Worst case: the student misses every remaining image the teacher gets right (for z > 1 the
  // bound can also rise with n01, so every corner of the rest is checked).
  const worst = Math.max(bound(c.n10 + teacherRight, c.n01), bound(c.n10 + teacherRight, c.n01 + teacherWrong));
  if (worst <= eps) return 'accept';
  // Best case: -k + z sqrt(s + k) is concave in k, so its minimum over 0..teacherWrong is at an end.
  const best = Math.min(bound(c.n10, c.n01), bound(c.n10, c.n01 + teacherWrong));
  return best > eps ? 'reject' : undefined;
}

/** log-softmax of a row, in float64. */
function logSoftmax(row: ArrayLike<number>, start: number, width: number, t: number, out: Float64Array): void {
  let max = -Infinity;
  for (let i = 0; i < width; i++) max = Math.max(max, row[start + i]! / t);
  let sum = 0;
  for (let i = 0; i < width; i++) sum += Math.exp(row[start + i]! / t - max);
  const log = Math.log(sum) + max;
  for (let i = 0; i < width; i++) out[i] = row[start + i]! / t - log;
}

/** KL(teacher || student) of one image's logits at temperature t. */
export function klDivergence(
  teacher: ArrayLike<number>,
  student: ArrayLike<number>,
  start: number,
  width: number,
  t = 1,
): number {
  const p = new Float64Array(width);
  const q = new Float64Array(width);
  logSoftmax(teacher, start, width, t, p);
  logSoftmax(student, start, width, t, q);
  let kl = 0;
  for (let i = 0; i < width; i++) kl += Math.exp(p[i]!) * (p[i]! - q[i]!);
  return kl;
}
