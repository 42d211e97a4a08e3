// Issue 4 end-to-end scenarios that lean on the store: two pcache runs at once
// on one cache directory, and a 50 MB output restored after deleting it.

import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import {
  BASE_ENV,
  PCACHE,
  copyTree,
  createWorkspace,
  expectIndistinguishable,
  expectSummary,
  runCached,
  runPlain,
  runScenario,
  textOf,
  tracerStats,
  writeTree,
  type Phase,
  type Workspace,
} from './harness';

const sh = (...lines: string[]): string => ['#!/bin/sh', 'set -e', ...lines, ''].join('\n');

/**
 * Like comparePhase, for several workspaces whose pcache runs happen at the
 * same time: snapshot all, run pcache in all concurrently, restore, run plain.
 */
async function concurrentPhase(spaces: Workspace[]): Promise<Phase[]> {
  for (const ws of spaces) copyTree(ws.work, ws.snapshot);
  const cached = await Promise.all(spaces.map((ws) => runCached(ws, {})));
  const phases: Phase[] = [];
  for (const [i, ws] of spaces.entries()) {
    copyTree(ws.snapshot, ws.work);
    fs.rmSync(ws.snapshot, { recursive: true, force: true });
    phases.push({ cached: cached[i], plain: await runPlain(ws, {}) });
  }
  return phases;
}

describe('several pcache runs at once on one cache directory', () => {
  // 23 executions: p.sh, 10 x sort, 10 x tr, cat, wc. out/ exists from the
  // start and holds only what the loop writes, so the glob reads the same
  // listing on every run (a glob over W itself would see all.txt on a re-run,
  // and a `mkdir -p out` would see out/ existing: real changes in what p.sh
  // observes, which need not be skipped).
  const pipeline = (tag: string) => ({
    'p.sh': sh(
      'for i in 0 1 2 3 4 5 6 7 8 9; do sort in$i.txt > out/sorted$i.txt; tr a-z A-Z < in$i.txt > out/upper$i.txt; done',
      'cat out/sorted*.txt > all.txt',
      'wc -l all.txt',
    ),
    out: { dir: true } as const,
    ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`in${i}.txt`, `${tag}${i}b\n${tag}${i}a\n`])),
  });

  test.each([2, 4])('cold, unchanged and changed runs of %i work dirs in parallel: all correct, no lock errors', async (n) => {
    const spaces = [createWorkspace()];
    for (let i = 1; i < n; i++) spaces.push(createWorkspace({ cache: spaces[0].cache }));
    try {
      spaces.forEach((ws, i) => writeTree(ws.work, pipeline(`w${i}-`)));

      // plain runs from the initial state, then all pcache runs at once on a cold cache
      const plains = [];
      for (const ws of spaces) {
        copyTree(ws.work, ws.snapshot);
        plains.push(await runPlain(ws, {}));
        copyTree(ws.snapshot, ws.work);
        fs.rmSync(ws.snapshot, { recursive: true });
      }
      const colds = await Promise.all(spaces.map((ws) => runCached(ws, {})));
      for (const [i, cold] of colds.entries()) {
        expectIndistinguishable({ plain: plains[i], cached: cold });
        expectSummary(cold, { total: 23, ran: 23, skipped: 0, uncacheable: 0 });
      }

      // nothing changed, all at once
      for (const phase of await concurrentPhase(spaces)) {
        expectIndistinguishable(phase);
        expectSummary(phase.cached, { total: 1, ran: 0, skipped: 1 });
      }

      // one input changed in each (a different one), all at once
      spaces.forEach((ws, i) => fs.writeFileSync(path.join(ws.work, `in${(3 + 2 * i) % 10}.txt`), `changed ${i}\n`));
      for (const phase of await concurrentPhase(spaces)) {
        expectIndistinguishable(phase);
        // p.sh, the sort and tr of the changed file, cat and wc ran; the 18 other steps were replayed
        expectSummary(phase.cached, { total: 23, ran: 5, skipped: 18 });
      }
    } finally {
      for (const ws of spaces) ws.cleanup();
    }
  });
});

describe('a 50 MB output', () => {
  test('deleted before the re-run: restored byte-identical by one skip', async () => {
    const r = await runScenario({
      files: {
        // a seeded generator: the same 50 MB (incompressible) every run. -I:
        // without it python lists its cwd (sys.path[0]), which holds big.sum
        // on a re-run but not on the first run, a real change it observes.
        'p.sh': sh(
          `python3 -I -c 'import random, sys; sys.stdout.buffer.write(random.Random(42).randbytes(50000000))' > big.bin`,
          'cksum big.bin > big.sum',
        ),
      },
      change: (w) => fs.rmSync(path.join(w, 'big.bin')),
    });
    expectIndistinguishable(r.first);
    expect(r.first.plain.tree['big.bin']).toMatchObject({ type: 'file', size: 50_000_000 });
    expectSummary(r.first.cached, { total: 3, ran: 3, skipped: 0 });
    expectIndistinguishable(r.rerun);
    expect(r.rerun.cached.tree['big.bin']).toMatchObject({ type: 'file', size: 50_000_000 });
    expectSummary(r.rerun.cached, { total: 1, ran: 0, skipped: 1 });
  });
});

