import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ExecRequest, FdSnapshot, FileType, FsEvent, FsOp, IoEvent, NativeEvent, NetEvent } from '../../src/trace/native';
import { TraceFolder, fsEffects, pathPolicy, type FinalState, type FolderOptions } from '../../src/trace/fold';
import type { ExecutionRecord, InputRecord } from '../../src/trace/record';

// ---------------------------------------------------------------------------
// Synthetic tracer: builds events the way the native tracer reports them.

const { O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_DIRECTORY } = fs.constants;
const O_RDONLY = 0;

function fd(n: number, target: string, kind: FdSnapshot['kind'], pos = 0): FdSnapshot {
  return { fd: n, target, kind, pos, flags: 0 };
}

/** stdin from a terminal, stdout and stderr to pipes owned by whoever runs pcache */
const OUTER_FDS = [fd(0, '/dev/pts/0', 'tty'), fd(1, 'pipe:[100]', 'pipe'), fd(2, 'pipe:[200]', 'pipe')];

class Sim {
  /** final file-system state, consulted when an execution ends */
  files = new Map<string, FinalState>();
  ended: number[] = [];
  folder: TraceFolder;
  private token = 1;
  private clock = 1000;

  constructor(implied: (req: ExecRequest) => InputRecord[] = () => [], extra: FolderOptions = {}) {
    this.folder = new TraceFolder({
      stat: (p) => this.files.get(p) ?? { type: '-', mode: 0 },
      execInputs: implied,
      list: (dir) => [...new Set([...this.files.keys()].filter((p) => p.startsWith(dir + '/')).map((p) => p.slice(dir.length + 1).split('/')[0]))],
      ignoreDirs: ['/home/u/.cache/pcache'],
      onExecutionEnd: (r) => this.ended.push(r.id),
      ...extra,
    });
  }

  file(p: string, type: FileType = 'f', mode = 0o644, linkTarget?: string): void {
    this.files.set(p, { type, mode, linkTarget });
  }

  send(...evs: NativeEvent[]): void {
    this.folder.events(evs);
  }

  /** request + successful exec of `argv` by thread `tid` of process `tgid` */
  /** Returns the exec's token (a read-back event names its execution by it). */
  exec(tgid: number, argv: string[], opts: { tid?: number; fds?: FdSnapshot[]; path?: string; links?: string[]; readback?: boolean } = {}): number {
    const token = this.token++;
    const tid = opts.tid ?? tgid;
    this.folder.execRequest({
      token,
      pid: tid,
      tgid,
      path: opts.path ?? `/usr/bin/${argv[0]}`,
      execSig: '0000000000000003',
      links: opts.links ?? [],
      argv,
      env: ['PATH=/usr/bin'],
      cwd: '/work',
      umask: 0o022,
      fds: opts.fds ?? OUTER_FDS,
      time: this.clock++,
      ...(opts.readback ? { readback: true } : {}),
    });
    this.send({ k: 'exec', pid: tgid, formerTid: tid, token });
    return token;
  }

  fork(parent: number, child: number): void {
    this.send({ k: 'spawn', pid: child, parent, thread: false, tgid: child });
  }

  thread(parentTid: number, tid: number, tgid: number): void {
    this.send({ k: 'spawn', pid: tid, parent: parentTid, thread: true, tgid });
  }

  exit(tgid: number, code: number | null = 0, signal: number | null = null): void {
    this.send({ k: 'exit', pid: tgid, tgid, processExit: true, code, signal, time: this.clock++ });
  }

  fs(pid: number, op: FsOp, path: string, type: FileType, more: Partial<FsEvent> = {}): void {
    this.send({ k: 'fs', pid, op, path, flags: 0, mode: 0, follow: true, type, links: [], result: null, ...more });
  }

  open(pid: number, path: string, type: FileType, flags: number, links: string[] = []): void {
    this.fs(pid, 'open', path, type, { flags, links });
  }

  write(pid: number, fdNum: number, target: string, text: string, kind: FdSnapshot['kind'] = 'pipe'): void {
    const data = Buffer.from(text);
    this.send({ k: 'io', pid, fd: fdNum, dir: 'w', target, kind, data, count: data.length, syscall: 'write' });
  }

  read0(pid: number, target: string, kind: FdSnapshot['kind']): void {
    this.send({ k: 'io', pid, fd: 0, dir: 'r', target, kind, count: 10, syscall: 'read' });
  }

  net(pid: number, op: NetEvent['op'], family: number, address: string, result?: number): void {
    this.send({ k: 'net', pid, op, family, address, socktype: 1, result });
  }

  rec(id: number): ExecutionRecord {
    const r = this.folder.executions().find((e) => e.id === id);
    if (!r) throw new Error(`no execution ${id}`);
    return r;
  }
}

/** Inputs as {path, kind}: the record may carry more per input (the cache's before-state). */
function ins(r: ExecutionRecord): Array<{ path: string; kind: string }> {
  return r.inputs.map((i) => ({ path: i.path, kind: i.kind }));
}

/** A root execution (id 1, pid 10) that runs `body` and exits 0. */
function single(body: (s: Sim) => void, setup: (s: Sim) => void = () => undefined): ExecutionRecord {
  const s = new Sim();
  setup(s);
  s.exec(10, ['tool']);
  body(s);
  s.exit(10, 0);
  return s.rec(1);
}

// ---------------------------------------------------------------------------

