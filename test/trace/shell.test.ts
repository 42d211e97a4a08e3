// Shell-level tracer tests over real tools (sh = dash, cat, sort, cp, mv, tar,
// env, xz, python3): the execution tree each command line produces, and the exact
// classification of every path under the test's directory.
//
// Executions nest (DESIGN.md): every successful execve starts an execution
// inside the execution of the process that exec'd; forked children stay in their
// parent's execution until they exec.

import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import {
  childrenOf,
  cleanTempDirs,
  dropCreateProbe,
  execNamed,
  inputKinds,
  inputsIn,
  outputsIn,
  outputsOutside,
  recordProblems,
  rootOf,
  systemPath,
  tempDir,
  traceRun,
  writeFiles,
  TraceRun,
  TraceRunOptions,
} from './helpers';
import { tracerStats } from '../e2e/harness';

afterAll(cleanTempDirs);

const SH = '/bin/sh';
const PYTHON = '/usr/bin/python3';
/** A fixed PATH so lookups do not depend on the developer's shell setup. */
const PATH = '/usr/bin:/bin';

function run(dir: string, cmd: string[], opts: TraceRunOptions = {}): TraceRun {
  const r = traceRun(cmd, { cwd: dir, ...opts, env: { PATH, LC_ALL: 'C', ...(opts.env ?? {}) } });
  expect(recordProblems(r.record)).toEqual([]);
  expect(r.signal).toBeNull();
  return r;
}

/** Inputs under dir minus entries below `sub` that are at most absent/metadata probes (mkstemp names ...). */
function withoutProbesUnder(inputs: Record<string, string>, sub: string): Record<string, string> {
  const rest: Record<string, string> = {};
  for (const [rel, kind] of Object.entries(inputs)) {
    if (rel === sub || rel.startsWith(sub + '/')) {
      expect(['absent', 'metadata']).toContain(kind);
    } else {
      rest[rel] = kind;
    }
  }
  return rest;
}

