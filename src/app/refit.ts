/**
 * The fairness refit after a committed train or deletion, with the fairness module (zod 4's API, the LP
 * solver, statistics) loaded only then: callers check first that there is something to refit.
 */
import { errorMessage } from '../util/errors.js';

/** refitAfterChange, loading its module first; the models are committed, so any failure is reported, not thrown. */
export async function refitLazily(workdir: string): Promise<{ refitted: boolean; error?: string }> {
  try {
    return await (await import('./fairnessFit.js')).refitAfterChange(workdir);
  } catch (err) {
    return { refitted: false, error: `fairness post-processing not refitted (${errorMessage(err)}); run 'sisa fairness fit'` };
  }
}
