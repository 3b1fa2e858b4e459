import { maskSessionId } from '../admin/mask-id.js';

/**
 * What a command prints. With `--json` stdout holds machine output only (`json()`; one document, or
 * one object per line for streams); without it, `line()` prints text for people. `note()` goes to
 * stderr either way (progress, hints), so stdout stays clean.
 */
export interface Output {
  /** True under `--json`. */
  readonly json: boolean;
  /** Prints a line for people on stdout; ignored under `--json`. */
  line(text?: string): void;
  /** Prints `value` as one line of JSON on stdout; ignored without `--json`. */
  data(value: unknown): void;
  /** Prints a line on stderr (hints, warnings), in both modes. */
  note(text: string): void;
  /** A session id as reports show it (masked unless `--show-ids`). */
  id(sid: string): string;
}

/** Writes to the process's stdout and stderr. */
export function createOutput(options: {
  json: boolean;
  showIds?: boolean;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}): Output {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  return {
    json: options.json,
    line(text = '') {
      if (!options.json) stdout.write(`${text}\n`);
    },
    data(value) {
      if (options.json) stdout.write(`${JSON.stringify(value)}\n`);
    },
    note(text) {
      stderr.write(`${text}\n`);
    },
    id: (sid) => (options.showIds ? sid : maskSessionId(sid)),
  };
}

/** Rows as aligned columns (the first row is the header), for text output. */
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, [...cell].length);
    });
  }
  return rows.map((row) =>
    row
      .map((cell, i) =>
        i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - [...cell].length),
      )
      .join('  ')
      .trimEnd(),
  );
}

/** Epoch ms as an ISO time, `never` for 0, `-` when unknown. */
export function formatTime(ms: number | undefined): string {
  if (ms === undefined || Number.isNaN(ms)) return '-';
  if (ms === 0) return 'never';
  return new Date(ms).toISOString();
}
