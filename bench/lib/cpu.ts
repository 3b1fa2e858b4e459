import { readFileSync } from 'node:fs';

/** CPU time used per operation by this process and by some server processes, over one measured run. */
export interface CpuCost {
  /** Microseconds of CPU per operation, by process label (`node` is this process). */
  perOpUs: Record<string, number>;
  /** Sum over every process. */
  totalUs: number;
}

/** Ticks of CPU (user + system) a process has used so far, from /proc; undefined where there is none. */
function processTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/** Linux reports process CPU time in clock ticks of 1/100 s (USER_HZ). */
const TICK_US = 10_000;

/**
 * Runs `work`, then divides the CPU time this process and each of `servers` used meanwhile by the
 * operations `work` reports. Where /proc is not available (not Linux) only this process is counted.
 * On a machine with fewer cores than busy processes, CPU per operation is the figure that compares two
 * designs: throughput then depends on who got the cores.
 */
export async function measureCpu<T>(
  servers: Readonly<Record<string, number>>,
  work: () => Promise<T & { ops: number }>,
): Promise<T & { ops: number; cpu: CpuCost }> {
  const before = process.cpuUsage();
  const ticksBefore = Object.entries(servers).map(([label, pid]) => [label, pid, processTicks(pid)] as const);
  const result = await work();
  const used = process.cpuUsage(before);
  const perOpUs: Record<string, number> = {};
  const ops = Math.max(1, result.ops);
  perOpUs['node'] = (used.user + used.system) / ops;
  for (const [label, pid, start] of ticksBefore) {
    const end = processTicks(pid);
    if (start !== undefined && end !== undefined) perOpUs[label] = ((end - start) * TICK_US) / ops;
  }
  const totalUs = Object.values(perOpUs).reduce((sum, us) => sum + us, 0);
  return { ...result, cpu: { perOpUs, totalUs } };
}
