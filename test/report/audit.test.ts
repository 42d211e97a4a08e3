// pcache audit on real runs: a deterministic pipeline passes, steps that write a
// timestamp or a process id are caught with the first differing line, exit status 1.
// The clock reader is python, not date: date is known to read the clock and never cached.

import * as fs from 'fs';
import { createWorkspace, writeTree, type Workspace } from '../e2e/harness';
import { firstDifferentByte, firstDifferentLine } from '../../src/report/audit';
import { cachedRun, pcache } from './helpers';

let ws: Workspace;
beforeEach(() => {
  ws = createWorkspace();
});
afterEach(() => ws.cleanup());

const CLOCK = `python3 -c 'import time; print(time.time_ns())'`;
const sh = (...lines: string[]): string => ['#!/bin/sh', 'set -e', ...lines, ''].join('\n');

async function audit(cmd: string[]) {
  return pcache(ws, ['audit', '--cache-dir', ws.cache, '--', ...cmd]);
}

test('a deterministic pipeline reproduces every cached result: exit status 0', async () => {
  writeTree(ws.work, {
    'p.sh': sh('seq 1 20 > nums.txt', 'sort -rn nums.txt > rev.txt', 'head -n 3 rev.txt', 'wc -l < nums.txt > count.txt'),
  });
  expect((await cachedRun(ws, ['./p.sh'])).exitCode).toBe(0);
  const r = await audit(['./p.sh']);
  expect(r.stdout).toBe('20\n19\n18\n');
  expect(r.stderr).toBe(
    'audit: 5 executions: 5 reproduced their cached result, 0 nondeterministic, 0 uncacheable, 0 without a cached result for the same inputs\n',
  );
  expect(r.exitCode).toBe(0);
  // the audit ran everything again but left the cache as it was: a normal run still skips it all
  const again = await pcache(ws, ['--cache-dir', ws.cache, '--', './p.sh']);
  expect(again.stderr).toMatch(/^pcache: 1 execution: 0 ran, 1 skipped, 0 uncacheable;/);
});

test('steps writing a timestamp and a process id are nondeterministic: exit status 1', async () => {
  writeTree(ws.work, {
    'p.sh': sh('seq 1 5 > nums.txt', `${CLOCK} > stamp.txt`, "sh -c 'echo pid $$' > pid.txt", 'sort -r nums.txt > rev.txt'),
  });
  expect((await cachedRun(ws, ['./p.sh'])).exitCode).toBe(0);
  const r = await audit(['./p.sh']);
  expect(r.exitCode).toBe(1);
  const lines = r.stderr.split('\n');
  expect(lines.length).toBe(7);
  expect(lines[0]).toMatch(/^nondeterministic: #3 python3 -c .*time_ns.* \(cached entry \d+\)$/);
  expect(lines[1]).toMatch(/^ {2}stdout differs; line 1: "\d+" now, "\d+" cached$/);
  expect(lines[2]).toMatch(/^nondeterministic: #4 sh -c 'echo pid \$\$' \(cached entry \d+\)$/);
  expect(lines[3]).toMatch(/^ {2}stdout differs; line 1: "pid \d+" now, "pid \d+" cached$/);
  // the script differs only through its steps: said once, not as a culprit of its own
  expect(lines[4]).toBe('(#1 ./p.sh differs through #3, #4)');
  expect(lines[5]).toBe(
    'audit: 5 executions: 2 reproduced their cached result, 3 nondeterministic, 0 uncacheable, 0 without a cached result for the same inputs',
  );
  expect(lines[6]).toBe('');
  const [now, cached] = /line 1: "(\d+)" now, "(\d+)" cached/.exec(lines[1])!.slice(1);
  expect(now).not.toBe(cached);
});

test('binary output: the first differing byte', async () => {
  writeTree(ws.work, { 'p.sh': sh("printf 'pid\\0%s' $$ > bin.dat") });
  await cachedRun(ws, ['./p.sh']);
  const r = await audit(['./p.sh']);
  expect(r.exitCode).toBe(1);
  expect(r.stderr.split('\n').slice(0, 2)).toEqual([
    expect.stringMatching(/^nondeterministic: #1 \.\/p\.sh \(cached entry \d+\)$/),
    expect.stringMatching(/^ {2}bin\.dat: content differs; first at byte ([4-9]|1\d)$/),
  ]);
});

test('--json: the findings', async () => {
  writeTree(ws.work, { 'p.sh': sh(`${CLOCK} > n.txt`) });
  await cachedRun(ws, ['./p.sh']);
  const r = await pcache(ws, ['audit', '--cache-dir', ws.cache, '--json', `${ws.io}/audit.json`, '--', './p.sh']);
  expect(r.exitCode).toBe(1);
  const json = JSON.parse(fs.readFileSync(`${ws.io}/audit.json`, 'utf8'));
  expect(json.findings.map((f: { execution: number; differences: Array<{ what: string }> }) => [f.execution, f.differences.map((d) => d.what)])).toEqual([
    [1, ['output']],
    [2, ['stdout']],
  ]);
  expect(json.findings[0].explainedBy).toEqual([2]);
});

test('nothing cached yet: nothing to compare, the command status', async () => {
  writeTree(ws.work, { 'p.sh': sh('echo hi', 'exit 3') });
  const r = await audit(['./p.sh']);
  expect(r.stdout).toBe('hi\n');
  expect(r.stderr).toBe(
    'audit: 1 execution: 0 reproduced their cached result, 0 nondeterministic, 0 uncacheable, 1 without a cached result for the same inputs\n' +
      'audit: nothing to compare with; run the command under pcache first\n',
  );
  expect(r.exitCode).toBe(3);
});

test('usage: no command is a usage error', async () => {
  const r = await pcache(ws, ['audit', '--cache-dir', ws.cache]);
  expect([r.exitCode, r.stdout, r.stderr]).toEqual([2, '', 'pcache: no command given (usage: pcache audit [options] -- CMD ARGS...)\n']);
});

test('the first differing byte of two binaries', () => {
  const b = (s: string): Buffer => Buffer.from(s);
  expect(firstDifferentByte(b('\0abc'), b('\0abd'))).toBe(3);
  expect(firstDifferentByte(b('\0ab'), b('\0abc'))).toBe(3);
  expect(firstDifferentByte(b('\0ab'), b('\0ab'))).toBeUndefined();
  expect(firstDifferentByte(null, b('x'))).toBeUndefined();
});

test('the first differing line of two texts', () => {
  const b = (s: string): Buffer => Buffer.from(s);
  expect(firstDifferentLine(b('a\nb\nc\n'), b('a\nB\nc\n'))).toEqual({ line: 2, now: 'b', cached: 'B' });
  expect(firstDifferentLine(b('a\nb\n'), b('a\n'))).toEqual({ line: 2, now: 'b', cached: null });
  expect(firstDifferentLine(b('a\n'), b('a\n'))).toBeUndefined();
  expect(firstDifferentLine(b('a\0b'), b('a\0c'))).toBeUndefined();
  expect(firstDifferentLine(b('x'.repeat(150)), b('y'))).toEqual({ line: 1, now: `${'x'.repeat(97)}...`, cached: 'y' });
});
