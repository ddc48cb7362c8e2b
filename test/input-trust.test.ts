/**
 * Input and audit promises off the happy path (issue 9 items 3, 6, 12, 13, 15, 16), through the real CLI:
 * row numbers are the file's, a label mistake is refused, re-ingest keeps the audit quiet, a full disk
 * is one line, receipts tell "already deleted" from "never existed".
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { readRowsFile, recordDigest } from '../src/data/shardFile.js';
import { cliJson, makeCorpus, nothingPending, readState, runCli, snapshot, tempDir } from './helpers.js';

/** Every (id, text) pair stored in a workspace: shard files and held-out files. */
async function storedRecords(workdir: string): Promise<Map<string, string>> {
  const state = await readState(workdir);
  const files = [...state.shards.map((s: { file: string }) => s.file), state.heldout.test.file, ...(state.heldout.calibration ? [state.heldout.calibration.file] : [])];
  const out = new Map<string, string>();
  for (const f of files) {
    const rows = await readRowsFile(path.join(workdir, 'shards', f));
    rows.ids.forEach((id, i) => out.set(id, rows.texts[i]!));
  }
  return out;
}

describe('CSV row numbers are the file’s data rows', () => {
  let dir: string;
  let file: string;
  let ws: string;
  const BAD_ROW = 9;

  before(async () => {
    dir = await tempDir();
    file = path.join(dir, 'noid.csv');
    // No id column: ids are data-row numbers. Each text names its own row. Row 3's text spans two
    // lines, so from there on line = row + 2. Row 9 has a stray extra field and does not parse.
    const lines = ['text,label'];
    for (let row = 1; row <= 60; row++) {
      const label = row % 2;
      const words = label ? 'you stupid idiot' : 'thanks for the help';
      if (row === 3) lines.push(`"text of row 3 ${words}\nsecond line of row 3",${label}`);
      else if (row === BAD_ROW) lines.push(`text of row ${row} ${words},${label},extra`);
      else lines.push(`text of row ${row} ${words},${label}`);
    }
    await fsp.writeFile(file, lines.join('\n') + '\n');
    ws = path.join(dir, 'ws');
  });

  it('without --skip-invalid the error names the data row and the file line of the malformed row', async () => {
    const r = await runCli(['ingest', file, '--workdir', path.join(dir, 'refused')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^sisa: error: .*noid\\.csv: 1 invalid row \\(row ${BAD_ROW} \\(line ${BAD_ROW + 2}\\): does not parse as CSV \\(Invalid Record Length: columns length is 2, got 3\\)\\); fix them or pass --skip-invalid\\n$`));
  });

  it('with --skip-invalid every stored id is its text’s data row, and the counts are right', async () => {
    const r = await cliJson(['ingest', file, '--workdir', ws, '--skip-invalid', '--shards', '2', '--slices', '2', '--quiet']);
    assert.equal(r.rows, 60);
    assert.equal(r.accepted, 59);
    assert.equal(r.skipped, 1);
    assert.deepEqual(r.invalid.map((x: { row: number; line: number }) => [x.row, x.line]), [[BAD_ROW, BAD_ROW + 2]]);
    const stored = await storedRecords(ws);
    assert.equal(stored.size, 59);
    for (const [id, text] of stored) assert.ok(text.startsWith(`text of row ${id} `), `id ${id} holds '${text}'`);
    assert.ok(!stored.has(String(BAD_ROW)));
  });

  it('delete --id N removes the record whose text is row N', async () => {
    await cliJson(['train', '--workdir', ws, '--quiet']);
    const before = await storedRecords(ws);
    const target = '5'; // before the malformed row: the rows that used to be shifted
    const r = await cliJson(['delete', '--id', target, '--workdir', ws, '--quiet']);
    assert.deepEqual(r.deleted, [target]);
    const after = await storedRecords(ws);
    assert.equal(after.size, before.size - 1);
    assert.ok(![...after.values()].some((t) => t.startsWith(`text of row ${target} `)), `row ${target}'s text is still stored`);
  });

  it('an unterminated quote names the row and the line where the quoted field starts', async () => {
    const f = path.join(dir, 'unterminated.csv');
    await fsp.writeFile(f, 'id,text,label\n1,fine,0\n2,"hello there,0\n3,more,1\n4,and more,0\n');
    const target = path.join(dir, 'unterminated');
    const r = await runCli(['ingest', f, '--workdir', target]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^sisa: error: .*unterminated\.csv: 1 invalid row \(row 2 \(line 3\): does not parse as CSV \(a quoted field that starts on this line is never closed\)\); fix them or pass --skip-invalid\n$/);
    assert.deepEqual(await snapshot(target), {});
  });

  it('an unterminated quote in the first row is not "no data rows"', async () => {
    const f = path.join(dir, 'unterminated1.csv');
    await fsp.writeFile(f, 'id,text,label\n1,"hello there,0\n');
    const r = await runCli(['ingest', f, '--workdir', path.join(dir, 'u1'), '--skip-invalid']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^sisa: error: .*unterminated1\.csv: no data rows that are valid \(1 invalid: row 1 \(line 2\): .*never closed\)\)\n$/);
  });

  it('a row with two stray quotes is one invalid row: "ingested 2 of 3 rows"', async () => {
    const f = path.join(dir, 'stray.csv');
    await fsp.writeFile(f, 'id,text,label\n1,he said "hi" there,0\n2,fine you idiot,1\n3,ok thanks,0\n');
    const refused = await runCli(['ingest', f, '--workdir', path.join(dir, 'stray-refused')]);
    assert.match(refused.stderr, /: 1 invalid row \(row 1 \(line 2\): does not parse as CSV \(Invalid Opening Quote: a quote is found on field "text"[^)]*\)\); fix them/);
    const r = await runCli(['ingest', f, '--workdir', path.join(dir, 'stray'), '--skip-invalid', '--shards', '1', '--slices', '1', '--test', '0.3']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ingested 2 of 3 rows \(1 invalid skipped\)$/m);
  });

  it('JSON Lines errors name the data row and the file line (blank lines are not rows)', async () => {
    const f = path.join(dir, 'gaps.jsonl');
    await fsp.writeFile(f, '{"text":"a","label":0}\n\n\n{"text":"b","label":1}\n{"text":"c",\n');
    const r = await runCli(['ingest', f, '--workdir', path.join(dir, 'gaps')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /1 invalid row \(row 3 \(line 5\): is not valid JSON/);
  });
});

describe('a label column that is not binary is refused', () => {
  let dir: string;
  let davidson: string;

  before(async () => {
    dir = await tempDir();
    // Shaped like Davidson et al.'s labeled_data.csv: an unnamed index column, vote counts, class
    // 0 = hate speech, 1 = offensive, 2 = neither.
    const lines = [',count,hate_speech,offensive_language,neither,class,tweet'];
    const texts = ['i hate all of those people', 'shut up you stupid idiot', 'lovely weather at the beach today'];
    for (let i = 0; i < 90; i++) lines.push(`${i},3,0,0,3,${i % 3},${texts[i % 3]} ${i}`);
    davidson = path.join(dir, 'labeled_data.csv');
    await fsp.writeFile(davidson, lines.join('\n') + '\n');
  });

  for (const skip of [false, true]) {
    it(`class 0/1/2 without --positive-values${skip ? ', even with --skip-invalid,' : ''} lists the values and names the flags`, async () => {
      const ws = path.join(dir, `dv-${skip}`);
      const r = await runCli(['ingest', davidson, '--workdir', ws, '--label-col', 'class', ...(skip ? ['--skip-invalid'] : [])]);
      assert.equal(r.code, 1, r.stdout);
      assert.equal(r.stdout, '');
      assert.match(
        r.stderr,
        /^sisa: error: .*labeled_data\.csv: label column 'class' is not binary \(values: '0' ×30, '1' ×30, '2' ×30\); name the values that mean toxic with --positive-values \(.*\) or pass --label-threshold T .*; --skip-invalid does not apply[^\n]*\n$/,
      );
      assert.deepEqual(await snapshot(ws), {});
      assert.ok(await nothingPending(ws));
    });
  }

  it('the fix the message names works: --positive-values 0,1', async () => {
    const r = await cliJson(['ingest', davidson, '--workdir', path.join(dir, 'dv-ok'), '--label-col', 'class', '--positive-values', '0,1', '--shards', '2', '--slices', '1', '--quiet']);
    assert.equal(r.accepted, 90);
    assert.equal(r.skipped, 0);
  });

  it('three spellings of two classes are refused too; words are not offered a threshold', async () => {
    const f = path.join(dir, 'mixed.csv');
    await fsp.writeFile(f, 'text,label\nyou idiot,yes\nhello,no\nthanks,no\nmoron,1\n');
    const r = await runCli(['ingest', f, '--workdir', path.join(dir, 'mixed'), '--skip-invalid']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /label column 'label' is not binary \(values: '1' ×1, 'no' ×2, 'yes' ×1\); name the values that mean toxic with --positive-values \([^)]*\); --skip-invalid/);
  });

  it('a missing label stays a per-row problem that --skip-invalid skips', async () => {
    const f = path.join(dir, 'missing.csv');
    await fsp.writeFile(f, 'text,label\nyou idiot,1\nhello,0\nthanks,\nmoron,1\nnice day,0\n');
    const r = await cliJson(['ingest', f, '--workdir', path.join(dir, 'missing'), '--skip-invalid', '--shards', '1', '--slices', '1', '--quiet']);
    assert.equal(r.accepted, 4);
    assert.deepEqual(r.invalid, [{ row: 3, line: 4, reason: 'missing label' }]);
  });
});

describe('re-ingest after deletions keeps the audit quiet', () => {
  it('ingest --force → train: model versions stay above every receipt, so verify passes as verify --deep does', async () => {
    const dir = await tempDir();
    const corpus = await makeCorpus(dir, { rows: 600 });
    const ws = path.join(dir, 'ws');
    const small = ['--shards', '2', '--slices', '2', '--quiet'];
    await cliJson(['ingest', corpus, '--workdir', ws, ...small]);
    await cliJson(['train', '--workdir', ws, '--quiet']);
    const state = await readState(ws);
    const ids = (await readRowsFile(path.join(ws, 'shards', state.shards[0].file))).ids;
    // Two deletions in shard 0: its model goes to v3, and receipt 2 names v3.
    for (const id of ids.slice(0, 2)) await cliJson(['delete', '--id', id, '--workdir', ws, '--quiet']);
    assert.equal((await readState(ws)).models[0].version, 3);

    await cliJson(['ingest', corpus, '--workdir', ws, '--force', ...small]);
    await cliJson(['train', '--workdir', ws, '--quiet']);
    const v = await runCli(['verify', '--workdir', ws]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const after = await readState(ws);
    for (const m of after.models) assert.ok(m.version > 3, `shard ${m.shard}: v${m.version} after re-ingest is not above the receipts' v3`);
    const deep = await runCli(['verify', '--deep', '--workdir', ws]);
    assert.equal(deep.code, 0, deep.stdout + deep.stderr);

    // The numbering goes on: the next deletion is receipt 3 and its model version is above the last.
    const d = await cliJson(['delete', '--id', ids[2]!, '--workdir', ws, '--quiet']);
    assert.equal(d.logEntry, 3);
    const v2 = await runCli(['verify', '--workdir', ws]);
    assert.equal(v2.code, 0, v2.stdout + v2.stderr);
  });
});

describe('delete tells "already deleted" from "never existed"', () => {
  it('human output and --json name the receipt of an id deleted before, raw or hashed', async () => {
    const dir = await tempDir();
    const corpus = await makeCorpus(dir, { rows: 400 });
    const ws = path.join(dir, 'ws');
    await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '2', '--quiet']);
    await cliJson(['train', '--workdir', ws, '--quiet']);
    const state = await readState(ws);
    const [a, b] = (await readRowsFile(path.join(ws, 'shards', state.shards[1].file))).ids;
    assert.equal((await cliJson(['delete', '--id', a!, '--workdir', ws, '--quiet'])).logEntry, 1);
    assert.equal((await cliJson(['delete', '--id', b!, '--hash-ids', '--workdir', ws, '--quiet'])).logEntry, 2);

    const j = await cliJson(['delete', '--id', a!, '--id', b!, '--id', 'never-was', '--workdir', ws, '--quiet']);
    assert.deepEqual(j.deleted, []);
    assert.deepEqual(j.alreadyDeleted, [
      { id: a, receipt: 1 },
      { id: b, receipt: 2 },
    ]);
    assert.deepEqual(j.notFound, ['never-was']);
    assert.equal(j.logEntry, null);

    const r = await runCli(['delete', '--id', a!, '--id', 'never-was', '--workdir', ws]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^deleted 0 of 2 requested record\(s\)/);
    assert.match(r.stderr, new RegExp(`^already deleted: 1 id\\(s\\): ${a} \\(receipt 1\\)$`, 'm'));
    assert.match(r.stderr, /^not found: 1 id\(s\), in neither the data set nor any receipt: never-was$/m);
  });
});

