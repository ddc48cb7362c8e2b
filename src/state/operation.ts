/**
 * Every state-changing operation runs through here: take the workspace lock, refuse if an earlier
 * operation was interrupted, journal `begin`, run, journal `end` (or `abort` on a clean failure, after
 * which the operation itself has left the committed state as it was).
 */
import { errorMessage } from '../util/errors.js';
import { beginOperation, refuseIfPending, type OpKind, type Operation } from './journal.js';
import { withWorkspaceLock } from './lock.js';
import { workspace } from './workspace.js';

export interface OperationOptions {
  /** Wait for another sisa process holding the workspace instead of failing at once. */
  wait?: boolean;
}

export async function runOperation<T>(workdir: string, kind: OpKind, opts: OperationOptions & { pending?: unknown }, body: (op: Operation) => Promise<T>): Promise<T> {
  const ws = workspace(workdir);
  return withWorkspaceLock(ws, opts.wait ?? false, async () => {
    await refuseIfPending(ws);
    const op = await beginOperation(ws, kind, opts.pending);
    let result: T;
    try {
      result = await body(op);
    } catch (err) {
      await op.abort(errorMessage(err).slice(0, 500));
      throw err;
    }
    await op.end();
    return result;
  });
}