describe('sh and coreutils', () => {
  test("sh -c 'head -c 300000 /dev/zero > /dev/null; python3 writev 2> /dev/null': bytes into /dev/null are counted, not copied", () => {
    const dir = tempDir('pcache-sh-');
    const py = "import os; os.writev(2, [b'ab', b'cde', b''])";
    const r = run(dir, [SH, '-c', `head -c 300000 /dev/zero > /dev/null; ${PYTHON} -c "${py}" 2> /dev/null`]);
    expect(r.status).toBe(0);
    const head = execNamed(r.record, 'head');
    expect(head.stdout).toEqual({ kind: 'null', target: '/dev/null', bytes: 300000 });
    const python = execNamed(r.record, 'python3');
    expect(python.stderr).toEqual({ kind: 'null', target: '/dev/null', bytes: 5 });
    expect([head.uncacheable, python.uncacheable]).toEqual([[], []]);
  });

  test("sh -c 'cat a b > c': sh opens c, cat reads a and b and writes to the inherited stdout", () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { a: 'a\n', b: 'b\n' });
    const r = run(dir, [SH, '-c', 'cat a b > c']);
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'c'), 'utf8')).toBe('a\nb\n');
    expect(r.record.executions).toHaveLength(2);
    const sh = rootOf(r.record);
    const cat = execNamed(r.record, 'cat');
    expect(sh.exe).toBe(systemPath(SH));
    expect(sh.argv).toEqual([SH, '-c', 'cat a b > c']);
    expect(cat.parent).toBe(sh.id);
    expect(cat.exe).toBe(systemPath('/usr/bin/cat'));
    expect(cat.argv).toEqual(['cat', 'a', 'b']);
    expect(dropCreateProbe(inputsIn(sh, dir), 'c', false)).toEqual({ a: 'content', b: 'content' });
    expect(outputsIn(sh, dir)).toEqual({ c: 'content' });
    expect(outputsOutside(sh, dir)).toEqual([]);
    expect(inputsIn(cat, dir)).toEqual({ a: 'content', b: 'content' });
    expect(cat.stdout).toEqual({ kind: 'file', target: path.join(dir, 'c'), bytes: 4 });
    expect(sh.uncacheable).toEqual([]);
    expect(cat.uncacheable).toEqual([]);
    expect(sh.exitCode).toBe(0);
    expect(cat.exitCode).toBe(0);
  });

  test("pipeline sh -c 'cat a | sort > b': one sh execution with two children", () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { a: 'pear\napple\nfig\n' });
    const r = run(dir, [SH, '-c', 'cat a | sort > b']);
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'b'), 'utf8')).toBe('apple\nfig\npear\n');
    expect(r.record.executions).toHaveLength(3);
    const sh = rootOf(r.record);
    const kids = childrenOf(r.record, sh);
    expect(kids.map((e) => e.argv).sort()).toEqual([['cat', 'a'], ['sort']]);
    const cat = execNamed(r.record, 'cat');
    const sort = execNamed(r.record, 'sort');
    expect(cat.pid).not.toBe(sort.pid);
    expect(inputsIn(cat, dir)).toEqual({ a: 'content' });
    expect(outputsIn(cat, dir)).toEqual({});
    expect(cat.stdout.kind).toBe('pipe');
    expect(cat.stdout.bytes).toBe(15);
    expect(sort.stdin.kind).toBe('pipe');
    expect(sort.stdout).toEqual({ kind: 'file', target: path.join(dir, 'b'), bytes: 15 });
    expect(inputsIn(sort, dir)).toEqual({});
    expect(dropCreateProbe(inputsIn(sh, dir), 'b', false)).toEqual({ a: 'content' });
    expect(outputsIn(sh, dir)).toEqual({ b: 'content' });
    // the pipe lives inside the sh execution: the whole pipeline is cacheable...
    expect(sh.uncacheable).toEqual([]);
    expect(cat.uncacheable).toEqual([]);
    // ...but sort on its own read a pipe it did not create: it cannot be keyed alone
    expect(sort.uncacheable).toEqual([expect.stringContaining('read stdin from a pipe')]);
  });

  test('sort -o: reads its input, writes its output', () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { in: '3\n1\n2\n' });
    const r = run(dir, ['sort', '-o', 'sorted', 'in']);
    expect(r.status).toBe(0);
    expect(r.record.executions).toHaveLength(1);
    const sort = rootOf(r.record);
    expect(sort.exe).toBe(systemPath('/usr/bin/sort'));
    expect(dropCreateProbe(inputsIn(sort, dir), 'sorted', false)).toEqual({ in: 'content' });
    expect(outputsIn(sort, dir)).toEqual({ sorted: 'content' });
    expect(outputsOutside(sort, dir)).toEqual([]);
    expect(sort.uncacheable).toEqual([]);
  });

  test('sort spilling to temp files: the temp files are no outputs', () => {
    const dir = tempDir('pcache-sh-');
    const nums = Array.from({ length: 100000 }, (_, i) => String((i * 7919) % 100003)).join('\n') + '\n';
    writeFiles(dir, { nums });
    fs.mkdirSync(path.join(dir, 'tmpd'));
    const r = run(dir, ['sort', '-S', '200K', '-T', 'tmpd', '-n', 'nums', '-o', 'sorted']);
    expect(r.status).toBe(0);
    expect(fs.readdirSync(path.join(dir, 'tmpd'))).toEqual([]);
    expect(r.record.executions).toHaveLength(1);
    const sort = rootOf(r.record);
    const inputs = withoutProbesUnder(inputsIn(sort, dir), 'tmpd');
    expect(dropCreateProbe(inputs, 'sorted', false)).toEqual({ nums: 'content' });
    expect(outputsIn(sort, dir)).toEqual({ sorted: 'content' });
    expect(sort.uncacheable).toEqual([]);
  });

  test('cp a d: a is a content input, d an absent input and a content output', () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { a: 'copied\n' });
    const r = run(dir, ['cp', 'a', 'd']);
    expect(r.status).toBe(0);
    expect(r.record.executions).toHaveLength(1);
    const cp = rootOf(r.record);
    expect(inputsIn(cp, dir)).toEqual({ a: 'content', d: 'absent' });
    expect(outputsIn(cp, dir)).toEqual({ d: 'content' });
    expect(outputsOutside(cp, dir)).toEqual([]);
    expect(cp.uncacheable).toEqual([]);
  });

  test('mv d e: d deleted, e content; d is a content input', () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { d: 'moved\n' });
    const r = run(dir, ['mv', 'd', 'e']);
    expect(r.status).toBe(0);
    expect(r.record.executions).toHaveLength(1);
    const mv = rootOf(r.record);
    const inputs = inputsIn(mv, dir);
    // mv's result does not depend on whether e existed (it replaces it); at most a probe
    expect([undefined, 'absent']).toContain(inputs.e);
    delete inputs.e;
    expect(inputs).toEqual({ d: 'content' });
    expect(outputsIn(mv, dir)).toEqual({ d: 'deleted', e: 'content' });
    expect(mv.uncacheable).toEqual([]);
  });

  test('tar cf of a directory tree: dirlists and contents in, the archive out', () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { 'src/f1': '1\n', 'src/sub/f2': '2\n' });
    const r = run(dir, ['tar', 'cf', 't.tar', 'src']);
    expect(r.status).toBe(0);
    expect(r.record.executions).toHaveLength(1);
    const tar = rootOf(r.record);
    expect(dropCreateProbe(inputsIn(tar, dir), 't.tar', false)).toEqual({
      src: 'dirlist',
      'src/f1': 'content',
      'src/sub': 'dirlist',
      'src/sub/f2': 'content',
    });
    expect(outputsIn(tar, dir)).toEqual({ 't.tar': 'content' });
    expect(outputsOutside(tar, dir)).toEqual([]);
    expect(tar.uncacheable).toEqual([]);
  });

  test('tar xf -C x: created directories and files out (chmod through /proc/self/fd included)', () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { 'src/f1': '1\n', 'src/sub/f2': '2\n' });
    execFileSync('tar', ['cf', 't.tar', 'src'], { cwd: dir });
    fs.mkdirSync(path.join(dir, 'x'));
    const r = run(dir, ['tar', 'xf', 't.tar', '-C', 'x']);
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'x/src/sub/f2'), 'utf8')).toBe('2\n');
    expect(r.record.executions).toHaveLength(1);
    const tar = rootOf(r.record);
    expect(inputsIn(tar, dir)).toEqual({
      't.tar': 'content',
      x: 'metadata',
      'x/src': 'absent',
      'x/src/f1': 'absent',
      'x/src/sub': 'absent',
      'x/src/sub/f2': 'absent',
    });
    expect(outputsIn(tar, dir)).toEqual({
      'x/src': 'mkdir',
      'x/src/f1': 'content',
      'x/src/sub': 'mkdir',
      'x/src/sub/f2': 'content',
    });
    expect(outputsOutside(tar, dir)).toEqual([]);
    expect(tar.uncacheable).toEqual([]);
  });

  test("exec chain sh -c 'exec env X=1 cat a': three nested executions in one process", () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { a: 'chained\n' });
    fs.mkdirSync(path.join(dir, 'nobin'));
    const r = run(dir, [SH, '-c', 'exec env X=1 cat a'], { env: { PATH: `${path.join(dir, 'nobin')}:/usr/bin` } });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('chained\n');
    expect(r.record.executions).toHaveLength(3);
    const sh = rootOf(r.record);
    const env = execNamed(r.record, 'env');
    const cat = execNamed(r.record, 'cat');
    expect(env.parent).toBe(sh.id);
    expect(cat.parent).toBe(env.id);
    expect(env.argv).toEqual(['env', 'X=1', 'cat', 'a']);
    expect(cat.argv).toEqual(['cat', 'a']);
    expect(new Set([sh.pid, env.pid, cat.pid]).size).toBe(1);
    expect(cat.env).toContain('X=1');
    expect(env.env).not.toContain('X=1');
    // each PATH miss is an absent input of the execution that searched
    expect(inputsIn(sh, dir)).toEqual({ a: 'content', 'nobin/cat': 'absent', 'nobin/env': 'absent' });
    expect(inputsIn(env, dir)).toEqual({ a: 'content', 'nobin/cat': 'absent' });
    expect(inputsIn(cat, dir)).toEqual({ a: 'content' });
    expect(inputKinds(cat, systemPath('/usr/bin/cat'))).toContain('content');
    expect(inputKinds(env, systemPath('/usr/bin/env'))).toContain('content');
    for (const e of [sh, env, cat]) {
      expect(e.exitCode).toBe(0);
      expect(e.uncacheable).toEqual([]);
      expect(e.stdout.kind).toBe('socket');
      expect(e.stdout.bytes).toBe(8);
    }
  });
});

