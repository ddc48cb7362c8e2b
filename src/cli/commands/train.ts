import type { Argv } from 'yargs';
import { COMMAND_TEXT } from './text.js';
import { emit, fmt, note, progress, table } from '../output.js';
import { common, queueRunner, learnerFlags } from '../flags.js';
export function trainCommand(y: Argv): Argv {
  return y.command(
      COMMAND_TEXT.train.command,
      COMMAND_TEXT.train.describe,
      (y) =>
        learnerFlags(common(y))
          .option('epochs', { type: 'number', describe: 'Epochs per slice (default 6; a retrain keeps the value the models were trained with)' })
          .option('optimizer', { choices: ['adagrad', 'sgd'] as const, describe: 'Optimiser (default adagrad)' })
          .option('learning-rate', { type: 'number', describe: 'Step size (default 2, or as trained)' })
          .option('batch-size', { type: 'number', describe: 'Examples per step (default 128, or as trained)' })
          .option('hidden', { type: 'number', describe: 'Hidden units, 0 = logistic regression (default 0, or as trained)' })
          .option('l2', { type: 'number', describe: 'L2 weight decay (default 1e-6, or as trained)' })
          .example('$0 train --workdir dv', 'Train all shards locally, one worker thread per core')
          .example('$0 train --queue redis://127.0.0.1:6379 --workdir dv', "Hand the shards to 'sisa worker' processes"),
      async (a) => {
        const { train } = await import('../../app/train.js');
        const bar = progress(a, 'train', 'slices');
        let done = 0;
        const runner = await queueRunner(a, () => bar.update(++done, Math.max(done, 1)));
        const r = await train({
          runner,
          wait: a.wait,
          workdir: a.workdir,
          backend: a.backend,
          concurrency: a.concurrency,
          learner: { optimizer: a.optimizer, epochs: a.epochs, learningRate: a['learning-rate'], batchSize: a['batch-size'], hidden: a.hidden, l2: a.l2 },
          onProgress: (d, t) => bar.update(d, t),
        }).finally(() => runner?.close());
        bar.stop();
        note(a, `backend: ${r.backend}`);
        emit(a, r, () =>
          [
            `trained ${r.shards.length} shards on backend ${r.backend} in ${fmt.secs(r.seconds)} (${fmt.int(r.examplesPerSec)} examples/s)`,
            table(['shard', 'version', 'seconds', 'model hash'], r.shards.map((s) => [s.shard, s.modelVersion, s.seconds.toFixed(2), s.modelHash.slice(0, 16)])),
          ].join('\n'),
        );
      },
  );
}
