/** The bit-width heatmap's rows: one per layer, columns W, B, A, from structure ids `KIND:tensor`. */
import type { StructureFormat } from '../../../api/contract';

export const KINDS = ['W', 'B', 'A'] as const;

export interface HeatmapCells {
  rows: string[];
  /** [column (W, B, A, or other kinds after them), row, bits] */
  cells: [number, number, number][];
  columns: string[];
}

/** Group a tensor name with its layer when no report says which layer it belongs to. */
export function guessLayer(tensor: string): string {
  return tensor.replace(/([._/:-](weight|bias|w|b|kernel|W|B))$/i, '');
}

export function heatmapCells(bits: Record<string, number>, structures?: StructureFormat[]): HeatmapCells {
  const layerOf = new Map<string, { layer: string; kind: string }>();
  for (const s of structures ?? []) layerOf.set(`${s.kind}:${s.tensor}`, { layer: s.layer, kind: s.kind });
  const columns: string[] = [...KINDS];
  const rows: string[] = [];
  const rowIndex = new Map<string, number>();
  const cells: [number, number, number][] = [];
  // Keep the report's (network) order when there is one, else the order the keys come in.
  const keys = Object.keys(bits);
  if (structures?.length) {
    const order = new Map(structures.map((s, i) => [`${s.kind}:${s.tensor}`, i]));
    keys.sort((a, b) => (order.get(a) ?? 1e9) - (order.get(b) ?? 1e9));
  }
  for (const key of keys) {
    const known = layerOf.get(key);
    let kind: string;
    let layer: string;
    if (known) {
      ({ kind, layer } = known);
    } else {
      const colon = key.indexOf(':');
      kind = colon > 0 ? key.slice(0, colon) : '?';
      const tensor = colon > 0 ? key.slice(colon + 1) : key;
      layer = kind === 'A' ? tensor : guessLayer(tensor);
    }
    let col = columns.indexOf(kind);
    if (col < 0) col = columns.push(kind) - 1;
    let row = rowIndex.get(layer);
    if (row === undefined) {
      row = rows.push(layer) - 1;
      rowIndex.set(layer, row);
    }
    cells.push([col, row, bits[key]!]);
  }
  return { rows, cells, columns };
}
