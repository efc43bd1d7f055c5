import { terminalSafe } from './format.js';

/** Progress on stderr: a bar with counts and ETA on a terminal, plain lines otherwise (contracts.md). */

export interface Progress {
  update(done: number, total: number, detail?: string): void;
  finish(): void;
}

function eta(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  const total = Math.round(seconds);
  const m = Math.floor(total / 60);
  const s = total % 60;
  return m > 0 ? `${m}m${String(s).padStart(2, '0')}s` : `${s}s`;
}

export function progress(
  label: string,
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
): Progress {
  label = terminalSafe(label);
  const start = Date.now();
  let lastLine = 0;
  let lastPercent = -1;
  let lastDone = -1;
  let shown = false;
  let lastWidth = 0;
  return {
    update(done, total, rawDetail) {
      const detail = rawDetail === undefined ? undefined : terminalSafe(rawDetail);
      const elapsed = (Date.now() - start) / 1000;
      const remaining = done > 0 ? (elapsed / done) * (total - done) : Infinity;
      const percent = total > 0 ? Math.floor((100 * done) / total) : 100;
      if (stream.isTTY) {
        const width = 30;
        const filled = Math.round((width * percent) / 100);
        const columns = (stream.columns ?? 120) - 1;
        const line =
          `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${percent}% ETA ${eta(remaining)}${detail ? `  ${detail}` : ''}`.slice(
            0,
            columns,
          );
        // Pad over what the previous, longer line left on the terminal.
        stream.write(`\r${line.padEnd(Math.min(lastWidth, columns))}`);
        lastWidth = line.length;
        shown = true;
      } else if (
        (done === total && lastDone !== done) ||
        (percent >= lastPercent + 10 && Date.now() - lastLine > 1000) ||
        (detail && Date.now() - lastLine > 5000)
      ) {
        // Plain lines for logs: every 10 % (at most one a second), every 5 s with details, and the last one.
        stream.write(`${label}: ${done}/${total} (${percent}%), ETA ${eta(remaining)}${detail ? `, ${detail}` : ''}\n`);
        lastLine = Date.now();
        lastPercent = percent;
        lastDone = done;
      }
    },
    finish() {
      if (stream.isTTY && shown) stream.write('\n');
    },
  };
}
