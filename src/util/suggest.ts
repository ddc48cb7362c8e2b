/** "Did you mean": the known name a mistyped one most likely meant (flags on the CLI, option keys in the library). */

/**
 * A name the typed one is a prefix of (--shard, --ids), or the one name it extends (labelColumn), else the closest within two edits (--epoch,
 * --sahrds). Nothing when the choice would be a guess between several.
 */
export function suggestName(typed: string, known: readonly string[]): string | undefined {
  const prefixed = known.filter((k) => k.startsWith(typed));
  if (prefixed.length === 1) return prefixed[0];
  // The other way round: a known name with something added (labelColumn for labelCol).
  const extended = known.filter((k) => typed.startsWith(k));
  if (extended.length === 1) return extended[0];
  let best: string | undefined;
  let bestDistance = 3;
  let tie = false;
  for (const k of known) {
    const d = editDistance(typed.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) [best, bestDistance, tie] = [k, d, false];
    else if (d === bestDistance) tie = true;
  }
  return tie ? undefined : best;
}

/** Edits between two words, a swap of two neighbouring letters counting as one (a common typo). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}
