/**
 * The source tree is cut into floors; a module may import only from its own floor or a lower one.
 * This keeps use cases (src/app) above the mechanisms they use, so that persistence never calls a
 * use case and the library's rooms stay where a reader expects them.
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from './helpers.js';

/** Lower number = lower floor. A folder may import from any folder with a rank ≤ its own. */
const FLOORS: Record<string, number> = {
  util: 0,
  storage: 1,
  state: 2,
  features: 3,
  data: 4,
  models: 5,
  fairness: 6,
  orchestration: 7,
  app: 8,
  bench: 9,
  demo: 9,
  cli: 10,
  '.': 11, // src/index.ts: the library surface
};

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

function floorOf(srcRoot: string, file: string): string {
  const rel = path.relative(srcRoot, file);
  const first = rel.split(path.sep)[0]!;
  return rel.includes(path.sep) ? first : '.';
}

test('no module imports from a higher floor (src/app is imported only by cli, bench, demo and the index)', async () => {
  const srcRoot = path.join(repoRoot, 'src');
  const violations: string[] = [];
  const unknown = new Set<string>();
  for (const file of await sources(srcRoot)) {
    const from = floorOf(srcRoot, file);
    if (!(from in FLOORS)) unknown.add(from);
    const text = await fsp.readFile(file, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = path.resolve(path.dirname(file), m[1]!);
      const to = floorOf(srcRoot, target);
      if (!(to in FLOORS)) unknown.add(to);
      if ((FLOORS[to] ?? 99) > (FLOORS[from] ?? -1)) violations.push(`${path.relative(repoRoot, file)} → ${m[1]} (${from} may not import ${to})`);
    }
  }
  assert.deepEqual([...unknown], [], 'every folder under src/ has a floor in this test');
  assert.deepEqual(violations, []);
});
