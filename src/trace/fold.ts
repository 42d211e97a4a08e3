// Folds the native tracer's events into execution records: which execution
// each process belongs to, what every execution (with its whole subtree) read
// and wrote, where its standard streams went, and why it cannot be cached.
//
// Model (DESIGN.md, "Executions nest"):
// - A successful execve starts an execution. A process belongs to the execution
//   of the process that created it; exec'ing moves it into a new child execution.
// - Every observation of a process is applied, in order, to its execution and to
//   every ancestor, each keeping its own per-path state. So "read after the
//   subtree wrote it" and "read then written" come out right at every level
//   without merging records after the fact.
// - An execution ends when no process of its subtree is alive; only then are its
//   output candidates lstat'ed (most fs events carry no result, so the outcome of
//   a write/unlink/rename is the final state compared with the state before).
// - A renamed directory is followed path by path (Move): entries that arrived
//   with it are outputs at the new name and inputs/deletions at the old one.
// - Regular files an execution starts with open beyond stdio (`cmd 3<in 4>out`)
//   are inputs/outputs: reads and writes through them are never seen.
// - Fail closed: anything not understood adds an uncacheable reason.
//
// I/O goes through injectable functions only: stat (output candidates at the
// end, identity of content inputs to notice changes behind an execution's
// back), list (the trees of renamed directories) and the reader of
// exec-implied inputs (the executable, `#!` interpreters, ld.so).

import * as fs from 'fs';
import * as path from 'path';
import type {
  ExecEvent,
  ExecRequest,
  ExitEvent,
  FdSnapshot,
  FileType,
  FsEvent,
  IoEvent,
  NativeEvent,
  NetEvent,
  SpawnEvent,
  UnknownEvent,
} from './native';
import {
  TRACE_RECORD_VERSION,
  type ExecutionRecord,
  type InputKind,
  type InputRecord,
  type OutputRecord,
  type StdStream,
  type TraceRecord,
} from './record';

// ---------------------------------------------------------------------------
// Injectable I/O

/** The state of a path at the end of an execution (lstat, not following). */
export interface FinalState {
  type: FileType;
  /** permission bits (st_mode & 07777); 0 when absent */
  mode: number;
  /** symlinks: their contents */
  linkTarget?: string;
  /** regular files: size in bytes, when known */
  size?: number;
  /** identity, to notice a file changed behind the execution's back (when known) */
  ino?: number;
  mtimeMs?: number;
  ctimeMs?: number;
}

/** lstat a path; throws only when the state cannot be known (EACCES, EIO ...). */
export type StatFn = (path: string) => FinalState;

/** Inputs the kernel reads itself at a successful execve (ExecRequest.implied, native/src/exec_chain.h). */
export type ExecInputsFn = (req: ExecRequest) => InputRecord[];

export function fileTypeOf(st: fs.Stats | fs.BigIntStats): FileType {
  if (st.isFile()) return 'f';
  if (st.isDirectory()) return 'd';
  if (st.isSymbolicLink()) return 'l';
  if (st.isCharacterDevice()) return 'c';
  if (st.isBlockDevice()) return 'b';
  if (st.isFIFO()) return 'p';
  return 's';
}

export const lstatFinal: StatFn = (p) => {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { type: '-', mode: 0 };
    throw e;
  }
  const type = fileTypeOf(st);
  const state: FinalState = { type, mode: st.mode & 0o7777, size: st.size, ino: st.ino, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
  if (type === 'l') state.linkTarget = fs.readlinkSync(p);
  return state;
};

/** Names in a directory (not recursive); [] when it cannot be read. */
export type ListFn = (dir: string) => string[];

export const listDir: ListFn = (dir) => {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
};

/** What the tracer read at the exec's entry (native/src/exec_chain.h); a request made up without it, the file alone. */
export const defaultExecInputs: ExecInputsFn = (req) =>
  req.implied ? req.implied.map((i) => ({ path: i.path, kind: i.kind })) : [{ path: req.path, kind: 'content' }];

// ---------------------------------------------------------------------------
// Which paths are recorded
//
// Pseudo file systems describe the running system, not data: /proc (glibc and
// python read /proc/self/... constantly), /sys (nproc reads cpu lists), /dev.
// Exceptions under /dev: /dev/shm is a real tmpfs (POSIX shm, semaphores) and
// is recorded; /dev/urandom and /dev/random make an execution nondeterministic;
// opening a terminal reads or writes bytes pcache cannot replay. The cache
// directory is pcache's own business.

export type PathPolicy = 'record' | 'ignore' | 'random' | 'terminal';

const TERMINALS = /^\/dev\/(tty[^/]*|pts\/.*|console)$/;

export function pathPolicy(p: string, ignoreDirs: readonly string[] = []): PathPolicy {
  // fstat of a pipe/socket/anon inode ("pipe:[123]"), or of an unlinked file ("/x (deleted)"):
  // nothing anyone can look up by name.
  if (!p.startsWith('/') || p.endsWith(' (deleted)')) return 'ignore';
  for (const d of ignoreDirs) if (p === d || p.startsWith(d.endsWith('/') ? d : d + '/')) return 'ignore';
  // Random numbers and clocks behind /proc are as nondeterministic as /dev/urandom.
  if (p.startsWith('/proc/sys/kernel/random/') || p === '/proc/uptime' || p === '/proc/loadavg') return 'random';
  if (p === '/proc' || p.startsWith('/proc/') || p === '/sys' || p.startsWith('/sys/')) return 'ignore';
  if (p === '/dev/shm' || p.startsWith('/dev/shm/')) return 'record';
  if (p === '/dev/urandom' || p === '/dev/random') return 'random';
  if (TERMINALS.test(p)) return 'terminal';
  if (p === '/dev' || p.startsWith('/dev/')) return 'ignore';
  return 'record';
}

// ---------------------------------------------------------------------------
// Effects: what one event means for one path, independent of which execution
// looks at it.

type How = NonNullable<OutputRecord['how']>;

type Change =
  | { k: 'content'; how: How; replaced?: boolean } // bytes written, or (replaced) a new file put at the name
  | { k: 'remove' } // unlink, rmdir, rename source
  | { k: 'mkdir' }
  | { k: 'symlink' }
  | { k: 'mknod' }
  | { k: 'mode' }
  | { k: 'owner' }
  | { k: 'times' };

interface PathEffect {
  path: string;
  /** observed through an open fd (fstat), not looked up by name */
  viaFd?: boolean;
  /** type before the call; also the before-state if this is the first touch */
  before: FileType;
  /** what the call observed of the state before (null = nothing) */
  input: InputKind | null;
  change: Change | null;
  /**
   * An open with O_CREAT (without O_EXCL) that created the file. Its absence is observed only
   * because old bytes could have survived; emptying the file later (ftruncate to 0, which is
   * how split and sort -o start their outputs) makes the outcome the same either way.
   */
  creates?: boolean;
  /** a truncation to length 0: no old byte survives */
  empties?: boolean;
  /**
   * An existing file opened write-only without O_TRUNC: its old bytes are an input only
   * because they might survive; emptying it later makes them none (split and sort -o
   * re-running over their own outputs). 'creat': the open had O_CREAT, so neither did
   * the file's existence matter.
   */
  rewrites?: 'creat' | 'plain';
}

interface Reason {
  text: string;
  /** whether ancestors are tainted too (their record covers this subtree) */
  propagate: boolean;
}

// Open flags (Linux generic/x86_64 values; O_DIRECTORY taken from Node for arm64).
const O_ACCMODE = 3;
const O_RDONLY = 0;
const O_WRONLY = 1;
const O_RDWR = 2;
const O_CREAT = fs.constants.O_CREAT;
const O_EXCL = fs.constants.O_EXCL;
const O_TRUNC = fs.constants.O_TRUNC;
const O_APPEND = fs.constants.O_APPEND;
const O_NONBLOCK = fs.constants.O_NONBLOCK;
const O_PATH = 0o10000000;
const O_TMPFILE = 0o20000000 | fs.constants.O_DIRECTORY;
const AT_EMPTY_PATH = 0x1000;
const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;

const AF_UNSPEC = 0;
const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16;
const SIGPIPE = 13;
const ENOENT = 2;

const STREAM_KINDS: ReadonlySet<string> = new Set(['pipe', 'socket', 'tty', 'other']);

/**
 * A pipe, socket, terminal or other stream open for reading on fd 3 or above when an
 * execution starts came from outside it, and reads there do not stop the tracer (only fd
 * 0's do): `tool --fd 3`, bash's `read -u 3`, Python's os.read(3). What it read cannot be
 * known, so the execution is not stored. (Reached through /dev/fd/N instead, the open
 * says so: fdLinkReasons.) Regular files there are content inputs (inheritedFileEffects).
 */
function outsideReadables(fds: readonly FdSnapshot[]): string[] {
  return fds
    .filter((f) => f.fd > 2 && STREAM_KINDS.has(f.kind) && (f.flags & O_ACCMODE) !== O_WRONLY)
    .map((f) => `started with a ${f.kind} open for reading on fd ${f.fd} from outside it (${f.target}): its reads there are not seen`);
}

