// Issue 4 end-to-end scenarios, file-system side: what changes between two
// runs of `pcache -- ./p.sh` (inputs, argv, environment, PATH, directories,
// outputs, umask) and the kinds of outputs a pipeline leaves (appends, renames,
// deletions, symlinks, modes, directories). Each run is compared with a plain
// run from the same state (see harness.ts); the summary counts say what ran
// and what was replayed.
//
// Execution counts: every successful execve is one execution (sh builtins such
// as echo, printf, [ and read are not); a skipped execution's subtree is not
// counted again.

import * as fs from 'fs';
import * as path from 'path';
import { expectIndistinguishable, expectSummary, rewriteKeepingMtime, runScenario, textOf, writeTree } from './harness';

const sh = (...lines: string[]): string => ['#!/bin/sh', 'set -e', ...lines, ''].join('\n');

/** A small pipeline with internal dependencies: 5 executions (p.sh, sort, uniq, tr, wc). */
const PIPELINE = {
  'p.sh': sh(
    'sort in.txt > sorted.txt',
    'uniq -c sorted.txt > counts.txt',
    'tr a-z A-Z < in.txt > upper.txt',
    'echo "done: $(wc -l < in.txt) lines"',
    'echo "a note on stderr" >&2',
  ),
  'in.txt': 'pear\napple\npear\nfig\n',
};

describe('nothing changed', () => {
  test('the re-run is one lookup and one skip, and indistinguishable from a plain run', async () => {
    const r = await runScenario({ files: PIPELINE });
    expectIndistinguishable(r.first);
    expectSummary(r.first.cached, { total: 5, ran: 5, skipped: 0, uncacheable: 0, exitCode: 0 });
    expect(r.first.plain.stdout.toString()).toBe('done: 4 lines\n');
    expect(r.first.plain.stderr.toString()).toBe('a note on stderr\n');

    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1, uncacheable: 0, exitCode: 0 });
    expect(r.rerun.cached.summary?.savedSeconds).toBeGreaterThan(0);
  });
});

describe('nothing changed, outputs started the way split and sort -o start them', () => {
  // Both open their outputs with O_CREAT but without O_TRUNC and empty them with
  // ftruncate(fd, 0): the file's absence on the first run must not be an input, or the
  // first re-run would find the outputs there and run again.
  test('the very first re-run skips everything', async () => {
    const r = await runScenario({
      files: {
        'p.sh': sh('mkdir -p parts', 'split -l 2 -d in.txt parts/x.', 'sort -o sorted.txt in.txt', 'cat parts/x.* > again.txt'),
        'in.txt': 'pear\napple\nfig\nkiwi\nplum\n',
      },
    });
    expectIndistinguishable(r.first);
    expectSummary(r.first.cached, { total: 5, ran: 5, skipped: 0, uncacheable: 0, exitCode: 0 });
    expect(textOf(r.first.cached.tree, 'sorted.txt')).toBe('apple\nfig\nkiwi\npear\nplum\n');
    expect(textOf(r.first.cached.tree, 'parts/x.02')).toBe('plum\n');
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1, uncacheable: 0, exitCode: 0 });
  });
});

