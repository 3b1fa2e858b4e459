/**
 * docs/operations.md's runbook keeps one entry per failure of docs/replication.md's table "What a
 * failure looks like", in its order and under the same words, each saying what the operator sees, what
 * to run and what to expect after: a failure added to the table without a runbook entry fails here.
 * Every metric the runbook names is one the library exports, once the metrics catalog exists.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = process.cwd();

/** The text of `markdown` from heading `heading` to the next heading of the same level or higher. */
function section(markdown: string, heading: string): string {
  const level = /^#+/.exec(heading)?.[0].length ?? 2;
  const lines = markdown.split('\n');
  const start = lines.findIndex((line) => line.trim() === heading);
  if (start < 0) return '';
  const end = lines.findIndex((line, i) => {
    const hashes = /^(#+)\s/.exec(line)?.[1]?.length;
    return i > start && hashes !== undefined && hashes <= level;
  });
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

async function runbook(): Promise<{ failures: string[]; entries: { title: string; body: string }[] }> {
  const replication = await readFile(join(ROOT, 'docs', 'replication.md'), 'utf8');
  const failures = section(replication, '## What a failure looks like')
    .split('\n')
    .filter((line) => line.startsWith('| ') && !/^\|\s*failure\s*\|/.test(line))
    .map((line) => (line.slice(2).split(' | ')[0] ?? '').trim());
  const operations = await readFile(join(ROOT, 'docs', 'operations.md'), 'utf8');
  const entries = section(operations, '## Runbook')
    .split(/^### /m)
    .slice(1)
    .map((part) => ({ title: (part.split('\n')[0] ?? '').trim(), body: part }));
  return { failures, entries };
}

it('the runbook has one entry per failure of docs/replication.md, in order', async () => {
  const { failures, entries } = await runbook();
  expect(failures.length).toBeGreaterThanOrEqual(20);
  expect(entries.map((e) => e.title)).toEqual(failures);
  for (const entry of entries) {
    for (const part of ['**See**', '**Run**', '**After**']) {
      expect(entry.body, `"${entry.title}" says ${part}`).toContain(`- ${part}:`);
    }
  }
});

it('every metric the runbook names is exported', async () => {
  const catalogFile = join(ROOT, 'src', 'observability', 'catalog.ts');
  if (!existsSync(catalogFile)) return; // the metrics land with issue 16's metrics work
  const catalog = (await import(pathToFileURL(catalogFile).href)) as Record<string, unknown>;
  const names = new Set<string>();
  for (const value of Object.values(catalog)) {
    if (!Array.isArray(value)) continue;
    for (const metric of value) {
      const name = (metric as { name?: unknown }).name;
      if (typeof name === 'string') names.add(`geosession_${name}`);
    }
  }
  expect(names.size, 'metrics found in src/observability/catalog.ts').toBeGreaterThan(0);
  const { entries } = await runbook();
  const named = new Set(entries.flatMap((e) => e.body.match(/\bgeosession_[a-z_]+/g) ?? []));
  expect([...named].filter((name) => !names.has(name))).toEqual([]);
});
