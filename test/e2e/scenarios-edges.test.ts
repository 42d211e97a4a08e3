// Issue 4 end-to-end scenarios beyond the list: places where a
// replay could plausibly differ from a real run (a shared stdin offset, a big
// replay into a pipe another tracee reads, directory renames onto existing
// directories, hard links, odd names and mode bits, binary streams, symlinked
// inputs, an edited script). Each run is compared with a plain run from the
// same state (see harness.ts).

import * as fs from 'fs';
import * as path from 'path';
import { expectIndistinguishable, expectSummary, runCached, runScenario, textOf, writeTree } from './harness';

/** Sets a path's mtime (and atime) to whole seconds since the epoch. */
function setMtime(file: string, seconds: number): void {
  fs.utimesSync(file, seconds, seconds);
}

const sh = (...lines: string[]): string => ['#!/bin/sh', 'set -e', ...lines, ''].join('\n');

describe('replay into shared state', () => {
  test('a replayed step leaves a shared stdin file offset where a real run would', async () => {
    // p.sh reads one line of the shared file; the outer cat prints the rest.
    // The outer shell re-runs (extra.txt changed) while p.sh is replayed: the
    // cat after it must still start at the second line.
    const r = await runScenario({
      files: {
        'p.sh': sh('read first', 'echo "p.sh read: $first" > first.txt'),
        'input.txt': 'line one\nline two\nline three\n',
        'extra.txt': 'extra 1\n',
      },
      first: { cmd: ['/bin/sh', '-c', '{ ./p.sh; cat; } < input.txt > rest.txt; cat extra.txt'] },
      change: (w) => fs.writeFileSync(path.join(w, 'extra.txt'), 'extra 2\n'),
    });
    expectIndistinguishable(r.first);
    expect(textOf(r.first.plain.tree, 'rest.txt')).toBe('line two\nline three\n');
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'rest.txt')).toBe('line two\nline three\n');
  });

  test('a large replayed stdout into a pipe whose reader is another traced step', async () => {
    // cat's 2 MB go through a pipe to wc; on the re-run p.sh misses (other.txt
    // changed), cat is replayed and wc really runs, reading the replayed bytes
    const big = 'abcdefghijklmnopqrstuvwxyz0123456789\n'.repeat(2_000_000 / 37 + 1);
    const r = await runScenario({
      files: {
        'p.sh': sh('cat big.txt | wc -c > count.txt', 'sort other.txt > other.sorted'),
        'big.txt': big,
        'other.txt': 'b\na\n',
      },
      change: (w) => fs.writeFileSync(path.join(w, 'other.txt'), 'd\nc\n'),
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'count.txt')).toBe(`${Buffer.byteLength(big)}\n`);
    // p.sh, wc (reads a pipe) and sort ran; cat was replayed
    expectSummary(r.rerun.cached, { total: 4, ran: 3, skipped: 1 });
  });

  test('a step replayed into a pipe whose reader leaves early dies of SIGPIPE like a real run (pipefail sees 141)', async () => {
    // The entry comes from `seq | cat`; the re-run pipes seq into `head -1`, which exits after
    // one line: a real seq is killed by SIGPIPE at its next write, and so must the replay be.
    const r = await runScenario({
      files: { 'p.sh': ['#!/bin/bash', 'set -o pipefail', 'seq 1 200000 | "$@" > /dev/null', 'echo "status ${PIPESTATUS[*]}"', ''].join('\n') },
      first: { cmd: ['./p.sh', 'cat'] },
      rerun: { cmd: ['./p.sh', 'head', '-1'] },
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(r.rerun.plain.stdout.toString()).toBe('status 141 0\n');
  });

  test('a large stdout replayed into an outside pipe', async () => {
    const big = 'x'.repeat(1 << 20) + '\n';
    const r = await runScenario({ files: { 'p.sh': sh('cat big.txt', 'echo end >&2'), 'big.txt': big }, first: { stdio: 'pipe' } });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(r.rerun.cached.stdout.length).toBe(big.length);
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
  });

  test('bytes written to the outside stdout through a duplicate on fd 3 are replayed too', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('exec 3>&1', `sh -c 'echo "via fd 3" >&3'`, 'echo direct') },
    });
    expectIndistinguishable(r.first);
    expect(r.first.plain.stdout.toString()).toBe('via fd 3\ndirect\n');
    expectIndistinguishable(r.rerun);
  });

  test('binary bytes on stdout and stderr are replayed exactly', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const r = await runScenario({ files: { 'p.sh': sh('cat bytes.bin', 'cat bytes.bin >&2'), 'bytes.bin': all } });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(r.rerun.cached.stdout.equals(all)).toBe(true);
    expect(r.rerun.cached.stderr.equals(all)).toBe(true);
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
  });

  // A replay writes the captured bytes in order; a step that moved its stdout offset (lseek,
  // or pwrite, which writes without moving it) left a file that order does not give. Read
  // back (`> out`), the stdout is the file region it ended with, which a replay in order does
  // give when the offset ended at its end; captured write by write (`> out 2>&1`: a file on
  // two of its fds is not read back), a pwrite is a byte out of order.
  test.each([
    ['lseek', '> out', "os.write(1, b'hello world\\n'); os.lseek(1, 0, 0); os.write(1, b'J')", 'Jello world\n', false],
    ['pwrite inside its read-back region', '> out', "os.write(1, b'hello world\\n'); os.pwrite(1, b'J', 0)", 'Jello world\n', true],
    ['pwrite, captured write by write', '> out 2>&1', "os.write(1, b'hello world\\n'); os.pwrite(1, b'J', 0)", 'Jello world\n', false],
    ['an lseek back to where it was', '> out', "os.write(1, b'one\\n'); os.lseek(1, 0, 0); os.lseek(1, 4, 0); os.write(1, b'two\\n')", 'one\ntwo\n', true],
  ])('a step that writes its stdout file out of order (%s) is replayed only where a replay gives that file', async (_how, redirect, code, content, replayed) => {
    const r = await runScenario({
      files: { 'p.sh': sh(`/usr/bin/python3 -c "import os; ${code}" ${redirect}`, 'cat out'), 'version.txt': '1\n' },
      change: (dir) => fs.appendFileSync(path.join(dir, 'p.sh'), 'cat version.txt\n'),
    });
    expectIndistinguishable(r.first);
    expect(textOf(r.first.plain.tree, 'out')).toBe(content);
    // p.sh changed and re-runs, and so does `cat version.txt`; `cat out` is replayed. python
    // re-runs (uncacheable) unless its replay gives the same file.
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 4, ran: replayed ? 2 : 3, skipped: replayed ? 2 : 1 });
  });

  test('an exec chain that writes its stdout file out of order: no execution of the chain is replayed', async () => {
    // `sh -c 'exec python3 ...'` is two executions in one process, both with stdout `out`:
    // the outer one (same exit) must not be replayed in order either.
    const r = await runScenario({
      files: {
        'p.sh': sh("sh -c 'exec /usr/bin/python3 seek.py' > out", 'cat out'),
        'seek.py': "import os\nos.write(1, b'hello world\\n')\nos.lseek(1, 0, 0)\nos.write(1, b'J')\n",
        'version.txt': '1\n',
      },
      change: (dir) => fs.appendFileSync(path.join(dir, 'p.sh'), 'cat version.txt\n'),
    });
    expectIndistinguishable(r.first);
    expect(textOf(r.first.plain.tree, 'out')).toBe('Jello world\n');
    expectIndistinguishable(r.rerun);
    // p.sh, sh -c, python and `cat version.txt` run; `cat out` is replayed
    expectSummary(r.rerun.cached, { total: 5, ran: 4, skipped: 1 });
  });
});

