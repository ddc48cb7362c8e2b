/** Report charts as Vega-Lite specs, rendered to SVG strings in Node (no browser, no canvas). */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

const base = { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', width: 360, height: 260, config: { font: 'sans-serif' } } as const;

export interface GroupPoint {
  method: string;
  group: string;
  tpr: number;
  fpr: number;
}

/** Each method's two groups as points in ROC space, joined by a line: equalized odds means they coincide. */
export function groupRatesChart(points: GroupPoint[], title: string): TopLevelSpec {
  return {
    ...base,
    title: { text: title, subtitle: 'equalized odds holds where a method’s two points coincide (line of length 0)' },
    data: { values: points },
    layer: [
      { mark: { type: 'line', strokeDash: [4, 3] }, encoding: { x: { field: 'fpr', type: 'quantitative' }, y: { field: 'tpr', type: 'quantitative' }, detail: { field: 'method' }, color: { field: 'method', type: 'nominal' } } },
      {
        mark: { type: 'point', filled: true, size: 90 },
        encoding: {
          x: { field: 'fpr', type: 'quantitative', title: 'false-positive rate', scale: { zero: false } },
          y: { field: 'tpr', type: 'quantitative', title: 'true-positive rate', scale: { zero: false } },
          color: { field: 'method', type: 'nominal' },
          shape: { field: 'group', type: 'nominal' },
          tooltip: [{ field: 'method' }, { field: 'group' }, { field: 'tpr', format: '.3f' }, { field: 'fpr', format: '.3f' }],
        },
      },
    ],
  } as TopLevelSpec;
}

export interface TradeoffPoint {
  method: string;
  accuracy: number;
  eo: number;
  eoLow: number;
  eoHigh: number;
}

export function tradeoffChart(points: TradeoffPoint[], title: string): TopLevelSpec {
  return {
    ...base,
    title: { text: title, subtitle: 'bars: bootstrap 95% interval of the equalized-odds difference' },
    data: { values: points },
    layer: [
      { mark: { type: 'rule' }, encoding: { y: { field: 'accuracy', type: 'quantitative' }, x: { field: 'eoLow', type: 'quantitative' }, x2: { field: 'eoHigh' }, color: { field: 'method', type: 'nominal' } } },
      {
        mark: { type: 'point', filled: true, size: 100 },
        encoding: {
          x: { field: 'eo', type: 'quantitative', title: 'equalized-odds difference (lower is fairer)' },
          y: { field: 'accuracy', type: 'quantitative', title: 'accuracy', scale: { zero: false } },
          color: { field: 'method', type: 'nominal' },
        },
      },
    ],
  } as TopLevelSpec;
}

export function shardAccuracyChart(shards: { shard: number; accuracy: number }[], ensembleAccuracy: number): TopLevelSpec {
  return {
    ...base,
    title: { text: 'Accuracy of each constituent model (test split)', subtitle: `line: the ensemble's vote, ${ensembleAccuracy.toFixed(3)}` },
    layer: [
      { data: { values: shards }, mark: 'bar', encoding: { x: { field: 'shard', type: 'ordinal' }, y: { field: 'accuracy', type: 'quantitative', scale: { zero: false } } } },
      { data: { values: [{ acc: ensembleAccuracy }] }, mark: { type: 'rule', color: 'firebrick', strokeWidth: 2 }, encoding: { y: { field: 'acc', type: 'quantitative' } } },
    ],
  } as TopLevelSpec;
}

export function historyChart(points: { deletedRecords: number; method: string; eoDifference: number }[]): TopLevelSpec {
  return {
    ...base,
    title: { text: 'Equalized-odds difference after each model change (test split)', subtitle: 'x: records deleted so far' },
    data: { values: points },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'deletedRecords', type: 'quantitative', title: 'records deleted' },
      y: { field: 'eoDifference', type: 'quantitative', title: 'equalized-odds difference' },
      color: { field: 'method', type: 'nominal' },
    },
  } as TopLevelSpec;
}
