/**
 * One writer at a time per workspace: a lease on `manifests/lock` (a directory made atomically by
 * proper-lockfile, whose mtime the holder refreshes) plus `manifests/lock.owner`, which names the holder
 * (pid, host, a random token) and is written atomically right after the lock is taken and removed before
 * it is released.
 *
 * Why the token: a lock whose holder was killed is taken over at once (its pid is dead), and a lock whose
 * holder stopped refreshing it goes stale; either way another process may now hold the workspace while
 * the old holder still runs. So every commit point first checks that `lock.owner` still carries this
 * process's token (fencing, `assertLeaseHeld`): a process that lost the lock cannot commit. A takeover
 * claims the stale owner file by renaming it (only one process can), and gives it back if what it
 * claimed was not the stale owner it saw.
 *
 * The owner file is made durable (directory fsync) and names the boot it was written in: after a power
 * cut the lock directory can survive while an owner file that was only renamed into place would not, and
 * a lock without an owner counts as held until it goes stale. With a durable owner from an earlier boot,
 * the lock is known to be dead at once, even if a new process now has the old pid.
 */
import { randomUUID } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { SisaError } from '../util/errors.js';
import { pausePoint } from '../util/faults.js';
import { readFileSync } from 'node:fs';
import { commitTempFile, fsyncDir, writeSyncedTemp } from '../util/fsx.js';
import type { Workspace } from './workspace.js';
import type { Lease as LeaseSeam } from '../storage/lease.js';

interface LockOwner {
  pid: number;
  host: string;
  token: string;
  acquiredAt: string;
  /** The kernel's boot id when the lock was taken (absent where the platform has none). */
  boot?: string;
}

let bootIdCache: string | undefined;
/** Linux's per-boot random id; '' elsewhere (then only the pid tells whether a holder is alive). */
function bootId(): string {
  if (bootIdCache === undefined) {
    try {
      bootIdCache = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootIdCache = '';
    }
  }
  return bootIdCache;
}

/** Whether the owner of a lock on this host is dead: its pid is gone, or it was written in an earlier boot. */
function ownerDead(owner: LockOwner): boolean {
  if (owner.boot && bootId() && owner.boot !== bootId()) return true;
  return owner.pid !== process.pid && !alive(owner.pid);
}

interface LeaseRecord {
  token: string;
  /** Set when proper-lockfile finds the lock changed under it (it went stale and was taken over). */
  compromised: Error | null;
  /** Set by `interruptOperations` (Ctrl-C): the operation must stop before its commit. */
  interrupted: boolean;
  /** Set once the commit has begun: from then on an interrupt waits for the operation to finish. */
  committing: boolean;
}

/** The leases this process holds, by workspace root: a process may hold several workspaces. */
const held = new Map<string, LeaseRecord>();

const lockPath = (ws: Workspace) => path.join(ws.manifestsDir, 'lock');
const ownerPath = (ws: Workspace) => path.join(ws.manifestsDir, 'lock.owner');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOwner(ws: Workspace): Promise<LockOwner | null> {
  try {
    const o = JSON.parse(await fsp.readFile(ownerPath(ws), 'utf8')) as Partial<LockOwner>;
    return typeof o.pid === 'number' && typeof o.token === 'string' && typeof o.host === 'string' ? (o as LockOwner) : null;
  } catch {
    // Missing or half-written: a holder between taking the lock and naming itself. Treated as alive.
    return null;
  }
}

/**
 * Written atomically (temporary file, fsync, rename) but without the data writes' crash points: the
 * crash-point suite numbers those writes, and the lock is not one of them.
 */
async function writeOwner(ws: Workspace, owner: LockOwner): Promise<void> {
  await commitTempFile(await writeSyncedTemp(ownerPath(ws), JSON.stringify(owner) + '\n'), ownerPath(ws));
}

/** Removes a lock whose owner is dead, unless another process got there first. True if it did. */
async function takeOverStale(ws: Workspace, stale: LockOwner): Promise<boolean> {
  await pausePoint('lock:stale-seen');
  const claimed = `${ownerPath(ws)}.${randomUUID()}`;
  try {
    await fsp.rename(ownerPath(ws), claimed);
  } catch {
    return false; // another process claimed it (or a new holder has not named itself yet)
  }
  const got = await fsp.readFile(claimed, 'utf8').catch(() => '');
  if (!got.includes(stale.token)) {
    // The owner file changed since we read it: a live holder's. Give it back.
    await fsp.rename(claimed, ownerPath(ws)).catch(() => undefined);
    return false;
  }
  await fsp.rm(lockPath(ws), { recursive: true, force: true });
  await fsp.rm(claimed, { force: true });
  return true;
}

/** The workspace folder's implementation of the lease seam. */
export function workspaceLease(ws: Workspace): LeaseSeam {
  return { hold: (wait, fn) => withWorkspaceLock(ws, wait, fn), assertHeld: () => assertLeaseHeld(ws), isHeld: () => holdsLease(ws) };
}

