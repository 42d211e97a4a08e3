// A step whose stdout is a pipe writes into a relay pipe of pcache's, which a thread copies
// on into the original pipe (native/src/relay.h): its writes do not stop the tracer. Each
// scenario compares pcache with a plain run from the same state (harness.ts); the last
// ones look at the mechanism itself (stops, what the record says).

import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { BASE_ENV, PCACHE, StdioKind, createWorkspace, expectIndistinguishable, expectSummary, runScenario, textOf, tracerStats } from './harness';

const sh = (...lines: string[]): string => ['#!/bin/sh', 'set -e', ...lines, ''].join('\n');

describe.each<[string, StdioKind]>([
  ['pcache on /dev/null', 'null'],
  ["pcache's stdout a file only it holds", 'alone'],
  ['pcache on a pipe', 'pipe'],
])('steps writing into pipes (%s)', (_name, stdio) => {
  /** p.sh runs `lines`, then `cat n.txt`; the change edits n.txt, so the re-run runs p.sh and replays what it can. */
  const withNChanged = (...lines: string[]) =>
    runScenario({
      files: { 'p.sh': sh(...lines, 'cat n.txt'), 'n.txt': 'n1\n' },
      first: { stdio },
      change: (w) => fs.writeFileSync(path.join(w, 'n.txt'), 'n2\n'),
    });

  test('a producer is replayed into the pipe its reader reads, byte for byte', async () => {
    // cat of big.txt is relayed and cached; sort reads a pipe from outside itself and runs
    // every time. After other.txt changes, p.sh and its copy run, cat is replayed.
    const big = Array.from({ length: 60000 }, (_, i) => `line ${(i * 7919) % 60000}\n`).join('');
    const r = await runScenario({
      files: {
        'p.sh': sh('cat big.txt | sort > sorted.txt', 'seq 1 3 | tr 1-3 a-c', 'cat other.txt > other.copy'),
        'big.txt': big,
        'other.txt': 'o1\n',
      },
      first: { stdio },
      change: (w) => fs.writeFileSync(path.join(w, 'other.txt'), 'o2\n'),
    });
    expectIndistinguishable(r.first);
    expect(r.first.cached.tree['sorted.txt']).toMatchObject({ type: 'file', size: big.length });
    expectIndistinguishable(r.rerun);
    // p.sh, sort, tr and the copy run; cat and seq are replayed into their pipes
    expectSummary(r.rerun.cached, { ran: 4, skipped: 2 });
  });

  test('readers that stop early, forked writers, exec chains and a non-blocking writer', async () => {
    const r = await withNChanged(
      'yes | head -n 3',
      'seq 1 100000 | head -n 2',
      "sh -c 'echo a; (echo b; echo c); seq 3; exec seq 2' | cat",
      '{ echo one; seq 4 5; } | cat',
      `/usr/bin/python3 -c "import os, fcntl; fcntl.fcntl(1, fcntl.F_SETFL, os.O_NONBLOCK); [os.write(1, b'x' * 1000) for i in range(3)]" | wc -c`,
    );
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
  });

  test('a writer that enlarges its pipe and exits while its reader waits: all of it is stored', async () => {
    // 2 MiB sit in the relay pipe (1 MiB, the most F_SETPIPE_SZ gives without
    // CAP_SYS_RESOURCE) and the relay's queue when the writer exits; the exit stop must read
    // what waits in the pipe and report every byte, or the replay after the change is short.
    const r = await withNChanged(
      `/usr/bin/python3 -c "import fcntl, os; fcntl.fcntl(1, 1031, 1 << 20); os.write(1, b'x' * (2 << 20))" | { sleep 1; wc -c > count.txt; }`,
    );
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    expect(textOf(r.rerun.cached.tree, 'count.txt')).toBe('2097152\n');
  });

  test('50 MB through a relayed pipe, then replayed into it', async () => {
    const r = await withNChanged('head -c 50000000 /dev/zero | tr "\\0" x | wc -c');
    expectIndistinguishable(r.first);
    expectIndistinguishable(r.rerun);
    // head is replayed into tr's pipe (tr and wc read pipes: they run)
    expectSummary(r.rerun.cached, { ran: 4, skipped: 1 });
  });
});

