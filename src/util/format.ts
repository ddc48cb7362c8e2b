/** Number formatting for output lines. */

/**
 * An integer with commas between groups of three digits, as toLocaleString('en-US') writes it, without
 * loading ICU's locale data (15 ms on the first call, at the end of every `sisa train`).
 */
export function groupThousands(n: number): string {
  if (!Number.isInteger(n) || Math.abs(n) >= 1e21) return n.toLocaleString('en-US'); // not what fmt.int passes
  const digits = String(Math.abs(n)); // the shortest digits that round-trip, as Intl writes them (toFixed writes the exact binary value's)
  let out = digits.slice(0, ((digits.length - 1) % 3) + 1);
  for (let i = out.length; i < digits.length; i += 3) out += ',' + digits.slice(i, i + 3);
  return (n < 0 || Object.is(n, -0) ? '-' : '') + out;
}

/**
 * A value from the input (a record id) as a message shows it: control characters escaped (\u001b, not the
 * terminal escape it starts; a line break would split a one-line error; a bidirectional override would
 * reorder the rest of the line; a backslash doubled) and cut at `max` code units, never inside a surrogate pair. For messages
 * only: receipts and JSON output keep the value as it was given.
 */
export function printable(s: string, max = 60): string {
  const end = max > 0 && s.length > max && /[\ud800-\udbff]/.test(s[max - 1]!) ? max - 1 : max;
  const cut = s.length > max ? `${s.slice(0, end)}…` : s;
  // A backslash is doubled, so that what is shown reads back one way ('\\u0041' typed is not 'A').
  return cut.replace(/[\\\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => (c === '\\' ? '\\\\' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}