describe('inputs and outputs of one execution', () => {
  test('read-only open of an existing file is a content input and nothing else', () => {
    const r = single((s) => s.open(10, '/data/in.txt', 'f', O_RDONLY), (s) => s.file('/data/in.txt'));
    expect(ins(r)).toEqual([{ path: '/data/in.txt', kind: 'content' }]);
    expect(r.outputs).toEqual([]);
  });

  test('create with O_TRUNC: a created content output; no input (an existing file would keep its mode, and so does a replay)', () => {
    const r = single((s) => {
      s.open(10, '/data/out.txt', '-', O_WRONLY | O_CREAT | O_TRUNC);
      s.file('/data/out.txt', 'f', 0o640);
    });
    expect(ins(r)).toEqual([]);
    expect(r.outputs).toEqual([{ path: '/data/out.txt', kind: 'content', how: 'created', mode: 0o640, keepsMode: true }]);
  });

  test('create without O_TRUNC observed absence', () => {
    const r = single((s) => {
      s.open(10, '/data/log', '-', O_WRONLY | O_CREAT | O_APPEND);
      s.file('/data/log');
    });
    expect(ins(r)).toEqual([{ path: '/data/log', kind: 'absent' }]);
    expect(r.outputs).toEqual([{ path: '/data/log', kind: 'content', how: 'created', mode: 0o644, keepsMode: true }]);
  });

  test('append to an existing file is both input and output', () => {
    const r = single((s) => s.open(10, '/data/log', 'f', O_WRONLY | O_APPEND), (s) => s.file('/data/log'));
    expect(ins(r)).toEqual([{ path: '/data/log', kind: 'content' }]);
    expect(r.outputs).toEqual([{ path: '/data/log', kind: 'content', how: 'appended', mode: 0o644, keepsMode: true }]);
  });

  test('O_RDWR without truncation reads and writes; O_RDWR|O_TRUNC observes nothing (the mode survives, in a replay too)', () => {
    const r = single(
      (s) => {
        s.open(10, '/db', 'f', O_RDWR);
        s.open(10, '/scratch', 'f', O_RDWR | O_TRUNC);
      },
      (s) => {
        s.file('/db');
        s.file('/scratch');
      },
    );
    expect(ins(r)).toEqual([
      { path: '/db', kind: 'content' },
    ]);
    expect(r.outputs).toEqual([
      { path: '/db', kind: 'content', how: 'written', mode: 0o644, keepsMode: true },
      { path: '/scratch', kind: 'content', how: 'truncated', mode: 0o644, keepsMode: true },
    ]);
  });

  test('read then rewritten in place: input and truncated output', () => {
    const r = single(
      (s) => {
        s.open(10, '/f', 'f', O_RDONLY);
        s.open(10, '/f', 'f', O_WRONLY | O_TRUNC);
      },
      (s) => s.file('/f'),
    );
    expect(ins(r)).toEqual([{ path: '/f', kind: 'content' }]);
    expect(r.outputs).toEqual([{ path: '/f', kind: 'content', how: 'truncated', mode: 0o644, keepsMode: true }]);
  });

  test('a file written then read is not an input', () => {
    const r = single((s) => {
      s.open(10, '/tmp/t', '-', O_WRONLY | O_CREAT | O_TRUNC);
      s.open(10, '/tmp/t', 'f', O_RDONLY);
      s.fs(10, 'stat', '/tmp/t', 'f');
      s.file('/tmp/t');
    });
    expect(ins(r)).toEqual([]);
    expect(r.outputs).toEqual([{ path: '/tmp/t', kind: 'content', how: 'created', mode: 0o644, keepsMode: true }]);
  });

  test('probed absent, then created: still an absent input', () => {
    const r = single((s) => {
      s.fs(10, 'stat', '/out', '-');
      s.open(10, '/out', '-', O_WRONLY | O_CREAT | O_TRUNC);
      s.file('/out');
    });
    expect(ins(r)).toEqual([{ path: '/out', kind: 'absent' }]);
    expect(r.outputs).toEqual([{ path: '/out', kind: 'content', how: 'created', mode: 0o644, keepsMode: true }]);
  });

  test('O_CREAT|O_EXCL on an existing path only observed its existence', () => {
    const r = single((s) => s.open(10, '/lock', 'f', O_WRONLY | O_CREAT | O_EXCL), (s) => s.file('/lock'));
    expect(ins(r)).toEqual([{ path: '/lock', kind: 'metadata' }]);
    expect(r.outputs).toEqual([]);
  });

  test('opening a missing file for reading is an absent input; created and removed again leaves no output', () => {
    const r = single((s) => {
      s.open(10, '/etc/missing.conf', '-', O_RDONLY);
      s.open(10, '/tmp/scratch', '-', O_WRONLY | O_CREAT | O_EXCL);
      s.fs(10, 'unlink', '/tmp/scratch', 'f');
    });
    expect(ins(r)).toEqual([
      { path: '/etc/missing.conf', kind: 'absent' },
      { path: '/tmp/scratch', kind: 'absent' },
    ]);
    expect(r.outputs).toEqual([]);
  });

  test('temp file renamed over an existing file (the atomic-write pattern)', () => {
    const r = single(
      (s) => {
        s.open(10, '/d/out.tmp', '-', O_WRONLY | O_CREAT | O_TRUNC);
        s.fs(10, 'rename', '/d/out.tmp', 'f', { path2: '/d/out', type2: 'f', follow: false });
        s.file('/d/out', 'f', 0o600);
      },
      (s) => s.file('/d/out'),
    );
    expect(ins(r)).toEqual([]);
    expect(r.outputs).toEqual([{ path: '/d/out', kind: 'content', how: 'truncated', mode: 0o600 }]);
  });

  test('renaming a pre-existing file: its bytes are an input, source deleted, destination written', () => {
    const r = single(
      (s) => {
        s.fs(10, 'rename', '/d/a', 'f', { path2: '/d/b', type2: 'f', follow: false });
        s.files.delete('/d/a');
      },
      (s) => {
        s.file('/d/a');
        s.file('/d/b');
      },
    );
    expect(ins(r)).toEqual([{ path: '/d/a', kind: 'content' }]);
    expect(r.outputs).toEqual([
      { path: '/d/a', kind: 'deleted' },
      { path: '/d/b', kind: 'content', how: 'truncated', mode: 0o644 },
    ]);
  });

  test('renaming a directory: both trees path by path, the moved entries as inputs at their old names', () => {
    const r = single(
      (s) => {
        s.fs(10, 'rename', '/w/d1', 'd', { path2: '/w/d2', type2: '-', follow: false });
        for (const [a, b] of [['/w/d1/a', '/w/d2/a'], ['/w/d1/sub', '/w/d2/sub'], ['/w/d1/sub/c', '/w/d2/sub/c']]) {
          s.files.set(b, s.files.get(a) as FinalState);
          s.files.delete(a);
        }
        s.files.delete('/w/d1');
        s.file('/w/d2', 'd', 0o750);
        s.open(10, '/w/d2/new', '-', O_WRONLY | O_CREAT | O_TRUNC);
        s.file('/w/d2/new');
      },
      (s) => {
        s.file('/w/d1', 'd', 0o750);
        s.file('/w/d1/a');
        s.file('/w/d1/sub', 'd', 0o755);
        s.file('/w/d1/sub/c');
      },
    );
    expect(r.uncacheable).toEqual([]);
    expect(ins(r)).toEqual([
      { path: '/w/d1', kind: 'dirlist' },
      { path: '/w/d1/a', kind: 'content' },
      { path: '/w/d1/sub', kind: 'dirlist' },
      { path: '/w/d1/sub/c', kind: 'content' },
    ]);
    expect(r.outputs).toEqual([
      { path: '/w/d1', kind: 'deleted' },
      { path: '/w/d1/a', kind: 'deleted' },
      { path: '/w/d1/sub', kind: 'deleted' },
      { path: '/w/d1/sub/c', kind: 'deleted' },
      { path: '/w/d2', kind: 'mkdir', mode: 0o750 },
      { path: '/w/d2/a', kind: 'content', how: 'created', mode: 0o644 },
      { path: '/w/d2/new', kind: 'content', how: 'created', mode: 0o644, keepsMode: true },
      { path: '/w/d2/sub', kind: 'mkdir', mode: 0o755 },
      { path: '/w/d2/sub/c', kind: 'content', how: 'created', mode: 0o644 },
    ]);
  });

  test('after a directory rename, reading under the new name is an input at the old name', () => {
    const r = single(
      (s) => {
        s.fs(10, 'rename', '/w/d1', 'd', { path2: '/w/d2', type2: '-', follow: false });
        s.files.set('/w/d2/a', s.files.get('/w/d1/a') as FinalState);
        s.files.delete('/w/d1/a');
        s.files.delete('/w/d1');
        s.file('/w/d2', 'd');
        s.open(10, '/w/d2/a', 'f', O_RDONLY);
        s.fs(10, 'stat', '/w/d2/zz', '-');
        s.fs(10, 'stat', '/w/d1/a', '-');
      },
      (s) => {
        s.file('/w/d1', 'd');
        s.file('/w/d1/a');
      },
    );
    expect(ins(r)).toEqual([
      { path: '/w/d1', kind: 'dirlist' },
      { path: '/w/d1/a', kind: 'content' },
      { path: '/w/d2/zz', kind: 'absent' },
    ]);
    expect(r.outputs.map((o) => `${o.kind} ${o.path}`)).toEqual(['deleted /w/d1', 'deleted /w/d1/a', 'mkdir /w/d2', 'content /w/d2/a']);
  });

  test('a directory built under a temporary name and renamed into place has no inputs inside', () => {
    const r = single((s) => {
      s.fs(10, 'mkdir', '/w/tmp', '-');
      s.open(10, '/w/tmp/x', '-', O_WRONLY | O_CREAT | O_TRUNC);
      s.fs(10, 'rename', '/w/tmp', 'd', { path2: '/w/out', type2: '-', follow: false });
      s.file('/w/out', 'd', 0o755);
      s.file('/w/out/x');
    });
    expect(ins(r)).toEqual([
      { path: '/w/tmp', kind: 'absent' },
    ]);
    expect(r.outputs.map((o) => `${o.kind} ${o.path}`)).toEqual(['mkdir /w/out', 'content /w/out/x']);
  });

  test('exchanging directories is uncacheable', () => {
    const r = single(
      (s) => s.fs(10, 'rename', '/w/a', 'd', { path2: '/w/b', type2: 'd', flags: 2, follow: false }),
      (s) => {
        s.file('/w/a', 'd');
        s.file('/w/b', 'd');
      },
    );
    expect(r.uncacheable).toEqual(['exchanged a directory (/w/a <-> /w/b)']);
  });

  test('unlink of an existing file: metadata input and deleted output; of a missing one: absent input only', () => {
    const r = single(
      (s) => {
        s.fs(10, 'unlink', '/d/old', 'f', { follow: false });
        s.files.delete('/d/old');
        s.fs(10, 'unlink', '/d/never', '-', { follow: false });
      },
      (s) => s.file('/d/old'),
    );
    expect(ins(r)).toEqual([
      { path: '/d/never', kind: 'absent' },
      { path: '/d/old', kind: 'metadata' },
    ]);
    expect(r.outputs).toEqual([{ path: '/d/old', kind: 'deleted' }]);
  });

  test('mkdir -p over existing directories probes them; a new directory is an mkdir output', () => {
    const r = single(
      (s) => {
        s.fs(10, 'mkdir', '/a', 'd');
        s.fs(10, 'mkdir', '/a/b', '-');
        s.file('/a/b', 'd', 0o755);
      },
      (s) => s.file('/a', 'd', 0o755),
    );
    expect(ins(r)).toEqual([
      { path: '/a', kind: 'metadata' },
      { path: '/a/b', kind: 'absent' },
    ]);
    expect(r.outputs).toEqual([{ path: '/a/b', kind: 'mkdir', mode: 0o755 }]);
  });

  test('failed rmdir of a non-empty directory leaves no output', () => {
    const r = single((s) => s.fs(10, 'rmdir', '/full', 'd', { follow: false }), (s) => s.file('/full', 'd'));
    expect(ins(r)).toEqual([{ path: '/full', kind: 'metadata' }]);
    expect(r.outputs).toEqual([]);
  });

  test('symlinks traversed are metadata inputs; a created symlink is an output with its target', () => {
    const r = single(
      (s) => {
        s.open(10, '/usr/lib/real.so', 'f', O_RDONLY, ['/lib', '/usr/lib/alias.so']);
        s.fs(10, 'symlink', 'real.so', '-', { path2: '/w/link', type2: '-', linkTarget: 'real.so', follow: false });
        s.file('/w/link', 'l', 0o777, 'real.so');
      },
      (s) => s.file('/usr/lib/real.so'),
    );
    expect(ins(r)).toEqual([
      { path: '/lib', kind: 'metadata' },
      { path: '/usr/lib/alias.so', kind: 'metadata' },
      { path: '/usr/lib/real.so', kind: 'content' },
      { path: '/w/link', kind: 'absent' },
    ]);
    expect(r.outputs).toEqual([{ path: '/w/link', kind: 'symlink', linkTarget: 'real.so' }]);
  });

  test('hard link: source bytes are an input, the new name a created output', () => {
    const r = single(
      (s) => {
        s.fs(10, 'link', '/d/a', 'f', { path2: '/d/b', type2: '-', follow: false });
        s.file('/d/b');
      },
      (s) => s.file('/d/a'),
    );
    expect(ins(r)).toEqual([
      { path: '/d/a', kind: 'content' },
      { path: '/d/b', kind: 'absent' },
    ]);
    expect(r.outputs).toEqual([{ path: '/d/b', kind: 'content', how: 'created', mode: 0o644 }]);
  });

  test('chmod alone is a mode output; stat, access, readlink, chdir and getdents are inputs', () => {
    const r = single(
      (s) => {
        s.fs(10, 'stat', '/bin/x', 'f');
        s.fs(10, 'chmod', '/bin/x', 'f', { mode: 0o755 });
        s.file('/bin/x', 'f', 0o755);
        s.fs(10, 'access', '/etc/a', 'f');
        s.fs(10, 'readlink', '/etc/l', 'l', { follow: false });
        s.fs(10, 'chdir', '/srv', 'd');
        s.open(10, '/srv', 'd', O_RDONLY | O_DIRECTORY);
        s.fs(10, 'getdents', '/srv', 'd');
      },
      (s) => s.file('/bin/x', 'f', 0o644),
    );
    expect(ins(r)).toEqual([
      { path: '/bin/x', kind: 'metadata' },
      { path: '/etc/a', kind: 'metadata' },
      { path: '/etc/l', kind: 'metadata' },
      { path: '/srv', kind: 'dirlist' },
    ]);
    expect(r.outputs).toEqual([{ path: '/bin/x', kind: 'mode', mode: 0o755 }]);
  });

  test('listing a directory the execution created is not an input', () => {
    const r = single((s) => {
      s.fs(10, 'mkdir', '/o', '-');
      s.fs(10, 'getdents', '/o', 'd');
      s.file('/o', 'd', 0o700);
    });
    expect(ins(r)).toEqual([{ path: '/o', kind: 'absent' }]);
    expect(r.outputs).toEqual([{ path: '/o', kind: 'mkdir', mode: 0o700 }]);
  });

  test('/proc, /sys, /dev and the cache directory are not recorded; /dev/urandom and terminals are uncacheable', () => {
    const r = single((s) => {
      s.open(10, '/proc/self/maps', 'f', O_RDONLY);
      s.open(10, '/sys/devices/system/cpu/online', 'f', O_RDONLY);
      s.open(10, '/dev/null', 'c', O_WRONLY);
      s.open(10, '/home/u/.cache/pcache/index.db', 'f', O_RDWR);
      s.open(10, '/dev/shm/sem.x', '-', O_RDWR | O_CREAT | O_EXCL);
      s.open(10, '/dev/urandom', 'c', O_RDONLY);
      s.open(10, '/dev/tty', 'c', O_RDWR);
      s.fs(10, 'stat', '/dev/pts/3', 'c');
    });
    expect(ins(r)).toEqual([{ path: '/dev/shm/sem.x', kind: 'absent' }]);
    expect(r.outputs).toEqual([]);
    expect(r.uncacheable).toEqual(['read /dev/urandom (nondeterministic)', 'opened terminal /dev/tty']);
  });

  test('input kinds merge by precedence: content beats metadata beats absent', () => {
    const r = single(
      (s) => {
        s.fs(10, 'stat', '/x', 'f');
        s.open(10, '/x', 'f', O_RDONLY);
        s.fs(10, 'access', '/x', 'f');
      },
      (s) => s.file('/x'),
    );
    expect(ins(r)).toEqual([{ path: '/x', kind: 'content' }]);
  });

  test('unknown syscalls, fifos and extended attributes are uncacheable', () => {
    const r = single((s) => {
      s.send({ k: 'unknown', pid: 10, syscall: 'io_uring_setup', nr: 425, detail: 'escapes tracking' });
      s.open(10, '/w/fifo', 'p', O_RDONLY);
      s.fs(10, 'xattr-write', '/w/f', 'f');
    });
    expect(r.uncacheable).toEqual([
      'unhandled syscall io_uring_setup: escapes tracking',
      'opened a fifo /w/fifo',
      'set an extended attribute on /w/f',
    ]);
  });

  test('a path through a descriptor link (/dev/stdout) is uncacheable where the descriptor came from outside', () => {
    const s = new Sim();
    s.exec(10, ['sh']); // stdin a terminal, stdout pipe:[100], stderr pipe:[200] from outside
    s.fork(10, 11);
    s.exec(11, ['tool'], { fds: [fd(0, '/w/in', 'file'), fd(1, '/w/out', 'file'), fd(2, 'pipe:[200]', 'pipe')] });
    s.fs(11, 'open', '/w/out', 'f', { flags: O_WRONLY | O_TRUNC, links: ['/dev/stdout'], fdLink: 1 });
    s.fs(11, 'open', '/w/in', 'f', { flags: O_RDONLY, links: ['/dev/stdin'], fdLink: 0 }); // stdin's file is in the key
    s.fs(11, 'open', '/dev/null', 'c', { flags: O_WRONLY, links: ['/dev/stdout'], fdLink: 1 });
    s.fs(11, 'open', 'pipe:[200]', 'p', { flags: O_WRONLY, links: ['/dev/stderr'], fdLink: 2 });
    s.exit(11);
    s.exit(10);
    expect(s.rec(2).uncacheable).toEqual([
      'reached /w/out through /dev/stdout: a descriptor from outside the execution, which its key does not name',
      'reached pipe:[200] through /dev/stderr: a descriptor from outside the execution, which its key does not name',
    ]);
    // sh made the redirection to /w/out itself; stderr's pipe came from outside it too
    expect(s.rec(1).uncacheable).toEqual([
      'reached pipe:[200] through /dev/stderr: a descriptor from outside the execution, which its key does not name',
    ]);
  });

  test("another process's descriptor link, and a pipe the execution made, reached by path", () => {
    const r = single((s) => {
      s.fs(10, 'open', 'pipe:[555]', 'p', { flags: O_RDONLY, links: [], fdLink: 5 }); // its own pipe: nothing
      s.fs(10, 'open', '/w/x', 'f', { flags: O_RDONLY, links: [], fdLink: -2 });
    });
    expect(r.uncacheable).toEqual(["reached /w/x through another process's descriptor (a /proc/PID/fd link)"]);
  });

  test('touch of an existing file is a content output; chown alone is uncacheable', () => {
    const r = single(
      (s) => {
        s.fs(10, 'utimes', '/stamp', 'f');
        s.fs(10, 'chown', '/owned', 'f');
      },
      (s) => {
        s.file('/stamp');
        s.file('/owned');
      },
    );
    expect(ins(r)).toEqual([
      { path: '/owned', kind: 'metadata' },
      { path: '/stamp', kind: 'metadata' },
    ]);
    expect(r.outputs).toEqual([{ path: '/stamp', kind: 'content', how: 'written', mode: 0o644, keepsMode: true }]);
    expect(r.uncacheable).toEqual(['changed the owner of /owned']);
  });

  test('chmod succeeds only on an existing path: a metadata input besides the mode output', () => {
    const r = single(
      (s) => {
        s.fs(10, 'chmod', '/f', 'f', { mode: 0o600 });
        s.file('/f', 'f', 0o600);
        s.fs(10, 'chmod', '/missing', '-', { mode: 0o600 });
      },
      (s) => s.file('/f'),
    );
    expect(ins(r)).toEqual([
      { path: '/f', kind: 'metadata' },
      { path: '/missing', kind: 'absent' },
    ]);
    expect(r.outputs).toEqual([{ path: '/f', kind: 'mode', mode: 0o600 }]);
  });

  test('O_TMPFILE then linkat through /proc/self/fd: only the new name, absent before, is recorded', () => {
    const r = single((s) => {
      s.open(10, '/d', 'd', O_WRONLY | 0o20000000 | O_DIRECTORY);
      s.fs(10, 'link', '/d/#1234 (deleted)', 'f', { path2: '/d/tl', type2: '-', links: ['/proc/self/fd/3'] });
      s.file('/d/tl');
    });
    expect(ins(r)).toEqual([
      { path: '/d', kind: 'metadata' },
      { path: '/d/tl', kind: 'absent' },
    ]);
    expect(r.outputs).toEqual([{ path: '/d/tl', kind: 'content', how: 'created', mode: 0o644 }]);
  });

  test('a content input changed behind the execution\'s back makes it uncacheable; its own changes do not', () => {
    const s = new Sim();
    s.files.set('/w/in', { type: 'f', mode: 0o644, size: 6, ino: 7, mtimeMs: 100, ctimeMs: 100 });
    s.files.set('/w/mine', { type: 'f', mode: 0o644, size: 6, ino: 8, mtimeMs: 100, ctimeMs: 100 });
    s.exec(10, ['sh']);
    s.fork(10, 11);
    s.exec(11, ['reader']);
    s.open(11, '/w/in', 'f', O_RDONLY);
    s.open(11, '/w/mine', 'f', O_RDONLY);
    s.open(11, '/w/mine', 'f', O_WRONLY | O_APPEND);
    s.files.set('/w/in', { type: 'f', mode: 0o644, size: 17, ino: 7, mtimeMs: 200, ctimeMs: 200 });
    s.files.set('/w/mine', { type: 'f', mode: 0o644, size: 9, ino: 8, mtimeMs: 200, ctimeMs: 200 });
    s.exit(11);
    s.exit(10);
    expect(s.rec(2).uncacheable).toEqual(['input /w/in was modified while the execution ran']);
    expect(s.rec(1).uncacheable).toEqual(['input /w/in was modified while the execution ran']);
  });

  describe('looks at an input shared by the calls of one tracer batch', () => {
    const IN = '/w/in';
    const before: FinalState = { type: 'f', mode: 0o644, size: 6, ino: 7, mtimeMs: 100, ctimeMs: 100 };
    const after: FinalState = { type: 'f', mode: 0o644, size: 17, ino: 7, mtimeMs: 200, ctimeMs: 200 };
    /** reader (id 2, pid 11) opens IN in batch `readIn` and exits in batch `exitIn` (undefined: no number) */
    function run(readIn: number | undefined, exitIn: number | undefined, between: (s: Sim) => void): { s: Sim; looks: number } {
      const s = new Sim();
      let looks = 0;
      const get = s.files.get.bind(s.files);
      s.files.get = (p: string) => {
        if (p === IN) looks++;
        return get(p);
      };
      s.files.set(IN, before);
      s.exec(10, ['sh']);
      s.fork(10, 11);
      s.exec(11, ['reader']);
      s.folder.events([{ k: 'fs', pid: 11, op: 'open', path: IN, flags: O_RDONLY, mode: 0, follow: true, type: 'f', links: [], result: null }], readIn);
      between(s);
      s.folder.events([{ k: 'exit', pid: 11, tgid: 11, processExit: true, code: 0, signal: null, time: 5000 }], exitIn);
      return { s, looks };
    }
    const changed = ['input /w/in was modified while the execution ran'];

    test('one batch: the read and the end check share one look', () => {
      const { s, looks } = run(4, 4, () => undefined);
      expect(looks).toBe(1);
      expect(s.rec(2).uncacheable).toEqual([]);
    });

    test('a later batch looks again, and sees a change made in between', () => {
      const { s, looks } = run(4, 5, (sim) => sim.files.set(IN, after));
      expect(looks).toBe(2);
      expect(s.rec(2).uncacheable).toEqual(changed);
    });

    test('calls without a batch number, or an event folded alone in between, look again', () => {
      expect(run(undefined, undefined, (sim) => sim.files.set(IN, after)).s.rec(2).uncacheable).toEqual(changed);
      const alone = run(4, 4, (sim) => {
        sim.files.set(IN, after);
        sim.folder.event({ k: 'spawn', pid: 12, parent: 10, thread: false, tgid: 12 });
      });
      expect(alone.looks).toBe(2);
      expect(alone.s.rec(2).uncacheable).toEqual(changed);
    });
  });

  test('a final state that cannot be read makes the execution uncacheable', () => {
    const s = new Sim();
    s.exec(10, ['tool']);
    s.open(10, '/secret/out', '-', O_WRONLY | O_CREAT | O_TRUNC);
    s.files.get = () => {
      throw new Error('EACCES');
    };
    s.exit(10);
    expect(s.rec(1).outputs).toEqual([]);
    expect(s.rec(1).uncacheable).toEqual(['cannot read the final state of /secret/out: EACCES']);
  });
});

