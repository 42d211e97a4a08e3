// Steps whose stdout is a regular file only they hold do not capture their writes one by
// one: the tracer reads the file region they wrote back at their exit (native/src/tracer.cc,
// "stdio write stops"). With pcache's own stdout and stderr on /dev/null (stdio 'null') no
// step stops on those writes at all; with anything else (a log file, a terminal) the root captures
// write by write and every step inherits its filter, but a step read back lets those stops
// pass without a copy. Both must give the same files. Each scenario compares pcache with a
// plain run from the same state (harness.ts).

import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import Database from 'better-sqlite3';
import { digestBytes } from '../../cache-store/digest';
import { FineGrainedCtime } from '../../cache-store/fs-type';
import { BASE_ENV, PCACHE, StdioKind, createWorkspace, expectIndistinguishable, expectSummary, runScenario, textOf, tracerStats } from './harness';

const sh = (...lines: string[]): string => ['#!/bin/sh', 'set -e', ...lines, ''].join('\n');

describe.each<[string, StdioKind]>([
  ['pcache on /dev/null', 'null'],
  ["pcache's stdout a log file", 'file'],
  ["pcache's stdout a file only it holds", 'alone'],
  ['pcache on a terminal', 'tty'],
])('stdout files read back at the end of the step (%s)', (_name, stdio) => {
  const quiet = { stdio };
  test('redirections of every shape are replayed into their files byte for byte', async () => {
    const r = await runScenario({
      files: {
        'p.sh': sh(
          'seq 1 20000 > a.txt',
          'sort -r a.txt > b.txt',
          "sh -c 'echo head; seq 1 3; echo tail' > n.txt",
          '{ echo one; seq 4 6; } > m.txt',
          'seq 7 8 >> log.txt',
          "sh -c 'exec seq 9 12' > e.txt",
          'exec 3> f3.txt',
          'seq 13 14 >&3',
          'cat c.txt > c.copy',
        ),
        'log.txt': 'old line\n',
        'c.txt': 'c1\n',
      },
      first: quiet,
      change: (w) => fs.writeFileSync(path.join(w, 'c.txt'), 'c2\n'),
    });
    expectIndistinguishable(r.first);
    expect(textOf(r.first.cached.tree, 'n.txt')).toBe('head\n1\n2\n3\ntail\n');
    expect(textOf(r.first.cached.tree, 'log.txt')).toBe('old line\n7\n8\n');
    expect(textOf(r.first.cached.tree, 'e.txt')).toBe('9\n10\n11\n12\n');
    expectIndistinguishable(r.rerun);
    // p.sh and the cat that reads c.txt run; the seq/sort steps are replayed into the files
    // p.sh truncated (log.txt was appended to again: a third line pair)
    expect(textOf(r.rerun.cached.tree, 'log.txt')).toBe('old line\n7\n8\n7\n8\n');
    expectSummary(r.rerun.cached, { ran: 2 });
  });

  test('bytes written through a duplicate of fd 1 are part of the stdout that is replayed', async () => {
    // A write through dup(1) does not stop even where fd 1 does; read back, it is in the file
    // region like any other, and the replay writes it too.
    const r = await runScenario({
      files: {
        'p.sh': sh(
          `/usr/bin/python3 -c "import os, sys; os.write(os.dup(1), b'via dup\\n'); print('direct')" > d.txt`,
          'cat other.txt > other.copy',
        ),
        'other.txt': 'o1\n',
      },
      first: quiet,
      change: (w) => fs.writeFileSync(path.join(w, 'other.txt'), 'o2\n'),
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'd.txt')).toBe('via dup\ndirect\n');
    expectSummary(r.rerun.cached, { ran: 2, skipped: 1 });
  });

  test('a caller that writes the same file while its child runs: the child is not cached with those bytes', async () => {
    // The child's region of w.txt holds the parent's line too; the parent's write count
    // moving while the child ran makes the child uncacheable, so the re-run (the parent
    // misses: x.txt changed) runs it instead of replaying "parent" a second time.
    const parent = [
      'import subprocess',
      "open('x.copy', 'w').write(open('x.txt').read())",
      "f = open('w.txt', 'w')",
      "p = subprocess.Popen(['sh', '-c', 'sleep 0.3; seq 1 3'], stdout=f)",
      "f.write('parent\\n'); f.flush()",
      'p.wait()',
    ].join('\n');
    const r = await runScenario({
      files: { 'p.sh': sh('/usr/bin/python3 parent.py'), 'parent.py': parent + '\n', 'x.txt': 'x1\n' },
      first: quiet,
      change: (w) => fs.writeFileSync(path.join(w, 'x.txt'), 'x2\n'),
    });
    expectIndistinguishable(r.first);
    expect(textOf(r.first.cached.tree, 'w.txt')).toBe('parent\n1\n2\n3\n');
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'w.txt')).toBe('parent\n1\n2\n3\n');
  });

  test('a step whose stdout file another step appends to while it runs is not replayed', async () => {
    // The background step's stdout is s.txt, and the script appends a line to s.txt while it
    // sleeps: its region of the file holds that line. (Cached, a replay would also come at
    // once, before the append instead of after it.)
    const r = await runScenario({
      files: {
        'p.sh': sh('seq 1 5 > s.txt', "sh -c 'sleep 1; seq 6 8' > s.txt &", 'sleep 0.3', 'echo extra >> s.txt', 'wait', 'cat y.txt > y.copy'),
        'y.txt': 'y1\n',
      },
      first: quiet,
      change: (w) => fs.writeFileSync(path.join(w, 'y.txt'), 'y2\n'),
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
  });

  test('a step that seeks back before where its stdout began and writes there is not replayed', async () => {
    // The step's region of h.txt starts after the caller's header; it rewrites the header's
    // first byte (lseek on fd 1, and once more through a duplicate of it, which nothing
    // stops). A replay writes only the region, so the step must run again when the script does.
    const rewrite = [
      'import os',
      "os.lseek(1, 0, os.SEEK_SET); os.write(1, b'H'); os.lseek(1, 0, os.SEEK_END)",
      "d = os.dup(1); os.pwrite(d, b'E', 1); os.close(d)",
      "os.write(1, b'body\\n')",
    ].join('; ');
    const r = await runScenario({
      files: {
        'p.sh': sh(`{ echo header; /usr/bin/python3 -c "${rewrite}"; } > h.txt`, 'cat z.txt > z.copy'),
        'z.txt': 'z1\n',
      },
      first: quiet,
      change: (w) => fs.writeFileSync(path.join(w, 'z.txt'), 'z2\n'),
    });
    expectIndistinguishable(r.first);
    expect(textOf(r.first.cached.tree, 'h.txt')).toBe('HEader\nbody\n');
    expectIndistinguishable(r.rerun);
    // p.sh, python (uncacheable) and cat run
    expectSummary(r.rerun.cached, { ran: 3, skipped: 0, uncacheable: 1 });
  });
});

