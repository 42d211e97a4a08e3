// Recording inputs and checking them again. Both directions live here so that a digest
// (of a file, of a directory listing) is computed the same way when an entry is recorded
// and when it is checked.
//
// Checking goes cheapest first: one stat per input; the recorded stat, if it is identical
// and was settled when hashed, proves the input unchanged. Otherwise the hash cache, and
// only then the file itself is read. Stats and digests are memoised for the lifetime of
// one InputChecker (one lookup), since candidates of one command share most inputs.

import * as fs from 'fs';
import { nowNs } from './blobs';
import { digestBytes } from './digest';
import { FileType, InputKind, InputMismatch, InputRecord } from './entry';
import { StoreError, errnoCode, shortMessage } from './errors';
import { FileStamp, HashCache, isSettled, lstatOrUndefined, sameStamp, stampOf, statOrUndefined } from './hash-cache';
import { ManifestReader } from './manifest';

/** Digest format of a directory listing; bump when the encoding below changes. */
export const DIRLIST_FORMAT = 'pcache-dirlist-v1';

/** Anything with the stat type predicates (Stats, BigIntStats, Dirent). */
interface TypedNode {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
  isCharacterDevice(): boolean;
}

export function fileTypeOf(st: TypedNode): FileType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'char';
  return 'block';
}

const TYPE_LETTER: Record<FileType, string> = { file: 'f', dir: 'd', symlink: 'l', fifo: 'p', socket: 's', char: 'c', block: 'b' };

/**
 * Digest of a directory's entries: names as raw bytes (any encoding), sorted bytewise,
 * each with a type letter. undefined if `dir` is not a readable directory.
 */
export function digestDirListing(dir: string): string | undefined {
  let entries: fs.Dirent<Buffer>[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true, encoding: 'buffer' });
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new StoreError('IO_ERROR', `cannot list ${dir}: ${shortMessage(e)}`, { cause: e });
  }
  entries.sort((a, b) => Buffer.compare(a.name, b.name));
  const parts: Buffer[] = [Buffer.from(`${DIRLIST_FORMAT}\0`)];
  for (const entry of entries) parts.push(Buffer.from(TYPE_LETTER[fileTypeOf(entry)]), entry.name, Buffer.from([0]));
  return digestBytes(Buffer.concat(parts));
}

function stampFields(st: fs.BigIntStats): Pick<InputRecord, 'type' | 'dev' | 'ino' | 'size' | 'mtimeNs' | 'ctimeNs' | 'mode'> {
  return {
    type: fileTypeOf(st),
    dev: st.dev,
    ino: st.ino,
    size: st.size,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    mode: Number(st.mode & 0o7777n),
  };
}

function recordedStamp(input: InputRecord): FileStamp | undefined {
  const { dev, ino, size, mtimeNs, ctimeNs } = input;
  if (dev == null || ino == null || size == null || mtimeNs == null || ctimeNs == null) return undefined;
  return { dev, ino, size, mtimeNs, ctimeNs };
}

/** Same 64-bit value regardless of whether one side went through SQLite's signed integers. */
function sameStampLoose(recorded: FileStamp, current: FileStamp): boolean {
  return sameStamp(
    { ...recorded, dev: BigInt.asUintN(64, recorded.dev), ino: BigInt.asUintN(64, recorded.ino) },
    { ...current, dev: BigInt.asUintN(64, current.dev), ino: BigInt.asUintN(64, current.ino) },
  );
}

/** The record of a content input whose digest is already known (stat taken before it was read). */
export function contentRecord(path: string, st: fs.BigIntStats, hash: string, verifiedAtNs: bigint): InputRecord {
  return { path, kind: 'content', ...stampFields(st), hash, verifiedAtNs };
}

/**
 * Takes the record of one input as the file system shows it now. Returns undefined when
 * the path is not what `kind` needs (a content input that is not a regular file, an
 * absent input that exists, ...): the caller must then treat the execution as uncacheable.
 */
