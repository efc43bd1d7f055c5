import type { ParseArgsConfig } from 'node:util';

export interface CommandContext {
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
  /** Where results go (stdout); progress and errors go to `err` (stderr). */
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/** A CLI command returns its exit status, or a usage error (exit 2). */
export type CommandResult = number | { usageError: string };

export interface Command {
  name: string;
  usage: string;
  summary: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(ctx: CommandContext): Promise<CommandResult>;
}
