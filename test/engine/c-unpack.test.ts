/**
 * The C unpacking of weight rows (`fxpq_unpack_run`) against the TypeScript bit packer, at every
 * word length a row can have (1..16 bits signed, 1..15 unsigned) and at runs that start and end
 * mid-byte; the exports test it only at the word lengths its assignments draw.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packBits } from '../../native-workers/engine/export/bit-pack.js';
import { UNPACK_RUN } from '../../native-workers/engine/export/c-runtime.js';
import { seededRandom } from '../../native-workers/engine/data/split.js';

describe('fxpq_unpack_run', () => {
  it('reproduces every packed value at 1..16 bits, from any start', () => {
    const rand = seededRandom(5);
    const cases: string[] = [];
    for (let bits = 1; bits <= 16; bits++) {
      for (const signed of [true, false]) {
        if (!signed && bits > 15) continue;
        const lo = signed ? -(2 ** (bits - 1)) : 0;
        const values = Array.from({ length: 37 }, () => lo + Math.floor(rand() * 2 ** bits));
        const bytes = packBits(values, bits);
        const id = `${signed ? 's' : 'u'}${bits}`;
        cases.push(`  {
    static const uint8_t p[] = {${Array.from(bytes).join(',')}};
    static const int32_t want[] = {${values.join(',')}};
    int16_t got[37];
    uint32_t first, n, i;
    for (first = 0; first < 37; first += 3)
      for (n = 1; first + n <= 37; n += 5) {
        fxpq_unpack_run(p, first, n, ${bits}, ${signed ? 1 : 0}, got);
        for (i = 0; i < n; i++)
          if (got[i] != want[first + i]) { printf("${id} first %u value %u: %d\\n", first, i, got[i]); bad++; }
      }
  }`);
      }
    }
    const dir = mkdtempSync(join(tmpdir(), 'fxpq-unpack-'));
    writeFileSync(
      join(dir, 'unpack.c'),
      `#include <stdint.h>\n#include <stdio.h>\n${UNPACK_RUN}\nint main(void) {\n  int bad = 0;\n${cases.join('\n')}\n  printf("%d wrong\\n", bad);\n  return bad != 0;\n}\n`,
    );
    execFileSync('gcc', [
      '-std=c99',
      '-Wall',
      '-Wextra',
      '-Werror',
      '-O2',
      join(dir, 'unpack.c'),
      '-o',
      join(dir, 'u'),
    ]);
    expect(execFileSync(join(dir, 'u'), { encoding: 'utf8' })).toBe('0 wrong\n');
  });
});