describe('paths that name a descriptor (/dev/stdout, /dev/stdin)', () => {
  test('a step that writes through /dev/stdout into a file named by the caller is not replayed into the old file', async () => {
    // python's command line is the same both times; only the file behind its fd 1 differs.
    const r = await runScenario({
      files: { 'p.sh': sh(`/usr/bin/python3 -c "open('/dev/stdout', 'w').write('through the link\\n')" > "$1"`) },
      first: { cmd: ['./p.sh', 'a.txt'] },
      rerun: { cmd: ['./p.sh', 'b.txt'] },
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'b.txt')).toBe('through the link\n');
    expectSummary(r.rerun.cached, { total: 2, ran: 2, skipped: 0 });
  });

  test.each([
    ['reads', `/usr/bin/python3 -c "import os; print(os.read(3, 100))" 3< "$1"`],
    ['writes', `/usr/bin/python3 -c "import os; os.write(3, b'written on fd 3\\n')" 3> "$1"`],
  ])('a step that %s a file the script opened on fd 3 is keyed on which file that is', async (_how, line) => {
    const r = await runScenario({
      files: { 'p.sh': sh(line), 'a.txt': 'AAA\n', 'b.txt': 'BBB\n' },
      first: { cmd: ['./p.sh', 'a.txt'] },
      rerun: { cmd: ['./p.sh', 'b.txt'] },
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 2, ran: 2, skipped: 0 });
  });

  test('a step that maps its stdin file instead of reading it depends on its content', async () => {
    const r = await runScenario({
      files: {
        'p.sh': sh(`/usr/bin/python3 -c "import mmap; m = mmap.mmap(0, 0, access=mmap.ACCESS_READ); print(bytes(m[:5]))" < in.txt`),
        'in.txt': 'first\n',
      },
      change: (w) => fs.writeFileSync(path.join(w, 'in.txt'), 'other\n'),
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(r.rerun.cached.stdout.toString()).toBe("b'other'\n");
  });

  test('reading /dev/stdin from a pipe the script made: the step is uncacheable, the script is not', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh(`printf 'x\\ny\\n' | /usr/bin/python3 -c "print(len(open('/dev/stdin').read()))" > n.txt`) },
    });
    expectIndistinguishable(r.first);
    expect(textOf(r.first.plain.tree, 'n.txt')).toBe('4\n');
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
  });
});

