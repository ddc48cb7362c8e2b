/**
 * The lease seam: one writer per workspace. `state/lock` implements it for a workspace folder (a lock
 * directory plus an owner file carrying a random token). Every commit point calls `assertHeld` first
 * (fencing), so a writer that lost its lease (killed and taken over, or stalled until it went stale)
 * cannot commit over the new holder's work.
 */
export interface Lease {
  /** Runs `fn` while holding the lease; refuses at once when another process holds it, unless `wait`. */
  hold<T>(wait: boolean, fn: () => Promise<T>): Promise<T>;
  /** Throws unless this process still holds the lease. */
  assertHeld(): Promise<void>;
  /** Whether this process still holds the lease. */
  isHeld(): Promise<boolean>;
}