const exists = (t: FileType): boolean => t !== '-';
/** existence or type probed */
const probe = (t: FileType): InputKind => (exists(t) ? 'metadata' : 'absent');

function effect(path: string, before: FileType, input: InputKind | null, change: Change | null = null): PathEffect {
  return { path, before, input, change };
}

/** Effects of an open, inferring the outcome from the before-state (result is usually unknown). */
function openEffects(ev: FsEvent): PathEffect[] {
  const f = ev.flags;
  const t = ev.type;
  if ((f & O_PATH) !== 0) return [effect(ev.path, t, probe(t))];
  if ((f & O_TMPFILE) === O_TMPFILE) return [effect(ev.path, t, probe(t))]; // unnamed file in a dir; a later linkat names it
  const acc = f & O_ACCMODE;
  const creat = (f & O_CREAT) !== 0;
  const excl = creat && (f & O_EXCL) !== 0;
  const trunc = (f & O_TRUNC) !== 0;
  const append = (f & O_APPEND) !== 0;
  const writes = acc !== O_RDONLY || trunc;
  if (!exists(t)) {
    if (!creat) return [effect(ev.path, t, 'absent')]; // ENOENT
    // O_CREAT|O_TRUNC ends the same whether or not the file existed, but for its mode: an
    // existing file keeps its own. The output says so (keepsMode) and a replay does the same,
    // so absence is not an input. Without O_TRUNC, old bytes would have survived: observed.
    if (trunc && !excl) return [effect(ev.path, t, null, { k: 'content', how: 'created' })];
    return [{ ...effect(ev.path, t, 'absent', { k: 'content', how: 'created' }), creates: !excl }];
  }
  if (excl) return [effect(ev.path, t, 'metadata')]; // EEXIST
  if (t === 'f') {
    if (!writes) return [effect(ev.path, t, 'content')];
    // The old bytes are gone; the old mode survives the truncation, and a replay keeps it too.
    if (trunc) return [effect(ev.path, t, null, { k: 'content', how: 'truncated' })];
    // Appending or writing in place: the final bytes depend on the old ones.
    const fx = effect(ev.path, t, 'content', { k: 'content', how: append ? 'appended' : 'written' });
    if (acc === O_WRONLY && !append) fx.rewrites = creat ? 'creat' : 'plain';
    return [fx];
  }
  // Directories (opened as a base for *at calls, or EISDIR), symlinks with O_NOFOLLOW (ELOOP),
  // sockets (ENXIO): existence and type were observed. FIFOs and devices are handled by the caller.
  return [effect(ev.path, t, 'metadata')];
}

/** A directory renamed by the execution: everything below `from` now lies below `to`. */
interface Move {
  from: string;
  to: string;
}

function renameEffects(ev: FsEvent): { effects: PathEffect[]; reasons: Reason[]; move?: Move } {
  const src = ev.path;
  const dst = ev.path2 ?? '';
  const ts = ev.type;
  const td = ev.type2 ?? '-';
  if (!exists(ts)) return { effects: [effect(src, ts, 'absent')], reasons: [] }; // ENOENT
  if (src === dst) return { effects: [effect(src, ts, 'metadata')], reasons: [] }; // no-op
  const reasons: Reason[] = [];
  const movedKind: InputKind = ts === 'f' ? 'content' : ts === 'd' ? 'dirlist' : 'metadata';
  if ((ev.flags & RENAME_EXCHANGE) !== 0) {
    // Swapping trees: both would need the move bookkeeping in both directions.
    if (ts === 'd' || td === 'd') reasons.push({ text: `exchanged a directory (${src} <-> ${dst})`, propagate: true });
    if (!exists(td)) return { effects: [effect(src, ts, 'metadata'), effect(dst, td, 'absent')], reasons };
    return {
      effects: [
        effect(src, ts, movedKind, { k: 'content', how: 'truncated' }),
        effect(dst, td, td === 'f' ? 'content' : 'metadata', { k: 'content', how: 'truncated' }),
      ],
      reasons,
    };
  }
  if ((ev.flags & RENAME_NOREPLACE) !== 0 && exists(td)) {
    return { effects: [effect(src, ts, 'metadata'), effect(dst, td, 'metadata')], reasons }; // EEXIST
  }
  const dstObserved = (ev.flags & RENAME_NOREPLACE) !== 0 ? 'absent' : null;
  if (ts === 'd') {
    // A whole tree changes name: TraceFolder keeps a move record (see Move) so what lies
    // below either name is attributed to where it came from.
    return {
      effects: [effect(src, ts, movedKind, { k: 'remove' }), effect(dst, td, dstObserved, { k: 'content', how: 'created', replaced: true })],
      reasons,
      move: { from: src, to: dst },
    };
  }
  return {
    effects: [
      // The source's bytes become the destination's: a content input unless the subtree wrote them.
      effect(src, ts, movedKind, { k: 'remove' }),
      effect(dst, td, dstObserved, { k: 'content', how: exists(td) ? 'truncated' : 'created', replaced: true }),
    ],
    reasons,
  };
}

/** Pure classification of one fs event. Exhaustive over FsOp. */
export function fsEffects(ev: FsEvent): { effects: PathEffect[]; reasons: Reason[]; move?: Move } {
  // Symlinks traversed to reach path/path2 were read (their contents decided where the call went).
  const effects: PathEffect[] = ev.links.map((l) => effect(l, 'l', 'metadata'));
  const reasons: Reason[] = [];
  let move: Move | undefined;
  const t = ev.type;
  const p = ev.path;
  switch (ev.op) {
    case 'open':
      // A pipe reached through a descriptor's link (/dev/stdin) is judged by fdLinkReasons.
      if (t === 'p' && ev.fdLink === undefined) reasons.push({ text: `opened a fifo ${p}`, propagate: true });
      else if ((t === 'c' || t === 'b') && pathPolicy(p) === 'record') reasons.push({ text: `opened a device ${p}`, propagate: true });
      effects.push(...openEffects(ev));
      break;
    case 'stat':
      effects.push({ ...effect(p, t, probe(t)), viaFd: (ev.flags & AT_EMPTY_PATH) !== 0 });
      break;
    case 'access':
    case 'readlink':
    case 'chdir':
    case 'xattr-read':
    case 'execve-probe':
      effects.push(effect(p, t, probe(t)));
      break;
    case 'getdents':
      effects.push(effect(p, t, t === 'd' ? 'dirlist' : probe(t)));
      break;
    case 'rename': {
      const r = renameEffects(ev);
      effects.push(...r.effects);
      reasons.push(...r.reasons);
      move = r.move;
      break;
    }
    case 'link': {
      const dst = ev.path2 ?? '';
      const td = ev.type2 ?? '-';
      // linkat of an O_TMPFILE file through /proc/self/fd/N: the source is an unnamed inode
      // ("/dir/#123 (deleted)"), nothing anyone else could observe.
      if (p.endsWith(' (deleted)')) effects.push(effect(dst, td, probe(td), exists(td) ? null : { k: 'content', how: 'created', replaced: true }));
      else if (!exists(t)) effects.push(effect(p, t, 'absent'));
      else if (exists(td) || t === 'd') effects.push(effect(p, t, 'metadata'), effect(dst, td, probe(td)));
      // The new name shares the source's bytes; link() fails on an existing name, so absence was observed.
      else effects.push(effect(p, t, t === 'f' ? 'content' : 'metadata'), effect(dst, td, 'absent', { k: 'content', how: 'created', replaced: true }));
      break;
    }
    case 'symlink': {
      // path2 is the link being created; the target (linkTarget) need not exist and is not looked at.
      const loc = ev.path2 ?? p;
      const tl = ev.path2 !== undefined ? (ev.type2 ?? '-') : t;
      effects.push(exists(tl) ? effect(loc, tl, 'metadata') : effect(loc, tl, 'absent', { k: 'symlink' }));
      break;
    }
    case 'unlink':
      if (!exists(t) || t === 'd') effects.push(effect(p, t, probe(t)));
      else effects.push(effect(p, t, 'metadata', { k: 'remove' }));
      break;
    case 'rmdir':
      if (t !== 'd') effects.push(effect(p, t, probe(t)));
      else effects.push(effect(p, t, 'metadata', { k: 'remove' })); // may fail (not empty): the final state decides
      break;
    case 'mkdir':
      effects.push(exists(t) ? effect(p, t, 'metadata') : effect(p, t, 'absent', { k: 'mkdir' }));
      break;
    case 'mknod':
      effects.push(exists(t) ? effect(p, t, 'metadata') : effect(p, t, 'absent', { k: 'mknod' }));
      break;
    case 'truncate':
      // To length 0 (the tracer passes the length as `mode`): the file existed, its bytes are
      // gone. To any other length the old bytes may survive: read and written.
      // (Only an emptying is a 'truncated' output: the flag REPLACED says no old byte is left.)
      if (t === 'f' && ev.mode === 0) effects.push({ ...effect(p, t, 'metadata', { k: 'content', how: 'truncated' }), empties: true });
      else if (t === 'f') effects.push(effect(p, t, 'content', { k: 'content', how: 'written' }));
      else effects.push(effect(p, t, probe(t)));
      break;
    // These succeed only on an existing path (ENOENT otherwise): existence was observed.
    case 'chmod':
      effects.push(exists(t) ? effect(p, t, 'metadata', { k: 'mode' }) : effect(p, t, 'absent'));
      break;
    case 'chown':
      effects.push(exists(t) ? effect(p, t, 'metadata', { k: 'owner' }) : effect(p, t, 'absent'));
      break;
    case 'utimes':
      effects.push(exists(t) ? effect(p, t, 'metadata', { k: 'times' }) : effect(p, t, 'absent'));
      break;
    case 'termsize': // TraceFolder.onTermSize: an input by descriptor, not by path
    case 'cpus': // TraceFolder.onFs: an input of the process, not of a path
      break;
    case 'termset':
      // stty, `read -s`, a pager: the terminal stays changed after the execution; a replay would not change it
      reasons.push({ text: `changed terminal ${p} (${ev.request ?? 'ioctl'})`, propagate: true });
      break;
    case 'xattr-write':
      if (exists(t)) reasons.push({ text: `set an extended attribute on ${p}`, propagate: true });
      effects.push(effect(p, t, probe(t)));
      break;
    default: {
      const never: never = ev.op;
      reasons.push({ text: `unhandled file operation ${String(never)} on ${p}`, propagate: true });
    }
  }
  return { effects, reasons, move };
}

