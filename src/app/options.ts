/**
 * Checking a use case's options at the door. A library caller who passes `positiveValues: '0,1'` (the
 * CLI's spelling) should hear about it in one line naming the option, before any file is read or
 * written, not as a schema error from deep inside after the input has been streamed and a shard file
 * left behind. Ranges and combinations are each use case's own business; this checks shapes and names.
 */
import { usageError } from '../util/errors.js';
import { suggestName } from '../util/suggest.js';

export type OptionKind =
  | 'string'
  | 'number'
  | 'boolean'
  | 'function'
  | 'string[]'
  | 'object' // any non-null object, e.g. a job runner
  | 'array' // any array, e.g. sensitive group specs
  | { oneOf: readonly string[] }
  | { fields: Record<string, OptionRule> };

export interface OptionRule {
  kind: OptionKind;
  required?: boolean;
}

/** One rule per option of T, no more, no fewer: adding an option to T without a rule does not compile. */
export type OptionSpec<T> = { [K in keyof T]-?: OptionRule };

const opt = (kind: OptionKind): OptionRule => ({ kind });
const req = (kind: OptionKind): OptionRule => ({ kind, required: true });
export const rule = { opt, req };

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `a string (${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)})`;
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : `a number (${v})`;
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

function describeKind(kind: OptionKind): string {
  if (typeof kind === 'object') return 'oneOf' in kind ? `one of ${kind.oneOf.map((x) => `'${x}'`).join(', ')}` : 'an object';
  return { string: 'a string', number: 'a number', boolean: 'true or false', function: 'a function', 'string[]': 'an array of strings', object: 'an object', array: 'an array' }[kind];
}

function fits(kind: OptionKind, v: unknown): boolean {
  if (typeof kind === 'object') return 'oneOf' in kind ? typeof v === 'string' && kind.oneOf.includes(v) : typeof v === 'object' && v !== null && !Array.isArray(v);
  switch (kind) {
    case 'string[]':
      return Array.isArray(v) && v.every((x) => typeof x === 'string');
    case 'array':
      return Array.isArray(v);
    case 'number':
      return typeof v === 'number' && !Number.isNaN(v); // NaN (Number('abc')) only fails later, as something else
    case 'object':
      return typeof v === 'object' && v !== null;
    default:
      return typeof v === kind;
  }
}

function check(useCase: string, o: unknown, spec: Record<string, OptionRule>, prefix: string): void {
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    throw usageError(`${useCase}: ${prefix ? `option '${prefix.slice(0, -1)}' must be an object` : 'expects an options object'}, got ${describeValue(o)}`);
  const known = Object.keys(spec);
  for (const key of Object.keys(o)) {
    if (!(key in spec)) {
      const hint = suggestName(key, known);
      throw usageError(`${useCase}: unknown option '${prefix}${key}'${hint ? ` (did you mean '${prefix}${hint}'?)` : ''}`);
    }
  }
  for (const [key, r] of Object.entries(spec)) {
    const v = (o as Record<string, unknown>)[key];
    if (v === undefined) {
      if (r.required) throw usageError(`${useCase}: option '${prefix}${key}' is required (${describeKind(r.kind)})`);
      continue;
    }
    if (!fits(r.kind, v)) throw usageError(`${useCase}: option '${prefix}${key}' must be ${describeKind(r.kind)}, got ${describeValue(v)}`);
    if (typeof r.kind === 'object' && 'fields' in r.kind) check(useCase, v, r.kind.fields, `${prefix}${key}.`);
  }
}

/** Throws a one-line usage SisaError naming the first option that is unknown, missing or of the wrong type. */
export function checkOptions<T>(useCase: string, o: T, spec: OptionSpec<T>): void {
  check(useCase, o, spec as Record<string, OptionRule>, '');
}
