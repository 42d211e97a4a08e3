// Issue 4 end-to-end scenarios, process side: where stdout and stderr go
// (socket, pipe, file, terminal), exit statuses and signals, parallel steps,
// pipes, nondeterminism (/dev/urandom, the network), stdin, exec chains.
// Each run is compared with a plain run from the same state (see harness.ts).

import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import {
  expectIndistinguishable,
  expectSummary,
  runScenario,
  textOf,
  writeTree,
  type StdioKind,
} from './harness';

const sh = (...lines: string[]): string => ['#!/bin/sh', 'set -e', ...lines, ''].join('\n');

describe('stdout and stderr', () => {
  // interleaved writes from the script itself and from two steps, on both streams: 3 executions
  const STREAMS = {
    'p.sh': sh('echo out1', 'echo err1 >&2', 'sort in.txt', 'sort -r in.txt >&2', 'echo out2'),
    'in.txt': 'b\na\nc\n',
  };

  test.each(['socket', 'pipe', 'file', 'alone', 'tty'] as StdioKind[])('to a %s: replayed bytes equal a plain run', async (stdio) => {
    const r = await runScenario({ files: STREAMS, first: { stdio } });
    expectIndistinguishable(r.first);
    expectSummary(r.first.cached, { total: 3, ran: 3, skipped: 0 });
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
    if (stdio === 'tty') {
      // one terminal for both streams: the order of the writes is visible
      expect(r.rerun.cached.stdout.toString()).toBe('out1\r\nerr1\r\na\r\nb\r\nc\r\nc\r\nb\r\na\r\nout2\r\n');
    } else {
      expect(r.rerun.cached.stdout.toString()).toBe('out1\na\nb\nc\nout2\n');
      expect(r.rerun.cached.stderr.toString()).toBe('err1\nc\nb\na\n');
    }
  });

  // The open file status flags of fds 0-2 are shared with whoever passed them
  // in: a plain run sees the flags the caller set, and so must a traced one
  // (an O_NONBLOCK left on a pipe makes a plain `cat big` fail with EAGAIN).
  test.each(['socket', 'pipe', 'file', 'alone', 'tty'] as StdioKind[])('to a %s: fds 0-2 have the same status flags as in a plain run', async (stdio) => {
    const r = await runScenario({
      files: { 'p.sh': sh('for fd in 0 1 2; do sed -n "s/^flags:/fd $fd flags:/p" /proc/$$/fdinfo/$fd; done') },
      first: { stdio },
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
  });

  test('redirected to files by an outer shell (the shell is the execution root)', async () => {
    const r = await runScenario({ files: STREAMS, first: { cmd: ['/bin/sh', '-c', './p.sh > out.txt 2> err.txt'] } });
    expectIndistinguishable(r.first);
    expectSummary(r.first.cached, { total: 4, ran: 4, skipped: 0 });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'out.txt')).toBe('out1\na\nb\nc\nout2\n');
    expect(textOf(r.rerun.cached.tree, 'err.txt')).toBe('err1\nc\nb\na\n');
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
  });

  test('both streams into one file (2>&1), the outer shell re-runs and the script is replayed: write order kept', async () => {
    const r = await runScenario({
      files: { ...STREAMS, 'extra.txt': 'one\n' },
      first: { cmd: ['/bin/sh', '-c', './p.sh > log.txt 2>&1; cat extra.txt'] },
      change: (w) => fs.writeFileSync(path.join(w, 'extra.txt'), 'two\n'),
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'log.txt')).toBe('out1\nerr1\na\nb\nc\nc\nb\na\nout2\n');
    // the outer sh and cat ran, p.sh was replayed into the shared file
    expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1 });
  });

  test('into a file the outer shell already wrote to: the replay lands after what is there', async () => {
    const r = await runScenario({
      files: { ...STREAMS, 'extra.txt': 'one\n' },
      first: { cmd: ['/bin/sh', '-c', '{ echo header; ./p.sh; cat extra.txt; echo footer; } > out.txt 2> err.txt'] },
      change: (w) => fs.writeFileSync(path.join(w, 'extra.txt'), 'two\n'),
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'out.txt')).toBe('header\nout1\na\nb\nc\nout2\ntwo\nfooter\n');
    // the outer sh and cat ran, p.sh was replayed
    expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1 });
  });

  // ls prints one name per line to a pipe and columns to a terminal: whether
  // stdout is a terminal is observable, so a result recorded for one must not
  // be replayed into the other
  const LS = {
    'p.sh': sh('ls data'),
    ...Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`data/file-${i}.txt`, `${i}\n`])),
  };

  test('recorded with stdout to a pipe, re-run on a terminal', async () => {
    const r = await runScenario({ files: LS, first: { stdio: 'pipe' }, rerun: { stdio: 'tty' } });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
  });

  test('recorded on a terminal, re-run with stdout to a pipe', async () => {
    const r = await runScenario({ files: LS, first: { stdio: 'tty' }, rerun: { stdio: 'pipe' } });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
  });

  // ...and lays its columns out by the terminal's width (TIOCGWINSZ): a result recorded on
  // a narrow terminal must not be replayed onto a wide one
  test('recorded on a 40-column terminal, re-run on a 150-column one: ls runs again', async () => {
    const r = await runScenario({ files: LS, first: { stdio: 'tty', columns: 40 }, rerun: { stdio: 'tty', columns: 150 } });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(r.rerun.plain.stdout.toString()).not.toBe(r.first.plain.stdout.toString());
    // p.sh's stdout is that terminal too: both executions asked (ls for p.sh), both run
    expectSummary(r.rerun.cached, { total: 2, ran: 2, skipped: 0, uncacheable: 0 });
  });

  test('recorded and re-run on terminals of the same width: skipped', async () => {
    const r = await runScenario({ files: LS, first: { stdio: 'tty', columns: 40 }, rerun: { stdio: 'tty', columns: 40 } });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1, uncacheable: 0 });
  });

  test('stty sets the width ls then uses: stty runs every time, ls is replayed only at that width', async () => {
    const r = await runScenario({ files: { ...LS, 'p.sh': sh('stty cols 120', 'ls data') }, first: { stdio: 'tty', columns: 40 } });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    // p.sh and stty are uncacheable (they changed the terminal); ls, told 120 columns again, is replayed
    expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1, uncacheable: 2 });
  });

  test("a step's stderr on the terminal, its stdout to a file: a new width re-runs only what asked", async () => {
    const r = await runScenario({
      files: { ...LS, 'p.sh': sh('sort data/file-1.txt data/file-2.txt > sorted.txt', 'ls data') },
      first: { stdio: 'tty', columns: 40 },
      rerun: { stdio: 'tty', columns: 150 },
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    // sort never asked the terminal its size: replayed; p.sh and ls run
    expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1, uncacheable: 0 });
  });
});