// ---------------------------------------------------------------------------
// Per-execution state

// (terminal inputs are kept per execution, by descriptor, not per path)
const INPUT_RANK: Record<InputKind, number> = { terminal: 0, cpus: 0, absent: 1, metadata: 2, dirlist: 3, content: 4 };

interface PathState {
  /** type before the first event of this execution's subtree that touched the path */
  before: FileType;
  input: InputKind | null;
  /**
   * Which executions (innermost, by id; a negative id stands for a skipped one, see
   * eventsForHit) looked at the path's metadata, and which read its content. One that read
   * what it stat'ed (sort stats its inputs) depends on the bytes; metadata seen by one that
   * did not read it (`date -r f` next to `sort f`) is an input of its own for the
   * executions containing both.
   */
  metaBy: Set<number> | null;
  contentBy: Set<number> | null;
  /** the subtree changed the path: later observations saw its own doing, not an input */
  modified: boolean;
  content: boolean;
  how: How | null;
  removed: boolean;
  mkdir: boolean;
  symlink: boolean;
  mknod: boolean;
  mode: boolean;
  owner: boolean;
  times: boolean;
  /** a new file was put at the name (rename or link onto it): its mode came with it */
  replaced: boolean;
  /** the entry was moved away with a renamed directory (its final state is still decided at the end) */
  movedAway: boolean;
  /** moved away before anything saw what it was: `before` is only known from the moved tree */
  beforeUnknown: boolean;
  /** the entry arrived with a renamed directory: it did not exist here before the execution */
  viaMove: boolean;
  /** content inputs: the file's identity when first read, checked again at the end */
  seen: FinalState | null;
  /** first touched by an O_CREAT open that created it (PathEffect.creates) */
  createdByOpen: boolean;
  /** first touched by a write-only open of the existing file (PathEffect.rewrites) */
  rewrittenByOpen: 'creat' | 'plain' | null;
}

function newPathState(before: FileType): PathState {
  return {
    before,
    input: null,
    metaBy: null,
    contentBy: null,
    modified: false,
    content: false,
    how: null,
    removed: false,
    mkdir: false,
    symlink: false,
    mknod: false,
    mode: false,
    owner: false,
    times: false,
    replaced: false,
    movedAway: false,
    beforeUnknown: false,
    viaMove: false,
    seen: null,
    createdByOpen: false,
    rewrittenByOpen: null,
  };
}

/** The tracer's [ino, size, mtime s, mtime ns, ctime s, ctime ns], in the units fs.Stats uses. */
function identityState(id: readonly number[]): FinalState {
  const [ino, size, ms, mns, cs, cns] = id;
  // the same arithmetic as Node's Stats.mtimeMs, so a file untouched compares equal
  return { type: 'f', mode: 0, ino, size, mtimeMs: ms * 1e3 + mns / 1e6, ctimeMs: cs * 1e3 + cns / 1e6 };
}

function sameFile(a: FinalState, b: FinalState): boolean {
  return a.type === b.type && a.size === b.size && a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/** coreutils `mkdir -p` / `--parents` (options before a `--`; `-m MODE` takes an argument). */
export function isMkdirParents(req: { path: string; argv: readonly string[] }): boolean {
  if (!req.path.endsWith('/mkdir')) return false;
  const args = req.argv.slice(1);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') return false;
    if (a === '--parents') return true;
    if (a === '-m' || a === '--mode') {
      i++;
      continue;
    }
    if (/^-[a-zA-Z]+$/.test(a)) {
      const m = a.indexOf('m');
      const cluster = m >= 0 ? a.slice(0, m) : a; // after -m comes its argument
      if (cluster.includes('p')) return true;
    }
  }
  return false;
}

/** `p` strictly below directory `dir` */
function below(dir: string, p: string): boolean {
  return p.length > dir.length && p.startsWith(dir) && p[dir.length] === '/';
}

function mergeInput(st: PathState, kind: InputKind): void {
  if (st.input === null || INPUT_RANK[kind] > INPUT_RANK[st.input]) st.input = kind;
}

interface Proc {
  tgid: number;
  execution: Execution | null;
  alive: boolean;
  threads: Set<number>;
}

type StreamName = 'stdout' | 'stderr';

interface Execution {
  id: number;
  parent: Execution | null;
  rootProc: Proc;
  rootExited: boolean;
  req: ExecRequest;
  end: number | null;
  exitCode: number | null;
  signal: number | null;
  /** live processes of the whole subtree */
  live: Set<Proc>;
  paths: Map<string, PathState>;
  reasons: string[];
  reasonSet: Set<string>;
  fds: Map<number, FdSnapshot>;
  /** every target the execution started with (inherited from outside) */
  inherited: Set<string>;
  captured: Record<StreamName, Capture>;
  capturedBytes: Record<StreamName, number>;
  /** its stdout is read back from the file at its end (ExecRequest.readback) */
  readback: boolean;
  boundUnix: Set<string>;
  /** directory renames by the subtree, in order */
  moves: Move[];
  outputs: OutputRecord[];
  /** the size its subtree was first told of the terminal on each of its fds 0-2 */
  terminals: Map<number, string>;
  /** how many CPUs its subtree was first told it may run on */
  cpus?: string;
}

export interface FolderOptions {
  /** end-of-execution lstat of output candidates (tests fake the file system here) */
  stat?: StatFn;
  /** inputs implied by an exec (tests fake them) */
  execInputs?: ExecInputsFn;
  /** directory listing, for the trees an execution moved (tests fake it) */
  list?: ListFn;
  /** directories never recorded (pcache's cache directory) */
  ignoreDirs?: string[];
  /** called once per execution, right after it ended and its outputs were read */
  onExecutionEnd?: (record: ExecutionRecord) => void;
  /**
   * An execution's captured stream past `overBytes` goes on in a file of its own in `dir`
   * instead of memory (see takeCaptured); without it every byte stays in memory.
   */
  spill?: { dir: string; overBytes: number };
  /**
   * An execution whose stdout or stderr goes past this many bytes is not cached (a reason,
   * for it alone) and what it captured is dropped: storing a 100 GB pipe stream costs more
   * than the step, and could not be replayed. Default: no limit.
   */
  captureMax?: number;
  /**
   * Bytes of each captured stream an execution keeps (the rest is only counted, and the
   * capture marked truncated): `pcache trace` keeps what its record shows. Default: all.
   */
  captureLimit?: number;
}

/** What an execution wrote to one of its streams: pieces in memory, then (spilled) a file. */
interface Capture {
  chunks: Buffer[];
  bytes: number;
  file?: { path: string; fd: number };
  /** bytes past captureLimit were dropped */
  truncated?: boolean;
  /** past captureMax: nothing kept any more (the execution is not cached) */
  dropped?: boolean;
  /** the stream is all of one file, as a read-back found it (see WholeFile) */
  whole?: WholeFile;
}

/**
 * A captured stream that is the whole content of the regular file at `path` (a read-back from
 * offset 0 to its end, and nothing else written to the stream): `stamp` is the file's, taken
 * before those bytes were read and unchanged after them, at wall clock `atNs`; `mark` is the
 * path's changeMark then. Whoever hashes the bytes knows the file's digest with it.
 */
export interface WholeFile {
  path: string;
  stamp: { dev: bigint; ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint };
  atNs: bigint;
  mark: number;
}

function noCapture(): Record<StreamName, Capture> {
  return { stdout: { chunks: [], bytes: 0 }, stderr: { chunks: [], bytes: 0 } };
}

