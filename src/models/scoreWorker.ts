/**
 * Prediction worker: hashes a batch of texts and scores it with every linear member, returning only
 * the S probabilities per row (transferred, not copied). The weights arrive once, in shared memory.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { hashTexts, type FeatureConfig } from '../features/hashing.js';
import { scoreLinear, type LinearMembers } from './linearScore.js';

export type ScoreInit = { features: FeatureConfig; members: LinearMembers };
export type ScoreRequest = { id: number; texts: string[] };
/** probs[m·n + r]: member m's probability for row r. */
export type ScoreReply = { id: number; probs: Float32Array };

const { features, members } = workerData as ScoreInit;
const S = members.biases.length;

parentPort!.on('message', (msg: ScoreRequest) => {
  const n = msg.texts.length;
  const probs = new Float32Array(S * n);
  const out = Array.from({ length: S }, (_, m) => probs.subarray(m * n, (m + 1) * n));
  scoreLinear(members, hashTexts(msg.texts, features), n, out);
  const reply: ScoreReply = { id: msg.id, probs };
  parentPort!.postMessage(reply, [probs.buffer as ArrayBuffer]);
});
