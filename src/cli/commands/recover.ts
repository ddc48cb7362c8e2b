import type { Argv } from 'yargs';
import { COMMAND_TEXT } from './text.js';
import { emit } from '../output.js';
import { common } from '../flags.js';
export function recoverCommand(y: Argv): Argv {
  return y.command(
      COMMAND_TEXT.recover.command,
      COMMAND_TEXT.recover.describe,
      (y) => common(y).example('$0 recover --workdir dv', 'After a crash or Ctrl-C: finish an accepted deletion, roll back anything else'),
      async (a) => {
        const { recover } = await import('../../app/recover.js');
        const r = await recover({ workdir: a.workdir, wait: a.wait });
        emit(a, r, () =>
          r.interrupted
            ? `interrupted ${r.interrupted.op} (started ${r.interrupted.startedAt} by process ${r.interrupted.pid}): ${r.action}. ${r.note}${r.removedFiles.length ? `\nremoved ${r.removedFiles.length} uncommitted file(s)` : ''}`
            : r.keptRequests.length
              ? `${r.note}: ${r.keptRequests.reduce((n, k) => n + k.deleted.length, 0)} record(s) deleted${r.removedFiles.length ? ` (removed ${r.removedFiles.length} stray file(s))` : ''}`
              : `nothing to recover${r.removedFiles.length ? ` (removed ${r.removedFiles.length} stray file(s))` : ''}`,
        );
      },
  );
}