// nproc, OpenMP and BLAS runtimes size themselves by the CPUs they may run on (a batch job's
// cpuset): the count is an input of whoever asks, checked against the new exec's own.
describe('the CPUs a step may run on', () => {
  const CPUS = { 'p.sh': sh('nproc > n.txt', 'cat d.txt > copy.txt'), 'd.txt': 'data\n' };

  test('recorded on one CPU, re-run on two: nproc runs again, cat is replayed', async () => {
    const r = await runScenario({ files: CPUS, first: { cpus: '0' }, rerun: { cpus: '0-1' } });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'n.txt')).toBe('2\n');
    expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1, uncacheable: 0 });
  });

  test('another CPU, the same count: nothing runs', async () => {
    const r = await runScenario({ files: CPUS, first: { cpus: '0' }, rerun: { cpus: '1' } });
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
  });

  test('a step that narrows its CPUs: each execution depends on the CPUs it started with', async () => {
    // nproc, after python narrowed the process to CPU 0, is the first to ask and is told 1;
    // the script around it started with 2, and that is what a lookup of the script can check
    const narrow = `/usr/bin/python3 -c "import os; os.sched_setaffinity(0, {0}); os.execv('/usr/bin/nproc', ['nproc'])"`;
    const r = await runScenario({
      files: { 'p.sh': sh(`${narrow} > one.txt`, 'nproc > all.txt') },
      first: { cpus: '0-1' },
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect([textOf(r.rerun.cached.tree, 'one.txt'), textOf(r.rerun.cached.tree, 'all.txt')]).toEqual(['1\n', '2\n']);
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
  });
});