describe('directories, links, names and modes', () => {
  // on a re-run out/ exists, so `mv tmpdir out` moves tmpdir *into* out
  const RENAME_DIR = { 'p.sh': sh('mkdir -p tmpdir', 'sort in.txt > tmpdir/a.txt', 'mv tmpdir out'), 'in.txt': 'b\na\n' };

  test('an output replaced by a symlink: the step writes through it, as a real run does', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('sort in.txt > out.txt'), 'in.txt': 'b\na\n', 'important.txt': 'keep?\n' },
      change: (w) => {
        fs.rmSync(path.join(w, 'out.txt'));
        fs.symlinkSync('important.txt', path.join(w, 'out.txt'));
      },
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'important.txt')).toBe('a\nb\n');
  });

  test('an output with a second name (hard link) and other content: the step writes the shared file, as a real run does', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('sort in.txt > out.txt'), 'in.txt': 'b\na\n' },
      change: (w) => {
        fs.writeFileSync(path.join(w, 'out.txt'), 'changed\n');
        fs.linkSync(path.join(w, 'out.txt'), path.join(w, 'linked.txt'));
      },
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'linked.txt')).toBe('a\nb\n');
  });

  test('a directory renamed onto a name that now exists (mv moves into it)', async () => {
    const r = await runScenario({ files: RENAME_DIR });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(r.rerun.plain.tree['out/tmpdir/a.txt']).toMatchObject({ text: 'a\nb\n' });
  });

  test('a directory renamed, the result removed before the re-run: one skip restores it', async () => {
    const r = await runScenario({ files: RENAME_DIR, change: (w) => fs.rmSync(path.join(w, 'out'), { recursive: true }) });
    expectIndistinguishable(r.rerun);
    expect(r.rerun.cached.tree['tmpdir']).toBeUndefined();
    expect(textOf(r.rerun.cached.tree, 'out/a.txt')).toBe('a\nb\n');
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
  });

  const ODD = {
    'p.sh': sh(
      'sort in.txt > "with space.txt"',
      `cp in.txt "$(printf 'new\\nline.txt')"`,
      'cp in.txt "ünï cødé.txt"',
      'mkdir -p shared && chmod 1777 shared',
      'cp in.txt setuid && chmod 4755 setuid',
      'touch empty',
    ),
    'in.txt': 'b\na\n',
  };

  test('odd names, sticky and setuid bits, an empty file: removed, then one skip restores them', async () => {
    const r = await runScenario({
      files: ODD,
      change: (w) => {
        for (const name of ['with space.txt', 'new\nline.txt', 'ünï cødé.txt', 'setuid', 'empty']) fs.rmSync(path.join(w, name));
        fs.rmdirSync(path.join(w, 'shared'));
      },
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    const t = r.rerun.cached.tree;
    expect(t['shared']).toEqual({ type: 'dir', mode: '1777' });
    expect(t['setuid']).toMatchObject({ mode: '4755' });
    expect(t['new\nline.txt']).toMatchObject({ text: 'b\na\n' });
    expect(t['ünï cødé.txt']).toMatchObject({ text: 'b\na\n' });
    expect(t['empty']).toMatchObject({ size: 0 });
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
  });

  test('a hard link, removed before the re-run: restored as a link, not a copy', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('sort in.txt > sorted.txt', 'ln sorted.txt also-sorted.txt'), 'in.txt': 'b\na\n' },
      change: (w) => {
        fs.rmSync(path.join(w, 'sorted.txt'));
        fs.rmSync(path.join(w, 'also-sorted.txt'));
      },
    });
    expectIndistinguishable(r.first);
    expect(r.first.plain.tree['also-sorted.txt']).toMatchObject({ nlink: 2 });
    expectIndistinguishable(r.rerun);
  });

  test('an input symlink retargeted: the steps reading through it and reading it run', async () => {
    const r = await runScenario({
      files: {
        'p.sh': sh('cat current > content.txt', 'readlink current > target.txt', 'sort other.txt > other.sorted'),
        'v1.txt': 'version 1\n',
        'v2.txt': 'version 2\n',
        current: { symlink: 'v1.txt' },
        'other.txt': 'b\na\n',
      },
      change: (w) => {
        fs.unlinkSync(path.join(w, 'current'));
        fs.symlinkSync('v2.txt', path.join(w, 'current'));
      },
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'content.txt')).toBe('version 2\n');
    expect(textOf(r.rerun.cached.tree, 'target.txt')).toBe('v2.txt\n');
    expectSummary(r.rerun.cached, { total: 4, ran: 3, skipped: 1 });
  });

  test('an input symlink retargeted to a file with the same content: readlink still sees it', async () => {
    const r = await runScenario({
      files: {
        'p.sh': sh('cat current > content.txt', 'readlink current > target.txt'),
        'v1.txt': 'same\n',
        'v2.txt': 'same\n',
        current: { symlink: 'v1.txt' },
      },
      change: (w) => {
        fs.unlinkSync(path.join(w, 'current'));
        fs.symlinkSync('v2.txt', path.join(w, 'current'));
      },
    });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'target.txt')).toBe('v2.txt\n');
  });
});

