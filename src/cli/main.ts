/**
 * The `sisa` command line. Commands are thin: they parse flags, call the library, and print.
 * Each command lives in its own file under commands/; library modules are imported inside each
 * handler, so that a command loads only what it uses (start-up time is part of every deletion's latency).
 * Every failure a user can cause ends as one line on stderr and a non-zero exit code.
 */
import yargs, { type Argv } from 'yargs';
import { errorMessage, exitCodeFor, usageError } from '../util/errors.js';
import { ingestCommand } from './commands/ingest.js';
import { trainCommand } from './commands/train.js';
import { predictCommand } from './commands/predict.js';
import { evaluateCommand } from './commands/evaluate.js';
import { deleteCommand } from './commands/delete.js';
import { fairnessCommand } from './commands/fairness.js';
import { reportCommand } from './commands/report.js';
import { workerCommand } from './commands/worker.js';
import { recoverCommand } from './commands/recover.js';
import { verifyCommand } from './commands/verify.js';
import { benchCommand } from './commands/bench.js';
import { statusCommand } from './commands/status.js';
import { demoCommand } from './commands/demo.js';

const COMMANDS = [ingestCommand, trainCommand, predictCommand, evaluateCommand, deleteCommand, fairnessCommand, reportCommand, workerCommand, recoverCommand, verifyCommand, benchCommand, statusCommand, demoCommand];

export function buildCli(argv: string[]) {
  let y: Argv = yargs(argv)
    .scriptName('sisa')
    .usage('$0 <command> [options]\n\nSISA sharded-ensemble toxicity classifier with exact unlearning and FairSISA fairness.');
  for (const command of COMMANDS) y = command(y);
  return y
    .demandCommand(1, 'name a command; see sisa --help')
    .strict()
    .recommendCommands()
    .help()
    .version()
    .wrap(Math.min(120, process.stdout.columns || 100))
    .fail((msg, err) => {
      throw err ?? usageError(msg);
    });
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildCli(argv).parseAsync();
    return 0;
  } catch (err) {
    const code = exitCodeFor(err);
    if (code === 70) process.stderr.write(`sisa: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    else process.stderr.write(`sisa: error: ${errorMessage(err).replace(/\s*\n\s*/g, ' ')}\n`);
    return code;
  }
}
