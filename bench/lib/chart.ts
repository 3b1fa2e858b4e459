/**
 * Charts for docs/benchmarks.md, drawn in Node with vega-lite (compiled to a vega spec) and rendered to
 * SVG by vega's headless view: no browser, no canvas.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as vega from 'vega';
import * as vl from 'vega-lite';

/** One point of the lag chart; `pipeline: 'target'` points are drawn as a short bar (a target at that rate). */
export interface LagPoint {
  transport: string;
  link: string;
  rate: number;
  pipeline: string;
  stat: 'p50' | 'p99';
  ms: number;
}

/**
 * Lag percentiles against the write rate: one panel per transport (columns) and link (rows), log scale,
 * colour by percentile, dashed for the raw client floor, pale bars for targets. Writes the SVG to `file`
 * and returns it.
 */
export async function writeLagChart(
  points: readonly LagPoint[],
  title: { text: string; subtitle?: string },
  file: string,
): Promise<string> {
  const firstSeen = (key: 'transport' | 'link') => [...new Set(points.map((p) => p[key]))];
  const encoding = {
    x: { field: 'rate', type: 'ordinal', axis: { labelAngle: 0, title: 'writes/s' } },
    y: {
      field: 'ms',
      type: 'quantitative',
      scale: { type: 'log' },
      axis: { title: 'lag, ms (log scale)', format: '~g' },
    },
    color: {
      field: 'stat',
      type: 'nominal',
      title: 'percentile',
      scale: { domain: ['p50', 'p99'], range: ['#1f77b4', '#d62728'] },
    },
  } as const;
  const spec: vl.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { ...title, anchor: 'start', fontSize: 14, subtitleFontSize: 11 },
    data: {
      values: points.map((p) => ({ ...p, ms: Math.max(0.05, p.ms), series: `${p.pipeline} ${p.stat}` })),
    },
    facet: {
      row: {
        field: 'link',
        type: 'nominal',
        title: null,
        sort: firstSeen('link'),
        header: { labelFontSize: 12, labelAngle: -90, labelAlign: 'center' },
      },
      column: {
        field: 'transport',
        type: 'nominal',
        title: null,
        sort: firstSeen('transport'),
        header: { labelFontSize: 12 },
      },
    },
    spec: {
      width: 190,
      height: 170,
      layer: [
        {
          transform: [{ filter: "datum.pipeline !== 'target'" }],
          mark: { type: 'line', strokeWidth: 1.8 },
          encoding: {
            ...encoding,
            strokeDash: {
              field: 'pipeline',
              type: 'nominal',
              title: 'pipeline',
              scale: {
                domain: ['geosession', 'raw client'],
                range: [
                  [1, 0],
                  [5, 3],
                ],
              },
              legend: { symbolType: 'stroke', symbolStrokeWidth: 2, symbolStrokeColor: '#444' },
            },
            detail: { field: 'series' },
          },
        },
        {
          transform: [{ filter: "datum.pipeline !== 'target'" }],
          mark: { type: 'point', filled: true, size: 30 },
          encoding: {
            ...encoding,
            shape: { field: 'pipeline', type: 'nominal', legend: null },
            tooltip: [
              { field: 'transport' },
              { field: 'link' },
              { field: 'rate' },
              { field: 'pipeline' },
              { field: 'stat' },
              { field: 'ms', format: '.2f' },
            ],
          },
        },
        {
          transform: [{ filter: "datum.pipeline === 'target'" }],
          mark: { type: 'tick', thickness: 2, size: 22, opacity: 0.55 },
          encoding: { ...encoding, tooltip: [{ field: 'stat' }, { field: 'ms', title: 'target ms' }] },
        },
      ],
    },
    resolve: { scale: { y: 'shared' } },
    config: { font: 'sans-serif', view: { stroke: '#ddd' } },
  };
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, svg);
  return svg;
}
