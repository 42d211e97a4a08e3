// End-to-end tracer tests for the cases a naive tracer gets wrong: symlinks
// resolved the kernel's way, directory renames, file descriptors inherited across
// exec, processes outliving nothing (zombies), signals sent to pcache itself, and
// unusual path names. Each asserts the exact classification under the test's
// directory, like e2e.test.ts.

import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  PCACHE,
  childrenOf,
  cleanTempDirs,
  dropCreateProbe,
  fixture,
  inputsIn,
  outputsIn,
  outputsOutside,
  recordProblems,
  rootOf,
  tempDir,
  traceRun,
  writeFiles,
  TraceRun,
} from './helpers';
import type { TraceRecord } from '../../src/trace/record';

afterAll(cleanTempDirs);

function runIn(dir: string, cmd: string[]): TraceRun {
  const run = traceRun(cmd, { cwd: dir, env: { PATH: '/usr/bin:/bin' } });
  expect(recordProblems(run.record)).toEqual([]);
  expect(run.signal).toBeNull();
  return run;
}

describe('symlinks the way the kernel follows them', () => {
  test("'..' after a symlinked directory goes to the link target's parent, not back lexically", () => {
    const dir = tempDir();
    // alias -> real/sub, so alias/../f is real/f (a lexical normalizer would say f)
    writeFiles(dir, { 'real/sub/x': 'x\n', 'real/f': 'the right one\n', f: 'the wrong one\n' });
    fs.symlinkSync('real/sub', path.join(dir, 'alias'));
    const run = runIn(dir, [fixture('open_read'), 'alias/../f']);
    expect(run.status).toBe(0);
    const root = rootOf(run.record);
    expect(inputsIn(root, dir)).toEqual({ alias: 'metadata', 'real/f': 'content' });
    expect(outputsIn(root, dir)).toEqual({});
  });

  test('a chain of symlinks, relative and absolute: every link is a metadata input', () => {
    const dir = tempDir();
    writeFiles(dir, { 'data/file': 'end of the chain\n' });
    fs.symlinkSync(path.join(dir, 'data'), path.join(dir, 'abs')); // absolute target
    fs.symlinkSync('abs/file', path.join(dir, 'l1')); // relative, through another link
    fs.symlinkSync('l1', path.join(dir, 'l2'));
    const run = runIn(dir, [fixture('open_read'), 'l2']);
    expect(run.status).toBe(0);
    const root = rootOf(run.record);
    expect(inputsIn(root, dir)).toEqual({ abs: 'metadata', 'data/file': 'content', l1: 'metadata', l2: 'metadata' });
  });

  test('writing through a symlink: the link is a metadata input, its target the output', () => {
    const dir = tempDir();
    writeFiles(dir, { target: 'old\n' });
    fs.symlinkSync('target', path.join(dir, 'link'));
    const run = runIn(dir, [fixture('open_write_trunc'), 'link']);
    expect(run.status).toBe(0);
    const root = rootOf(run.record);
    expect(dropCreateProbe(inputsIn(root, dir), 'target', true)).toEqual({ link: 'metadata' });
    expect(outputsIn(root, dir)).toEqual({ target: 'content' });
    expect(fs.lstatSync(path.join(dir, 'link')).isSymbolicLink()).toBe(true);
  });

  test('unusual names: spaces, non-ASCII, a newline', () => {
    const dir = tempDir();
    const name = 'sp ace/ünïcødé\nname.txt';
    writeFiles(dir, { [name]: 'odd\n' });
    const run = runIn(dir, [fixture('open_read'), name]);
    expect(run.status).toBe(0);
    const root = rootOf(run.record);
    expect(inputsIn(root, dir)).toEqual({ [name]: 'content' });
  });
});

describe('directory renames', () => {
  test('renaming a directory: every path under both names gets its final state', () => {
    const dir = tempDir();
    writeFiles(dir, { 'd1/a': 'a\n', 'd1/b': 'b\n' });
    const run = runIn(dir, [fixture('rename_dir'), 'd1', 'd2']);
    expect(run.status).toBe(0);
    expect(fs.readdirSync(path.join(dir, 'd2')).sort()).toEqual(['a', 'b', 'new']);
    const root = rootOf(run.record);
    expect(root.uncacheable).toEqual([]);
    expect(outputsIn(root, dir)).toEqual({
      d1: 'deleted',
      'd1/a': 'deleted',
      'd1/b': 'deleted',
      d2: 'mkdir',
      'd2/a': 'content',
      'd2/b': 'content',
      'd2/new': 'content',
    });
    const inputs = dropCreateProbe(inputsIn(root, dir), 'd2/new', false);
    expect([undefined, 'absent']).toContain(inputs.d2);
    delete inputs.d2;
    expect(inputs).toEqual({ d1: 'dirlist', 'd1/a': 'content', 'd1/b': 'content' });
  });
});

