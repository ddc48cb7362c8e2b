/**
 * The `sisa` command line. Commands are thin: they parse flags, call the library, and print.
 * Library modules are imported inside each handler, so that a command loads only what it uses
 * (start-up time is part of every deletion's latency).
 * Every failure a user can cause ends as one line on stderr and a non-zero exit code.
 */
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import yargs, { type Argv } from 'yargs';
import { BACKEND_CHOICES } from '../models/backendChoice.js';
import type { Aggregate } from '../models/ensemble.js';
import type { FairMethod } from '../fairness/postprocess.js';
import { errorMessage, exitCodeFor, SisaError, stateError, usageError } from '../util/errors.js';
import { emit, fmt, note, progress, table, type OutputFlags } from './output.js';

const FAIR_METHODS = ['per-model', 'ensemble', 'votes'] as const;

interface Common extends OutputFlags {
  workdir: string;
}

const list = (v: unknown): string[] | undefined =>
  v === undefined ? undefined : String(v).split(',').map((s) => s.trim()).filter((s) => s.length > 0);

function common<T>(y: Argv<T>) {
  return y
    .option('workdir', { type: 'string', default: '.', describe: 'Workspace folder (data in DIR/shards, state in DIR/manifests)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print one JSON document on stdout' })
    .option('quiet', { type: 'boolean', default: false, describe: 'No progress bar or notes on stderr' })
    .option('wait', { type: 'boolean', default: false, describe: 'If another sisa process holds the workspace, wait for it instead of failing' });
}

/** Read-only commands refuse, like writers, while an interrupted operation awaits 'sisa recover'. */
async function refuseIfInterrupted(workdir: string): Promise<void> {
  const { refuseIfPending } = await import('../state/journal.js');
  const { workspace } = await import('../state/workspace.js');
  await refuseIfPending(workspace(workdir));
}

function queueFlags<T>(y: Argv<T>) {
  return y
    .option('queue', { type: 'string', describe: 'Run shard jobs on BullMQ at this Redis URL (redis://host:6379) instead of locally' })
    .option('queue-name', { type: 'string', describe: 'BullMQ queue name (default sisa-shards)' });
}

/** A queue runner when --queue is given; the caller closes it. */
async function queueRunner(a: { queue?: string; 'queue-name'?: string }, onProgress: (shard: number, slice: number) => void) {
  if (!a.queue) return undefined;
  const { QueueRunner } = await import('../orchestration/queue.js');
  return new QueueRunner({ url: a.queue, name: a['queue-name'] }, onProgress);
}

function learnerFlags<T>(y: Argv<T>) {
  return queueFlags(y)
    .option('backend', { type: 'string', describe: `Compute backend: ${BACKEND_CHOICES.join('|')} (default: auto, or the one the models were trained with)` })
    .option('concurrency', { type: 'number', describe: `Shards trained at once, each in a worker thread (default: cores = ${os.availableParallelism()})` });
}

function fileColumnFlags<T>(y: Argv<T>) {
  return y
    .option('format', { type: 'string', describe: 'Input format: csv|jsonl|parquet|arrow (default: from the extension)' })
    .option('id-col', { type: 'string', describe: 'Column with the record id' })
    .option('text-col', { type: 'string', describe: 'Column with the text' })
    .option('label-col', { type: 'string', describe: 'Column with the label' })
    .option('positive-values', { type: 'string', describe: 'Comma-separated label values that mean toxic; all others are not' })
    .option('label-threshold', { type: 'number', describe: 'Fractional labels: toxic when label >= threshold' });
}

