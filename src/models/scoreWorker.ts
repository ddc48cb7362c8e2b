/**
 * Prediction worker: hashes a batch of texts and scores it with every linear member, returning only
 * the S probabilities per row (transferred, not copied). The weights arrive once, in shared memory.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { forEachFeatureBatch, type FeatureConfig } from '../features/hashing.js';
import { scoreLinearInto, type LinearMembers } from './linearScore.js';

export type ScoreInit = { features: FeatureConfig; members: LinearMembers };
export type ScoreRequest = { id: number; texts: string[] };
/** probs[m·n + r]: member m's probability for row r. */
export type ScoreReply = { id: number; probs: Float32Array };

const { features, members } = workerData as ScoreInit;

parentPort!.on('message', (msg: ScoreRequest) => {
  const n = msg.texts.length;
  const probs = new Float32Array(members.biases.length * n);
  // Each batch of features is scored where the featuriser left it, not gathered into one array first.
  forEachFeatureBatch(msg.texts, features, (b) => scoreLinearInto(members, b, b.rows, probs, n, b.first));
  const reply: ScoreReply = { id: msg.id, probs };
  parentPort!.postMessage(reply, [probs.buffer as ArrayBuffer]);
});
