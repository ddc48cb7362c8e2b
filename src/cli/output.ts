/** How the CLI talks: one JSON document on stdout with --json, human text otherwise; progress on stderr. */
import { createRequire } from 'node:module';
import { groupThousands } from '../util/format.js';

type CliProgress = typeof import('cli-progress');

export interface OutputFlags {
  json?: boolean;
  quiet?: boolean;
}

export function emit(flags: OutputFlags, json: unknown, human: () => string): void {
  if (flags.json) process.stdout.write(JSON.stringify(json, null, 2) + '\n');
  else process.stdout.write(human() + '\n');
}

/** Notes for a person (chosen backend, warnings): stderr, so stdout stays machine-readable. */
export function note(flags: OutputFlags, msg: string): void {
  if (!flags.quiet) process.stderr.write(msg + '\n');
}

export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

/**
 * A progress bar on a terminal; nothing when stdout is not a TTY or with --quiet. With `counter`, the
 * total is unknown (a streamed file) and only the count is shown.
 */
export function progress(flags: OutputFlags, label: string, unit: string, counter = false): Progress {
  if (flags.quiet || !process.stdout.isTTY || !process.stderr.isTTY) return { update() {}, stop() {} };
  // Loaded only for a terminal: a command run from a script or a pipe does not pay for it at start-up.
  const cliProgress = createRequire(import.meta.url)('cli-progress') as CliProgress;
  const bar = new cliProgress.SingleBar(
    { format: counter ? `${label}: {value} ${unit}` : `${label} [{bar}] {value}/{total} ${unit}`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.setTotal(total);
      bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

export const fmt = {
  pct: (x: number) => `${(x * 100).toFixed(1)}%`,
  num: (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a'),
  int: (x: number) => groupThousands(Math.round(x)),
  secs: (x: number) => `${x.toFixed(2)} s`,
  /** Decimal units, as disk sizes are sold and as `du --si` prints them. */
  bytes: (x: number) => {
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (x >= 1000 && i < units.length - 1) [x, i] = [x / 1000, i + 1];
    return i === 0 ? `${x} B` : `${x.toFixed(x < 10 ? 2 : 1)} ${units[i]}`;
  },
};

/** Renders rows as an aligned text table. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  return cells.map((r) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ')).join('\n');
}
