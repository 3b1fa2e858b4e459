import { type Command, InvalidArgumentError } from 'commander';
import { type CliConfig, type GlobalOptions, resolveConfig } from './config.js';
import { CliContext } from './context.js';
import type { ExitCodeValue } from './errors.js';

/**
 * The glue every command uses: {@link action} resolves the global options, opens a {@link CliContext},
 * runs the command's body and closes the context; the body returns the exit code.
 */

/** How a command wants its context opened. */
export interface ActionOptions {
  /** Regions to connect to, from the command's arguments and options; default every configured region. */
  regions?: (args: string[], options: Record<string, unknown>, config: CliConfig) => readonly string[];
  /** At least this many regions must be configured (default 1). */
  minRegions?: number;
  /**
   * Checks the arguments and options before any region is reached (throw a `UsageError`), so that a
   * usage error is exit 2 even when a region is down.
   */
  check?: (args: string[], options: Record<string, unknown>) => void;
}

/** A command's body: gets the context, its positional arguments and its own options. */
export type CommandBody<O> = (
  context: CliContext,
  args: string[],
  options: O & GlobalOptions,
  command: Command,
) => Promise<ExitCodeValue>;

/** The commander action of a command whose body is `body`; the exit code lands in `process.exitCode`. */
export function action<O = Record<string, unknown>>(
  body: CommandBody<O>,
  options: ActionOptions = {},
): (...args: unknown[]) => Promise<void> {
  return async (...params: unknown[]) => {
    const command = params[params.length - 1] as Command;
    const args = params
      .slice(0, -2)
      .flatMap((arg) => (Array.isArray(arg) ? arg.map(String) : arg === undefined ? [] : [String(arg)]));
    const opts = command.optsWithGlobals() as O & GlobalOptions & { showIds?: boolean };
    const config = resolveConfig(opts);
    options.check?.(args, opts as Record<string, unknown>);
    const context = await CliContext.open(config, {
      only: options.regions?.(args, opts as Record<string, unknown>, config),
      showIds: opts.showIds === true,
      minRegions: options.minRegions,
    });
    try {
      process.exitCode = await body(context, args, opts, command);
    } finally {
      await context.close();
    }
  };
}

/** Help text listing `examples` (each a command line without the leading `geosession`). */
export function examples(lines: readonly string[]): string {
  return `\nExamples:\n${lines.map((line) => `  $ geosession ${line}`).join('\n')}\n`;
}

/** Commander's argument parser for a positive whole number option named `name` (0 too with `zero`). */
export function positiveInt(name: string, zero = false): (value: string) => number {
  return (value) => {
    const n = value.trim() === '' ? Number.NaN : Number(value);
    if (!Number.isInteger(n) || n < (zero ? 0 : 1)) {
      throw new InvalidArgumentError(
        `${name} must be a ${zero ? 'whole number ≥ 0' : 'positive whole number'}, got "${value}"`,
      );
    }
    return n;
  };
}
