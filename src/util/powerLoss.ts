/**
 * A power-loss simulator for crash tests, in the manner of SQLite's crash-test VFS.
 *
 * A SIGKILL (what SISA_CRASH_AT does) keeps everything the process handed to the kernel: every write,
 * rename and unlink survives it. A power loss keeps only what was made durable: a file's content as of
 * its last fsync, and a directory's entries (creations, renames, removals) as of the directory's last
 * fsync. Code that forgets an fsync passes every SIGKILL test and still loses data, or brings deleted
 * data back, when the power goes. This module lets the crash tests see that difference.
 *
 * How it works: with SISA_POWER_LOSS_LOG=DIR set, every fsync that sisa makes (through util/fsx) is
 * recorded in DIR: for a file, a copy of the content it made durable; for a directory, the entries it
 * made durable. The records are appended synchronously, so those of worker threads count too. The test
 * records the workspace as durable before it starts sisa (`beginPowerLossLog`), kills it at a crash
 * point, then calls `simulatePowerLoss`, which puts the workspace back into the state a machine would
 * find after a power cut at that moment: every change not yet made durable is forgotten.
 *
 * Files are identified by (device, inode, birth time), as a directory entry names an inode and a rename
 * keeps it: content synced under a temporary name is durable under the name it is renamed to.
 * A file whose entry is durable but whose content never was comes back empty, as after a crash on a
 * journaling filesystem that orders metadata only. Directories themselves are treated as durable once
 * created (mkdir is not tracked); their entries are what this module forgets.
 */
import * as fs from 'node:fs';
import path from 'node:path';
import { threadId } from 'node:worker_threads';

const LOG_ENV = 'SISA_POWER_LOSS_LOG';

type Entry = string | { dir: true };

interface FileEvent {
  t: 'file';
  key: string;
  blob: string;
}
interface DirEvent {
  t: 'dir';
  dir: string;
  /** When the listing was taken (CLOCK_MONOTONIC, nanoseconds: one clock for every process and thread). */
  at: string;
  entries: [string, Entry][];
}
type Event = FileEvent | DirEvent;

function fileKey(file: string): string {
  const s = fs.statSync(file, { bigint: true });
  return `${s.dev}:${s.ino}:${s.birthtimeNs}`;
}

