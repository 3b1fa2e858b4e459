/**
 * The contract every benchmark suite follows, so that new ones (replication lag, transports) plug into
 * `bench/index.ts` by adding one line to its registry.
 */

/** A cell of a result table. Numbers are formatted by the printer. */
export type Cell = string | number;

/** A target the suite checks, printed as PASS or FAIL. */
export interface Check {
  /** What is checked, e.g. `get vs connect-redis 8`. */
  name: string;
  /** The measured value, e.g. a ratio. */
  actual: number;
  /** The threshold the measured value is compared with. */
  target: number;
  /** `>=` when bigger is better (throughput), `<=` when smaller is better (latency, lag). */
  direction: '>=' | '<=';
  /** Unit printed after both numbers, e.g. `x` or ` ms`. */
  unit?: string;
}

/** One table of results. */
export interface Table {
  /** Printed above the table. */
  title: string;
  /** Column headings. */
  columns: string[];
  /** Rows, each as long as `columns`. */
  rows: Cell[][];
}

/** What a suite hands back. */
export interface Report {
  /** Tables of results, printed in order. */
  tables: Table[];
  /** Targets, printed as PASS/FAIL lines. */
  checks: Check[];
  /** Free-form lines printed after the tables (method, caveats). */
  notes?: string[];
  /** Raw figures for `--json` output. */
  data?: unknown;
}

/** Options the runner passes to every suite, parsed from `--key=value` arguments. */
export interface SuiteOptions {
  /** Raw `--key=value` options; a bare `--flag` maps to `'true'`. */
  flags: Readonly<Record<string, string>>;
  /** Prints a progress line (to stderr, so that stdout holds only results). */
  log(line: string): void;
}

/** A named benchmark. */
export interface Suite {
  /** Name used on the command line: `npm run bench -- <name>`. */
  name: string;
  /** One line shown by `npm run bench -- --list`. */
  description: string;
  /** Runs the benchmark, cleaning up everything it created, and reports. */
  run(options: SuiteOptions): Promise<Report>;
}

/** True when the check's measured value meets its target. */
export function passes(check: Check): boolean {
  return check.direction === '>=' ? check.actual >= check.target : check.actual <= check.target;
}

/** A numeric flag, or `fallback` when absent; throws on a value that is not a positive number. */
export function numberFlag(options: SuiteOptions, name: string, fallback: number): number {
  const raw = options.flags[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}
