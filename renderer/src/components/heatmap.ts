/** The bit-width heatmap's rows: one per layer, columns W, B, A, from structure ids `KIND:tensor`. */
import type { StructureFormat } from '../../../api/contract';

export const KINDS = ['W', 'B', 'A'] as const;

export interface HeatmapCells {
  rows: string[];
  /** [column (W, B, A, or other kinds after them), row, bits] */
  cells: [number, number, number][];
  columns: string[];
}

/** A layer's label from its output activation's tensor name: `/blocks/blocks.0/Relu_output_0` -> `/blocks/blocks.0/Relu`. */
export function layerLabel(tensor: string): string {
  return tensor.replace(/_output_\d+$/, '');
}

interface Row {
  label: string;
  kinds: Set<string>;
}

export function heatmapCells(bits: Record<string, number>, structures?: StructureFormat[]): HeatmapCells {
  const layerOf = new Map<string, { layer: string; kind: string }>();
  for (const s of structures ?? []) layerOf.set(`${s.kind}:${s.tensor}`, { layer: s.layer, kind: s.kind });
  const columns: string[] = [...KINDS];
  const rows: Row[] = [];
  const byLayer = new Map<string, number>();
  const cells: [number, number, number][] = [];
  const keys = Object.keys(bits);
  if (structures?.length) {
    // The report's (network) order.
    const order = new Map(structures.map((s, i) => [`${s.kind}:${s.tensor}`, i]));
    keys.sort((a, b) => (order.get(a) ?? 1e9) - (order.get(b) ?? 1e9));
  }
  for (const key of keys) {
    const colon = key.indexOf(':');
    const known = layerOf.get(key);
    const kind = known?.kind ?? (colon > 0 ? key.slice(0, colon) : '?');
    const tensor = colon > 0 ? key.slice(colon + 1) : key;
    let col = columns.indexOf(kind);
    if (col < 0) col = columns.push(kind) - 1;
    let row: number;
    if (known) {
      row = byLayer.get(known.layer) ?? -1;
      if (row < 0) {
        row = rows.push({ label: known.layer, kinds: new Set() }) - 1;
        byLayer.set(known.layer, row);
      }
    } else {
      // No report yet: the search lists each layer's weights, then its bias, then its output
      // activation. A W starts a row; a B or an A joins the row before it when that has a W
      // and no structure of its kind yet; anything else gets a row of its own.
      const last = rows[rows.length - 1];
      const joins =
        (kind === 'B' || kind === 'A') && last && last.kinds.has('W') && !last.kinds.has(kind) && !last.kinds.has('A');
      if (joins) {
        row = rows.length - 1;
        if (kind === 'A') last.label = layerLabel(tensor);
      } else row = rows.push({ label: kind === 'A' ? layerLabel(tensor) : tensor, kinds: new Set() }) - 1;
    }
    rows[row]!.kinds.add(kind);
    cells.push([col, row, bits[key]!]);
  }
  return { rows: rows.map((r) => r.label), cells, columns };
}