describe('what an fd-based observation means', () => {
  test('fstat of its own stdout is no input; of stdin or another file it is; pipes and deleted files are nothing', () => {
    const s = new Sim();
    s.file('/w/out');
    s.exec(10, ['cat'], { fds: [fd(0, '/w/in', 'file'), fd(1, '/w/out', 'file'), fd(2, 'pipe:[200]', 'pipe')] });
    s.fs(10, 'stat', '/w/out', 'f', { flags: 0x1000 });
    s.fs(10, 'stat', '/w/in', 'f', { flags: 0x1000 });
    s.fs(10, 'stat', 'pipe:[200]', 'p', { flags: 0x1000 });
    s.fs(10, 'stat', 'socket:[77]', 's', { flags: 0x1000 });
    s.fs(10, 'stat', '/w/gone (deleted)', 'f', { flags: 0x1000 });
    s.exit(10);
    expect(ins(s.rec(1))).toEqual([{ path: '/w/in', kind: 'metadata' }]);
  });

  test('the fd table sent with the exec event (close-on-exec applied) wins over the request snapshot', () => {
    const s = new Sim();
    s.folder.execRequest({ token: 1, pid: 10, tgid: 10, path: '/bin/x', execSig: '0000000000000001', links: [], argv: ['x'], env: [], cwd: '/', umask: 0o22, fds: OUTER_FDS, time: 1 });
    s.send({ k: 'exec', pid: 10, formerTid: 10, token: 1, fds: [fd(0, '/dev/null', 'null'), fd(1, '/w/log', 'file'), fd(2, '/w/log', 'file')] });
    s.write(10, 2, '/w/log', 'err', 'file');
    s.exit(10);
    expect([s.rec(1).stdout.target, s.rec(1).stderr.target]).toEqual(['/w/log', '/w/log']);
    // 2>&1: one stream, so the interleaving of both survives
    expect([s.rec(1).stdout.bytes, s.rec(1).stderr.bytes]).toEqual([3, 0]);
    expect(s.folder.captured(1, 'stdout').toString()).toBe('err');
  });

  test('a unix connect without a result: an absent socket file is an absent input, a present one a service', () => {
    const s = new Sim();
    s.file('/run/dbus/system_bus_socket', 's');
    s.exec(10, ['ls']);
    s.net(10, 'connect', 1, '/var/run/nscd/socket');
    s.net(10, 'connect', 1, '/run/dbus/system_bus_socket');
    s.exit(10);
    expect(ins(s.rec(1))).toEqual([{ path: '/var/run/nscd/socket', kind: 'absent' }]);
    expect(s.rec(1).uncacheable).toEqual(['connected to unix socket /run/dbus/system_bus_socket']);
  });
});

