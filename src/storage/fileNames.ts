/**
 * How a workspace names its data files: the file's role (shard-007, test, calibration), then the first
 * 12 hex digits of its content hash. The writer names files so, the manifest refuses an entry named
 * otherwise, and a blob store finds a file by the hash in its name. No imports: the manifest's schema
 * loads this with every command.
 */
export function shardRole(shard: number): string {
  return `shard-${String(shard).padStart(3, '0')}`;
}

/** The ending every data file named for this content hash has. */
export function hashSuffix(sha256: string): string {
  return `-${sha256.slice(0, 12)}.arrow`;
}

export function dataFileName(role: string, sha256: string): string {
  return `${role}${hashSuffix(sha256)}`;
}
