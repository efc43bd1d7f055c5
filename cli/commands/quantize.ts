import { runJob } from '../run-job.js';
import type { EqualizeMode, RunReport } from '../../api/contract.js';
import { numberOption } from '../numbers.js';
import { progress, type Progress } from '../progress.js';
import type { Command } from '../command.js';
import { jsonText } from '../format.js';

export const quantizeCommand: Command = {
  name: 'quantize',
  usage:
    'fxpq quantize --model M.onnx --data DIR --out RUN (--budget PP | --uniform B [--weight-bits W]) [--rounding nearest|optimized] [--classes C] [--preprocess SPEC] [--calib N] [--eval N] [--seed S] [--strategy schedule|sensitivity|tradeoff] [--slice N] [--z Z] [--final-z Z] [--workers K] [--no-distill] [--no-bias-correction] [--no-frac-choice] [--equalize depthwise|all|off] [--previous-checkpoint | --restart] [--json]',
  summary: 'the smallest mixed-precision fixed-point network within an accuracy budget (resumable)',
  options: {
    model: { type: 'string' },
    data: { type: 'string' },
    out: { type: 'string' },
    classes: { type: 'string' },
    preprocess: { type: 'string' },
    budget: { type: 'string' },
    uniform: { type: 'string' },
    'weight-bits': { type: 'string' },
    rounding: { type: 'string' },
    calib: { type: 'string' },
    eval: { type: 'string' },
    seed: { type: 'string' },
    workers: { type: 'string' },
    strategy: { type: 'string' },
    slice: { type: 'string' },
    z: { type: 'string' },
    'final-z': { type: 'string' },
    'no-distill': { type: 'boolean' },
    'no-frac-choice': { type: 'boolean' },
    'no-bias-correction': { type: 'boolean' },
    equalize: { type: 'string' },
    'previous-checkpoint': { type: 'boolean' },
    restart: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run({ positionals, values, out, err }) {
    if (positionals.length > 0) return { usageError: 'quantize takes options only.' };
    for (const name of ['model', 'data', 'out'])
      if (typeof values[name] !== 'string') return { usageError: `quantize needs --${name}.` };
    const numbers: Record<string, number | undefined> = {};
    for (const [name, min, max] of [
      ['uniform', 2, 16],
      ['weight-bits', 2, 16],
      ['calib', 1, 10_000_000],
      ['eval', 1, 10_000_000],
      ['seed', 0, 2 ** 31 - 1],
      ['slice', 1, 10_000_000],
      ['workers', 1, 256],
    ] as const) {
      const n = numberOption(values, name, { integer: true, min, max });
      if (typeof n === 'object') return n;
      numbers[name] = n;
    }
    const budget = numberOption(values, 'budget', { min: 0, max: 100 });
    if (typeof budget === 'object') return budget;
    const z = numberOption(values, 'z', { min: 0, max: 10 });
    if (typeof z === 'object') return z;
    const finalZ = numberOption(values, 'final-z', { min: 0, max: 10 });
    if (typeof finalZ === 'object') return finalZ;
    if (budget === undefined && numbers['uniform'] === undefined)
      return { usageError: 'quantize needs --budget PP or --uniform B.' };
    if (numbers['weight-bits'] !== undefined && numbers['uniform'] === undefined)
      return { usageError: '--weight-bits goes with --uniform B.' };
    const rounding = values['rounding'] as string | undefined;
    if (rounding !== undefined && !['nearest', 'optimized'].includes(rounding))
      return { usageError: '--rounding must be nearest or optimized.' };
    const equalize = values['equalize'] as string | undefined;
    if (equalize !== undefined && !['depthwise', 'all', 'off'].includes(equalize))
      return { usageError: '--equalize must be depthwise, all or off.' };
    const strategy = values['strategy'] as string | undefined;
    if (strategy !== undefined && !['schedule', 'sensitivity', 'tradeoff'].includes(strategy))
      return { usageError: '--strategy must be schedule, sensitivity or tradeoff.' };
    if (values['previous-checkpoint'] && values['restart'])
      return { usageError: '--previous-checkpoint and --restart exclude each other.' };
    const checkpoint = values['restart'] ? 'restart' : values['previous-checkpoint'] ? 'previous' : 'latest';
    const bars = new Map<string, Progress>();
    const labels: Record<string, string> = {
      statistics: 'Statistics',
      teacher: 'Teacher logits',
      rounding: 'Optimized rounding (layers)',
      search: 'Search (structures frozen)',
      evaluation: 'Held-out evaluation',
    };
    const report = await runJob(
      'quantize',
      {
        modelPath: values['model'] as string,
        dataPath: values['data'] as string,
        out: values['out'] as string,
        classes: values['classes'] as string | undefined,
        preprocess: values['preprocess'] as string | undefined,
        budget,
        uniform: numbers['uniform'],
        weightBits: numbers['weight-bits'],
        rounding: rounding as 'nearest' | 'optimized' | undefined,
        calib: numbers['calib'],
        eval: numbers['eval'],
        seed: numbers['seed'],
        slice: numbers['slice'],
        z,
        finalZ,
        ...(numbers['workers'] !== undefined ? { ortThreads: numbers['workers'] } : {}),
        strategy: strategy as 'schedule' | 'sensitivity' | 'tradeoff' | undefined,
        distill: values['no-distill'] ? false : undefined,
        biasCorrection: values['no-bias-correction'] ? false : undefined,
        fracChoice: values['no-frac-choice'] ? false : undefined,
        equalize: equalize as EqualizeMode | undefined,
        checkpoint,
      },
      (e) => {
        let bar = bars.get(e.stage);
        if (!bar) {
          for (const b of bars.values()) b.finish();
          bar = progress(labels[e.stage] ?? e.stage, err);
          bars.set(e.stage, bar);
        }
        const p = e.search;
        const detail = p
          ? `${p.phase} pass ${p.pass + 1}, step ${p.step}, drop ${p.drop.toFixed(2)} pt, ${p.reduction.toFixed(2)}x`
          : undefined;
        bar.update(e.done, e.total, detail);
      },
    );
    for (const b of bars.values()) b.finish();
    if (values['json']) {
      out.write(jsonText(report));
      return 0;
    }
    const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;
    out.write(
      [
        `Run written to ${values['out']} (config.json, report.json)`,
        `Images         ${report.data.calib} calibration, ${report.data.eval} evaluation (seed ${report.data.seed})`,
        `FP32 top-1     ${pct(report.fp.top1)}   top-5 ${pct(report.fp.top5)}`,
        `Fixed top-1    ${pct(report.quant.top1)}   top-5 ${pct(report.quant.top5)}   agreement ${pct(report.quant.agreement)}`,
        `Drop           ${(100 * (report.fp.top1 - report.quant.top1)).toFixed(2)} points${
          report.quant.dropStandardError !== undefined
            ? ` on the held-out split (paired standard error ${(100 * report.quant.dropStandardError).toFixed(2)}: ${report.quant.n10} images lost, ${report.quant.n01} gained)`
            : ''
        }`,
        `Memory         ${report.memory.reduction.toFixed(2)}x smaller (weights ${report.memory.weightsReduction.toFixed(2)}x), average bits W ${report.memory.avgBitsWeights.toFixed(2)}, A ${report.memory.avgBitsActivations.toFixed(2)}`,
        `Search         ${report.search.evaluations} evaluations, ${report.search.seconds.toFixed(1)} s${report.search.fp32Passes !== undefined ? `, ${report.search.fp32Passes.toFixed(0)} FP32 passes over the calibration split` : ''}`,
        ...(report.search.finalCheck ? [`Final check    ${finalCheckLine(report.search.finalCheck)}`] : []),
        ...(report.rounding
          ? [
              `Rounding       ${report.rounding.method}${report.rounding.method === 'optimized' ? ` (${report.rounding.structureFormats} structure formats, ${report.rounding.seconds.toFixed(1)} s)` : ''}`,
            ]
          : []),
        '',
      ].join('\n'),
    );
    return 0;
  },
};

/** The final check on the calibration split, as one line of the summary. */
function finalCheckLine(f: NonNullable<RunReport['search']['finalCheck']>): string {
  const at = `drop ${f.drop.toFixed(2)}, bound ${f.bound.toFixed(2)}${f.z !== undefined ? ` at z = ${f.z}` : ''} on the calibration split (budget ${f.budget})`;
  if (f.within === false) return `${at}: no state met the budget at this z; the result is kept`;
  return f.rolledBack ? `${at}, after rolling back to the last state within the budget` : at;
}
