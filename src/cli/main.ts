/**
 * The `sisa` command line. Commands are thin: they parse flags, call the library, and print.
 * Each command lives in its own file under commands/, loaded only when it runs; library modules are
 * imported inside each handler, so that a command loads only what it uses (start-up time is part of
 * every deletion's latency).
 * Every failure a user can cause ends as one line on stderr and a non-zero exit code.
 */
import type { Argv } from 'yargs';
import { readFileSync, statSync } from 'node:fs';
import { printable } from '../util/format.js';
import { yargs } from './yargs.js';
import { suggestName } from '../util/suggest.js';
import { errorMessage, exitCodeFor, usageError } from '../util/errors.js';
import { COMMAND_TEXT, type CommandName } from './commands/text.js';

/** Each command's module, loaded only when its name is on the command line (start-up time is part of every deletion's latency). */
const COMMANDS: Record<CommandName, () => Promise<(y: Argv) => Argv>> = {
  ingest: async () => (await import('./commands/ingest.js')).ingestCommand,
  train: async () => (await import('./commands/train.js')).trainCommand,
  predict: async () => (await import('./commands/predict.js')).predictCommand,
  evaluate: async () => (await import('./commands/evaluate.js')).evaluateCommand,
  delete: async () => (await import('./commands/delete.js')).deleteCommand,
  fairness: async () => (await import('./commands/fairness.js')).fairnessCommand,
  report: async () => (await import('./commands/report.js')).reportCommand,
  serve: async () => (await import('./commands/serve.js')).serveCommand,
  worker: async () => (await import('./commands/worker.js')).workerCommand,
  recover: async () => (await import('./commands/recover.js')).recoverCommand,
  verify: async () => (await import('./commands/verify.js')).verifyCommand,
  bench: async () => (await import('./commands/bench.js')).benchCommand,
  status: async () => (await import('./commands/status.js')).statusCommand,
  demo: async () => (await import('./commands/demo.js')).demoCommand,
};

/**
 * Registers every command: in full (flags, handler) each one whose name is a word of the command line,
 * and by its usage line and description only the others, which is all that the command list, 'did you
 * mean' and strict parsing need of a command that does not run. A word that only looks like a command
 * (a flag's value) just loads one module more.
 */
async function registerCommands(y: Argv, argv: string[]): Promise<Argv> {
  for (const name of Object.keys(COMMANDS) as CommandName[]) {
    if (argv.includes(name)) y = (await COMMANDS[name]())(y);
    else y = y.command(COMMAND_TEXT[name].command, COMMAND_TEXT[name].describe);
  }
  return y;
}

export async function buildCli(argv: string[]) {
  const y = await registerCommands(
    yargs(argv)
      .scriptName('sisa')
      .usage('$0 <command> [options]\n\nSISA sharded-ensemble toxicity classifier with exact unlearning and FairSISA fairness.'),
    argv,
  );
  const cli: Argv = y
    .example('$0 ingest data.csv --workdir dv && $0 train --workdir dv', 'Shard a labelled file and train the ensemble')
    .example('$0 delete --id 1234 --workdir dv', 'Forget a record exactly, retraining one shard')
    .middleware(refuseUnparsedNumbers(argv))
    .middleware(refuseFileAsWorkdir)
    .demandCommand(1, 'name a command; see sisa --help')
    .strict()
    .recommendCommands()
    .help()
    .version(packageVersion())
    .wrap(helpWidth())
    // At failure time `cli` holds the options of the command being parsed (yargs resets it per command).
    .fail((msg, err) => {
      throw err ?? usageError(explainUsage(msg, argv, cli));
    });
  return cli;
}

/**
 * sisa's own version, from its package.json. (yargs looks for a package.json from the current folder
 * up, so `sisa --version` printed 'unknown', or another project's version, outside sisa's folder.)
 */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * yargs reads a number flag's value that is not a number as NaN (and 'Infinity' as Infinity) and passes
 * it on, where it surfaced later as another problem ('--label-threshold abc' as "single class (0
 * positive)"). No flag means a value that is not a finite number: refused here, naming the flag and what
 * was typed.
 */
function refuseUnparsedNumbers(argv: string[]) {
  return (parsed: Record<string, unknown>): void => {
    for (const [key, value] of Object.entries(parsed)) {
      if (typeof value !== 'number' || Number.isFinite(value) || /[A-Z]/.test(key)) continue;
      const at = argv.findIndex((a) => a === `--${key}` || a.startsWith(`--${key}=`));
      const typed = at < 0 ? '' : argv[at]!.includes('=') ? argv[at]!.slice(argv[at]!.indexOf('=') + 1) : (argv[at + 1] ?? '');
      throw usageError(`--${key} must be a ${Number.isNaN(value) ? '' : 'finite '}number, got '${printable(typed)}'`);
    }
  };
}