describe('inputs that change', () => {
  test("an input's content changes, same size, mtime put back: exactly the steps reading it run", async () => {
    const r = await runScenario({
      files: {
        'p.sh': sh('sort a.txt > a.sorted', 'sort b.txt > b.sorted', 'cat a.sorted b.sorted > all.txt'),
        'a.txt': 'banana\napple\n',
        'b.txt': 'kiwi\nfig\n',
      },
      change: (w) => rewriteKeepingMtime(path.join(w, 'a.txt'), 'cherry\napple\n'),
    });
    expectIndistinguishable(r.first);
    expectSummary(r.first.cached, { total: 4, ran: 4, skipped: 0 });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'all.txt')).toBe('apple\ncherry\nfig\nkiwi\n');
    // p.sh (its inputs changed), sort a.txt and cat ran; sort b.txt was replayed
    expectSummary(r.rerun.cached, { total: 4, ran: 3, skipped: 1, uncacheable: 0 });
  });

  test('early cutoff: a step that re-runs with identical output lets the next step hit', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('sort in.txt > sorted.txt', 'tr a-z A-Z < sorted.txt > upper.txt'), 'in.txt': 'b\na\nc\n' },
      change: (w) => fs.writeFileSync(path.join(w, 'in.txt'), 'c\nb\na\n'),
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    // p.sh and sort ran; tr read the same sorted.txt bytes and was replayed
    expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1 });
  });

  test('different argv: the script and the step using the argument run', async () => {
    const r = await runScenario({
      files: {
        'p.sh': sh('echo "sorting $1"', 'sort "$1" > sorted.txt', 'cat common.txt > copy.txt'),
        'a.txt': 'a2\na1\n',
        'b.txt': 'b2\nb1\n',
        'common.txt': 'common\n',
      },
      first: { cmd: ['./p.sh', 'a.txt'] },
      rerun: { cmd: ['./p.sh', 'b.txt'] },
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(r.rerun.cached.stdout.toString()).toBe('sorting b.txt\n');
    expect(textOf(r.rerun.cached.tree, 'sorted.txt')).toBe('b1\nb2\n');
    expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1 });
  });

  test('a different environment variable: every execution that sees it runs, one that does not is replayed', async () => {
    const r = await runScenario({
      files: {
        // env -u: sort runs without GREETING, so its key does not change
        'p.sh': sh('printenv GREETING > greeting.txt', 'env -u GREETING sort in.txt > sorted.txt'),
        'in.txt': 'b\na\n',
      },
      first: { env: { GREETING: 'hello' } },
      rerun: { env: { GREETING: 'bonjour' } },
    });
    expectIndistinguishable(r.first);
    expectSummary(r.first.cached, { total: 4, ran: 4, skipped: 0 });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'greeting.txt')).toBe('bonjour\n');
    // p.sh, printenv and env ran; sort (GREETING removed) was replayed
    expectSummary(r.rerun.cached, { total: 4, ran: 3, skipped: 1 });
  });

  test('PCACHE_DEBUG turned on to see why something re-runs is no part of the key', async () => {
    const r = await runScenario({ files: PIPELINE, rerun: { env: { PCACHE_DEBUG: '1' } } });
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1, uncacheable: 0, exitCode: 0 });
  });

  test('a new executable earlier in PATH: the step that now finds it runs', async () => {
    const r = await runScenario({
      files: {
        'p.sh': sh('sort in.txt > sorted.txt', 'tr a-z A-Z < in.txt > upper.txt'),
        'in.txt': 'b\na\n',
        bin: { dir: true },
      },
      first: (ws) => ({ env: { PATH: `${ws.work}/bin:/usr/bin:/bin` } }),
      change: (w) =>
        writeTree(w, { 'bin/sort': { content: '#!/bin/sh\necho "wrapped sort" >&2\nexec /usr/bin/sort -r "$@"\n', mode: 0o755 } }),
    });
    expectIndistinguishable(r.first);
    expectSummary(r.first.cached, { total: 3, ran: 3, skipped: 0 });
    expectIndistinguishable(r.rerun);
    expect(r.rerun.cached.stderr.toString()).toBe('wrapped sort\n');
    expect(textOf(r.rerun.cached.tree, 'sorted.txt')).toBe('b\na\n');
    // p.sh, bin/sort and the /usr/bin/sort it execs ran; tr was replayed
    expectSummary(r.rerun.cached, { total: 4, ran: 3, skipped: 1 });
  });

  const LISTING = {
    'p.sh': sh('ls data > listing.txt', 'cat data/*.txt > all.txt', 'sort other.txt > other.sorted'),
    'data/a.txt': 'a\n',
    'data/b.txt': 'b\n',
    'other.txt': 'y\nx\n',
  };

  test('a directory gains a file the glob matches: ls and cat run', async () => {
    const r = await runScenario({ files: LISTING, change: (w) => writeTree(w, { 'data/c.txt': 'c\n' }) });
    expectIndistinguishable(r.first);
    expectSummary(r.first.cached, { total: 4, ran: 4, skipped: 0 });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'listing.txt')).toBe('a.txt\nb.txt\nc.txt\n');
    expect(textOf(r.rerun.cached.tree, 'all.txt')).toBe('a\nb\nc\n');
    expectSummary(r.rerun.cached, { total: 4, ran: 3, skipped: 1 });
  });

  test('a directory gains a file the glob does not match: ls runs, cat is replayed', async () => {
    const r = await runScenario({ files: LISTING, change: (w) => writeTree(w, { 'data/notes.log': 'n\n' }) });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'listing.txt')).toBe('a.txt\nb.txt\nnotes.log\n');
    // p.sh (its glob listed data/) and ls ran; cat (same argv, same files) and sort were replayed
    expectSummary(r.rerun.cached, { total: 4, ran: 2, skipped: 2 });
  });

  const OPTIONAL = sh('sort in.txt > sorted.txt', 'if [ -e config.txt ]; then cat config.txt > conf.out; else echo default > conf.out; fi');

  test('a file that was looked for and absent appears', async () => {
    const r = await runScenario({
      files: { 'p.sh': OPTIONAL, 'in.txt': 'b\na\n' },
      change: (w) => writeTree(w, { 'config.txt': 'custom\n' }),
    });
    expectIndistinguishable(r.first);
    expectSummary(r.first.cached, { total: 2, ran: 2, skipped: 0 });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'conf.out')).toBe('custom\n');
    // p.sh and the new cat ran; sort was replayed
    expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1 });
  });

  test('an input is deleted', async () => {
    const r = await runScenario({
      files: { 'p.sh': OPTIONAL, 'in.txt': 'b\na\n', 'config.txt': 'custom\n' },
      change: (w) => fs.rmSync(path.join(w, 'config.txt')),
    });
    expectIndistinguishable(r.first);
    expectSummary(r.first.cached, { total: 3, ran: 3, skipped: 0 });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'conf.out')).toBe('default\n');
    expectSummary(r.rerun.cached, { total: 2, ran: 1, skipped: 1 });
  });

  test('a different umask: everything runs and the new modes are the plain ones', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('mkdir -p out', 'echo hello > out/f.txt', 'sort in.txt > sorted.txt'), 'in.txt': 'b\na\n' },
      first: { umask: 0o022 },
      change: (w) => {
        fs.rmSync(path.join(w, 'out'), { recursive: true });
        fs.rmSync(path.join(w, 'sorted.txt'));
      },
      rerun: { umask: 0o077 },
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(r.rerun.cached.tree['out']).toEqual({ type: 'dir', mode: '0700' });
    expect(r.rerun.cached.tree['sorted.txt']).toMatchObject({ mode: '0600' });
    // the umask is part of every key
    expectSummary(r.rerun.cached, { total: 3, ran: 3, skipped: 0 });
  });
});

