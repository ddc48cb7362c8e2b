import type { Argv } from 'yargs';
import { COMMAND_TEXT } from './text.js';
import { usageError } from '../../util/errors.js';
import { emit, note } from '../output.js';
import { common } from '../flags.js';
export function benchCommand(y: Argv): Argv {
  return y.command(
      COMMAND_TEXT.bench.command,
      COMMAND_TEXT.bench.describe,
      (y) =>
        common(y)
          .option('data', { type: 'string', describe: 'Labelled data file (with --label-col/--positive-values as for ingest)' })
          .option('synthetic', { type: 'number', describe: 'Generate N synthetic rows instead of --data' })
          .option('shards', { type: 'number', default: 8, describe: 'Number of shards S' })
          .option('slices', { type: 'number', default: 4, describe: 'Slices per shard R' })
          .option('repeat', { type: 'number', default: 5, describe: 'Single-id deletions to time (median)' })
          .option('train-rounds', { type: 'number', default: 3, describe: 'Paired rounds of sisa train and single-thread fastText; the training verdict is their median ratio' })
          .option('seed', { type: 'number', default: 7, describe: 'Seed for splits, shards, slices and training' })
          .option('label-col', { type: 'string', describe: 'Column with the label in --data' })
          .option('positive-values', { type: 'string', describe: 'Comma-separated label values that mean toxic in --data' })
          .option('scale', { type: 'boolean', default: false, describe: 'Also time train at 100k, 300k and 1M synthetic rows (minutes)' })
          .option('hidden-layer', { type: 'boolean', default: true, describe: 'Also bench the hidden-layer model (minutes on large inputs; --no-hidden-layer skips it)' })
          .option('keep', { type: 'string', describe: 'Keep the bench workspaces in this folder' })
          .example('$0 bench --synthetic 20000', 'Measure on a generated corpus')
          .example('$0 bench --data labeled_data.csv --label-col class --positive-values 0,1', 'Measure on Davidson et al.'),
      async (a) => {
        const { runBench, benchTable } = await import('../../bench/bench.js');
        if (!a.data && !a.synthetic) throw usageError('bench needs --data FILE or --synthetic N');
        const rounds = a['train-rounds'];
        if (!Number.isInteger(rounds) || rounds < 1) throw usageError(`--train-rounds must be a whole number ≥ 1, got ${rounds}`);
        // Every timing is a median of --repeat runs: none would leave nothing to report.
        if (!Number.isInteger(a.repeat) || a.repeat < 1) throw usageError(`--repeat must be a whole number ≥ 1, got ${a.repeat}`);
        const r = await runBench({
          data: a.data,
          synthetic: a.synthetic,
          shards: a.shards,
          slices: a.slices,
          repeat: a.repeat,
          trainRounds: rounds,
          seed: a.seed,
          ingestArgs: [...(a['label-col'] ? ['--label-col', a['label-col']] : []), ...(a['positive-values'] ? ['--positive-values', a['positive-values']] : [])],
          scale: a.scale,
          hiddenLayer: a['hidden-layer'],
          keep: a.keep,
          log: (l) => note(a, l),
        });
        emit(a, r, () => benchTable(r));
      },
  );
}