describe('file descriptors inherited across exec', () => {
  test('a child reading an inherited fd 3 has that file as a content input', () => {
    const dir = tempDir();
    writeFiles(dir, { a: 'abc\n' });
    const reader = fixture('read_fd');
    const run = runIn(dir, ['/bin/sh', '-c', '"$0" 3 3< a', reader]);
    expect(run.status).toBe(0);
    expect(run.stdout).toBe('4\n');
    expect(run.record.executions).toHaveLength(2);
    const sh = rootOf(run.record);
    const [child] = childrenOf(run.record, sh);
    expect(child.exe).toBe(reader);
    expect(inputsIn(sh, dir)).toEqual({ a: 'content' });
    expect(inputsIn(child, dir)).toEqual({ a: 'content' });
    expect(child.uncacheable).toEqual([]);
  });

  test('a child writing an inherited fd 4 has that file as a content output', () => {
    const dir = tempDir();
    const writer = fixture('write_fd');
    const run = runIn(dir, ['/bin/sh', '-c', '"$0" 4 hello 4> out', writer]);
    expect(run.status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'out'), 'utf8')).toBe('hello');
    expect(run.record.executions).toHaveLength(2);
    const sh = rootOf(run.record);
    const [child] = childrenOf(run.record, sh);
    expect(child.exe).toBe(writer);
    expect(outputsIn(sh, dir)).toEqual({ out: 'content' });
    expect(outputsIn(child, dir)).toEqual({ out: 'content' });
    expect(inputsIn(child, dir)).toEqual({});
    expect(outputsOutside(child, dir)).toEqual([]);
  });
});

describe('opens that name no path', () => {
  test('open_by_handle_at: the file is an input, or the execution fails closed', () => {
    const dir = tempDir();
    writeFiles(dir, { f: 'by handle\n' });
    const run = runIn(dir, [fixture('open_by_handle'), 'f', dir]);
    // 77: the kernel refused (no CAP_DAC_READ_SEARCH); the attempt still has to be seen
    expect([0, 77]).toContain(run.status);
    const root = rootOf(run.record);
    if (inputsIn(root, dir).f !== 'content') {
      expect(root.uncacheable).toEqual(expect.arrayContaining([expect.stringMatching(/unhandled syscall (open_by_handle_at|name_to_handle_at)/)]));
    }
    expect(outputsIn(root, dir)).toEqual({});
  });
});

describe('someone else changing an input', () => {
  test('an input rewritten by another process while the execution runs makes it uncacheable', async () => {
    const dir = tempDir();
    writeFiles(dir, { f: 'before\n' });
    const jsonPath = path.join(fs.realpathSync(os.tmpdir()), `pcache-mod-${process.pid}.json`);
    const child = spawn(process.execPath, [PCACHE, 'trace', '--json', jsonPath, '--', fixture('read_then_wait'), 'f', 'ready', 'go'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    for (let i = 0; i < 600 && !fs.existsSync(path.join(dir, 'ready')); i++) await new Promise((r) => setTimeout(r, 50));
    expect(fs.existsSync(path.join(dir, 'ready'))).toBe(true);
    fs.writeFileSync(path.join(dir, 'f'), 'after, and longer\n');
    fs.writeFileSync(path.join(dir, 'go'), '');
    expect(await exited).toBe(0);
    const record = JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as TraceRecord;
    fs.rmSync(jsonPath, { force: true });
    const root = rootOf(record);
    expect(inputsIn(root, dir).f).toBe('content');
    // the reason is free text; it names the file or says it was modified
    const f = path.join(dir, 'f');
    expect(root.uncacheable.filter((r) => r.includes(f) || /modified|changed/.test(r))).not.toEqual([]);
  });
});

describe('process lifetimes', () => {
  test('a zombie child that was never waited for leaves nothing running', () => {
    const dir = tempDir();
    const run = runIn(dir, [fixture('zombie')]);
    expect(run.status).toBe(0);
    expect(run.record.executions).toHaveLength(1);
    const root = rootOf(run.record);
    expect(root.exitCode).toBe(0);
    expect(root.uncacheable).toEqual([]);
  });

  // SIGINT/SIGTERM sent to pcache reach the traced tree; pcache exits 128+N.
  test.each([
    ['SIGTERM', 15],
    ['SIGINT', 2],
  ] as const)('%s sent to pcache reaches the command; pcache exits 128+N', async (sig, num) => {
    const dir = tempDir();
    const jsonPath = path.join(fs.realpathSync(os.tmpdir()), `pcache-sig-${process.pid}-${num}.json`);
    // the command marks that it is running, then waits in a sleep that the signal ends
    const child = spawn(process.execPath, [PCACHE, 'trace', '--json', jsonPath, '--', '/bin/sh', '-c', ': > started; exec sleep 60'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    const startedAt = path.join(dir, 'started');
    for (let i = 0; i < 600 && !fs.existsSync(startedAt); i++) await new Promise((r) => setTimeout(r, 50));
    expect(fs.existsSync(startedAt)).toBe(true);
    // wait until the exec of sleep has happened (it shows in /proc under pcache)
    for (let i = 0; i < 600 && !sleepRunningUnder(child.pid!); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill(sig);
    const { code, signal } = await exited;
    expect(signal).toBeNull();
    expect(code).toBe(128 + num);
    const record = JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as TraceRecord;
    fs.rmSync(jsonPath, { force: true });
    expect(record.signal).toBe(num);
    const root = rootOf(record);
    const sleep = record.executions.find((e) => e.argv[0] === 'sleep');
    expect(sleep?.signal).toBe(num);
    expect(root.uncacheable).toEqual(expect.arrayContaining([expect.stringContaining(`killed by signal ${num}`)]));
  });
});

/** Whether some descendant of pid is running `sleep` (the exec has happened). */
function sleepRunningUnder(pid: number): boolean {
  const kids = (p: number): number[] => {
    // children are listed per thread, and the tracer forks from its own thread
    const out: number[] = [];
    try {
      for (const t of fs.readdirSync(`/proc/${p}/task`)) {
        out.push(...fs.readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number));
      }
    } catch {
      // gone
    }
    return out;
  };
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    try {
      if (fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'sleep') return true;
    } catch {
      // gone
    }
    stack.push(...kids(p));
  }
  return false;
}
