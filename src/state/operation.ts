/**
 * Every state-changing operation runs through here: take the workspace lock, refuse if an earlier
 * operation was interrupted, journal `begin`, run, journal `end` (or `abort` on a clean failure, after
 * which the operation itself has left the committed state as it was).
 */
import { errorMessage, journalNoteOf, SisaError } from '../util/errors.js';
import { beginOperation, refuseIfPending, type OpKind, type Operation } from './journal.js';
import { workspaceLease } from './lock.js';
import { workspace } from './workspace.js';

export interface OperationOptions {
  /** Wait for another sisa process holding the workspace instead of failing at once. */
  wait?: boolean;
}

export interface PendingRequestOptions {
  /** The request, written to `manifests/pending/` (fsynced) before the journal's `begin`: from then on it is accepted. */
  pending?: unknown;
  /** Which failures leave the accepted request pending (the rest refuse it, and it is removed). */
  keepPendingOn?: (err: unknown) => boolean;
  /** Appended to the error's message when the request is kept: what the user should do next. */
  keptPendingHint?: string;
}

export async function runOperation<T>(workdir: string, kind: OpKind, opts: OperationOptions & PendingRequestOptions, body: (op: Operation) => Promise<T>): Promise<T> {
  const ws = workspace(workdir);
  const lease = workspaceLease(ws);
  return lease.hold(opts.wait ?? false, async () => {
    await refuseIfPending(ws);
    const op = await beginOperation(ws, kind, opts.pending);
    let result: T;
    try {
      result = await body(op);
    } catch (err) {
      // A process that lost the lock writes nothing more: the journal is the new holder's now.
      if (!(await lease.isHeld())) throw err;
      const keep = opts.pending !== undefined && (opts.keepPendingOn?.(err) ?? false);
      const note = journalNoteOf(err);
      await op.abort(keep ? `${note}; the request stays pending` : note, { keepRequest: keep });
      if (!keep && err instanceof SisaError && err.code === 'INTERRUPTED')
        throw new SisaError('INTERRUPTED', `interrupted (Ctrl-C): the ${kind} was rolled back; the workspace is as it was before it started`, { cause: err });
      if (!keep) throw err;
      throw new SisaError(err instanceof SisaError ? err.code : 'STATE', `${errorMessage(err)}; ${opts.keptPendingHint ?? 'the request stays pending'}`, { cause: err, journalNote: note });
    }
    await op.end();
    return result;
  });
}