describe('files inherited open beyond stdio', () => {
  const O_RDONLY_ = 0;
  test('a readable fd is a content input; a writable one an output, and an input when appending or past the start', () => {
    const s = new Sim();
    for (const f of ['/w/in', '/w/out', '/w/log', '/w/offset4']) s.file(f);
    s.exec(10, ['tool'], {
      fds: [
        ...OUTER_FDS,
        { fd: 3, target: '/w/in', kind: 'file', pos: 0, flags: O_RDONLY_ },
        { fd: 4, target: '/w/out', kind: 'file', pos: 0, flags: O_WRONLY },
        { fd: 5, target: '/w/log', kind: 'file', pos: 10, flags: O_WRONLY | O_APPEND },
        { fd: 6, target: '/w/offset4', kind: 'file', pos: 4, flags: O_WRONLY },
        { fd: 7, target: 'pipe:[5]', kind: 'pipe', pos: 0, flags: O_RDONLY_ },
      ],
    });
    s.exit(10);
    expect(ins(s.rec(1))).toEqual([
      { path: '/w/in', kind: 'content' },
      { path: '/w/log', kind: 'content' },
      { path: '/w/offset4', kind: 'content' },
    ]);
    expect(s.rec(1).outputs).toEqual([
      { path: '/w/log', kind: 'content', how: 'appended', mode: 0o644, keepsMode: true },
      { path: '/w/offset4', kind: 'content', how: 'written', mode: 0o644, keepsMode: true },
      { path: '/w/out', kind: 'content', how: 'written', mode: 0o644, keepsMode: true },
    ]);
  });
});

