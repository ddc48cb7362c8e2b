// The README's library example: run it with `node example.mjs` in a project where `npm install sisa`
// was run, beside data.csv (columns id,text,label; label 1 = toxic) and new.csv (columns id,text).
import { ingest, train, evaluate, predictFile, deleteRecords, fitFairness, writeReport, verify, status, recover, resolveGroups, SisaError } from 'sisa';

const workdir = 'ws';

// Shard and slice the data; hold out 20% to test and 20% to calibrate the fairness post-processors,
// with the built-in identity terms marking the sensitive group.
const groups = await resolveGroups(['builtin'], []);
const ingested = await ingest({ input: 'data.csv', workdir, shards: 8, slices: 4, calibration: 0.2, groups, force: true });
console.log(`ingested ${ingested.accepted} rows; ${ingested.groups.any} mention an identity term`);

const trained = await train({ workdir });
console.log(`trained ${trained.shards.length} shards on ${trained.backend}`);

const metrics = await evaluate({ workdir });
console.log(`test AUC ${metrics.auc.toFixed(3)}, accuracy ${metrics.accuracy.toFixed(3)}`);

// train refits the post-processors already; fitFairness refits them on demand (another tolerance, say).
const fit = await fitFairness({ workdir, tolerance: 0.02 });
console.log(`fairness fitted on ${fit.calibrationRows} calibration rows`);

const predictions = await predictFile({ workdir, file: 'new.csv', fair: 'ensemble' });
for (const p of predictions) console.log(`${p.id}: score ${p.score.toFixed(3)}, label ${p.label}`);

// A deletion request: the record is forgotten exactly, by retraining only its shard from its slice.
const deletion = await deleteRecords({ workdir, ids: ['d42', 'no-such-id'] });
console.log(`deleted ${deletion.deleted.join(', ')}; not found: ${deletion.notFound.join(', ')}`);

const { files } = await writeReport({ workdir, resamples: 100 });
console.log(`report: ${files.map((f) => f.split('/').pop()).join(', ')}`);

const check = await verify({ workdir });
console.log(`verify: ${check.ok ? 'ok' : check.problems.join('; ')}`);

const s = await status({ workdir });
console.log(`${s.deletions.records} record(s) deleted; workspace ${(s.disk.bytes / 1e6).toFixed(1)} MB`);

console.log(`recover: ${(await recover({ workdir })).action}`); // nothing to do after a clean run

// Mistakes are one-line errors naming the option, raised before any file is touched.
try {
  await ingest({ input: 'data.csv', workdir: 'ws2', positiveValues: '1' });
} catch (err) {
  if (!(err instanceof SisaError)) throw err;
  console.log(`error: ${err.message}`);
}
