/**
 * Report charts as Vega-Lite specs, rendered to SVG strings in Node (no browser, no canvas).
 * Every chart that shows methods colours them from one fixed method → colour map, so a method keeps its
 * colour on the whole page; every axis has a title a person reads, and count axes have integer ticks.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/**
 * A chart for the report: its title, its Vega-Lite spec and the one line under it saying what to look for.
 * The title is set in the page, not in the spec: without a canvas Vega over-estimates text widths, and a long
 * title would pad the chart with empty space.
 */
export interface ReportChart {
  id: string;
  title: string;
  spec: TopLevelSpec;
  caption: string;
}

/**
 * The fixed colour of each method (Okabe–Ito palette, readable with the common colour-vision deficiencies):
 * the plain ensemble black, the monolithic baseline grey, and one hue per post-processor.
 */
export const METHOD_COLOURS: Readonly<Record<string, string>> = {
  sisa: '#000000',
  monolithic: '#999999',
  'per-model': '#E69F00',
  ensemble: '#0072B2',
  votes: '#009E73',
};
/** For methods a later version may add: taken in order of the sorted unknown names, never reused. */
const SPARE_COLOURS = ['#CC79A7', '#D55E00', '#56B4E9', '#F0E442'];

/** The colour scale for the methods present: the domain lists them, the range gives each its fixed colour. */
export function methodColourScale(methods: readonly string[]): { domain: string[]; range: string[] } {
  const known = Object.keys(METHOD_COLOURS);
  const present = [...new Set(methods)];
  const unknown = present.filter((m) => !known.includes(m)).sort();
  const domain = [...known.filter((m) => present.includes(m)), ...unknown];
  return { domain, range: domain.map((m) => METHOD_COLOURS[m] ?? SPARE_COLOURS[unknown.indexOf(m) % SPARE_COLOURS.length]!) };
}

const methodColour = (methods: readonly string[]) => ({ field: 'method', type: 'nominal', title: 'method', scale: methodColourScale(methods) }) as const;

