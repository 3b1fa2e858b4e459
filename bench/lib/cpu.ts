import type { Redis } from 'ioredis';

/** CPU time used per operation by this process and by some Redis servers, over one measured run. */
export interface CpuCost {
  /** Microseconds of CPU per operation, by process label (`node` is this process). */
  perOpUs: Record<string, number>;
  /** Sum over every process. */
  totalUs: number;
}

/** Total CPU seconds a Redis server has used (user + system, all threads), from `INFO cpu`. */
async function redisCpuSeconds(admin: Redis): Promise<number> {
  const info = await admin.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return field('used_cpu_user') + field('used_cpu_sys');
}

/**
 * Runs `work`, then divides the CPU time this process and each of `servers` (an idle client of each
 * Redis, by label) used meanwhile by the operations `work` reports. On a machine with fewer cores than
 * busy processes, CPU per operation is the figure that compares two designs: throughput then depends
 * on who got the cores.
 */
export async function measureCpu<T>(
  servers: Readonly<Record<string, Redis>>,
  work: () => Promise<T & { ops: number }>,
): Promise<T & { ops: number; cpu: CpuCost }> {
  const labels = Object.keys(servers);
  const cpuOf = () => Promise.all(labels.map((label) => redisCpuSeconds(servers[label] as Redis)));
  const serversBefore = await cpuOf();
  const before = process.cpuUsage();
  const result = await work();
  const used = process.cpuUsage(before);
  const serversAfter = await cpuOf();
  const ops = Math.max(1, result.ops);
  const perOpUs: Record<string, number> = { node: (used.user + used.system) / ops };
  labels.forEach((label, i) => {
    perOpUs[label] = (((serversAfter[i] ?? 0) - (serversBefore[i] ?? 0)) * 1e6) / ops;
  });
  const totalUs = Object.values(perOpUs).reduce((sum, us) => sum + us, 0);
  return { ...result, cpu: { perOpUs, totalUs } };
}
