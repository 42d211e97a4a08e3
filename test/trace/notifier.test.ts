// The seccomp listener (native/src/notifier.h) takes the calls that only need looking at
// (read-only opens, stat, access, readlink) off ptrace. It must change what a run costs,
// never what it records: every test here runs the same command with the listener and with
// PCACHE_NOTIFY=0 (ptrace stops only, what a kernel before 6.6 gets) and compares.

import * as fs from 'fs';
import * as path from 'path';
import { cleanTempDirs, inputsIn, outputsIn, recordProblems, tempDir, traceRun, writeFiles, TraceRun } from './helpers';
import { expectIndistinguishable, expectSummary, runScenario, textOf, tracerStats, ScenarioResult } from '../e2e/harness';
import type { ExecutionRecord } from '../../src/trace/record';

afterAll(cleanTempDirs);

const ENV = { PATH: '/usr/bin:/bin', LC_ALL: 'C', PCACHE_TRACER_STATS: '1' };

function traceBoth(files: Record<string, string>, script: string): { notify: TraceRun; ptrace: TraceRun; dirs: [string, string] } {
  const runIn = (notify: string): [TraceRun, string] => {
    const dir = tempDir('pcache-notify-');
    writeFiles(dir, files);
    const r = traceRun(['/bin/sh', '-c', script], { cwd: dir, env: { ...ENV, PCACHE_NOTIFY: notify } });
    expect(recordProblems(r.record)).toEqual([]);
    expect(r.status).toBe(0);
    return [r, dir];
  };
  const [notify, d1] = runIn('1');
  const [ptrace, d2] = runIn('0');
  return { notify, ptrace, dirs: [d1, d2] };
}

/** Each execution by argv, with what it read and wrote under its run's directory (paths relative). */
function shape(r: TraceRun, dir: string): Array<{ argv: string; inputs: Record<string, string>; outputs: Record<string, string>; uncacheable: string[] }> {
  return r.record.executions
    .slice()
    .sort((a, b) => a.id - b.id)
    .map((e: ExecutionRecord) => ({
      argv: e.argv.join(' '),
      inputs: inputsIn(e, dir),
      outputs: outputsIn(e, dir),
      uncacheable: e.uncacheable.map((u) => u.split(dir).join('<dir>')),
    }));
}

/** Inputs outside the run's directory (libraries, locale files ...), by path and kind. */
function systemInputs(r: TraceRun, dir: string): string[] {
  const out = new Set<string>();
  for (const e of r.record.executions) for (const i of e.inputs) if (!i.path.startsWith(dir + '/') && i.path !== dir) out.add(`${i.kind} ${i.path}`);
  return [...out].sort();
}

