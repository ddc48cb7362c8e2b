/** Worker-thread entry point: hashes batches of texts into CSR arrays (transferred back, not copied). */
import { answerRequests } from '../util/workerPool.js';
import { hashTexts, type FeatureConfig } from './hashing.js';

export type FeatureRequest = { id: number; texts: string[]; cfg: FeatureConfig };
export type FeatureReply = { id: number; offsets: Int32Array; indices: Int32Array; values: Float32Array };

answerRequests<FeatureRequest, FeatureReply>((msg) => {
  const { offsets, indices, values } = hashTexts(msg.texts, msg.cfg);
  return { reply: { id: msg.id, offsets, indices, values }, transfer: [offsets.buffer as ArrayBuffer, indices.buffer as ArrayBuffer, values.buffer as ArrayBuffer] };
});