describe('python3', () => {
  test('python3 -c writing a file', () => {
    const dir = tempDir('pcache-py-');
    const r = run(dir, [PYTHON, '-c', "open('out.txt', 'w').write('py\\n')"]);
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'out.txt'), 'utf8')).toBe('py\n');
    expect(r.record.executions).toHaveLength(1);
    const py = rootOf(r.record);
    expect(py.exe).toBe(systemPath(PYTHON));
    // /usr/bin/python3 is a symlink to python3.X: the link is a metadata input
    expect([...new Set(inputKinds(py, PYTHON))]).toEqual(['metadata']);
    expect(inputKinds(py, systemPath(PYTHON))).toContain('content');
    expect(dropCreateProbe(inputsIn(py, dir), 'out.txt', false)).toEqual({});
    expect(outputsIn(py, dir)).toEqual({ 'out.txt': 'content' });
    expect(py.uncacheable).toEqual([]);
  });

  test('python3 with four threads each writing a file', () => {
    const dir = tempDir('pcache-py-');
    writeFiles(dir, { in: 'shared input\n' });
    const script = [
      'import threading',
      'data = open("in").read()',
      'def work(i):',
      '    with open(f"t{i}", "w") as f: f.write(data * (i + 1))',
      'ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]',
      '[t.start() for t in ts]',
      '[t.join() for t in ts]',
    ].join('\n');
    const r = run(dir, [PYTHON, '-c', script]);
    expect(r.status).toBe(0);
    expect(r.record.executions).toHaveLength(1);
    const py = rootOf(r.record);
    let inputs = inputsIn(py, dir);
    for (const t of ['t0', 't1', 't2', 't3']) inputs = dropCreateProbe(inputs, t, false);
    expect(inputs).toEqual({ in: 'content' });
    expect(outputsIn(py, dir)).toEqual({ t0: 'content', t1: 'content', t2: 'content', t3: 'content' });
    expect(py.uncacheable).toEqual([]);
  });
});

describe('a multi-threaded tool', () => {
  test('xz -T2 compressing in two threads', () => {
    const dir = tempDir('pcache-xz-');
    // ~3 MB of poorly compressible text so xz really splits it into blocks for its threads
    let text = '';
    let x = 12345;
    while (text.length < 3_000_000) {
      x = (x * 1103515245 + 12345) % 2147483648;
      text += x.toString(36) + '\n';
    }
    writeFiles(dir, { big: text });
    const r = run(dir, ['xz', '-T2', '--block-size=500KiB', '-k', 'big']);
    expect(r.status).toBe(0);
    expect(execFileSync('xz', ['-dc', path.join(dir, 'big.xz')], { maxBuffer: 16 << 20 }).toString()).toBe(text);
    expect(r.record.executions).toHaveLength(1);
    const xz = rootOf(r.record);
    expect(inputsIn(xz, dir)).toEqual({ big: 'content', 'big.xz': 'absent' });
    expect(outputsIn(xz, dir)).toEqual({ 'big.xz': 'content' });
    expect(outputsOutside(xz, dir)).toEqual([]);
    expect(xz.uncacheable).toEqual([]);
  });
});