/** --workdir naming a file: said at the door, not as the manifest's read error deep inside. */
function refuseFileAsWorkdir(parsed: Record<string, unknown>): void {
  const dir = parsed.workdir;
  if (typeof dir !== 'string') return;
  let isFile = false;
  try {
    isFile = statSync(dir, { throwIfNoEntry: false })?.isDirectory() === false;
  } catch {
    // A path that cannot be looked at (a symlink loop, a name too long) is the command's to report.
  }
  if (isFile) throw usageError(`--workdir ${printable(dir, 200)} is a file, not a folder`);
}

/** Help wraps at the terminal's width; into a pipe or a file it is not wrapped at all (one line per flag). */
function helpWidth(): number | null {
  return process.stdout.isTTY && process.stdout.columns > 0 ? process.stdout.columns : null;
}

/** What a command needs when its positional argument is missing: yargs's own words do not name it. */
const MISSING_POSITIONAL: Record<string, string> = {
  ingest: 'name the labelled data file: sisa ingest FILE',
  predict: "name the file to score: sisa predict FILE (CSV, JSON Lines, Parquet or Arrow)",
  fairness: "name an action: 'sisa fairness fit' (fit the post-processors) or 'sisa fairness show' (print the fitted ones)",
};

/** Turns yargs's validation messages into ones that point at the fix. */
function explainUsage(msg: string, argv: string[], cli: Argv): string {
  const command = argv.find((a) => !a.startsWith('-'));
  if (/^Not enough non-option arguments/.test(msg) && command && MISSING_POSITIONAL[command]) return MISSING_POSITIONAL[command];
  const didYouMean = /^Did you mean (\S+)\?$/.exec(msg);
  if (didYouMean && command) return `unknown command '${command}' (did you mean ${didYouMean[1]}?); see sisa --help`;
  const unknown = /^Unknown arguments?: (.+)$/.exec(msg);
  if (unknown) {
    // yargs reports a dashed flag twice, also in camelCase (--queue-nam and queueNam): keep the one typed.
    const names = unknown[1]!.split(', ');
    const typed = names.filter((n) => !(/[A-Z]/.test(n) && names.includes(n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`))));
    const isFlag = (n: string) => argv.some((a) => a.replace(/=.*$/, '').replace(/^-+(no-)?/, '') === n && a.startsWith('-'));
    const flags = typed.filter(isFlag);
    const words = typed.filter((n) => !isFlag(n));
    if (words.length && command && words[0] === command) return `unknown command '${command}'; see sisa --help`;
    const known = knownFlags(cli);
    const parts = [
      ...flags.map((name) => {
        const asTyped = argv.includes(`--no-${name}`) && !argv.includes(`--${name}`) ? `no-${name}` : name;
        const hint = suggestName(asTyped, known);
        return `--${asTyped}${hint ? ` (did you mean --${hint}?)` : ''}`;
      }),
      ...words.map((w) => `'${w}'`),
    ];
    const what = flags.length && words.length ? 'arguments' : flags.length ? (parts.length > 1 ? 'options' : 'option') : parts.length > 1 ? 'arguments' : 'argument';
    return `unknown ${what} ${parts.join(', ')}; see sisa${command ? ` ${command}` : ''} --help`;
  }
  return msg;
}

function knownFlags(y: Argv): string[] {
  const opts = (y as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions();
  return Object.keys(opts.key).filter((k) => k.length > 1 && !/[A-Z]/.test(k));
}

/** The commands that change the workspace: Ctrl-C makes them stop before their commit and roll back. */
const WRITERS = new Set(['ingest', 'train', 'delete', 'fairness']);

/**
 * First Ctrl-C during a writer: stop at the next check before the commit, roll back (or keep an accepted
 * deletion request pending) and say so on one line; a commit already under way finishes. A second
 * Ctrl-C kills the process at once, which leaves an interrupted operation for `sisa recover`.
 */
function handleCtrlC(argv: string[]): void {
  if (!WRITERS.has(argv.find((a) => !a.startsWith('-')) ?? '')) return;
  let pressed = 0;
  process.on('SIGINT', () => {
    pressed += 1;
    if (pressed > 1) process.exit(130);
    // Imported here, not at start-up: a command that never takes the lock (delete --server) need not
    // load the lock's modules; one that took it gets the module instance that holds its lease.
    void import('../state/lock.js').then(({ interruptOperations }) => {
      if (!interruptOperations()) process.exit(130);
      if (process.stderr.isTTY) process.stderr.write("\nsisa: stopping before the commit (Ctrl-C again to kill now, then run 'sisa recover')\n");
    });
  });
}

/**
 * A reader that stops early (`sisa predict … | head`) closes the pipe: that is the reader's choice, not a
 * failure of the command. The rest of the output is dropped and the command finishes as it would have
 * (a deletion still commits), instead of dying on an unhandled EPIPE with a stack trace.
 */
function tolerateClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

export async function main(argv: string[]): Promise<number> {
  handleCtrlC(argv);
  tolerateClosedStdout();
  try {
    await (await buildCli(argv)).parseAsync();
    return 0;
  } catch (err) {
    const code = exitCodeFor(err);
    if (code === 70) process.stderr.write(`sisa: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    else process.stderr.write(`sisa: error: ${errorMessage(err).replace(/\s*\n\s*/g, ' ')}\n`);
    return code;
  }
}
