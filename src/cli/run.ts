import { CommanderError } from 'commander';
import { ConfigError, GeoSessionError } from '../errors.js';
import { CliError, ExitCode, messageOf } from './errors.js';
import { createProgram } from './program.js';

/**
 * Runs the `geosession` command line on `argv` (user arguments only, without `node` and the script)
 * and resolves to the exit code. Errors are printed on stderr as one line (with the stack and causes
 * when `GEOSESSION_DEBUG=1`); nothing is thrown.
 */
export async function runCli(argv: readonly string[]): Promise<number> {
  const program = createProgram();
  process.exitCode = undefined;
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return Number(process.exitCode ?? ExitCode.ok);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander printed its message already.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.ok;
      return ExitCode.usage;
    }
    report(error);
    if (error instanceof CliError) return error.exitCode;
    if (error instanceof ConfigError) return ExitCode.usage;
    return ExitCode.problem;
  }
}

function report(error: unknown): void {
  const known = error instanceof CliError || error instanceof GeoSessionError;
  const message = messageOf(error)
    .replace(/^geosession: /, '')
    .replace(/\s*\n\s*/g, ' ');
  process.stderr.write(`geosession: ${known ? '' : 'unexpected error: '}${message}\n`);
  if (process.env.GEOSESSION_DEBUG === '1') {
    let cause: unknown = error;
    while (cause !== undefined) {
      process.stderr.write(`${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}\n`);
      cause = cause instanceof Error ? cause.cause : undefined;
    }
  }
}
