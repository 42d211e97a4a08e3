// The native tracer's surface, typed in one place (native/ implements it).
//
// The tracer is mechanism only: it reports what tracees did, with every path
// already absolute and resolved the way the kernel resolved it, and it asks at
// each execve whether to run or skip. What counts as an input or an output is
// decided in src/trace/fold.ts, never here.
//
// Event layout version: bump NATIVE_EVENT_VERSION in native/src/events.h and
// here together whenever a field changes meaning.

import * as path from 'path';

export const NATIVE_EVENT_VERSION = 2;

/** File type seen by lstat/stat before the syscall ran ('-' = did not exist). */
export type FileType = 'f' | 'd' | 'l' | 'c' | 'b' | 'p' | 's' | '-';

/** What an open file descriptor refers to, read from /proc/PID/fd. */
export interface FdSnapshot {
  fd: number;
  /** readlink(/proc/PID/fd/N): an absolute path, "pipe:[ino]", "socket:[ino]", "anon_inode:..." */
  target: string;
  /** 'file' | 'dir' | 'pipe' | 'tty' | 'null' | 'socket' | 'dev' | 'other' */
  kind: FdKind;
  /** file offset from /proc/PID/fdinfo/N (0 for pipes and ttys) */
  pos: number;
  /** open flags from fdinfo (octal in the kernel, a number here) */
  flags: number;
}
export type FdKind = 'file' | 'dir' | 'pipe' | 'tty' | 'null' | 'socket' | 'dev' | 'other';

/**
 * File-system operations, named after what they do rather than after the
 * syscall (openat/openat2/open/creat all become 'open').
 */
export type FsOp =
  | 'open' // flags = open flags; path = resolved target
  | 'stat' // stat/newfstatat/statx/lstat (follow = false for lstat/AT_SYMLINK_NOFOLLOW)
  | 'access' // access/faccessat/faccessat2
  | 'readlink'
  | 'getdents' // path = directory behind the fd
  | 'chdir' // chdir/fchdir
  | 'rename' // path -> path2 (renameat2 flags in `flags`; RENAME_EXCHANGE = 2)
  | 'link' // hard link: existing path -> new path2
  | 'symlink' // path and path2 both = the link location created; linkTarget = contents
  | 'unlink'
  | 'rmdir'
  | 'mkdir'
  | 'mknod'
  | 'truncate' // truncate(path) or ftruncate(fd) (path = file behind the fd); mode = the new length
  | 'chmod' // chmod/fchmod/fchmodat; mode = new mode
  | 'chown'
  | 'utimes' // utime/utimes/utimensat/futimesat
  | 'xattr-read'
  | 'xattr-write'
  | 'termsize' // ioctl(TIOCGWINSZ) that succeeded: path = the terminal on fd `fd`, told `size`
  | 'termset' // an ioctl that changed the terminal on fd `fd` (its settings, size, input): `request`
  | 'cpus' // sched_getaffinity: it may run on `size` CPUs (path: /proc/self/status)
  | 'execve-probe'; // a failed execve (path searched along PATH, not found or not executable)

export interface FsEvent {
  k: 'fs';
  pid: number; // the thread id that made the call
  op: FsOp;
  /** resolved absolute path (for rename/link: the source) */
  path: string;
  /** rename/link/symlink: the destination */
  path2?: string;
  /** symlink: the link contents as given */
  linkTarget?: string;
  flags: number;
  mode: number;
  /** whether the syscall follows a final symlink (stat vs lstat, O_NOFOLLOW ...) */
  follow: boolean;
  /** type of `path` before the call ('-' = absent); for path2 see type2 */
  type: FileType;
  type2?: FileType;
  /** symlinks traversed while resolving path/path2 (each is an input) */
  links: string[];
  /** syscall result when known (-errno on failure); null when only the entry was seen */
  result: number | null;
  /**
   * OPTIONAL (sent by the tracer): a regular file at `path`, as lstat saw it while the caller
   * was stopped before the call: [ino, size, mtime sec, mtime nsec, ctime sec, ctime nsec].
   */
  identity?: number[];
  /**
   * OPTIONAL (sent by the tracer): `path` was reached through a descriptor's magic link
   * (/dev/stdout is /proc/self/fd/1): that descriptor's number, or -2 when it belongs to
   * another process. Which file the call met then depends on the descriptor, not on the path.
   */
  fdLink?: number;
  /** termsize/termset: the descriptor, the answer ("ROWSxCOLUMNS"), the request (TCSETS ...); cpus: the count */
  fd?: number;
  size?: string;
  request?: string;
  /** OPTIONAL (sent by the tracer): execve-probe of a failed exec: the token of its request */
  token?: number;
  /**
   * OPTIONAL (never sent by the tracer): replayed from a cache hit, who looked at the path,
   * standing for the skipped execution (see the fold's metaBy/contentBy).
   */
  observer?: number;
}

/** A task (process or thread) was created by fork/vfork/clone/clone3. */
export interface SpawnEvent {
  k: 'spawn';
  pid: number; // new task id
  parent: number; // creating task id
  thread: boolean; // CLONE_THREAD: shares the parent's thread group
  tgid: number; // thread group of the new task
}

