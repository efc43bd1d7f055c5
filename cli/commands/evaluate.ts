import { evaluateFloat } from '../../services/evaluate.js';
import { progress } from '../progress.js';
import type { Command } from '../command.js';

export const evaluateCommand: Command = {
  name: 'evaluate',
  usage:
    'fxpq evaluate --model M.onnx --data DIR [--classes C] [--preprocess SPEC] [--split all|calib|eval] [--save-logits FILE] [--json]',
  summary: 'top-1 / top-5 / per-class accuracy of the float model',
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
    if (values['run'] !== undefined || values['engine'] !== undefined) {
      err.write(
        'fxpq evaluate: --run and --engine need the fixed-point engine, which is not built yet; this evaluates the float model only.\n',
      );
      return 1;
    }
    const bar = progress('Evaluating', err);
    const r = await evaluateFloat({
      modelPath: values['model'],
      dataPath: values['data'],
      classes: values['classes'] as string | undefined,
      preprocess: values['preprocess'] as string | undefined,
      split: split as 'all' | 'calib' | 'eval',
      saveLogits: values['save-logits'] as string | undefined,
      onProgress: (d, t) => bar.update(d, t),
    });
    bar.finish();
    if (values['json']) {
      out.write(
        JSON.stringify(
          { n: r.n, fp: r.fp, perClass: r.perClass, classes: r.classes, preprocess: r.preprocess, skipped: r.skipped },
          null,
          2,
        ) + '\n',
      );
    } else {
      out.write(
        `Images      ${r.n}${r.skipped.length ? ` (${r.skipped.length} skipped)` : ''}\n` +
          `Classes     ${r.classes.count}, order from ${r.classes.source}\n` +
          `Preprocess  ${r.preprocess}\n` +
          `FP32 top-1  ${(100 * r.fp.top1).toFixed(2)} %\n` +
          `FP32 top-5  ${(100 * r.fp.top5).toFixed(2)} %\n` +
          `Per class top-1:\n${Object.entries(r.perClass)
            .map(([c, v]) => `  ${c.padEnd(16)} ${(100 * v.top1).toFixed(1).padStart(5)} %  (${v.n})`)
            .join('\n')}\n` +
          (r.skipped.length ? `Skipped:\n${r.skipped.map((s) => `  ${s.path}: ${s.reason}`).join('\n')}\n` : ''),
      );
    }
    return 0;
  },
};