describe('exit statuses and signals', () => {
  test('a non-zero exit status (grep without a match as the last step) is cached like any other', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('sort in.txt > sorted.txt', 'grep nomatch in.txt'), 'in.txt': 'b\na\n' },
    });
    expectIndistinguishable(r.first);
    expect(r.first.plain.exitCode).toBe(1);
    expectSummary(r.first.cached, { total: 3, ran: 3, skipped: 0, uncacheable: 0, exitCode: 1 });
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1, exitCode: 1 });
  });

  test('a failing step the script handles, and its own exit status', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh("sh -c 'exit 3' || echo \"step failed with $?\"", 'exit 5') },
    });
    expectIndistinguishable(r.first);
    expect(r.first.plain.exitCode).toBe(5);
    expect(r.first.plain.stdout.toString()).toBe('step failed with 3\n');
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1, exitCode: 5 });
  });

  test('a step killed by a signal is uncacheable and runs every time; its siblings are replayed', async () => {
    const r = await runScenario({
      files: {
        'p.sh': sh('sort in.txt > sorted.txt', "sh -c 'kill -9 $$' || echo \"step died: $?\"", 'echo after'),
        'in.txt': 'b\na\n',
      },
    });
    expectIndistinguishable(r.first);
    expect(r.first.plain.stdout.toString()).toBe('step died: 137\nafter\n');
    expectSummary(r.first.cached, { total: 3, ran: 3, skipped: 0, uncacheable: 2 });
    expectIndistinguishable(r.rerun);
    // p.sh (the death propagates) and the killed sh ran; sort was replayed
    expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1, uncacheable: 2 });
  });

  test('the command itself killed by a signal: pcache exits 128+N', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('sort in.txt > sorted.txt', 'echo before', 'kill -TERM $$'), 'in.txt': 'b\na\n' },
    });
    expectIndistinguishable(r.first);
    expect(r.first.plain.exitCode).toBe(143);
    expectSummary(r.first.cached, { total: 2, ran: 2, skipped: 0, uncacheable: 1, exitCode: 143 });
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 2, ran: 1, skipped: 1, uncacheable: 1, exitCode: 143 });
  });
});

describe('multi-threaded steps', () => {
  // A step that ends with other threads still there: its outputs are stored before its
  // caller goes on (which here appends to them at once), so a replay restores what the
  // step wrote and not what the caller made of it.
  const tool = path.resolve(__dirname, '../../fixtures/bin/exit_with_threads');
  for (const mode of ['main-returns', 'thread-exits', 'leader-leaves']) {
    test(`${mode}: the caller changes the output right after; the step is replayed as it wrote it`, async () => {
      const r = await runScenario({
        files: { 'p.sh': sh(`${tool} ${mode} out.txt`, 'echo appended >> out.txt') },
        change: (w) => fs.appendFileSync(path.join(w, 'p.sh'), '# changed\n'),
      });
      expectIndistinguishable(r.first);
      expectIndistinguishable(r.rerun);
      expect(textOf(r.rerun.cached.tree, 'out.txt')).toBe('from the tool\nappended\n');
      expectSummary(r.rerun.cached, { total: 2, ran: 1, skipped: 1, uncacheable: 0 });
    });
  }

  test('a step whose last thread moves the offset of a stdin file it shares with its caller runs every time', async () => {
    // The leader left by pthread_exit: the offset is read through the held thread's /proc entry.
    const r = await runScenario({
      files: {
        'p.sh': sh(`{ ${tool} leader-leaves-stdin out.txt; cat; } < in.txt > rest.txt`),
        'in.txt': 'abcdef\n',
      },
      change: (w) => fs.appendFileSync(path.join(w, 'p.sh'), '# changed\n'),
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'rest.txt')).toBe('def\n');
    // p.sh runs, the step runs (uncacheable), cat (stdin from offset 3 on) is replayed
    expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1, uncacheable: 1 });
  });
});

