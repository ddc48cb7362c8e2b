/**
 * Typed errors. Every failure a user can cause is a SisaError with a stable code; the CLI prints its
 * message on one line and exits non-zero. Anything else is a bug and is printed with its stack.
 */
export type ErrorCode =
  | 'USAGE' // a flag or argument is wrong
  | 'INPUT' // an input file is unreadable, malformed or has invalid rows
  | 'STATE' // the workspace is missing, corrupt, or not in the state the command needs
  | 'NOT_FOUND' // ids asked for deletion are unknown (only fatal with --strict)
  | 'BACKEND' // the requested compute backend is not available
  | 'TRAIN' // a training job failed
  | 'INTERRUPTED'; // the user interrupted the command (Ctrl-C) before its commit

export class SisaError extends Error {
  readonly code: ErrorCode;
  /**
   * What the operation journal may keep of this failure, when the message itself names personal data
   * (ids a user asked to delete): the journal is append-only and outlives every deletion.
   */
  readonly journalNote?: string;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; journalNote?: string }) {
    super(message, options);
    this.name = 'SisaError';
    this.code = code;
    if (options?.journalNote !== undefined) this.journalNote = options.journalNote;
  }
}

export const usageError = (msg: string): SisaError => new SisaError('USAGE', msg);
export const inputError = (msg: string, cause?: unknown): SisaError => new SisaError('INPUT', msg, { cause });
export const stateError = (msg: string, cause?: unknown): SisaError => new SisaError('STATE', msg, { cause });

const SYSTEM_ERRORS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  EIO: 'input/output error',
  EMFILE: 'too many open files',
  // A workspace path taken by the wrong kind of entry (--workdir naming a file; a folder put where the
  // journal or the lock should be): the file system's to fix, not a bug.
  ENOTDIR: 'a file where a folder was expected',
  EISDIR: 'a folder where a file was expected',
};

/** An operating-system failure (full disk, permissions) is the environment's, not a bug: one line, exit 1. */
export function systemErrorMessage(err: unknown): string | null {
  const e = err as NodeJS.ErrnoException;
  if (!e || typeof e.code !== 'string' || !(e.code in SYSTEM_ERRORS)) return null;
  return `${SYSTEM_ERRORS[e.code]}${e.path ? ` (${e.path})` : ''}; nothing was committed, the workspace is as it was`;
}

/** Exit codes: 1 for a user-caused or environment failure, 2 for usage, 130 for Ctrl-C, 70 (EX_SOFTWARE) for bugs. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof SisaError) return err.code === 'USAGE' ? 2 : err.code === 'INTERRUPTED' ? 130 : 1;
  if (systemErrorMessage(err)) return 1;
  return 70;
}

/** The failure as the journal records it: never an id (see SisaError.journalNote). */
export function journalNoteOf(err: unknown): string {
  if (err instanceof SisaError && err.journalNote !== undefined) return err.journalNote;
  return errorMessage(err).slice(0, 500);
}

export function errorMessage(err: unknown): string {
  return systemErrorMessage(err) ?? (err instanceof Error ? err.message : String(err));
}
