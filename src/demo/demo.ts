/**
 * `sisa demo` / `npm run demo`: the whole product on a corpus it generates itself, offline —
 * ingest → train → evaluate → predict → delete one record → delete a batch → evaluate → status.
 */
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { ingest } from '../app/ingest.js';
import { evaluate } from '../app/evaluate.js';
import { loadEnsemble, predictTexts } from '../models/ensemble.js';
import { loadState, tryLoadState } from '../state/manifest.js';
import { stateError } from '../util/errors.js';
import { workspace } from '../state/workspace.js';
import { train } from '../app/train.js';
import { deleteRecords } from '../app/delete.js';
import { status } from '../app/status.js';
import { writeCorpusCsv } from './corpus.js';
import { placeRecord } from '../data/assign.js';
import { resolveGroups } from '../fairness/terms.js';
import { buildReport, writeReport } from '../app/report.js';
import { groupThousands } from '../util/format.js';

export interface DemoOptions {
  workdir: string;
  rows: number;
  seed: number;
  json?: boolean;
  quiet?: boolean;
}

export async function runDemo(o: DemoOptions): Promise<void> {
  const say = (s: string) => {
    if (!o.json) process.stdout.write(s + '\n');
  };
  await fsp.mkdir(o.workdir, { recursive: true });
  const corpus = path.join(o.workdir, 'demo-corpus.csv');
  // The demo starts from scratch, but it only ever clears a workspace that an earlier demo made.
  const ws0 = workspace(o.workdir);
  const existing = await tryLoadState(ws0).catch(() => null);
  if (existing) {
    if (existing.dataset.source !== path.resolve(corpus)) throw stateError(`${ws0.root} holds a real workspace (${existing.dataset.source}); run the demo in another --workdir`);
    for (const d of [ws0.shardsDir, ws0.manifestsDir, path.join(ws0.root, 'report')]) await fsp.rm(d, { recursive: true, force: true });
  }
  const rows = await writeCorpusCsv(corpus, { rows: o.rows, seed: o.seed, annotatorBias: 0.3, regions: true });
  say(`1. generated ${rows} synthetic comments → ${corpus}`);
  const groups = await resolveGroups(['builtin'], [], { valueColumns: ['region'] });
  const ing = await ingest({ input: corpus, workdir: o.workdir, shards: 8, slices: 4, seed: o.seed, test: 0.2, calibration: 0.2, force: true, groups });
  say(`2. ingest: ${ing.accepted} rows → 8 shards × 4 slices; test ${ing.test}, calibration ${ing.calibration}; ${ing.groups.any} rows mention an identity term`);
  const tr = await train({ workdir: o.workdir });
  say(`3. train: ${tr.shards.length} models on backend ${tr.backend} in ${tr.seconds.toFixed(2)} s (${groupThousands(Math.round(tr.examplesPerSec))} examples/s)`);
  const ev = await evaluate({ workdir: o.workdir, aggregate: 'mean' });
  say(`4. evaluate (test split): AUC ${ev.auc.toFixed(4)}, accuracy ${ev.accuracy.toFixed(4)}`);
  // The corpus's annotators over-label harmless identity mentions as toxic; the plain ensemble inherits
  // that bias, and the FairSISA 'votes' post-processor (fitted automatically after train) removes it.
  const fairness = await buildReport({ workdir: o.workdir, resamples: 200 });
  const testRow = (name: string) => fairness.methods.find((m) => m.split === 'test' && m.name === name)!;
  const plain = testRow('sisa');
  const fair = testRow('votes');
  say(`   fairness (test split, sensitive group = mentions an identity term):`);
  say(`     plain ensemble : accuracy ${plain.accuracy.toFixed(3)}, equalized-odds difference ${plain.eoDifference.toFixed(3)} (95% CI ${plain.eoDifferenceCI.map((x) => x.toFixed(3)).join('–')}); FPR ${plain.fpr.sensitive.toFixed(3)} in the group vs ${plain.fpr.other.toFixed(3)} outside`);
  say(`     FairSISA votes : accuracy ${fair.accuracy.toFixed(3)}, equalized-odds difference ${fair.eoDifference.toFixed(3)} (95% CI ${fair.eoDifferenceCI.map((x) => x.toFixed(3)).join('–')}); FPR ${fair.fpr.sensitive.toFixed(3)} in the group vs ${fair.fpr.other.toFixed(3)} outside`);
  // Three groups, one of them too small to constrain: the fit says so instead of fitting its noise.
  const regions = await buildReport({ workdir: o.workdir, attribute: 'region', resamples: 200 });
  const left = regions.fit.unconstrained;
  say(`   three groups (attribute 'region'; ${regions.data.find((s) => s.split === 'calibration')?.byGroup.map((g) => `${g.group} ${g.positives}+/${g.negatives}-`).join(', ')} in calibration):`);
  if (left.length) say(`     not constrained (--min-group): ${left.map((g) => `${g.group} (${g.reason})`).join('; ')}`);
  say(`     ${regions.verdict.text}`);
  const ws = workspace(o.workdir);
  const examples = ['have a lovely day friend', 'shut up you worthless idiot', 'honestly that is ridiculous'];
  const scored = predictTexts(await loadEnsemble(ws, await loadState(ws)), examples, 'vote');
  say('5. predict:');
  examples.forEach((t, i) => say(`     ${scored.label[i] ? 'TOXIC' : 'ok   '} ${scored.score[i]!.toFixed(3)}  "${t}"`));
  // One record from the training shards, then a batch of 50 ids as a data-protection request would list them.
  const cfg = (await loadState(ws)).config;
  const trainIds: string[] = [];
  for (let i = 0; trainIds.length < 1 && i < rows; i++) if (placeRecord(`d${i}`, cfg).split === 'train') trainIds.push(`d${i}`);
  for (let i = 1000; trainIds.length < 51 && i < rows; i++) trainIds.push(`d${i}`);
  const one = await deleteRecords({ workdir: o.workdir, ids: [trainIds[0]!] });
  say(`6. delete --id ${trainIds[0]}: ${one.deleted.length} deleted in ${one.seconds.toFixed(2)} s; retrained ${one.retrained.map((r) => `shard ${r.shard} from slice ${r.fromSlice}`).join(', ') || 'nothing (it was held out)'}; full train took ${tr.seconds.toFixed(2)} s`);
  const batch = await deleteRecords({ workdir: o.workdir, ids: trainIds.slice(1) });
  say(`7. delete 50 ids: ${batch.deleted.length} deleted in ${batch.seconds.toFixed(2)} s, ${batch.retrained.length} shard(s) retrained, ${batch.heldout.reduce((n, h) => n + h.ids.length, 0)} removed from held-out splits`);
  const ev2 = await evaluate({ workdir: o.workdir, aggregate: 'mean' });
  say(`8. evaluate after deletions: AUC ${ev2.auc.toFixed(4)}, accuracy ${ev2.accuracy.toFixed(4)}`);
  const st = await status(o.workdir);
  say(`9. status: ${st.deletions.records} records forgotten in ${st.deletions.batches} batches; model versions ${st.shards.map((s) => s.modelVersion).join(' ')}`);
  const { files } = await writeReport({ workdir: o.workdir, resamples: 200 });
  say(`10. fairness report after the deletions: ${files.join(', ')}`);
  say(`\nworkspace: ${path.resolve(o.workdir)} — try: npx sisa status --workdir ${o.workdir}`);
  if (o.json) process.stdout.write(JSON.stringify({ corpusRows: rows, ingest: ing, train: tr, evaluate: ev, fairness: { plain, votes: fair }, deleteOne: one, deleteBatch: batch, evaluateAfter: ev2, status: st }, null, 2) + '\n');
}
