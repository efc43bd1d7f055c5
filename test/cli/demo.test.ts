import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

describe('fxpq demo', () => {
  it('runs the whole pipeline on the committed demo and ends with its table', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'fxpq-demo-')), 'demo');
    const r = await runCli(['demo', '--out', out, '--json'], { env: { FXPQ_CACHE_DIR: join(out, '..', 'cache') } });
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout) as {
      report: {
        memory: { reduction: number };
        quant: { top1: number };
        fp: { top1: number };
        search: { evaluations: number };
      };
      integer: { top1: number; n: number };
    };
    expect(summary.report.memory.reduction).toBeGreaterThan(6);
    // The integer-only executor reproduces the simulated network's accuracy exactly.
    expect(summary.integer.top1).toBe(summary.report.quant.top1);
    expect(summary.integer.n).toBe(150);
    expect(summary.report.fp.top1 - summary.report.quant.top1).toBeLessThan(0.05);
    const text = await runCli(['demo', '--out', out], { env: { FXPQ_CACHE_DIR: join(out, '..', 'cache') } });
    // Second time: the run folder is complete, so the search is not redone.
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/\| fixed point \(integer-only executor\) \|/);
  }, 900_000);
});
