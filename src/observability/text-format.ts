import type { MetricFamily, MetricLabels } from './metric-family.js';

/** The content type of the Prometheus text exposition format (version 0.0.4). */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * Renders metric families in the Prometheus text exposition format (0.0.4), `prefix` put before every
 * name. Families are separated by an empty line, as prom-client renders them.
 */
export function renderText(families: readonly MetricFamily[], prefix: string): string {
  const blocks: string[] = [];
  for (const family of families) {
    const name = prefix + family.name;
    const lines = [`# HELP ${name} ${escapeHelp(family.help)}`, `# TYPE ${name} ${family.type}`];
    for (const sample of family.values) {
      const sampleName = sample.metricName === undefined ? name : prefix + sample.metricName;
      lines.push(`${sampleName}${renderLabels(sample.labels)} ${renderValue(sample.value)}`);
    }
    blocks.push(lines.join('\n'));
  }
  return `${blocks.join('\n\n')}\n`;
}

function renderLabels(labels: MetricLabels): string {
  const parts: string[] = [];
  for (const [label, value] of Object.entries(labels)) parts.push(`${label}="${escapeLabel(String(value))}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function renderValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabel(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}
