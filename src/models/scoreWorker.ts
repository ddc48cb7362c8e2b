/**
 * Prediction worker: hashes a batch of texts and scores it with every linear member, returning only
 * the S probabilities per row (transferred, not copied). The weights arrive once, in shared memory.
 */
import { workerData } from 'node:worker_threads';
import { answerRequests } from '../util/workerPool.js';
import { forEachFeatureBatch, type FeatureConfig } from '../features/hashing.js';
import { scoreLinearInto, type LinearMembers } from './linearScore.js';
import { adoptKernels, type CompiledKernels } from '../util/wasm.js';

/** `kernels`: the parent's compiled kernels, whose code this thread shares instead of compiling its own. */
export type ScoreInit = { features: FeatureConfig; members: LinearMembers; kernels: CompiledKernels };
export type ScoreRequest = { id: number; texts: string[] };
/** probs[m·n + r]: member m's probability for row r. */
export type ScoreReply = { id: number; probs: Float32Array };

const { features, members, kernels } = workerData as ScoreInit;
adoptKernels(kernels);

answerRequests<ScoreRequest, ScoreReply>((msg) => {
  const n = msg.texts.length;
  const probs = new Float32Array(members.biases.length * n);
  // Each featurisation batch is scored as it comes (copied once into the scoring memory), not first gathered
  // with the rest of the request into one array.
  forEachFeatureBatch(msg.texts, features, (b) => scoreLinearInto(members, b, b.rows, probs, n, b.first));
  return { reply: { id: msg.id, probs }, transfer: [probs.buffer as ArrayBuffer] };
});
