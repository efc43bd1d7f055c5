import { EXPORT_FORMATS, type ExportFormat } from '../../services/export.js';
import { runJob } from '../run-job.js';
import type { Command } from '../command.js';
import { jsonText } from '../format.js';

export const exportCommand: Command = {
  name: 'export',
  usage: 'fxpq export RUN --out DIR [--format qdq,fxpq,c] [--c-weights packed|bytes] [--json]',
  summary: 'standard QDQ ONNX, the packed .fxpq package and integer-only C, each verified',
  options: {
    out: { type: 'string' },
    format: { type: 'string' },
    'c-weights': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run({ positionals, values, out, err }) {
    if (positionals.length !== 1) return { usageError: 'export takes one run folder.' };
    if (typeof values['out'] !== 'string') return { usageError: 'export needs --out DIR.' };
    const cWeights = (values['c-weights'] as string | undefined) ?? 'packed';
    if (cWeights !== 'packed' && cWeights !== 'bytes')
      return { usageError: `--c-weights must be packed (smallest flash) or bytes (fastest), not ${cWeights}.` };
    const formats = ((values['format'] as string | undefined) ?? EXPORT_FORMATS.join(','))
      .split(',')
      .map((f) => f.trim());
    const unknown = formats.filter((f) => !(EXPORT_FORMATS as string[]).includes(f));
    if (unknown.length > 0 || formats.length === 0)
      return {
        usageError: `--format takes ${EXPORT_FORMATS.join(', ')} (comma-separated), not ${unknown.join(', ')}.`,
      };
    const result = await runJob(
      'export',
      { run: positionals[0]!, out: values['out'], formats: formats as ExportFormat[], cWeights },
      (p) => err.write(`Export: ${p.stage}...\n`),
    );
    if (values['json']) {
      out.write(jsonText(result));
      return 0;
    }
    out.write(
      [
        `Exported to ${result.out}:`,
        ...result.files.map((f) => `  ${f.name.padEnd(16)} ${String(f.bytes).padStart(9)} B  ${f.note}`),
        '  report.json, report.html',
        '',
      ].join('\n'),
    );
    return 0;
  },
};
