/**
 * The operation journal: `manifests/journal.jsonl`, append-only and fsynced. Every state-changing
 * operation appends `begin` before it touches anything and `end` after its commit and clean-up; a
 * clean failure appends `abort`. A `begin` without an end means the process died mid-operation: every
 * command then refuses to run until `sisa recover` has finished or rolled it back.
 *
 * Deletion requests are kept, while pending, in `manifests/pending/<seq>.json`, written before the
 * journal line, so an accepted request survives a crash and `recover` completes it.
 */
import { number, z } from './schema.js';
import { SisaError } from '../util/errors.js';
import type { Workspace } from './workspace.js';

export type OpKind = 'ingest' | 'train' | 'delete' | 'fairness-fit' | 'recover';

const Line = z.object({
  seq: number().int(),
  op: z.enum(['ingest', 'train', 'delete', 'fairness-fit', 'recover']),
  phase: z.enum(['begin', 'end', 'abort']),
  time: z.string(),
  pid: number().int(),
  note: z.string().optional(),
});
export type JournalLine = z.infer<typeof Line>;

const JOURNAL_DOC = 'journal.jsonl';
const PENDING = 'pending';
const pendingDoc = (seq: number) => `${PENDING}/${String(seq).padStart(6, '0')}.json`;
export const pendingDir = (ws: Workspace) => ws.meta.where(PENDING);
export const pendingPath = (ws: Workspace, seq: number) => ws.meta.where(pendingDoc(seq));

async function append(ws: Workspace, line: JournalLine): Promise<void> {
  await ws.meta.append(JOURNAL_DOC, JSON.stringify(line));
}

export async function readJournal(ws: Workspace): Promise<JournalLine[]> {
  const text = await ws.meta.read(JOURNAL_DOC).catch(() => null);
  if (text === null) return [];
  const out: JournalLine[] = [];
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    try {
      out.push(Line.parse(JSON.parse(raw)));
    } catch {
      // A torn last line (crash during append) is an unfinished begin at worst; skip it.
    }
  }
  return out;
}

/** The operation that began and never ended, if any. */
export async function pendingOperation(ws: Workspace): Promise<JournalLine | null> {
  const lines = await readJournal(ws);
  const open = new Map<number, JournalLine>();
  for (const l of lines) {
    if (l.phase === 'begin') open.set(l.seq, l);
    else open.delete(l.seq);
  }
  return [...open.values()].at(-1) ?? null;
}

export async function refuseIfPending(ws: Workspace): Promise<void> {
  const p = await pendingOperation(ws);
  if (p)
    throw new SisaError('STATE', `an interrupted '${p.op}' (started ${p.time} by process ${p.pid}) must be recovered first: run 'sisa recover'`);
}

export interface Operation {
  seq: number;
  end(note?: string): Promise<void>;
  /**
   * Journals a clean failure. The operation's pending request is removed unless `keepRequest`: an
   * accepted deletion that failed for a reason other than its own content (a full disk, a failed
   * worker) stays in `manifests/pending/` until `recover` or the next `delete` applies it.
   */
  abort(note?: string, opts?: { keepRequest?: boolean }): Promise<void>;
}

export async function beginOperation(ws: Workspace, op: OpKind, pendingRequest?: unknown): Promise<Operation> {
  const lines = await readJournal(ws);
  const seq = (lines.at(-1)?.seq ?? 0) + 1;
  if (pendingRequest !== undefined) await ws.meta.write(pendingDoc(seq), JSON.stringify(pendingRequest) + '\n');
  const stamp = () => ({ seq, op, time: new Date().toISOString(), pid: process.pid });
  try {
    await append(ws, { ...stamp(), phase: 'begin' });
  } catch (err) {
    // Not begun, so not accepted: the request must not outlive the failure as a kept one.
    if (pendingRequest !== undefined) await ws.meta.remove(pendingDoc(seq)).catch(() => undefined);
    throw err;
  }
  const finish = async (phase: 'end' | 'abort', note?: string, keepRequest = false) => {
    // The journal line first: a crash between the two leaves a request file for a closed operation,
    // which the next delete or recover re-applies harmlessly (its ids are then already deleted). The
    // other order would leave an open delete without its request, which recover could only roll back.
    await append(ws, { ...stamp(), phase, ...(note ? { note } : {}) });
    if (!keepRequest) await ws.meta.remove(pendingDoc(seq));
  };
  return { seq, end: (note) => finish('end', note), abort: (note, opts) => finish('abort', note, opts?.keepRequest ?? false) };
}

/** An accepted deletion request in `manifests/pending/`, by the journal sequence number that accepted it. */
export interface PendingRequestFile {
  seq: number;
  /** Whether its operation is still open in the journal (interrupted): then `recover` handles it as such. */
  open: boolean;
}

/** Every accepted request not yet applied: those of an interrupted operation and those kept after a clean failure. */
export async function pendingRequests(ws: Workspace): Promise<PendingRequestFile[]> {
  const names = await ws.meta.list(PENDING);
  const open = await pendingOperation(ws);
  return names
    .map((n) => /^(\d{6,})\.json$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b)
    .map((seq) => ({ seq, open: open?.seq === seq }));
}

/** Removes an applied (or refused) request that a clean failure had kept. */
export async function removePendingRequest(ws: Workspace, seq: number): Promise<void> {
  await ws.meta.remove(pendingDoc(seq));
}

/** Closes an interrupted operation's journal entry (used by recover). */
export async function closeOperation(ws: Workspace, line: JournalLine, phase: 'end' | 'abort', note: string): Promise<void> {
  await append(ws, { seq: line.seq, op: line.op, phase, time: new Date().toISOString(), pid: process.pid, note });
  await ws.meta.remove(pendingDoc(line.seq));
}

/** What to do about a damaged request file: its ids cannot be read back, so only a person can decide. */
export const DAMAGED_REQUEST_HINT = 'restore it from a backup, or remove the file to drop that request';

/**
 * A pending request's JSON (null when there is no such file). A file that is not JSON is an error naming
 * it: an accepted request is never dropped, nor taken for absent, without a word.
 */
export async function readPending(ws: Workspace, seq: number): Promise<unknown> {
  const text = await ws.meta.read(pendingDoc(seq));
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new SisaError('STATE', `${pendingPath(ws, seq)}: accepted deletion request is damaged (not valid JSON); ${DAMAGED_REQUEST_HINT}`);
  }
}