describe('slice content hashes', () => {
  type Rec = { id: string; label: 0 | 1; text: string };
  const stream = (records: readonly Rec[]) => records.map((r) => recordDigest(r.id, r.label, r.text)).join('');
  // Characters an encoding might use as separators, and digits (a length prefix is made of them).
  const tricky = fc.constantFrom('\u0000', '\u0001', '\n', ',', ':', ';', '|', '\t', '0', '1', '9', 'a', 'é', '😀');
  const str = fc.string({ unit: tricky, maxLength: 6 });
  const rec: fc.Arbitrary<Rec> = fc.record({ id: fc.string({ unit: tricky, minLength: 1, maxLength: 4 }), label: fc.constantFrom(0 as const, 1 as const), text: str });
  const glue = fc.constantFrom('', '\u0000', '\u0001', '\n', ',', ':', ';', '|', '\t');

  it('fusing two neighbouring records into one, whatever glue joins their fields, never gives the same bytes', () => {
    fc.assert(
      fc.property(fc.array(rec, { minLength: 2, maxLength: 5 }), fc.nat(), glue, glue, glue, (records, at, x, y, z) => {
        const i = at % (records.length - 1);
        const a = records[i]!;
        const b = records[i + 1]!;
        const fused = [...records.slice(0, i), { id: a.id, label: a.label, text: `${a.text}${x}${b.id}${y}${b.label}${z}${b.text}` }, ...records.slice(i + 2)];
        return stream(fused) !== stream(records);
      }),
      // The collision the old separator encoding had: "\u0001" ends a record, "\u0000" separates fields.
      { numRuns: 2000, examples: [[[{ id: 'a', label: 0, text: 'x' }, { id: 'b', label: 1, text: 'y' }], 0, '\u0001', '\u0000', '\u0000']] },
    );
  });
});