describe('the seccomp listener records what ptrace stops record', () => {
  test('reads, probes, symlinks, relative paths and writes: the same record either way, most stops on the listener', () => {
    const files = { 'in/a.txt': 'alpha\n', 'in/b.txt': 'beta\n', 'sub/x': 'x\n' };
    const script = [
      'ln -s in/a.txt link',
      'cat link in/b.txt > out1', // read-only opens through a symlink, a write-open on ptrace
      'cd sub && cat ../in/a.txt x > ../out2 && cd ..', // relative paths with ..
      'test -e absent || echo no > out3', // an absent probe (stat)
      'test -r in/b.txt && readlink link > out4', // access, readlink
      'ls in > out5', // a listing
      "python3 -c \"import os; d = os.open('in', os.O_RDONLY); os.stat('a.txt', dir_fd=d); open(os.path.join('in', 'b.txt')).read(); os.access('nope', os.R_OK, dir_fd=d)\"",
      'cat in/a.txt >> out1',
      'echo t > t1 && mv t1 t2', // a rename on ptrace of a file nothing else touches
    ].join('; ');
    const { notify, ptrace, dirs } = traceBoth(files, script);
    expect(shape(notify, dirs[0])).toEqual(shape(ptrace, dirs[1]));
    expect(systemInputs(notify, dirs[0])).toEqual(systemInputs(ptrace, dirs[1]));
    // and the record is the one expected, not merely the same twice
    const cat = shape(notify, dirs[0]).find((e) => e.argv === 'cat link in/b.txt');
    expect(cat?.inputs).toEqual({ 'in/a.txt': 'content', 'in/b.txt': 'content', link: 'metadata' });
    const py = shape(notify, dirs[0]).find((e) => e.argv.startsWith('python3'));
    expect(py?.inputs).toEqual({ in: 'metadata', 'in/a.txt': 'metadata', 'in/b.txt': 'content', 'in/nope': 'absent' });

    const withListener = tracerStats(notify.stderr);
    const withoutListener = tracerStats(ptrace.stderr);
    expect(withListener.notify_sync).toBe(1);
    expect(withListener.stops_notify).toBeGreaterThan(100);
    expect(withoutListener.stops_notify).toBeUndefined();
    // what moved to the listener is what ptrace no longer stops for
    expect(withListener.stops_seccomp + withListener.stops_notify).toBe(withoutListener.stops_seccomp);
    expect(withListener.stops_seccomp).toBeLessThan(withoutListener.stops_seccomp / 2);
  });

  test('a directory renamed and replaced by a symlink between two reads: the second walk follows the link', () => {
    // The listener remembers directories it walked through; a rename on ptrace must make
    // it forget them, or cat's path would miss the symlink it crosses. Only cat's record is
    // compared: `pcache trace` holds no exit, so it looks at what mv and the shell read and
    // wrote only once they are gone, by when later steps may have changed those paths (the
    // same in both modes, but not at the same moment).
    const files = { 'a/b/f': 'one\n' };
    const script = 'read x < a/b/f; mv a c; mkdir a; ln -s ../c/b a/b; cat a/b/f > o2';
    const { notify, ptrace, dirs } = traceBoth(files, script);
    const catOf = (r: TraceRun, dir: string) => shape(r, dir).filter((e) => e.argv === 'cat a/b/f');
    expect(catOf(notify, dirs[0])).toEqual(catOf(ptrace, dirs[1]));
    expect(catOf(notify, dirs[0]).map((e) => e.inputs)).toEqual([{ 'a/b': 'metadata', 'c/b/f': 'content' }]);
    expect(fs.readFileSync(path.join(dirs[0], 'o2'), 'utf8')).toBe('one\n');
  });
});

describe('what the listener saw is kept before a later step changes it', () => {
  // One process reads a file or lists a directory (through the listener), then at once
  // truncates the file or adds to the directory (ptrace stops): pcache must record the old
  // state before the change goes ahead. Missed, the entry carries what the file or the
  // directory became, matches it on the re-run, and replays the old result. The shell
  // makes few calls before these, so nothing else has made pcache look at f or d yet.
  async function rerunRuns(script: string, files: Record<string, string>): Promise<ScenarioResult> {
    const r = await runScenario({ files, first: { cmd: ['/bin/sh', '-c', script] } });
    expectIndistinguishable(r.first);
    expectSummary(r.first.cached, { total: 1, uncacheable: 0 });
    expectIndistinguishable(r.rerun);
    expectSummary(r.rerun.cached, { total: 1, ran: 1, skipped: 0 });
    return r;
  }

  test('a file read and then truncated: the re-run runs', async () => {
    const r = await rerunRuns('read x < f; echo new > f; echo "$x" > g', { f: 'old\n' });
    expect(textOf(r.rerun.cached.tree, 'g')).toBe('new\n');
  });

  test('a directory listed and then added to: the re-run runs', async () => {
    const r = await rerunRuns('set -- d/*; : > d/added; echo "$@" > listing', { 'd/one': '1\n' });
    expect(textOf(r.rerun.cached.tree, 'listing')).toBe('d/added d/one\n');
  });
});
