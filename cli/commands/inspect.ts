import type { InspectReport } from '../../api/contract.js';
import { inspectModelFile } from '../../services/models.js';
import { formatBytes, formatCount, formatScaled, jsonText, shapeText, table, terminalSafe } from '../format.js';
import type { Command } from '../command.js';

export const inspectCommand: Command = {
  name: 'inspect',
  usage: 'fxpq inspect MODEL.onnx [--json]',
  summary: 'operators, layers with shapes, parameters, MACs, float memory',
  options: { json: { type: 'boolean' } },
  async run({ positionals, values, out }) {
    if (positionals.length !== 1) return { usageError: 'inspect takes exactly one model file.' };
    const report = await inspectModelFile(positionals[0]!);
    out.write(values['json'] ? jsonText(report) : renderInspect(report));
    return 0;
  },
};

export function renderInspect(r: InspectReport): string {
  const m = r.model;
  const t = terminalSafe;
  const lines = [
    `Model      ${t(m.path)}`,
    `Producer   ${t(m.producer) || 'unknown'}, opset ${m.opset}, IR version ${m.irVersion}`,
    ...m.inputs.map((i) => `Input      ${t(i.name)} ${t(shapeText(i.shape))} ${i.layout.toUpperCase()}`),
    ...m.outputs.map((o) => `Output     ${t(o.name)} ${t(shapeText(o.shape))}`),
    `Batch      ${m.fixedBatch === null ? 'dynamic' : `fixed at ${m.fixedBatch}`}`,
    `Operators  ${Object.entries(r.ops)
      .map(([op, n]) => `${t(op)} ${n}`)
      .join(', ')}`,
    '',
    'Layers of the canonical graph (BatchNorm folded, Relu/Clip fused), for one image:',
    table(
      [
        ['#', 'layer', 'op', 'input', 'output', 'params', 'MACs'],
        ...r.layers.map((l, i) => [
          String(i + 1),
          t(l.name),
          t(l.activation ? `${l.op}+${l.activation}` : l.op),
          t(shapeText(l.inputShape)),
          t(shapeText(l.outputShape)),
          formatCount(l.params),
          formatCount(l.macs),
        ]),
      ],
      [true, false, false, false, false, true, true],
    ),
    '',
    `Parameters ${formatCount(r.totals.params)}`,
    `MACs       ${formatScaled(r.totals.macs)} (${formatCount(r.totals.macs)}) per image`,
    `FP32 size  ${formatBytes(r.totals.fp32Bytes)}`,
  ];
  return lines.join('\n') + '\n';
}
