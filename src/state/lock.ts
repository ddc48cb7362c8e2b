/**
 * One writer at a time per workspace, with proper-lockfile (a lock directory whose mtime is refreshed
 * while held). The holder's pid is written beside it, so a lock left by a killed process is taken over
 * at once instead of after the staleness timeout.
 */
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { SisaError } from '../util/errors.js';
import type { Workspace } from './workspace.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function withWorkspaceLock<T>(ws: Workspace, wait: boolean, fn: () => Promise<T>): Promise<T> {
  await fsp.mkdir(ws.manifestsDir, { recursive: true });
  const lockPath = path.join(ws.manifestsDir, 'lock');
  const pidPath = path.join(ws.manifestsDir, 'lock.pid');
  const deadline = Date.now() + (wait ? 24 * 3600_000 : 0);
  let release: (() => Promise<void>) | null = null;
  for (let attempt = 0; ; attempt++) {
    try {
      release = await lockfile.lock(ws.manifestsDir, { lockfilePath: lockPath, stale: 10_000, update: 2_000, realpath: false });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
      const holder = Number(await fsp.readFile(pidPath, 'utf8').catch(() => 'NaN'));
      if (Number.isInteger(holder) && holder !== process.pid && !alive(holder)) {
        // The holder was killed: its lock is stale now, whatever its mtime says.
        await fsp.rm(lockPath, { recursive: true, force: true });
        continue;
      }
      if (Date.now() >= deadline)
        throw new SisaError('STATE', `workspace ${ws.root} is locked by another sisa process${Number.isInteger(holder) ? ` (pid ${holder})` : ''}; pass --wait to wait for it`);
      await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** Math.min(attempt, 5))));
    }
  }
  await fsp.writeFile(pidPath, String(process.pid));
  try {
    return await fn();
  } finally {
    await release!().catch(() => undefined);
  }
}