describe('parallel steps and pipes', () => {
  const PARALLEL = {
    // 11 executions: p.sh, xargs, 4 x sh -c, 4 x sort, cat
    'p.sh': sh(
      "printf '%s\\n' a b c d | xargs -P 4 -I{} sh -c 'sort {}.txt > {}.sorted'",
      'cat a.sorted b.sorted c.sorted d.sorted > all.sorted',
    ),
    'a.txt': 'a2\na1\n',
    'b.txt': 'b2\nb1\n',
    'c.txt': 'c2\nc1\n',
    'd.txt': 'd2\nd1\n',
  };

  test('xargs -P 4, nothing changed', async () => {
    const r = await runScenario({ files: PARALLEL });
    expectIndistinguishable(r.first);
    // xargs reads a pipe its parent made: uncacheable itself, p.sh is not
    expectSummary(r.first.cached, { total: 11, ran: 11, skipped: 0, uncacheable: 1 });
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1, uncacheable: 0 });
  });

  test('xargs -P 4, one of the four inputs changed: only its step runs', async () => {
    const r = await runScenario({ files: PARALLEL, change: (w) => fs.writeFileSync(path.join(w, 'b.txt'), 'b4\nb3\n') });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'all.sorted')).toBe('a1\na2\nb3\nb4\nc1\nc2\nd1\nd2\n');
    // ran: p.sh, xargs, sh -c for b, its sort, cat; replayed: the three other sh -c
    expectSummary(r.rerun.cached, { total: 8, ran: 5, skipped: 3, uncacheable: 1 });
  });

  const PIPES = {
    // 6 executions: p.sh, cat, tr, sort, wc, sort
    'p.sh': sh('cat a.txt | tr a-z A-Z | sort > b.txt', 'wc -l < a.txt > n.txt', 'sort other.txt > other.sorted'),
    'a.txt': 'pear\napple\n',
    'other.txt': 'y\nx\n',
  };

  test('a pipe inside the script, nothing changed', async () => {
    const r = await runScenario({ files: PIPES });
    expectIndistinguishable(r.first);
    // tr and sort read pipes made by p.sh: uncacheable themselves, p.sh is not
    expectSummary(r.first.cached, { total: 6, ran: 6, skipped: 0, uncacheable: 2 });
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1, uncacheable: 0 });
  });

  test('a pipe inside the script, its first input changed', async () => {
    const r = await runScenario({ files: PIPES, change: (w) => fs.writeFileSync(path.join(w, 'a.txt'), 'plum\nkiwi\nfig\n') });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'b.txt')).toBe('FIG\nKIWI\nPLUM\n');
    // everything on the pipe and wc ran; sort other.txt was replayed
    expectSummary(r.rerun.cached, { total: 6, ran: 5, skipped: 1, uncacheable: 2 });
  });
});

describe('nondeterminism', () => {
  test('/dev/urandom: the step reading it runs every time and produces new bytes; everything else matches', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('head -c 16 /dev/urandom | od -An -tx1 > rand.txt', 'sort in.txt > sorted.txt'), 'in.txt': 'b\na\n' },
    });
    const format = /^( [0-9a-f]{2}){16}\n$/;
    expectIndistinguishable(r.first, ['rand.txt']);
    expectSummary(r.first.cached, { total: 4, ran: 4, skipped: 0, uncacheable: 3 });
    expectIndistinguishable(r.rerun, ['rand.txt']);
    const before = textOf(r.first.cached.tree, 'rand.txt');
    const after = textOf(r.rerun.cached.tree, 'rand.txt');
    expect(before).toMatch(format);
    expect(after).toMatch(format);
    expect(after).not.toBe(before);
    // p.sh, head and od ran (head read /dev/urandom, od reads its pipe); sort was replayed
    expectSummary(r.rerun.cached, { total: 4, ran: 3, skipped: 1, uncacheable: 3 });
  });

  const CONNECT = sh(
    'sort in.txt > sorted.txt',
    `python3 -I -c 'import os, socket; s = socket.create_connection(("127.0.0.1", int(os.environ["PORT"]))); print(s.recv(64).decode(), end="")' > net.txt`,
  );

  test('a network connection to a local server: uncacheable, it connects every time', async () => {
    let connections = 0;
    const server = net.createServer((socket) => {
      connections++;
      socket.end('hello from the server\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const r = await runScenario({ files: { 'p.sh': CONNECT, 'in.txt': 'b\na\n' }, first: { env: { PORT: String(port) } } });
      expectIndistinguishable(r.first);
      expectSummary(r.first.cached, { total: 3, ran: 3, skipped: 0, uncacheable: 2 });
      expectIndistinguishable(r.rerun);
      expect(textOf(r.rerun.cached.tree, 'net.txt')).toBe('hello from the server\n');
      expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1, uncacheable: 2 });
      // four runs (plain and pcache, twice), four connections
      expect(connections).toBe(4);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a connection attempt to a closed port is uncacheable too', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const r = await runScenario({
      files: {
        'p.sh': sh(
          'sort in.txt > sorted.txt',
          `python3 -I -c 'import os, socket; print(socket.socket().connect_ex(("127.0.0.1", int(os.environ["PORT"]))))' > net.txt`,
        ),
        'in.txt': 'b\na\n',
      },
      first: { env: { PORT: String(port) } },
    });
    expectIndistinguishable(r.first);
    expect(textOf(r.first.plain.tree, 'net.txt')).toBe('111\n');
    expectSummary(r.first.cached, { total: 3, ran: 3, skipped: 0, uncacheable: 2 });
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1, uncacheable: 2 });
  });
});