export async function withWorkspaceLock<T>(ws: Workspace, wait: boolean, fn: () => Promise<T>): Promise<T> {
  await fsp.mkdir(ws.manifestsDir, { recursive: true });
  const deadline = Date.now() + (wait ? 24 * 3600_000 : 0);
  const lease: LeaseRecord = { token: randomUUID(), compromised: null, interrupted: false, committing: false };
  let release: (() => Promise<void>) | null = null;
  for (let attempt = 0; ; attempt++) {
    try {
      release = await lockfile.lock(ws.manifestsDir, {
        lockfilePath: lockPath(ws),
        stale: 10_000,
        update: 2_000,
        realpath: false,
        // proper-lockfile throws from a timer by default; the fencing check turns this into a clean refusal.
        onCompromised: (err) => {
          lease.compromised = err;
        },
      });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
      let owner = await readOwner(ws);
      // A holder names itself right after taking the lock (a write, an fsync, a rename, a directory fsync):
      // give it a moment, so that a refusal can say who holds the workspace.
      for (let i = 0; !owner && i < 10; i++) {
        await new Promise((r) => setTimeout(r, 50));
        owner = await readOwner(ws);
      }
      if (owner && owner.host === hostname() && ownerDead(owner)) {
        // The holder was killed: its lock is stale now, whatever its mtime says.
        await takeOverStale(ws, owner);
        continue;
      }
      if (Date.now() >= deadline)
        throw new SisaError('STATE', `workspace ${ws.root} is locked by another sisa process${owner ? ` (pid ${owner.pid}${owner.host !== hostname() ? ` on ${owner.host}` : ''})` : ''}; pass --wait to wait for it`);
      await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** Math.min(attempt, 5))));
    }
  }
  try {
    await writeOwner(ws, { pid: process.pid, host: hostname(), token: lease.token, acquiredAt: new Date().toISOString(), ...(bootId() ? { boot: bootId() } : {}) });
  } catch (err) {
    // A full disk or an I/O error while naming ourselves: give the lock back instead of leaving it held
    // (without an owner it would count as alive until it went stale).
    await release!().catch(() => undefined);
    throw err;
  }
  held.set(ws.root, lease);
  try {
    return await fn();
  } finally {
    held.delete(ws.root);
    // Only our own owner file is removed: after a takeover it names the new holder.
    if ((await readOwner(ws))?.token === lease.token) {
      await fsp.rm(ownerPath(ws), { force: true });
      await release!().catch(() => undefined);
      // Both removals durable: a power cut must not leave a lock directory (held until it goes stale)
      // behind. If this sync fails, the worst left is such a stale lock, so the operation's outcome stands.
      await fsyncDir(ws.manifestsDir).catch(() => undefined);
    }
  }
}

/**
 * Fencing: throws unless this process still holds the workspace it is about to commit to. Called right
 * before every commit point (state, receipts, fairness fit) and before removing files.
 */
export async function assertLeaseHeld(ws: Workspace): Promise<void> {
  const lease = held.get(ws.root);
  if (!lease) throw new SisaError('STATE', `internal error: a write to ${ws.root} without holding its lock`);
  const owner = await readOwner(ws);
  if (owner?.token === lease.token && !lease.compromised) return;
  throw new SisaError(
    'STATE',
    `this process lost the lock on ${ws.root}${owner && owner.token !== lease.token ? ` to process ${owner.pid}` : ''} before its commit, so it committed nothing; check 'sisa status' and retry`,
  );
}

/**
 * Ctrl-C: every operation this process runs stops at its next check before the commit (`assertMayCommit`,
 * and the job runner between jobs) and rolls back; one already committing finishes. Returns whether any
 * operation was running.
 */
export function interruptOperations(): boolean {
  for (const lease of held.values()) lease.interrupted = true;
  for (const wake of interruptWaiters.splice(0)) wake();
  return held.size > 0;
}

const interruptWaiters: (() => void)[] = [];

/** Resolves when `interruptOperations` is called (used to stop waiting for shard jobs at once). */
export function whenInterrupted(): Promise<void> {
  return new Promise((resolve) => interruptWaiters.push(resolve));
}

export function interruptedError(): SisaError {
  return new SisaError('INTERRUPTED', 'interrupted (Ctrl-C) before the commit');
}

/** Whether Ctrl-C asked this process's operations to stop (and none has begun its commit). */
export function isInterrupted(): boolean {
  return [...held.values()].some((l) => l.interrupted && !l.committing);
}

/**
 * The check before a commit point: the lock is still ours (fencing) and the user has not interrupted.
 * Once it passes, the operation is committing, and a later Ctrl-C lets it finish.
 */
export async function assertMayCommit(ws: Workspace): Promise<void> {
  const lease = held.get(ws.root);
  if (lease?.interrupted && !lease.committing) throw interruptedError();
  await assertLeaseHeld(ws);
  if (lease) lease.committing = true;
}

/** Whether this process still holds the workspace (the fencing check, as a boolean). */
export async function holdsLease(ws: Workspace): Promise<boolean> {
  return assertLeaseHeld(ws).then(
    () => true,
    () => false,
  );
}
