import type { Argv } from 'yargs';
import { COMMAND_TEXT } from './text.js';
import type { Aggregate } from '../../models/ensemble.js';
import { emit, fmt, table } from '../output.js';
import { list, common, warnIfInterrupted, fileColumnFlags } from '../flags.js';
export function evaluateCommand(y: Argv): Argv {
  return y.command(
      COMMAND_TEXT.evaluate.command,
      COMMAND_TEXT.evaluate.describe,
      (y) =>
        fileColumnFlags(common(y))
          .option('aggregate', { choices: ['vote', 'mean'] as const, default: 'vote' as const, describe: 'Majority vote (ties → toxic) or mean probability' })
          .option('data', { type: 'string', describe: 'A labelled file to evaluate on instead of the test split' })
          .option('split', { choices: ['test', 'calibration'] as const, default: 'test' as const, describe: 'Which held-out split to score' })
          .example('$0 evaluate --workdir dv', 'Metrics on the held-out test split')
          .example('$0 evaluate --data other.csv --label-col label --workdir dv', 'Metrics on another labelled file'),
      async (a) => {
        await warnIfInterrupted(a.workdir);
        const { evaluate } = await import('../../app/evaluate.js');
        const r = await evaluate({
          workdir: a.workdir,
          aggregate: a.aggregate as Aggregate,
          data: a.data,
          split: a.split,
          textCol: a['text-col'],
          labelCol: a['label-col'],
          positiveValues: list(a['positive-values']),
          labelThreshold: a['label-threshold'],
          format: a.format,
        });
        emit(a, r, () =>
          [
            `${r.source}: ${fmt.int(r.rows)} rows, aggregate=${r.aggregate}`,
            `AUC ${fmt.num(r.auc, 4)}  accuracy ${fmt.num(r.accuracy, 4)}  precision ${fmt.num(r.precision, 4)}  recall ${fmt.num(r.recall, 4)}  F1 ${fmt.num(r.f1, 4)}`,
            table(['shard', 'version', 'accuracy', 'AUC'], r.perShard.map((s) => [s.shard, s.modelVersion, fmt.num(s.accuracy, 4), fmt.num(s.auc, 4)])),
          ].join('\n'),
        );
      },
  );
}
