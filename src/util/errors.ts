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
  | 'TRAIN'; // a training job failed

export class SisaError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SisaError';
    this.code = code;
  }
}

export const usageError = (msg: string): SisaError => new SisaError('USAGE', msg);
export const inputError = (msg: string, cause?: unknown): SisaError => new SisaError('INPUT', msg, { cause });
export const stateError = (msg: string, cause?: unknown): SisaError => new SisaError('STATE', msg, { cause });

/** Exit codes: 1 for a user-caused failure, 2 for usage, 70 (EX_SOFTWARE) for bugs. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof SisaError) return err.code === 'USAGE' ? 2 : 1;
  return 70;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
