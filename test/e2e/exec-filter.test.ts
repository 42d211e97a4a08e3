// The exec filter (session.ts ExecFilter, native/src/tracer.cc execSignature): an exec
// whose signature (exe path and argv) leads no entry's key runs without waiting for
// pcache's decision, its exit still held; one that may have an entry is asked. Entries
// published meanwhile, by this run or another on the same cache, are asked about from
// then on.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ExecRequest } from '../../src/trace/native';
import { runTraced } from '../../src/trace/session';
import { createWorkspace, expectSummary, runCached, textOf, tracerStats, writeTree } from './harness';

const sh = (...lines: string[]): string => ['#!/bin/sh', 'set -e', ...lines, ''].join('\n');

/** The documented signature, written out independently: FNV-1a 64 over path and argv, each ended by a zero byte. */
function fnv1a(path: string, argv: string[]): string {
  let h = 0xcbf29ce484222325n;
  for (const s of [path, ...argv]) {
    for (const b of [...Buffer.from(s), 0]) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}

describe('exec signatures and the filter, at the tracer', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-filter-')));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const trace = async (filter: string[] | undefined) => {
    const seen: ExecRequest[] = [];
    const exits: number[] = [];
    const r = await runTraced({
      argv: ['/bin/sh', '-c', '/bin/echo a > x; /bin/echo a > y; /bin/echo b > z'],
      file: '/bin/sh',
      env: ['PATH=/usr/bin:/bin'],
      cwd: dir,
      decideExec: async (req) => {
        seen.push(req);
        return { action: 'run', holdExit: true };
      },
      execFilter: filter === undefined ? undefined : { initial: filter, connect: () => undefined },
      onExitRequest: async (req) => {
        exits.push(req.pid);
      },
    });
    expect(r.exitCode).toBe(0);
    return { seen, exits };
  };

  test('an exec is known by its path and argv, as the documented FNV-1a digest', async () => {
    const { seen } = await trace(undefined);
    expect(seen.map((r) => r.argv)).toEqual([['/bin/sh', '-c', '/bin/echo a > x; /bin/echo a > y; /bin/echo b > z'], ['/bin/echo', 'a'], ['/bin/echo', 'a'], ['/bin/echo', 'b']]);
    for (const r of seen) expect(r.execSig).toBe(fnv1a(r.path, r.argv));
    expect(seen[1].execSig).toBe(seen[2].execSig);
    expect(seen[3].execSig).not.toBe(seen[1].execSig);
    // without a filter every exec waits for its decision
    expect(seen.map((r) => r.decided ?? false)).toEqual([false, false, false, false]);
  });

  test('only execs whose signature the filter holds are asked; the others run, their exits still held', async () => {
    const known = fnv1a(fs.realpathSync('/bin/echo'), ['/bin/echo', 'a']);
    const { seen, exits } = await trace([known, fnv1a('/bin/true', ['true'])]);
    expect(seen.map((r) => [r.argv.slice(1).join(' '), r.decided ?? false])).toEqual([
      ['-c /bin/echo a > x; /bin/echo a > y; /bin/echo b > z', true],
      ['a', false],
      ['a', false],
      ['b', true],
    ]);
    // every process that ran, asked or not, was held at its exit for the cache
    expect(exits.sort()).toEqual(seen.map((r) => r.tgid).sort());
  });
});

describe('the exec filter in pcache runs', () => {
  test('a cold run asks about nothing; a re-run asks about the known steps and replays them; a new step is not asked', async () => {
    const ws = createWorkspace();
    try {
      writeTree(ws.work, {
        'p.sh': sh('sort a.txt > a.out', 'sort b.txt > b.out'),
        'a.txt': 'y\nx\n',
        'b.txt': 'q\np\n',
      });
      const cold = await runCached(ws, { env: { PCACHE_TRACER_STATS: '1' } });
      expectSummary(cold, { total: 3, ran: 3, skipped: 0 });
      const coldStats = tracerStats(cold.stderr.toString());
      expect(coldStats.exec_decided_by_filter).toBe(3);
      expect(coldStats.held_exec_decisions).toBe(0);
      expect(coldStats.held_exits).toBe(3);

      // A new step (its argv is new) and a changed input: p.sh and the two sorts are asked
      // (b's is replayed, a's runs again), the new step is not.
      fs.writeFileSync(path.join(ws.work, 'p.sh'), sh('sort a.txt > a.out', 'sort b.txt > b.out', 'sort -r a.txt > r.out'));
      fs.writeFileSync(path.join(ws.work, 'a.txt'), 'z\nw\n');
      fs.rmSync(path.join(ws.work, 'b.out'));
      const warm = await runCached(ws, { env: { PCACHE_TRACER_STATS: '1' } });
      const warmStats = tracerStats(warm.stderr.toString());
      expect(warmStats.exec_decided_by_filter).toBe(1);
      expect(warmStats.held_exec_decisions).toBe(3);
      expectSummary(warm, { total: 4, ran: 3, skipped: 1 });
      expect([textOf(warm.tree, 'a.out'), textOf(warm.tree, 'b.out'), textOf(warm.tree, 'r.out')]).toEqual(['w\nz\n', 'p\nq\n', 'z\nw\n']);
    } finally {
      ws.cleanup();
    }
  });

  test('an entry another pcache run publishes while this one runs is found by this run', async () => {
    const ws = createWorkspace();
    try {
      // The first run waits for `go`, then long enough for the filter to have looked again
      // (SIG_REFRESH_MS is 1 s), then sorts: by then the second run has stored that sort.
      // (How many sleeps the wait takes varies: the summary is checked for the one skip.)
      writeTree(ws.work, {
        'p.sh': sh('while [ ! -e go ]; do sleep 0.05; done', 'sleep 2.5', 'sort in.txt > out.txt'),
        'q.sh': sh('sort in.txt > out.txt'),
        'in.txt': 'b\na\n',
      });
      const first = runCached(ws, { cmd: ['./p.sh'] });
      const second = await runCached(ws, { cmd: ['./q.sh'] });
      expectSummary(second, { total: 2, ran: 2, skipped: 0 });
      fs.writeFileSync(path.join(ws.work, 'go'), '');
      const done = await first;
      expect(done.exitCode).toBe(0);
      // p.sh and the sleeps ran; the sort was replayed from the second run's entry
      const n = done.summary?.executions;
      expect(n?.skipped).toBe(1);
      expect(n?.ran).toBe((n?.total ?? 0) - 1);
      expect(fs.readFileSync(path.join(ws.work, 'out.txt'), 'utf8')).toBe('a\nb\n');
    } finally {
      ws.cleanup();
    }
  });
});
