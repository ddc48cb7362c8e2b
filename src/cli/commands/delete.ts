import type { Argv } from 'yargs';
import { COMMAND_TEXT } from './text.js';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import type { DeleteResult } from '../../app/delete.js';
import { errorMessage, SisaError, usageError } from '../../util/errors.js';
import { emit, fmt, note, progress, table } from '../output.js';
import { printable } from '../../util/format.js';
import { common, queueRunner, learnerFlags } from '../flags.js';
export function deleteCommand(y: Argv): Argv {
  return y.command(
      COMMAND_TEXT.delete.command,
      COMMAND_TEXT.delete.describe,
      (y) =>
        learnerFlags(common(y))
          .option('id', { type: 'string', array: true, describe: 'Record id to forget (repeatable)' })
          .option('ids-file', { type: 'string', describe: 'File with one id per line' })
          .example('$0 delete --id 1234 --workdir dv', 'Forget record 1234')
          .example('$0 delete --ids-file gdpr-requests.txt --strict --workdir dv', 'Forget every id in the file, or none if one is unknown')
          .option('strict', { type: 'boolean', default: false, describe: 'Fail, deleting nothing, if any id is unknown' })
          .option('hash-ids', { type: 'boolean', default: false, describe: 'Record salted hashes of the ids in the deletion receipt, not the ids' })
          .option('full-retrain', { type: 'boolean', default: false, describe: "Retrain each affected shard from scratch: for models trained on another runtime (tfjs version, wasm build), which a retrain from a checkpoint cannot match" })
          .option('server', { type: 'string', describe: "Send the request to the 'sisa serve' of this workspace at this URL (as it printed it) instead of deleting in this process" })
          .example('$0 delete --id 1234 --workdir dv --server http://127.0.0.1:7457', "Forget record 1234 through a running 'sisa serve --workdir dv'"),
      async (a) => {
        const ids = (a.id ?? []).map(String);
        if (a['ids-file']) {
          let text: string;
          try {
            text = await fsp.readFile(a['ids-file'], 'utf8');
          } catch (err) {
            throw new SisaError('INPUT', `${a['ids-file']}: cannot read ids file (${errorMessage(err)})`);
          }
          const before = ids.length;
          for (const line of text.split(/\r?\n/)) if (line.trim()) ids.push(line.trim());
          if (ids.length === before) throw new SisaError('INPUT', `${a['ids-file']}: the ids file is empty (expected one id per line); nothing was deleted`);
        }
        if (ids.length === 0) throw usageError('no ids to delete: pass --id ID or --ids-file FILE');
        let r: DeleteResult;
        if (a.server !== undefined) {
          // The service runs the deletion with its own settings; flags that would change how are refused, not ignored.
          const local = (['queue', 'queue-name', 'backend', 'concurrency'] as const).filter((k) => a[k] !== undefined).map((k) => `--${k}`);
          if (a.wait) local.push('--wait');
          if (local.length) throw usageError(`--server cannot be combined with ${local.join(', ')}: the service deletes with its own settings`);
          const { deleteViaService } = await import('../../app/deleteClient.js');
          r = await deleteViaService(a.server, { ids, strict: a.strict, hashIds: a['hash-ids'], fullRetrain: a['full-retrain'], workdir: path.resolve(a.workdir) });
        } else {
          const { deleteRecords } = await import('../../app/delete.js');
          const bar = progress(a, 'retrain', 'slices');
          let done = 0;
          const runner = await queueRunner(a, () => bar.update(++done, Math.max(done, 1)));
          r = await deleteRecords({ runner, workdir: a.workdir, ids, strict: a.strict, hashIds: a['hash-ids'], fullRetrain: a['full-retrain'], wait: a.wait, backend: a.backend, concurrency: a.concurrency, onProgress: (d, t) => bar.update(d, t) }).finally(() => runner?.close());
          bar.stop();
        }
        const some = <T>(xs: T[], show: (x: T) => string) => `${xs.slice(0, 10).map(show).join(', ')}${xs.length > 10 ? ', …' : ''}`;
        for (const e of r.earlierRequests ?? [])
          note(a, `applied first: an earlier request kept pending after a failure (${e.deleted.length} record(s) deleted${e.logEntry ? `, deletion log entry ${e.logEntry}` : ''})`);
        if (r.alreadyDeleted.length) note(a, `already deleted: ${r.alreadyDeleted.length} id(s): ${some(r.alreadyDeleted, (x) => `${printable(x.id)} (receipt ${x.receipt})`)}`);
        if (r.notFound.length) note(a, `not found: ${r.notFound.length} id(s), in neither the data set nor any receipt: ${some(r.notFound, (x) => printable(x))}`);
        emit(a, r, () =>
          [
            `deleted ${r.deleted.length} of ${r.requested} requested record(s) in ${fmt.secs(r.seconds)}${r.logEntry ? ` (deletion log entry ${r.logEntry})` : ''}`,
            ...r.heldout.map((h) => `removed ${h.ids.length} from the held-out ${h.split} split`),
            ...(r.retrained.length
              ? [table(['shard', 'from slice', 'ids', 'seconds', 'new version'], r.retrained.map((x) => [x.shard, x.fromSlice, x.ids, x.seconds.toFixed(2), x.modelVersion]))]
              : []),
          ].join('\n'),
        );
      },
  );
}
