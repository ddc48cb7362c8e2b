/**
 * The deletion log: one JSON entry per deletion batch in `manifests/deletions/NNNNNN.json`. An entry is
 * written (atomically) before the state that counts it is committed; entries beyond the committed
 * count belong to an operation that did not finish and are ignored.
 */
import { assertMayCommit } from './lock.js';
import { number, z } from './schema.js';
import type { State } from './manifest.js';
import type { Workspace } from './workspace.js';
import { errorMessage, stateError } from '../util/errors.js';
import { randomBytes } from 'node:crypto';
import { sha256 } from '../util/fsx.js';

export const DeletionEntrySchema = z.object({
  seq: number().int().positive(),
  time: z.string(),
  /** sha256 of the previous entry's file (null for the first): the log is a hash chain. */
  prevSha256: z.string().nullable(),
  /** Ids are salted sha256 hashes (--hash-ids), so the receipt does not itself hold personal data. */
  idsHashed: z.boolean(),
  startedAt: z.string(),
  requested: number().int().nonnegative(),
  deleted: z.array(z.string()),
  notFound: z.array(z.string()),
  shards: z.array(
    z.object({
      shard: number().int().nonnegative(),
      fromSlice: number().int().nonnegative(),
      ids: z.array(z.string()),
      shardSha256Before: z.string(),
      shardSha256After: z.string(),
      fromCheckpoint: z.string().nullable(),
      modelVersion: number().int().positive(),
      modelHash: z.string(),
      seconds: number().nonnegative(),
    }),
  ),
  heldout: z.array(z.object({ split: z.enum(['test', 'calibration']), ids: z.array(z.string()), sha256Before: z.string(), sha256After: z.string() })),
  seconds: number().nonnegative(),
});
export type DeletionEntry = z.infer<typeof DeletionEntrySchema>;

/** A receipt's name in the metadata store. */
export const entryDoc = (seq: number) => `deletions/${String(seq).padStart(6, '0')}.json`;

export function entryPath(ws: Workspace, seq: number): string {
  return ws.meta.where(entryDoc(seq));
}

/** Writes a receipt; returns the sha256 of its file, which the state that commits it records. */
export async function writeEntry(ws: Workspace, entry: DeletionEntry): Promise<string> {
  await assertMayCommit(ws); // a receipt number belongs to the lock holder; after the receipt, the commit follows
  const text = JSON.stringify(DeletionEntrySchema.parse(entry), null, 2) + '\n';
  await ws.meta.write(entryDoc(entry.seq), text);
  return sha256(text);
}

/**
 * sha256 of an entry's file, the link the next entry carries. The entry must be a valid entry with its
 * own number, and match `recorded` (the state's lastReceiptSha256) when given: a new entry is never
 * chained onto a damaged or edited one, which would leave the chain broken for good.
 */
export async function entrySha256(ws: Workspace, seq: number, recorded?: string): Promise<string | null> {
  if (seq < 1) return null;
  const bytes = await ws.meta.readBytes(entryDoc(seq)).catch(() => null);
  if (!bytes) throw stateError(`${entryPath(ws, seq)}: deletion log entry is missing; the log chain is broken (run 'sisa verify')`);
  const entry = parseEntry(ws, seq, new TextDecoder().decode(bytes));
  if (entry.seq !== seq) throw stateError(`${entryPath(ws, seq)}: deletion log entry claims sequence number ${entry.seq}; run 'sisa verify'`);
  const hash = sha256(bytes);
  if (recorded !== undefined && hash !== recorded)
    throw stateError(`${entryPath(ws, seq)}: deletion log entry ${seq} was changed after its commit (its sha256 is not the one the manifest recorded); restore it from a backup: no new receipt is chained onto it`);
  return hash;
}

/** An entry's text parsed and checked, or a one-line error naming the file and the first problem. */
function parseEntry(ws: Workspace, seq: number, text: string): DeletionEntry {
  try {
    return DeletionEntrySchema.parse(JSON.parse(text));
  } catch (err) {
    const issue = err instanceof z.ZodError ? err.issues[0] : undefined;
    const why = issue ? `invalid entry at '${issue.path.join('.')}': ${issue.message}` : errorMessage(err);
    throw stateError(`${entryPath(ws, seq)}: deletion log entry is missing or damaged (${why})`, err);
  }
}

const SALT_DOC = 'salt';

/** The workspace's secret salt for hashing ids in receipts; created on first use. */
export async function idSalt(ws: Workspace, create: boolean): Promise<string | null> {
  const stored = await ws.meta.read(SALT_DOC).catch(() => null);
  if (stored !== null) return stored.trim();
  if (!create) return null;
  const salt = randomBytes(32).toString('hex');
  await ws.meta.write(SALT_DOC, salt + '\n');
  return salt;
}

export function hashId(salt: string, id: string): string {
  return sha256(`${salt}\u0000${id}`);
}

/** A predicate telling whether an id was deleted earlier (by raw id, or by salted hash). */
export async function deletedIdMatcher(ws: Workspace, state: State): Promise<(id: string) => boolean> {
  const receiptOf = await deletionReceiptFinder(ws, state);
  return (id) => receiptOf(id) !== null;
}

/** The receipt (log entry number) that deleted an id, or null when no receipt names it (raw or hashed). */
export async function deletionReceiptFinder(ws: Workspace, state: State): Promise<(id: string) => number | null> {
  const raw = new Map<string, number>();
  const hashed = new Map<string, number>();
  for (const e of await readLog(ws, state)) for (const id of e.deleted) (e.idsHashed ? hashed : raw).set(id, e.seq);
  const salt = hashed.size ? await idSalt(ws, false) : null;
  return (id) => raw.get(id) ?? (salt !== null ? hashed.get(hashId(salt, id)) : undefined) ?? null;
}

/**
 * The highest model version each shard's deletion receipts name. A new model must not get a version
 * below it: verify reads a lower version as a model older than the deletion (workspaces re-ingested
 * before versions carried over hold such receipts).
 */
export async function receiptModelVersions(ws: Workspace, state: State): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const e of await readLog(ws, state)) for (const t of e.shards) out.set(t.shard, Math.max(out.get(t.shard) ?? 0, t.modelVersion));
  return out;
}

export async function readEntry(ws: Workspace, seq: number): Promise<DeletionEntry> {
  let text: string | null;
  try {
    text = await ws.meta.read(entryDoc(seq));
  } catch (err) {
    throw stateError(`${entryPath(ws, seq)}: deletion log entry is missing or damaged (${errorMessage(err)})`, err);
  }
  if (text === null) throw stateError(`${entryPath(ws, seq)}: deletion log entry is missing or damaged (no such file)`);
  return parseEntry(ws, seq, text);
}

export async function readLog(ws: Workspace, state: State): Promise<DeletionEntry[]> {
  const out: DeletionEntry[] = [];
  for (let seq = 1; seq <= state.deletions; seq++) out.push(await readEntry(ws, seq));
  return out;
}

