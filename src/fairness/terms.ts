/**
 * Resolves `--group-terms` and `--group-col` flags into group specifications stored in the manifest.
 * Term lists are read once at ingest and their terms are recorded, so predictions made later use the
 * same definition even if the file changes.
 */
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GroupSpec } from '../state/manifest.js';
import { errorMessage, inputError, usageError } from '../util/errors.js';

/** The builtin topics, shipped in assets/group-terms/<topic>.txt. */
export const BUILTIN_TOPICS = ['religion', 'race', 'gender-sexuality', 'disability', 'age'] as const;
export const ANY = 'any';

export function builtinTermsDir(): string {
  // dist/src/fairness → repository root
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'assets', 'group-terms');
}

export function parseTermList(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'));
}

async function readTerms(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw inputError(`${file}: cannot read term list (${errorMessage(err)})`);
  }
  const terms = parseTermList(text);
  if (terms.length === 0) throw inputError(`${file}: term list is empty`);
  return terms;
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,40}$/i;

/** Turns the flags into group specs: one attribute per topic or column, plus `any` of them. */
/** The many-valued attribute over the topics of --group-terms (with two topics or more). */
export const TOPIC = 'topic';

export interface ManyValuedGroups {
  /** Columns whose values are the groups (`--group-values C`, repeatable). */
  valueColumns?: readonly string[];
  /**
   * Adds the many-valued `topic` attribute (two topics or more): a text that mentions several topics goes
   * into the value naming all of them (intersect: 'race+religion') or into the first in the given order.
   */
  overlap?: 'intersect' | 'first';
}

export async function resolveGroups(termSpecs: readonly string[], groupCols: readonly string[], many: ManyValuedGroups = {}): Promise<GroupSpec[]> {
  const specs: GroupSpec[] = [];
  const add = (spec: GroupSpec) => {
    if (spec.name === ANY || (spec.name === TOPIC && spec.kind !== 'values')) throw usageError(`'${spec.name}' is reserved (${ANY}: in any sensitive group; ${TOPIC}: which topics a text mentions); choose another name`);
    if (specs.some((s) => s.name === spec.name)) throw usageError(`sensitive attribute '${spec.name}' is defined twice`);
    specs.push(spec);
  };
  for (const raw of termSpecs) {
    if (raw === 'builtin' || raw.startsWith('builtin:')) {
      const topics = raw === 'builtin' ? [...BUILTIN_TOPICS] : [raw.slice('builtin:'.length)];
      for (const topic of topics) {
        if (!(BUILTIN_TOPICS as readonly string[]).includes(topic))
          throw usageError(`--group-terms ${raw}: unknown builtin topic '${topic}' (builtin topics: ${BUILTIN_TOPICS.join(', ')})`);
        add({ kind: 'terms', name: topic, source: `builtin:${topic}`, terms: await readTerms(path.join(builtinTermsDir(), `${topic}.txt`)) });
      }
      continue;
    }
    const eq = raw.indexOf('=');
    const name = eq > 0 ? raw.slice(0, eq) : path.basename(raw).replace(/\.[^.]*$/, '');
    const file = eq > 0 ? raw.slice(eq + 1) : raw;
    if (!NAME.test(name)) throw usageError(`--group-terms ${raw}: attribute name '${name}' must be letters, digits, '-' or '_'`);
    add({ kind: 'terms', name, source: path.resolve(file), terms: await readTerms(file) });
  }
  for (const col of groupCols) add({ kind: 'column', name: col.replace(/[^a-z0-9_-]/gi, '_'), column: col });
  for (const col of many.valueColumns ?? []) add({ kind: 'values', name: col.replace(/[^a-z0-9_-]/gi, '_'), column: col, values: [] });
  const topics = specs.filter((s) => s.kind === 'terms').map((s) => s.name);
  if (many.overlap !== undefined && topics.length < 2) throw usageError(`--overlap needs two topics or more in --group-terms (given: ${topics.length})`);
  const binary = specs.filter((s) => s.kind !== 'values').map((s) => s.name);
  if (many.overlap !== undefined) add({ kind: 'values', name: TOPIC, topics, overlap: many.overlap, values: ['none'] });
  if (binary.length > 0) specs.push({ kind: 'any', name: ANY, of: binary });
  return specs;
}