/** A successful execve (after PTRACE_EVENT_EXEC). */
export interface ExecEvent {
  k: 'exec';
  pid: number; // thread-group id after exec
  formerTid: number; // tid that called execve (differs when a non-leader thread exec'd)
  /** the token of the matching exec request, so fold can join them */
  token: number;
  /**
   * OPTIONAL (sent by the tracer): the whole fd table right after the exec, close-on-exec
   * fds gone; fold prefers it to the request's snapshot taken before the exec.
   */
  fds?: FdSnapshot[];
}

/** A task ended. For the last thread of a group, `processExit` is true. */
export interface ExitEvent {
  k: 'exit';
  pid: number;
  tgid: number;
  processExit: boolean;
  /** exit code when it exited normally, else null */
  code: number | null;
  /** signal number when killed by a signal, else null */
  signal: number | null;
  /** wall clock, ms since epoch */
  time: number;
}

/** Bytes read from fd 0 or written to fd 1/2 (captured by the tracer). */
export interface IoEvent {
  k: 'io';
  pid: number;
  fd: number;
  dir: 'r' | 'w';
  /** what the fd refers to at the moment of the call */
  target: string;
  kind: FdKind;
  /**
   * bytes written (only for writes; reads carry count only): all of them, but for a read-back
   * under NativeTracerOptions.readbackLimit, where they are the first so many of `count`
   */
  data?: Buffer;
  count: number;
  /** true when the call moved data in a way pcache cannot capture (sendfile/splice to a pipe ...) */
  uncapturable?: boolean;
  /**
   * The whole stdout of the execution whose exec request had this token and `readback`: the
   * bytes its regular-file stdout gained while it ran, read back at its end (no write of its
   * subtree to that file stopped on its own account).
   */
  readback?: boolean;
  token?: number;
  /**
   * OPTIONAL (a read-back of its file whole: from offset 0 to the end, every byte in `data`):
   * the file's [dev, ino, size, mtimeNs, ctimeNs] from a stat taken before the bytes were read
   * and unchanged after them, then the wall clock (ns) before that stat.
   */
  stamp?: [bigint, bigint, bigint, bigint, bigint, bigint];
  syscall: string;
}

/** Network: socket creation, connect, bind, sendto/sendmsg with an address. */
export interface NetEvent {
  k: 'net';
  pid: number;
  op: 'socket' | 'connect' | 'bind' | 'sendto' | 'listen' | 'accept';
  /** AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10, AF_NETLINK = 16 ... */
  family: number;
  /** "1.2.3.4:443", "[::1]:80", a unix socket path, or "" */
  address: string;
  socktype: number;
  /**
   * OPTIONAL, added by the policy side (fold.ts): connect's result when the
   * tracer saw the syscall exit (-errno on failure). A unix connect that failed
   * with ENOENT (glibc probing nscd) is then an absent input, not uncacheable.
   * Absent/null = unknown, treated as a successful connect.
   */
  result?: number | null;
}

/** A syscall the tracer stopped on but does not understand, or one that escapes tracking. */
export interface UnknownEvent {
  k: 'unknown';
  pid: number;
  syscall: string;
  nr: number;
  detail: string;
}

export type NativeEvent = FsEvent | SpawnEvent | ExecEvent | ExitEvent | IoEvent | NetEvent | UnknownEvent;

/** A file the kernel reads to run an exec, or a symlink on the way to one (ExecRequest.implied). */
export interface ImpliedInput {
  path: string;
  kind: 'content' | 'metadata' | 'absent';
}

/**
 * Sent at the entry of every execve that is expected to succeed; the calling
 * tracee stays stopped until resolve(token, decision) is called.
 */
export interface ExecRequest {
  token: number;
  pid: number; // tid calling execve
  tgid: number;
  /** resolved absolute path of the file being executed */
  path: string;
  /** symlinks traversed to reach it */
  links: string[];
  /**
   * What the kernel reads to run it, read at the exec's entry (native/src/exec_chain.h): the
   * file, each `#!` interpreter with the symlinks on the way, the ELF program interpreter.
   * Absent from requests made up by tests, which then count as reading the file alone.
   */
  implied?: ImpliedInput[];
  argv: string[];
  env: string[];
  cwd: string;
  umask: number;
  /** how many CPUs it may run on (sched_getaffinity; kept across exec), when known */
  cpus?: number;
  /** fds 0-2 only (kept cheap: this is on the path of every exec); pos/flags only for fd 0 on a file */
  fds: FdSnapshot[];
  /** its stdout (a regular file only it holds) comes as one `readback` io event at its end */
  readback?: boolean;
  /**
   * What the exec filter knows it by: 16 hex digits digesting path and argv (FNV-1a,
   * native/src/tracer.cc execSignature), so every command key determines it.
   */
  execSig: string;
  /** already running, its exit held (the exec filter knew no entry for it): nothing to decide, no answer wanted */
  decided?: boolean;
  time: number;
}

