// End-to-end tracer tests: each C fixture (fixtures/c, one behaviour each) runs
// under `pcache trace --json` in a fresh directory, and the test asserts the
// exact classification of every path under that directory, the execution tree
// and the exit status. See the comment at the top of each fixture for what it
// tests.

import * as fs from 'fs';
import * as path from 'path';
import { loadNative, type ExecRequest, type IoEvent } from '../../src/trace/native';
import {
  childrenOf,
  cleanTempDirs,
  dropCreateProbe,
  fixture,
  inputKinds,
  inputsIn,
  outputAt,
  outputsIn,
  outputsOutside,
  recordProblems,
  rootOf,
  systemPath,
  tempDir,
  traceRun,
  writeFiles,
  TraceRun,
} from './helpers';

afterAll(cleanTempDirs);

/** Runs a fixture with cwd = dir and checks the record is well formed. */
function runFixture(dir: string, name: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): TraceRun {
  const run = traceRun([fixture(name), ...args], { cwd: opts.cwd ?? dir, env: opts.env });
  expect(recordProblems(run.record)).toEqual([]);
  expect(run.signal).toBeNull();
  return run;
}

/** A clean single-execution run: exit 0, one execution, cacheable, no outputs outside dir. */
function single(run: TraceRun, dir: string) {
  expect(run.status).toBe(0);
  expect(run.record.exitCode).toBe(0);
  expect(run.record.executions).toHaveLength(1);
  const root = rootOf(run.record);
  expect(root.exitCode).toBe(0);
  expect(root.signal).toBeNull();
  expect(root.uncacheable).toEqual([]);
  expect(outputsOutside(root, dir)).toEqual([]);
  return root;
}