interface PendingExec {
  req: ExecRequest;
  implied: InputRecord[];
}

function noStream(): StdStream {
  return { kind: 'other', target: '' };
}

/**
 * Consumes native event batches and exec requests, in the order the tracer
 * delivers them, and produces execution records.
 */
export class TraceFolder {
  private readonly stat: StatFn;
  private readonly execInputs: ExecInputsFn;
  private readonly list: ListFn;
  private readonly ignoreDirs: string[];
  private readonly onExecutionEnd?: (record: ExecutionRecord) => void;

  private readonly procs = new Map<number, Proc>();
  private readonly tidToTgid = new Map<number, number>();
  private readonly pending = new Map<number, PendingExec>();
  private readonly pendingByTid = new Map<number, number>();
  private readonly all: Execution[] = [];
  /** the innermost execution that last changed each path */
  private readonly writers = new Map<string, Execution>();
  /** path -> sequence number of the last change a traced process made to it */
  private readonly changes = new Map<string, number>();
  private changeSeq = 0;
  /** live executions whose stdout is read back, by exec token and by their stdout file */
  private readonly readbackByToken = new Map<number, Execution>();
  private readonly readbackByPath = new Map<string, Set<Execution>>();
  private nextId = 1;
  private readonly spill: FolderOptions['spill'];
  private readonly captureLimit: number | undefined;
  private readonly captureMax: number | undefined;
  private spilled = 0;
  /** identity() looks while events() folds, by path */
  private identities: Map<string, FinalState | null> | null = null;
  /** the looks of the tracer's last batch, while nothing else happened since (events()) */
  private batchLooks: { batch: number; looks: Map<string, FinalState | null> } | null = null;

  constructor(opts: FolderOptions = {}) {
    this.spill = opts.spill;
    this.captureLimit = opts.captureLimit;
    this.captureMax = opts.captureMax;
    this.stat = opts.stat ?? lstatFinal;
    this.execInputs = opts.execInputs ?? defaultExecInputs;
    this.list = opts.list ?? listDir;
    this.ignoreDirs = opts.ignoreDirs ?? [];
    this.onExecutionEnd = opts.onExecutionEnd;
  }

  /**
   * An execve about to happen, or (decided, tracing only) already under way. The
   * kernel-read inputs come with it, read by the tracer at the exec's entry.
   */
  execRequest(req: ExecRequest): void {
    let implied: InputRecord[];
    try {
      implied = this.execInputs(req);
    } catch {
      implied = [{ path: req.path, kind: 'content' }];
    }
    this.pending.set(req.token, { req, implied });
    this.pendingByTid.set(req.pid, req.token);
  }

  /**
   * Events, folded in order. Everything in a batch happened before it is folded, so any look
   * at a file's identity while folding it is a look after all of them: one per path serves the
   * whole batch (libc, ld.so.cache and the executable come up in nearly every execution).
   * `batch` numbers the tracer's batches (NativeTracerOptions.onEvents): calls with the same
   * number, one after the other, share their looks; so do the exec requests between them
   * (execRequest), which change no file. Anything else in between (a hit's outputs restored,
   * its events folded by cached-run.ts without a number) ends the sharing.
   */
  events(events: readonly NativeEvent[], batch?: number): void {
    const shared = batch !== undefined && batch === this.batchLooks?.batch ? this.batchLooks.looks : new Map<string, FinalState | null>();
    this.batchLooks = batch === undefined ? null : { batch, looks: shared };
    this.identities = shared;
    try {
      for (const ev of events) this.foldEvent(ev);
    } finally {
      this.identities = null;
    }
  }

  /** One event, folded on its own: its looks at files are its own. */
  event(ev: NativeEvent): void {
    this.batchLooks = null;
    this.foldEvent(ev);
  }

