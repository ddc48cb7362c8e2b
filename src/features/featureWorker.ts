/** Worker-thread entry point: hashes batches of texts into CSR arrays (transferred back, not copied). */
import { parentPort } from 'node:worker_threads';
import { hashText, type FeatureConfig } from './hashing.js';

export type FeatureRequest = { id: number; texts: string[]; cfg: FeatureConfig };
export type FeatureReply = { id: number; offsets: Int32Array; indices: Int32Array; values: Float32Array };

parentPort!.on('message', (msg: FeatureRequest) => {
  const parts = msg.texts.map((t) => hashText(t, msg.cfg));
  const offsets = new Int32Array(parts.length + 1);
  let nnz = 0;
  parts.forEach((p, i) => {
    nnz += p.indices.length;
    offsets[i + 1] = nnz;
  });
  const indices = new Int32Array(nnz);
  const values = new Float32Array(nnz);
  parts.forEach((p, i) => {
    indices.set(p.indices, offsets[i]!);
    values.set(p.values, offsets[i]!);
  });
  const reply: FeatureReply = { id: msg.id, offsets, indices, values };
  parentPort!.postMessage(reply, [offsets.buffer, indices.buffer, values.buffer]);
});
