// Replaying a hit: put the recorded outputs in place, write the recorded
// stdout/stderr into the streams the skipped process was given, and tell the
// folder what the skipped execution did, so the running parent's record stays
// complete (DESIGN.md: "a skipped child's cached inputs and outputs are merged
// into the running parent's record").

import * as fs from 'fs';
import * as path from 'path';
import type { Entry, FileType as StoreFileType, OutputRecord } from '../../cache-store/entry';
import type { Store } from '../../cache-store/store';
import { nowNs } from '../../cache-store/blobs';
import { lstatOrUndefined, stampOf, type FileStamp } from '../../cache-store/hash-cache';
import type { ExecRequest, FileType, FsEvent, IoEvent, NativeEvent } from '../trace/native';
import { fileTypeOf } from '../trace/fold';
import { mergedStdio } from './key';
import { mkdirs } from '../../cache-store/mkdirs';

const O_WRONLY = 1;

/**
 * Stored with a content output's mode (above the permission and file-type bits): the file
 * was written through opens only, so a file already at that name keeps its own mode, as it
 * would under a plain run's O_TRUNC.
 */
export const KEEPS_MODE = 0o10000000;
/**
 * Also stored with a content output's mode: the execution replaced the file wholesale
 * (created, truncated or renamed onto it), so none of the old bytes are in the result.
 * Absent for appends and writes in place, and in entries older than the flag.
 */
export const REPLACED = 0o20000000;
const O_CREAT = fs.constants.O_CREAT;
const O_TRUNC = fs.constants.O_TRUNC;

export function lstatType(p: string): FileType {
  try {
    return fileTypeOf(fs.lstatSync(p));
  } catch {
    return '-';
  }
}

function storeTypeToNative(t: StoreFileType | null | undefined): FileType {
  switch (t) {
    case 'file':
      return 'f';
    case 'dir':
      return 'd';
    case 'symlink':
      return 'l';
    case 'fifo':
      return 'p';
    case 'socket':
      return 's';
    case 'char':
      return 'c';
    case 'block':
      return 'b';
    default:
      return 'f';
  }
}

/** Order that makes every output applicable: parents before children, removals deepest first. */
function applyOrder(outputs: readonly OutputRecord[]): OutputRecord[] {
  const rank = (o: OutputRecord): number => (o.kind === 'mkdir' ? 0 : o.kind === 'deleted' ? 3 : o.kind === 'mode' ? 2 : 1);
  return [...outputs].sort((a, b) => {
    const r = rank(a) - rank(b);
    if (r !== 0) return r;
    const depth = a.path.split('/').length - b.path.split('/').length;
    return a.kind === 'deleted' ? -depth : depth;
  });
}

/** Who pcache (and so the traced process) runs as, for mayWrite. */
export interface User {
  uid: bigint;
  gids: bigint[];
}

export function currentUser(): User {
  const gids = [process.getegid?.() ?? -1, ...(process.getgroups?.() ?? [])].map((g) => BigInt(g));
  return { uid: BigInt(process.geteuid?.() ?? 0), gids };
}

/**
 * Whether this process may open the file for writing, as the traced one (same user) would:
 * from the mode bits, asking the kernel (ACLs) only when they say no.
 */