describe('fsEffects', () => {
  test('every op is classified without an uncacheable reason of its own', () => {
    const ops: FsOp[] = ['open', 'stat', 'access', 'readlink', 'getdents', 'chdir', 'rename', 'link', 'symlink', 'unlink', 'rmdir', 'mkdir', 'mknod', 'truncate', 'chmod', 'chown', 'utimes', 'xattr-read', 'execve-probe'];
    for (const op of ops) {
      const r = fsEffects({ k: 'fs', pid: 1, op, path: '/p', path2: '/q', flags: 0, mode: 0, follow: true, type: 'f', type2: '-', links: [], result: null });
      expect([op, r.reasons]).toEqual([op, []]);
      expect(r.effects.length).toBeGreaterThan(0);
    }
  });

  test('pathPolicy', () => {
    expect(pathPolicy('/proc/1/status')).toBe('ignore');
    expect(pathPolicy('/process/x')).toBe('record');
    expect(pathPolicy('/dev/null')).toBe('ignore');
    expect(pathPolicy('/dev/shm/x')).toBe('record');
    expect(pathPolicy('/dev/random')).toBe('random');
    expect(pathPolicy('/dev/pts/7')).toBe('terminal');
    expect(pathPolicy('/tmp/x')).toBe('record');
    expect(pathPolicy('/c/pcache/blobs/ab', ['/c/pcache'])).toBe('ignore');
    expect(pathPolicy('/c/pcache2', ['/c/pcache'])).toBe('record');
  });
});