describe('exit status, signals and stdin', () => {
  test("sh -c 'exit 3': pcache exits 3", () => {
    const dir = tempDir('pcache-sh-');
    const r = run(dir, [SH, '-c', 'exit 3']);
    expect(r.status).toBe(3);
    expect(r.record.exitCode).toBe(3);
    expect(r.record.signal).toBeNull();
    expect(r.record.executions).toHaveLength(1);
    const sh = rootOf(r.record);
    expect(sh.exitCode).toBe(3);
    expect(sh.signal).toBeNull();
    // a non-zero exit is an ordinary, cacheable result
    expect(sh.uncacheable).toEqual([]);
  });

  test("sh -c 'kill -9 $$': pcache exits 137", () => {
    const dir = tempDir('pcache-sh-');
    const r = run(dir, [SH, '-c', 'kill -9 $$']);
    expect(r.status).toBe(137);
    expect(r.record.exitCode).toBeNull();
    expect(r.record.signal).toBe(9);
    expect(r.record.executions).toHaveLength(1);
    const sh = rootOf(r.record);
    expect(sh.signal).toBe(9);
    expect(sh.exitCode).toBeNull();
    expect(sh.uncacheable).toEqual([expect.stringContaining('killed by signal 9')]);
  });

  test('a nested execution exiting non-zero keeps its own exit code', () => {
    const dir = tempDir('pcache-sh-');
    const r = run(dir, [SH, '-c', 'sh -c "exit 4"; exit 0']);
    expect(r.status).toBe(0);
    expect(r.record.executions).toHaveLength(2);
    const outer = rootOf(r.record);
    const [inner] = childrenOf(r.record, outer);
    expect(inner.argv).toEqual(['sh', '-c', 'exit 4']);
    expect(inner.exitCode).toBe(4);
    expect(outer.exitCode).toBe(0);
  });

  test('reading stdin from a pipe outside the execution makes it uncacheable', () => {
    const dir = tempDir('pcache-sh-');
    const r = run(dir, ['cat'], { input: 'from outside\n' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('from outside\n');
    const cat = rootOf(r.record);
    expect(cat.stdin.kind).toBe('pipe');
    expect(cat.uncacheable).toEqual([expect.stringContaining('read stdin from a pipe')]);
  });

  test('stdin reads after an exec, or from another target, are each news to the execution', () => {
    // The tracer reports a process's stdin reads once per exec and fd 0 target: dash's
    // `read` takes one byte per call, and only the first one says anything new.
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { in: 'from the file\n' });
    const r = run(dir, [SH, '-c', 'read b < in; read a; printf "%s|%s|" "$a" "$b"; exec cat'], {
      input: 'first line\nsecond line\n',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('first line|from the file|second line\n');
    const sh = rootOf(r.record);
    const [cat] = childrenOf(r.record, sh);
    expect(cat.argv).toEqual(['cat']);
    expect(sh.uncacheable).toEqual([expect.stringContaining('read stdin from a pipe')]);
    expect(inputsIn(sh, dir)).toEqual({ in: 'content' });
    // the same process, the same pipe: a new execution all the same
    expect(cat.uncacheable).toEqual([expect.stringContaining('read stdin from a pipe')]);
  });

  test('stdin redirected from a file outside pcache: the file is a content input', () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { in: 'q\np\n' });
    const r = run(dir, ['sort'], { stdinFile: path.join(dir, 'in') });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('p\nq\n');
    const sort = rootOf(r.record);
    expect(sort.stdin).toEqual(expect.objectContaining({ kind: 'file', target: path.join(dir, 'in') }));
    expect(inputsIn(sort, dir)).toEqual({ in: 'content' });
    expect(sort.uncacheable).toEqual([]);
  });

  test('stdin redirected from a file inside the execution is a content input, not uncacheable', () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { a: 'via stdin\n' });
    const r = run(dir, [SH, '-c', 'cat < a'], { input: 'not read\n' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('via stdin\n');
    const sh = rootOf(r.record);
    const cat = execNamed(r.record, 'cat');
    expect(cat.stdin).toEqual(expect.objectContaining({ kind: 'file', target: path.join(dir, 'a') }));
    expect(inputsIn(sh, dir)).toEqual({ a: 'content' });
    expect(sh.uncacheable).toEqual([]);
  });
});

describe('more coreutils', () => {
  test("sh -c 'cat big > out': cat copies with copy_file_range and every byte is still counted", () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { big: 'x'.repeat(3_000_000) });
    const r = run(dir, [SH, '-c', 'cat big > out']);
    expect(r.status).toBe(0);
    expect(fs.statSync(path.join(dir, 'out')).size).toBe(3_000_000);
    const sh = rootOf(r.record);
    const cat = execNamed(r.record, 'cat');
    expect(inputsIn(cat, dir)).toEqual({ big: 'content' });
    expect(cat.stdout).toEqual({ kind: 'file', target: path.join(dir, 'out'), bytes: 3_000_000 });
    expect(cat.uncacheable).toEqual([]);
    expect(dropCreateProbe(inputsIn(sh, dir), 'out', false)).toEqual({ big: 'content' });
    expect(outputsIn(sh, dir)).toEqual({ out: 'content' });
  });

  test("sh -c 'cd sub && cat f > ../out': the child's cwd and relative paths follow the cd", () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { 'sub/f': 'in sub\n', f: 'in top\n' });
    const r = run(dir, [SH, '-c', 'cd sub && cat f > ../out']);
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'out'), 'utf8')).toBe('in sub\n');
    const sh = rootOf(r.record);
    const cat = execNamed(r.record, 'cat');
    expect(cat.cwd).toBe(path.join(dir, 'sub'));
    expect(inputsIn(cat, dir)).toEqual({ 'sub/f': 'content' });
    const shInputs = dropCreateProbe(inputsIn(sh, dir), 'out', false);
    // cd looked the directory up
    expect(shInputs).toEqual({ sub: 'metadata', 'sub/f': 'content' });
    expect(outputsIn(sh, dir)).toEqual({ out: 'content' });
  });

  test('rm -rf of a tree: every path in it deleted, the directories listed', () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { 'tree/a': 'a\n', 'tree/sub/b': 'b\n' });
    fs.symlinkSync('a', path.join(dir, 'tree/link'));
    const r = run(dir, ['rm', '-rf', 'tree']);
    expect(r.status).toBe(0);
    expect(fs.existsSync(path.join(dir, 'tree'))).toBe(false);
    const rm = rootOf(r.record);
    expect(outputsIn(rm, dir)).toEqual({
      tree: 'deleted',
      'tree/a': 'deleted',
      'tree/link': 'deleted',
      'tree/sub': 'deleted',
      'tree/sub/b': 'deleted',
    });
    expect(outputsOutside(rm, dir)).toEqual([]);
    // which entries exist decides what is deleted; their bytes do not matter
    expect(inputsIn(rm, dir)).toEqual({
      tree: 'dirlist',
      'tree/a': 'metadata',
      'tree/link': 'metadata',
      'tree/sub': 'dirlist',
      'tree/sub/b': 'metadata',
    });
    expect(rm.uncacheable).toEqual([]);
  });

  test('cp -r of a tree: directories created, files copied', () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { 'src/a': 'a\n', 'src/sub/b': 'b\n' });
    const r = run(dir, ['cp', '-r', 'src', 'dst']);
    expect(r.status).toBe(0);
    const cp = rootOf(r.record);
    expect(outputsIn(cp, dir)).toEqual({ dst: 'mkdir', 'dst/a': 'content', 'dst/sub': 'mkdir', 'dst/sub/b': 'content' });
    expect(outputsOutside(cp, dir)).toEqual([]);
    expect(inputsIn(cp, dir)).toEqual({
      dst: 'absent',
      'dst/a': 'absent',
      'dst/sub': 'absent',
      'dst/sub/b': 'absent',
      src: 'dirlist',
      'src/a': 'content',
      'src/sub': 'dirlist',
      'src/sub/b': 'content',
    });
    expect(cp.uncacheable).toEqual([]);
  });

  test('a #!/usr/bin/env script: the script execution (interpreter env) with python3 nested in it', () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { 'script.py': "#!/usr/bin/env python3\nopen('out', 'w').write('from script\\n')\n" });
    fs.chmodSync(path.join(dir, 'script.py'), 0o755);
    const r = run(dir, ['./script.py']);
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'out'), 'utf8')).toBe('from script\n');
    expect(r.record.executions).toHaveLength(2);
    const script = rootOf(r.record);
    const [py] = childrenOf(r.record, script);
    expect(script.exe).toBe(path.join(dir, 'script.py'));
    expect(inputKinds(script, systemPath('/usr/bin/env'))).toContain('content');
    expect(py.exe).toBe(systemPath(PYTHON));
    expect(py.argv).toEqual(['python3', './script.py']);
    expect(dropCreateProbe(inputsIn(py, dir), 'out', false)).toEqual({ 'script.py': 'content' });
    expect(dropCreateProbe(inputsIn(script, dir), 'out', false)).toEqual({ 'script.py': 'content' });
    expect(outputsIn(script, dir)).toEqual({ out: 'content' });
    expect(outputsIn(py, dir)).toEqual({ out: 'content' });
  });

  test('a script run again after the run re-pointed its interpreter link or rewrote it: each run has its own interpreter', () => {
    // The fold keeps each executable's interpreter chain for the run (ExecInputsMemo); the
    // link changed by a traced `ln` and the script rewritten by a traced `printf` are news.
    const dir = tempDir('pcache-sh-');
    fs.symlinkSync('/bin/dash', path.join(dir, 'il'));
    writeFiles(dir, { s: `#!${dir}/il\nexit 0\n` });
    fs.chmodSync(path.join(dir, 's'), 0o755);
    const r = run(dir, [
      SH,
      '-c',
      `./s one; ./s one; ln -sfn /usr/bin/python3 il; ./s two; printf '#!/usr/bin/env true\\n' > s; ./s three`,
    ]);
    expect(r.status).toBe(0);
    const runs = r.record.executions.filter((e) => e.exe === path.join(dir, 's'));
    expect(runs.map((e) => e.argv)).toEqual([['./s', 'one'], ['./s', 'one'], ['./s', 'two'], ['./s', 'three']]);
    const interpreters = runs.map((e) =>
      [systemPath('/usr/bin/dash'), fs.realpathSync('/usr/bin/python3'), systemPath('/usr/bin/env')].filter((p) => inputKinds(e, p).includes('content')),
    );
    expect(interpreters).toEqual([[systemPath('/usr/bin/dash')], [systemPath('/usr/bin/dash')], [fs.realpathSync('/usr/bin/python3')], [systemPath('/usr/bin/env')]]);
    for (const e of runs.slice(0, 3)) expect(inputKinds(e, path.join(dir, 'il'))).toEqual(['metadata']);
    expect(inputKinds(runs[3], path.join(dir, 'il'))).toEqual([]);
  });

  test('a script whose interpreter is a script: the script, the inner script, the link, dash and its loader', () => {
    const dir = tempDir('pcache-sh-');
    fs.symlinkSync('/bin/dash', path.join(dir, 'shl'));
    writeFiles(dir, { inner: `#!${dir}/shl -e\n`, script: `#!${dir}/inner\n` });
    fs.chmodSync(path.join(dir, 'inner'), 0o755);
    fs.chmodSync(path.join(dir, 'script'), 0o755);
    const r = run(dir, ['./script']);
    expect(r.status).toBe(0);
    const root = rootOf(r.record);
    expect(inputsIn(root, dir)).toEqual({ script: 'content', inner: 'content', shl: 'metadata' });
    expect(inputKinds(root, systemPath('/usr/bin/dash'))).toContain('content');
    expect(inputKinds(root, systemPath('/lib64/ld-linux-x86-64.so.2'))).toContain('content');
    // the symlinks on the way to dash and to the loader (a merged /usr has /bin and /lib64)
    for (const link of ['/bin', '/lib64']) {
      if (fs.lstatSync(link).isSymbolicLink()) expect(inputKinds(root, link)).toContain('metadata');
    }
  });

  // `merged`: 1 KiB, then one big write cut short by a single signal. The tracer merges a
  // task's consecutive writes into one event, so the cut must fall at the big write's own place
  // in the merged bytes (checked: cutting at the event's start counts 1 KiB less).
  test.each([
    ['repeated signals', '8', 8 << 20],
    ['one signal, merged writes', '1 merged', 1 << 20],
  ])('a write into a slow pipe cut short by a signal: never counted twice (%s)', (_name, args, total) => {
    const dir = tempDir('pcache-sig-');
    const writer = path.resolve(__dirname, '../../fixtures/bin/pipe_write_interrupted');
    // The reader sleeps while the 64 KiB pipe fills; SIGALRM cuts the blocked write short, and
    // the program writes the rest.
    const r = run(dir, [SH, '-c', `${writer} ${args} | { sleep 0.5; cat > /dev/null; }`]);
    expect(r.status).toBe(0);
    const w = execNamed(r.record, 'pipe_write_interrupted');
    expect(w.stdout.kind).toBe('pipe');
    // either exactly the bytes that went out, or the execution says it could not capture them
    if (w.uncacheable.length === 0) {
      expect(w.stdout.bytes).toBe(total);
    } else {
      expect(w.uncacheable).toEqual([expect.stringMatching(/cannot capture \(write\)/)]);
    }
  });

  test('a write to a regular-file stdout cut short by RLIMIT_FSIZE: exactly what the kernel took is counted', () => {
    const dir = tempDir('pcache-short-');
    const writer = path.resolve(__dirname, '../../fixtures/bin/file_write_short');
    const r = run(dir, [SH, '-c', `${writer} > out`]);
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'out'), 'utf8')).toBe('x'.repeat(4096));
    const w = execNamed(r.record, 'file_write_short');
    expect([w.stdout.kind, w.stdout.bytes, w.uncacheable]).toEqual(['file', 4096, []]);
  });

  test('several processes writing one regular-file stdout in turn: every byte, in order', () => {
    const dir = tempDir('pcache-turns-');
    const r = run(dir, [SH, '-c', "{ echo one; /usr/bin/printf 'two '; echo three; seq 3; } > out"]);
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'out'), 'utf8')).toBe('one\ntwo three\n1\n2\n3\n');
    const sh = rootOf(r.record);
    expect(sh.uncacheable).toEqual([]);
    const printf = execNamed(r.record, 'printf');
    const seq = execNamed(r.record, 'seq');
    expect([printf.stdout.kind, printf.stdout.bytes, printf.uncacheable]).toEqual(['file', 4, []]);
    expect([seq.stdout.kind, seq.stdout.bytes, seq.uncacheable]).toEqual(['file', 6, []]);
  });

  test('stdout open read-only: the failed write counts nothing and the run stays cacheable', () => {
    const dir = tempDir('pcache-rdonly-');
    writeFiles(dir, { in: 'unchanged\n' });
    const r = run(dir, [SH, '-c', "/usr/bin/printf hello 1< in; echo status $? >&2"]);
    expect(r.stderr).toContain('status 1');
    expect(fs.readFileSync(path.join(dir, 'in'), 'utf8')).toBe('unchanged\n');
    const printf = execNamed(r.record, 'printf');
    expect([printf.exitCode, printf.stdout.bytes, printf.uncacheable]).toEqual([1, 0, []]);
  });

  test('a signal that interrupts a later write to another fd does not touch the stdout write before it', () => {
    const dir = tempDir('pcache-sig2-');
    const writer = path.resolve(__dirname, '../../fixtures/bin/pipe_write_then_other_fd');
    const r = run(dir, [SH, '-c', `${writer} | cat > out`]);
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'out'), 'utf8')).toBe('x'.repeat(4096));
    const w = execNamed(r.record, 'pipe_write_then_other_fd');
    expect([w.stdout.kind, w.uncacheable, w.stdout.bytes]).toEqual(['pipe', [], 4096]);
  });

  test.each(['ignore', 'block'])('a write into a pipe whose reader left (SIGPIPE %sed): only what went out is counted', (mode) => {
    const dir = tempDir('pcache-epipe-');
    const writer = path.resolve(__dirname, '../../fixtures/bin/pipe_write_epipe');
    const r = run(dir, [SH, '-c', `${writer} ${mode} | head -1`]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('first\n');
    const w = execNamed(r.record, 'pipe_write_epipe');
    expect(w.exitCode).toBe(0);
    if (mode === 'block' || w.uncacheable.length === 0) {
      // blocked: no signal shows the failure, so the count must come from the call's exit
      expect([w.uncacheable, w.stdout.bytes]).toEqual([[], 6]);
    } else {
      expect(w.uncacheable).toEqual([expect.stringMatching(/cannot capture \(write\)/)]);
    }
  });

  test('pwrite to a stdout pipe fails (ESPIPE): its bytes are not counted', () => {
    const dir = tempDir('pcache-espipe-');
    const py = 'import os\ntry:\n    os.pwrite(1, b"lost", 0)\nexcept OSError:\n    pass\nos.write(1, b"kept\\n")\n';
    const r = run(dir, [SH, '-c', `${PYTHON} -c '${py}' | cat`]);
    expect(r.stdout).toBe('kept\n');
    const p = execNamed(r.record, 'python3');
    expect([p.uncacheable, p.stdout.bytes]).toEqual([[], 5]);
  });

  test('python3 os.sendfile to stdout: the bytes are counted', () => {
    const dir = tempDir('pcache-py-');
    writeFiles(dir, { src: 'y'.repeat(100000) });
    const r = run(dir, [
      PYTHON,
      '-c',
      'import os\nfd = os.open("src", os.O_RDONLY)\nn = 0\nwhile True:\n    k = os.sendfile(1, fd, None, 1 << 20)\n    if k == 0: break\n    n += k\n',
    ]);
    expect(r.status).toBe(0);
    expect(r.stdout.length).toBe(100000);
    const py = rootOf(r.record);
    expect(inputsIn(py, dir)).toEqual({ src: 'content' });
    // either the bytes were captured, or the execution says it could not capture them
    if (py.uncacheable.length === 0) {
      expect(py.stdout.bytes).toBe(100000);
    } else {
      expect(py.uncacheable).toEqual([expect.stringMatching(/sendfile/)]);
    }
  });
});

