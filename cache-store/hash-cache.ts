// Stat-keyed hash cache: (path, dev, ino, size, mtime_ns, ctime_ns) -> BLAKE3 digest,
// so a file that did not change is never read twice.
//
// Racy-file guard: file systems stamp mtime/ctime with a coarse clock (a jiffy on ext4,
// 1-2 s on others), so a file modified shortly before or while it was hashed can be
// modified again without its stamp changing. A digest is only trusted from the cache if
// both mtime and ctime are more than RACY_WINDOW_NS older than the moment hashing began.
// Digests of racy files are not stored at all; the file is simply hashed again next time.
// Where timestamps are multigrain (Linux 6.13+ on ext4, XFS, Btrfs, tmpfs: fs-type.ts), the
// first change after a stat always gets a ctime of its own, and every stamp here comes from
// a stat taken before the bytes were read: there, a fresh file's digest is trusted at once.

import * as fs from 'fs';
import { nowNs } from './blobs';
import { FineGrainedCtime } from './fs-type';
import { digestFdSync } from './digest';
import { StoreError, errnoCode, shortMessage } from './errors';
import { Db, Statement, toInt64 } from './index-db';

/** Covers 2 s timestamp granularity (FAT, some network file systems) with margin to spare. */
export const RACY_WINDOW_NS = 2_000_000_000n;

/** The identity-and-change fields of a stat; equal stamps mean "unchanged file". */
export interface FileStamp {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export function stampOf(st: fs.BigIntStats): FileStamp {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
}

export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino && a.dev === b.dev;
}

/** True if a digest taken at `hashedAtNs` of a file with this stamp may be reused later. */
export function isSettled(stamp: FileStamp, hashedAtNs: bigint): boolean {
  const limit = hashedAtNs - RACY_WINDOW_NS;
  return stamp.mtimeNs < limit && stamp.ctimeNs < limit;
}

export interface HashedFile {
  hash: string;
  /** stat of the file the digest belongs to (taken on the open fd, before reading) */
  stat: fs.BigIntStats;
  /** when the relation stat -> hash was established (ns); feeds the racy guard */
  hashedAtNs: bigint;
  /** read from the cache, not from the file */
  cached: boolean;
}

interface HashCacheRow {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtime_ns: bigint;
  ctime_ns: bigint;
  hash: string;
  hashed_at_ns: bigint;
}

export class HashCache {
  private readonly select: Statement;
  private readonly upsert: Statement;
  private readonly remove: Statement;
  private readonly buffer = Buffer.allocUnsafe(1 << 20);
  private readonly fineGrained: FineGrainedCtime;
  /** Rows recorded but not written yet (deferWrites), by path; lookups see them first. */
  private readonly pending = new Map<string, HashCacheRow>();
  private readonly deferWrites: boolean;
  private readonly maxPending: number;
  /** called when maxPending rows wait: the owner writes them (writePending in a transaction) */
  private readonly onPendingFull: () => void;

  /**
   * fineGrained false: apply the racy guard everywhere (as on pre-6.13 kernels).
   * deferWrites: record() keeps rows in memory until writePending() (which the Store calls in
   * its next write transaction): a transaction per recorded file was ~40 ms of a cold run of
   * 1,200 short executions on the JS thread. A crash loses only rows, never correctness.
   */
  constructor(
    db: Db,
    options: { fineGrained?: boolean; deferWrites?: boolean; maxPending?: number; onPendingFull?: () => void } = {},
  ) {
    this.deferWrites = options.deferWrites ?? false;
    this.maxPending = options.maxPending ?? Infinity;
    this.onPendingFull = options.onPendingFull ?? (() => undefined);
    this.fineGrained = new FineGrainedCtime({ enabled: options.fineGrained });
    this.select = db
      .prepare(`SELECT dev, ino, size, mtime_ns, ctime_ns, hash, hashed_at_ns FROM hash_cache WHERE path = ?`)
      .safeIntegers(true);
    this.upsert = db.prepare(
      `INSERT INTO hash_cache (path, dev, ino, size, mtime_ns, ctime_ns, hash, hashed_at_ns)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (path) DO UPDATE SET dev = excluded.dev, ino = excluded.ino, size = excluded.size,
         mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns, hash = excluded.hash,
         hashed_at_ns = excluded.hashed_at_ns`,
    );
    this.remove = db.prepare(`DELETE FROM hash_cache WHERE path = ?`);
  }

  /** The cached digest of `path` if its current stamp is the cached one and was settled. */
  lookup(path: string, stamp: FileStamp): { hash: string; hashedAtNs: bigint } | undefined {
    const row = this.pending.get(path) ?? (this.select.get(path) as HashCacheRow | undefined);
    if (!row) return undefined;
    const cached: FileStamp = { dev: row.dev, ino: row.ino, size: row.size, mtimeNs: row.mtime_ns, ctimeNs: row.ctime_ns };
    const current: FileStamp = {
      dev: toInt64(stamp.dev),
      ino: toInt64(stamp.ino),
      size: stamp.size,
      mtimeNs: stamp.mtimeNs,
      ctimeNs: stamp.ctimeNs,
    };
    if (!sameStamp(cached, current)) return undefined;
    if (!isSettled(cached, row.hashed_at_ns) && !this.fineGrained.has(path, current.dev)) return undefined;
    return { hash: row.hash, hashedAtNs: row.hashed_at_ns };
  }