describe('executions nest', () => {
  test('a child execution has its own record and merges into the parent in order', () => {
    const s = new Sim();
    s.file('/in');
    s.exec(10, ['sh', '-c', 'script']);
    // the parent writes /mid before the child reads it
    s.open(10, '/mid', '-', O_WRONLY | O_CREAT | O_TRUNC);
    s.file('/mid');
    s.fork(10, 11);
    s.exec(11, ['cat', '/in', '/mid']);
    s.open(11, '/in', 'f', O_RDONLY);
    s.open(11, '/mid', 'f', O_RDONLY);
    s.open(11, '/out', '-', O_WRONLY | O_CREAT | O_TRUNC);
    s.file('/out');
    s.exit(11, 0);
    expect(s.ended).toEqual([2]);
    s.exit(10, 3);
    expect(s.ended).toEqual([2, 1]);

    const child = s.rec(2);
    expect(child.parent).toBe(1);
    expect(child.pid).toBe(11);
    expect(child.argv).toEqual(['cat', '/in', '/mid']);
    expect(child.exitCode).toBe(0);
    expect(ins(child)).toEqual([
      { path: '/in', kind: 'content' },
      { path: '/mid', kind: 'content' },
    ]);
    expect(child.outputs).toEqual([{ path: '/out', kind: 'content', how: 'created', mode: 0o644, keepsMode: true }]);

    const parent = s.rec(1);
    expect(parent.parent).toBeNull();
    expect(parent.exitCode).toBe(3);
    expect(ins(parent)).toEqual([
      { path: '/in', kind: 'content' },
    ]);
    expect(parent.outputs).toEqual([
      { path: '/mid', kind: 'content', how: 'created', mode: 0o644, keepsMode: true },
      { path: '/out', kind: 'content', how: 'created', mode: 0o644, keepsMode: true },
    ]);
    expect(parent.uncacheable).toEqual([]);
  });

  test('exec-implied inputs (executable, interpreter) belong to the new execution and its ancestors', () => {
    const s = new Sim((req) => [
      { path: req.path, kind: 'content' },
      { path: '/lib64/ld-linux-x86-64.so.2', kind: 'metadata' },
      { path: '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', kind: 'content' },
    ]);
    s.exec(10, ['sh'], { path: '/usr/bin/dash', links: ['/bin', '/usr/bin/sh'] });
    s.exit(10);
    expect(s.rec(1).exe).toBe('/usr/bin/dash');
    expect(ins(s.rec(1))).toEqual([
      { path: '/bin', kind: 'metadata' },
      { path: '/lib64/ld-linux-x86-64.so.2', kind: 'metadata' },
      { path: '/usr/bin/dash', kind: 'content' },
      { path: '/usr/bin/sh', kind: 'metadata' },
      { path: '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', kind: 'content' },
    ]);
  });

  test('an uncacheable child makes every ancestor uncacheable', () => {
    const s = new Sim();
    s.exec(10, ['make']);
    s.fork(10, 11);
    s.exec(11, ['sh']);
    s.fork(11, 12);
    s.exec(12, ['curl']);
    s.net(12, 'socket', 2, '');
    s.net(12, 'connect', 2, '93.184.216.34:443');
    for (const p of [12, 11, 10]) s.exit(p);
    expect(s.rec(3).uncacheable).toEqual(['connected to 93.184.216.34:443']);
    expect(s.rec(2).uncacheable).toEqual(['child execution 3: connected to 93.184.216.34:443']);
    expect(s.rec(1).uncacheable).toEqual(['child execution 3: connected to 93.184.216.34:443']);
  });

  test('unix sockets: own bound address and netlink are fine, a failed nscd probe is an absent input, a service is not', () => {
    const s = new Sim();
    s.file('/var/run/nscd/socket', 's'); // the reported result wins over what is there now
    s.exec(10, ['tool']);
    s.net(10, 'socket', 16, '');
    s.net(10, 'bind', 16, '');
    s.net(10, 'bind', 1, '/tmp/own.sock');
    s.net(10, 'connect', 1, '/tmp/own.sock');
    s.net(10, 'connect', 1, '/var/run/nscd/socket', -2);
    s.net(10, 'connect', 1, '/run/dbus/system_bus_socket', 0);
    s.exit(10);
    expect(ins(s.rec(1))).toEqual([{ path: '/var/run/nscd/socket', kind: 'absent' }]);
    expect(s.rec(1).uncacheable).toEqual(['connected to unix socket /run/dbus/system_bus_socket']);
  });

  test('siblings changing the same path while both run: both sides uncacheable up to the common ancestor', () => {
    const s = new Sim();
    s.exec(10, ['make', '-j2']);
    s.fork(10, 11);
    s.exec(11, ['sh']);
    s.fork(11, 12);
    s.exec(12, ['cc']);
    s.fork(10, 13);
    s.exec(13, ['ld']);
    s.open(12, '/w/out.o', '-', O_WRONLY | O_CREAT | O_TRUNC);
    s.open(13, '/w/out.o', 'f', O_WRONLY | O_TRUNC);
    s.file('/w/out.o');
    s.exit(12);
    s.exit(11);
    // cc has ended: strip's write conflicts only with ld, which still runs
    s.fork(10, 14);
    s.exec(14, ['strip']);
    s.open(14, '/w/out.o', 'f', O_RDWR);
    s.exit(14);
    s.exit(13);
    s.exit(10);
    expect(s.rec(3).uncacheable).toEqual(['changed /w/out.o concurrently with execution 4']);
    expect(s.rec(2).uncacheable).toEqual(['changed /w/out.o concurrently with execution 4']);
    expect(s.rec(4).uncacheable).toEqual(['changed /w/out.o concurrently with execution 3', 'changed /w/out.o concurrently with execution 5']);
    expect(s.rec(5).uncacheable).toEqual(['changed /w/out.o concurrently with execution 4']);
    expect(s.rec(1).uncacheable).toEqual([]);
  });

  test('a fork without exec stays in the same execution, which ends with its last process', () => {
    const s = new Sim();
    s.file('/a');
    s.exec(10, ['tool']);
    s.fork(10, 11);
    s.open(11, '/a', 'f', O_RDONLY);
    s.exit(11, 0);
    expect(s.ended).toEqual([]);
    s.open(10, '/b', '-', O_WRONLY | O_CREAT | O_TRUNC);
    s.file('/b');
    s.exit(10, 0);
    expect(s.folder.executions().length).toBe(1);
    expect(ins(s.rec(1))).toEqual([
      { path: '/a', kind: 'content' },
    ]);
    expect(s.rec(1).outputs).toEqual([{ path: '/b', kind: 'content', how: 'created', mode: 0o644, keepsMode: true }]);
    expect(s.rec(1).uncacheable).toEqual([]);
  });

  test('exec from a non-leader thread starts a child execution of the same process', () => {
    const s = new Sim();
    s.exec(10, ['threads']);
    s.thread(10, 15, 10);
    s.open(15, '/t-read', 'f', O_RDONLY);
    s.exec(10, ['child'], { tid: 15 });
    s.open(10, '/after', 'f', O_RDONLY);
    s.exit(10, 7);
    expect(s.rec(2).parent).toBe(1);
    expect(s.rec(2).pid).toBe(10);
    expect(ins(s.rec(2))).toEqual([{ path: '/after', kind: 'content' }]);
    expect(ins(s.rec(1))).toEqual([
      { path: '/after', kind: 'content' },
      { path: '/t-read', kind: 'content' },
    ]);
    expect([s.rec(1).exitCode, s.rec(2).exitCode]).toEqual([7, 7]);
    expect(s.ended).toEqual([2, 1]);
  });

  test('an exec chain (exec env X=1 cmd) nests, and every link reports the same exit', () => {
    const s = new Sim();
    s.exec(10, ['sh', '-c', 'exec env X=1 cmd']);
    s.exec(10, ['env', 'X=1', 'cmd']);
    s.exec(10, ['cmd']);
    s.exit(10, 4);
    expect(s.folder.executions().map((e) => [e.id, e.parent, e.exitCode])).toEqual([
      [1, null, 4],
      [2, 1, 4],
      [3, 2, 4],
    ]);
  });

  test('an orphan outliving the root keeps the execution open and makes it uncacheable', () => {
    const s = new Sim();
    s.exec(10, ['daemonize']);
    s.fork(10, 11);
    s.fork(11, 12);
    s.exit(11, 0);
    s.exit(10, 0);
    expect(s.ended).toEqual([]);
    expect(s.rec(1).exitCode).toBe(0);
    expect(s.rec(1).uncacheable).toEqual(['left a process running (pid 12)']);
    s.open(12, '/late', '-', O_WRONLY | O_CREAT | O_TRUNC);
    s.file('/late');
    s.exit(12, 0);
    expect(s.ended).toEqual([1]);
    expect(s.rec(1).outputs).toEqual([{ path: '/late', kind: 'content', how: 'created', mode: 0o644, keepsMode: true }]);
  });

  test('a failed exec is an input of the execution that tried and starts nothing', () => {
    const s = new Sim();
    s.exec(10, ['sh']);
    s.folder.execRequest({ token: 99, pid: 10, tgid: 10, path: '/usr/bin/broken', execSig: '0000000000000002', links: [], argv: ['broken'], env: [], cwd: '/', umask: 0o22, fds: OUTER_FDS, time: 1 });
    s.fs(10, 'execve-probe', '/usr/local/bin/broken', '-', { result: -2 });
    s.fs(10, 'execve-probe', '/usr/bin/broken', 'f', { result: -8 });
    s.exit(10, 127);
    expect(s.folder.executions().length).toBe(1);
    expect(ins(s.rec(1))).toEqual([
      { path: '/usr/bin/broken', kind: 'metadata' },
      { path: '/usr/local/bin/broken', kind: 'absent' },
    ]);
  });

  test('signal deaths: uncacheable, propagated except SIGPIPE', () => {
    const s = new Sim();
    s.exec(10, ['sh']);
    s.fork(10, 11);
    s.exec(11, ['yes']);
    s.fork(10, 12);
    s.exec(12, ['victim']);
    s.exit(11, null, 13);
    s.exit(12, null, 9);
    s.exit(10, 137);
    expect(s.rec(2).uncacheable).toEqual(['killed by signal 13']);
    expect(s.rec(2).signal).toBe(13);
    expect(s.rec(3).uncacheable).toEqual(['killed by signal 9']);
    expect(s.rec(1).uncacheable).toEqual(['child execution 3: killed by signal 9']);
  });

  test('finish() ends executions whose processes were never seen exiting', () => {
    const s = new Sim();
    s.exec(10, ['tool']);
    const rec = s.folder.finish({ code: null, signal: 9 }, 5000);
    expect(rec.version).toBe(1);
    expect(rec.signal).toBe(9);
    expect(rec.executions[0].end).toBe(5000);
    expect(rec.executions[0].uncacheable).toEqual(['did not see the end of process 10']);
  });

  test('events of pcache\'s own child before its first exec are not recorded', () => {
    const s = new Sim();
    s.open(10, '/before-exec', 'f', O_RDONLY);
    s.exec(10, ['tool']);
    s.exit(10);
    expect(ins(s.rec(1))).toEqual([]);
  });
});

