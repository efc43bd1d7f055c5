/** Bit packing at exactly b bits per value: little-endian bit order, two's complement for signed values. */

export function packBits(values: ArrayLike<number>, bits: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((values.length * bits) / 8));
  const mask = 2 ** bits;
  let bit = 0;
  for (let i = 0; i < values.length; i++) {
    let v = values[i]!;
    if (v < 0) v += mask; // two's complement in `bits` bits
    for (let k = 0; k < bits; k++) {
      if (Math.floor(v / 2 ** k) % 2 === 1) out[bit >> 3]! |= 1 << (bit & 7);
      bit++;
    }
  }
  return out;
}

export function unpackBits(bytes: Uint8Array, count: number, bits: number, signed: boolean): Int32Array {
  const out = new Int32Array(count);
  let bit = 0;
  for (let i = 0; i < count; i++) {
    let v = 0;
    for (let k = 0; k < bits; k++) {
      if ((bytes[bit >> 3]! >> (bit & 7)) & 1) v += 2 ** k;
      bit++;
    }
    out[i] = signed && v >= 2 ** (bits - 1) ? v - 2 ** bits : v;
  }
  return out;
}
