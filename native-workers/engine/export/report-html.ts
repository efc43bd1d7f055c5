/**
 * `report.html`: one self-contained page (inline CSS and SVG, no script, opens offline). Its
 * values come from report.json and the run's files, which may be foreign (a run folder someone
 * else made): every one is written through `text` (HTML-escaped) or a number formatter (a string
 * where a number belongs prints as "-"), and the page's own Content-Security-Policy allows no
 * script, no network and no plug-in, wherever it is opened from.
 */

export interface HtmlTrajectoryPoint {
  step: number;
  accepted: boolean;
  reduction: number;
  drop: number;
  phase: string;
}

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
  trajectory: HtmlTrajectoryPoint[];
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

/** The page's policy: inline CSS and data: images only; no script, no fetch, no frame, no form target. */
export const REPORT_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Any value as HTML text or attribute text: escaped, whatever its type. */
export function text(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** A number, or NaN for anything else (a numeric string counts: it can only print as digits). */
function toNumber(v: unknown): number {
  return typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
}
/** A number as the page writes it; anything that is not a finite number prints as "-". */
function num(v: unknown, digits?: number): string {
  const x = toNumber(v);
  if (!Number.isFinite(x)) return '-';
  return digits === undefined ? x.toLocaleString('en-US') : x.toFixed(digits);
}
const pct = (v: unknown): string => {
  const x = toNumber(v);
  return Number.isFinite(x) ? `${(100 * x).toFixed(2)} %` : '-';
};
/** A field of a value that may not be an object (a damaged or foreign report.json). */
function field(v: unknown, key: string): unknown {
  return typeof v === 'object' && v !== null && Object.prototype.hasOwnProperty.call(v, key)
    ? (v as Record<string, unknown>)[key]
    : undefined;
}
const finite = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : NaN);

/** Memory reduction (accepted steps) and drop (every step) against the step number. */
function trajectoryChart(all: HtmlReportInput['trajectory']): string {
  const points = (Array.isArray(all) ? all : []).filter((p) =>
    [p.step, p.reduction, p.drop].every((v) => Number.isFinite(finite(v))),
  );
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
  const accepted = points.filter((p) => p.accepted === true);
  const line = accepted
    .map((p, i) => `${i === 0 ? 'M' : 'L'}${num(x(p.step), 1)},${num(yRed(p.reduction), 1)}`)
    .join(' ');
  const dots = points
    .map(
      (p) =>
        `<circle cx="${num(x(p.step), 1)}" cy="${num(yDrop(p.drop), 1)}" r="2" fill="${p.accepted === true ? '#2b8a3e' : '#c92a2a'}"/>`,
    )
    .join('');
  return `<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="search trajectory">
<rect x="0" y="0" width="${w}" height="${h}" fill="#fff"/>
<line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="#888"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${h - pad}" stroke="#888"/>
<path d="${line}" fill="none" stroke="#1c7ed6" stroke-width="2"/>${dots}
<text x="${pad}" y="${pad - 10}" font-size="12" fill="#1c7ed6">memory reduction (accepted steps), max ${num(maxRed, 2)}x</text>
<text x="${w - pad}" y="${h - 8}" font-size="12" text-anchor="end">dots: drop in points per step (green accepted, red rejected), ${num(minDrop, 1)} to ${num(maxDrop, 1)}</text>
<text x="${pad}" y="${h - 8}" font-size="12">step 0 to ${num(maxStep)}</text>
</svg>`;
}

