/** Choosing input columns: an explicit flag must exist; otherwise the first known name that does. */
import { inputError } from '../util/errors.js';

/** Usual names, in order of preference; the unnamed first column of a pandas CSV counts as an id. */
export const ID_CANDIDATES = ['id', 'rev_id', 'comment_id', '_id', ''];
export const TEXT_CANDIDATES = ['text', 'comment_text', 'comment', 'tweet', 'content', 'body'];
export const LABEL_CANDIDATES = ['label', 'toxic', 'is_toxic', 'toxicity', 'target', 'class'];

const list = (names: string[]) => names.map((c) => `'${c}'`).join(', ');

export function findColumn(names: string[], explicit: string | undefined, candidates: readonly (string | null)[], what: string, file: string): string | null {
  if (explicit !== undefined) {
    if (!names.includes(explicit)) throw inputError(`${file}: ${what} column '${explicit}' not found (columns: ${list(names)})`);
    return explicit;
  }
  return candidates.find((c): c is string => c !== null && names.includes(c)) ?? null;
}

/** `flag` is the option that names this column, for the message when none is found (default --WHAT-col). */
export function requireColumn(names: string[], explicit: string | undefined, candidates: readonly (string | null)[], what: string, file: string, flag = `--${what}-col`): string {
  const found = findColumn(names, explicit, candidates, what, file);
  if (found === null) throw inputError(`${file}: no ${what} column found; pass ${flag} (columns: ${list(names)})`);
  return found;
}