// Re-running a script on its own results is not always idempotent: these
// steps behave differently when their output already exists, so a plain
// re-run differs from the first run and the cached re-run must follow it.
describe('steps that are not idempotent on their own results', () => {
  test('mkdir without -p fails when the directory exists', async () => {
    const r = await runScenario({ files: { 'p.sh': sh('mkdir out', 'echo made > out/f.txt') } });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(r.rerun.plain.exitCode).toBe(1);
  });

  test('ln -s without -f fails when the link exists', async () => {
    const r = await runScenario({ files: { 'p.sh': sh('ln -s in.txt link.txt', 'echo linked'), 'in.txt': 'a\n' } });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(r.rerun.plain.exitCode).toBe(1);
  });

  test('cp -r into a directory that now exists copies into it', async () => {
    const r = await runScenario({ files: { 'p.sh': sh('cp -r src dst'), 'src/a.txt': 'a\n' } });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(r.rerun.plain.tree['dst/src/a.txt']).toMatchObject({ text: 'a\n' });
  });

  test('set -C (noclobber): a redirection onto an existing file fails', async () => {
    const r = await runScenario({ files: { 'p.sh': sh('set -C', 'sort in.txt > sorted.txt', 'echo sorted'), 'in.txt': 'b\na\n' } });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(r.rerun.plain.exitCode).not.toBe(0);
  });
});

