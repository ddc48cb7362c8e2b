/**
 * Named crash points for fault-injection tests. With SISA_CRASH_AT=name (or name@n for the n-th time
 * the point is reached) the process kills itself with SIGKILL there, exactly as a power loss or an
 * OOM kill would stop it: no cleanup, no finally blocks. Without the variable this does nothing.
 */
const counts = new Map<string, number>();

export function crashPoint(name: string): void {
  const spec = process.env.SISA_CRASH_AT;
  if (!spec) return;
  const [point, nth] = spec.split('@');
  if (point !== name) return;
  const n = (counts.get(name) ?? 0) + 1;
  counts.set(name, n);
  if (n === Number(nth ?? 1)) process.kill(process.pid, 'SIGKILL');
}