describe('stdin', () => {
  // 3 executions: p.sh (read is a builtin), sort of the rest of stdin, sort other.txt
  const READER = sh('read first', 'echo "first line: $first" > first.txt', 'sort > rest.sorted', 'sort other.txt > other.sorted');

  test('stdin redirected from a file by an outer shell, nothing changed', async () => {
    const r = await runScenario({
      files: { 'p.sh': READER, 'input.txt': 'one\nz\ny\n', 'other.txt': 'b\na\n' },
      first: { cmd: ['/bin/sh', '-c', './p.sh < input.txt'] },
    });
    expectIndistinguishable(r.first);
    // (whether p.sh and sort, which move the offset of a file description
    // their caller shares, are uncacheable themselves is the implementation's call)
    expectSummary(r.first.cached, { total: 4, ran: 4, skipped: 0 });
    expectIndistinguishable(r.rerun);
    // the outer sh opened input.txt itself: nothing outside it sees the offset
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
  });

  test('stdin redirected from a file by an outer shell, the file changed', async () => {
    const r = await runScenario({
      files: { 'p.sh': READER, 'input.txt': 'one\nz\ny\n', 'other.txt': 'b\na\n' },
      first: { cmd: ['/bin/sh', '-c', './p.sh < input.txt'] },
      change: (w) => fs.writeFileSync(path.join(w, 'input.txt'), 'two\nx\nw\n'),
    });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'first.txt')).toBe('first line: two\n');
    expect(textOf(r.rerun.cached.tree, 'rest.sorted')).toBe('w\nx\n');
    expectSummary(r.rerun.cached, { total: 4, ran: 3, skipped: 1 });
  });

  test('stdin a file inherited from outside pcache, the file changed', async () => {
    const r = await runScenario({
      files: { 'p.sh': READER, 'other.txt': 'b\na\n' },
      setup: (_w, ws) => writeTree(ws.io, { 'stdin.txt': 'one\nz\ny\n' }),
      first: { stdin: { file: 'stdin.txt' } },
      change: (_w, ws) => fs.writeFileSync(path.join(ws.io, 'stdin.txt'), 'two\nx\nw\n'),
    });
    expectIndistinguishable(r.first);
    // (p.sh moves the offset of a file description the caller of pcache shares:
    // running it every time is a legitimate choice, so uncacheable is not pinned)
    expectSummary(r.first.cached, { total: 3, ran: 3, skipped: 0 });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'first.txt')).toBe('first line: two\n');
    expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1 });
  });

  test('stdin a pipe from outside pcache: the steps reading it run every time', async () => {
    const r = await runScenario({
      files: { 'p.sh': READER, 'other.txt': 'b\na\n' },
      first: { stdin: { pipe: 'one\nz\ny\n' } },
      rerun: { stdin: { pipe: 'two\nx\nw\n' } },
    });
    expectIndistinguishable(r.first);
    expectSummary(r.first.cached, { total: 3, ran: 3, skipped: 0, uncacheable: 2 });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'first.txt')).toBe('first line: two\n');
    expect(textOf(r.rerun.cached.tree, 'rest.sorted')).toBe('w\nx\n');
    // p.sh (read) and sort (the rest) read the outside pipe; sort other.txt was replayed
    expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1, uncacheable: 2 });
  });

  test('stdin a pipe inside the command (cat data.txt | ./p.sh), the data changed', async () => {
    const r = await runScenario({
      files: { 'p.sh': READER, 'data.txt': 'one\nz\ny\n', 'other.txt': 'b\na\n' },
      first: { cmd: ['/bin/sh', '-c', 'cat data.txt | ./p.sh'] },
      change: (w) => fs.writeFileSync(path.join(w, 'data.txt'), 'two\nx\nw\n'),
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'first.txt')).toBe('first line: two\n');
  });
});

