/** Plain-text rendering helpers for the CLI. */

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** 41030272 -> "41.03 M". */
export function formatScaled(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)} k`;
  return String(n);
}

export function formatBytes(n: number): string {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(2)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

export function shapeText(shape: readonly (number | string)[]): string {
  return `[${shape.join(',')}]`;
}

/** Left-aligned text columns, right-aligned where `right[i]` is set. */
export function table(rows: string[][], right: boolean[] = []): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => (right[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * Text from a model, a run or a dataset (node names, class ids, paths, error sentences) made safe
 * to print on a terminal: escape sequences (ESC [ ... final, ESC ] ... BEL or ST, ESC and one
 * character) are removed whole, and so is every other control character: C0 except line feed and
 * tab (and carriage return where `keepReturn`, for the progress bar's own), DEL, and C1 (0x80-0x9f,
 * which some terminals read as ESC sequences).
 */
export function terminalSafe(text: string, keepReturn = false): string {
  return text
    .replace(/\u001b\[[0-?]*[ -/]*[@-~]?|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[\s\S]?/g, '')
    .replace(
      keepReturn
        ? /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g
        : /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g,
      '',
    );
}

/** JSON for the terminal: the same document, with DEL and C1 characters written as \u escapes. */
export function jsonText(value: unknown): string {
  return (
    JSON.stringify(value, null, 2).replace(
      /[\u007f-\u009f]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    ) + '\n'
  );
}

/** A stream that writes only terminal-safe text (the carriage return of the progress bar kept). */
export function safeStream<S extends NodeJS.WritableStream>(stream: S): S {
  return new Proxy(stream, {
    get(target, prop, receiver) {
      if (prop === 'write')
        return (chunk: unknown, ...rest: unknown[]) =>
          (target.write as (...a: unknown[]) => boolean)(
            typeof chunk === 'string' ? terminalSafe(chunk, true) : chunk,
            ...rest,
          );
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
