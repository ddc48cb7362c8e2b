/**
 * Sensitive-group membership, derived at ingest. A group attribute is either a column of the input
 * (`--group-col`) or a topic's term list (`--group-terms`): a record is in the sensitive group when its
 * text mentions any term of the topic as a whole word, case-insensitively. With several topics an
 * extra attribute `any` marks records in any of them.
 */
import type { GroupSpec } from '../state/manifest.js';
import { inputError } from '../util/errors.js';

/** Group codes are stored in one byte per row. */
export const MAX_GROUP_VALUES = 256;
const MISSING = '(missing)';

/**
 * The code of a value of a many-valued attribute. At ingest (`grow`) a new value is appended to the
 * attribute's list, so codes follow first appearance in the file; elsewhere (predict, evaluate) a value
 * the ingest never saw has no code, and is refused rather than put in some other group.
 */
function valueCode(spec: Extract<GroupSpec, { kind: 'values' }>, value: string, grow: boolean): number {
  let code = spec.values.indexOf(value);
  if (code >= 0) return code;
  const what = spec.column !== undefined ? `column '${spec.column}'` : `attribute '${spec.name}'`;
  if (!grow) throw inputError(`${what}: value '${value}' was not seen at ingest, so it has no group (known: ${spec.values.slice(0, 8).join(', ')}${spec.values.length > 8 ? ', …' : ''})`);
  if (spec.values.length >= MAX_GROUP_VALUES) throw inputError(`${what} has more than ${MAX_GROUP_VALUES} distinct values; a sensitive attribute is stored in one byte per row (group rare values before ingest)`);
  code = spec.values.push(value) - 1;
  return code;
}

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

/**
 * `grow`: at ingest, many-valued attributes learn their values (the specs' `values` lists grow in place,
 * and are stored with the state); elsewhere an unknown value is an error.
 */
export function groupFlagger(specs: readonly GroupSpec[], opts: { grow?: boolean } = {}): GroupFlagger {
  const grow = opts.grow ?? false;
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
      case 'values': {
        const column = spec.column;
        if (column === undefined) return null; // a topic attribute: computed from the topics below
        return (_text: string, fields: Record<string, unknown>) => {
          const v = fields[column];
          const s = v === null || v === undefined ? '' : String(v).trim();
          return valueCode(spec, s === '' ? MISSING : s, grow);
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
    for (const spec of specs) {
      if (spec.kind === 'any') out[spec.name] = spec.of.some((n) => out[n] === 1) ? 1 : 0;
      if (spec.kind === 'values' && spec.topics) {
        const hit = spec.topics.filter((t) => out[t] === 1);
        const value = hit.length === 0 ? 'none' : spec.overlap === 'first' ? hit[0]! : hit.join('+');
        out[spec.name] = valueCode(spec, value, grow);
      }
    }
    return out;
  };
}
