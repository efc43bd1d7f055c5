/**
 * A model's names reach the terminal (issue 30): node names, input names and the producer of a
 * hostile model, printed by `fxpq inspect` and in its error sentences, carry no escape sequence
 * (OSC title, clear screen), no BEL and no C1 control character.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonText, terminalSafe } from '../../cli/format.js';
import { runCli } from '../helpers/cli.js';
import { GraphBuilder, int } from '../helpers/graph-builder.js';

const tmp = mkdtempSync(join(tmpdir(), 'fxpq-terminal-'));
const EVIL = '\u001b]0;pwned\u0007\u001b[2J';
// ESC, BEL, the other C0 controls but line feed and tab, DEL, and C1.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

function hostileModel(name: string, unsupported: boolean): string {
  const b = new GraphBuilder();
  const x = b.input(`${EVIL}x`, [1, 4]);
  const g = b.node('Gemm', [x, b.weight([4, 4], 1)]);
  const y = unsupported ? b.node('LRN', [g], { size: int(3) }) : g;
  b.output(y, [1, 4]);
  const graph = b.graph();
  graph.producer = `${EVIL}maker\u009b31m`;
  for (const [i, node] of graph.nodes.entries()) node.name = `${EVIL}node${i}\u0085\r`;
  const path = join(tmp, name);
  writeFileSync(path, b.bytes());
  return path;
}

describe('text from a model on the terminal', () => {
  it('terminalSafe removes escape sequences and control characters, keeping line feeds and tabs', () => {
    expect(terminalSafe(`a${EVIL}b\tc\nd\u009b2Je\u0000\u007f\r`)).toBe('ab\tc\nd2Je');
    expect(terminalSafe('x\ry', true)).toBe('x\ry');
    expect(terminalSafe('plain Conv_1 [1,3,224,224] é 名')).toBe('plain Conv_1 [1,3,224,224] é 名');
    const doc = { name: `${EVIL}\u009b` };
    expect(JSON.parse(jsonText(doc))).toEqual(doc); // the same document...
    expect(jsonText(doc)).not.toMatch(CONTROL); // ...with nothing a terminal acts on
  });

  it('fxpq inspect prints a hostile model’s names without ESC, BEL or C1 bytes', async () => {
    const path = hostileModel('hostile.onnx', false);
    for (const args of [
      ['inspect', path],
      ['inspect', path, '--json'],
    ]) {
      const r = await runCli(args);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('node0');
      expect(r.stdout).not.toMatch(CONTROL);
      expect(r.stderr).not.toMatch(CONTROL);
    }
  });

  it('an error sentence naming a hostile node prints no ESC, BEL or C1 bytes', async () => {
    const path = hostileModel('hostile-unsupported.onnx', true);
    const r = await runCli(['inspect', path]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/LRN \(node (\]0;pwned)?node1/);
    expect(r.stdout + r.stderr).not.toMatch(CONTROL);
  });
});