describe('the exec itself', () => {
  test('exe, argv, cwd, env and the loaded program and libraries are recorded', () => {
    const dir = tempDir();
    writeFiles(dir, { a: 'hello\n' });
    const run = runFixture(dir, 'open_read', ['a'], { env: { PCACHE_E2E_MARK: 'x1' } });
    const root = single(run, dir);
    expect(root.exe).toBe(fixture('open_read'));
    expect(root.argv).toEqual([fixture('open_read'), 'a']);
    expect(root.cwd).toBe(dir);
    expect(root.env).toContain('PCACHE_E2E_MARK=x1');
    expect(root.pid).toBeGreaterThan(0);
    // the program, the loader's cache, libc and the ELF interpreter are all read
    expect(inputKinds(root, fixture('open_read'))).toContain('content');
    expect(inputKinds(root, '/etc/ld.so.cache')).toContain('content');
    expect(inputKinds(root, systemPath('/lib/x86_64-linux-gnu/libc.so.6'))).toContain('content');
    expect(inputKinds(root, systemPath('/lib64/ld-linux-x86-64.so.2'))).toContain('content');
    // stdin was /dev/null; stdout and stderr are what node's spawnSync makes for 'pipe': socketpairs
    expect(root.stdin.kind).toBe('null');
    expect(root.stdout.kind).toBe('socket');
    expect(root.stderr.kind).toBe('socket');
  });

  test('argv and env are read exactly, however their strings lie in memory', () => {
    // The tracer reads nearby strings together (tracee_memory.cc, readStringArray): strings
    // at page edges, longer than a page, empty, far apart (python's objects) and many.
    const dir = tempDir();
    const script = [
      'import os, sys',
      'argv = ["/bin/true", "", "a" * 4095, "b" * 4096, "c" * 4097, "d" * 100000, "e"] + ["s%d" % i for i in range(300)]',
      'env = {"V%d" % i: "v" * (i * 37 % 5000) for i in range(400)}',
      'env["LONG"] = "x" * 70000',
      'env["EMPTY"] = ""',
      'pid = os.fork()',
      'if pid == 0:',
      '    os.execve("/bin/true", argv, env)',
      '_, st = os.waitpid(pid, 0)',
      'sys.exit(os.waitstatus_to_exitcode(st))',
    ].join('\n');
    const run = traceRun(['python3', '-c', script], { cwd: dir });
    expect(run.status).toBe(0);
    const child = run.record.executions.find((e) => e.exe === '/usr/bin/true');
    expect(child).toBeDefined();
    const argv = ['/bin/true', '', 'a'.repeat(4095), 'b'.repeat(4096), 'c'.repeat(4097), 'd'.repeat(100000), 'e'];
    for (let i = 0; i < 300; i++) argv.push(`s${i}`);
    expect(child!.argv).toEqual(argv);
    const env: string[] = [];
    for (let i = 0; i < 400; i++) env.push(`V${i}=${'v'.repeat((i * 37) % 5000)}`);
    env.push(`LONG=${'x'.repeat(70000)}`, 'EMPTY=');
    expect([...child!.env].sort()).toEqual(env.sort());
  });

  test('execs with equal environments share one frozen array; each request has its own exactly', async () => {
    // The addon hands a run of equal environments over as one JS array (envToJs); the key
    // works out its share of each once per array (src/core/key.ts).
    const reqs: ExecRequest[] = [];
    const env = ['PATH=/usr/bin:/bin', 'PCACHE_E2E=1'];
    const code = await new Promise<number | null>((resolve) => {
      loadNative().start({
        askExec: false,
        argv: ['/bin/sh', '-c', '/bin/true; /bin/true; X=1 /bin/true'],
        env,
        cwd: '/',
        onEvents: () => undefined,
        onExec: (r) => reqs.push(r),
        onExit: () => undefined,
        onPreimage: () => undefined,
        onDone: (r) => resolve(r.code),
      });
    });
    expect(code).toBe(0);
    // dash adds PWD for what it runs
    const child = [...env, 'PWD=/'];
    expect(reqs.map((r) => [r.path, [...r.env].sort()])).toEqual([
      ['/usr/bin/dash', env],
      ['/usr/bin/true', child],
      ['/usr/bin/true', child],
      ['/usr/bin/true', [...child, 'X=1']],
    ]);
    expect(reqs[1].env).not.toBe(reqs[0].env);
    expect(reqs[2].env).toBe(reqs[1].env);
    expect(reqs[3].env).not.toBe(reqs[2].env);
    expect(reqs.every((r) => Object.isFrozen(r.env))).toBe(true);
  });

  test('onEvents calls carry the number of the batch they came in, counting from 1', async () => {
    // The folder shares its looks at files among the calls of one batch (TraceFolder.events).
    const calls: Array<{ batch: number; kinds: string[] }> = [];
    const code = await new Promise<number | null>((resolve) => {
      loadNative().start({
        askExec: false,
        argv: ['/bin/sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do /bin/true; done'],
        env: ['PATH=/usr/bin:/bin'],
        cwd: '/',
        onEvents: (events, batch) => calls.push({ batch, kinds: events.map((e) => e.k) }),
        onExec: () => undefined,
        onExit: () => undefined,
        onPreimage: () => undefined,
        onDone: (r) => resolve(r.code),
      });
    });
    expect(code).toBe(0);
    const batches = calls.map((c) => c.batch);
    expect(batches[0]).toBe(1);
    // Whole numbers, never going down: a batch whose events came in several calls (split at
    // the execs nobody waits for) has one number.
    for (let i = 1; i < batches.length; i++) {
      expect(Number.isInteger(batches[i])).toBe(true);
      expect(batches[i]).toBeGreaterThanOrEqual(batches[i - 1]);
    }
    expect(calls.flatMap((c) => c.kinds).filter((k) => k === 'exec')).toHaveLength(9);
  });

  /** The read-back io events of `sh -c script` run in `dir` by the bare tracer. */
  async function readBackEvents(dir: string, script: string, limit?: number): Promise<IoEvent[]> {
    const got: IoEvent[] = [];
    const code = await new Promise<number | null>((resolve) => {
      loadNative().start({
        askExec: false,
        ...(limit === undefined ? {} : { readbackLimit: limit }),
        argv: ['/bin/sh', '-c', script],
        env: ['PATH=/usr/bin:/bin'],
        cwd: dir,
        onEvents: (events) => {
          for (const e of events) if (e.k === 'io' && e.readback) got.push(e);
        },
        onExec: () => undefined,
        onExit: () => undefined,
        onPreimage: () => undefined,
        onDone: (r) => resolve(r.code),
      });
    });
    expect(code).toBe(0);
    return got;
  }

  test('readbackLimit: a read-back brings that many bytes of its region, and counts all of it', async () => {
    // echo's stdout is a file only it writes: read back at its end (pcache trace keeps only
    // so much of each stream, and tells the tracer so).
    const dir = tempDir();
    const out = path.join(dir, 'out');
    const readBacks = async (limit?: number): Promise<Array<{ data: string; count: number }>> => {
      const got = await readBackEvents(dir, `/bin/echo hello-world > ${out}`, limit);
      expect(fs.readFileSync(out, 'utf8')).toBe('hello-world\n');
      return got.map((e) => ({ data: e.data?.toString() ?? '', count: e.count }));
    };
    expect(await readBacks(5)).toEqual([{ data: 'hello', count: 12 }]);
    expect(await readBacks(0)).toEqual([{ data: '', count: 12 }]);
    expect(await readBacks()).toEqual([{ data: 'hello-world\n', count: 12 }]);
  });

  test('a read-back of its file whole carries the stamp of the file it read; a part of one does not', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'out');
    const readBacks = async (script: string, limit?: number): Promise<Array<{ data: string; stamp?: bigint[] }>> =>
      (await readBackEvents(dir, script, limit)).map((e) => ({ data: e.data?.toString() ?? '', stamp: e.stamp }));
    const before = BigInt(Date.now() - 1000) * 1_000_000n;
    const [whole, ...more] = await readBacks(`/bin/echo hello-world > ${out}`);
    expect(more).toEqual([]);
    const st = fs.statSync(out, { bigint: true });
    expect(whole.data).toBe('hello-world\n');
    expect(whole.stamp?.slice(0, 5)).toEqual([st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs]);
    // the wall clock before that stat: after the file was written, before now
    expect(whole.stamp![5]).toBeGreaterThanOrEqual(st.ctimeNs);
    expect(whole.stamp![5]).toBeGreaterThan(before);
    expect(whole.stamp![5]).toBeLessThanOrEqual(BigInt(Date.now() + 1) * 1_000_000n);
    // Two steps into one file: the first's region is the file as it then was; the second's
    // starts where the first's ended, so it is not the file.
    const [first, second, ...rest] = await readBacks(`{ /bin/echo first; /bin/echo second; } > ${out}`);
    expect(rest).toEqual([]);
    expect(first.data).toBe('first\n');
    expect(first.stamp?.[2]).toBe(6n);
    expect(first.stamp?.[1]).toBe(fs.statSync(out, { bigint: true }).ino);
    expect(second).toEqual({ data: 'second\n', stamp: undefined });
    // a region read only in part (readbackLimit) is not the file either
    expect(await readBacks(`/bin/echo hello-world > ${out}`, 5)).toEqual([{ data: 'hello', stamp: undefined }]);
  });
});

