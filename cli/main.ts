/**
 * `fxpq`: the headless front end. Parses arguments, calls the services, prints results.
 * Exit status (contracts.md): 0 success, 1 a failure explained in plain sentences, 2 usage.
 */
import { parseArgs } from 'node:util';
import { isFxpqError } from '../native-workers/engine/errors.js';
import type { Command } from './command.js';
import { inspectCommand } from './commands/inspect.js';
import { serveCommand } from './commands/serve.js';
import { datasetCommand } from './commands/dataset.js';
import { evaluateCommand } from './commands/evaluate.js';
import { quantizeCommand } from './commands/quantize.js';
import { demoCommand } from './commands/demo.js';
import { exportCommand } from './commands/export.js';
import { closePools } from '../services/pool.js';
import { safeStream, terminalSafe } from './format.js';

const commands: Command[] = [
  inspectCommand,
  datasetCommand,
  quantizeCommand,
  evaluateCommand,
  exportCommand,
  demoCommand,
  serveCommand,
];

function helpText(): string {
  return [
    'FxPQ: training-free mixed-precision dynamic fixed-point quantization of CNNs.',
    '',
    'Usage:',
    ...commands.map((c) => `  ${c.usage}\n      ${c.summary}`),
    '',
  ].join('\n');
}

export interface Streams {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

export async function main(
  argv: string[],
  rawStreams: Streams = { out: process.stdout, err: process.stderr },
): Promise<number> {
  // Whatever a command prints may carry a model's, a run's or a dataset's text: no escape sequences reach the terminal.
  const streams: Streams = { out: safeStream(rawStreams.out), err: safeStream(rawStreams.err) };
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    streams.out.write(helpText());
    return name ? 0 : 2;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    streams.err.write(`fxpq: unknown command "${terminalSafe(name)}".\n\n${helpText()}`);
    return 2;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true });
  } catch (e) {
    streams.err.write(`fxpq ${name}: ${terminalSafe((e as Error).message)}\nUsage: ${command.usage}\n`);
    return 2;
  }
  try {
    const result = await command.run({
      positionals: parsed.positionals,
      values: parsed.values as CommandContext['values'],
      ...streams,
    });
    if (typeof result === 'number') return result;
    streams.err.write(`fxpq ${name}: ${terminalSafe(result.usageError)}\nUsage: ${command.usage}\n`);
    return 2;
  } catch (e) {
    if (isFxpqError(e)) {
      streams.err.write(`fxpq: ${terminalSafe(e.message)}\n`);
      return 1;
    }
    // A bug, not a user error: still one readable line, with the detail for a bug report.
    streams.err.write(`fxpq: internal error: ${terminalSafe(String((e as Error).message ?? e))}\n`);
    if (process.env['FXPQ_DEBUG']) streams.err.write(`${terminalSafe(String((e as Error).stack))}\n`);
    return 1;
  } finally {
    await closePools();
  }
}

type CommandContext = Parameters<Command['run']>[0];
