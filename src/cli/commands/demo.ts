import type { Argv } from 'yargs';
import { COMMAND_TEXT } from './text.js';
import { common } from '../flags.js';
export function demoCommand(y: Argv): Argv {
  return y.command(
      COMMAND_TEXT.demo.command,
      COMMAND_TEXT.demo.describe,
      (y) =>
        common(y)
          .option('rows', { type: 'number', default: 20000, describe: 'Rows in the generated corpus' })
          .option('seed', { type: 'number', default: 7, describe: 'Seed for the corpus, splits and training' })
          .example('$0 demo --workdir demo-workspace', 'The whole story in about half a minute, offline'),
      async (a) => {
        const { runDemo } = await import('../../demo/demo.js');
        await runDemo({ workdir: a.workdir, rows: a.rows, seed: a.seed, json: a.json, quiet: a.quiet });
      },
  );
}