  /**
   * Remembers a digest, unless the file was too fresh for its stamp to be trusted. An
   * older row for the path is then left alone: its stamp can never match again (any
   * change moves ctime past it), and not deleting saves a write transaction per racy file.
   */
  record(path: string, stamp: FileStamp, hash: string, hashedAtNs: bigint): boolean {
    if (!isSettled(stamp, hashedAtNs) && !this.fineGrained.has(path, stamp.dev)) return false;
    const row: HashCacheRow = {
      dev: toInt64(stamp.dev),
      ino: toInt64(stamp.ino),
      size: stamp.size,
      mtime_ns: stamp.mtimeNs,
      ctime_ns: stamp.ctimeNs,
      hash,
      hashed_at_ns: hashedAtNs,
    };
    if (this.deferWrites) {
      // Re-inserted so that the map's order is the order of recording (writePending's cut).
      this.pending.delete(path);
      this.pending.set(path, row);
      if (this.pending.size >= this.maxPending) this.onPendingFull();
    } else this.write(path, row);
    return true;
  }

  forget(path: string): void {
    this.pending.delete(path);
    this.remove.run(path);
  }

  /** How many recorded rows wait for writePending(). */
  get pendingRows(): number {
    return this.pending.size;
  }

  /**
   * Writes the rows recorded so far; call it inside a write transaction. Returns what to call
   * once that transaction has committed (a rolled-back one leaves them pending).
   */
  writePending(): () => void {
    if (this.pending.size === 0) return () => undefined;
    const written = [...this.pending];
    for (const [path, row] of written) this.write(path, row);
    return () => {
      for (const [path, row] of written) if (this.pending.get(path) === row) this.pending.delete(path);
    };
  }

  private write(path: string, r: HashCacheRow): void {
    this.upsert.run(path, r.dev, r.ino, r.size, r.mtime_ns, r.ctime_ns, r.hash, r.hashed_at_ns);
  }

  /**
   * Digest of a regular file: from the cache when its stamp allows, else read and hashed
   * (and cached if settled). Returns undefined if the path is not a regular file.
   */
  hashFile(path: string, known?: fs.BigIntStats): HashedFile | undefined {
    const st = known ?? statOrUndefined(path);
    if (!st || !st.isFile()) return undefined;
    const hit = this.lookup(path, st);
    if (hit !== undefined) return { hash: hit.hash, stat: st, hashedAtNs: hit.hashedAtNs, cached: true };

    const hashedAtNs = nowNs();
    let fd: number;
    try {
      // O_NONBLOCK: if the path was swapped for a FIFO since the stat, do not hang on it.
      fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
      throw new StoreError('IO_ERROR', `cannot read ${path}: ${shortMessage(e)}`, { cause: e });
    }
    try {
      const before = fs.fstatSync(fd, { bigint: true });
      if (!before.isFile()) return undefined;
      const { hash, size } = digestFdSync(fd, this.buffer);
      const after = fs.fstatSync(fd, { bigint: true });
      // A file that changed under us gets an answer for this call but no cache row.
      const stable = sameStamp(stampOf(before), stampOf(after)) && BigInt(size) === before.size;
      if (stable) this.record(path, before, hash, hashedAtNs);
      return { hash, stat: before, hashedAtNs: stable ? hashedAtNs : 0n, cached: false };
    } finally {
      fs.closeSync(fd);
    }
  }
}

// A path that cannot be looked up (a missing directory on the way, or one this user may not
// search: EACCES) is not there, as the tracer saw it: its walk records a failed lstat as absent.
export function statOrUndefined(path: string): fs.BigIntStats | undefined {
  try {
    return fs.statSync(path, { bigint: true, throwIfNoEntry: false });
  } catch (e) {
    if (errnoCode(e) === 'ENOTDIR' || errnoCode(e) === 'ELOOP' || errnoCode(e) === 'ENAMETOOLONG' || errnoCode(e) === 'EACCES') return undefined;
    throw new StoreError('IO_ERROR', `cannot stat ${path}: ${shortMessage(e)}`, { cause: e });
  }
}

export function lstatOrUndefined(path: string): fs.BigIntStats | undefined {
  try {
    return fs.lstatSync(path, { bigint: true, throwIfNoEntry: false });
  } catch (e) {
    if (errnoCode(e) === 'ENOTDIR' || errnoCode(e) === 'ENAMETOOLONG' || errnoCode(e) === 'EACCES') return undefined;
    throw new StoreError('IO_ERROR', `cannot stat ${path}: ${shortMessage(e)}`, { cause: e });
  }
}