describe('a step read back under a caller whose writes stop', () => {
  test('its write stops pass: no copy, no stop at the end of each write', () => {
    // pcache's stdout is a file, so the root and every step stop on write(1). seq's stdout
    // is a file of its own: read back, its writes are let through as they come.
    const ws = createWorkspace();
    const dir = ws.base;
    try {
      const log = fs.openSync(path.join(dir, 'log'), 'w');
      const r = spawnSync(PCACHE, ['--cache-dir', path.join(dir, 'cache'), '--quiet', '--', '/bin/sh', '-c', 'seq 1 30000 > a.txt; echo done'], {
        cwd: dir,
        env: { ...BASE_ENV, PCACHE_TRACER_STATS: '1' },
        stdio: ['ignore', log, 'pipe'],
        encoding: 'utf8',
      });
      fs.closeSync(log);
      expect(r.status).toBe(0);
      const stats = tracerStats(r.stderr);
      // seq writes 168,894 bytes in 4 KiB pieces: each stops once (the inherited filter) and
      // none waits for its count at the exit; the file's region is read back once. The two
      // exit stops are the root's: adding its write filter at its exec, and its `echo` (to
      // pcache's log, captured at the write's exit).
      expect(stats.readbacks).toBe(1);
      expect(stats.stops_syscall_exit).toBe(2);
      expect(stats.stops_seccomp).toBeGreaterThan(40);
      expect(fs.readFileSync(path.join(dir, 'a.txt'), 'utf8')).toBe(Array.from({ length: 30000 }, (_, i) => `${i + 1}\n`).join(''));
      expect(fs.readFileSync(path.join(dir, 'log'), 'utf8')).toBe('done\n');
    } finally {
      ws.cleanup();
    }
  });
});

