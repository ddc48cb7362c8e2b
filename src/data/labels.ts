/** Binary label parsing: common encodings, explicit positive values, or a threshold on a score. */
import type { LabelRule } from '../state/manifest.js';

const POSITIVE = new Set(['1', '1.0', 'true', 't', 'yes', 'y', 'toxic', 'positive', 'pos']);
const NEGATIVE = new Set(['0', '0.0', 'false', 'f', 'no', 'n', 'non-toxic', 'nontoxic', 'non_toxic', 'not toxic', 'not_toxic', 'clean', 'negative', 'neg']);

export type LabelResult = { ok: true; label: 0 | 1 } | { ok: false; reason: string };

function isMissing(v: unknown): boolean {
  return v === null || v === undefined || (typeof v === 'string' && v.trim() === '');
}

function asText(v: unknown): string {
  return typeof v === 'string' ? v.trim() : String(v);
}

/** The options a message names to map labels: the command's own (report's --eval file has its own). */
export interface LabelFlags {
  positiveValues: string;
  labelThreshold: string;
}
const LABEL_FLAGS: LabelFlags = { positiveValues: '--positive-values', labelThreshold: '--label-threshold' };

export function parseLabel(value: unknown, rule: LabelRule, flags: LabelFlags = LABEL_FLAGS): LabelResult {
  if (isMissing(value)) return { ok: false, reason: 'missing label' };
  switch (rule.kind) {
    case 'positive-values':
      return { ok: true, label: rule.values.includes(asText(value)) ? 1 : 0 };
    case 'threshold': {
      const x = typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : Number(asText(value));
      if (!Number.isFinite(x)) return { ok: false, reason: `label '${asText(value)}' is not a number (${flags.labelThreshold} needs numeric labels)` };
      return { ok: true, label: x >= rule.threshold ? 1 : 0 };
    }
    case 'auto': {
      if (typeof value === 'boolean') return { ok: true, label: value ? 1 : 0 };
      const s = asText(value).toLowerCase();
      if (POSITIVE.has(s)) return { ok: true, label: 1 };
      if (NEGATIVE.has(s)) return { ok: true, label: 0 };
      return {
        ok: false,
        reason: `non-binary label '${asText(value).slice(0, 40)}' (use ${flags.positiveValues} or ${flags.labelThreshold} to map it)`,
      };
    }
  }
}

/** Distinct values kept for the message; a column with more is certainly not binary. */
const MAX_DISTINCT = 12;

/**
 * The label values a file holds, counted as it streams past. Without --positive-values or
 * --label-threshold a label column must be binary: a multi-class column (Davidson et al.'s class
 * 0 = hate, 1 = offensive, 2 = neither) with its "invalid" rows skipped trains a model whose classes
 * mean something else than toxic/non-toxic, and nothing downstream can tell. So such a column is
 * refused as a whole, whatever --skip-invalid says.
 */
export class LabelValues {
  private readonly counts = new Map<string, { shown: string; rows: number }>();
  private more = false;

  add(value: unknown): void {
    if (isMissing(value)) return;
    const shown = typeof value === 'boolean' ? String(value) : asText(value);
    const key = shown.toLowerCase();
    const c = this.counts.get(key);
    if (c) c.rows += 1;
    else if (this.counts.size < MAX_DISTINCT) this.counts.set(key, { shown, rows: 1 });
    else this.more = true;
  }

  /** Why the values cannot be read as a binary label under `rule`, or null when they can. */
  problem(rule: LabelRule, column: string): string | null {
    if (rule.kind !== 'auto') return null;
    const keys = [...this.counts.keys()];
    const outside = keys.filter((k) => !POSITIVE.has(k) && !NEGATIVE.has(k));
    if (outside.length === 0 && keys.length <= 2 && !this.more) return null;
    const values = [...this.counts.values()]
      .sort((a, b) => a.shown.localeCompare(b.shown, 'en', { numeric: true }))
      .map((v) => `'${v.shown.slice(0, 40)}' ×${v.rows}`)
      .join(', ');
    const numeric = keys.every((k) => Number.isFinite(Number(k)));
    return (
      `label column '${column}' is not binary (values: ${values}${this.more ? ', …' : ''}); ` +
      `name the values that mean toxic with --positive-values (comma-separated; every other value counts as non-toxic)` +
      `${numeric ? ' or pass --label-threshold T if the labels are scores' : ''}; ` +
      `--skip-invalid does not apply: skipping the other values' rows would train on classes that do not mean toxic/non-toxic`
    );
  }
}
