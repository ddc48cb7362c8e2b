import type { Argv } from 'yargs';
import { COMMAND_TEXT } from './text.js';
import { emit, fmt, table } from '../output.js';
import { common, warnIfInterrupted } from '../flags.js';
export function statusCommand(y: Argv): Argv {
  return y.command(
      COMMAND_TEXT.status.command,
      COMMAND_TEXT.status.describe,
      (y) =>
        common(y)
          .option('queue', { type: 'string', describe: "Also list this workspace's queued, active and failed shard jobs on the BullMQ queue at this Redis URL" })
          .option('queue-name', { type: 'string', describe: 'BullMQ queue name (default sisa-shards)' })
          .example('$0 status --workdir dv', 'What is in dv: data set, shards, models, deletions, size on disk')
          .example('$0 status --queue redis://127.0.0.1:6379 --workdir dv', 'Also the shard jobs on the queue'),
      async (a) => {
        await warnIfInterrupted(a.workdir);
        const { status } = await import('../../app/status.js');
        const base = await status(a.workdir);
        // This workspace's jobs name its folder (local runs) or its object store (workers with a cache).
        const { folderStoreUrl } = await import('../../storage/fsBlobStore.js');
        const stores = [folderStoreUrl(base.workdir), ...(base.store ? [base.store.url] : [])];
        const queue = a.queue ? await (await import('../../orchestration/queue.js')).queueStatus({ url: a.queue, name: a['queue-name'] }, stores) : undefined;
        const s = { ...base, ...(queue ? { queue } : {}) };
        emit(a, s, () =>
          [
            `workspace ${s.workdir} (revision ${s.revision})`,
            `size ${fmt.bytes(s.disk.bytes)} on disk (data ${fmt.bytes(s.disk.data)}, checkpoints ${fmt.bytes(s.disk.checkpoints)}, manifests ${fmt.bytes(s.disk.manifests)}${s.disk.other ? `, other ${fmt.bytes(s.disk.other)}` : ''})`,
            ...(s.store
              ? [
                  `blobs in ${s.store.url}${s.store.endpoint ? ` at ${s.store.endpoint}` : ''} (manifests here; shards/ is a local cache)`,
                  s.store.size.bytes === null ? `store size unknown: ${s.store.size.error}` : `store size ${fmt.bytes(s.store.size.bytes)} in ${s.store.size.blobs} blob(s)`,
                ]
              : []),
            `data set ${s.dataset.source} (sha256 ${s.dataset.fingerprint.slice(0, 16)}…), ${fmt.int(s.dataset.accepted)} rows`,
            `${s.config.shards} shards × ${s.config.slices} slices, seed ${s.config.seed}; held out: test ${s.heldout.test}, calibration ${s.heldout.calibration}`,
            s.trained ? `trained on backend ${s.backend}, last training ${s.lastTraining}` : 'not trained yet',
            `deletions: ${s.deletions.records} record(s) in ${s.deletions.batches} batch(es)${s.deletions.last ? `, last ${s.deletions.last}` : ''}`,
            ...(s.pendingRequests.length
              ? [`pending deletion requests: ${s.pendingRequests.length} (${s.pendingRequests.reduce((n, p) => n + p.ids, 0)} ids, oldest accepted ${s.pendingRequests[0]!.requestedAt ?? 'at an unknown time'}): run 'sisa recover' to apply them`]
              : []),
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
  );
}
