import { resolve } from 'node:path';
import { runDemo } from '../../services/demo.js';
import { progress, type Progress } from '../progress.js';
import type { Command } from '../command.js';
import { jsonText } from '../format.js';

export const demoCommand: Command = {
  name: 'demo',
  usage: 'fxpq demo [--out DIR] [--json]',
  summary: 'the whole pipeline on the built-in demo model and images (a few minutes on 2 cores)',
  options: { out: { type: 'string' }, json: { type: 'boolean' } },
  async run({ positionals, values, out, err }) {
    if (positionals.length > 0) return { usageError: 'demo takes no positional arguments.' };
    const dir = resolve((values['out'] as string | undefined) ?? 'fxpq-demo');
    let bar: Progress | undefined;
    let stage = '';
    const summary = await runDemo(dir, (s, e) => {
      if (s === 'import' && e) return;
      const key = e ? `${s}:${e.stage}` : s;
      if (key !== stage) {
        bar?.finish();
        bar = e ? progress(`Demo ${e.stage}`, err) : undefined;
        if (!e)
          err.write(
            `Demo: ${s === 'import' ? 'importing 300 Fashion-MNIST images' : 'checking the integer-only executor'}...\n`,
          );
        stage = key;
      }
      if (e && bar)
        bar.update(
          e.done,
          e.total,
          e.search
            ? `${e.search.phase}, drop ${e.search.drop.toFixed(2)} pt, ${e.search.reduction.toFixed(2)}x`
            : undefined,
        );
    });
    bar?.finish();
    const r = summary.report;
    if (values['json']) {
      out.write(jsonText(summary));
      return 0;
    }
    const pct = (x: number): string => `${(100 * x).toFixed(1)} %`;
    out.write(
      [
        '',
        `FxPQ demo: fmnist_resnet20 on ${r.data.calib} calibration / ${r.data.eval} held-out Fashion-MNIST images, budget ${r.budget} point`,
        '',
        '| | top-1 (held out) | memory | avg bits W / A |',
        '|---|---:|---:|---:|',
        `| float32 | ${pct(r.fp.top1)} | 1.00x | 32 / 32 |`,
        `| fixed point (simulated) | ${pct(r.quant.top1)} | ${r.memory.reduction.toFixed(2)}x | ${r.memory.avgBitsWeights.toFixed(2)} / ${r.memory.avgBitsActivations.toFixed(2)} |`,
        `| fixed point (integer-only executor) | ${pct(summary.integer.top1)} | | |`,
        '',
        `Drop ${(100 * (r.fp.top1 - r.quant.top1)).toFixed(2)} points; search: ${r.search.evaluations} evaluations in ${r.search.seconds.toFixed(0)} s. Run folder: ${summary.out}/run`,
        '',
      ].join('\n'),
    );
    return 0;
  },
};