describe('executions in order and in parallel', () => {
  test("a file written by sh and then read by a child is the child's input, not the parent's", () => {
    const dir = tempDir('pcache-sh-');
    const r = run(dir, [SH, '-c', 'echo hi > f; cat f']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('hi\n');
    const sh = rootOf(r.record);
    const cat = execNamed(r.record, 'cat');
    expect(dropCreateProbe(inputsIn(sh, dir), 'f', false)).toEqual({});
    expect(outputsIn(sh, dir)).toEqual({ f: 'content' });
    expect(inputsIn(cat, dir)).toEqual({ f: 'content' });
    expect(outputsIn(cat, dir)).toEqual({});
  });

  test('a file one child writes and a later sibling reads: input of the sibling only', () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { a: 'original\n' });
    const r = run(dir, [SH, '-c', 'cp a b; cat b']);
    expect(r.status).toBe(0);
    const sh = rootOf(r.record);
    const cp = execNamed(r.record, 'cp');
    const cat = execNamed(r.record, 'cat');
    expect(inputsIn(cp, dir)).toEqual({ a: 'content', b: 'absent' });
    expect(outputsIn(cp, dir)).toEqual({ b: 'content' });
    expect(inputsIn(cat, dir)).toEqual({ b: 'content' });
    // for sh, b was absent at the start and then made inside its subtree
    expect(inputsIn(sh, dir)).toEqual({ a: 'content', b: 'absent' });
    expect(outputsIn(sh, dir)).toEqual({ b: 'content' });
  });

  test('50 background children at once: each its own execution with its own output', () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { a: 'shared\n' });
    const r = run(dir, [SH, '-c', 'for i in $(seq 50); do cat a > o$i & done; wait']);
    expect(r.status).toBe(0);
    const sh = rootOf(r.record);
    const cats = r.record.executions.filter((e) => e.argv[0] === 'cat');
    const seqs = r.record.executions.filter((e) => e.argv[0] === 'seq');
    expect(cats).toHaveLength(50);
    expect(seqs).toHaveLength(1);
    expect(r.record.executions).toHaveLength(52);
    const targets = new Set<string>();
    for (const c of cats) {
      expect(c.parent).toBe(sh.id);
      expect(inputsIn(c, dir)).toEqual({ a: 'content' });
      expect(c.stdout.kind).toBe('file');
      targets.add(c.stdout.target);
      expect(c.stdout.bytes).toBe(7);
      expect(c.exitCode).toBe(0);
      expect(c.uncacheable).toEqual([]);
    }
    expect(targets.size).toBe(50);
    let shInputs = inputsIn(sh, dir);
    const expectedOut: Record<string, string> = {};
    for (let i = 1; i <= 50; i++) {
      shInputs = dropCreateProbe(shInputs, `o${i}`, false);
      expectedOut[`o${i}`] = 'content';
    }
    expect(shInputs).toEqual({ a: 'content' });
    expect(outputsIn(sh, dir)).toEqual(expectedOut);
    expect(sh.uncacheable).toEqual([]);
  });
});

