/**
 * Named crash points for fault-injection tests. With SISA_CRASH_AT=name (or name@n for the n-th time
 * the point is reached) the process kills itself with SIGKILL there, exactly as a power loss or an
 * OOM kill would stop it: no cleanup, no finally blocks. Without the variable this does nothing.
 */
const counts = new Map<string, number>();

function hit(spec: string | undefined, name: string): boolean {
  if (!spec) return false;
  const [point, nth] = spec.split('@');
  if (point !== name) return false;
  const key = `${spec}`;
  const n = (counts.get(key) ?? 0) + 1;
  counts.set(key, n);
  return n === Number(nth ?? 1);
}

/**
 * Also SISA_DISK_FULL_AT=name[@n]: at that point the write fails with ENOSPC, as on a full disk, so
 * tests can check that a failed write leaves the stored state intact.
 */
export function crashPoint(name: string): void {
  if (hit(process.env.SISA_CRASH_AT, name)) process.kill(process.pid, 'SIGKILL');
  if (hit(process.env.SISA_DISK_FULL_AT, name)) {
    throw Object.assign(new Error(`ENOSPC: no space left on device, write (at ${name})`), { code: 'ENOSPC', errno: -28, syscall: 'write' });
  }
}

/**
 * SISA_LOSE_OUTPUT_AT=name[@n] / SISA_DAMAGE_OUTPUT_AT=name[@n]: the file just written at that point is
 * removed / truncated, while the writer reports success, as when a worker writes to a folder that is not
 * the one the coordinator reads. Tests use it to check that the coordinator verifies what it commits.
 */
export function outputFault(name: string): 'lose' | 'damage' | null {
  if (hit(process.env.SISA_LOSE_OUTPUT_AT, name)) return 'lose';
  if (hit(process.env.SISA_DAMAGE_OUTPUT_AT, name)) return 'damage';
  return null;
}

/**
 * SISA_PAUSE_AT=name[@n] with SISA_PAUSE_DIR=DIR: at that point the process writes DIR/name.paused (its
 * pid inside) and waits, with its event loop running, until DIR/name.go exists. Tests use it to make two
 * processes overlap at an exact point (a lock takeover, a commit) instead of hoping a race happens.
 */
export async function pausePoint(name: string): Promise<void> {
  const dir = process.env.SISA_PAUSE_DIR;
  if (!dir || !hit(process.env.SISA_PAUSE_AT, name)) return;
  const { writeFile, access } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const file = join(dir, name.replace(/[^a-z0-9-]/gi, '_'));
  await writeFile(`${file}.paused`, String(process.pid));
  for (;;) {
    try {
      await access(`${file}.go`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