describe('open flags', () => {
  test('O_RDONLY: content input, no output', () => {
    const dir = tempDir();
    writeFiles(dir, { a: 'hello\n' });
    const root = single(runFixture(dir, 'open_read', ['a']), dir);
    expect(inputsIn(root, dir)).toEqual({ a: 'content' });
    expect(outputsIn(root, dir)).toEqual({});
  });

  test('O_RDONLY through a symlink: the link is a metadata input, its target the content input', () => {
    const dir = tempDir();
    writeFiles(dir, { a: 'hello\n' });
    fs.symlinkSync('a', path.join(dir, 'link'));
    const root = single(runFixture(dir, 'open_read', ['link']), dir);
    expect(inputsIn(root, dir)).toEqual({ a: 'content', link: 'metadata' });
    expect(outputsIn(root, dir)).toEqual({});
  });

  test('O_RDONLY through a symlinked directory component', () => {
    const dir = tempDir();
    writeFiles(dir, { 'real/f': 'hello\n' });
    fs.symlinkSync('real', path.join(dir, 'alias'));
    const root = single(runFixture(dir, 'open_read', ['alias/f']), dir);
    expect(inputsIn(root, dir)).toEqual({ alias: 'metadata', 'real/f': 'content' });
    expect(outputsIn(root, dir)).toEqual({});
  });

  test('O_WRONLY|O_CREAT|O_TRUNC of a new file: content output, no content input', () => {
    const dir = tempDir();
    const root = single(runFixture(dir, 'open_write_trunc', ['w']), dir);
    expect(dropCreateProbe(inputsIn(root, dir), 'w', false)).toEqual({});
    expect(outputsIn(root, dir)).toEqual({ w: 'content' });
    expect(fs.readFileSync(path.join(dir, 'w'), 'utf8')).toBe('written\n');
  });

  test('O_WRONLY|O_CREAT|O_TRUNC of an existing file: content output, old bytes are no input', () => {
    const dir = tempDir();
    writeFiles(dir, { w: 'old contents, longer than the new ones\n' });
    const root = single(runFixture(dir, 'open_write_trunc', ['w']), dir);
    expect(dropCreateProbe(inputsIn(root, dir), 'w', true)).toEqual({});
    expect(outputsIn(root, dir)).toEqual({ w: 'content' });
  });

  test('O_APPEND on an existing file: content input and content output', () => {
    const dir = tempDir();
    writeFiles(dir, { ap: 'first\n' });
    const root = single(runFixture(dir, 'open_append', ['ap']), dir);
    expect(inputsIn(root, dir)).toEqual({ ap: 'content' });
    expect(outputsIn(root, dir)).toEqual({ ap: 'content' });
    expect(fs.readFileSync(path.join(dir, 'ap'), 'utf8')).toBe('first\nappended\n');
  });

  test('O_RDWR read then written in place: content input and content output', () => {
    const dir = tempDir();
    writeFiles(dir, { rw: 'original\n' });
    const root = single(runFixture(dir, 'open_rdwr', ['rw']), dir);
    expect(inputsIn(root, dir)).toEqual({ rw: 'content' });
    expect(outputsIn(root, dir)).toEqual({ rw: 'content' });
    expect(fs.readFileSync(path.join(dir, 'rw'), 'utf8')).toBe('EDITinal\n');
  });

  test('O_CREAT|O_EXCL creating a file: absent input, content output', () => {
    const dir = tempDir();
    const root = single(runFixture(dir, 'open_excl_create', ['ex']), dir);
    expect(inputsIn(root, dir)).toEqual({ ex: 'absent' });
    expect(outputsIn(root, dir)).toEqual({ ex: 'content' });
  });

  test('O_CREAT|O_EXCL on an existing file fails: metadata input, no output', () => {
    const dir = tempDir();
    writeFiles(dir, { ex: 'already here\n' });
    const root = single(runFixture(dir, 'open_excl_exists', ['ex']), dir);
    expect(inputsIn(root, dir)).toEqual({ ex: 'metadata' });
    expect(outputsIn(root, dir)).toEqual({});
  });

  test('O_TMPFILE then linkat into place: the linked name is the output', () => {
    const dir = tempDir();
    const root = single(runFixture(dir, 'tmpfile_linkat', [dir, 'tl']), dir);
    expect(inputsIn(root, dir)).toEqual({ tl: 'absent' });
    expect(outputsIn(root, dir)).toEqual({ tl: 'content' });
    expect(root.outputs.filter((o) => o.path.startsWith('/proc/'))).toEqual([]);
    expect(fs.readFileSync(path.join(dir, 'tl'), 'utf8')).toBe('anonymous\n');
  });

  test('a file written then read back is not an input', () => {
    const dir = tempDir();
    const root = single(runFixture(dir, 'write_then_read', ['wtr']), dir);
    expect(dropCreateProbe(inputsIn(root, dir), 'wtr', false)).toEqual({});
    expect(outputsIn(root, dir)).toEqual({ wtr: 'content' });
  });

  test('a temp file created and removed again is no output', () => {
    const dir = tempDir();
    const root = single(runFixture(dir, 'tmp_create_remove', ['tcr']), dir);
    expect(dropCreateProbe(inputsIn(root, dir), 'tcr', false)).toEqual({});
    expect(outputsIn(root, dir)).toEqual({});
  });
});