describe('many short processes', () => {
  // A deadlock detector, not a timing test: traceRun gives up after 60 s, so a
  // tracee left stopped forever (a lost exec decision, a lost early stop) fails here.
  test('500 sequential vfork+exec of /bin/true: every one recorded, nothing left stopped', () => {
    const dir = tempDir('pcache-sh-');
    const r = run(dir, [SH, '-c', 'for i in $(seq 500); do /bin/true; done']);
    expect(r.status).toBe(0);
    const sh = rootOf(r.record);
    const trues = r.record.executions.filter((e) => e.argv[0] === '/bin/true');
    expect(trues).toHaveLength(500);
    expect(r.record.executions).toHaveLength(502); // sh, seq and the 500
    for (const t of trues) {
      expect(t.parent).toBe(sh.id);
      expect(t.exitCode).toBe(0);
    }
    expect(sh.uncacheable).toEqual([]);
  });
});

// Reads of fd 0 do not stop in the base filter. A process that put something on its fd 0
// itself (the forked shell of `a | b`, bash's `b < f`) and then execs is taken to read it:
// judged at the exec, no stops. One that execs with the fd 0 it inherited gets read stops
// (the body of `... | while read x`, which seldom reads it). /dev/null needs neither.
describe('stdin judged at exec', () => {
  // 20,000 one-byte reads of stdin
  const ONE_BYTE_READS = `head -c 20000 /dev/zero | ${PYTHON} -c "
import sys
r, n = sys.stdin.buffer.raw, 0
while r.read(1): n += 1
print(n)"`;

  test('the reader of a pipe the script made is uncacheable at its exec and never stops on a read', () => {
    const dir = tempDir('pcache-sh-');
    const r = run(dir, [SH, '-c', ONE_BYTE_READS], { env: { PCACHE_TRACER_STATS: '1' } });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('20000\n');
    const sh = rootOf(r.record);
    const py = execNamed(r.record, 'python3');
    expect(py.stdin.kind).toBe('pipe');
    expect(py.uncacheable).toEqual([expect.stringContaining('read stdin from a pipe outside the execution')]);
    expect(sh.uncacheable).toEqual([]);
    const stats = tracerStats(r.stderr);
    expect(stats.stdin_judged_at_exec).toBe(1); // python; head's fd 0 is /dev/null, pcache's
    expect(stats.stops_seccomp).toBeLessThan(10000);
  });

  test("with an outside pipe on the root's stdin every process stops on its reads, as before", () => {
    const dir = tempDir('pcache-sh-');
    const r = run(dir, [SH, '-c', ONE_BYTE_READS], { input: 'outside\n', env: { PCACHE_TRACER_STATS: '1' } });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('20000\n');
    expect(execNamed(r.record, 'python3').uncacheable).toEqual([expect.stringContaining('read stdin from a pipe outside the execution')]);
    // the root never read its stdin
    expect(rootOf(r.record).uncacheable).toEqual([]);
    expect(tracerStats(r.stderr).stops_seccomp).toBeGreaterThan(20000);
  });

  test('commands in the body of `... | while read` stop on reads: the one that reads is uncacheable, the others are not', () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { f: 'b\na\n' });
    const r = run(dir, [SH, '-c', "printf '1\\n2\\n3\\n4\\n' | while read v; do sort f > s$v; head -n1 > h$v; done"]);
    expect(r.status).toBe(0);
    const sorts = r.record.executions.filter((e) => e.argv[0] === 'sort');
    const heads = r.record.executions.filter((e) => e.argv[0] === 'head');
    // dash's read takes one byte at a time; head (buffered) takes the rest: one round
    expect(sorts).toHaveLength(1);
    expect(heads).toHaveLength(1);
    expect(fs.readFileSync(path.join(dir, 'h1'), 'utf8')).toBe('2\n');
    expect(sorts[0].stdin.kind).toBe('pipe');
    expect(sorts[0].uncacheable).toEqual([]);
    expect(heads[0].uncacheable).toEqual([expect.stringContaining('read stdin from a pipe outside the execution')]);
    expect(rootOf(r.record).uncacheable).toEqual([]);
  });

  test("bash's `cmd < file`: the file is the command's content input", () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { in: 'abc\n' });
    const r = run(dir, ['/bin/bash', '-c', 'tr a-z A-Z < in > up; true']);
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'up'), 'utf8')).toBe('ABC\n');
    const tr = execNamed(r.record, 'tr');
    expect(tr.stdin).toEqual(expect.objectContaining({ kind: 'file', target: path.join(dir, 'in') }));
    expect(inputsIn(tr, dir)).toEqual({ in: 'content' });
    expect(outputsIn(rootOf(r.record), dir)).toEqual({ up: 'content' });
    expect(tr.uncacheable).toEqual([]);
  });

  test('a shell that moves a pipe from outside onto its fd 0 for a builtin read is uncacheable', () => {
    // The inner sh starts with fd 0 /dev/null and fd 2 the read end of the outer script's
    // pipe: `read x <&2` dup2s fd 2 onto fd 0 and reads it in the shell's own process,
    // with no exec after. (A stream open for reading on fd 3 or above is judged at the
    // exec already: "streams on fd 3 and above" below.)
    const dir = tempDir('pcache-sh-');
    const r = run(dir, [SH, '-c', `printf 'hello\\n' | { ${SH} -c 'read x <&2; echo "got $x"' 2<&0 </dev/null; }`]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('got hello\n');
    const inner = r.record.executions.find((e) => e.argv[0] === SH && e.parent !== null)!;
    expect(inner.stdin.kind).toBe('null');
    expect(inner.uncacheable).toEqual([expect.stringContaining('read stdin from a pipe outside the execution')]);
    expect(rootOf(r.record).uncacheable).toEqual([]);
  });

});