export type ExecDecision =
  | { action: 'run'; holdExit?: boolean }
  | { action: 'skip'; exitCode: number };

/** Sent when a process whose exec decision asked for holdExit is about to exit. */
export interface ExitRequest {
  token: number;
  pid: number;
  /** the task held: the process's last, or the one ending it (a leader gone by pthread_exit has no fd table) */
  tid: number;
  code: number | null;
  signal: number | null;
}

/**
 * Sent before a tracee changes a regular file that some tracee read (or opens one
 * for update): the tracee waits until resolvePreimage(token), so the file's state
 * before the change can be recorded (an input is what was read, not what it became).
 */
export interface PreimageRequest {
  token: number;
  pid: number;
  /** content: a file about to change; dirlist: a listed directory about to gain or lose entries */
  items: Array<{ path: string; kind: 'content' | 'dirlist' }>;
}

export interface TraceOptions {
  /** the file to execve (argv[0] already searched along PATH); default argv[0] */
  file?: string;
  /**
   * false: execs run without waiting for a decision (tracing only); their requests still
   * reach onExec, and resolveExec for them is ignored. Default true.
   */
  askExec?: boolean;
  /**
   * Exec signatures (ExecRequest.execSig) that may have a cache entry. An exec whose
   * signature is not among them (nor added by allowExecs) runs at once with its exit held
   * and reaches onExec marked `decided`. Absent: every exec waits for its decision.
   */
  execFilter?: string[];
  /**
   * Bytes of each read-back stdout region (IoEvent.readback, syscall "read-back") that come
   * as its data; its count is the whole region's. Absent: every byte.
   */
  readbackLimit?: number;
  argv: string[];
  /** "NAME=value" strings */
  env: string[];
  cwd: string;
  /**
   * called on the JS thread with events in order; `batch` numbers the tracer's batches (one
   * batch can make several calls, with onExec calls for the execs nobody waits for between)
   */
  onEvents: (events: NativeEvent[], batch: number) => void;
  /** called on the JS thread; must eventually call tracer.resolveExec(token, decision) */
  onExec: (req: ExecRequest) => void;
  /** called on the JS thread; must eventually call tracer.resolveExit(token) */
  onExit: (req: ExitRequest) => void;
  /** called on the JS thread; must eventually call tracer.resolvePreimage(token) */
  onPreimage: (req: PreimageRequest) => void;
  /** called once, after every tracee is gone and all events were delivered */
  onDone: (result: { code: number | null; signal: number | null; error?: string }) => void;
}

export interface NativeTracer {
  /** JS thread: hand a decision for a pending exec; wakes the tracer thread. */
  resolveExec(token: number, decision: ExecDecision): void;
  /** JS thread: let a held exit go. */
  resolveExit(token: number): void;
  /** JS thread: the old state of a file about to change is recorded; let the tracee go on. */
  resolvePreimage(token: number): void;
  /** JS thread: deliver a signal to the root tracee (SIGINT/SIGTERM forwarding). */
  signal(sig: number): void;
  /** JS thread: exec signatures that may now have a cache entry (TraceOptions.execFilter) */
  allowExecs(sigs: string[]): void;
  /** counters for benchmarks: stops by kind */
  stats(): Record<string, number>;
}

interface NativeModule {
  eventVersion: number;
  start(opts: TraceOptions): NativeTracer;
  /** pidfd_getfd: a duplicate of fd `fd` of process `pid` (same open file description), or -errno */
  dupFd(pid: number, fd: number): number;
  /** what the tracer records as read by the kernel to exec `path` (ExecRequest.implied), resolved from cwd */
  execImpliedInputs(path: string, cwd: string): ImpliedInput[];
  /** puts back the status flags (O_NONBLOCK) fds 0-2 had when the addon was loaded */
  restoreStdioFlags(): void;
  /**
   * [rows, columns] of the terminal on fd (TIOCGWINSZ), or of the terminal device at a path
   * (opened without becoming a controlling terminal; never /dev/ptmx), or null when it is not one
   */
  termSize(fdOrPath: number | string): [number, number] | null;
}

let loaded: NativeModule | undefined;

export function loadNative(): NativeModule {
  if (loaded) return loaded;
  const addon = path.resolve(__dirname, '..', '..', '..', 'native', 'build', 'Release', 'pcache_tracer.node');
  const alt = path.resolve(__dirname, '..', '..', 'native', 'build', 'Release', 'pcache_tracer.node');
  let mod: NativeModule;
  try {
    mod = require(addon) as NativeModule;
  } catch {
    try {
      mod = require(alt) as NativeModule;
    } catch (e) {
      throw new Error(`native tracer not built (run \`make build\`): ${(e as Error).message}`);
    }
  }
  if (mod.eventVersion !== NATIVE_EVENT_VERSION) {
    throw new Error(`native tracer event version ${mod.eventVersion}, expected ${NATIVE_EVENT_VERSION}; rebuild with \`make build\``);
  }
  loaded = mod;
  return mod;
}
