import { type Cell, type Check, passes, type Report, type Table } from './suite.js';

/** Formats a number for a table: integers with thousands separators, ratios with two decimals. */
export function formatCell(cell: Cell): string {
  if (typeof cell === 'string') return cell;
  if (!Number.isFinite(cell)) return String(cell);
  if (Math.abs(cell) >= 100) return Math.round(cell).toLocaleString('en-US');
  return cell.toFixed(2);
}

/** Renders a table as aligned text (first column left-aligned, the rest right-aligned). */
export function renderTable(table: Table): string {
  const cells = [table.columns, ...table.rows.map((row) => row.map(formatCell))];
  const widths = table.columns.map((_, col) => Math.max(...cells.map((row) => (row[col] ?? '').length)));
  const line = (row: string[]) =>
    row
      .map((cell, col) => (col === 0 ? cell.padEnd(widths[col] ?? 0) : cell.padStart(widths[col] ?? 0)))
      .join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [table.title, line(cells[0] ?? []), rule, ...cells.slice(1).map(line)].join('\n');
}

/** Renders one check as `PASS  name: 1.23x (target >= 1.00x)`. */
export function renderCheck(check: Check): string {
  const unit = check.unit ?? '';
  const verdict = passes(check) ? 'PASS' : 'FAIL';
  return `${verdict}  ${check.name}: ${check.actual.toFixed(2)}${unit} (target ${check.direction} ${check.target.toFixed(2)}${unit})`;
}

/** Renders a suite's whole report. */
export function renderReport(name: string, report: Report): string {
  const parts = [`== ${name} ==`, ...report.tables.map(renderTable)];
  if (report.checks.length > 0) parts.push(['Targets', ...report.checks.map(renderCheck)].join('\n'));
  if (report.notes && report.notes.length > 0) parts.push(report.notes.join('\n'));
  return parts.join('\n\n');
}
