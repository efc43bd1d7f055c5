/** `report.html`: one self-contained page (inline CSS and SVG, no script, opens offline). */

export interface HtmlReportInput {
  title: string;
  report: {
    budget: number | null;
    data: { calib: number; eval: number; seed: number };
    fp: { top1: number; top5: number };
    quant: { top1: number; top5: number; agreement: number; n10?: number; n01?: number; dropStandardError?: number };
    memory: {
      reduction: number;
      weightsReduction: number;
      avgBitsWeights: number;
      avgBitsActivations: number;
      fp32Bits: number;
      quantBits: number;
    };
    structures: {
      layer: string;
      kind: string;
      tensor: string;
      elements: number;
      signed: boolean;
      bits: number;
      frac: number;
    }[];
    search: { evaluations: number; seconds: number };
  };
  trajectory: { step: number; accepted: boolean; reduction: number; drop: number; phase: string }[];
  exports: { name: string; bytes: number; note: string }[];
  /** The generated C's memory: weights in flash, the activation arena in RAM, its largest tensor. */
  c?: {
    weights: string;
    weightsBytes: number;
    arenaBytes: number;
    liveBytesBound?: number;
    /** Absent in exports made before the layers had scratch buffers. */
    scratchBytes?: number;
    unplannedBytes: number;
    largest: { tensor: string; bytes: number };
  };
}

const escape = (s: string): string =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;

/** Memory reduction (accepted steps) and drop (every step) against the step number. */
function trajectoryChart(points: HtmlReportInput['trajectory']): string {
  if (points.length === 0) {
    return '<svg viewBox="0 0 760 60" width="760" height="60" role="img" aria-label="search trajectory"><text x="10" y="35" font-size="13">No search trajectory: a uniform assignment (fxpq quantize --uniform).</text></svg>';
  }
  const w = 760;
  const h = 260;
  const pad = 40;
  const maxStep = Math.max(...points.map((p) => p.step), 1);
  const maxRed = Math.max(...points.map((p) => p.reduction), 1);
  const drops = points.map((p) => p.drop);
  const [minDrop, maxDrop] = [Math.min(0, ...drops), Math.max(1, ...drops)];
  const x = (s: number): number => pad + ((w - 2 * pad) * s) / maxStep;
  const yRed = (r: number): number => h - pad - ((h - 2 * pad) * r) / maxRed;
  const yDrop = (d: number): number => h - pad - ((h - 2 * pad) * (d - minDrop)) / (maxDrop - minDrop);
  const accepted = points.filter((p) => p.accepted);
  const line = accepted
    .map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.step).toFixed(1)},${yRed(p.reduction).toFixed(1)}`)
    .join(' ');
  const dots = points
    .map(
      (p) =>
        `<circle cx="${x(p.step).toFixed(1)}" cy="${yDrop(p.drop).toFixed(1)}" r="2" fill="${p.accepted ? '#2b8a3e' : '#c92a2a'}"/>`,
    )
    .join('');
  return `<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="search trajectory">