describe('standard streams', () => {
  const io = (pid: number, fdNum: number, target: string, extra: Partial<IoEvent>): IoEvent => ({ k: 'io', pid, fd: fdNum, dir: 'w', target, kind: 'pipe', count: 0, syscall: 'write', ...extra });
  const readBack = (pid: number, target: string, token: number, text: string): IoEvent =>
    io(pid, 1, target, { kind: 'file', data: Buffer.from(text), count: text.length, readback: true, token, syscall: 'read-back' });

  test('a read-back stdout is counted once: writes inside it stop at it, its read-back goes on up', () => {
    // sh -c 'echo a; seq' > /w/out (read back), seq's own stdout captured write by write;
    // the outer script's stdout is the same file through another open (counted from there on)
    const s = new Sim();
    const out = [fd(0, '/dev/null', 'null'), fd(1, '/w/out', 'file'), fd(2, '/dev/null', 'null')];
    s.exec(10, ['outer'], { fds: out });
    s.fork(10, 11);
    const shToken = s.exec(11, ['sh', '-c', 'echo a; seq 1 2'], { fds: out, readback: true });
    s.fork(11, 12);
    s.exec(12, ['seq', '1', '2'], { fds: out });
    s.write(12, 1, '/w/out', '1\n2\n', 'file');
    s.exit(12);
    s.send(readBack(11, '/w/out', shToken, 'a\n1\n2\n'));
    s.exit(11);
    s.exit(10);
    const f = s.folder;
    expect(f.captured(3, 'stdout').toString()).toBe('1\n2\n');
    expect(f.captured(2, 'stdout').toString()).toBe('a\n1\n2\n');
    expect(f.captured(1, 'stdout').toString()).toBe('a\n1\n2\n');
    expect(s.rec(2).uncacheable).toEqual([]);
  });

  test('a read-back cut at the capture limit (readbackLimit) counts its whole region for every execution above it', () => {
    // The tracer reads only the first captureLimit bytes of a region of 10: `count` says 10.
    const s = new Sim(undefined, { captureLimit: 4 });
    const out = [fd(0, '/dev/null', 'null'), fd(1, '/w/out', 'file'), fd(2, '/dev/null', 'null')];
    s.exec(10, ['sh'], { fds: out });
    s.fork(10, 11);
    const token = s.exec(11, ['seq'], { fds: out, readback: true });
    s.send({ ...readBack(11, '/w/out', token, '1\n2\n'), count: 10 });
    s.exit(11);
    s.exit(10);
    for (const id of [1, 2]) {
      expect(s.folder.captured(id, 'stdout').toString()).toBe('1\n2\n');
      expect(s.folder.capturedTruncated(id, 'stdout')).toBe(true);
      expect(s.rec(id).stdout.bytes).toBe(10);
      expect(s.rec(id).uncacheable).toEqual([]);
    }
  });

  test('a read-back with fewer bytes than its count, where every byte is kept, makes the execution uncacheable', () => {
    const s = new Sim();
    const out = [fd(0, '/dev/null', 'null'), fd(1, '/w/out', 'file'), fd(2, '/dev/null', 'null')];
    const token = s.exec(10, ['seq'], { fds: out, readback: true });
    s.send({ ...readBack(10, '/w/out', token, '1\n2\n'), count: 10 });
    s.exit(10);
    expect(s.rec(1).uncacheable).toEqual(['its stdout came with 4 of its 10 bytes']);
  });

  test('a read-back of its file whole hands its stamp to the taker, with the path\'s change mark then; only its own execution gets it', () => {
    const stamp: [bigint, bigint, bigint, bigint, bigint, bigint] = [1n, 2n, 4n, 30n, 40n, 50n];
    const s = new Sim();
    const out = [fd(0, '/dev/null', 'null'), fd(1, '/w/out', 'file'), fd(2, '/dev/null', 'null')];
    s.exec(10, ['sh'], { fds: out });
    s.open(10, '/w/out', 'f', O_WRONLY | O_CREAT | O_TRUNC);
    const mark = s.folder.changeMark('/w/out');
    expect(mark).toBeGreaterThan(0);
    s.fork(10, 11);
    const token = s.exec(11, ['seq'], { fds: out, readback: true });
    s.send({ ...readBack(11, '/w/out', token, '1\n2\n'), stamp });
    s.exit(11);
    s.exit(10);
    expect(s.folder.takeCaptured(2, 'stdout')).toEqual({
      chunks: [Buffer.from('1\n2\n')],
      whole: { path: '/w/out', stamp: { dev: 1n, ino: 2n, size: 4n, mtimeNs: 30n, ctimeNs: 40n }, atNs: 50n, mark },
    });
    // sh's stdout is the same file, but what reached it is not the file: no stamp there
    expect(s.folder.takeCaptured(1, 'stdout')).toEqual({ chunks: [Buffer.from('1\n2\n')] });
  });

  test('a whole-file read-back kept only in part (captureLimit) carries no stamp', () => {
    const stamp: [bigint, bigint, bigint, bigint, bigint, bigint] = [1n, 2n, 4n, 30n, 40n, 50n];
    const out = [fd(0, '/dev/null', 'null'), fd(1, '/w/out', 'file'), fd(2, '/dev/null', 'null')];
    const cut = new Sim(undefined, { captureLimit: 2 });
    const t3 = cut.exec(10, ['seq'], { fds: out, readback: true });
    cut.send({ ...readBack(10, '/w/out', t3, '1\n2\n'), stamp });
    cut.exit(10);
    expect(cut.folder.takeCaptured(1, 'stdout')).toEqual({ chunks: [Buffer.from('1\n')] });
  });

  test('a read-back for an exec the fold never saw as reading back makes the writer uncacheable', () => {
    const s = new Sim();
    const out = [fd(0, '/dev/null', 'null'), fd(1, '/dev/shm/out', 'dev'), fd(2, '/dev/null', 'null')];
    s.exec(10, ['sh'], { fds: out });
    s.send(readBack(10, '/dev/shm/out', 99, 'lost\n'));
    s.exit(10);
    expect(s.rec(1).uncacheable).toEqual(['stdout read back from /dev/shm/out for an execution pcache did not record as reading back']);
  });

  test('a read-back stdout under /dev (a regular file in /dev/shm) is the execution\'s stdout', () => {
    const s = new Sim();
    const out = [fd(0, '/dev/null', 'null'), fd(1, '/dev/shm/out', 'dev'), fd(2, '/dev/null', 'null')];
    const token = s.exec(10, ['seq'], { fds: out, readback: true });
    s.send(readBack(10, '/dev/shm/out', token, '1\n'));
    s.exit(10);
    expect(s.folder.captured(1, 'stdout').toString()).toBe('1\n');
    expect(s.rec(1).uncacheable).toEqual([]);
  });

  test('another open for writing of a read-back stdout file while it runs makes that execution uncacheable', () => {
    const s = new Sim();
    s.exec(10, ['sh'], { fds: [fd(0, '/dev/null', 'null'), fd(1, '/dev/null', 'null'), fd(2, '/dev/null', 'null')] });
    s.fork(10, 11);
    const token = s.exec(11, ['seq'], { fds: [fd(0, '/dev/null', 'null'), fd(1, '/w/s.txt', 'file'), fd(2, '/dev/null', 'null')], readback: true });
    s.open(10, '/w/s.txt', 'f', O_WRONLY | O_APPEND);
    s.send(readBack(11, '/w/s.txt', token, 'extra\n1\n'));
    s.exit(11);
    s.exit(10);
    expect(s.rec(2).uncacheable).toEqual(['its stdout file /w/s.txt was changed another way while it ran (open by execution 1)']);
  });

  test('bytes go to every execution whose stdout/stderr they reached', () => {
    const s = new Sim();
    s.exec(10, ['sh', '-c', 'echo a; b | c']);
    s.write(10, 1, 'pipe:[100]', 'a\n');
    s.fork(10, 11);
    s.exec(11, ['b'], { fds: [fd(0, '/dev/pts/0', 'tty'), fd(1, 'pipe:[300]', 'pipe'), fd(2, 'pipe:[200]', 'pipe')] });
    s.write(11, 1, 'pipe:[300]', 'to c\n');
    s.write(11, 2, 'pipe:[200]', 'warn\n');
    s.exit(11);
    s.fork(10, 12);
    s.exec(12, ['c'], { fds: [fd(0, 'pipe:[300]', 'pipe'), fd(1, 'pipe:[100]', 'pipe'), fd(2, 'pipe:[200]', 'pipe')] });
    s.read0(12, 'pipe:[300]', 'pipe');
    s.write(12, 1, 'pipe:[100]', 'C\n');
    s.exit(12);
    s.exit(10);
    const f = s.folder;
    expect([f.captured(1, 'stdout').toString(), f.captured(1, 'stderr').toString()]).toEqual(['a\nC\n', 'warn\n']);
    expect([f.captured(2, 'stdout').toString(), f.captured(2, 'stderr').toString()]).toEqual(['to c\n', 'warn\n']);
    expect([f.captured(3, 'stdout').toString(), f.captured(3, 'stderr').toString()]).toEqual(['C\n', '']);
    expect(s.rec(1).stdout).toEqual({ kind: 'pipe', target: 'pipe:[100]', bytes: 4 });
    expect(s.rec(1).stdin).toEqual({ kind: 'tty', target: '/dev/pts/0', pos: 0 });
    // c read a pipe from outside itself; the pipe is internal to sh
    expect(s.rec(3).uncacheable).toEqual(['read stdin from a pipe outside the execution (pipe:[300])']);
    expect(s.rec(1).uncacheable).toEqual([]);
  });

  test('reading the terminal pcache was started from is uncacheable at every level that inherited it', () => {
    const s = new Sim();
    s.exec(10, ['sh']);
    s.fork(10, 11);
    s.exec(11, ['read']);
    s.read0(11, '/dev/pts/0', 'tty');
    s.exit(11);
    s.exit(10);
    expect(s.rec(2).uncacheable).toEqual(['read stdin from a tty outside the execution (/dev/pts/0)']);
    expect(s.rec(1).uncacheable).toEqual(['read stdin from a tty outside the execution (/dev/pts/0)']);
  });

  test('stdin from a regular file is a content input; /dev/null is nothing', () => {
    const s = new Sim();
    s.exec(10, ['sort'], { fds: [fd(0, '/data/in', 'file', 0), fd(1, '/dev/null', 'null'), fd(2, 'pipe:[200]', 'pipe')] });
    s.read0(10, '/data/in', 'file');
    s.write(10, 1, '/dev/null', 'discarded', 'null');
    s.exit(10);
    expect(ins(s.rec(1))).toEqual([{ path: '/data/in', kind: 'content' }]);
    expect(s.rec(1).stdout).toEqual({ kind: 'null', target: '/dev/null', bytes: 9 });
    expect(s.folder.captured(1, 'stdout').length).toBe(0);
    expect(s.rec(1).uncacheable).toEqual([]);
  });

  test('uncapturable writes and writes to other inherited fds are uncacheable', () => {
    const s = new Sim();
    // fd 3: a pipe's write end (O_WRONLY), as a shell's `3>&1` gives it
    s.exec(10, ['tool'], { fds: [...OUTER_FDS, { ...fd(3, 'pipe:[400]', 'pipe'), flags: 1 }] });
    s.send(io(10, 1, 'pipe:[100]', { uncapturable: true, syscall: 'splice', count: 5 }));
    s.write(10, 1, 'pipe:[400]', 'sneaky');
    s.exit(10);
    expect(s.rec(1).uncacheable).toEqual([
      'wrote to stdout in a way pcache cannot capture (splice)',
      'wrote to pipe:[400], inherited but not its stdout/stderr',
    ]);
  });
});