/**
 * Runs `files` (whose p.sh ends reading x.txt) with `env`, changing x.txt between the runs;
 * also returns what the cache's tmp/ held after the first run.
 */
async function captureScenario(files: Record<string, string>, env: Record<string, string>): Promise<{ r: Awaited<ReturnType<typeof runScenario>>; leftovers: string[] }> {
  let leftovers: string[] = [];
  const r = await runScenario({
    files,
    first: { env },
    change: (w, ws) => {
      leftovers = fs.readdirSync(path.join(ws.cache, 'tmp'));
      fs.writeFileSync(path.join(w, 'x.txt'), 'x2\n');
    },
  });
  expectIndistinguishable(r.first);
  expectIndistinguishable(r.rerun);
  return { r, leftovers };
}

describe('captured streams past PCACHE_CAPTURE_MEMORY go to files', () => {
  // 1 MB through a pipe, 169 KB to the run's stdout and 109 KB to its stderr, each past the
  // 64 KiB allowed in memory here: captured in files under the cache's tmp/, stored from
  // there, removed, and replayed byte for byte.
  const files = {
    'p.sh': sh(
      `/usr/bin/python3 -c "import sys; sys.stdout.buffer.write(bytes(range(256)) * 4096)" | md5sum > sum.txt`,
      'seq 1 30000',
      'seq 1 20000 >&2',
      'cat x.txt > x.copy',
    ),
    'x.txt': 'x1\n',
  };
  const env = { PCACHE_CAPTURE_MEMORY: '65536' };

  test('replayed byte for byte, and no file left behind', async () => {
    const { r, leftovers } = await captureScenario(files, env);
    expect(leftovers).toEqual([]);
    expect(r.rerun.cached.stdout.length).toBe(168894);
    expect(r.rerun.cached.stderr.length).toBe(108894);
    // p.sh (x.txt changed), md5sum (its stdin a pipe from outside it) and cat run; python
    // and the two seqs are replayed from what went to files
    expectSummary(r.rerun.cached, { total: 6, ran: 3, skipped: 3 });
  });

  test('the spill is what happened', () => {
    const ws = createWorkspace();
    try {
      writeTree(ws.work, files);
      const r = spawnSync(PCACHE, ['--cache-dir', ws.cache, '--quiet', '--', './p.sh'], {
        cwd: ws.work,
        env: { ...BASE_ENV, ...env, PCACHE_TRACER_STATS: '1' },
        encoding: 'latin1',
        maxBuffer: 1 << 24,
      });
      expect(r.status).toBe(0);
      const stats = tracerStats(r.stderr);
      // python's stdout; each seq's stream and the same bytes again in p.sh's record
      expect(stats.captures_spilled).toBe(5);
      expect(fs.readdirSync(path.join(ws.cache, 'tmp'))).toEqual([]);
    } finally {
      ws.cleanup();
    }
  });
});

describe('a step that writes more than PCACHE_CAPTURE_MAX', () => {
  test('is not cached, keeps nothing, and the script around it still can be', async () => {
    // python writes 1 MB into the pipe: past the 100,000 bytes allowed, it runs every time
    // (its capture had gone to a file at 65,536 bytes: removed); seq is replayed.
    const env = { PCACHE_CAPTURE_MEMORY: '65536', PCACHE_CAPTURE_MAX: '100000' };
    const files = {
      'p.sh': sh(`/usr/bin/python3 -c "import sys; sys.stdout.buffer.write(bytes(range(256)) * 4096)" | md5sum > sum.txt`, 'seq 1 1000', 'cat x.txt > x.copy'),
      'x.txt': 'x1\n',
    };
    const { r, leftovers } = await captureScenario(files, env);
    expect(leftovers).toEqual([]);
    expect(textOf(r.rerun.cached.tree, 'sum.txt')).toBe(textOf(r.rerun.plain.tree, 'sum.txt'));
    // p.sh, python, md5sum and cat run; seq is replayed
    expectSummary(r.rerun.cached, { total: 5, ran: 4, skipped: 1 });
  });

  test('a limit above what one replay can read is refused', () => {
    const ws = createWorkspace();
    try {
      writeTree(ws.work, { 'p.sh': sh('touch ran') });
      const r = spawnSync(PCACHE, ['--cache-dir', ws.cache, '--', './p.sh'], {
        cwd: ws.work,
        env: { ...BASE_ENV, PCACHE_CAPTURE_MAX: '3000000000' },
        encoding: 'utf8',
      });
      expect(r.status).toBe(2);
      expect(r.stderr).toBe('pcache: PCACHE_CAPTURE_MAX can be at most 2147483647 bytes (one replay reads the stream whole), not 3000000000\n');
      expect(fs.existsSync(path.join(ws.work, 'ran'))).toBe(false);
    } finally {
      ws.cleanup();
    }
  });
});
