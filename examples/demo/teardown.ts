/** Clean-up for the demo: whatever way it ends (done, failed, Ctrl-C, SIGTERM), it leaves nothing behind. */

/** Clean-up steps, run once, newest first. */
export class Teardown {
  private readonly steps: { what: string; run: () => unknown }[] = [];

  /** Adds a step; `what` names it if it fails. */
  add(what: string, run: () => unknown): void {
    this.steps.push({ what, run });
  }

  /** Runs every step, newest first; a step that fails is reported and the others still run. */
  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step.run();
      } catch (error) {
        console.error(`demo: ${step.what} failed:`, error instanceof Error ? error.message : error);
        process.exitCode = 1;
      }
    }
  }
}

/** Thrown by {@link Interruption.check} once a signal arrived. */
export class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const NUMBERS: Record<(typeof SIGNALS)[number], number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/**
 * Ctrl-C (SIGINT), SIGTERM and SIGHUP: the first stops the demo at the next step boundary (a pause is cut
 * short) so that it can clean up. Another signal within a second is the same Ctrl-C arriving twice (from
 * the terminal and relayed by tsx) and is ignored; a later one, or a clean-up that takes more than 10 s,
 * quits at once.
 */
export class Interruption {
  signal: NodeJS.Signals | undefined;
  private receivedAt = 0;
  private wake: (() => void) | undefined;
  private readonly listeners = SIGNALS.map((signal) => {
    const listener = () => this.receive(signal);
    process.on(signal, listener);
    return [signal, listener] as const;
  });

  /** The exit code of a process ended by the signal received (128 + its number). */
  get exitCode(): number {
    return this.signal ? 128 + (NUMBERS[this.signal as (typeof SIGNALS)[number]] ?? 0) : 0;
  }

  /** Throws {@link Interrupted} once a signal arrived. */
  check(): void {
    if (this.signal) throw new Interrupted(this.signal);
  }

  /** Waits `ms`, or less if a signal arrives; then {@link Interruption.check}s. */
  async sleep(ms: number): Promise<void> {
    if (ms > 0 && !this.signal) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => this.wake?.(), ms);
        this.wake = () => {
          clearTimeout(timer);
          this.wake = undefined;
          resolve();
        };
      });
    }
    this.check();
  }

  /** Stops listening for signals. */
  dispose(): void {
    for (const [signal, listener] of this.listeners) process.off(signal, listener);
  }

  private receive(signal: (typeof SIGNALS)[number]): void {
    if (this.signal) {
      if (Date.now() - this.receivedAt > 1000) process.exit(128 + NUMBERS[signal]);
      return;
    }
    this.signal = signal;
    this.receivedAt = Date.now();
    console.log(`\n${signal}: stopping the demo and cleaning up`);
    setTimeout(() => {
      console.error('demo: clean-up took more than 10 s; quitting anyway');
      process.exit(this.exitCode);
    }, 10_000).unref();
    this.wake?.();
  }
}