/** Mounting a tmpfs (a small disk that fills for real: the kernel's own ENOSPC) needs root. */
const canMount = process.getuid?.() === 0;

/** Runs `use` with a folder on a tmpfs of `size` (e.g. '200k') inside `dir`, unmounted afterwards. */
async function onSmallDisk(dir: string, size: string, use: (mnt: string) => Promise<void>): Promise<void> {
  const mnt = path.join(dir, 'small-disk');
  await fsp.mkdir(mnt);
  const { spawnSync } = await import('node:child_process');
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt]);
  assert.equal(mount.status, 0, String(mount.stderr));
  try {
    await use(mnt);
  } finally {
    spawnSync('umount', [mnt]);
  }
}

describe('a full disk during ingest', () => {
  // A real ENOSPC from the kernel: a 200 KiB tmpfs holds the workspace.
  for (const c of [
    { name: 'while the files are finished', rows: 3000, flags: [] as string[] },
    { name: 'mid-stream, while rows are still read', rows: 50000, flags: ['--shards', '1', '--slices', '1'] },
  ]) {
    it(`${c.name}: one line, exit 1, journal aborted, no temp files`, { skip: canMount ? false : 'needs root to mount a tmpfs' }, async () => {
      const dir = await tempDir();
      const corpus = await makeCorpus(dir, { rows: c.rows });
      await onSmallDisk(dir, '200k', async (mnt) => {
        const ws = path.join(mnt, 'ws');
        const r = await runCli(['ingest', corpus, '--workdir', ws, ...c.flags]);
        assert.equal(r.code, 1, r.stderr);
        assert.equal(r.stdout, '');
        assert.match(r.stderr, /^sisa: error: no space left on device \(.*\.tmp\); nothing was committed, the workspace is as it was\n$/);
        assert.ok(await nothingPending(ws), 'the journal entry was closed');
        const journal = (await fsp.readFile(path.join(ws, 'manifests', 'journal.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
        assert.equal(journal.at(-1).phase, 'abort');
        assert.deepEqual(await snapshot(ws), {}, 'no state, no shard file, no temp file');
      });
    });
  }
});

describe('a full disk during train', () => {
  // A real ENOSPC from the kernel, in a training worker thread: a 160 KiB tmpfs holds the ingested
  // workspace (about 90 KB) but not its checkpoints.
  it('one line that names the cause as ingest does, exit 1, nothing committed, no checkpoint or temp file left', { skip: canMount ? false : 'needs root to mount a tmpfs' }, async () => {
    const dir = await tempDir();
    const corpus = await makeCorpus(dir, { rows: 600 });
    await onSmallDisk(dir, '160k', async (mnt) => {
      const ws = path.join(mnt, 'ws');
      await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '2', '--quiet']);
      const before = await snapshot(ws);
      const r = await runCli(['train', '--workdir', ws, '--quiet']);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      // The worker's OS error code crosses the thread: the same words as in-process failures, not "ENOSPC: …".
      assert.match(r.stderr, /^sisa: error: shard \d: no space left on device( \(.*\))?; nothing was committed, the workspace is as it was\n$/);
      assert.ok(await nothingPending(ws), 'the journal entry was closed');
      assert.deepEqual(await snapshot(ws), before, 'the state and shard files as they were, no checkpoint, no temp file');
    });
  });
});

describe('a workspace re-ingested before versions carried over', () => {
  it('its next train numbers models above the receipts, and verify passes again', async () => {
    const dir = await tempDir();
    const corpus = await makeCorpus(dir, { rows: 600 });
    const ws = path.join(dir, 'ws');
    const small = ['--shards', '2', '--slices', '2', '--quiet'];
    await cliJson(['ingest', corpus, '--workdir', ws, ...small]);
    await cliJson(['train', '--workdir', ws, '--quiet']);
    const ids = (await readRowsFile(path.join(ws, 'shards', (await readState(ws)).shards[0].file))).ids;
    for (const id of ids.slice(0, 2)) await cliJson(['delete', '--id', id, '--workdir', ws, '--quiet']);
    await cliJson(['ingest', corpus, '--workdir', ws, '--force', ...small]);
    // What an older sisa left: the re-ingested state without the retired version.
    const statePath = path.join(ws, 'manifests', 'state.json');
    const state = await readState(ws);
    delete state.retiredModelVersion;
    await fsp.writeFile(statePath, JSON.stringify(state, null, 2) + '\n');
    await cliJson(['train', '--workdir', ws, '--quiet']);
    const v = await runCli(['verify', '--workdir', ws]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.ok((await readState(ws)).models[0].version > 3);
  });
});