function listing(dir: string): [string, Entry][] {
  const out: [string, Entry][] = [];
  for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
    if (d.isDirectory()) out.push([d.name, { dir: true }]);
    else if (d.isFile()) {
      // Another thread may rename or remove a file between the listing and its stat: it is gone.
      try {
        out.push([d.name, fileKey(path.join(dir, d.name))]);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }
  return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

let blobCounter = 0;
function record(logDir: string, event: Event): void {
  fs.appendFileSync(path.join(logDir, 'events.jsonl'), JSON.stringify(event) + '\n');
}

function recordFile(logDir: string, file: string): void {
  blobCounter += 1;
  const blob = `${process.pid}-${threadId}-${blobCounter}`;
  fs.mkdirSync(path.join(logDir, 'blobs'), { recursive: true });
  fs.writeFileSync(path.join(logDir, 'blobs', blob), fs.readFileSync(file));
  record(logDir, { t: 'file', key: fileKey(file), blob });
}

/** Called by util/fsx after a file's fsync succeeded. Does nothing unless SISA_POWER_LOSS_LOG is set. */
export function noteFileSynced(file: string): void {
  const logDir = process.env[LOG_ENV];
  if (logDir) recordFile(logDir, path.resolve(file));
}

/** A directory's entries as listed for the power-loss log, and when they were listed. */
export interface DirListing {
  dir: string;
  at: string;
  entries: [string, Entry][];
}

/**
 * The directory's entries, taken just before its fsync (null unless SISA_POWER_LOSS_LOG is set). Taken
 * before, not after: an entry renamed in by another thread after the fsync is not durable, and a listing
 * taken after would record it as if it were.
 */
export function listDirBeforeSync(dir: string): DirListing | null {
  if (!process.env[LOG_ENV]) return null;
  const resolved = path.resolve(dir);
  const at = process.hrtime.bigint().toString();
  return { dir: resolved, at, entries: listing(resolved) };
}

/** Called by util/fsx after a directory's fsync succeeded, with the listing taken before it. */
export function noteDirSynced(before: DirListing | null): void {
  const logDir = process.env[LOG_ENV];
  if (logDir && before) record(logDir, { t: 'dir', dir: before.dir, at: before.at, entries: before.entries });
}

/** Records everything under `root` as durable: the state a test starts sisa from. Returns the env to pass. */
export function beginPowerLossLog(root: string, logDir: string): Record<string, string> {
  fs.rmSync(logDir, { recursive: true, force: true });
  fs.mkdirSync(logDir, { recursive: true });
  const walk = (dir: string) => {
    const at = process.hrtime.bigint().toString();
    const entries = listing(dir);
    record(logDir, { t: 'dir', dir, at, entries });
    for (const [name, e] of entries) {
      if (typeof e === 'string') recordFile(logDir, path.join(dir, name));
      else walk(path.join(dir, name));
    }
  };
  walk(path.resolve(root));
  return { [LOG_ENV]: logDir };
}

export interface PowerLossEffect {
  /** Files present after the kill that the power loss removed (created or renamed in, not made durable). */
  dropped: string[];
  /** Files absent after the kill that came back (removed or renamed away, the removal not made durable). */
  revived: string[];
  /** Files whose content went back to an older durable version, or to empty (content never synced). */
  reverted: string[];
}

/**
 * Puts `root` into the state a power loss would leave now, from the log in `logDir`; returns what it
 * changed, relative to `root`, so a test can report what the simulation forgot.
 */
export function simulatePowerLoss(root: string, logDir: string): PowerLossEffect {
  const content = new Map<string, string>(); // key → blob
  const dirs = new Map<string, Map<string, Entry>>();
  const listedAt = new Map<string, bigint>();
  const text = fs.readFileSync(path.join(logDir, 'events.jsonl'), 'utf8');
  for (const line of text.split('\n')) {
    if (!line) continue;
    const e = JSON.parse(line) as Event;
    if (e.t === 'file') content.set(e.key, e.blob);
    else {
      // A directory's durable entries are those of the latest listing whose fsync completed, by when it
      // was listed, not by when its record was appended: two fsyncs of one directory (two checkpoints
      // stored at once) may complete in the other order, and the earlier listing lacks the later entry,
      // which the later fsync did make durable.
      const at = BigInt(e.at);
      if (at >= (listedAt.get(e.dir) ?? -1n)) {
        listedAt.set(e.dir, at);
        dirs.set(e.dir, new Map(e.entries));
      }
    }
  }
  const effect: PowerLossEffect = { dropped: [], revived: [], reverted: [] };
  const rel = (p: string) => path.relative(root, p);
  const durableBytes = (key: string): Buffer => {
    const blob = content.get(key);
    return blob ? fs.readFileSync(path.join(logDir, 'blobs', blob)) : Buffer.alloc(0);
  };
  const visit = (dir: string) => {
    // A directory created during the run that was never synced has no durable entries.
    const durable = dirs.get(dir) ?? new Map<string, Entry>();
    const now = new Map(fs.existsSync(dir) ? listing(dir) : []);
    fs.mkdirSync(dir, { recursive: true });
    for (const [name, e] of now) {
      if (typeof e !== 'string') continue;
      const file = path.join(dir, name);
      const want = durable.get(name);
      if (typeof want !== 'string') {
        fs.rmSync(file, { force: true });
        effect.dropped.push(rel(file));
      } else {
        const bytes = durableBytes(want);
        // Another inode with the same bytes (a content-addressed file written again) is no change.
        if (!bytes.equals(fs.readFileSync(file))) {
          fs.rmSync(file, { force: true });
          fs.writeFileSync(file, bytes);
          effect.reverted.push(rel(file));
        }
      }
    }
    for (const [name, e] of durable) {
      if (typeof e !== 'string' || now.has(name)) continue;
      fs.writeFileSync(path.join(dir, name), durableBytes(e));
      effect.revived.push(rel(path.join(dir, name)));
    }
    const subdirs = new Set<string>();
    for (const m of [now, durable]) for (const [name, e] of m) if (typeof e !== 'string') subdirs.add(name);
    for (const name of [...subdirs].sort()) visit(path.join(dir, name));
  };
  visit(path.resolve(root));
  return effect;
}