describe('namespace operations', () => {
  test('rename over an existing file: source deleted, destination content; source is a content input', () => {
    const dir = tempDir();
    writeFiles(dir, { src: 'source\n', dst: 'destination\n' });
    const root = single(runFixture(dir, 'rename_over', ['src', 'dst']), dir);
    const inputs = inputsIn(root, dir);
    // dst's old bytes do not matter; at most its existence/type was looked at
    expect([undefined, 'metadata']).toContain(inputs.dst);
    delete inputs.dst;
    expect(inputs).toEqual({ src: 'content' });
    expect(outputsIn(root, dir)).toEqual({ dst: 'content', src: 'deleted' });
  });

  test('write a temp file and rename it over the destination: only the destination is an output', () => {
    const dir = tempDir();
    writeFiles(dir, { d2: 'old\n' });
    const root = single(runFixture(dir, 'rename_tmp_over', ['d2']), dir);
    const inputs = dropCreateProbe(inputsIn(root, dir), 'd2.tmp', false);
    expect([undefined, 'metadata']).toContain(inputs.d2);
    delete inputs.d2;
    expect(inputs).toEqual({});
    expect(outputsIn(root, dir)).toEqual({ d2: 'content' });
  });

  test('unlink of an existing file: deleted output, metadata input', () => {
    const dir = tempDir();
    writeFiles(dir, { f: 'doomed\n' });
    const root = single(runFixture(dir, 'unlink', ['f']), dir);
    expect(inputsIn(root, dir)).toEqual({ f: 'metadata' });
    expect(outputsIn(root, dir)).toEqual({ f: 'deleted' });
  });

  test('mkdir: mkdir output, absent input', () => {
    const dir = tempDir();
    const root = single(runFixture(dir, 'mkdir', ['newd']), dir);
    expect(inputsIn(root, dir)).toEqual({ newd: 'absent' });
    expect(outputsIn(root, dir)).toEqual({ newd: 'mkdir' });
  });

  test('symlink: symlink output with its target, absent input, the target untouched', () => {
    const dir = tempDir();
    writeFiles(dir, { targ: 'pointed at\n' });
    const root = single(runFixture(dir, 'symlink', ['targ', 'lnk']), dir);
    expect(inputsIn(root, dir)).toEqual({ lnk: 'absent' });
    expect(outputsIn(root, dir)).toEqual({ lnk: 'symlink' });
    expect(outputAt(root, path.join(dir, 'lnk'))?.linkTarget).toBe('targ');
  });

  test('hard link: new name is a content output, the existing file a content input', () => {
    const dir = tempDir();
    writeFiles(dir, { a: 'shared\n' });
    const root = single(runFixture(dir, 'hardlink', ['a', 'hl']), dir);
    expect(inputsIn(root, dir)).toEqual({ a: 'content', hl: 'absent' });
    expect(outputsIn(root, dir)).toEqual({ hl: 'content' });
  });

  test('chmod of an existing file: mode output with the new bits, metadata input', () => {
    const dir = tempDir();
    writeFiles(dir, { f: 'x\n' });
    fs.chmodSync(path.join(dir, 'f'), 0o644);
    const root = single(runFixture(dir, 'chmod', ['f']), dir);
    expect(inputsIn(root, dir)).toEqual({ f: 'metadata' });
    expect(outputsIn(root, dir)).toEqual({ f: 'mode' });
    expect((outputAt(root, path.join(dir, 'f'))?.mode ?? -1) & 0o7777).toBe(0o600);
  });

  test('truncate to a shorter length: content input and content output', () => {
    const dir = tempDir();
    writeFiles(dir, { tr: '123456\n' });
    const root = single(runFixture(dir, 'truncate', ['tr']), dir);
    expect(inputsIn(root, dir)).toEqual({ tr: 'content' });
    expect(outputsIn(root, dir)).toEqual({ tr: 'content' });
    // old bytes survive: written in place, not replaced (no REPLACED flag, see replay.ts)
    expect(root.outputs.find((o) => o.path === path.join(dir, 'tr'))?.how).toBe('written');
    expect(fs.readFileSync(path.join(dir, 'tr'), 'utf8')).toBe('123');
  });

  test('created without O_TRUNC, then ftruncate to 0 (split, sort -o): no input, content output', () => {
    const dir = tempDir();
    const root = single(runFixture(dir, 'create_then_ftruncate', ['out', '0']), dir);
    expect(inputsIn(root, dir)).toEqual({});
    expect(outputsIn(root, dir)).toEqual({ out: 'content' });
    expect(fs.readFileSync(path.join(dir, 'out'), 'utf8')).toBe('new\n');
  });

  test('created without O_TRUNC, then ftruncate to another length: its absence stays an input', () => {
    const dir = tempDir();
    const root = single(runFixture(dir, 'create_then_ftruncate', ['out', '2']), dir);
    expect(inputsIn(root, dir)).toEqual({ out: 'absent' });
    expect(outputsIn(root, dir)).toEqual({ out: 'content' });
  });

  test('an existing file opened write-only with O_CREAT, then ftruncated to 0 (split re-run over its output): no input', () => {
    const dir = tempDir();
    writeFiles(dir, { keep: 'old bytes that are gone\n' });
    const root = single(runFixture(dir, 'create_then_ftruncate', ['keep', '0']), dir);
    expect(inputsIn(root, dir)).toEqual({});
    expect(outputsIn(root, dir)).toEqual({ keep: 'content' });
    expect(fs.readFileSync(path.join(dir, 'keep'), 'utf8')).toBe('new\n');
  });

  test('an existing file opened write-only, read through another fd, then ftruncated to 0 (sort -o f f): its bytes stay an input', () => {
    const dir = tempDir();
    writeFiles(dir, { keep: 'old bytes, read\n' });
    const r = runFixture(dir, 'create_then_ftruncate', ['keep', '0', 'read']);
    expect(r.stdout.toString()).toBe('old bytes, read\n');
    const root = single(r, dir);
    expect(inputsIn(root, dir)).toEqual({ keep: 'content' });
    expect(fs.readFileSync(path.join(dir, 'keep'), 'utf8')).toBe('new\n');
  });

  test('an existing file opened write-only, then ftruncated to another length: its bytes stay an input', () => {
    const dir = tempDir();
    writeFiles(dir, { keep: 'old bytes\n' });
    const root = single(runFixture(dir, 'create_then_ftruncate', ['keep', '2']), dir);
    expect(inputsIn(root, dir)).toEqual({ keep: 'content' });
    expect(fs.readFileSync(path.join(dir, 'keep'), 'utf8')).toBe('new\n');
  });
});

