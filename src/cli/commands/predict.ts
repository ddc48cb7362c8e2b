import type { Argv } from 'yargs';
import { COMMAND_TEXT } from './text.js';
import type { Aggregate } from '../../models/ensemble.js';
import type { FairMethod } from '../../fairness/postprocess.js';
import { emit } from '../output.js';
import { FAIR_METHODS, common, warnIfInterrupted } from '../flags.js';
export function predictCommand(y: Argv): Argv {
  return y.command(
      COMMAND_TEXT.predict.command,
      COMMAND_TEXT.predict.describe,
      (y) =>
        common(y)
          .positional('file', { type: 'string', demandOption: true, describe: 'CSV, JSON Lines, Parquet or Arrow file with a text column' })
          .option('aggregate', { choices: ['vote', 'mean'] as const, default: 'vote' as const, describe: 'Majority vote (ties → toxic) or mean probability' })
          .option('fair', { choices: FAIR_METHODS, describe: 'Label through the fitted fairness post-processor; each row also gets its votes, group and flag probability' })
          .option('format', { type: 'string', describe: 'Input format: csv|jsonl|parquet|arrow (default: from the extension)' })
          .option('id-col', { type: 'string', describe: 'Column with the row id printed beside each score (default: id, or the row number)' })
          .option('text-col', { type: 'string', describe: 'Column with the text (default: the text column named at ingest, or text)' })
          .example('$0 predict new.csv --workdir dv > scores.csv', 'Score new.csv (columns id,text) with the models in dv')
          .example('$0 predict new.csv --fair ensemble --workdir dv', 'Labels from the fitted fair post-processor (needs sensitive groups)'),
      async (a) => {
        await warnIfInterrupted(a.workdir);
        const { predictFile } = await import('../../app/predictFile.js');
        const preds = await predictFile({ workdir: a.workdir, file: a.file, aggregate: a.aggregate as Aggregate, fair: a.fair as FairMethod | undefined, format: a.format, idCol: a['id-col'], textCol: a['text-col'] });
        if (a.json) emit(a, { aggregate: a.aggregate, predictions: preds }, () => '');
        else {
          const csvCell = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
          const lines = preds.map((p) =>
            'flagProbability' in p
              ? `${csvCell(p.id)},${p.score.toFixed(6)},${p.votes},${csvCell(p.group)},${p.flagProbability.toFixed(6)},${p.label},${p.method}`
              : `${csvCell(p.id)},${p.score.toFixed(6)},${p.label}`,
          );
          process.stdout.write((a.fair ? 'id,score,votes,group,flagProbability,label,method\n' : 'id,score,label\n') + lines.join('\n') + '\n');
        }
      },
  );
}
