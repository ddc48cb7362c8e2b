import type { Argv } from 'yargs';
import { COMMAND_TEXT } from './text.js';
import { emit, fmt, note, progress } from '../output.js';
import { list, common, fileColumnFlags } from '../flags.js';
export function ingestCommand(y: Argv): Argv {
  return y.command(
      COMMAND_TEXT.ingest.command,
      COMMAND_TEXT.ingest.describe,
      (y) =>
        fileColumnFlags(common(y))
          .positional('file', { type: 'string', demandOption: true, describe: 'CSV, JSON Lines, Parquet or Arrow IPC file' })
          .option('shards', { type: 'number', default: 8, describe: 'Number of shards S' })
          .option('slices', { type: 'number', default: 4, describe: 'Slices per shard R' })
          .option('test', { type: 'number', default: 0.2, describe: 'Fraction held out for testing' })
          .option('calibration', { type: 'number', default: 0, describe: 'Fraction held out for fairness calibration' })
          .option('seed', { type: 'number', default: 7, describe: 'Seed for splits, shards, slices and training' })
          .option('buckets', { type: 'number', default: 1 << 18, describe: 'Feature hash buckets (a power of two)' })
          .option('ngrams', { type: 'number', default: 2, describe: 'Word n-grams from 1 to N' })
          .option('chars', { type: 'number', default: 5, describe: 'Also character n-grams of length 3..N inside words (0 = off)' })
          .option('group-terms', { type: 'string', array: true, describe: "Sensitive topic terms: FILE, NAME=FILE, 'builtin' (all topics) or 'builtin:TOPIC' (repeatable)" })
          .option('group-col', { type: 'string', array: true, describe: 'Column marking the sensitive group (1/true/yes) (repeatable)' })
          .option('group-values', { type: 'string', array: true, describe: 'Column whose values are the groups, any number of them: the attribute is named after the column (repeatable)' })
          .option('overlap', { choices: ['intersect', 'first'] as const, describe: "Also an attribute 'topic' whose groups are the --group-terms topics a text mentions: intersect = the combination (race+religion), first = the first topic in the given order" })
          .option('skip-invalid', { type: 'boolean', default: false, describe: 'Skip and count invalid rows instead of refusing the file' })
          .option('force', { type: 'boolean', default: false, describe: 'Replace an existing data set (models are discarded; the deletion log is kept)' })
          .option('store', { type: 'string', describe: 'Keep shard files and checkpoints in S3-compatible storage, e.g. s3://bucket/prefix (credentials and endpoint from the AWS environment)' })
          .example('$0 ingest data.csv --workdir dv', 'Columns id,text,label (label 0/1)')
          .example('$0 ingest labeled_data.csv --label-col class --positive-values 0,1 --calibration 0.2 --group-terms builtin --workdir dv', 'Davidson et al., ready for fairness')
          .example('$0 ingest comments.csv --group-values region --group-terms builtin --overlap first --calibration 0.2 --workdir tox', "Many-valued attributes 'region' and 'topic' (fairness fit --attribute region)"),
      async (a) => {
        const { resolveGroups } = await import('../../fairness/terms.js');
        const { ingest } = await import('../../app/ingest.js');
        const groups = await resolveGroups((a['group-terms'] ?? []).map(String), (a['group-col'] ?? []).map(String), {
          valueColumns: (a['group-values'] ?? []).map(String),
          overlap: a.overlap,
        });
        const bar = progress(a, 'ingest', 'rows read', true);
        const r = await ingest({
          wait: a.wait,
          groups,
          input: a.file,
          workdir: a.workdir,
          format: a.format,
          shards: a.shards,
          slices: a.slices,
          seed: a.seed,
          test: a.test,
          calibration: a.calibration,
          idCol: a['id-col'],
          textCol: a['text-col'],
          labelCol: a['label-col'],
          positiveValues: list(a['positive-values']),
          labelThreshold: a['label-threshold'],
          skipInvalid: a['skip-invalid'],
          force: a.force,
          store: a.store,
          features: { buckets: a.buckets, ngrams: a.ngrams, signed: true, chars: a.chars },
          onProgress: (n) => bar.update(n, Math.max(n, 1)),
        });
        bar.stop();
        for (const w of r.warnings) note(a, `sisa: warning: ${w}`);
        emit(a, r, () =>
          [
            `ingested ${fmt.int(r.accepted)} of ${fmt.int(r.rows)} rows (${r.skipped} invalid skipped${r.previouslyDeleted ? `, ${r.previouslyDeleted} previously deleted left out` : ''})`,
            `columns: id=${r.columns.id === null ? '(row number)' : r.columns.id === '' ? '(unnamed column)' : r.columns.id} text=${r.columns.text} label=${r.columns.label}`,
            `test ${fmt.int(r.test)}, calibration ${fmt.int(r.calibration)}, training ${fmt.int(r.shards.reduce((s, x) => s + x.rows, 0))} in ${r.shards.length} shards × ${r.shards[0]?.slices.length} slices`,
            ...(Object.keys(r.groups).length ? [`sensitive groups (rows): ${Object.entries(r.groups).map(([g, n]) => `${g} ${n}`).join(', ')}`] : []),
            ...Object.entries(r.groupValues).map(([attr, values]) => `attribute ${attr} (rows per group): ${Object.entries(values).map(([v, n]) => `${v} ${n}`).join(', ')}`),
            `fingerprint ${r.fingerprint}`,
          ].join('\n'),
        );
      },
  );
}
