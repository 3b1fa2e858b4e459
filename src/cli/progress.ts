import cliProgress from 'cli-progress';

/**
 * A progress bar for long commands: drawn on stderr with cli-progress when stderr is a terminal and
 * the output is not `--json`; otherwise every call does nothing.
 */
export interface Progress {
  /** Starts the bar at 0 of `total` (0 or unknown: the bar counts without a total). */
  start(total: number): void;
  /** Adds `n` (default 1) done. */
  increment(n?: number): void;
  /** Raises or sets the total once it is known better. */
  setTotal(total: number): void;
  /** Stops the bar and ends its line. */
  stop(): void;
}

const NOOP: Progress = {
  start() {},
  increment() {},
  setTotal() {},
  stop() {},
};

/** A {@link Progress} for a task named `label` (shown before the bar). */
export function createProgress(
  label: string,
  options: { json: boolean; stream?: NodeJS.WriteStream } = { json: false },
): Progress {
  const stream = options.stream ?? process.stderr;
  if (options.json || !stream.isTTY) return NOOP;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label} [{bar}] {percentage}% {value}/{total} {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    start(total) {
      bar.start(total, 0);
      started = true;
    },
    increment(n = 1) {
      if (started) bar.increment(n);
    },
    setTotal(total) {
      if (started) bar.setTotal(total);
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}
