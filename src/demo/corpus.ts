/**
 * A synthetic toxicity corpus, generated offline from a seed, so that the demo, the tests and the
 * benchmarks have a data set that ships with the project. Texts are built from a vocabulary of
 * invented neutral words, a short list of insults, and identity mentions taken from the builtin
 * sensitive-topic term lists.
 *
 * With `annotatorBias > 0` the corpus reproduces the failure FairSISA is about: annotators label some
 * harmless texts that mention an identity term as toxic, so a model learns the identity term itself
 * as a toxicity cue and its error rates differ between the sensitive group and the rest.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { mulberry32 } from '../util/rng.js';
import { commitTempFile, fsyncFile, tempPathFor } from '../util/fsx.js';

export interface CorpusOptions {
  rows: number;
  seed: number;
  /** Fraction of rows that mention an identity term. */
  groupRate?: number;
  /** Probability that a harmless text mentioning an identity term is labelled toxic. */
  annotatorBias?: number;
  /** Fraction of rows whose true toxicity is positive. */
  toxicRate?: number;
  /**
   * Adds a `region` column (north, south, and a small 'islands' group of about 1%), derived from a hash
   * of the id so that the texts and labels are the same with or without it: a three-group attribute.
   */
  regions?: boolean;
}

/** The `region` of a generated record: a pure function of its id. */
export function corpusRegion(id: string): string {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619) >>> 0;
  const r = h % 1000;
  return r < 10 ? 'islands' : r % 2 === 0 ? 'north' : 'south';
}

const INSULTS = ['idiot', 'stupid', 'moron', 'loser', 'trash', 'pathetic', 'dumb', 'clown', 'worthless', 'disgusting', 'scum', 'garbage', 'shut up', 'hate you', 'ugly', 'freak', 'jerk', 'creep'];
const MILD = ['annoying', 'ridiculous', 'nonsense', 'whatever', 'seriously', 'lame'];
const FRAMES = ['i think', 'honestly', 'my friend said', 'look at this', 'today', 'why is', 'so', 'yesterday', 'lol', 'you know', 'apparently'];
const IDENTITY = ['muslim', 'jewish', 'christian', 'gay', 'lesbian', 'black', 'asian', 'mexican', 'women', 'transgender', 'disabled', 'deaf', 'elderly', 'immigrant', 'hindu', 'atheist'];
const SYLLABLES = ['ka', 'lo', 'mi', 'ren', 'tu', 'sa', 'vel', 'dor', 'pi', 'an', 'qui', 'zo', 'mar', 'ble', 'fen', 'gri', 'hol', 'nu', 'et', 'wy'];

function vocabulary(rand: () => number, size: number): string[] {
  const words = new Set<string>();
  while (words.size < size) {
    const n = 2 + Math.floor(rand() * 2);
    let w = '';
    for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(rand() * SYLLABLES.length)]!;
    words.add(w);
  }
  return [...words];
}

export interface CorpusRow {
  id: string;
  text: string;
  label: 0 | 1;
  /** Ground truth before annotation, and whether the text mentions an identity term. */
  trulyToxic: boolean;
  mentionsIdentity: boolean;
}

/** Generates rows one at a time (so a million rows need no memory). */
export function* generateCorpus(o: CorpusOptions): Generator<CorpusRow> {
  const rand = mulberry32(o.seed);
  const vocab = vocabulary(mulberry32(o.seed ^ 0x1234567), 3000);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  // Zipf-like word frequencies: common words recur, as in real text.
  const word = () => vocab[Math.floor(vocab.length * rand() ** 2.5)]!;
  const groupRate = o.groupRate ?? 0.3;
  const bias = o.annotatorBias ?? 0;
  const toxicRate = o.toxicRate ?? 0.35;
  for (let i = 0; i < o.rows; i++) {
    const trulyToxic = rand() < toxicRate;
    const mentionsIdentity = rand() < groupRate;
    const words: string[] = [];
    const len = 5 + Math.floor(rand() * 14);
    for (let k = 0; k < len; k++) words.push(word());
    const insert = (w: string) => words.splice(Math.floor(rand() * (words.length + 1)), 0, w);
    if (trulyToxic) {
      // Most toxic texts carry an explicit insult; some are only rude in tone.
      if (rand() < 0.8) insert(pick(INSULTS));
      if (rand() < 0.35) insert(pick(INSULTS));
      if (rand() < 0.5) insert(pick(MILD));
    } else {
      if (rand() < 0.04) insert(pick(INSULTS)); // quoting or reclaiming an insult
      if (rand() < 0.15) insert(pick(MILD));
    }
    if (mentionsIdentity) insert(pick(IDENTITY));
    words.unshift(pick(FRAMES));
    let label: 0 | 1 = trulyToxic ? (rand() < 0.96 ? 1 : 0) : rand() < 0.04 ? 1 : 0;
    if (!trulyToxic && mentionsIdentity && rand() < bias) label = 1;
    yield { id: `d${i}`, text: words.join(' '), label, trulyToxic, mentionsIdentity };
  }
}

/** Writes the corpus as CSV (id,text,label, and region with `regions`) atomically. */
export async function writeCorpusCsv(file: string, o: CorpusOptions): Promise<number> {
  const tmp = tempPathFor(file);
  const out = createWriteStream(tmp);
  out.write(o.regions ? 'id,text,label,region\n' : 'id,text,label\n');
  let n = 0;
  for (const r of generateCorpus(o)) {
    const region = o.regions ? `,${corpusRegion(r.id)}` : '';
    if (!out.write(`${r.id},"${r.text.replace(/"/g, '""')}",${r.label}${region}\n`)) await once(out, 'drain');
    n += 1;
  }
  out.end();
  await once(out, 'finish');
  await fsyncFile(tmp);
  await commitTempFile(tmp, file);
  return n;
}