export function mayWrite(p: string, st: Pick<fs.BigIntStats, 'mode' | 'uid' | 'gid'>, who: User = currentUser()): boolean {
  if (who.uid === 0n) return true;
  const bit = st.uid === who.uid ? 0o200 : who.gids.includes(st.gid) ? 0o020 : 0o002;
  if ((Number(st.mode) & bit) !== 0) return true;
  try {
    fs.accessSync(p, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export interface AppliedOutput {
  output: OutputRecord;
  /** type of the path before it was applied */
  before: FileType;
  /**
   * Content outputs: the file's stamp before its bytes were found equal to the blob (or
   * just after pcache wrote it), and when; what RunHashes may remember.
   */
  known?: { stamp: FileStamp; hashedAtNs: bigint };
}

/**
 * Makes the file system hold the entry's outputs. Returns null when a blob is
 * missing or corrupt (the store has reported and dropped it): the caller runs
 * the execution instead, which rewrites whatever was already put in place.
 */
export async function applyOutputs(store: Store, entry: Entry, newestInputMs: () => number = () => 0): Promise<AppliedOutput[] | null> {
  // A directory output where something else now stands (a file where `mkdir -p` would
  // fail), or a file written through opens where something other than a file now stands:
  // only a real run can say what happens. Checked before anything is touched.
  const looked = new Map<string, fs.BigIntStats | undefined>();
  const who = currentUser();
  for (const o of entry.outputs) {
    if (o.kind === 'mkdir') {
      const t = lstatType(o.path);
      if (t !== '-' && t !== 'd') return null;
    } else if (o.kind === 'content' && ((o.mode ?? 0) & KEEPS_MODE) !== 0) {
      // Written through opens only: a real run's open follows a symlink now standing at the
      // name (and writes the file it points to), fails on a directory, blocks on a FIFO, and
      // fails on a file it may not write (a rename would not care).
      const st = lstatOrUndefined(o.path);
      looked.set(o.path, st);
      if (st === undefined) continue;
      if (!st.isFile() || !mayWrite(o.path, st, who)) return null;
    }
  }
  const applied: AppliedOutput[] = [];
  let newestInput: number | undefined;
  // Until a restore removes something, what the check above saw still stands (directories
  // come first and only ever get created; one content output cannot change another's path).
  let removed = false;
  for (const o of applyOrder(entry.outputs)) {
    const st = !removed && looked.has(o.path) ? looked.get(o.path) : lstatOrUndefined(o.path);
    const before: FileType = st ? fileTypeOf(st) : '-';
    switch (o.kind) {
      case 'content': {
        if (!o.hash) return null;
        if (before === 'd' || before === 'l') removed = true;
        if (before === 'd') fs.rmSync(o.path, { recursive: true, force: true });
        else if (before === 'l') fs.rmSync(o.path, { force: true });
        // Whatever stood at the path had its directory; only an absent one may lack it.
        if (before === '-') mkdirs(path.dirname(o.path));
        const keeps = ((o.mode ?? 0) & KEEPS_MODE) !== 0;
        // A file with other names (hard links): a real run's opens write the inode they all
        // share, where a restore would put a new file at this name only.
        if (keeps && before === 'f' && st!.nlink > 1n && !store.alreadyHolds(o.path, o.hash, st)) return null;
        let mode = (o.mode ?? 0o644) & 0o7777;
        if (keeps && before === 'f') mode = Number(st!.mode) & 0o7777;
        // A regular file's lstat is its stat: the store need not take it again.
        const current = before === 'f' ? st : before === '-' ? null : undefined;
        const { outcome, verified } = await store.restoreBlobVerified(o.hash, o.path, mode, current);
        if (outcome === 'missing' || outcome === 'corrupt') return null;
        let known: AppliedOutput['known'];
        if (verified && Number(verified.stat.mtimeNs) / 1e6 < (newestInput ??= newestInputMs())) {
          // Left as it was, it would look older than an input touched since (same bytes): a real
          // run writes it now, and make-like tools compare exactly that. It gets the time now.
          fs.utimesSync(o.path, verified.stat.atime, new Date());
          const st = fs.lstatSync(o.path, { bigint: true, throwIfNoEntry: false });
          if (st?.isFile()) known = { stamp: stampOf(st), hashedAtNs: nowNs() };
        } else if (verified) {
          known = { stamp: stampOf(verified.stat), hashedAtNs: verified.hashedAtNs };
        } else {
          // Renamed into place by pcache: a new inode nobody else has open.
          const st = fs.lstatSync(o.path, { bigint: true, throwIfNoEntry: false });
          if (st?.isFile()) known = { stamp: stampOf(st), hashedAtNs: nowNs() };
        }
        applied.push({ output: o, before, known });
        continue;
      }
      case 'deleted':
        if (before !== '-') fs.rmSync(o.path, { recursive: true, force: true });
        break;
      case 'mkdir':
        if (before !== 'd') {
          if (before !== '-') fs.rmSync(o.path, { force: true });
          mkdirs(o.path);
        }
        if (o.mode != null) fs.chmodSync(o.path, o.mode & 0o7777);
        break;
      case 'symlink': {
        const target = o.linkTarget ?? '';
        let same = false;
        if (before === 'l') {
          try {
            same = fs.readlinkSync(o.path) === target;
          } catch {
            same = false;
          }
        }
        if (!same) {
          if (before !== '-') fs.rmSync(o.path, { recursive: true, force: true });
          mkdirs(path.dirname(o.path));
          fs.symlinkSync(target, o.path);
        }
        break;
      }
      case 'mode':
        if (o.mode != null && before !== '-') fs.chmodSync(o.path, o.mode & 0o7777);
        break;
    }
    applied.push({ output: o, before });
  }
  return applied;
}

/**
 * Writes all of `bytes` to fd, waiting for pipes and terminals as a writer would. False when
 * the reader went away (EPIPE) before all of them were taken.
 */
function writeAll(fd: number, bytes: Buffer): Promise<boolean> {
  return new Promise((resolve, reject) => {
    let off = 0;
    const step = (): void => {
      if (off >= bytes.length) return resolve(true);
      fs.write(fd, bytes, off, bytes.length - off, null, (err, n) => {
        if (err) {
          if ((err as NodeJS.ErrnoException).code === 'EPIPE') return resolve(false);
          if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return setTimeout(step, 1);
          return reject(err);
        }
        off += n;
        step();
      });
    };
    step();
  });
}

export interface StdioBytes {
  stdout: Buffer;
  stderr: Buffer;
}

/**
 * Writes recorded stdout/stderr into fd 1/2 of the waiting process, through
 * duplicates of its own descriptors: same open file description, so a file's
 * offset advances exactly as if the process had written. Runs on the libuv pool:
 * a full pipe whose reader is itself a tracee never blocks the tracer.
 *
 * 'reader gone': the first stream written met a pipe whose reader had left (`cmd | head`).
 * The real program would have died of SIGPIPE there, or seen EPIPE and done whatever it
 * does then; no replay can say which, so the caller runs it instead. The reader took what
 * it read, and nothing else has been written. A reader gone from the second stream, after
 * the first was written, is taken as the end of that stream (running the program then
 * would write the first one twice).
 */
export async function writeStdio(
  dupFd: (pid: number, fd: number) => number,
  req: ExecRequest,
  bytes: StdioBytes,
): Promise<'written' | 'reader gone'> {
  const pieces: Array<[number, Buffer]> = [
    [1, bytes.stdout],
    [2, bytes.stderr],
  ];
  // Every descriptor is reached before any byte is written: failing half-way would leave
  // stdout written once here and again by the real run the caller falls back to.
  const dups: Array<[number, Buffer]> = [];
  try {
    for (const [fd, data] of pieces) {
      if (data.length === 0) continue;
      const dup = dupFd(req.pid, fd);
      if (dup < 0) throw new Error(`cannot reach fd ${fd} of process ${req.pid} (errno ${-dup})`);
      dups.push([dup, data]);
    }
    for (let i = 0; i < dups.length; i++) {
      const [dup, data] = dups[i];
      if (!(await writeAll(dup, data)) && i === 0) return 'reader gone';
    }
    return 'written';
  } finally {
    for (const [dup] of dups) fs.closeSync(dup);
  }
}

/** Observer ids for replayed inputs: negative, so never an execution's id. */
let nextObserver = -1;

function fsEvent(pid: number, op: FsEvent['op'], p: string, type: FileType, extra: Partial<FsEvent> = {}): FsEvent {
  return { k: 'fs', pid, op, path: p, flags: 0, mode: 0, follow: false, type, links: [], result: null, ...extra };
}

/**
 * The events a real run of the skipped execution would have shown its parent:
 * its inputs observed, then its outputs made, then its stdout/stderr bytes. They
 * are attributed to the waiting process, which (never having exec'd) belongs to
 * the parent's execution.
 */
export function eventsForHit(req: ExecRequest, entry: Entry, applied: readonly AppliedOutput[], bytes: StdioBytes): NativeEvent[] {
  const pid = req.pid;
  const events: NativeEvent[] = [];
  // An entry holds a metadata input beside a content input of the same path only when the
  // skipped execution depended on both (its own reader was not the one that looked): the
  // two observers keep that apart in the enclosing executions' records.
  const reader = nextObserver--;
  const looker = nextObserver--;
  for (const i of entry.inputs) {
    switch (i.kind) {
      case 'content':
        events.push(fsEvent(pid, 'open', i.path, 'f', { follow: true, observer: reader }));
        break;
      case 'metadata':
        events.push(fsEvent(pid, 'stat', i.path, storeTypeToNative(i.type), { observer: looker }));
        break;
      case 'absent':
        events.push(fsEvent(pid, 'stat', i.path, '-'));
        break;
      case 'dirlist':
        events.push(fsEvent(pid, 'getdents', i.path, 'd'));
        break;
      case 'terminal': {
        // The terminal it was told the size of is the one on that fd now (the lookup checked it).
        const fd = Number(i.path.slice('/dev/fd/'.length));
        const f = req.fds.find((x) => x.fd === fd);
        if (f) events.push(fsEvent(pid, 'termsize', f.target, 'c', { fd, size: i.hash ?? '' }));
        break;
      }
      case 'cpus':
        events.push(fsEvent(pid, 'cpus', i.path, 'c', { size: i.hash ?? '' }));
        break;
    }
  }
  for (const { output: o, before } of applied) {
    switch (o.kind) {
      case 'content':
        events.push(fsEvent(pid, 'open', o.path, before, { flags: O_WRONLY | O_CREAT | O_TRUNC, follow: true }));
        break;
      case 'deleted':
        events.push(fsEvent(pid, before === 'd' ? 'rmdir' : 'unlink', o.path, before));
        break;
      case 'mkdir':
        events.push(fsEvent(pid, 'mkdir', o.path, before));
        break;
      case 'symlink':
        events.push(fsEvent(pid, 'symlink', o.path, before, { path2: o.path, type2: before, linkTarget: o.linkTarget ?? '' }));
        break;
      case 'mode':
        events.push(fsEvent(pid, 'chmod', o.path, before, { mode: o.mode ?? 0 }));
        break;
    }
  }
  const merged = mergedStdio(req.fds);
  for (const [fd, data] of [
    [1, bytes.stdout],
    [2, bytes.stderr],
  ] as Array<[number, Buffer]>) {
    if (data.length === 0) continue;
    const f = req.fds.find((x) => x.fd === (merged ? 1 : fd));
    if (!f) continue;
    const io: IoEvent = { k: 'io', pid, fd, dir: 'w', target: f.target, kind: f.kind, data, count: data.length, syscall: 'replay' };
    events.push(io);
  }
  return events;
}
