/**
 * Sensitive-group membership, derived at ingest. A group attribute is either a column of the input
 * (`--group-col`) or a topic's term list (`--group-terms`): a record is in the sensitive group when its
 * text mentions any term of the topic as a whole word, case-insensitively. With several topics an
 * extra attribute `any` marks records in any of them.
 */
import type { GroupSpec } from '../state/manifest.js';

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A whole-word, case-insensitive matcher for a list of terms or phrases. */
export function termMatcher(terms: readonly string[]): (text: string) => boolean {
  const cleaned = terms.map((t) => t.trim().toLowerCase()).filter((t) => t.length > 0);
  if (cleaned.length === 0) return () => false;
  // Longer phrases first so that alternation prefers them; whitespace inside a phrase matches any run.
  const alternatives = [...new Set(cleaned)]
    .sort((a, b) => b.length - a.length)
    .map((t) => escapeRegExp(t).replace(/\s+/g, '\\s+'));
  const re = new RegExp(`(?<![\\p{L}\\p{N}_])(?:${alternatives.join('|')})(?![\\p{L}\\p{N}_])`, 'iu');
  return (text) => re.test(text);
}

export type GroupFlagger = (text: string, fields: Record<string, unknown>) => Record<string, number>;

export function groupFlagger(specs: readonly GroupSpec[]): GroupFlagger {
  const evaluators = specs.map((spec) => {
    switch (spec.kind) {
      case 'terms': {
        const match = termMatcher(spec.terms);
        return (text: string) => (match(text) ? 1 : 0);
      }
      case 'column': {
        const positives = spec.positiveValues ? new Set(spec.positiveValues) : null;
        return (_text: string, fields: Record<string, unknown>) => {
          const v = fields[spec.column];
          if (v === null || v === undefined) return 0;
          const s = String(v).trim().toLowerCase();
          if (positives) return positives.has(String(v).trim()) ? 1 : 0;
          return s === '1' || s === 'true' || s === 'yes' || s === 't' ? 1 : 0;
        };
      }
      case 'any':
        return null;
    }
  });
  return (text, fields) => {
    const out: Record<string, number> = {};
    specs.forEach((spec, i) => {
      const ev = evaluators[i];
      if (ev) out[spec.name] = ev(text, fields);
    });
    for (const spec of specs) if (spec.kind === 'any') out[spec.name] = spec.of.some((n) => out[n] === 1) ? 1 : 0;
    return out;
  };
}
