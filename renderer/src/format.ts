/** Number formats shared by every screen. */

export const int = (n: number | undefined | null): string => (n == null ? '-' : Math.round(n).toLocaleString('en-US'));

export const fixed = (n: number | undefined | null, digits = 2): string =>
  n == null || !Number.isFinite(n) ? '-' : n.toFixed(digits);

/** Accuracy stored as a fraction (0..1) or points (0..100): shown as percent. */
export function pct(n: number | undefined | null, digits = 2): string {
  if (n == null || !Number.isFinite(n)) return '-';
  const v = Math.abs(n) <= 1 ? n * 100 : n;
  return `${v.toFixed(digits)} %`;
}

export function bytes(n: number | undefined | null): string {
  if (n == null) return '-';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

export function duration(seconds: number | undefined | null): string {
  if (seconds == null || !Number.isFinite(seconds)) return '';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function when(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export const shape = (s: (number | string)[]): string => `[${s.join(', ')}]`;