// Read stops on fd 0 are only where a step execs with the stdin it inherited; a step whose
// process redirected its stdin (`a | b`, bash's `b < f`) is judged at its exec instead.
describe('stdin judged at exec', () => {
  test("bash's `tr < in.txt`: a changed input re-runs the step", async () => {
    const r = await runScenario({
      files: { 'p.sh': ['#!/bin/bash', 'tr a-z A-Z < in.txt > up.txt', 'sort other.txt > other.sorted', ''].join('\n'), 'in.txt': 'abc\n', 'other.txt': 'b\na\n' },
      first: { cmd: ['./p.sh', 'one'] },
      change: (w) => fs.writeFileSync(path.join(w, 'in.txt'), 'xyz\n'),
      rerun: { cmd: ['./p.sh', 'two'] },
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'up.txt')).toBe('XYZ\n');
    // p.sh (its argv) and tr (its stdin's content) run; sort is replayed
    expectSummary(r.rerun.cached, { total: 3, ran: 2, skipped: 1, uncacheable: 0 });
  });

  test('steps in the body of `... | while read` that do not read stdin are replayed', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh(`printf '1\\n2\\n' | while read v; do sort other.txt > "o$v.txt"; done`, 'echo "$1" > arg.txt'), 'other.txt': 'b\na\n' },
      first: { cmd: ['./p.sh', 'one'] },
      rerun: { cmd: ['./p.sh', 'two'] },
    });
    expectIndistinguishable(r.first);
    expect(textOf(r.first.plain.tree, 'o2.txt')).toBe('a\nb\n');
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 3, ran: 1, skipped: 2, uncacheable: 0 });
  });

  test('a step fed by a pipe of the script: the data changed', async () => {
    const r = await runScenario({
      files: { 'p.sh': sh('cat data.txt | sort -r > rev.txt', 'cat data.txt | sort other.txt > other.sorted'), 'data.txt': 'a\nc\nb\n', 'other.txt': 'b\na\n' },
      change: (w) => fs.writeFileSync(path.join(w, 'data.txt'), 'x\nz\ny\n'),
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'rev.txt')).toBe('z\ny\nx\n');
  });
});

describe('streams on fd 3 and above', () => {
  test('a step reading a pipe of the script on fd 3: the data changed', async () => {
    const r = await runScenario({
      files: {
        'p.sh': sh(`cat data.txt | { /usr/bin/python3 -c 'import os, sys; sys.stdout.write(os.read(3, 100).decode())' 3<&0 </dev/null > got.txt; }`),
        'data.txt': 'one\n',
      },
      change: (w) => fs.writeFileSync(path.join(w, 'data.txt'), 'two\n'),
    });
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'got.txt')).toBe('two\n');
  });
});

describe('exec chains', () => {
  const CHAIN = {
    // 6 executions: p.sh, sort, env, sh, printenv, tr (p.sh's process execs env, env execs sh, sh execs tr)
    'p.sh': sh(
      'sort in.txt > sorted.txt',
      "exec env GREETING=hi sh -c 'printenv GREETING > g.txt; exec tr a-z A-Z < in.txt > upper.txt'",
    ),
    'in.txt': 'b\na\n',
  };

  test('exec env X=1 cmd, nothing changed', async () => {
    const r = await runScenario({ files: CHAIN });
    expectIndistinguishable(r.first);
    expectSummary(r.first.cached, { total: 6, ran: 6, skipped: 0, uncacheable: 0 });
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
  });

  test('exec env X=1 cmd, the input changed: every link of the chain runs, printenv is replayed', async () => {
    const r = await runScenario({ files: CHAIN, change: (w) => fs.writeFileSync(path.join(w, 'in.txt'), 'd\nc\n') });
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'upper.txt')).toBe('D\nC\n');
    expect(textOf(r.rerun.cached.tree, 'g.txt')).toBe('hi\n');
    expectSummary(r.rerun.cached, { total: 6, ran: 5, skipped: 1 });
  });
});
