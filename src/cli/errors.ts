/**
 * The exit codes of the `geosession` command and the errors that carry them. A command throws a
 * {@link CliError} (or returns an exit code); main.ts prints its message as one line on stderr.
 */

/** Exit codes, the same for every command (documented in `--help` and docs/operations.md). */
export const ExitCode = Object.freeze({
  /** The command ran and found nothing wrong. */
  ok: 0,
  /** The command ran and found a problem: differences, unhealthy, not found. */
  problem: 1,
  /** Usage or configuration error: bad arguments, options, environment or config file. */
  usage: 2,
  /** A region's Redis (or a broker) could not be reached. */
  unreachable: 3,
});

/** One of {@link ExitCode}'s values. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An error the CLI reports as one line on stderr, exiting with `exitCode`. */
export class CliError extends Error {
  /** The process exit code. */
  readonly exitCode: ExitCodeValue;

  constructor(exitCode: ExitCodeValue, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.exitCode = exitCode;
    this.name = new.target.name;
  }
}

/** Bad arguments, options, environment or configuration (exit 2). */
export class UsageError extends CliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ExitCode.usage, message, options);
  }
}

/** A region's Redis or a broker could not be reached or stopped answering (exit 3). */
export class UnreachableError extends CliError {
  constructor(
    /** The region (or broker) at fault. */
    readonly region: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(ExitCode.unreachable, `region ${region}: ${message}`, options);
  }
}

/** The message of any thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