  private foldEvent(ev: NativeEvent): void {
    switch (ev.k) {
      case 'fs':
        return this.onFs(ev);
      case 'spawn':
        return this.onSpawn(ev);
      case 'exec':
        return this.onExec(ev);
      case 'exit':
        return this.onExit(ev);
      case 'io':
        return this.onIo(ev);
      case 'net':
        return this.onNet(ev);
      case 'unknown':
        return this.onUnknown(ev);
      default: {
        const never: never = ev;
        throw new Error(`unknown native event ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * The tracer is done: every tracee is gone. Executions that never saw their
   * last exit (lost events) are ended now and marked uncacheable.
   */
  finish(result: { code: number | null; signal: number | null }, time = Date.now()): TraceRecord {
    for (const e of [...this.all].reverse()) {
      if (e.end !== null) continue;
      const pids = [...e.live].map((p) => p.tgid).join(', ');
      this.addReason(e, { text: `did not see the end of process ${pids || e.rootProc.tgid}`, propagate: false });
      this.endExecution(e, time);
    }
    return this.traceRecord(result);
  }

  traceRecord(result: { code: number | null; signal: number | null }): TraceRecord {
    return {
      version: TRACE_RECORD_VERSION,
      exitCode: result.code,
      signal: result.signal,
      executions: this.all.map((e) => this.toRecord(e)),
    };
  }

  /** Records of every execution seen so far, in start order. */
  executions(): ExecutionRecord[] {
    return this.all.map((e) => this.toRecord(e));
  }

  /** The bytes an execution's subtree wrote to the stdout/stderr it started with. */
  captured(id: number, stream: StreamName): Buffer {
    return Buffer.concat(this.capturedChunks(id, stream));
  }

  /** captured(), as the pieces they were written in (not to be modified). */
  capturedChunks(id: number, stream: StreamName): readonly Buffer[] {
    const c = this.execution(id).captured[stream];
    return c.file ? [fs.readFileSync(c.file.path)] : c.chunks.slice();
  }

  /**
   * The captured stream as the store takes it, and out of the fold from now on (its byte
   * count stays): a spilled one is its file, which the caller then owns and removes. Without
   * taking them a run would hold every byte that went through a captured pipe (`bwa mem |
   * samtools sort`) until it ends. Later calls see nothing captured.
   */
  takeCaptured(id: number, stream: StreamName): { chunks: readonly Buffer[]; whole?: WholeFile } | { file: string } {
    const e = this.execution(id);
    const c = e.captured[stream];
    // A process it left behind may write on: counted, never kept (nor spilled) again.
    e.captured[stream] = { chunks: [], bytes: c.bytes, dropped: true };
    if (!c.file) return c.whole && !c.dropped && !c.truncated ? { chunks: c.chunks, whole: c.whole } : { chunks: c.chunks };
    fs.closeSync(c.file.fd);
    return { file: c.file.path };
  }

  /** Captured streams that went to a file (spill), so far. */
  spilledStreams(): number {
    return this.spilled;
  }

  private execution(id: number): Execution {
    const e = this.all[id - 1];
    if (!e) throw new Error(`no execution ${id}`);
    return e;
  }

  private dropCapture(c: Capture): void {
    c.chunks = [];
    if (!c.file) return;
    try {
      fs.closeSync(c.file.fd);
      fs.rmSync(c.file.path, { force: true });
    } catch {
      // gone already; a file left behind is swept with the cache's other temp files
    }
    c.file = undefined;
  }

  /** Whether bytes of the stream were dropped past captureLimit. */
  capturedTruncated(id: number, stream: StreamName): boolean {
    return this.execution(id).captured[stream].truncated === true;
  }

  private wholeFile(ev: IoEvent): WholeFile | undefined {
    if (!ev.stamp || !ev.data || ev.data.length !== ev.count) return undefined;
    const [dev, ino, size, mtimeNs, ctimeNs, atNs] = ev.stamp;
    return { path: ev.target, stamp: { dev, ino, size, mtimeNs, ctimeNs }, atNs, mark: this.changeMark(ev.target) };
  }

  /**
   * `total`: the bytes `data` stands for; more than its length for a read-back cut at the limit.
   * `whole`: `data` is all of that file (only said of the first bytes of a stream).
   */
  private capture(e: Execution, s: StreamName, data: Buffer, total = data.length, whole?: WholeFile): void {
    const c = e.captured[s];
    if (whole && c.bytes === 0 && total === data.length) c.whole = whole;
    else delete c.whole;
    if (this.captureLimit !== undefined) {
      // Nothing was dropped before the limit was reached: what is kept is min(bytes, limit).
      const room = this.captureLimit - Math.min(c.bytes, this.captureLimit);
      c.bytes += total;
      if (total > room) c.truncated = true;
      if (room > 0) c.chunks.push(data.length > room ? Buffer.from(data.subarray(0, room)) : data);
      return;
    }
    if (total !== data.length) {
      // Without a limit the tracer reads every byte back: bytes missing here are a broken promise.
      this.addReason(e, { text: `its ${s} came with ${data.length} of its ${total} bytes`, propagate: false });
    }
    c.bytes += data.length;
    if (c.dropped) return;
    if (this.captureMax !== undefined && c.bytes > this.captureMax) {
      c.dropped = true;
      this.dropCapture(c);
      this.addReason(e, { text: `wrote more than ${this.captureMax} bytes to its ${s} (PCACHE_CAPTURE_MAX)`, propagate: false });
      return;
    }
    c.chunks.push(data);
    if (!c.file && (!this.spill || c.bytes <= this.spill.overBytes)) return;
    try {
      if (!c.file) {
        const file = path.join(this.spill!.dir, `capture-${process.pid}-${e.id}-${s}-${Date.now().toString(36)}.tmp`);
        c.file = { path: file, fd: fs.openSync(file, 'wx', 0o600) };
        this.spilled++;
      }
      for (const piece of c.chunks) writeAll(c.file.fd, piece);
      c.chunks = [];
    } catch (err) {
      // A full or unwritable cache directory: this stream cannot be kept, so the execution
      // cannot be cached; the run goes on.
      c.dropped = true;
      this.dropCapture(c);
      this.addReason(e, { text: `could not keep its ${s} (${(err as Error).message})`, propagate: false });
    }
  }

  // -------------------------------------------------------------------------

  /** Changes whenever a traced process changes `path` (0 while none has). */
  changeMark(path: string): number {
    return this.changes.get(path) ?? 0;
  }

  /** The id of the execution a task belongs to right now (null before the first exec). */
  executionIdOf(tid: number): number | null {
    return this.executionOfTid(tid)?.id ?? null;
  }

  private procOfTid(tid: number): Proc | undefined {
    return this.procs.get(this.tidToTgid.get(tid) ?? tid);
  }

  private executionOfTid(tid: number): Execution | null {
    return this.procOfTid(tid)?.execution ?? null;
  }

  private *chain(e: Execution | null): Generator<Execution> {
    for (let a = e; a !== null; a = a.parent) yield a;
  }

  private addReasonLocal(e: Execution, text: string): void {
    if (e.reasonSet.has(text)) return;
    e.reasonSet.add(text);
    e.reasons.push(text);
  }

  private addReason(e: Execution, r: Reason): void {
    this.addReasonLocal(e, r.text);
    if (!r.propagate) return;
    for (let a = e.parent; a !== null; a = a.parent) this.addReasonLocal(a, `child execution ${e.id}: ${r.text}`);
  }

  /**
   * Where a path below a moved directory's new name came from (the latest move wins), or null.
   */
  private movedOrigin(e: Execution, p: string): { move: Move; origin: string } | null {
    for (let i = e.moves.length - 1; i >= 0; i--) {
      const m = e.moves[i];
      if (below(m.to, p)) return { move: m, origin: m.from + p.slice(m.to.length) };
    }
    return null;
  }

  /** Whether the subtree created `p` or a directory above it up to `top` (then it was nothing before). */
  private createdHere(e: Execution, p: string, top: string): boolean {
    for (let q = p; ; q = q.slice(0, q.lastIndexOf('/'))) {
      const st = e.paths.get(q);
      if (st && st.modified && st.before === '-') return true;
      if (q === top || q.lastIndexOf('/') <= 0) return false;
    }
  }

  private originState(e: Execution, origin: string, before: FileType): PathState {
    let os = e.paths.get(origin);
    if (!os) {
      os = newPathState(before);
      e.paths.set(origin, os);
    } else if (os.beforeUnknown) {
      os.before = before;
      os.beforeUnknown = false;
    }
    return os;
  }

  /** First touch of a path: its state, taking directory moves into account. */
  private stateFor(e: Execution, fx: PathEffect): PathState {
    let st = e.paths.get(fx.path);
    if (st) return st;
    st = newPathState(fx.before);
    e.paths.set(fx.path, st);
    if (e.moves.length === 0) return st;
    if (e.moves.some((m) => below(m.from, fx.path))) {
      // Looked at after its directory was renamed away: what it was is learnt from the moved tree.
      st.movedAway = true;
      st.beforeUnknown = true;
      return st;
    }
    const o = this.movedOrigin(e, fx.path);
    if (o === null) return st;
    const fromMove = exists(fx.before);
    if (fromMove) {
      // Came with the moved tree: new here, and what is observed of it was observed at its origin.
      st.before = '-';
      st.modified = true;
      st.viaMove = true;
    }
    // Absence below the new name needs no translation: the old directory is a dirlist input,
    // which already covers every name that was (not) in it.
    if (fx.input !== null && fx.input !== 'absent' && !this.createdHere(e, o.origin, o.move.from)) {
      const os = this.originState(e, o.origin, fx.before);
      if (fromMove) os.movedAway = true;
      if (!os.modified) mergeInput(os, fx.input);
    } else if (fromMove) {
      this.originState(e, o.origin, fx.before).movedAway = true;
    }
    return st;
  }

  private applyEffect(
    e: Execution,
    fx: PathEffect,
    identity: (p: string) => FinalState | null = (p) => this.identity(p),
    observer: number = e.id,
  ): void {
    const st = this.stateFor(e, fx);
    // fstat of the stdout/stderr an execution was given (cat checks input != output) looks at
    // where its output goes, which the record holds as the stream's target, not at an input.
    const ownStream = fx.viaFd === true && (e.fds.get(1)?.target === fx.path || e.fds.get(2)?.target === fx.path);
    // Anything seen of the file after that write-only open (`sort -o f f` opens f for writing,
    // then reads it through another fd) may have been its old bytes: emptying it later no
    // longer makes them irrelevant.
    if (st.rewrittenByOpen !== null && fx.input !== null && !fx.rewrites && !fx.empties) st.rewrittenByOpen = null;
    if (fx.input !== null && !ownStream && !st.modified && !st.movedAway) {
      if (fx.creates && st.input === null) st.createdByOpen = true;
      if (fx.rewrites && st.input === null) st.rewrittenByOpen = fx.rewrites;
      mergeInput(st, fx.input);
      if (fx.input === 'metadata') (st.metaBy ??= new Set()).add(observer);
      if (fx.input === 'content') (st.contentBy ??= new Set()).add(observer);
      if (fx.input === 'content' && st.seen === null) st.seen = identity(fx.path);
    }
    // Created by an open that kept old bytes (no O_TRUNC), then emptied: the same as O_TRUNC,
    // whose absence is no input either.
    if (fx.empties && st.createdByOpen && st.input === 'absent') {
      st.input = null;
      st.createdByOpen = false;
    }
    // Opened write-only over an existing file, then emptied: no old byte was read or kept.
    if (fx.empties && st.rewrittenByOpen !== null && st.input === 'content') {
      st.input = st.rewrittenByOpen === 'creat' ? null : 'metadata';
      st.rewrittenByOpen = null;
    }
    const c = fx.change;
    if (c === null) return;
    st.modified = true;
    switch (c.k) {
      case 'content':
        st.content = true;
        // The last wholesale replacement wins over earlier in-place writes: from then on the
        // file holds none of the bytes it had before the execution.
        if (st.how === null || c.how === 'created' || c.how === 'truncated') st.how = c.how;
        if (c.replaced) st.replaced = true;
        break;
      case 'remove':
        st.removed = true;
        break;
      case 'mkdir':
        st.mkdir = true;
        break;
      case 'symlink':
        st.symlink = true;
        break;
      case 'mknod':
        st.mknod = true;
        break;
      case 'mode':
        st.mode = true;
        break;
      case 'owner':
        st.owner = true;
        break;
      case 'times':
        st.times = true;
        break;
      default: {
        const never: never = c;
        throw new Error(`unknown change ${JSON.stringify(never)}`);
      }
    }
  }

  /** `observer`: who looked (default the innermost execution `e`; see PathState.metaBy). */
  /** `seen`: the tracer's look at a regular file before the call (FsEvent.identity). */
  private applyEffects(e: Execution, effects: readonly PathEffect[], observer: number = e.id, seen?: { path: string; state: FinalState }): void {
    const kept = effects.filter((fx) => pathPolicy(fx.path, this.ignoreDirs) === 'record');
    if (kept.length === 0) return;
    for (const fx of kept) if (fx.change !== null) this.noteWriter(e, fx.path);
    // one stat per event, whatever the depth of the execution tree
    const memo = new Map<string, FinalState | null>();
    if (seen) memo.set(seen.path, seen.state);
    const identity = (p: string): FinalState | null => {
      if (!memo.has(p)) memo.set(p, this.identity(p));
      return memo.get(p) ?? null;
    };
    for (const a of this.chain(e)) for (const fx of kept) this.applyEffect(a, fx, identity, observer);
  }

  /**
   * Two executions running side by side (neither inside the other) changing the same path:
   * the result depends on how they interleaved, so neither can be replayed alone. Their
   * common ancestor contains both and is not affected.
   */
  private noteWriter(e: Execution, p: string): void {
    this.changes.set(p, ++this.changeSeq);
    const w = this.writers.get(p);
    this.writers.set(p, e);
    if (w === undefined || w === e || w.end !== null) return;
    const related = (a: Execution, b: Execution): boolean => {
      for (let x: Execution | null = b; x !== null; x = x.parent) if (x === a) return true;
      return false;
    };
    if (related(w, e) || related(e, w)) return;
    // Every execution containing one writer but not the other is tainted, up to the common ancestor.
    for (let x: Execution | null = w; x !== null && !related(x, e); x = x.parent) {
      this.addReasonLocal(x, `changed ${p} concurrently with execution ${e.id}`);
    }
    for (let x: Execution | null = e; x !== null && !related(x, w); x = x.parent) {
      this.addReasonLocal(x, `changed ${p} concurrently with execution ${w.id}`);
    }
  }

  /**
   * The state of a path, looked at now. For a file read, the tracer's own look before the open
   * (FsEvent.identity) comes first: this one, taken when the event is folded, is a moment late.
   */
  private identity(p: string): FinalState | null {
    const memo = this.identities;
    if (memo !== null) {
      const known = memo.get(p);
      if (known !== undefined) return known;
    }
    let state: FinalState | null;
    try {
      state = this.stat(p);
    } catch {
      state = null;
    }
    memo?.set(p, state);
    return state;
  }

  /** Content inputs the subtree did not change itself but that changed while it ran. */
  private checkInputsUnchanged(e: Execution): void {
    for (const [p, st] of e.paths) {
      if (st.input !== 'content' || st.seen === null || st.modified || st.movedAway) continue;
      const now = this.identity(p);
      if (now === null || !sameFile(st.seen, now)) {
        this.addReason(e, { text: `input ${p} was modified while the execution ran`, propagate: false });
      }
    }
  }

  private onFs(ev: FsEvent): void {
    if (ev.op === 'execve-probe') {
      // The exec this thread asked about failed after all.
      const token = ev.token ?? this.pendingByTid.get(ev.pid);
      if (token !== undefined) {
        this.pending.delete(token);
        this.pendingByTid.delete(ev.pid);
      }
    }
    const e = this.executionOfTid(ev.pid);
    if (e === null) return; // pcache's own child before the first exec
    if (ev.op === 'termsize') return this.onTermSize(e, ev);
    if (ev.op === 'cpus') {
      // nproc, OpenMP. Each execution around it depends on the CPUs it started with (which a
      // lookup can check: they survive exec), whatever `taskset` inside it made of them.
      for (const a of this.chain(e)) a.cpus ??= a.req.cpus !== undefined ? String(a.req.cpus) : (ev.size ?? '');
      return;
    }
    const classified = fsEffects(ev);
    const { effects, move } = classified;
    const reasons = ev.fdLink === undefined ? classified.reasons : this.fdLinkReasons(e, ev, classified.reasons);
    // ps, pgrep, top: what is running now is no input a replay could check.
    if (ev.op === 'getdents' && ev.path === '/proc') reasons.push({ text: 'listed the running processes (/proc)', propagate: true });
    if (ev.op === 'open') {
      const policy = pathPolicy(ev.path, this.ignoreDirs);
      if (policy === 'random') reasons.push({ text: `read ${ev.path} (nondeterministic)`, propagate: true });
      // bash opens /dev/tty O_NONBLOCK at start-up and closes it unread, only to learn whether
      // it has a controlling terminal: that probe would make every bash script uncacheable.
      // A program that means to read the terminal (read < /dev/tty, password prompts) opens it
      // blocking. (Reads on fds other than 0 are not seen, hence the open decides.)
      const probeOnly = ev.path === '/dev/tty' && (ev.flags & O_NONBLOCK) !== 0;
      if (policy === 'terminal' && !probeOnly) reasons.push({ text: `opened terminal ${ev.path}`, propagate: true });
    }
    for (const r of reasons) this.addReason(e, r);
    if (this.readbackByPath.size > 0) this.readbackConflicts(e, ev, effects);
    if (ev.op === 'mkdir' && isMkdirParents(e.req)) {
      // `mkdir -p` ends with a directory whether or not one was there: absence is not an
      // input. (A non-directory in the way makes it fail; a replay then runs it instead.)
      for (const fx of effects) if (fx.path === ev.path && fx.input === 'absent') fx.input = null;
    }
    this.applyEffects(e, effects, ev.observer, ev.identity ? { path: ev.path, state: identityState(ev.identity) } : undefined);
    if (move && pathPolicy(move.from, this.ignoreDirs) === 'record' && pathPolicy(move.to, this.ignoreDirs) === 'record') {
      for (const a of this.chain(e)) this.recordMove(a, move);
    }
  }

  /**
   * A program asked a terminal its size (ls lays out its columns by it, a progress bar its
   * width): for each execution around it, an input on whichever of its own fds 0-2 holds that
   * terminal, so that a replay happens only into a terminal of the same size. A terminal on
   * none of them (opened by the subtree, or passed on fd 3) cannot be named at the next exec.
   */
  private onTermSize(e: Execution, ev: FsEvent): void {
    const size = ev.size ?? '';
    for (const a of this.chain(e)) {
      const holds = (n: number): boolean => {
        const f = a.fds.get(n);
        return f !== undefined && f.kind === 'tty' && f.target === ev.path;
      };
      // the descriptor it asked when that is one of them (all three are one terminal, usually)
      const fd = ev.fd !== undefined && ev.fd >= 0 && ev.fd <= 2 && holds(ev.fd) ? ev.fd : [0, 1, 2].find(holds);
      if (fd === undefined) {
        this.addReason(a, { text: `asked the size of terminal ${ev.path}, which is not its stdin, stdout or stderr`, propagate: true });
        return;
      }
      if (!a.terminals.has(fd)) a.terminals.set(fd, size);
    }
  }

  /**
   * A read-back execution's stdout is what the file region holds at its end: a change to the
   * file by anyone while it runs (another open for writing, a truncation, a rename over it),
   * its own subtree included, would end up in it or cut it.
   */
  private readbackConflicts(e: Execution, ev: FsEvent, effects: readonly PathEffect[]): void {
    for (const fx of effects) {
      if (fx.change === null) continue;
      const live = this.readbackByPath.get(fx.path);
      if (!live) continue;
      for (const r of live) {
        const who = [...this.chain(e)].includes(r) ? 'its own subtree' : `execution ${e.id}`;
        this.addReason(r, { text: `its stdout file ${fx.path} was changed another way while it ran (${ev.op} by ${who})`, propagate: true });
      }
    }
  }

  private recordMove(e: Execution, move: Move): void {
    for (const [p, st] of e.paths) {
      if (below(move.from, p)) st.movedAway = true;
      if (below(move.to, p)) {
        st.modified = true;
        st.viaMove = true;
      }
    }
    e.moves.push(move);
  }

  /**
   * At the end: every entry of a moved tree that nothing touched after the move is still an
   * output at its new name, a deletion at its old one, and its old self was an input.
   */
  private settleMoves(e: Execution): void {
    const kindOf = (t: FileType): InputKind => (t === 'f' ? 'content' : t === 'd' ? 'dirlist' : 'metadata');
    for (const m of e.moves) {
      const walk = (rel: string): void => {
        for (const name of this.list(m.to + rel)) {
          const r = `${rel}/${name}`;
          const p = m.to + r;
          let fin: FinalState;
          try {
            fin = this.stat(p);
          } catch {
            continue;
          }
          if (fin.type === '-') continue;
          const st = e.paths.get(p);
          // Made after the move by the subtree itself: an ordinary output, and so is all below it.
          if (st && !st.viaMove && st.modified && st.before === '-') continue;
          if (!st) {
            const fresh = newPathState('-');
            fresh.modified = true;
            fresh.viaMove = true;
            e.paths.set(p, fresh);
          } else {
            st.modified = true;
            st.viaMove = true;
          }
          const origin = m.from + r;
          const os = this.originState(e, origin, fin.type);
          os.movedAway = true;
          if (!os.modified && !this.createdHere(e, origin, m.from)) mergeInput(os, kindOf(fin.type));
          if (fin.type === 'd') walk(r);
        }
      };
      walk('');
    }
  }

  private onSpawn(ev: SpawnEvent): void {
    const parent = this.procOfTid(ev.parent);
    if (ev.thread) {
      this.tidToTgid.set(ev.pid, ev.tgid);
      (this.procs.get(ev.tgid) ?? parent)?.threads.add(ev.pid);
      return;
    }
    const proc: Proc = { tgid: ev.tgid, execution: parent?.execution ?? null, alive: true, threads: new Set([ev.pid]) };
    this.procs.set(ev.tgid, proc);
    if (ev.pid !== ev.tgid) this.tidToTgid.set(ev.pid, ev.tgid);
    for (const a of this.chain(proc.execution)) a.live.add(proc);
  }

  private onExec(ev: ExecEvent): void {
    const p = this.pending.get(ev.token);
    this.pending.delete(ev.token);
    if (p) this.pendingByTid.delete(p.req.pid);
    let proc = this.procs.get(ev.pid) ?? this.procOfTid(ev.formerTid);
    if (!proc) {
      proc = { tgid: ev.pid, execution: null, alive: true, threads: new Set([ev.pid]) };
      this.procs.set(ev.pid, proc);
    }
    // After an exec from a non-leader thread, that thread is the only one left and takes the tgid.
    for (const tid of proc.threads) if (tid !== ev.pid) this.tidToTgid.delete(tid);
    this.tidToTgid.delete(ev.formerTid);
    proc.threads = new Set([ev.pid]);

    const req: ExecRequest = p?.req ?? {
      token: ev.token,
      pid: ev.formerTid,
      tgid: ev.pid,
      path: '',
      execSig: '',
      links: [],
      argv: [],
      env: [],
      cwd: '',
      umask: 0,
      fds: [],
      time: Date.now(),
    };
    const startFds = ev.fds ?? req.fds;
    const fds = new Map<number, FdSnapshot>(startFds.map((f) => [f.fd, f]));
    const e: Execution = {
      id: this.nextId++,
      parent: proc.execution,
      rootProc: proc,
      rootExited: false,
      req,
      end: null,
      exitCode: null,
      signal: null,
      live: new Set([proc]),
      paths: new Map(),
      reasons: [],
      reasonSet: new Set(),
      fds,
      inherited: new Set(startFds.map((f) => f.target)),
      captured: noCapture(),
      capturedBytes: { stdout: 0, stderr: 0 },
      // The tracer reads back a regular file wherever it lives (/dev/shm too), whatever kind
      // its path classifies as.
      readback: req.readback === true && fds.has(1),
      boundUnix: new Set(),
      moves: [],
      outputs: [],
      terminals: new Map(),
    };
    this.all.push(e);
    if (e.readback) {
      const file = fds.get(1)!.target;
      this.readbackByToken.set(req.token, e);
      let live = this.readbackByPath.get(file);
      if (!live) this.readbackByPath.set(file, (live = new Set()));
      live.add(e);
    }
    proc.execution = e;
    if (!p) this.addReason(e, { text: `exec without a matching request (token ${ev.token})`, propagate: true });
    const implied: PathEffect[] = [
      ...req.links.map((l) => effect(l, 'l', 'metadata')),
      ...(p?.implied ?? []).map((i) => effect(i.path, i.kind === 'absent' ? '-' : i.kind === 'metadata' ? 'l' : 'f', i.kind)),
    ];
    this.applyEffects(e, implied);
    this.applyEffects(e, this.inheritedFileEffects(startFds));
    for (const text of outsideReadables(startFds)) this.addReason(e, { text, propagate: false });
  }

  /**
   * Regular files the execution holds open from the start beyond stdin/stdout/stderr
   * (`cmd 3< in 4> out`): it can read or write them without any open the tracer would see,
   * so a readable one is a content input and a writable one an output candidate. Writing
   * through the shared offset keeps whatever it does not overwrite, so the old bytes are an
   * input too when appending or past the start. At offset 0 of a write-only fd they are taken
   * as replaced: that is what a shell's `N>file` gives (truncated); the file's size cannot be
   * read here without racing the tracee's first write.
   */
  private inheritedFileEffects(fds: readonly FdSnapshot[]): PathEffect[] {
    const effects: PathEffect[] = [];
    for (const f of fds) {
      if (f.fd <= 2 || f.kind !== 'file' || (f.flags & O_PATH) !== 0) continue;
      const acc = f.flags & O_ACCMODE;
      const reads = acc === O_RDONLY || acc === O_RDWR;
      const writes = acc !== O_RDONLY;
      const append = (f.flags & O_APPEND) !== 0;
      if (!writes) {
        effects.push(effect(f.target, 'f', 'content'));
        continue;
      }
      const oldBytesMatter = reads || append || f.pos > 0;
      effects.push(effect(f.target, 'f', oldBytesMatter ? 'content' : null, { k: 'content', how: append ? 'appended' : 'written' }));
    }
    return effects;
  }

  private onExit(ev: ExitEvent): void {
    if (!ev.processExit) {
      if (ev.pid !== ev.tgid) {
        this.tidToTgid.delete(ev.pid);
        this.procs.get(ev.tgid)?.threads.delete(ev.pid);
      }
      return;
    }
    const proc = this.procs.get(ev.tgid) ?? this.procOfTid(ev.pid);
    if (!proc || !proc.alive) return;
    proc.alive = false;
    for (const tid of proc.threads) if (tid !== proc.tgid) this.tidToTgid.delete(tid);
    const e = proc.execution;
    if (e === null) return;
    if (ev.signal !== null) {
      const who = proc === e.rootProc ? 'killed' : `process ${proc.tgid} killed`;
      // SIGPIPE is how pipelines stop a writer whose reader is done: it says nothing
      // about the enclosing executions, whose pipe it was.
      this.addReason(e, { text: `${who} by signal ${ev.signal}`, propagate: ev.signal !== SIGPIPE });
    }
    for (const a of this.chain(e)) {
      a.live.delete(proc);
      if (a.rootProc === proc && !a.rootExited) {
        a.rootExited = true;
        a.exitCode = ev.code;
        a.signal = ev.signal;
        const left = a.live.values().next();
        if (!left.done) this.addReason(a, { text: `left a process running (pid ${left.value.tgid})`, propagate: false });
      }
      if (a.live.size === 0) this.endExecution(a, ev.time);
    }
  }

  private streamOf(e: Execution, fd: number, target: string): StreamName | null {
    const out = e.fds.get(1)?.target;
    const err = e.fds.get(2)?.target;
    // 2>&1: one stream, kept as one so the interleaving survives a replay.
    if (out === err && out === target) return 'stdout';
    if (fd === 2 && err === target) return 'stderr';
    if (out === target) return 'stdout';
    if (err === target) return 'stderr';
    return null;
  }

  /**
   * A path through a descriptor's magic link (/dev/stdout, /dev/fd/3, /proc/self/fd/N) meets
   * whatever that descriptor holds. When the descriptor came from outside an execution, its
   * command key does not say what that is: `tool -o /dev/stdout > a` and `> b` would share an
   * entry, and a replay would restore a. Each execution that started with something open at
   * that path is therefore uncacheable, unless its key pins the file (stdin from a file);
   * one that opened the file itself has that open in its record. A pipe reached this way is
   * judged like stdin: outside only for the executions the pipe came into.
   */
  private fdLinkReasons(e: Execution, ev: FsEvent, reasons: Reason[]): Reason[] {
    const fd = ev.fdLink!;
    const via = ev.links.find((l) => l.startsWith('/dev/')) ?? (fd >= 0 ? `/proc/self/fd/${fd}` : 'a /proc/PID/fd link');
    if (fd < 0) return [...reasons, { text: `reached ${ev.path} through another process's descriptor (${via})`, propagate: true }];
    if (ev.path === '/dev/null') return reasons;
    for (const a of this.chain(e)) {
      if (!a.inherited.has(ev.path)) continue;
      const stdin = a.fds.get(0);
      if (stdin?.kind === 'file' && stdin.target === ev.path) continue;
      this.addReasonLocal(a, `reached ${ev.path} through ${via}: a descriptor from outside the execution, which its key does not name`);
    }
    return reasons;
  }

  private onIo(ev: IoEvent): void {
    // A read-back's bytes belong to the execution it names (an exec chain runs several in
    // one process, and a relay's process may be gone while a child of its still writes);
    // from there up they are like any write.
    const owner = ev.dir === 'w' && ev.readback ? this.readbackByToken.get(ev.token ?? -1) : undefined;
    const e = owner ?? this.executionOfTid(ev.pid);
    if (e === null) return;
    if (ev.dir === 'w') {
      if (ev.readback && owner === undefined) {
        // Bytes that belong to no execution known to read back: whoever's stdout they were is
        // missing them.
        this.addReason(e, { text: `stdout read back from ${ev.target} for an execution pcache did not record as reading back`, propagate: true });
        return;
      }
      for (const a of this.chain(owner ?? e)) {
        const s = this.streamOf(a, ev.fd, ev.target);
        // What reached a read-back execution's stdout file from inside it is in its read-back.
        if (s === 'stdout' && a.readback && a !== owner) break;
        if (s !== null) {
          if (ev.uncapturable && ev.readback && ev.kind === 'pipe') {
            this.addReason(a, { text: `its stdout pipe ${ev.target} could not be relayed (it wrote there unseen)`, propagate: false });
          } else if (ev.uncapturable && ev.readback) {
            this.addReason(a, {
              text: `its stdout file ${ev.target} changed beyond its own writes while it ran (another writer, a seek back or a truncation)`,
              propagate: false,
            });
          } else if (ev.uncapturable) {
            this.addReason(a, { text: `wrote to ${s} in a way pcache cannot capture (${ev.syscall})`, propagate: false });
          }
          // A read-back's data may be only the first bytes of its count (readbackLimit).
          const total = ev.readback === true && ev.data ? ev.count : (ev.data?.length ?? ev.count);
          a.capturedBytes[s] += total;
          if (ev.data && ev.kind !== 'null') this.capture(a, s, ev.data, total, a === owner ? this.wholeFile(ev) : undefined);
        } else if (a.inherited.has(ev.target) && ev.kind !== 'null') {
          // Bytes into something inherited from outside that is not this execution's stdout/stderr
          // (e.g. `exec 1>&3`): they leave the execution without being recorded.
          this.addReason(a, { text: `wrote to ${ev.target}, inherited but not its stdout/stderr`, propagate: false });
        }
      }
      return;
    }
    // Reads on fd 0. Only what crosses an execution's boundary matters to it: a pipe created
    // inside (`a | b`) is internal to the execution that contains both ends.
    for (const a of this.chain(e)) {
      if (!a.inherited.has(ev.target)) continue;
      switch (ev.kind) {
        case 'pipe':
        case 'tty':
        case 'socket':
        case 'other':
          this.addReason(a, { text: `read stdin from a ${ev.kind} outside the execution (${ev.target})`, propagate: false });
          break;
        case 'file':
          if (pathPolicy(ev.target, this.ignoreDirs) === 'record') this.applyEffect(a, effect(ev.target, 'f', 'content'));
          break;
        case 'dev':
          if (pathPolicy(ev.target, this.ignoreDirs) === 'random') {
            this.addReason(a, { text: `read ${ev.target} (nondeterministic)`, propagate: false });
          }
          break;
        case 'dir':
        case 'null':
          break;
        default: {
          const never: never = ev.kind;
          this.addReason(a, { text: `read stdin from ${String(never)}`, propagate: false });
        }
      }
    }
    if (ev.uncapturable) this.addReason(e, { text: `read stdin in a way pcache cannot follow (${ev.syscall})`, propagate: true });
  }

  // Network policy:
  // - socket() alone decides nothing; AF_NETLINK (glibc getifaddrs) and AF_UNSPEC are ignored.
  // - AF_UNIX: connecting/sending to an address the subtree bound itself is internal; unnamed
  //   sockets (socketpair) carry no address; a connect that failed with ENOENT observed that the
  //   socket path is absent (nscd probing); anything else talks to a local service: uncacheable.
  // - AF_INET/AF_INET6 connect, sendto, bind, listen, accept: uncacheable.
  // - Any other family used with an address: uncacheable.
  private onNet(ev: NetEvent): void {
    const e = this.executionOfTid(ev.pid);
    if (e === null) return;
    if (ev.op === 'socket' || ev.family === AF_NETLINK || ev.family === AF_UNSPEC) return;
    const verb: Record<NetEvent['op'], string> = {
      socket: 'opened a socket',
      connect: 'connected to',
      bind: 'bound',
      sendto: 'sent to',
      listen: 'listened on',
      accept: 'accepted a connection on',
    };
    if (ev.family === AF_UNIX) {
      if (ev.address === '') return;
      if (ev.op === 'bind') {
        for (const a of this.chain(e)) a.boundUnix.add(ev.address);
        return;
      }
      if (e.boundUnix.has(ev.address)) return;
      if (ev.op === 'connect' && ev.address.startsWith('/') && this.unixSocketAbsent(ev)) {
        this.applyEffects(e, [effect(ev.address, '-', 'absent')]);
        return;
      }
      this.addReason(e, { text: `${verb[ev.op]} unix socket ${ev.address}`, propagate: true });
      return;
    }
    if (ev.family === AF_INET || ev.family === AF_INET6) {
      this.addReason(e, { text: `${verb[ev.op]} ${ev.address || 'an inet socket'}`, propagate: true });
      return;
    }
    this.addReason(e, { text: `${verb[ev.op]} ${ev.address || '?'} (socket family ${ev.family})`, propagate: true });
  }

  /**
   * Whether a unix connect failed for lack of the socket file (glibc probing nscd). The tracer
   * may report the result; when it does not, the path is looked at now, while the tracee is
   * barely past the call: absent now means the connect found nothing to talk to.
   */
  private unixSocketAbsent(ev: NetEvent): boolean {
    if (ev.result !== undefined && ev.result !== null) return ev.result === -ENOENT;
    try {
      return this.stat(ev.address).type === '-';
    } catch {
      return false;
    }
  }

  private onUnknown(ev: UnknownEvent): void {
    const e = this.executionOfTid(ev.pid);
    if (e === null) return;
    this.addReason(e, { text: `unhandled syscall ${ev.syscall}${ev.detail ? `: ${ev.detail}` : ''}`, propagate: true });
  }

  // -------------------------------------------------------------------------
  // End of an execution: decide outputs from the final state of each candidate.

  private endExecution(e: Execution, time: number): void {
    if (e.end !== null) return;
    e.end = time;
    if (e.readback) {
      this.readbackByToken.delete(e.req.token);
      const file = e.fds.get(1)!.target;
      const live = this.readbackByPath.get(file);
      live?.delete(e);
      if (live?.size === 0) this.readbackByPath.delete(file);
    }
    const outputs: OutputRecord[] = [];
    this.settleMoves(e);
    this.checkInputsUnchanged(e);
    for (const [p, st] of e.paths) {
      if (!st.modified && !st.movedAway) continue;
      let fin: FinalState;
      try {
        fin = this.stat(p);
      } catch (err) {
        this.addReason(e, { text: `cannot read the final state of ${p}: ${(err as Error).message}`, propagate: true });
        continue;
      }
      const out = this.decideOutput(e, p, st, fin);
      if (out !== null) outputs.push(out);
    }
    e.outputs = outputs.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    this.onExecutionEnd?.(this.toRecord(e));
  }

  private decideOutput(e: Execution, p: string, st: PathState, fin: FinalState): OutputRecord | null {
    const b = st.before;
    switch (fin.type) {
      case '-':
        return exists(b) ? { path: p, kind: 'deleted' } : null;
      case 'd':
        if (b !== 'd') return { path: p, kind: 'mkdir', mode: fin.mode };
        // a directory renamed over an empty one keeps its own mode
        if (st.mode || st.content) return { path: p, kind: 'mode', mode: fin.mode };
        if (st.owner) this.addReason(e, { text: `changed the owner of ${p}`, propagate: true });
        return null;
      case 'l':
        if (b !== 'l' || st.symlink || st.content) return { path: p, kind: 'symlink', linkTarget: fin.linkTarget ?? '' };
        return null;
      case 'f': {
        // Written through opens only (no rename or link onto it, no chmod, never removed): an
        // existing file at that name keeps its mode, in a plain run and in a replay alike.
        const keeps = !st.replaced && !st.mode && !st.removed && !st.symlink && !st.mkdir && !st.viaMove;
        const keepsMode = keeps ? { keepsMode: true } : {};
        if (b !== 'f') return { path: p, kind: 'content', how: 'created', mode: fin.mode, ...keepsMode };
        // touch on an existing file counts as rewriting it: its mtime is what changed.
        if (st.content || st.times) return { path: p, kind: 'content', how: st.how ?? 'written', mode: fin.mode, ...keepsMode };
        if (st.mode) return { path: p, kind: 'mode', mode: fin.mode };
        if (st.owner) this.addReason(e, { text: `changed the owner of ${p}`, propagate: true });
        return null;
      }
      case 'p':
      case 'c':
      case 'b':
      case 's':
        if (b !== fin.type || st.mknod) this.addReason(e, { text: `created a special file ${p}`, propagate: true });
        else if (st.mode) return { path: p, kind: 'mode', mode: fin.mode };
        return null;
      default: {
        const never: never = fin.type;
        this.addReason(e, { text: `unknown final type ${String(never)} of ${p}`, propagate: true });
        return null;
      }
    }
  }

  private stream(e: Execution, fd: number, name?: StreamName): StdStream {
    const f = e.fds.get(fd);
    const s: StdStream = f ? { kind: f.kind, target: f.target } : noStream();
    if (f && fd === 0) s.pos = f.pos;
    if (name) s.bytes = e.capturedBytes[name];
    return s;
  }

  private toRecord(e: Execution): ExecutionRecord {
    const inputs: InputRecord[] = [];
    for (const [p, st] of e.paths) {
      if (st.input === null) continue;
      const statted = st.input === 'content' && [...(st.metaBy ?? [])].some((id) => !st.contentBy?.has(id));
      inputs.push(statted ? { path: p, kind: st.input, before: st.before, statted: true } : { path: p, kind: st.input, before: st.before });
    }
    for (const [fd, size] of e.terminals) inputs.push({ path: `/dev/fd/${fd}`, kind: 'terminal', size });
    if (e.cpus !== undefined) inputs.push({ path: '/proc/self/status', kind: 'cpus', size: e.cpus });
    inputs.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return {
      id: e.id,
      parent: e.parent?.id ?? null,
      pid: e.rootProc.tgid,
      exe: e.req.path,
      argv: e.req.argv,
      env: e.req.env,
      cwd: e.req.cwd,
      umask: e.req.umask,
      start: e.req.time,
      end: e.end,
      exitCode: e.exitCode,
      signal: e.signal,
      inputs,
      outputs: e.outputs,
      stdin: this.stream(e, 0),
      stdout: this.stream(e, 1, 'stdout'),
      stderr: this.stream(e, 2, 'stderr'),
      uncacheable: [...e.reasons],
    };
  }
}

function writeAll(fd: number, data: Buffer): void {
  for (let at = 0; at < data.length; ) at += fs.writeSync(fd, data, at, data.length - at);
}