describe('the relay itself', () => {
  function traceStats(cmd: string, env: Record<string, string>): { stats: Record<string, number>; stdout: string } {
    const ws = createWorkspace();
    try {
      // pcache's stdout a file only it holds (read back), so the root stops on no write
      const out = path.join(ws.base, 'out');
      const r = spawnSync('/bin/sh', ['-c', 'exec "$@" > "$0"', out, PCACHE, '--cache-dir', path.join(ws.base, 'cache'), '--', '/bin/sh', '-c', cmd], {
        cwd: ws.work,
        env: { ...BASE_ENV, PCACHE_TRACER_STATS: '1', ...env },
        encoding: 'utf8',
      });
      expect(r.status).toBe(0);
      return { stats: tracerStats(r.stderr), stdout: fs.readFileSync(out, 'utf8') };
    } finally {
      ws.cleanup();
    }
  }

  test('a step writing into a pipe does not stop on its writes; without relays it does', () => {
    // seq writes 1,288,895 bytes in 4 KiB pieces: about 315 stops without the relay.
    const relayed = traceStats('seq 1 200000 | wc -l', {});
    expect(relayed.stdout).toBe('200000\n');
    expect(relayed.stats.relays).toBe(1);
    expect(relayed.stats.relayed_bytes).toBe(1288895);
    // the relay thread woke to read at most once per write, and at least once
    expect(relayed.stats.relay_reads).toBeGreaterThanOrEqual(1);
    expect(relayed.stats.relay_reads).toBeLessThanOrEqual(315);
    const stopped = traceStats('seq 1 200000 | wc -l', { PCACHE_RELAY: '0' });
    expect(stopped.stdout).toBe('200000\n');
    expect(stopped.stats.relays).toBeUndefined();
    expect(stopped.stats.stops_seccomp - relayed.stats.stops_seccomp).toBeGreaterThan(300);
  });

  /**
   * A python3 program: makes a pipe (r, w), runs `setup` on it, then forks a child that execs
   * a writer printing F_GETPIPE_SZ (1032) of its fd 1, the pipe, and prints what it read. The
   * parent closes its write end before the child execs (a relay needs the step to hold the
   * pipe alone), and tells the child so through a second pipe.
   */
  const pipeSizeParent = (setup: string[]): string =>
    [
      'import fcntl, os, sys',
      'r, w = os.pipe()',
      ...setup,
      'go_r, go_w = os.pipe()',
      'pid = os.fork()',
      'if pid == 0:',
      '    os.close(r); os.close(go_w); os.read(go_r, 1)',
      '    os.dup2(w, 1); os.close(w)',
      `    os.execv('/usr/bin/python3', ['python3', '-c', 'import fcntl; print(fcntl.fcntl(1, 1032))'])`,
      'os.close(w); os.close(go_r); os.write(go_w, b"x"); os.close(go_w)',
      'out = b""',
      'while True:',
      '    b = os.read(r, 4096)',
      '    if not b: break',
      '    out += b',
      'os.waitpid(pid, 0)',
      'sys.stdout.write(out.decode())',
    ].join('\n');

  test("a relayed step's pipe is as large as the original: F_GETPIPE_SZ says what it says without pcache", () => {
    // F_GETPIPE_SZ (1032) of fd 1, the relay pipe: the default 64 KiB, as the original's
    const getSize = `/usr/bin/python3 -c "import fcntl; print(fcntl.fcntl(1, 1032))"`;
    const relayed = traceStats(`${getSize} | cat`, {});
    expect(relayed.stats.relays).toBe(1);
    expect(relayed.stdout).toBe('65536\n');
    expect(traceStats(`${getSize} | cat`, { PCACHE_RELAY: '0' }).stdout).toBe('65536\n');
    // An original made 256 KiB (F_SETPIPE_SZ, 1031) before the writer's exec: the relay pipe
    // is made so too.
    const parent = pipeSizeParent(['fcntl.fcntl(w, 1031, 262144)']);
    const enlarged = traceStats('/usr/bin/python3 -c "$PARENT"', { PARENT: parent });
    expect(enlarged.stats.relays).toBe(1);
    expect(enlarged.stdout).toBe('262144\n');
  });

  test("where a relay pipe cannot be made the original's size, there is no relay: the writes stop, the size is the original's", () => {
    // Only an unprivileged user can be refused a pipe size (root is not held to the per-user
    // budget), so pcache runs as nobody here. The parent makes the original 1 MiB (allowed:
    // pipe-max-size), then, with HOG=1, makes pipes of 1 MiB until the kernel refuses one:
    // this user's pipe budget (pipe-user-pages-soft) is used up, and pcache, the same user,
    // cannot make its relay pipe 1 MiB either. Without HOG the same step is relayed.
    const parent = pipeSizeParent([
      'fcntl.fcntl(w, 1031, 1 << 20)',
      'hog = []',
      'while os.environ.get("HOG") == "1":',
      '    a, b = os.pipe()',
      '    hog += [a, b]',
      '    try:',
      '        fcntl.fcntl(b, 1031, 1 << 20)',
      '    except OSError:',
      '        break',
    ]);
    const ws = createWorkspace();
    try {
      fs.chmodSync(ws.base, 0o777);
      fs.chmodSync(ws.work, 0o777);
      const runAsNobody = (hog: string, n: number) => {
        const out = path.join(ws.base, `out-${hog}-${n}`);
        const r = spawnSync(
          '/usr/bin/setpriv',
          ['--reuid=65534', '--regid=65534', '--clear-groups', '/bin/sh', '-c', 'exec "$@" > "$0"', out, PCACHE, '--cache-dir', path.join(ws.base, `cache-${hog}`), '--', '/usr/bin/python3', '-c', parent],
          { cwd: ws.work, env: { ...BASE_ENV, HOME: ws.base, PCACHE_TRACER_STATS: '1', HOG: hog }, encoding: 'utf8' },
        );
        expect(r.stderr).not.toMatch(/Traceback|Error/);
        expect(r.status).toBe(0);
        return { stats: tracerStats(r.stderr), stdout: fs.readFileSync(out, 'utf8'), summary: r.stderr };
      };
      const relayed = runAsNobody('0', 1);
      expect(relayed.stdout).toBe('1048576\n');
      expect(relayed.stats.relays).toBe(1);
      const refused = runAsNobody('1', 1);
      expect(refused.stdout).toBe('1048576\n');
      expect(refused.stats.relays).toBeUndefined();
      expect(refused.stats.stdio_filters_added).toBeGreaterThanOrEqual(1);
      // What it wrote was captured through the stops all the same: the re-run replays it.
      const again = runAsNobody('1', 2);
      expect(again.stdout).toBe('1048576\n');
      expect(again.summary).toMatch(/0 ran, 1 skipped/);
    } finally {
      ws.cleanup();
    }
  });

  test('questions and answers through a relayed pipe: each answer goes on at once, not on the clock', () => {
    // bc answers each question on its relayed stdout and waits for the next, which comes
    // only once the shell has read the answer: read on a 1 ms clock, 1,000 turns took 1.2 s
    // instead of 0.2 s. A relay that carries this little is no stream: no ticks.
    const r = traceStats('printf \'coproc bc\\nfor i in $(seq 300); do echo "$i*2" >&${COPROC[1]}; read -r r <&${COPROC[0]}; done\\necho $r\\n\' > c.sh; bash c.sh', {});
    expect(r.stdout).toBe('600\n');
    expect(r.stats.relays).toBeGreaterThanOrEqual(1);
    expect(r.stats.relay_reads).toBeGreaterThanOrEqual(300);
    expect(r.stats.relay_ticks).toBeUndefined();
  });

  test('fast writers through two relays: the tracer reads only what waits in a relay pipe at an exit', () => {
    // The relay threads carry the stream. The tracer reads a relay pipe only at exit stops,
    // and then what is in it, not what a writer goes on writing meanwhile: reading on made
    // it carry the stream itself, into a queue shifted at each write onward (400 MB through
    // `head | tr | wc` took 9.3 s instead of 1.3 s).
    const r = traceStats(`head -c 50000000 /dev/zero | tr '\\0' x | wc -c`, {});
    expect(r.stdout).toBe('50000000\n');
    expect(r.stats.relays).toBe(2);
    expect(r.stats.relayed_bytes).toBe(100000000);
    // 4 exit stops (sh, head, tr, wc), 2 relay pipes of 64 KiB, a read of 64 KiB past each
    expect(r.stats.relay_bytes_read_at_exits ?? 0).toBeLessThanOrEqual(4 * 2 * ((1 << 16) + (1 << 16)));
  });

  test('the record names the original pipe, the one the reader reads, with every byte', () => {
    const ws = createWorkspace();
    const json = path.join(ws.base, 'trace.json');
    try {
      const r = spawnSync(PCACHE, ['trace', '--json', json, '--', '/bin/sh', '-c', "sh -c 'seq 3; exec seq 2' | cat; seq 1 50000 | wc -c"], {
        cwd: ws.work,
        env: BASE_ENV,
        encoding: 'utf8',
      });
      expect(r.status).toBe(0);
      const record = JSON.parse(fs.readFileSync(json, 'utf8')) as {
        executions: { argv: string[]; stdout: { kind: string; target: string; bytes: number }; uncacheable: string[] }[];
      };
      const byArgv = (...argv: string[]) => record.executions.find((e) => e.argv.join(' ') === argv.join(' '))!;
      const outer = byArgv('sh', '-c', 'seq 3; exec seq 2');
      expect(outer.stdout.kind).toBe('pipe');
      expect(outer.stdout.bytes).toBe(10);
      expect(outer.uncacheable).toEqual([]);
      expect(byArgv('seq', '3').stdout).toEqual({ ...outer.stdout, bytes: 6 });
      expect(byArgv('seq', '2').stdout).toEqual({ ...outer.stdout, bytes: 4 });
      const seq = byArgv('seq', '1', '50000');
      expect(seq.stdout.bytes).toBe(288894);
      expect(byArgv('wc', '-c').uncacheable).toEqual([`read stdin from a pipe outside the execution (${seq.stdout.target})`]);
    } finally {
      ws.cleanup();
    }
  });
});