describe('the script itself', () => {
  test('a step added to the script: the script runs, its unchanged steps are replayed', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('sort in.txt > sorted.txt', 'tr a-z A-Z < in.txt > upper.txt'), 'in.txt': 'b\na\n' },
      change: (w) => writeTree(w, { 'p.sh': sh('sort in.txt > sorted.txt', 'tr a-z A-Z < in.txt > upper.txt', 'wc -l < in.txt > n.txt') }),
    });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'n.txt')).toBe('2\n');
    expectSummary(r.rerun.cached, { total: 4, ran: 2, skipped: 2 });
  });

  test('a tool the script calls by a relative path is rewritten (same name, new content)', async () => {
    const r = await runScenario({
      files: {
        'p.sh': sh('./tool.sh in.txt > out.txt', 'sort in.txt > sorted.txt'),
        'tool.sh': '#!/bin/sh\nexec tr a-z A-Z < "$1"\n',
        'in.txt': 'b\na\n',
      },
      // (sort -u, not plain sort: `sort in.txt` would be the very command of
      // the next line, whose cached result is then rightly replayed here too)
      change: (w) => writeTree(w, { 'tool.sh': '#!/bin/sh\nexec sort -u "$1"\n' }),
    });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'out.txt')).toBe('a\nb\n');
    // p.sh, tool.sh and the sort -u it now execs ran; the other sort was replayed
    expectSummary(r.rerun.cached, { total: 4, ran: 3, skipped: 1 });
  });
});

