/**
 * The schema library of the state files (manifest, journal, deletion receipts).
 *
 * Every command reads the manifest and the journal, so the validator's load time is part of every
 * deletion's latency. zod 4's own API costs about 0.1 s to load (it brings its whole locale set); the
 * zod 3 API that the same package ships ('zod/v3') loads in about a fifth of that and covers every
 * schema here. What a person reads must not change with it: the error map below words each problem as
 * zod 4 does ("Invalid input: expected number, received string", "Too small: expected number to be >0"),
 * which is what 'invalid manifest at …' and 'invalid learner setting …' quote. Numbers are finite, as
 * zod 4's are (zod 3 lets 1e400, parsed as Infinity, through).
 */
import { z, type ZodErrorMap, type ZodIssueOptionalMessage } from 'zod/v3';

export { z };

/** A JSON-ish rendering of one literal, as zod 4 quotes it: strings in double quotes, the rest as is. */
const quoted = (v: unknown) => (typeof v === 'string' ? `"${v}"` : String(v));

/** zod 3's type names where zod 4 says otherwise. */
const typeName = (t: string) => (t === 'integer' ? 'int' : t === 'float' ? 'number' : t === 'nan' ? 'NaN' : t);

/** The message zod 4 gives for this issue, or null where zod 3's own wording is already the same. */
export function zod4Message(issue: ZodIssueOptionalMessage, data: unknown): string | null {
  switch (issue.code) {
    case 'invalid_type':
      return `Invalid input: expected ${typeName(issue.expected)}, received ${typeName(issue.received)}`;
    case 'not_finite':
      return `Invalid input: expected number, received ${String(data)}`;
    case 'invalid_literal':
      return `Invalid input: expected ${quoted(issue.expected)}`;
    case 'invalid_enum_value':
      return `Invalid option: expected one of ${issue.options.map(quoted).join('|')}`;
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const bound = small ? issue.minimum : issue.maximum;
      const adj = issue.exact ? 'exactly ' : issue.inclusive ? (small ? '>=' : '<=') : small ? '>' : '<';
      const what = small ? 'Too small' : 'Too big';
      if (issue.type === 'string') return `${what}: expected string to have ${adj}${bound} characters`;
      if (issue.type === 'array') return `${what}: expected array to have ${adj}${bound} items`;
      return `${what}: expected ${issue.type} to be ${adj}${bound}`;
    }
    default:
      return null;
  }
}

const zod4Wording: ZodErrorMap = (issue, ctx) => ({ message: zod4Message(issue, ctx.data) ?? ctx.defaultError });
z.setErrorMap(zod4Wording);

/** A finite number (zod 4's z.number()). */
export const number = () => z.number().finite();

/** A string matching `pattern`, refused in zod 4's words (zod 3's issue does not carry the pattern). */
export const matching = (pattern: RegExp) => z.string().regex(pattern, `Invalid string: must match pattern ${pattern}`);

/** A record of strings to `values`: zod 4 names the expected type 'record', zod 3 'object'. */
export const record = <T extends z.ZodTypeAny>(values: T) =>
  z.record(z.string(), values, { errorMap: (issue, ctx) => ({ message: issue.code === 'invalid_type' && issue.expected === 'object' ? ctx.defaultError.replace('expected object', 'expected record') : ctx.defaultError }) });
