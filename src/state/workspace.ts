/** Where things live inside a workspace folder (`--workdir`). */
import path from 'node:path';

export interface Workspace {
  root: string;
  shardsDir: string;
  manifestsDir: string;
  checkpointsDir: string;
  statePath: string;
  deletionsDir: string;
  fairnessPath: string;
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
  };
}