export function snapshotInput(hashCache: HashCache, path: string, kind: InputKind): InputRecord | undefined {
  switch (kind) {
    case 'content': {
      const hashed = hashCache.hashFile(path);
      if (!hashed) return undefined;
      return { path, kind, ...stampFields(hashed.stat), hash: hashed.hash, verifiedAtNs: hashed.hashedAtNs };
    }
    case 'metadata': {
      const st = lstatOrUndefined(path);
      if (!st) return undefined;
      const record: InputRecord = { path, kind, ...stampFields(st), hash: null, verifiedAtNs: null };
      if (st.isSymbolicLink()) record.hash = readLink(path);
      return record;
    }
    case 'absent':
      return lstatOrUndefined(path) ? undefined : { path, kind };
    case 'terminal':
    case 'cpus':
      return undefined; // what the program was told is known only to its caller (the trace)
    case 'dirlist': {
      const startedNs = nowNs();
      const before = statOrUndefined(path);
      if (!before?.isDirectory()) return undefined;
      const hash = digestDirListing(path);
      if (hash === undefined) return undefined;
      const after = statOrUndefined(path);
      // A directory that changed while listed is recorded, but its stat is never trusted.
      const stable = after !== undefined && sameStamp(stampOf(before), stampOf(after));
      return { path, kind, ...stampFields(before), hash, verifiedAtNs: stable ? startedNs : 0n };
    }
  }
}

function readLink(path: string): string | null {
  try {
    return fs.readlinkSync(path);
  } catch {
    return null;
  }
}

/**
 * Caller policy for an input that does not match: return true to accept it anyway (e.g.
 * an absent input that the execution itself created and that is still what it left).
 * Only called on mismatches, so it may be expensive.
 */
export type Tolerate = (input: InputRecord, reason: string) => boolean;

/** Checks candidate inputs against the file system, memoising per lookup. */
export class InputChecker {
  private readonly stats = new Map<string, fs.BigIntStats | null>();
  private readonly fastStats = new Map<string, fs.Stats | null>();
  private readonly lstats = new Map<string, fs.BigIntStats | null>();
  private readonly digests = new Map<string, string | null>();
  private readonly listings = new Map<string, string | null>();
  /** how many files were actually read (not answered by stat or the hash cache) */
  filesHashed = 0;

  /**
   * @param terminalSize the size ("ROWSxCOLUMNS") of the terminal a terminal input's path
   *   names for the execution being looked up, or null when there is none; without it no
   *   terminal input matches.
   * @param cpuCount how many CPUs the execution being looked up may run on, or null when
   *   unknown; without it no cpus input matches.
   */
  constructor(
    private readonly hashCache: HashCache,
    private readonly terminalSize?: (path: string) => string | null,
    private readonly cpuCount?: () => string | null,
  ) {}

  /** First input that no longer matches (and is not tolerated), or null if all match. */
  check(inputs: readonly InputRecord[], tolerate?: Tolerate): InputMismatch | null {
    for (let i = 0; i < inputs.length; i++) {
      const reason = this.checkOne(inputs[i]);
      if (reason !== null && !tolerate?.(inputs[i], reason)) return { index: i, path: inputs[i].path, kind: inputs[i].kind, reason };
    }
    return null;
  }

  /**
   * Same as check() over an encoded manifest (manifest.ts). The common case, a settled
   * content or dirlist input whose stat is unchanged, costs one stat and no decoding.
   */
  checkManifest(manifest: Buffer, tolerate?: Tolerate): InputMismatch | null {
    const reader = new ManifestReader(manifest);
    for (let i = 0; reader.next(); i++) {
      if (reader.kind === 'content' || reader.kind === 'dirlist') {
        const st = this.fastStat(reader.path);
        if (st && (reader.kind === 'content' ? st.isFile() : st.isDirectory()) && reader.fastStampEquals(st)) continue;
      }
      const input = reader.record();
      const reason = this.checkOne(input);
      if (reason !== null && !tolerate?.(input, reason)) return { index: i, path: input.path, kind: input.kind, reason };
    }
    return null;
  }