describe('events contract', () => {
  test('the folder is exhaustive over NativeEvent kinds at compile time', () => {
    // Compile-time check: a new kind without a case in TraceFolder.event fails tsc; at run time an
    // unknown kind throws instead of being silently dropped.
    const f = new TraceFolder({ stat: () => ({ type: '-', mode: 0 }), execInputs: () => [] });
    expect(() => f.event({ k: 'bogus' } as unknown as NativeEvent)).toThrow('unknown native event');
  });
});

describe('captured streams: spilled to a file, dropped past a maximum', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-spill-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** `cat` writing the pieces to its stdout pipe, then exiting */
  function writes(s: Sim, pieces: string[], stdout = 'pipe:[100]'): void {
    s.exec(10, ['cat'], { fds: [fd(0, '/dev/null', 'null'), fd(1, stdout, 'pipe'), fd(2, 'pipe:[200]', 'pipe')] });
    for (const p of pieces) s.write(10, 1, stdout, p);
    s.exit(10);
  }

  test('past overBytes the pieces go on in a file, in order, which the taker gets', () => {
    const s = new Sim(undefined, { spill: { dir, overBytes: 5 } });
    writes(s, ['abc', 'def', 'ghi']);
    expect(s.folder.spilledStreams()).toBe(1);
    const taken = s.folder.takeCaptured(1, 'stdout');
    expect('file' in taken && fs.readFileSync(taken.file, 'utf8')).toBe('abcdefghi');
    expect(s.rec(1).uncacheable).toEqual([]);
  });

  test('a spill that cannot be written makes the execution uncacheable, and the run goes on', () => {
    const s = new Sim(undefined, { spill: { dir: path.join(dir, 'missing'), overBytes: 5 } });
    writes(s, ['abc', 'def', 'ghi']);
    expect(s.rec(1).uncacheable).toEqual([expect.stringMatching(/^could not keep its stdout \(ENOENT/)]);
    expect(s.folder.takeCaptured(1, 'stdout')).toEqual({ chunks: [] });
  });

  test('past captureMax: a reason for that execution alone, and its spilled file removed', () => {
    const s = new Sim(undefined, { spill: { dir, overBytes: 2 }, captureMax: 7 });
    // cat's stdout is a pipe inside sh (`cat | ...`): only cat wrote past the maximum
    s.exec(1, ['sh']);
    s.fork(1, 10);
    writes(s, ['abc', 'def', 'ghi'], 'pipe:[300]');
    s.exit(1);
    expect(s.rec(2).uncacheable).toEqual(['wrote more than 7 bytes to its stdout (PCACHE_CAPTURE_MAX)']);
    expect(s.rec(1).uncacheable).toEqual([]);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(s.rec(2).stdout.bytes).toBe(9);
  });
});
