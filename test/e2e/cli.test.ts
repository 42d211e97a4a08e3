// The `pcache [run]` command-line contract of issue 4, end to end: exit
// statuses, one-line errors, the summary line, the `run` spelling, --no-skip.

import * as fs from 'fs';
import * as path from 'path';
import {
  comparePhase,
  createWorkspace,
  expectIndistinguishable,
  expectSummary,
  PCACHE,
  runArgv,
  runCached,
  writeTree,
  type Workspace,
} from './harness';

const sh = (...lines: string[]): string => ['#!/bin/sh', 'set -e', ...lines, ''].join('\n');

let ws: Workspace;
beforeEach(() => {
  ws = createWorkspace();
});
afterEach(() => ws.cleanup());

/** Runs `node bin/pcache ARGS` (no flags added) in W. */
function pcache(args: string[]) {
  return runArgv([process.execPath, PCACHE, ...args], ws.work, ws.io, {});
}

/** One line: text ending in a single newline, with `pcache` in it. */
function expectOneLineError(stderr: Buffer): void {
  const text = stderr.toString();
  expect(text).toMatch(/^[^\n]+\n$/);
  expect(text).toMatch(/pcache/);
}

describe('exit status', () => {
  test("is the command's, with and without the `run` subcommand", async () => {
    writeTree(ws.work, { 'p.sh': sh('exit 7') });
    expect((await runCached(ws, {})).exitCode).toBe(7);
    expect((await runCached(ws, {}, { runSubcommand: true })).exitCode).toBe(7);
  });

  test('a command that does not exist: 127 and one line', async () => {
    const missing = await runCached(ws, { cmd: ['./no-such-script'] });
    expect(missing.exitCode).toBe(127);
    expectOneLineError(missing.stderr);
    expect(missing.stderr.toString()).toContain('no-such-script');
    const notOnPath = await runCached(ws, { cmd: ['no-such-command-pcache-e2e'] });
    expect(notOnPath.exitCode).toBe(127);
    expectOneLineError(notOnPath.stderr);
    expect(notOnPath.stderr.toString()).toContain('no-such-command-pcache-e2e');
  });
});

describe('usage errors', () => {
  test('an unknown flag: one line, non-zero, the command does not run', async () => {
    const r = await pcache(['--cache-dir', ws.cache, '--no-such-flag', '--', '/bin/sh', '-c', 'touch ran']);
    expect(r.exitCode).not.toBe(0);
    expectOneLineError(r.stderr);
    expect(fs.existsSync(path.join(ws.work, 'ran'))).toBe(false);
  });

  test('an unusable cache directory (a regular file): one line, non-zero', async () => {
    const file = path.join(ws.io, 'not-a-dir');
    fs.writeFileSync(file, 'x');
    const r = await pcache(['--cache-dir', file, '--', '/bin/sh', '-c', 'exit 0']);
    expect(r.exitCode).not.toBe(0);
    expectOneLineError(r.stderr);
  });
});

describe('summary', () => {
  test('without --quiet, stderr is the command\'s followed by exactly one summary line', async () => {
    writeTree(ws.work, { 'p.sh': sh('echo to-stderr >&2', 'echo to-stdout') });
    const quiet = await runCached(ws, {});
    const loud = await runCached(ws, {}, { verbose: true });
    expect(quiet.stderr.toString()).toBe('to-stderr\n');
    expect(loud.stdout.toString()).toBe('to-stdout\n');
    const text = loud.stderr.toString();
    expect(text.startsWith('to-stderr\n')).toBe(true);
    expect(text.slice('to-stderr\n'.length)).toMatch(/^[^\n]+\n$/);
  });

  test('--summary-json has the documented shape', async () => {
    writeTree(ws.work, { 'p.sh': sh('sort in.txt'), 'in.txt': 'a\n' });
    const r = await runCached(ws, {});
    expect(r.summary).not.toBeNull();
    const s = r.summary!;
    expect(Object.keys(s).sort()).toEqual(['executions', 'exitCode', 'savedSeconds', 'wallSeconds']);
    expect(Object.keys(s.executions).sort()).toEqual(['ran', 'skipped', 'total', 'uncacheable']);
    expect(s.wallSeconds).toBeGreaterThan(0);
    expect(s.savedSeconds).toBe(0); // nothing was replayed
    expectSummary(r, { total: 2, ran: 2, skipped: 0, uncacheable: 0, exitCode: 0 });
  });
});

