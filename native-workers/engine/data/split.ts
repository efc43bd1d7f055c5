/** Calibration / evaluation splits: stratified by class, seeded, disjoint. */

/** mulberry32: a small, well-distributed seeded generator (the split must be reproducible). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Split {
  seed: number;
  /** Indices into the dataset's image list, ascending. */
  calib: number[];
  eval: number[];
}

/**
 * Take `calibCount` images for calibration, spread over the classes in proportion to their
 * sizes, and up to `evalCount` of the rest for evaluation (all the rest when null).
 */
export function stratifiedSplit(
  labels: readonly number[],
  calibCount: number,
  evalCount: number | null,
  seed: number,
): Split {
  const rand = seededRandom(seed);
  const byClass = new Map<number, number[]>();
  labels.forEach((l, i) => {
    const list = byClass.get(l) ?? [];
    list.push(i);
    byClass.set(l, list);
  });
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  for (const c of classes) {
    const list = byClass.get(c)!;
    for (let i = list.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [list[i], list[j]] = [list[j]!, list[i]!];
    }
  }
  const take = (count: number, pools: Map<number, number[]>): number[] => {
    const total = [...pools.values()].reduce((s, l) => s + l.length, 0);
    const want = Math.min(count, total);
    // Largest-remainder apportionment: every class gets its proportional share.
    const quotas = classes.map((c) => ({ c, exact: (want * pools.get(c)!.length) / Math.max(total, 1) }));
    const counts = new Map(quotas.map((q) => [q.c, Math.floor(q.exact)]));
    let left = want - [...counts.values()].reduce((s, v) => s + v, 0);
    for (const q of [...quotas].sort(
      (a, b) => b.exact - Math.floor(b.exact) - (a.exact - Math.floor(a.exact)) || a.c - b.c,
    )) {
      if (left <= 0) break;
      if (counts.get(q.c)! < pools.get(q.c)!.length) {
        counts.set(q.c, counts.get(q.c)! + 1);
        left--;
      }
    }
    const picked: number[] = [];
    for (const c of classes) picked.push(...pools.get(c)!.splice(0, counts.get(c)!));
    return picked.sort((a, b) => a - b);
  };
  const calib = take(calibCount, byClass);
  const rest = [...byClass.values()].reduce((s, l) => s + l.length, 0);
  const evalSet = take(evalCount ?? rest, byClass);
  return { seed, calib, eval: evalSet };
}