export function buildCli(argv: string[]) {
  return yargs(argv)
    .scriptName('sisa')
    .usage('$0 <command> [options]\n\nSISA sharded-ensemble toxicity classifier with exact unlearning and FairSISA fairness.')
    .command(
      'ingest <file>',
      'Validate, split, shard and slice a labelled data set into Arrow files',
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
          .option('skip-invalid', { type: 'boolean', default: false, describe: 'Skip and count invalid rows instead of refusing the file' })
          .option('force', { type: 'boolean', default: false, describe: 'Replace an existing data set (models are discarded; the deletion log is kept)' }),
      async (a) => {
        const { resolveGroups } = await import('../fairness/terms.js');
        const { ingest } = await import('../app/ingest.js');
        const groups = await resolveGroups((a['group-terms'] ?? []).map(String), (a['group-col'] ?? []).map(String));
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
          features: { buckets: a.buckets, ngrams: a.ngrams, signed: true, chars: a.chars },
          onProgress: (n) => bar.update(n, Math.max(n, 1)),
        });
        bar.stop();
        emit(a, r, () =>
          [
            `ingested ${fmt.int(r.accepted)} of ${fmt.int(r.rows)} rows (${r.skipped} invalid skipped${r.previouslyDeleted ? `, ${r.previouslyDeleted} previously deleted left out` : ''})`,
            `columns: id=${r.columns.id ?? '(row number)'} text=${r.columns.text} label=${r.columns.label}`,
            `test ${fmt.int(r.test)}, calibration ${fmt.int(r.calibration)}, training ${fmt.int(r.shards.reduce((s, x) => s + x.rows, 0))} in ${r.shards.length} shards × ${r.shards[0]?.slices.length} slices`,
            ...(Object.keys(r.groups).length ? [`sensitive groups (rows): ${Object.entries(r.groups).map(([g, n]) => `${g} ${n}`).join(', ')}`] : []),
            `fingerprint ${r.fingerprint}`,
          ].join('\n'),
        );
      },
    )
    .command(
      'train',
      'Train one model per shard, slice by slice, with a checkpoint after every slice',
      (y) =>
        learnerFlags(common(y))
          .option('epochs', { type: 'number', describe: 'Epochs per slice' })
          .option('optimizer', { choices: ['adagrad', 'sgd'] as const, describe: 'Optimiser (default adagrad)' })
          .option('learning-rate', { type: 'number', describe: 'Step size' })
          .option('batch-size', { type: 'number', describe: 'Examples per step' })
          .option('hidden', { type: 'number', describe: 'Hidden units (0 = logistic regression)' })
          .option('l2', { type: 'number', describe: 'L2 weight decay' }),
      async (a) => {
        const { train } = await import('../app/train.js');
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
    )
    .command(
      'predict <file>',
      'Score every row of a file with the ensemble (CSV id,score,label on stdout, or --json)',
      (y) =>
        common(y)
          .positional('file', { type: 'string', demandOption: true })
          .option('aggregate', { choices: ['vote', 'mean'] as const, default: 'vote' as const, describe: 'Majority vote (ties → toxic) or mean probability' })
          .option('fair', { choices: FAIR_METHODS, describe: 'Apply a fitted equalized-odds post-processor to the label' })
          .option('format', { type: 'string' })
          .option('id-col', { type: 'string' })
          .option('text-col', { type: 'string' }),
      async (a) => {
        await refuseIfInterrupted(a.workdir);
        const { predictFile } = await import('../app/predictFile.js');
        const preds = await predictFile(a.workdir, a.file, a.aggregate as Aggregate, { format: a.format, idCol: a['id-col'], textCol: a['text-col'] }, a.fair as FairMethod | undefined);
        if (a.json) emit(a, { aggregate: a.aggregate, predictions: preds }, () => '');
        else {
          const csvCell = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
          process.stdout.write('id,score,label\n' + preds.map((p) => `${csvCell(p.id)},${p.score.toFixed(6)},${p.label}`).join('\n') + '\n');
        }
      },
    )
    .command(
      'evaluate',
      'AUC, accuracy, precision/recall and per-shard accuracy on the held-out test split (or --data FILE)',
      (y) =>
        fileColumnFlags(common(y))
          .option('aggregate', { choices: ['vote', 'mean'] as const, default: 'vote' as const })
          .option('data', { type: 'string', describe: 'A labelled file to evaluate on instead of the test split' })
          .option('split', { choices: ['test', 'calibration'] as const, default: 'test' as const }),
      async (a) => {
        await refuseIfInterrupted(a.workdir);
        const { evaluate } = await import('../app/evaluate.js');
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
    )
    .command(
      'delete',
      'Forget records exactly: retrain only the affected shards from the checkpoint before the affected slice',
      (y) =>
        learnerFlags(common(y))
          .option('id', { type: 'string', array: true, describe: 'Record id to forget (repeatable)' })
          .option('ids-file', { type: 'string', describe: 'File with one id per line' })
          .option('strict', { type: 'boolean', default: false, describe: 'Fail, deleting nothing, if any id is unknown' })
          .option('hash-ids', { type: 'boolean', default: false, describe: 'Record salted hashes of the ids in the deletion receipt, not the ids' }),
      async (a) => {
        const ids = (a.id ?? []).map(String);
        if (a['ids-file']) {
          let text: string;
          try {
            text = await fsp.readFile(a['ids-file'], 'utf8');
          } catch (err) {
            throw new SisaError('INPUT', `${a['ids-file']}: cannot read ids file (${errorMessage(err)})`);
          }
          for (const line of text.split(/\r?\n/)) if (line.trim()) ids.push(line.trim());
        }
        if (ids.length === 0) throw usageError('no ids to delete: pass --id ID or --ids-file FILE');
        const { deleteRecords } = await import('../app/delete.js');
        const bar = progress(a, 'retrain', 'slices');
        let done = 0;
        const runner = await queueRunner(a, () => bar.update(++done, Math.max(done, 1)));
        const r = await deleteRecords({ runner, workdir: a.workdir, ids, strict: a.strict, hashIds: a['hash-ids'], wait: a.wait, backend: a.backend, concurrency: a.concurrency, onProgress: (d, t) => bar.update(d, t) }).finally(() => runner?.close());
        bar.stop();
        if (r.notFound.length) note(a, `not found: ${r.notFound.length} id(s): ${r.notFound.slice(0, 10).join(', ')}${r.notFound.length > 10 ? ', …' : ''}`);
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
    )
    .command(
      'fairness <action>',
      'Fit the equalized-odds post-processors on the calibration split (done automatically after train and delete)',
      (y) =>
        common(y)
          .positional('action', { choices: ['fit', 'show'] as const, demandOption: true })
          .option('attribute', { type: 'string', describe: "Sensitive attribute (default 'any')" })
          .option('eo-tolerance', { type: 'number', describe: 'Allowed |ΔTPR| and |ΔFPR| between groups (default 0)' }),
      async (a) => {
        const { fitFairness, isStale, loadFit } = await import('../app/fairnessFit.js');
        const { loadState } = await import('../state/manifest.js');
        const { workspace } = await import('../state/workspace.js');
        const ws = workspace(a.workdir);
        if (a.action === 'show') await refuseIfInterrupted(a.workdir);
        const fit = a.action === 'fit' ? await fitFairness({ workdir: a.workdir, attribute: a.attribute, tolerance: a['eo-tolerance'], wait: a.wait }) : await loadFit(ws);
        if (!fit) throw stateError("no fitted fairness post-processor; run 'sisa fairness fit'");
        const stale = isStale(fit, await loadState(ws));
        emit(a, { ...fit, stale }, () =>
          [
            `fairness post-processors for attribute '${fit.attribute}', tolerance ${fit.tolerance}, fitted ${fit.fittedAt} on ${fit.calibrationRows} calibration rows${stale ? ' (STALE: models changed since)' : ''}`,
            table(['method', 'expected calibration error'], fit.methods.map((m) => [m.method, fmt.num(m.lpError, 4)])),
          ].join('\n'),
        );
      },
    )
    .command(
      'report',
      'Fairness report: plain ensemble vs each FairSISA method (and a monolithic baseline), JSON + Markdown + HTML',
      (y) =>
        common(y)
          .option('out', { type: 'string', describe: 'Output folder (default DIR/report)' })
          .option('attribute', { type: 'string', describe: "Sensitive attribute (default 'any')" })
          .option('eo-tolerance', { type: 'number', describe: 'Allowed |ΔTPR|, |ΔFPR| for the post-processors (default 0)' })
          .option('resplits', { type: 'number', default: 0, describe: 'Average over N seeded re-draws of the calibration/test partition' })
          .option('baseline', { type: 'boolean', default: false, describe: 'Also train and report a monolithic model on all training data' })
          .option('resamples', { type: 'number', default: 500, describe: 'Bootstrap resamples for the 95% intervals' })
          .option('eval', { type: 'string', describe: 'Also report on this labelled file (e.g. another data set)' })
          .option('eval-text-col', { type: 'string' })
          .option('eval-label-col', { type: 'string' })
          .option('eval-positive-values', { type: 'string' })
          .option('eval-label-threshold', { type: 'number' }),
      async (a) => {
        await refuseIfInterrupted(a.workdir);
        const { reportMarkdown, writeReport } = await import('../app/report.js');
        const { report, files } = await writeReport({
          workdir: a.workdir,
          out: a.out,
          attribute: a.attribute,
          tolerance: a['eo-tolerance'],
          resplits: a.resplits,
          baseline: a.baseline,
          resamples: a.resamples,
          evalFile: a.eval,
          evalColumns: { textCol: a['eval-text-col'], labelCol: a['eval-label-col'], positiveValues: list(a['eval-positive-values']), labelThreshold: a['eval-label-threshold'] },
        });
        emit(a, { ...report, files }, () => reportMarkdown(report) + `\nwrote ${files.join(', ')}`);
      },
    )
    .command(
      'worker',
      'Process shard jobs from a BullMQ queue (run on any machine that sees the workspaces at the same path)',
      (y) =>
        y
          .option('queue', { type: 'string', demandOption: true, describe: 'Redis URL, e.g. redis://10.0.0.5:6379' })
          .option('queue-name', { type: 'string' })
          .option('concurrency', { type: 'number', default: os.availableParallelism(), describe: 'Jobs at once, each in a worker thread' })
          .option('backend', { type: 'string', default: 'auto', describe: `${BACKEND_CHOICES.join('|')}` })
          .option('lock-duration', { type: 'number', default: 30000, describe: 'ms before a job of a dead worker is handed to another' })
          .option('quiet', { type: 'boolean', default: false }),
      async (a) => {
        const { startQueueWorker } = await import('../orchestration/queue.js');
        const handle = await startQueueWorker({
          url: a.queue,
          name: a['queue-name'],
          concurrency: a.concurrency,
          backend: a.backend,
          lockDuration: a['lock-duration'],
          log: (l) => note(a, `[${new Date().toISOString()}] ${l}`),
        });
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        note(a, 'worker stopping: finishing active jobs');
        await handle.close();
      },
    )
    .command(
      'recover',
      'Finish or roll back an operation that was interrupted (kill -9, power loss, full disk)',
      (y) => common(y),
      async (a) => {
        const { recover } = await import('../app/recover.js');
        const r = await recover({ workdir: a.workdir, wait: a.wait });
        emit(a, r, () =>
          r.interrupted
            ? `interrupted ${r.interrupted.op} (started ${r.interrupted.startedAt} by process ${r.interrupted.pid}): ${r.action}. ${r.note}${r.removedFiles.length ? `\nremoved ${r.removedFiles.length} uncommitted file(s)` : ''}`
            : `nothing to recover${r.removedFiles.length ? ` (removed ${r.removedFiles.length} stray file(s))` : ''}`,
        );
      },
    )
    .command(
      'verify',
      'Check hashes, receipts, that no deleted id remains anywhere and that every model excludes them; --deep retrains and compares',
      (y) => common(y).option('deep', { type: 'boolean', default: false, describe: 'Also retrain every shard from scratch and compare weights' }),
      async (a) => {
        const { verify } = await import('../app/verify.js');
        const r = await verify({ workdir: a.workdir, deep: a.deep });
        emit(a, r, () => r.checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`).join('\n'));
        if (!r.ok) throw new SisaError('STATE', `verify found ${r.problems.length} problem(s): ${r.problems.join(' | ')}`);
      },
    )
    .command(
      'bench',
      'Benchmark training, unlearning, ingest and prediction against scikit-learn and fastText on the same split',
      (y) =>
        common(y)
          .option('data', { type: 'string', describe: 'Labelled data file (with --label-col/--positive-values as for ingest)' })
          .option('synthetic', { type: 'number', describe: 'Generate N synthetic rows instead of --data' })
          .option('shards', { type: 'number', default: 8 })
          .option('slices', { type: 'number', default: 4 })
          .option('repeat', { type: 'number', default: 5, describe: 'Single-id deletions to time (median)' })
          .option('seed', { type: 'number', default: 7 })
          .option('label-col', { type: 'string' })
          .option('positive-values', { type: 'string' })
          .option('scale', { type: 'boolean', default: false, describe: 'Also time train at 100k, 300k and 1M synthetic rows (minutes)' })
          .option('keep', { type: 'string', describe: 'Keep the bench workspaces in this folder' }),
      async (a) => {
        const { runBench, benchTable } = await import('../bench/bench.js');
        if (!a.data && !a.synthetic) throw usageError('bench needs --data FILE or --synthetic N');
        const r = await runBench({
          data: a.data,
          synthetic: a.synthetic,
          shards: a.shards,
          slices: a.slices,
          repeat: a.repeat,
          seed: a.seed,
          ingestArgs: [...(a['label-col'] ? ['--label-col', a['label-col']] : []), ...(a['positive-values'] ? ['--positive-values', a['positive-values']] : [])],
          scale: a.scale,
          keep: a.keep,
          log: (l) => note(a, l),
        });
        emit(a, r, () => benchTable(r));
      },
    )
    .command(
      'status',
      'Shards, slices, rows, model versions, deletions and backend (with --queue: queued/active/failed jobs)',
      (y) => queueFlags(common(y)),
      async (a) => {
        await refuseIfInterrupted(a.workdir);
        const { status } = await import('../app/status.js');
        const base = await status(a.workdir);
        const queue = a.queue ? await (await import('../orchestration/queue.js')).queueStatus({ url: a.queue, name: a['queue-name'] }, base.workdir) : undefined;
        const s = { ...base, ...(queue ? { queue } : {}) };
        emit(a, s, () =>
          [
            `workspace ${s.workdir} (revision ${s.revision})`,
            `data set ${s.dataset.source} (sha256 ${s.dataset.fingerprint.slice(0, 16)}…), ${fmt.int(s.dataset.accepted)} rows`,
            `${s.config.shards} shards × ${s.config.slices} slices, seed ${s.config.seed}; held out: test ${s.heldout.test}, calibration ${s.heldout.calibration}`,
            s.trained ? `trained on backend ${s.backend}, last training ${s.lastTraining}` : 'not trained yet',
            `deletions: ${s.deletions.records} record(s) in ${s.deletions.batches} batch(es)${s.deletions.last ? `, last ${s.deletions.last}` : ''}`,
            table(['shard', 'rows', 'slices', 'version', 'model hash'], s.shards.map((x) => [x.shard, x.rows, x.slices.join('/'), x.modelVersion ?? '-', x.modelHash?.slice(0, 16) ?? '-'])),
            ...(queue
              ? [
                  `queue ${queue.queue}: ${Object.entries(queue.counts).map(([k, v]) => `${k} ${v}`).join(', ')}`,
                  ...queue.shards.map((j) => `  shard ${j.shard}: ${j.state} (attempts ${j.attempts})${j.failedReason ? ` — ${j.failedReason}` : ''}`),
                ]
              : []),
          ].join('\n'),
        );
      },
    )
    .command(
      'demo',
      'Generate the embedded demo corpus and run ingest → train → evaluate → predict → delete on it',
      (y) =>
        common(y)
          .option('rows', { type: 'number', default: 20000, describe: 'Rows in the generated corpus' })
          .option('seed', { type: 'number', default: 7 }),
      async (a) => {
        const { runDemo } = await import('../demo/demo.js');
        await runDemo({ workdir: a.workdir, rows: a.rows, seed: a.seed, json: a.json, quiet: a.quiet });
      },
    )
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
