import type { Argv } from 'yargs';
import { COMMAND_TEXT } from './text.js';
import { SisaError } from '../../util/errors.js';
import { emit } from '../output.js';
import { common } from '../flags.js';
export function verifyCommand(y: Argv): Argv {
  return y.command(
      COMMAND_TEXT.verify.command,
      COMMAND_TEXT.verify.describe,
      (y) => common(y).option('deep', { type: 'boolean', default: false, describe: 'Also retrain every shard from scratch and compare weights' })
          .example('$0 verify --workdir dv', 'Fast checks from hashes and receipts')
          .example('$0 verify --deep --workdir dv', 'Also prove that every model equals a retrain from scratch'),
      async (a) => {
        const { verify } = await import('../../app/verify.js');
        const r = await verify({ workdir: a.workdir, deep: a.deep });
        emit(a, r, () => r.checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`).join('\n'));
        if (!r.ok) throw new SisaError('STATE', `verify found ${r.problems.length} problem(s): ${r.problems.join(' | ')}`);
      },
  );
}
