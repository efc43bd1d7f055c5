import { datasetInfo, isImportedDataset, openDataset, type DatasetLayout } from '../../services/datasets.js';
import { runJob } from '../run-job.js';
import { numberOption } from '../numbers.js';
import { jsonText, table } from '../format.js';
import { progress } from '../progress.js';
import type { Command } from '../command.js';

const LAYOUTS = ['auto', 'imagefolder', 'imagenet-val', 'csv'];

export const datasetCommand: Command = {
  name: 'dataset',
  usage:
    'fxpq dataset import SRC --out DIR [--layout auto|imagefolder|imagenet-val|csv] [--labels FILE] [--classes imagenet1k|FILE] [--synsets FILE] [--copy] [--calib N] [--eval N] [--seed S] | fxpq dataset info DIR [--json]',
  summary: 'validate and index a dataset; counts, skipped files and duplicates',
  options: {
    out: { type: 'string' },
    layout: { type: 'string' },
    labels: { type: 'string' },
    classes: { type: 'string' },
    synsets: { type: 'string' },
    copy: { type: 'boolean' },
    calib: { type: 'string' },
    eval: { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run({ positionals, values, out, err }) {
    const [sub, path, ...extra] = positionals;
    if (!path || extra.length > 0) return { usageError: 'dataset needs a subcommand (import or info) and one path.' };
    if (sub === 'info') {
      if (!(await isImportedDataset(path)))
        err.write(
          `${path} is not an imported dataset (no dataset.json): its files are indexed on the fly, without decoding them. Run fxpq dataset import to check every image.\n`,
        );
      const info = datasetInfo(await openDataset(path));
      if (values['json']) out.write(jsonText(info));
      else {
        out.write(`${info.images} images in ${info.classes} classes\n`);
        out.write(
          table(
            [['class', 'images'], ...Object.entries(info.perClass).map(([c, n]) => [c, String(n)])],
            [false, true],
          ) + '\n',
        );
        if (info.skipped.length)
          out.write(
            `\nSkipped ${info.skipped.length} files:\n${info.skipped.map((s) => `  ${s.path}: ${s.reason}`).join('\n')}\n`,
          );
        if (info.duplicates.length)
          out.write(
            `\nDuplicates (the second of each pair is left out):\n${info.duplicates.map(([a, b]) => `  ${a} = ${b}`).join('\n')}\n`,
          );
      }
      return 0;
    }
    if (sub !== 'import') return { usageError: `unknown dataset subcommand "${sub}" (import or info).` };
    if (typeof values['out'] !== 'string') return { usageError: 'dataset import needs --out DIR.' };
    const layout = (values['layout'] as string | undefined) ?? 'auto';
    if (!LAYOUTS.includes(layout)) return { usageError: `--layout must be one of ${LAYOUTS.join(', ')}.` };
    const numbers: Record<string, number | undefined> = {};
    for (const name of ['calib', 'eval', 'seed']) {
      const n = numberOption(values, name, { integer: true, min: 0, max: name === 'seed' ? 2 ** 31 - 1 : 10_000_000 });
      if (typeof n === 'object') return n;
      numbers[name] = n;
    }
    const bar = progress('Checking images', err);
    const summary = await runJob(
      'import',
      {
        source: path,
        out: values['out'],
        options: {
          layout: layout as DatasetLayout | 'auto',
          labels: values['labels'] as string | undefined,
          classes: values['classes'] as string | undefined,
          synsets: values['synsets'] as string | undefined,
          copy: values['copy'] === true,
          calib: numbers['calib'],
          eval: numbers['eval'],
          seed: numbers['seed'],
        },
      },
      (p) => bar.update(p.done + 1, p.total),
    );
    bar.finish();
    const info = summary;
    out.write(
      `Imported ${info.images} images in ${info.classes} classes (${summary.layout}, class order: ${summary.classSource ?? 'decided at use: model or sorted folder names'}) into ${values['out']}/dataset.json\n` +
        `Split (seed ${summary.split!.seed}): ${summary.split!.calib} calibration, ${summary.split!.eval} evaluation images\n` +
        (info.skipped.length
          ? `Skipped ${info.skipped.length} files:\n${info.skipped.map((s) => `  ${s.path}: ${s.reason}`).join('\n')}\n`
          : '') +
        (info.duplicates.length
          ? `Duplicates left out: ${info.duplicates.map(([a, b]) => `${b} (same as ${a})`).join(', ')}\n`
          : ''),
    );
    return 0;
  },
};