describe('probes', () => {
  test('stat of an absent file: absent input', () => {
    const dir = tempDir();
    const root = single(runFixture(dir, 'stat_absent', ['nope']), dir);
    expect(inputsIn(root, dir)).toEqual({ nope: 'absent' });
    expect(outputsIn(root, dir)).toEqual({});
  });

  test('access() of an existing and an absent file: metadata and absent inputs', () => {
    const dir = tempDir();
    writeFiles(dir, { a: 'here\n' });
    const root = single(runFixture(dir, 'access_probe', ['a', 'nope']), dir);
    expect(inputsIn(root, dir)).toEqual({ a: 'metadata', nope: 'absent' });
    expect(outputsIn(root, dir)).toEqual({});
  });

  test('readlink of a symlink: metadata input, the target is not an input', () => {
    const dir = tempDir();
    writeFiles(dir, { targ: 'target\n' });
    fs.symlinkSync('targ', path.join(dir, 'lnk'));
    const run = runFixture(dir, 'readlink', ['lnk']);
    const root = single(run, dir);
    expect(run.stdout).toBe('targ\n');
    expect(inputsIn(root, dir)).toEqual({ lnk: 'metadata' });
    expect(outputsIn(root, dir)).toEqual({});
  });

  test('reading a directory: dirlist input, entries are not inputs; stdout bytes counted', () => {
    const dir = tempDir();
    writeFiles(dir, { 'dd/n1': '1\n', 'dd/n2': '2\n' });
    const run = runFixture(dir, 'readdir', ['dd']);
    const root = single(run, dir);
    expect(run.stdout.split('\n').filter(Boolean).sort()).toEqual(['.', '..', 'n1', 'n2']);
    expect(inputsIn(root, dir)).toEqual({ dd: 'dirlist' });
    expect(outputsIn(root, dir)).toEqual({});
    expect(root.stdout.kind).toBe('socket');
    expect(root.stdout.bytes).toBe(Buffer.byteLength(run.stdout));
  });
});

