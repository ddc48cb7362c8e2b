/**
 * `sisa recover`: finishes or rolls back an operation that was interrupted (kill -9, power loss, full
 * disk). The manifest is the only commit point, so rolling back is removing what the interrupted
 * operation wrote without committing; an accepted deletion request is never rolled back but applied.
 */
import * as fsp from 'node:fs/promises';
import { refitAfterChange } from '../fairness/store.js';
import { applyDeletion, type DeleteResult, type PendingDeletion } from '../unlearning/delete.js';
import { SisaError } from '../util/errors.js';
import { garbageCollect } from './gc.js';
import { closeOperation, pendingOperation, readPending } from './journal.js';
import { withWorkspaceLock } from './lock.js';
import { tryLoadState } from './manifest.js';
import { workspace } from './workspace.js';

export interface RecoverResult {
  interrupted: { op: string; startedAt: string; pid: number } | null;
  action: 'none' | 'completed' | 'rolled back' | 'rejected';
  deletion: DeleteResult | null;
  removedFiles: string[];
  note: string;
}

export async function recover(o: { workdir: string; wait?: boolean }): Promise<RecoverResult> {
  const ws = workspace(o.workdir);
  return withWorkspaceLock(ws, o.wait ?? false, async () => {
    const p = await pendingOperation(ws);
    const result: RecoverResult = { interrupted: p ? { op: p.op, startedAt: p.time, pid: p.pid } : null, action: 'none', deletion: null, removedFiles: [], note: '' };
    if (p?.op === 'delete') {
      const req = await readPending<PendingDeletion>(ws, p.seq);
      if (req) {
        try {
          // Re-applying is safe: ids the interrupted run already committed are simply not found now.
          result.deletion = await applyDeletion({ workdir: ws.root, ids: req.ids, strict: req.strict, hashIds: req.hashIds }, req.requestedAt);
          result.action = 'completed';
        } catch (err) {
          if (!(err instanceof SisaError && err.code === 'NOT_FOUND')) throw err;
          result.action = 'rejected';
          result.note = err.message;
        }
      }
    }
    if (p && result.action === 'none') result.action = 'rolled back';
    const state = await tryLoadState(ws);
    if (state) {
      result.removedFiles = (await garbageCollect(ws, state)).removed;
      if (p?.op === 'delete' || p?.op === 'train') await refitAfterChange(ws.root);
    } else if (p) {
      // The very first ingest died before its commit: nothing in the workspace is committed.
      for (const dir of [ws.shardsDir]) {
        for (const f of await fsp.readdir(dir).catch(() => [] as string[])) {
          if (f.endsWith('.arrow') || f.endsWith('.tmp')) {
            await fsp.rm(`${dir}/${f}`, { force: true });
            result.removedFiles.push(`shards/${f}`);
          }
        }
      }
    }
    if (p) {
      result.note ||= result.action === 'completed' ? 'the pending deletion request was applied' : `the interrupted ${p.op} was rolled back; the workspace is as it was before it started${p.op === 'delete' ? '' : `; run 'sisa ${p.op === 'fairness-fit' ? 'fairness fit' : p.op}' again`}`;
      await closeOperation(ws, p, result.action === 'rejected' ? 'abort' : 'end', `recovered: ${result.action}`);
    } else result.note = 'nothing to recover';
    return result;
  });
}