describe('--no-skip', () => {
  test('records but never skips; what it recorded is skipped by a later run', async () => {
    writeTree(ws.work, {
      'p.sh': sh('sort in.txt > sorted.txt', 'tr a-z A-Z < in.txt > upper.txt', 'echo done'),
      'in.txt': 'b\na\n',
    });
    const first = await comparePhase(ws, {}, true, { flags: ['--no-skip'] });
    expectIndistinguishable(first);
    expectSummary(first.cached, { total: 3, ran: 3, skipped: 0 });
    const again = await comparePhase(ws, {}, false, { flags: ['--no-skip'] });
    expectIndistinguishable(again);
    expectSummary(again.cached, { total: 3, ran: 3, skipped: 0 });
    const normal = await comparePhase(ws, {}, false);
    expectIndistinguishable(normal);
    expectSummary(normal.cached, { total: 1, ran: 0, skipped: 1 });
  });
});

describe('programs pcache cannot run as a plain run would', () => {
  test('a set-user-ID program that would change identity: a warning every run, and never stored', async () => {
    const prog = path.join(ws.work, 'suid-true');
    fs.copyFileSync('/bin/true', prog);
    fs.chownSync(prog, 65534, 65534);
    fs.chmodSync(prog, 0o4755);
    writeTree(ws.work, { 'p.sh': sh('./suid-true') });
    for (let run = 0; run < 2; run++) {
      const r = await pcache(['--cache-dir', ws.cache, '--', './p.sh']);
      expect(r.exitCode).toBe(0);
      const err = r.stderr.toString();
      expect(err).toContain(`pcache: warning: ${prog} is set-user-ID: traced, it runs without that privilege, unlike a plain run\n`);
      // the script too: its record covers the program
      expect(err).toContain('pcache: 2 executions: 2 ran, 0 skipped, 2 uncacheable');
    }
  });
});

describe('timestamps of outputs a hit leaves in place', () => {
  test('not older than an input touched since (a real run writes them now); otherwise kept', async () => {
    writeTree(ws.work, { 'p.sh': sh('sort in.txt > out.txt'), 'in.txt': 'b\na\n' });
    const out = path.join(ws.work, 'out.txt');
    const inp = path.join(ws.work, 'in.txt');
    expect((await pcache(['--cache-dir', ws.cache, '--', './p.sh'])).exitCode).toBe(0);
    fs.utimesSync(out, new Date('2001-01-01T00:00:00Z'), new Date('2001-01-01T00:00:00Z'));
    fs.utimesSync(inp, new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
    const touched = await pcache(['--cache-dir', ws.cache, '--', './p.sh']);
    expect(touched.stderr.toString()).toContain('1 execution: 0 ran, 1 skipped');
    expect(fs.readFileSync(out, 'utf8')).toBe('a\nb\n');
    expect(fs.statSync(out).mtimeMs).toBeGreaterThan(Date.parse('2020-01-01T00:00:00Z'));
    // Already newer than every input: left exactly as it is.
    const before = fs.statSync(out, { bigint: true }).mtimeNs;
    const again = await pcache(['--cache-dir', ws.cache, '--', './p.sh']);
    expect(again.stderr.toString()).toContain('1 execution: 0 ran, 1 skipped');
    expect(fs.statSync(out, { bigint: true }).mtimeNs).toBe(before);
  });
});