  /**
   * The newest modification time (ms) among these paths as this check saw them: a hit's
   * content inputs were all stat'ed by checkManifest, so this costs no system call for them.
   */
  newestMtimeMs(paths: Iterable<string>): number {
    let newest = 0;
    for (const p of paths) {
      const st = this.fastStat(p);
      if (st && st.mtimeMs > newest) newest = st.mtimeMs;
    }
    return newest;
  }

  /** Plain (non-BigInt) stat, memoised: the fast path of checkManifest. */
  private fastStat(path: string): fs.Stats | undefined {
    let st = this.fastStats.get(path);
    if (st === undefined) {
      try {
        st = fs.statSync(path, { throwIfNoEntry: false }) ?? null;
      } catch {
        st = null; // ENOTDIR, ELOOP...: the full check decides
      }
      this.fastStats.set(path, st);
    }
    return st ?? undefined;
  }

  /** null when the input still matches, else a short reason. */
  checkOne(input: InputRecord): string | null {
    switch (input.kind) {
      case 'content': {
        const st = this.stat(input.path);
        if (!st) return 'missing';
        if (!st.isFile()) return 'not a regular file';
        if (this.statProvesUnchanged(input, st)) return null;
        if (input.size != null && st.size !== input.size) return 'size changed';
        return this.digest(input.path, st) === input.hash ? null : 'content changed';
      }
      case 'metadata': {
        const st = this.lstat(input.path);
        if (!st) return 'missing';
        const type = fileTypeOf(st);
        if (type !== input.type) return `type changed (${input.type} -> ${type})`;
        if (input.mode != null && Number(st.mode & 0o7777n) !== input.mode) return 'mode changed';
        if (type === 'file' && input.size != null && st.size !== input.size) return 'size changed';
        // ls -l, stat, make and `test -nt` show or compare it: a file's timestamp is observed.
        if (type === 'file' && input.mtimeNs != null && st.mtimeNs !== input.mtimeNs) return 'modification time changed';
        if (type === 'symlink' && readLink(input.path) !== input.hash) return 'link target changed';
        return null;
      }
      case 'absent':
        return this.lstat(input.path) ? 'exists now' : null;
      case 'dirlist': {
        const st = this.stat(input.path);
        if (!st?.isDirectory()) return 'not a directory';
        if (this.statProvesUnchanged(input, st)) return null;
        return this.listing(input.path) === input.hash ? null : 'listing changed';
      }
      case 'terminal': {
        const size = this.terminalSize?.(input.path) ?? null;
        if (size === null) return 'not a terminal';
        return size === input.hash ? null : `terminal size changed (${input.hash ?? '?'} -> ${size})`;
      }
      case 'cpus': {
        const count = this.cpuCount?.() ?? null;
        if (count === null) return 'CPU count unknown';
        return count === input.hash ? null : `CPU count changed (${input.hash ?? '?'} -> ${count})`;
      }
    }
  }

  private statProvesUnchanged(input: InputRecord, st: fs.BigIntStats): boolean {
    const recorded = recordedStamp(input);
    if (!recorded || !input.verifiedAtNs) return false;
    return sameStampLoose(recorded, st) && isSettled(recorded, input.verifiedAtNs);
  }

  private stat(path: string): fs.BigIntStats | undefined {
    let st = this.stats.get(path);
    if (st === undefined) this.stats.set(path, (st = statOrUndefined(path) ?? null));
    return st ?? undefined;
  }

  private lstat(path: string): fs.BigIntStats | undefined {
    let st = this.lstats.get(path);
    if (st === undefined) this.lstats.set(path, (st = lstatOrUndefined(path) ?? null));
    return st ?? undefined;
  }

  private digest(path: string, st: fs.BigIntStats): string | null {
    let hash = this.digests.get(path);
    if (hash === undefined) {
      const hashed = this.hashCache.hashFile(path, st);
      if (hashed && !hashed.cached) this.filesHashed++;
      this.digests.set(path, (hash = hashed?.hash ?? null));
    }
    return hash;
  }

  private listing(path: string): string | null {
    let hash = this.listings.get(path);
    if (hash === undefined) this.listings.set(path, (hash = digestDirListing(path) ?? null));
    return hash;
  }
}