const base = { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', config: { font: 'sans-serif', axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { symbolOpacity: 1 } } } as const;
const SIZE = { width: 300, height: 220 } as const;

export interface GroupPoint {
  method: string;
  group: string;
  tpr: number;
  fpr: number;
}

/**
 * Each method on its own row, one point per group, for the true- and false-positive rates side by side, with
 * a bar from the lowest to the highest group: the length of that bar is the between-group difference.
 */
export function groupRatesChart(points: GroupPoint[], split: string): ReportChart {
  const methods = [...new Set(points.map((p) => p.method))];
  // The second panel shares the first one's rows, so it leaves the method names out.
  const panel = (field: 'tpr' | 'fpr', title: string, names: boolean) => ({
    width: 200,
    height: Math.max(120, 28 * methods.length),
    layer: [
      {
        // Output names carry the rate: Vega-Lite merges aggregates that look alike across concatenated views.
        transform: [{ aggregate: [{ op: 'min', field, as: `${field}Lo` }, { op: 'max', field, as: `${field}Hi` }], groupby: ['method'] }],
        mark: { type: 'rule', strokeWidth: 3, opacity: 0.45 },
        encoding: { y: { field: 'method', type: 'nominal', sort: methods, title: null, axis: names ? {} : null }, x: { field: `${field}Lo`, type: 'quantitative' }, x2: { field: `${field}Hi` }, color: methodColour(methods) },
      },
      {
        mark: { type: 'point', filled: true, size: 70, opacity: 0.9 },
        encoding: {
          y: { field: 'method', type: 'nominal', sort: methods, title: null, axis: names ? {} : null },
          x: { field, type: 'quantitative', title, scale: { zero: false, padding: 8 } },
          color: methodColour(methods),
          shape: { field: 'group', type: 'nominal', title: 'group' },
          tooltip: [{ field: 'method' }, { field: 'group' }, { field, format: '.3f', title }],
        },
      },
    ],
  });
  return {
    id: `group-rates-${split}`,
    title: `True- and false-positive rate of each group (${split} split)`,
    spec: {
      ...base,
      data: { values: points },
      hconcat: [panel('tpr', 'true-positive rate', true), panel('fpr', 'false-positive rate', false)],
    } as TopLevelSpec,
    caption: 'Each row is a method and each shape a group: the shorter the bar joining a row’s shapes, the closer the groups’ rates (equalized odds wants both bars short).',
  };
}

export interface TradeoffPoint {
  method: string;
  accuracy: number;
  gap: number;
  gapLow: number;
  gapHigh: number;
}

/** Accuracy against the constrained gap, with the gap's bootstrap interval as a horizontal bar. */
export function tradeoffChart(points: TradeoffPoint[], split: string, gapLabel: string): ReportChart {
  const methods = points.map((p) => p.method);
  return {
    id: `tradeoff-${split}`,
    title: `Accuracy against ${gapLabel} (${split} split)`,
    spec: {
      ...base,
      ...SIZE,
      data: { values: points },
      layer: [
        { mark: { type: 'rule', strokeWidth: 2, opacity: 0.6 }, encoding: { y: { field: 'accuracy', type: 'quantitative' }, x: { field: 'gapLow', type: 'quantitative' }, x2: { field: 'gapHigh' }, color: methodColour(methods) } },
        {
          mark: { type: 'point', filled: true, size: 110, opacity: 1 },
          encoding: {
            x: { field: 'gap', type: 'quantitative', title: gapLabel },
            y: { field: 'accuracy', type: 'quantitative', title: 'accuracy', scale: { zero: false, padding: 10 } },
            color: methodColour(methods),
            tooltip: [{ field: 'method' }, { field: 'accuracy', format: '.3f' }, { field: 'gap', format: '.3f', title: gapLabel }],
          },
        },
      ],
    } as TopLevelSpec,
    caption: `Up and to the left is better: higher accuracy, smaller ${gapLabel}. A bar is the 95% bootstrap interval of the gap; overlapping bars mean the split cannot tell the methods apart.`,
  };
}

/** Accuracy of each constituent model as a dot, with the ensemble's accuracy as a line in the plain ensemble's colour. */
export function shardAccuracyChart(shards: { shard: number; accuracy: number }[], ensembleAccuracy: number): ReportChart {
  return {
    id: 'shard-accuracy',
    title: 'Accuracy of each constituent model (test split)',
    spec: {
      ...base,
      ...SIZE,
      layer: [
        {
          data: { values: shards },
          mark: { type: 'point', filled: true, size: 80, color: '#777777' },
          encoding: {
            x: { field: 'shard', type: 'ordinal', title: 'shard', axis: { labelAngle: 0 } },
            y: { field: 'accuracy', type: 'quantitative', title: 'accuracy', scale: { zero: false, padding: 10 } },
            tooltip: [{ field: 'shard' }, { field: 'accuracy', format: '.3f' }],
          },
        },
        {
          data: { values: [{ accuracy: ensembleAccuracy }] },
          mark: { type: 'rule', color: METHOD_COLOURS.sisa, strokeWidth: 2 },
          encoding: { y: { field: 'accuracy', type: 'quantitative', title: 'accuracy' } },
        },
      ],
    } as TopLevelSpec,
    caption: `Dots are the single-shard models, the line is the ensemble's vote (${ensembleAccuracy.toFixed(3)}): a dot far below the others is a shard worth looking at.`,
  };
}

/** The constrained gap of each method after each model change, against the records deleted so far. */
export function historyChart(points: { deletedRecords: number; method: string; gap: number }[], gapLabel: string): ReportChart {
  const methods = points.map((p) => p.method);
  const maxDeleted = Math.max(0, ...points.map((p) => p.deletedRecords));
  return {
    id: 'history',
    title: `${gapLabel[0]!.toUpperCase()}${gapLabel.slice(1)} after each model change (test split)`,
    spec: {
      ...base,
      ...SIZE,
      data: { values: points },
      mark: { type: 'line', point: true },
      encoding: {
        // Records are counted: integer ticks only, and no more ticks than there are integers to show.
        x: { field: 'deletedRecords', type: 'quantitative', title: 'records deleted', axis: { format: 'd', tickMinStep: 1, tickCount: Math.min(10, Math.max(1, maxDeleted)) } },
        y: { field: 'gap', type: 'quantitative', title: gapLabel },
        color: methodColour(methods),
        tooltip: [{ field: 'method' }, { field: 'deletedRecords', title: 'records deleted' }, { field: 'gap', format: '.3f', title: gapLabel }],
      },
    } as TopLevelSpec,
    caption: `A line that climbs after deletions means unlearning made that method less fair; the post-processors are refitted after every deletion and should stay flat.`,
  };
}
