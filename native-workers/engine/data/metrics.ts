/** Accuracy from logits: top-k with ties going to the lower class index. */

/** Indices of the k largest values, ties to the lower index. */
export function topK(row: Float32Array | Float64Array, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < row.length; i++) {
    let pos = best.length;
    while (pos > 0 && row[i]! > row[best[pos - 1]!]!) pos--;
    if (pos < k) {
      best.splice(pos, 0, i);
      if (best.length > k) best.pop();
    }
  }
  return best;
}

export class AccuracyMeter {
  private n = 0;
  private top1 = 0;
  private top5 = 0;
  private readonly perClassSeen: number[];
  private readonly perClassRight: number[];

  constructor(readonly classes: number) {
    this.perClassSeen = new Array<number>(classes).fill(0);
    this.perClassRight = new Array<number>(classes).fill(0);
  }

  /** Add a batch: `logits` is batch x classes, row-major. Returns the top-1 predictions. */
  add(logits: Float32Array, labels: ArrayLike<number>): number[] {
    const predictions: number[] = [];
    for (let b = 0; b < labels.length; b++) {
      const row = logits.subarray(b * this.classes, (b + 1) * this.classes);
      const top = topK(row, 5);
      const label = labels[b]!;
      predictions.push(top[0]!);
      this.n++;
      this.perClassSeen[label]!++;
      if (top[0] === label) {
        this.top1++;
        this.perClassRight[label]!++;
      }
      if (top.includes(label)) this.top5++;
    }
    return predictions;
  }

  result(): { n: number; top1: number; top5: number; perClass: { seen: number; top1: number }[] } {
    return {
      n: this.n,
      top1: this.n ? this.top1 / this.n : 0,
      top5: this.n ? this.top5 / this.n : 0,
      perClass: this.perClassSeen.map((seen, i) => ({ seen, top1: seen ? this.perClassRight[i]! / seen : 0 })),
    };
  }
}