describe('path resolution', () => {
  test('fchdir then a relative open resolves against the new directory', () => {
    const dir = tempDir();
    writeFiles(dir, { 'dd/n': 'in dd\n', n: 'in the original cwd\n' });
    const root = single(runFixture(dir, 'fchdir_open', ['dd', 'n']), dir);
    expect(inputsIn(root, dir)).toEqual({ dd: 'metadata', 'dd/n': 'content' });
    expect(outputsIn(root, dir)).toEqual({});
  });

  test('openat with a directory fd (and AT_EMPTY_PATH on it)', () => {
    const dir = tempDir();
    writeFiles(dir, { 'dd/n': 'in dd\n', n: 'in the original cwd\n' });
    const root = single(runFixture(dir, 'openat_dirfd', ['dd', 'n', 'o']), dir);
    expect(dropCreateProbe(inputsIn(root, dir), 'dd/o', false)).toEqual({ dd: 'metadata', 'dd/n': 'content' });
    expect(outputsIn(root, dir)).toEqual({ 'dd/o': 'content' });
  });

  test('relative paths with .. are recorded absolute and normalized', () => {
    const dir = tempDir();
    writeFiles(dir, { 'q/a/c/in.txt': 'in\n' });
    fs.mkdirSync(path.join(dir, 'q/a/b'));
    const run = runFixture(dir, 'dotdot_paths', ['../c/in.txt', '../../out.txt'], { cwd: path.join(dir, 'q/a/b') });
    const root = single(run, dir);
    expect(root.cwd).toBe(path.join(dir, 'q/a/b'));
    expect(dropCreateProbe(inputsIn(root, dir), 'q/out.txt', false)).toEqual({ 'q/a/c/in.txt': 'content' });
    expect(outputsIn(root, dir)).toEqual({ 'q/out.txt': 'content' });
  });
});