describe('metadata a step observes', () => {
  test('a modification time shown by ls -l and stat changes (content unchanged)', async () => {
    const r = await runScenario({
      files: {
        'p.sh': sh('ls -l --time-style=+%s data > listing.txt', "stat -c '%n %Y' data/a.txt > stat.txt"),
        'data/a.txt': 'a\n',
        'data/b.txt': 'b\n',
      },
      setup: (w) => {
        setMtime(path.join(w, 'data/a.txt'), 1_000_000_000);
        setMtime(path.join(w, 'data/b.txt'), 1_000_000_000);
      },
      change: (w) => setMtime(path.join(w, 'data/a.txt'), 1_500_000_000),
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'stat.txt')).toBe('data/a.txt 1500000000\n');
  });

  test('a make-style freshness check ([ a -nt b ]) flips when only a timestamp changes', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('if [ src.txt -nt built.txt ]; then echo "src is newer"; else echo "built is newer"; fi > which.txt'), 'src.txt': 's\n', 'built.txt': 'b\n' },
      setup: (w) => {
        setMtime(path.join(w, 'src.txt'), 1_000_000_000);
        setMtime(path.join(w, 'built.txt'), 1_200_000_000);
      },
      change: (w) => setMtime(path.join(w, 'src.txt'), 1_500_000_000),
    });
    expectIndistinguishable(r.first);
    expect(textOf(r.first.plain.tree, 'which.txt')).toBe('built is newer\n');
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'which.txt')).toBe('src is newer\n');
  });

  test('a modification time read through fstat of an open file (gzip stores it in its header)', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('gzip -c data.txt > data.gz'), 'data.txt': 'some data\n' },
      setup: (w) => setMtime(path.join(w, 'data.txt'), 1_000_000_000),
      change: (w) => setMtime(path.join(w, 'data.txt'), 1_500_000_000),
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
  });

  test('date reads the clock: it runs every time, and so does its script; sort next to it is replayed', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('date +%s%N > now.txt', 'sort data.txt > sorted.txt'), 'data.txt': 'b\na\n' },
    });
    expectIndistinguishable(r.first, ['now.txt']);
    expectIndistinguishable(r.rerun, ['now.txt']);
    expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1, uncacheable: 2 });
    expect(textOf(r.rerun.cached.tree, 'now.txt')).not.toBe(textOf(r.first.cached.tree, 'now.txt'));
    expect(textOf(r.rerun.cached.tree, 'sorted.txt')).toBe('a\nb\n');
  });

  test('listing /proc (ps, pgrep) shows what runs now: the step runs every time', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('ls /proc > /dev/null', 'sort data.txt > sorted.txt'), 'data.txt': 'b\na\n' },
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1, uncacheable: 2 });
  });

  test('date -r f next to sort f: the modification time date printed is an input of the script', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('date -u -r data.txt +%s > when.txt', 'sort data.txt > sorted.txt'), 'data.txt': 'b\na\n' },
      setup: (w) => setMtime(path.join(w, 'data.txt'), 1_000_000_000),
      change: (w) => setMtime(path.join(w, 'data.txt'), 1_500_000_000),
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'when.txt')).toBe('1500000000\n');
  });

  test('the same, with the step replayed inside a script that re-ran: the time is still an input', async () => {
    // x.sh's entry holds data.txt's bytes and, apart, its metadata. When p.sh re-runs
    // around a replayed x.sh, p.sh's new entry must keep the metadata input as well.
    const r = await runScenario({
      files: {
        'p.sh': sh('./x.sh', 'echo one > tag.txt'),
        'x.sh': { content: sh('date -u -r data.txt +%s > when.txt', 'sort data.txt > sorted.txt'), mode: 0o755 },
        'data.txt': 'b\na\n',
      },
      setup: async (w, ws) => {
        setMtime(path.join(w, 'data.txt'), 1_000_000_000);
        await runCached(ws, {}); // x.sh and p.sh recorded
        writeTree(w, { 'p.sh': sh('./x.sh', 'echo two > tag.txt') }); // p.sh re-runs, x.sh is replayed
      },
      change: (w) => setMtime(path.join(w, 'data.txt'), 1_500_000_000),
    });
    expectSummary(r.first.cached, { ran: 1, skipped: 1 });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'when.txt')).toBe('1500000000\n');
  });

  test('an executable bit probed with [ -x ] changes', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('if [ -x tool ]; then echo executable; else echo "not executable"; fi > x.txt'), tool: { content: 't\n', mode: 0o644 } },
      change: (w) => fs.chmodSync(path.join(w, 'tool'), 0o755),
    });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'x.txt')).toBe('executable\n');
  });

  test('a step that only runs when its output is missing; the user edited that output', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('[ -e out.txt ] || sort in.txt > out.txt', 'cat out.txt > copy.txt'), 'in.txt': 'b\na\n' },
      change: (w) => fs.writeFileSync(path.join(w, 'out.txt'), 'edited by hand\n'),
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'copy.txt')).toBe('edited by hand\n');
  });
});

describe('more nondeterminism', () => {
  test('/proc/sys/kernel/random/uuid: a new value every run', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('cat /proc/sys/kernel/random/uuid > uuid.txt', 'sort in.txt > sorted.txt'), 'in.txt': 'b\na\n' },
    });
    expectIndistinguishable(r.first, ['uuid.txt']);
    expectIndistinguishable(r.rerun, ['uuid.txt']);
    expect(textOf(r.rerun.cached.tree, 'uuid.txt')).not.toBe(textOf(r.first.cached.tree, 'uuid.txt'));
    expect(textOf(r.rerun.cached.tree, 'uuid.txt')).not.toBe(textOf(r.rerun.plain.tree, 'uuid.txt'));
  });

  test('a background process that outlives the script: uncacheable, its late output still arrives', async () => {
    const r = await runScenario({
      files: {
        // 3 executions: p.sh, sort, sleep (in the background subshell; 1.5 s, so that it
        // outlives p.sh even on a loaded machine)
        'p.sh': sh('sort in.txt > sorted.txt', '(sleep 1.5; echo late) &', 'echo started'),
        'in.txt': 'b\na\n',
      },
    });
    expectIndistinguishable(r.first);
    expect(r.first.plain.stdout.toString()).toBe('started\nlate\n');
    expectIndistinguishable(r.rerun);
    // p.sh ran (uncacheable: it left a process running); sort and sleep (a
    // deterministic execution of its own) were replayed
    expectSummary(r.rerun.cached, { total: 3, ran: 1, skipped: 2, uncacheable: 1 });
  });
});
