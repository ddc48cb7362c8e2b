/**
 * `sisa recover`: finishes or rolls back an operation that was interrupted (kill -9, power loss, full
 * disk). The manifest is the only commit point, so rolling back is removing what the interrupted
 * operation wrote without committing; an accepted deletion request is never rolled back but applied.
 */
import { refitIfStale } from './fairnessFit.js';
import { applyDeletion, applyKeptRequests, checkPendingRequests, readDeletionRequest, refusesRequest, type DeleteResult } from './delete.js';
import { errorMessage } from '../util/errors.js';
import { pausePoint } from '../util/faults.js';
import { garbageCollect } from '../state/gc.js';
import { closeOperation, pendingOperation } from '../state/journal.js';
import { workspaceLease } from '../state/lock.js';
import { tryLoadState } from '../state/manifest.js';
import { workspace } from '../state/workspace.js';
import { checkOptions, rule } from './options.js';

export interface RecoverResult {
  interrupted: { op: string; startedAt: string; pid: number } | null;
  action: 'none' | 'completed' | 'rolled back' | 'rejected';
  deletion: DeleteResult | null;
  /** Requests that earlier clean failures (a full disk, a failed worker) had kept pending, now applied. */
  keptRequests: DeleteResult[];
  removedFiles: string[];
  note: string;
}

export interface RecoverOptions {
  /** Workspace folder in which an operation was interrupted. */
  workdir: string;
  /** Wait for another sisa process holding the workspace instead of failing. */
  wait?: boolean;
}

/** Finishes an interrupted deletion, rolls back any other interrupted operation, and removes stray files. */
export async function recover(o: RecoverOptions): Promise<RecoverResult> {
  checkOptions('recover', o, { workdir: rule.req('string'), wait: rule.opt('boolean') });
  const ws = workspace(o.workdir);
  return workspaceLease(ws).hold(o.wait ?? false, async () => {
    await pausePoint('recover:locked');
    const p = await pendingOperation(ws);
    // A damaged request file stops recover before it changes anything (see readDeletionRequest).
    await checkPendingRequests(ws);
    const result: RecoverResult = { interrupted: p ? { op: p.op, startedAt: p.time, pid: p.pid } : null, action: 'none', deletion: null, keptRequests: [], removedFiles: [], note: '' };
    if (p?.op === 'delete') {
      const req = await readDeletionRequest(ws, p.seq);
      if (req) {
        try {
          // Re-applying is safe: ids the interrupted run already committed are simply not found now.
          result.deletion = await applyDeletion({ workdir: ws.root, ids: req.ids, strict: req.strict, hashIds: req.hashIds, fullRetrain: req.fullRetrain ?? false }, req.requestedAt);
          result.action = 'completed';
        } catch (err) {
          if (!refusesRequest(err)) throw err;
          result.action = 'rejected';
          result.note = errorMessage(err);
        }
      }
    }
    if (p && result.action === 'none') result.action = 'rolled back';
    // With no committed state (the very first ingest died), every data file is uncommitted.
    const state = await tryLoadState(ws);
    if (state || p) result.removedFiles = (await garbageCollect(ws, state)).removed;
    // A crash between a commit and the refit that follows it leaves the fairness fit stale.
    if (state?.training) await refitIfStale(ws.root);
    if (p) {
      await closeOperation(ws, p, result.action === 'rejected' ? 'abort' : 'end', `recovered: ${result.action}`);
      result.note ||= result.action === 'completed' ? 'the pending deletion request was applied' : `the interrupted ${p.op} was rolled back; the workspace is as it was before it started${p.op === 'delete' ? '' : `; run 'sisa ${p.op === 'fairness-fit' ? 'fairness fit' : p.op}' again`}`;
    } else result.note = 'nothing to recover';
    // Requests kept pending after a clean failure: applied now, each with its receipt.
    if (state?.training) {
      result.keptRequests = await applyKeptRequests({ workdir: ws.root });
      if (result.keptRequests.length) {
        if (result.action === 'none') {
          result.action = 'completed';
          result.deletion = result.keptRequests.at(-1)!;
          result.note = '';
        }
        const n = result.keptRequests.length;
        result.note = [result.note === 'nothing to recover' ? '' : result.note, `${n} deletion request(s) kept pending after a failure ${n === 1 ? 'was' : 'were'} applied`].filter(Boolean).join('; ');
      }
    }
    return result;
  });
}