describe("pcache's own stdout read back", () => {
  // Shell lines run in a fresh directory with $P the pcache command (stats on); each returns
  // what the files it names hold and the tracer stats of the run whose stderr went to err.N.
  const SEQ = "sh -c 'seq 1 30000; echo done'";
  const SEQ_OUT = `${Array.from({ length: 30000 }, (_, i) => `${i + 1}\n`).join('')}done\n`;
  function inShell(dir: string, script: string): void {
    const r = spawnSync('/bin/sh', ['-c', script], {
      cwd: dir,
      env: { ...BASE_ENV, PCACHE_TRACER_STATS: '1', P: `${PCACHE} --cache-dir ${path.join(dir, 'cache')} --quiet --` },
      stdio: 'ignore',
      timeout: 30000,
    });
    expect(r.status).toBe(0);
  }
  const read = (dir: string, name: string): string => fs.readFileSync(path.join(dir, name), 'utf8');

  test('a file only pcache holds: the root is read back, so its steps inherit no write stops', () => {
    const ws = createWorkspace();
    const cmd = "sh -c 'seq 1 30000 > a.txt; echo done'";
    try {
      inShell(ws.base, `$P ${cmd} > log.1 2> err.1`);
      expect(read(ws.base, 'log.1')).toBe('done\n');
      expect(read(ws.base, 'a.txt')).toBe(SEQ_OUT.slice(0, -'done\n'.length));
      const stats = tracerStats(read(ws.base, 'err.1'));
      // The root and seq (into a.txt) are read back (own_stdout_scan 1: nothing outside
      // holds log.1). The one syscall-exit stop adds the root's filter for stderr (a file
      // too, but pcache writes its own messages there); seq's 42 writes do not stop at all.
      expect(stats.own_stdout_scan).toBe(1);
      expect(stats.readbacks).toBe(2);
      expect(stats.stops_syscall_exit).toBe(1);
      expect(stats.stops_seccomp).toBeLessThan(40);
      inShell(ws.base, `$P ${cmd} > log.2 2> err.2`);
      expect(read(ws.base, 'log.2')).toBe('done\n');
      expect(tracerStats(read(ws.base, 'err.2')).exec_skipped).toBe(1);
    } finally {
      ws.cleanup();
    }
  });

  test.each<StdioKind>(['alone', 'file'])('steps side by side that share it are cached (%s)', async (stdio) => {
    // The jobs have pcache's stdout as theirs and write elsewhere. Each is read back, and
    // its sibling forking beside it spoils its region unless the region is empty, which it
    // is: kept (631daae kept none: 9 of 11 uncacheable).
    const r = await runScenario({
      files: {
        'p.sh': sh("printf '1\\n3\\n5\\n7\\n' | xargs -P 2 -n 1 sh -c 'sleep 0.$0; echo job $0 > out.$0'", 'cat x.txt'),
        'x.txt': 'x1\n',
      },
      first: { stdio },
      change: (w) => fs.writeFileSync(path.join(w, 'x.txt'), 'x2\n'),
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    // p.sh, xargs (it reads a pipe) and cat run; the four jobs are replayed
    expectSummary(r.rerun.cached, { ran: 3, skipped: 4 });
  });

  test('a file a sibling writes through meanwhile: not read back, and its bytes are not the pipeline\'s', () => {
    // The subshell holds log.1 too and writes X into it while pcache runs; read back, the
    // root's stdout would hold X, and a skip would print it again.
    const ws = createWorkspace();
    try {
      inShell(ws.base, `{ (sleep 0.5; echo X) & $P sh -c 'echo a; sleep 1.5; echo b' 2> err.1; wait; } > log.1`);
      expect(read(ws.base, 'log.1').split('\n').sort()).toEqual(['', 'X', 'a', 'b']);
      const stats = tracerStats(read(ws.base, 'err.1'));
      expect(stats.own_stdout_scan).toBe(2);
      expect(stats.readbacks ?? 0).toBe(0);
      inShell(ws.base, `$P sh -c 'echo a; sleep 1.5; echo b' > log.2 2> err.2`);
      expect(tracerStats(read(ws.base, 'err.2')).exec_skipped).toBe(1);
      expect(read(ws.base, 'log.2')).toBe('a\nb\n');
    } finally {
      ws.cleanup();
    }
  });

  test('a waiting parent that holds the file and forks a writer meanwhile: the root is not stored', () => {
    // python3 holds log.1, starts pcache and waits for it (wait4: read back). A second later a
    // signal handler of its runs `echo X` in a child, which writes through the same
    // description: found when the region ends (the parent reaped a child), so the root's
    // stdout is not kept. The rerun runs it and prints only its own lines.
    const ws = createWorkspace();
    const parent =
      'import os, signal, subprocess, sys; ' +
      "signal.signal(signal.SIGALRM, lambda *a: os.system('echo X')); signal.alarm(1); " +
      'sys.exit(subprocess.call(sys.argv[1:]))';
    try {
      inShell(ws.base, `exec python3 -c "${parent}" $P sh -c 'echo a; sleep 2; echo b' > log.1 2> err.1`);
      expect(read(ws.base, 'log.1')).toBe('a\nX\nb\n');
      const stats = tracerStats(read(ws.base, 'err.1'));
      expect(stats.own_stdout_scan).toBe(1);
      expect(stats.readbacks).toBe(2);  // the root and sleep (whose region holds X)
      inShell(ws.base, `$P sh -c 'echo a; sleep 2; echo b' > log.2 2> err.2`);
      // Nothing was stored: sleep's region ended after the parent's child too. Both run.
      const again = tracerStats(read(ws.base, 'err.2'));
      expect(again.exec_skipped).toBeUndefined();
      expect(again.exec_requests).toBe(2);
      expect(read(ws.base, 'log.2')).toBe('a\nb\n');
    } finally {
      ws.cleanup();
    }
  });

  test('`echo x >&2` with stderr a log file: the bytes are the root\'s stderr, whatever its stdout', () => {
    // The shell writes them through fd 1 after dup2(2, 1); fd 2 stops, so fd 1 must too.
    const ws = createWorkspace();
    try {
      for (const out of ['/dev/null', 'log']) {
        for (const n of [1, 2]) inShell(ws.base, `$P sh -c 'echo x >&2; echo y' > ${out === 'log' ? `log.${n}` : out} 2> err.${out === 'log' ? 'l' : 'n'}${n}`);
        const tag = out === 'log' ? 'l' : 'n';
        expect(read(ws.base, `err.${tag}1`).startsWith('x\npcache: tracer stats:')).toBe(true);
        const second = read(ws.base, `err.${tag}2`);
        expect(second.startsWith('x\npcache: tracer stats:')).toBe(true);
        expect(tracerStats(second.slice(2)).exec_skipped).toBe(1);
      }
      expect(read(ws.base, 'log.2')).toBe('y\n');
    } finally {
      ws.cleanup();
    }
  });

  test('stdout and stderr on one file: pcache writes there itself, so every write stops', () => {
    const ws = createWorkspace();
    try {
      inShell(ws.base, `$P ${SEQ} > log.1 2>&1`);
      const text = read(ws.base, 'log.1');
      expect(text.startsWith(SEQ_OUT)).toBe(true);
      const stats = tracerStats(text.slice(SEQ_OUT.length));
      expect(stats.own_stdout_scan).toBeUndefined();
      expect(stats.readbacks ?? 0).toBe(0);
      expect(stats.stops_seccomp).toBeGreaterThan(40);
      // one stream is part of the key: the same arrangement skips
      inShell(ws.base, `$P ${SEQ} > log.2 2>&1`);
      const again = read(ws.base, 'log.2');
      expect(again.startsWith(SEQ_OUT)).toBe(true);
      expect(tracerStats(again.slice(SEQ_OUT.length)).exec_skipped).toBe(1);
    } finally {
      ws.cleanup();
    }
  });
});

describe('a file a step wrote whole as its stdout', () => {
  // `seq > a.txt` is read back at seq's end, from the file's start to its end with the file's
  // stat unchanged around the read: those bytes are a.txt, and their digest stands for it for
  // the rest of the run (and goes to the hash cache for later runs). sort's input a.txt and
  // the script's outputs a.txt and b.txt then have their digests without pcache reading them.
  test('its digest is the read-back\'s: not read again as the next step\'s input, nor as the script\'s output', () => {
    const ws = createWorkspace();
    try {
      fs.writeFileSync(path.join(ws.work, 'p.sh'), sh('seq 1 20000 > a.txt', 'sort -r a.txt > b.txt', 'touch c.txt'), { mode: 0o755 });
      const r = spawnSync(PCACHE, ['--cache-dir', ws.cache, '--quiet', '--', './p.sh'], { cwd: ws.work, env: BASE_ENV, stdio: 'ignore', timeout: 30000 });
      expect(r.status).toBe(0);
      const digest = (name: string): string => digestBytes(fs.readFileSync(path.join(ws.work, name)));
      const [runFile] = fs.readdirSync(path.join(ws.cache, 'runs'));
      const report = JSON.parse(fs.readFileSync(path.join(ws.cache, 'runs', runFile), 'utf8')) as {
        executions: Array<{ argv: string[]; inputs: Array<{ path: string; hash: string | null }>; outputs: Array<{ path: string; hash: string | null }> }>;
      };
      const ofStep = (word: string) => report.executions.find((e) => e.argv.some((a) => a.endsWith(word)))!;
      const at = (name: string): string => path.join(ws.work, name);
      expect(ofStep('sort').inputs.filter((i) => i.path === at('a.txt')).map((i) => i.hash)).toEqual([digest('a.txt')]);
      expect(ofStep('p.sh').outputs.filter((o) => o.path.startsWith(ws.work)).map((o) => [o.path, o.hash])).toEqual([
        [at('a.txt'), digest('a.txt')],
        [at('b.txt'), digest('b.txt')],
        [at('c.txt'), digest('c.txt')],
      ]);
      // The hash cache has a.txt's digest from seq's read-back, taken before sort wrote b.txt,
      // and b.txt's from sort's, before c.txt was touched; read again as sort's input or as
      // the script's outputs, their rows would be from after the script's last step.
      // (Where a change right after a stat may keep the stamp, no multigrain ctime, a fresh
      // file's digest is never kept: no rows at all.)
      const db = new Database(path.join(ws.cache, 'index.db'), { readonly: true });
      const rows = db.prepare('SELECT path, hashed_at_ns AS at FROM hash_cache WHERE path IN (?, ?) ORDER BY path').safeIntegers(true).all(at('a.txt'), at('b.txt')) as Array<{ path: string; at: bigint }>;
      db.close();
      const trusted = new FineGrainedCtime().has(ws.work, fs.statSync(ws.work, { bigint: true }).dev);
      expect(rows.map((x) => x.path)).toEqual(trusted ? [at('a.txt'), at('b.txt')] : []);
      if (trusted) {
        expect(rows[0].at).toBeLessThan(fs.statSync(at('b.txt'), { bigint: true }).mtimeNs);
        expect(rows[1].at).toBeLessThan(fs.statSync(at('c.txt'), { bigint: true }).mtimeNs);
      }
    } finally {
      ws.cleanup();
    }
  });
});