describe('streams on fd 3 and above from outside', () => {
  test('a pipe open for reading there makes the execution uncacheable; a write end does not', () => {
    const dir = tempDir('pcache-sh-');
    const read = `${PYTHON} -c 'import os, sys; sys.stdout.write(os.read(3, 100).decode())'`;
    const r = run(dir, [SH, '-c', `printf 'hi\\n' | { ${read} 3<&0 </dev/null; }; { ${PYTHON} -c 'print(1)' 3>&1; } | cat`]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('hi\n1\n');
    const [reader, writer] = r.record.executions.filter((e) => e.exe === PYTHON || e.argv[0] === PYTHON);
    expect(reader.uncacheable).toEqual([expect.stringMatching(/^started with a pipe open for reading on fd 3 from outside it \(pipe:\[\d+\]\)/)]);
    expect(writer.uncacheable).toEqual([]);
    expect(rootOf(r.record).uncacheable).toEqual([]);
  });
});

describe('the size of a terminal', () => {
  // script(1) gives the command a pseudo-terminal on fds 0-2; stty sets its size first.
  const onTerminal = (dir: string, rows: number, cols: number, cmd: string): TraceRun =>
    run(dir, ['script', '-qec', `stty rows ${rows} cols ${cols} && ${cmd}`, '/dev/null']);

  test('ls on a terminal asks its width: an input of ls and of the shell around it, by descriptor', () => {
    const dir = tempDir('pcache-sh-');
    writeFiles(dir, { 'a.txt': '', 'b.txt': '' });
    const r = onTerminal(dir, 21, 77, `${SH} -c 'ls ${dir}; ls ${dir} > ${dir}/list.txt'`);
    expect(r.status).toBe(0);
    const shell = r.record.executions.find((e) => e.argv[0] === SH && e.argv[2]?.startsWith('ls '))!;
    const [onTty, toFile] = childrenOf(r.record, shell);
    const terminalInputs = (e: typeof shell) => e.inputs.filter((i) => i.kind === 'terminal');
    expect(terminalInputs(onTty)).toEqual([{ path: '/dev/fd/1', kind: 'terminal', size: '21x77' }]);
    // its stdout a file, ls does not ask (isatty says no first)
    expect(terminalInputs(toFile)).toEqual([]);
    expect(terminalInputs(shell)).toEqual([{ path: '/dev/fd/1', kind: 'terminal', size: '21x77' }]);
    expect(onTty.uncacheable).toEqual([]);
  });

  test('stty changing the terminal is uncacheable (and so is what contains it)', () => {
    const dir = tempDir('pcache-sh-');
    const r = onTerminal(dir, 21, 77, `${SH} -c 'stty cols 90; ls ${dir}'`);
    expect(r.status).toBe(0);
    const shell = r.record.executions.find((e) => e.argv[0] === SH && e.argv[2]?.startsWith('stty '))!;
    const [stty, ls] = childrenOf(r.record, shell);
    expect(stty.argv).toEqual(['stty', 'cols', '90']);
    expect(stty.uncacheable).toEqual([expect.stringMatching(/^changed terminal \/dev\/pts\/\d+ \(TIOCSWINSZ\)$/)]);
    // (the shell reads its stdin, the terminal, too)
    expect(shell.uncacheable).toContainEqual(`child execution ${stty.id}: changed terminal ${stty.stdin.target} (TIOCSWINSZ)`);
    // ls saw what stty left
    expect(ls.inputs.filter((i) => i.kind === 'terminal')).toEqual([{ path: '/dev/fd/1', kind: 'terminal', size: '21x90' }]);
    expect(ls.uncacheable).toEqual([]);
  });

  test('a terminal that is none of its stdin, stdout or stderr makes the execution uncacheable', () => {
    const dir = tempDir('pcache-sh-');
    // /dev/tty opened without waiting (bash's probe; not a read of the terminal), then asked its size
    const py = `import os; fd = os.open('/dev/tty', os.O_RDONLY | os.O_NONBLOCK); print(os.get_terminal_size(fd).columns)`;
    const r = onTerminal(dir, 21, 77, `${PYTHON} -c "${py}" > ${dir}/cols.txt 2>/dev/null < /dev/null`);
    expect(fs.readFileSync(path.join(dir, 'cols.txt'), 'utf8')).toBe('77\n');
    const python = execNamed(r.record, 'python3');
    expect(python.uncacheable).toEqual(['asked the size of terminal /dev/tty, which is not its stdin, stdout or stderr']);
  });
});

describe('the CPUs a process may run on', () => {
  test('nproc: the count its execution and the shell around it started with is their input', () => {
    const dir = tempDir('pcache-sh-');
    const r = run(dir, ['taskset', '-c', '0', SH, '-c', `nproc > ${dir}/n.txt`]);
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'n.txt'), 'utf8')).toBe('1\n');
    const cpus = (e: TraceRun['record']['executions'][number]) => e.inputs.filter((i) => i.kind === 'cpus');
    expect(cpus(execNamed(r.record, 'nproc'))).toEqual([{ path: '/proc/self/status', kind: 'cpus', size: '1' }]);
    expect(cpus(r.record.executions.find((e) => e.argv[0] === SH)!)).toEqual([{ path: '/proc/self/status', kind: 'cpus', size: '1' }]);
  });

  test("asking another process's CPUs (taskset -p) makes the execution uncacheable", () => {
    const dir = tempDir('pcache-sh-');
    const r = run(dir, [SH, '-c', `taskset -p $$ > ${dir}/mask.txt`]);
    expect(r.status).toBe(0);
    const taskset = execNamed(r.record, 'taskset');
    expect(taskset.uncacheable).toEqual(['unhandled syscall sched_getaffinity: asked the CPUs of another process']);
    const shell = r.record.executions.find((e) => e.argv[0] === SH)!;
    expect(shell.uncacheable).toEqual([`child execution ${taskset.id}: unhandled syscall sched_getaffinity: asked the CPUs of another process`]);
  });
});
