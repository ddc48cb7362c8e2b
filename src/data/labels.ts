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

export function parseLabel(value: unknown, rule: LabelRule): LabelResult {
  if (isMissing(value)) return { ok: false, reason: 'missing label' };
  switch (rule.kind) {
    case 'positive-values':
      return { ok: true, label: rule.values.includes(asText(value)) ? 1 : 0 };
    case 'threshold': {
      const x = typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : Number(asText(value));
      if (!Number.isFinite(x)) return { ok: false, reason: `label '${asText(value)}' is not a number (--label-threshold needs numeric labels)` };
      return { ok: true, label: x >= rule.threshold ? 1 : 0 };
    }
    case 'auto': {
      if (typeof value === 'boolean') return { ok: true, label: value ? 1 : 0 };
      const s = asText(value).toLowerCase();
      if (POSITIVE.has(s)) return { ok: true, label: 1 };
      if (NEGATIVE.has(s)) return { ok: true, label: 0 };
      return {
        ok: false,
        reason: `non-binary label '${asText(value).slice(0, 40)}' (use --positive-values or --label-threshold to map it)`,
      };
    }
  }
}