describe('outputs', () => {
  // DESIGN.md: on a hit, outputs that are missing or different are restored.
  // A deleted output puts the state back to the first run's: one skip.
  test('an output deleted before the re-run: restored, nothing runs', async () => {
    const r = await runScenario({ files: PIPELINE, change: (w) => fs.rmSync(path.join(w, 'sorted.txt')) });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'sorted.txt')).toBe('apple\nfig\npear\npear\n');
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
  });

  // A digest learnt when a step ends is reused by the executions around it only while no
  // traced process changed the file: dd rewrites cp's output in place, same size, at once.
  test("a step's output rewritten in place by the next step: the script's entry keeps the final bytes", async () => {
    const r = await runScenario({
      files: {
        'p.sh': sh('cp src.txt f.txt', 'printf BBBB | dd of=f.txt conv=notrunc status=none', 'cat f.txt'),
        'src.txt': 'aaaa',
      },
      change: (w) => fs.rmSync(path.join(w, 'f.txt')),
    });
    expectIndistinguishable(r.first);
    expect(r.first.plain.stdout.toString()).toBe('BBBB');
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'f.txt')).toBe('BBBB');
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
  });

  test('an output overwritten (same mode) before the re-run: restored, nothing runs', async () => {
    const r = await runScenario({
      files: PIPELINE,
      change: (w) => fs.writeFileSync(path.join(w, 'upper.txt'), 'scribbled over\n'),
    });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'upper.txt')).toBe('PEAR\nAPPLE\nPEAR\nFIG\n');
    // whether p.sh itself hits (restoring upper.txt) or runs (upper.txt exists
    // where it was absent) is the implementation's call; no step may run
    expect(r.rerun.cached.summary?.executions.ran).toBeLessThanOrEqual(1);
    expect(r.rerun.cached.summary?.executions.skipped).toBeGreaterThanOrEqual(1);
  });

  test("an output's mode changed before the re-run (a redirection keeps an existing file's mode)", async () => {
    const r = await runScenario({
      files: PIPELINE,
      change: (w) => fs.chmodSync(path.join(w, 'sorted.txt'), 0o600),
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(r.rerun.plain.tree['sorted.txt']).toMatchObject({ mode: '0600' });
  });

  const APPEND = {
    'p.sh': sh('cat in.txt >> log.txt', 'tee -a journal.txt < in.txt > /dev/null', 'sort in.txt > sorted.txt'),
    'in.txt': 'x\n',
    'log.txt': 'start\n',
    'journal.txt': 'begin\n',
  };

  test('appending (>> and tee -a), nothing changed: the appends happen again', async () => {
    const r = await runScenario({ files: APPEND });
    expectIndistinguishable(r.first);
    expectSummary(r.first.cached, { total: 4, ran: 4, skipped: 0 });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'log.txt')).toBe('start\nx\nx\n');
    expect(textOf(r.rerun.cached.tree, 'journal.txt')).toBe('begin\nx\nx\n');
    // log.txt and journal.txt are inputs of the executions that append to them:
    // p.sh (opened log.txt for >>) and tee ran; cat (its bytes go to fd 1) and sort were replayed
    expectSummary(r.rerun.cached, { total: 4, ran: 2, skipped: 2 });
  });

  test('appending, appended files put back as they were: one skip restores the appended content', async () => {
    const r = await runScenario({
      files: APPEND,
      change: (w) => writeTree(w, { 'log.txt': 'start\n', 'journal.txt': 'begin\n' }),
    });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'log.txt')).toBe('start\nx\n');
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
  });

  test('an in-place edit (sed -i), nothing changed: the edit applies again', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh("sed -i 's/a/b/' counter.txt", 'sort in.txt > sorted.txt'), 'counter.txt': 'aaaa\n', 'in.txt': 'b\na\n' },
    });
    expectIndistinguishable(r.first);
    expect(textOf(r.first.cached.tree, 'counter.txt')).toBe('baaa\n');
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'counter.txt')).toBe('bbaa\n');
    // p.sh and sed (counter.txt is their input and output) ran; sort was replayed
    expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1 });
  });

  const RENAME = { 'p.sh': sh('sort in.txt > out.tmp && mv out.tmp out.txt'), 'in.txt': 'b\na\n' };

  test('temp file + rename, the input changed: the renamed file has the new content', async () => {
    const r = await runScenario({ files: RENAME, change: (w) => fs.writeFileSync(path.join(w, 'in.txt'), 'd\nc\n') });
    expectIndistinguishable(r.first);
    expectSummary(r.first.cached, { total: 3, ran: 3, skipped: 0 });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'out.txt')).toBe('c\nd\n');
    expect(r.rerun.cached.tree['out.tmp']).toBeUndefined();
    expectSummary(r.rerun.cached, { total: 3 });
  });

  test('temp file + rename, output removed: one skip restores it and no temp file', async () => {
    const r = await runScenario({ files: RENAME, change: (w) => fs.rmSync(path.join(w, 'out.txt')) });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'out.txt')).toBe('a\nb\n');
    expect(r.rerun.cached.tree['out.tmp']).toBeUndefined();
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
  });

  const DELETIONS = {
    'p.sh': sh('rm -f stale.txt', 'rm -rf olddir', 'sort in.txt > sorted.txt'),
    'in.txt': 'b\na\n',
    'stale.txt': 'stale\n',
    'olddir/x.txt': 'x\n',
    'olddir/sub/y.txt': 'y\n',
  };

  test('deletions, the deleted files re-created as they were: one skip deletes them again', async () => {
    const r = await runScenario({
      files: DELETIONS,
      change: (w) => writeTree(w, { 'stale.txt': 'stale\n', 'olddir/x.txt': 'x\n', 'olddir/sub/y.txt': 'y\n' }),
    });
    expectIndistinguishable(r.first);
    expect(r.first.cached.tree['stale.txt']).toBeUndefined();
    expect(r.first.cached.tree['olddir']).toBeUndefined();
    expectIndistinguishable(r.rerun);
    expect(r.rerun.cached.tree['olddir']).toBeUndefined();
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
  });

  test('deletions, re-created with other content', async () => {
    const r = await runScenario({
      files: DELETIONS,
      change: (w) => writeTree(w, { 'stale.txt': 'other\n', 'olddir/z.txt': 'z\n' }),
    });
    expectIndistinguishable(r.rerun);
    expect(r.rerun.cached.tree['stale.txt']).toBeUndefined();
    expect(r.rerun.cached.tree['olddir']).toBeUndefined();
  });

  test('deletions, nothing changed (the deleted paths stay absent)', async () => {
    const r = await runScenario({ files: DELETIONS });
    expectIndistinguishable(r.rerun);
  });

  const SHAPES = {
    'p.sh': sh(
      'mkdir -p out/sub/deep',
      'cp in.txt out/sub/deep/copy.txt',
      'chmod 750 out/sub',
      'chmod 600 out/sub/deep/copy.txt',
      'ln -sf ../in.txt out/link.txt',
      'ln -sfn sub/deep out/deeplink',
      'chmod 755 tool',
    ),
    'in.txt': 'content\n',
    tool: { content: '#!/bin/sh\necho tool\n', mode: 0o644 },
  };

  test('symlinks, chmod and mkdir -p outputs, removed before the re-run: one skip restores them exactly', async () => {
    const r = await runScenario({
      files: SHAPES,
      change: (w) => {
        fs.rmSync(path.join(w, 'out'), { recursive: true });
        fs.chmodSync(path.join(w, 'tool'), 0o644);
      },
    });
    expectIndistinguishable(r.first);
    expectSummary(r.first.cached, { total: 8, ran: 8, skipped: 0 });
    expectIndistinguishable(r.rerun);
    const t = r.rerun.cached.tree;
    expect(t['out/sub']).toEqual({ type: 'dir', mode: '0750' });
    expect(t['out/sub/deep/copy.txt']).toMatchObject({ mode: '0600', text: 'content\n' });
    expect(t['out/link.txt']).toEqual({ type: 'symlink', target: '../in.txt' });
    expect(t['out/deeplink']).toEqual({ type: 'symlink', target: 'sub/deep' });
    expect(t['tool']).toMatchObject({ mode: '0755' });
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
  });

  test('symlinks, chmod and mkdir -p outputs, nothing changed', async () => {
    const r = await runScenario({ files: SHAPES });
    expectIndistinguishable(r.rerun);
  });

  test('symlinks, chmod and mkdir -p outputs, modes and a link tampered with', async () => {
    const r = await runScenario({
      files: SHAPES,
      change: (w) => {
        fs.chmodSync(path.join(w, 'out/sub'), 0o755);
        fs.unlinkSync(path.join(w, 'out/link.txt'));
        fs.symlinkSync('elsewhere', path.join(w, 'out/link.txt'));
      },
    });
    expectIndistinguishable(r.rerun);
  });
});
