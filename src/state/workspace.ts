/** Where things live inside a workspace folder (`--workdir`). */
import path from 'node:path';
import { FsMetaStore, type MetaStore } from '../storage/metaStore.js';

export interface Workspace {
  root: string;
  shardsDir: string;
  manifestsDir: string;
  checkpointsDir: string;
  statePath: string;
  deletionsDir: string;
  fairnessPath: string;
  /** The manifests (state, journal, receipts, pending requests, fit) through the metadata seam. */
  meta: MetaStore;
}

export function workspace(root: string): Workspace {
  const abs = path.resolve(root);
  const manifestsDir = path.join(abs, 'manifests');
  return {
    root: abs,
    shardsDir: path.join(abs, 'shards'),
    manifestsDir,
    checkpointsDir: path.join(abs, 'shards', 'checkpoints'),
    statePath: path.join(manifestsDir, 'state.json'),
    deletionsDir: path.join(manifestsDir, 'deletions'),
    fairnessPath: path.join(manifestsDir, 'fairness.json'),
    meta: new FsMetaStore(manifestsDir),
  };
}
