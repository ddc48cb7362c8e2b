/** Worker-thread entry point: hashes batches of texts into CSR arrays (transferred back, not copied). */
import { parentPort } from 'node:worker_threads';
import { hashTexts, type FeatureConfig } from './hashing.js';

export type FeatureRequest = { id: number; texts: string[]; cfg: FeatureConfig };
export type FeatureReply = { id: number; offsets: Int32Array; indices: Int32Array; values: Float32Array };

parentPort!.on('message', (msg: FeatureRequest) => {
  const { offsets, indices, values } = hashTexts(msg.texts, msg.cfg);
  const reply: FeatureReply = { id: msg.id, offsets, indices, values };
  parentPort!.postMessage(reply, [offsets.buffer as ArrayBuffer, indices.buffer as ArrayBuffer, values.buffer as ArrayBuffer]);
});