describe('processes and executions', () => {
  test('execvp along PATH: each miss is an absent input, the hit starts a child execution', () => {
    const dir = tempDir();
    writeFiles(dir, { 'p3/prog': '#!/bin/sh\nexit 5\n' });
    fs.chmodSync(path.join(dir, 'p3/prog'), 0o755);
    fs.mkdirSync(path.join(dir, 'p1'));
    fs.mkdirSync(path.join(dir, 'p2'));
    const PATH = ['p1', 'p2', 'p3'].map((d) => path.join(dir, d)).join(':');
    const run = runFixture(dir, 'execvp_path', ['prog'], { env: { PATH } });
    expect(run.status).toBe(5);
    expect(run.record.exitCode).toBe(5);
    expect(run.record.executions).toHaveLength(2);
    const root = rootOf(run.record);
    const [child] = childrenOf(run.record, root);
    expect(root.exitCode).toBe(5);
    expect(child.exitCode).toBe(5);
    expect(child.exe).toBe(path.join(dir, 'p3/prog'));
    expect(child.argv).toEqual(['prog']);
    expect(child.pid).toBe(root.pid);
    expect(inputsIn(root, dir)).toEqual({ 'p1/prog': 'absent', 'p2/prog': 'absent', 'p3/prog': 'content' });
    expect(inputsIn(child, dir)).toEqual({ 'p3/prog': 'content' });
    // the #! interpreter is read by the script's execution
    expect(inputKinds(child, systemPath('/bin/sh'))).toContain('content');
    expect(root.uncacheable).toEqual([]);
    expect(child.uncacheable).toEqual([]);
    expect(outputsIn(root, dir)).toEqual({});
  });

  test('a failing execve of a nonexistent absolute path: absent input, no child execution', () => {
    const dir = tempDir();
    const run = runFixture(dir, 'exec_enoent', [path.join(dir, 'nope')]);
    expect(run.status).toBe(3);
    expect(run.record.exitCode).toBe(3);
    expect(run.record.executions).toHaveLength(1);
    const root = rootOf(run.record);
    expect(root.exitCode).toBe(3);
    expect(inputsIn(root, dir)).toEqual({ nope: 'absent' });
    expect(outputsIn(root, dir)).toEqual({});
    expect(root.uncacheable).toEqual([]);
  });

  test('two threads doing I/O: one execution with both files', () => {
    const dir = tempDir();
    writeFiles(dir, { in: 'x'.repeat(100000) });
    const root = single(runFixture(dir, 'threads_io', ['in', 'out']), dir);
    expect(dropCreateProbe(inputsIn(root, dir), 'out', false)).toEqual({ in: 'content' });
    expect(outputsIn(root, dir)).toEqual({ out: 'content' });
    expect(fs.statSync(path.join(dir, 'out')).size).toBe(2800);
  });

  test('fork without exec: the child stays in the parent execution', () => {
    const dir = tempDir();
    const root = single(runFixture(dir, 'fork_noexec', ['fn']), dir);
    expect(dropCreateProbe(inputsIn(root, dir), 'fn', false)).toEqual({});
    expect(outputsIn(root, dir)).toEqual({ fn: 'content' });
  });

  test('vfork + exec: a child execution in its own process, its outputs in both records', () => {
    const dir = tempDir();
    const writer = fixture('open_write_trunc');
    const run = runFixture(dir, 'vfork_exec', [writer, 'vf']);
    expect(run.status).toBe(0);
    expect(run.record.executions).toHaveLength(2);
    const root = rootOf(run.record);
    const [child] = childrenOf(run.record, root);
    expect(child.exe).toBe(writer);
    expect(child.argv).toEqual([writer, 'vf']);
    expect(child.cwd).toBe(dir);
    expect(child.pid).not.toBe(root.pid);
    expect(child.exitCode).toBe(0);
    expect(root.exitCode).toBe(0);
    for (const e of [root, child]) {
      expect(dropCreateProbe(inputsIn(e, dir), 'vf', false)).toEqual({});
      expect(outputsIn(e, dir)).toEqual({ vf: 'content' });
      expect(e.uncacheable).toEqual([]);
    }
    // the child's program is an input of the child and, through the subtree, of the root
    expect(inputKinds(child, writer)).toContain('content');
    expect(inputKinds(root, writer)).toContain('content');
  });

  test('exec from a non-main thread: the child execution takes over the process id', () => {
    const dir = tempDir();
    const writer = fixture('open_write_trunc');
    const run = runFixture(dir, 'exec_from_thread', [writer, 'et']);
    expect(run.status).toBe(0);
    expect(run.record.executions).toHaveLength(2);
    const root = rootOf(run.record);
    const [child] = childrenOf(run.record, root);
    expect(child.exe).toBe(writer);
    expect(child.argv).toEqual([writer, 'et']);
    expect(child.pid).toBe(root.pid);
    expect(child.exitCode).toBe(0);
    expect(root.exitCode).toBe(0);
    for (const e of [root, child]) {
      expect(dropCreateProbe(inputsIn(e, dir), 'et', false)).toEqual({});
      expect(outputsIn(e, dir)).toEqual({ et: 'content' });
      expect(e.uncacheable).toEqual([]);
    }
    expect(fs.readFileSync(path.join(dir, 'et'), 'utf8')).toBe('written\n');
  });

  test('dup2 a file onto stdout, then exec: the child execution starts with stdout = that file', () => {
    const dir = tempDir();
    const echo = systemPath('/bin/echo');
    const run = runFixture(dir, 'dup2_stdout', ['du', echo, 'hi']);
    expect(run.status).toBe(0);
    expect(run.stdout).toBe('');
    expect(fs.readFileSync(path.join(dir, 'du'), 'utf8')).toBe('from dup2_stdout\nhi\n');
    expect(run.record.executions).toHaveLength(2);
    const root = rootOf(run.record);
    const [child] = childrenOf(run.record, root);
    expect(child.exe).toBe(echo);
    expect(child.argv).toEqual([echo, 'hi']);
    expect(root.stdout.kind).toBe('socket');
    expect(child.stdout).toEqual({ kind: 'file', target: path.join(dir, 'du'), bytes: 3 });
    expect(dropCreateProbe(inputsIn(root, dir), 'du', false)).toEqual({});
    expect(outputsIn(root, dir)).toEqual({ du: 'content' });
    expect(root.uncacheable).toEqual([]);
    expect(child.uncacheable).toEqual([]);
  });

  test('a process dying of SIGKILL: signal 9, uncacheable, pcache exits 137', () => {
    const dir = tempDir();
    const run = runFixture(dir, 'sigkill_self', []);
    expect(run.status).toBe(137);
    expect(run.record.exitCode).toBeNull();
    expect(run.record.signal).toBe(9);
    expect(run.record.executions).toHaveLength(1);
    const root = rootOf(run.record);
    expect(root.exitCode).toBeNull();
    expect(root.signal).toBe(9);
    expect(root.uncacheable).toEqual([expect.stringContaining('killed by signal 9')]);
  });

  test('a child execution killed by SIGKILL is uncacheable, and so is its parent', () => {
    const dir = tempDir();
    const killer = fixture('sigkill_self');
    const run = runFixture(dir, 'child_sigkill', [killer]);
    expect(run.status).toBe(0);
    expect(run.record.exitCode).toBe(0);
    expect(run.record.executions).toHaveLength(2);
    const root = rootOf(run.record);
    const [child] = childrenOf(run.record, root);
    expect(child.exe).toBe(killer);
    expect(child.signal).toBe(9);
    expect(child.exitCode).toBeNull();
    expect(child.uncacheable).toEqual([expect.stringContaining('killed by signal 9')]);
    expect(root.exitCode).toBe(0);
    expect(root.signal).toBeNull();
    expect(root.uncacheable).toEqual(expect.arrayContaining([expect.stringContaining('killed by signal 9')]));
  });

  test('an orphan that outlives its parent: traced to the end, uncacheable', () => {
    const dir = tempDir();
    const run = runFixture(dir, 'orphan', ['orph']);
    expect(run.status).toBe(0);
    // pcache returns only once the orphan is gone, so its file is there
    expect(fs.readFileSync(path.join(dir, 'orph'), 'utf8')).toBe('orphan\n');
    expect(run.record.executions).toHaveLength(1);
    const root = rootOf(run.record);
    expect(root.exitCode).toBe(0);
    expect(root.uncacheable).toEqual(expect.arrayContaining([expect.stringContaining('left a process running')]));
    expect(dropCreateProbe(inputsIn(root, dir), 'orph', false)).toEqual({});
    expect(outputsIn(root, dir)).toEqual({ orph: 'content' });
  });
});

describe('the outside world', () => {
  test('a TCP connect to 127.0.0.1 makes the execution uncacheable', () => {
    const dir = tempDir();
    const run = runFixture(dir, 'socket_connect', []);
    expect(run.status).toBe(0);
    const root = rootOf(run.record);
    expect(root.uncacheable).toEqual(expect.arrayContaining([expect.stringMatching(/connected to .*127\.0\.0\.1/)]));
    expect(outputsIn(root, dir)).toEqual({});
  });

  test('reading /dev/urandom makes the execution uncacheable; its file is still an output', () => {
    const dir = tempDir();
    const run = runFixture(dir, 'urandom', ['ur']);
    expect(run.status).toBe(0);
    const root = rootOf(run.record);
    expect(root.uncacheable).toEqual([expect.stringContaining('read /dev/urandom')]);
    expect(dropCreateProbe(inputsIn(root, dir), 'ur', false)).toEqual({});
    expect(outputsIn(root, dir)).toEqual({ ur: 'content' });
    expect(fs.readFileSync(path.join(dir, 'ur'), 'utf8')).toMatch(/^[0-9a-f]{32}\n$/);
  });
});