<rect x="0" y="0" width="${w}" height="${h}" fill="#fff"/>
<line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="#888"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${h - pad}" stroke="#888"/>
<path d="${line}" fill="none" stroke="#1c7ed6" stroke-width="2"/>${dots}
<text x="${pad}" y="${pad - 10}" font-size="12" fill="#1c7ed6">memory reduction (accepted steps), max ${maxRed.toFixed(2)}x</text>
<text x="${w - pad}" y="${h - 8}" font-size="12" text-anchor="end">dots: drop in points per step (green accepted, red rejected), ${minDrop.toFixed(1)} to ${maxDrop.toFixed(1)}</text>
<text x="${pad}" y="${h - 8}" font-size="12">step 0 to ${maxStep}</text>
</svg>`;
}

export function renderHtmlReport(input: HtmlReportInput): string {
  const r = input.report;
  const rows = r.structures
    .map(
      (s) =>
        `<tr><td>${escape(s.layer)}</td><td>${s.kind}</td><td>${escape(s.tensor)}</td><td class="n">${s.elements.toLocaleString('en-US')}</td><td>${s.signed ? 'signed' : 'unsigned'}</td><td class="n">${s.bits}</td><td class="n">${s.frac}</td></tr>`,
    )
    .join('\n');
  const exports = input.exports
    .map(
      (e) =>
        `<tr><td>${escape(e.name)}</td><td class="n">${e.bytes.toLocaleString('en-US')}</td><td>${escape(e.note)}</td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(input.title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#1d2430}table{border-collapse:collapse;margin:1rem 0}
td,th{border-bottom:1px solid #e5e5e5;padding:3px 10px;text-align:left}.n{text-align:right;font-variant-numeric:tabular-nums}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
</style></head><body>
<h1>${escape(input.title)}</h1>
<h2>Accuracy (held-out split, ${r.data.eval} images; ${r.data.calib} calibration images, seed ${r.data.seed})</h2>
<table><tr><th></th><th>top-1</th><th>top-5</th></tr>
<tr><td>float32</td><td class="n">${pct(r.fp.top1)}</td><td class="n">${pct(r.fp.top5)}</td></tr>
<tr><td>fixed point</td><td class="n">${pct(r.quant.top1)}</td><td class="n">${pct(r.quant.top5)}</td></tr>
<tr><td>drop</td><td class="n">${(100 * (r.fp.top1 - r.quant.top1)).toFixed(2)} points</td><td>budget ${r.budget ?? '-'}</td></tr>
${r.quant.dropStandardError !== undefined ? `<tr><td>paired standard error of the drop (${r.quant.n10} images lost, ${r.quant.n01} gained)</td><td class="n">${(100 * r.quant.dropStandardError).toFixed(2)} points</td><td></td></tr>\n` : ''}
<tr><td>top-1 agreement with float32</td><td class="n">${pct(r.quant.agreement)}</td><td></td></tr></table>
<h2>Memory</h2>
<table><tr><td>reduction (weights, biases, activations of one image)</td><td class="n">${r.memory.reduction.toFixed(2)}x</td></tr>
<tr><td>weights and biases only</td><td class="n">${r.memory.weightsReduction.toFixed(2)}x</td></tr>
<tr><td>average bits: weights / activations</td><td class="n">${r.memory.avgBitsWeights.toFixed(2)} / ${r.memory.avgBitsActivations.toFixed(2)}</td></tr>
<tr><td>bits: float32 / fixed point</td><td class="n">${r.memory.fp32Bits.toLocaleString('en-US')} / ${r.memory.quantBits.toLocaleString('en-US')}</td></tr></table>
${
  input.c
    ? `<h2>Integer-only C on a device</h2>
<table><tr><td>weights and biases (flash, ${escape(input.c.weights)})</td><td class="n">${input.c.weightsBytes.toLocaleString('en-US')} B</td></tr>
<tr><td>activation arena (RAM, planned by liveness)</td><td class="n">${input.c.arenaBytes.toLocaleString('en-US')} B</td></tr>
${
  input.c.liveBytesBound !== undefined
    ? `<tr><td>liveness lower bound (the most activation bytes alive at one layer)</td><td class="n">${input.c.liveBytesBound.toLocaleString('en-US')} B</td></tr>`
    : ''
}
${
  input.c.scratchBytes !== undefined
    ? `<tr><td>layer scratch (RAM: a convolution's input staged channel-last, unpacked weight rows, a first layer's columns)</td><td class="n">${input.c.scratchBytes.toLocaleString('en-US')} B</td></tr>`
    : ''
}
<tr><td>one int32 buffer per tensor, for comparison</td><td class="n">${input.c.unplannedBytes.toLocaleString('en-US')} B</td></tr>
<tr><td>largest activation: ${escape(input.c.largest.tensor)}</td><td class="n">${input.c.largest.bytes.toLocaleString('en-US')} B</td></tr></table>`
    : ''
}
<h2>Exported files</h2>
<table><tr><th>file</th><th>bytes</th><th>verification</th></tr>${exports}</table>
<h2>Search trajectory (${r.search.evaluations} evaluations, ${r.search.seconds.toFixed(0)} s)</h2>
${trajectoryChart(input.trajectory)}
<h2>Data structures</h2>
<table><tr><th>layer</th><th>kind</th><th>tensor</th><th>elements</th><th>sign</th><th>bits</th><th>frac</th></tr>
${rows}</table>
</body></html>
`;
}
