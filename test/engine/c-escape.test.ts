/**
 * The one escaper for text that reaches generated C (issue 30, item 1): every comment and line
 * delimiter, in every position of a name, cannot end the comment it is written into, and gcc
 * (with trigraphs on) sees nothing but the comment.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cCommentText, cIdentifierPart, cInt, C_COMMENT_MAX } from '../../native-workers/engine/export/c-text.js';

const DELIMITERS = [
  '*/',
  '/*',
  '**//',
  '*\n/',
  '*\r/',
  '//',
  '\\\n',
  '\\\r\n',
  '*\\\n/',
  '??/',
  '??/\n',
  '*??/\n/',
  '\n',
  '\r',
  '\u2028',
  '\0',
  '\t',
  '\f',
  '\v',
  '"',
  "'",
  '#',
  '%:',
  '<:',
  'é',
  '\u00a0',
  '\u{1F600}',
  '\uD800',
  '*',
  '/',
];

/** Each delimiter at the start, the end and in the middle of a name, and pairs of them around code. */
function payloads(): string[] {
  const out: string[] = [];
  for (const d of DELIMITERS) {
    out.push(d, `${d}x`, `x${d}`, `x${d}y`, `${d}${d}`);
    for (const e of DELIMITERS)
      out.push(`X ${d} { extern int system(const char *); system("touch /tmp/fxpq-pwn"); } ${e}`);
  }
  return out;
}

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-cescape-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const hasGcc = (() => {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('cCommentText', () => {
  it('leaves only printable ASCII without *, /, \\ or ? for every delimiter in every position', () => {
    const all = payloads();
    expect(all.length).toBeGreaterThan(1000);
    for (const p of all) {
      const s = cCommentText(p);
      expect(s).toMatch(/^[\x20-\x7e]*$/);
      expect(s).not.toMatch(/[*/\\?]/);
      // Wrapped as the emitter writes it: one comment, on one line, ending where it should.
      const comment = `/* ${s} */`;
      expect(comment.indexOf('*/')).toBe(comment.length - 2);
      expect(comment.lastIndexOf('/*')).toBe(0);
    }
  });

  it('caps a long name, and keeps ordinary names readable', () => {
    expect(cCommentText('conv1/Conv_output_0')).toBe('conv1_Conv_output_0');
    expect(cCommentText('Convolution28')).toBe('Convolution28');
    const long = cCommentText('a'.repeat(10_000));
    expect(long.length).toBe(C_COMMENT_MAX);
    expect(long.endsWith('...')).toBe(true);
  });

  it('the old one-pass removal of */ leaves */ behind (why it had to go)', () => {
    expect('X **// y'.replace(/\*\//g, '')).toContain('*/');
  });

  it.skipIf(!hasGcc)('gcc with trigraphs compiles the comments as comments: nothing of a payload becomes code', () => {
    // Every payload would be a compile error (or a call of system) if it escaped its comment.
    const lines = payloads().map((p, i) => `/* ${cCommentText(p)} */ int fxpq_v${i};`);
    const file = join(tmp, 'comments.c');
    writeFileSync(file, `${lines.join('\n')}\nint main(void) { return 0; }\n`);
    execFileSync('gcc', ['-std=c99', '-trigraphs', '-Wall', '-Wextra', '-Werror', '-c', file, '-o', join(tmp, 'c.o')]);
    // And the preprocessed text holds the declarations only: no comment text survives as tokens.
    const pre = execFileSync('gcc', ['-std=c99', '-trigraphs', '-E', '-P', file], { encoding: 'utf8' });
    expect(pre).not.toMatch(/system|extern/);
    expect(pre.match(/int fxpq_v\d+;/g)!.length).toBe(lines.length);
  });

  it.skipIf(!hasGcc)('the same check catches a payload the old removal let through', () => {
    const file = join(tmp, 'old.c');
    const name = 'X **// int fxpq_escaped; /*';
    writeFileSync(file, `/* ${name.replace(/\*\//g, '')} */\nint main(void) { return 0; }\n`);
    const pre = execFileSync('gcc', ['-std=c99', '-E', '-P', file], { encoding: 'utf8' });
    expect(pre).toContain('fxpq_escaped');
  });
});

describe('cIdentifierPart and cInt', () => {
  it('reduce a name to [A-Za-z0-9_] and accept only safe integers', () => {
    for (const p of payloads()) expect(cIdentifierPart(p)).toMatch(/^[A-Za-z0-9_]*$/);
    expect(cInt(12, 'x')).toBe('12');
    expect(cInt(-3, 'x')).toBe('-3');
    for (const bad of ['8', '8, 1) + system("x") + (0', 1.5, NaN, Infinity, 2 ** 60, null, undefined, {}, [8]])
      expect(() => cInt(bad, 'the word length of W */ x')).toThrow(/integer.*damaged/);
  });
});
