import { runJob } from '../run-job.js';
import { progress } from '../progress.js';
import type { Command } from '../command.js';
import { jsonText, terminalSafe } from '../format.js';

export const evaluateCommand: Command = {
  name: 'evaluate',
  usage:
    'fxpq evaluate --model M.onnx --data DIR [--run RUN] [--engine sim|int] [--classes C] [--preprocess SPEC] [--split all|calib|eval] [--save-logits FILE] [--json]',
  summary: 'top-1 / top-5 of the float model, and of the fixed-point one with --run',
  options: {
    model: { type: 'string' },
    data: { type: 'string' },
    classes: { type: 'string' },
    preprocess: { type: 'string' },
    split: { type: 'string' },
    run: { type: 'string' },
    engine: { type: 'string' },
    'save-logits': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run({ positionals, values, out, err }) {
    if (positionals.length > 0) return { usageError: 'evaluate takes options only.' };
    if (typeof values['model'] !== 'string' || typeof values['data'] !== 'string')
      return { usageError: 'evaluate needs --model and --data.' };
    const split = (values['split'] as string | undefined) ?? 'all';
    if (!['all', 'calib', 'eval'].includes(split)) return { usageError: '--split must be all, calib or eval.' };
    const engine = values['engine'] as string | undefined;
    if (engine !== undefined && engine !== 'sim' && engine !== 'int')
      return { usageError: '--engine must be sim or int.' };
    if (engine !== undefined && values['run'] === undefined) return { usageError: '--engine needs --run RUN.' };
    const bar = progress('Evaluating', err);
    const r = await runJob(
      'evaluate',
      {
        modelPath: values['model'],
        dataPath: values['data'],
        run: values['run'] as string | undefined,
        engine: engine as 'sim' | 'int' | undefined,
        classes: values['classes'] as string | undefined,
        preprocess: values['preprocess'] as string | undefined,
        split: split as 'all' | 'calib' | 'eval',
        saveLogits: values['save-logits'] as string | undefined,
      },
      (p) => bar.update(p.done, p.total),
    );
    bar.finish();
    if (values['json']) {
      const doc = {
        n: r.n,
        fp: r.fp,
        ...(r.quant ? { quant: r.quant } : {}),
        perClass: r.perClass,
        classes: r.classes,
        preprocess: r.preprocess,
        skipped: r.skipped,
      };
      out.write(jsonText(doc));
      return 0;
    }
    const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;
    const lines = [
      `Images      ${r.n}${r.skipped.length ? ` (${r.skipped.length} skipped)` : ''}`,
      `Classes     ${r.classes.count}, order from ${r.classes.source}`,
      `Preprocess  ${terminalSafe(String(r.preprocess))}`,
      `FP32 top-1  ${pct(r.fp.top1)}   top-5 ${pct(r.fp.top5)}`,
    ];
    if (r.quant) {
      lines.push(`Fixed-point top-1  ${pct(r.quant.top1)}   top-5 ${pct(r.quant.top5)}   (${engine ?? 'sim'} engine)`);
      lines.push(`Agreement with FP32  ${pct(r.quant.agreement)}`);
    }
    lines.push(`Per class top-1${r.quant ? ' (fixed point)' : ''}:`);
    for (const [c, v] of Object.entries(r.perClass))
      lines.push(`  ${terminalSafe(c).padEnd(16)} ${(100 * v.top1).toFixed(1).padStart(5)} %  (${v.n})`);
    if (r.skipped.length)
      lines.push('Skipped:', ...r.skipped.map((s) => `  ${terminalSafe(s.path)}: ${terminalSafe(s.reason)}`));
    out.write(lines.join('\n') + '\n');
    return 0;
  },
};