export function renderHtmlReport(input: HtmlReportInput): string {
  const r: unknown = input.report;
  const data = field(r, 'data');
  const fp = field(r, 'fp');
  const quant = field(r, 'quant');
  const memory = field(r, 'memory');
  const search = field(r, 'search');
  const structures = field(r, 'structures');
  const rows = (Array.isArray(structures) ? (structures as unknown[]) : [])
    .map(
      (s) =>
        `<tr><td>${text(field(s, 'layer'))}</td><td>${text(field(s, 'kind'))}</td><td>${text(field(s, 'tensor'))}</td><td class="n">${num(field(s, 'elements'))}</td><td>${field(s, 'signed') === true ? 'signed' : 'unsigned'}</td><td class="n">${num(field(s, 'bits'))}</td><td class="n">${num(field(s, 'frac'))}</td></tr>`,
    )
    .join('\n');
  const exports = (Array.isArray(input.exports) ? input.exports : [])
    .map((e) => `<tr><td>${text(e.name)}</td><td class="n">${num(e.bytes)}</td><td>${text(e.note)}</td></tr>`)
    .join('\n');
  const budget = field(r, 'budget');
  const fpTop1 = finite(field(fp, 'top1'));
  const quantTop1 = finite(field(quant, 'top1'));
  const dropSe = field(quant, 'dropStandardError');
  const c = input.c;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${text(REPORT_CSP)}">
<title>${text(input.title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#1d2430}table{border-collapse:collapse;margin:1rem 0}
td,th{border-bottom:1px solid #e5e5e5;padding:3px 10px;text-align:left}.n{text-align:right;font-variant-numeric:tabular-nums}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
</style></head><body>
<h1>${text(input.title)}</h1>
<h2>Accuracy (held-out split, ${num(field(data, 'eval'))} images; ${num(field(data, 'calib'))} calibration images, seed ${num(field(data, 'seed'))})</h2>
<table><tr><th></th><th>top-1</th><th>top-5</th></tr>
<tr><td>float32</td><td class="n">${pct(field(fp, 'top1'))}</td><td class="n">${pct(field(fp, 'top5'))}</td></tr>
<tr><td>fixed point</td><td class="n">${pct(field(quant, 'top1'))}</td><td class="n">${pct(field(quant, 'top5'))}</td></tr>
<tr><td>drop</td><td class="n">${num(100 * (fpTop1 - quantTop1), 2)} points</td><td>budget ${num(budget)}</td></tr>
${dropSe !== undefined ? `<tr><td>paired standard error of the drop (${num(field(quant, 'n10'))} images lost, ${num(field(quant, 'n01'))} gained)</td><td class="n">${num(100 * finite(dropSe), 2)} points</td><td></td></tr>\n` : ''}
<tr><td>top-1 agreement with float32</td><td class="n">${pct(field(quant, 'agreement'))}</td><td></td></tr></table>
<h2>Memory</h2>
<table><tr><td>reduction (weights, biases, activations of one image)</td><td class="n">${num(field(memory, 'reduction'), 2)}x</td></tr>
<tr><td>weights and biases only</td><td class="n">${num(field(memory, 'weightsReduction'), 2)}x</td></tr>
<tr><td>average bits: weights / activations</td><td class="n">${num(field(memory, 'avgBitsWeights'), 2)} / ${num(field(memory, 'avgBitsActivations'), 2)}</td></tr>
<tr><td>bits: float32 / fixed point</td><td class="n">${num(field(memory, 'fp32Bits'))} / ${num(field(memory, 'quantBits'))}</td></tr></table>
${
  c
    ? `<h2>Integer-only C on a device</h2>
<table><tr><td>weights and biases (flash, ${text(c.weights)})</td><td class="n">${num(c.weightsBytes)} B</td></tr>
<tr><td>activation arena (RAM, planned by liveness)</td><td class="n">${num(c.arenaBytes)} B</td></tr>
${
  c.liveBytesBound !== undefined
    ? `<tr><td>liveness lower bound (the most activation bytes alive at one layer)</td><td class="n">${num(c.liveBytesBound)} B</td></tr>`
    : ''
}
${
  c.scratchBytes !== undefined
    ? `<tr><td>layer scratch (RAM: a convolution's input staged channel-last, unpacked weight rows, a first layer's columns)</td><td class="n">${num(c.scratchBytes)} B</td></tr>`
    : ''
}
<tr><td>one int32 buffer per tensor, for comparison</td><td class="n">${num(c.unplannedBytes)} B</td></tr>
<tr><td>largest activation: ${text(field(c.largest, 'tensor'))}</td><td class="n">${num(field(c.largest, 'bytes'))} B</td></tr></table>`
    : ''
}
<h2>Exported files</h2>
<table><tr><th>file</th><th>bytes</th><th>verification</th></tr>${exports}</table>
<h2>Search trajectory (${num(field(search, 'evaluations'))} evaluations, ${num(field(search, 'seconds'), 0)} s)</h2>
${trajectoryChart(input.trajectory)}
<h2>Data structures</h2>
<table><tr><th>layer</th><th>kind</th><th>tensor</th><th>elements</th><th>sign</th><th>bits</th><th>frac</th></tr>
${rows}</table>
</body></html>
`;
}
