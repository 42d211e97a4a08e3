// Content-addressed blob directory.
//
// Layout (BLOB_LAYOUT_VERSION 1):
//   <cache>/blobs/<first 2 hex>/<remaining 62 hex>   one file per BLAKE3 digest, mode 0444
//   <cache>/tmp/<pid>-<random>.tmp                    blobs being written; renamed into place
//
// A blob file is only ever created by rename(2) of a complete, fsynced temp file, so a
// blob name that exists always names a whole file. The index (index-db.ts) decides which
// blobs are referenced; this module knows nothing about entries.
//
// History:
//   1 - first version.

import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { CHUNK_SIZE, digestBytes, digestFdSync, digestFileAsync, digestPieces, isDigest, newHasher } from './digest';
import { StoreError, errnoCode, shortMessage } from './errors';
import { writeNewFile } from './file-copy';
import { mkdirs } from './mkdirs';

export const BLOB_LAYOUT_VERSION = 1;
const BLOB_MODE = 0o444;
/** Files up to this size are stored from one in-memory read (see storeSmall). */
const SMALL_FILE = 4 << 20;
/** storeChunks joins pieces into runs of about this many bytes. */
const GROUP = 1 << 20;

export interface StoredBlob {
  hash: string;
  size: number;
}

/** What the source file looked like while it was stored (see StoredFile.stable). */
export interface StoredFile extends StoredBlob {
  /** stat of the source taken before its first byte was read */
  stat: fs.BigIntStats;
  /** wall clock (ns) just before the first byte was read */
  readStartNs: bigint;
  /** false if the source changed while it was read: the digest must not be cached */
  stable: boolean;
}

/** A small file's bytes as read, with what storing them would have said. */
export interface SmallFile extends StoredFile {
  bytes: Buffer;
}

export type BlobState = 'ok' | 'missing' | 'corrupt';

export interface BlobDirOptions {
  /** fsync blobs before they are renamed into place (default true) */
  durable?: boolean;
}

export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/**
 * Random once per process (a pid can be reused), then counted: no randomness per file.
 * Made at the first temp name, not at load: the startup snapshot loads this module once,
 * at build time, for every pcache process to come.
 */
let tempPrefix: string | undefined;
let tempCounter = 0;

export function tempName(dir: string, base = ''): string {
  tempPrefix ??= `${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
  return path.join(dir, `${base}${tempPrefix}-${(tempCounter++).toString(36)}.tmp`);
}

export class BlobDir {
  readonly blobsDir: string;
  readonly tmpDir: string;
  private readonly durable: boolean;

  constructor(cacheDir: string, options: BlobDirOptions = {}) {
    this.blobsDir = path.join(cacheDir, 'blobs');
    this.tmpDir = path.join(cacheDir, 'tmp');
    this.durable = options.durable ?? true;
  }

  /** Creates blobs/ and tmp/; throws CACHE_DIR_UNWRITABLE when it cannot. */
  init(): void {
    for (const dir of [this.blobsDir, this.tmpDir]) {
      try {
        mkdirs(dir);
      } catch (e) {
        throw new StoreError('CACHE_DIR_UNWRITABLE', `cannot create ${dir}: ${shortMessage(e)}`, { cause: e });
      }
    }
    // The 256 shard directories, once: a cold run otherwise pays a failed rename and a
    // mkdir for each new shard. (One that goes missing later is still created on demand.)
    if (!fs.existsSync(path.join(this.blobsDir, 'ff'))) {
      for (let i = 0; i < 256; i++) mkdirs(path.join(this.blobsDir, i.toString(16).padStart(2, '0')));
    }
  }

  pathOf(hash: string): string {
    if (!isDigest(hash)) throw new StoreError('INVALID_ARGUMENT', `not a blob digest: '${hash}'`);
    return path.join(this.blobsDir, hash.slice(0, 2), hash.slice(2));
  }

  /** Size of the blob file, or undefined when it is not present. */
  sizeOf(hash: string): number | undefined {
    const st = fs.statSync(this.pathOf(hash), { throwIfNoEntry: false });
    return st?.isFile() ? st.size : undefined;
  }

  has(hash: string): boolean {
    return this.sizeOf(hash) !== undefined;
  }

  /** Stores bytes held in memory (stdout/stderr captures, small files). */
  storeBytes(bytes: Uint8Array): StoredBlob {
    return this.storeHashed(bytes, digestBytes(bytes));
  }

  /** storeBytes for bytes whose digest was just computed from these very bytes. */
  private storeHashed(bytes: Uint8Array, hash: string): StoredBlob {
    if (this.sizeOf(hash) === bytes.length) {
      this.touch(hash);
      return { hash, size: bytes.length };
    }
    const tmp = tempName(this.tmpDir);
    const fd = this.openTemp(tmp);
    try {
      let off = 0;
      while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off);
      if (this.durable) fs.fdatasyncSync(fd);
    } catch (e) {
      fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
      throw new StoreError('IO_ERROR', `cannot write blob: ${shortMessage(e)}`, { cause: e });
    }
    fs.closeSync(fd);
    this.commitTemp(tmp, hash);
    return { hash, size: bytes.length };
  }

  /**
   * Bytes held in memory in pieces (a captured stdout): joined only into runs of about
   * GROUP bytes, never into one buffer of the whole, hashed run by run and written through
   * the thread pool, file creation and rename included: pcache stores these after the
   * execution's exit is let go, and on the JS thread a file creation (0.1-1.4 ms on the
   * project machine) would delay the next held exit. `digest`: the caller's digest of exactly
   * these bytes (they are then not hashed again).
   */
  async storeChunks(chunks: readonly Uint8Array[], digest?: string): Promise<StoredBlob> {
    if (digest !== undefined && !isDigest(digest)) throw new StoreError('INVALID_ARGUMENT', `not a blob digest: '${digest}'`);
    const size = chunks.reduce((n, c) => n + c.length, 0);
    // Pieces are joined into runs of about GROUP bytes: one hash update and one write per
    // run (a 4 KiB piece per call costs more in call overhead than the bytes do).
    const groups: Uint8Array[] = [];
    for (let i = 0; i < chunks.length; ) {
      let j = i;
      let n = 0;
      while (j < chunks.length && (n === 0 || n + chunks[j].length <= GROUP)) n += chunks[j++].length;
      groups.push(j === i + 1 ? chunks[i] : Buffer.concat(chunks.slice(i, j), n));
      i = j;
    }
    return this.writeBlob(groups, digest ?? digestPieces(groups), size);
  }

  /** Writes blob `hash` (`size` bytes, in `groups`) unless it is already there. */
  private async writeBlob(groups: readonly Uint8Array[], hash: string, size: number): Promise<StoredBlob> {
    if (this.sizeOf(hash) === size) {
      this.touch(hash);
      return { hash, size };
    }
    let tmp = tempName(this.tmpDir);
    try {
      try {
        await writeNewFile(tmp, this.pathOf(hash), groups, BLOB_MODE, this.durable);
      } catch (e) {
        // blobs/ itself gone (the native call makes only the shard): made whole, once more.
        if (errnoCode(e) !== 'ENOENT' || (e as { syscall?: string }).syscall !== 'rename') throw e;
        mkdirs(path.dirname(this.pathOf(hash)));
        tmp = tempName(this.tmpDir);
        await writeNewFile(tmp, this.pathOf(hash), groups, BLOB_MODE, this.durable);
      }
    } catch (e) {
      if (e instanceof StoreError) throw e;
      // the temp file could not be made: the cache directory is the problem, as in openTemp
      if ((e as { syscall?: string }).syscall === 'open') {
        throw new StoreError('CACHE_DIR_UNWRITABLE', `cannot create ${tmp}: ${shortMessage(e)}`, { cause: e });
      }
      throw new StoreError('IO_ERROR', `cannot write blob: ${shortMessage(e)}`, { cause: e });
    }
    return { hash, size };
  }

  /**
   * One pass over a file: each chunk is read once, hashed and written to a temp file,
   * with the next read, the hashing and the previous write overlapping. The temp file
   * is fsynced and renamed to its digest. Memory use is three chunks, whatever the size.
   */
  async storeFile(source: string): Promise<StoredFile> {
    // Most outputs are small: those are stored without a trip through the thread pool (an
    // exit is held while its outputs are stored, and each trip is a turn of a busy loop).
    const small = this.storeSmallFile(source);
    if (small) return small;
    let input: fs.promises.FileHandle;
    try {
      // O_NONBLOCK: a FIFO at `source` is refused below instead of blocking the open.
      input = await fs.promises.open(source, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch (e) {
      throw new StoreError('IO_ERROR', `cannot read ${source}: ${shortMessage(e)}`, { cause: e });
    }
    const tmp = tempName(this.tmpDir);
    let output: fs.promises.FileHandle | undefined;
    // In flight while the loop runs; on failure they are settled before the handles close.
    let reading: Promise<unknown> | undefined;
    let writing: Promise<unknown> = Promise.resolve();
    try {
      const readStartNs = nowNs();
      const before = await input.stat({ bigint: true });
      if (!before.isFile()) throw new StoreError('INVALID_ARGUMENT', `not a regular file: ${source}`);
      output = await this.openTempAsync(tmp);
      const hasher = newHasher();
      // Sized to the file: most outputs are small, and 3 x 4 MiB per file was most of a
      // cold run's garbage (100 short executions: 90 ms allocating, 240 ms collecting).
      const chunk = Math.max(64 * 1024, Math.min(CHUNK_SIZE * 4, Number(before.size) + 1));
      const buffers = [Buffer.allocUnsafe(chunk), Buffer.allocUnsafe(chunk), Buffer.allocUnsafe(chunk)];
      let position = 0;
      let i = 0;
      let read = input.read(buffers[0], 0, chunk, 0);
      reading = read;
      for (;;) {
        const { bytesRead } = await read;
        if (bytesRead === 0) break;
        const current = buffers[i % 3];
        position += bytesRead;
        i++;
        // buffers[i % 3] was last used by the write two iterations back, awaited below.
        reading = read = input.read(buffers[i % 3], 0, chunk, position);
        // Awaited later: mark handled now so a failure meanwhile is not an unhandled rejection.
        read.catch(() => undefined);
        hasher.update(current.subarray(0, bytesRead));
        await writing;
        writing = writeFully(output, current, bytesRead);
        writing.catch(() => undefined);
      }
      await writing;
      // One flush at the end: periodic fdatasync calls during the copy were measured to
      // cost more than they save (each one is a journal commit and a device cache flush).
      if (this.durable) await output.datasync();
      await output.close();
      output = undefined;
      const after = await input.stat({ bigint: true });
      const stable =
        after.size === before.size &&
        after.mtimeNs === before.mtimeNs &&
        after.ctimeNs === before.ctimeNs &&
        BigInt(position) === before.size;
      const hash = hasher.digest('hex');
      this.commitTemp(tmp, hash);
      return { hash, size: position, stat: before, readStartNs, stable };
    } catch (e) {
      await Promise.allSettled([reading, writing]);
      await output?.close().catch(() => undefined);
      fs.rmSync(tmp, { force: true });
      if (e instanceof StoreError) throw e;
      throw new StoreError('IO_ERROR', `cannot store ${source}: ${shortMessage(e)}`, { cause: e });
    } finally {
      await input.close().catch(() => undefined);
    }
  }

  /**
   * A small regular file (up to SMALL_FILE) read into memory and hashed, not stored: the
   * caller stores the bytes later (storeChunks), when the file itself may have changed.
   * null for a larger file, or one that grew while read.
   */
  readSmallFile(source: string): SmallFile | null {
    const fd = openForReading(source);
    try {
      return this.readSmallFd(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * A file of at most SMALL_FILE bytes, read into memory with one synchronous read: most
   * outputs are small, and a blob that already exists (the same output stored again by an
   * enclosing execution, or by an earlier run) is then never copied at all. Null when the
   * file is larger (or not regular): the streaming path takes it.
   */
  private storeSmallFile(source: string): StoredFile | null {
    const fd = openForReading(source);
    try {
      const small = this.readSmallFd(fd);
      if (!small) return null;
      const { bytes, ...stored } = small;
      this.storeHashed(bytes, stored.hash);
      return stored;
    } finally {
      fs.closeSync(fd);
    }
  }

  private readSmallFd(fd: number): SmallFile | null {
    const readStartNs = nowNs();
    const before = fs.fstatSync(fd, { bigint: true });
    if (!before.isFile() || before.size > BigInt(SMALL_FILE)) return null;
    const bytes = Buffer.allocUnsafe(Number(before.size) + 1);
    let position = 0;
    for (;;) {
      const n = fs.readSync(fd, bytes, position, bytes.length - position, position);
      if (n === 0) break;
      position += n;
      if (position === bytes.length) return null; // grew while read: stream it instead
    }
    const after = fs.fstatSync(fd, { bigint: true });
    const stable =
      after.size === before.size && after.mtimeNs === before.mtimeNs && after.ctimeNs === before.ctimeNs && BigInt(position) === before.size;
    const data = bytes.subarray(0, position);
    return { hash: digestBytes(data), size: position, stat: before, readStartNs, stable, bytes: data };
  }

  /** Re-hashes the blob file and compares with its name. */
  checkSync(hash: string): BlobState {
    let fd: number;
    try {
      fd = fs.openSync(this.pathOf(hash), 'r');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return 'missing';
      throw new StoreError('IO_ERROR', `cannot read blob ${hash}: ${shortMessage(e)}`, { cause: e });
    }
    try {
      return digestFdSync(fd).hash === hash ? 'ok' : 'corrupt';
    } finally {
      fs.closeSync(fd);
    }
  }

  async check(hash: string): Promise<BlobState> {
    try {
      const { hash: actual } = await digestFileAsync(this.pathOf(hash));
      return actual === hash ? 'ok' : 'corrupt';
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return 'missing';
      throw new StoreError('IO_ERROR', `cannot read blob ${hash}: ${shortMessage(e)}`, { cause: e });
    }
  }

  /** The blob's bytes, verified; for small blobs such as captured stdout. */
  readVerified(hash: string): Buffer | 'missing' | 'corrupt' {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(this.pathOf(hash));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return 'missing';
      throw new StoreError('IO_ERROR', `cannot read blob ${hash}: ${shortMessage(e)}`, { cause: e });
    }
    return digestBytes(bytes) === hash ? bytes : 'corrupt';
  }

  remove(hash: string): void {
    fs.rmSync(this.pathOf(hash), { force: true });
  }

  /** Every blob file on disk (name-valid ones), with its size and mtime. */
  *list(): Generator<{ hash: string; size: number; mtimeMs: number }> {
    let shards: string[];
    try {
      shards = fs.readdirSync(this.blobsDir);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return;
      throw e;
    }
    for (const shard of shards) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      const dir = path.join(this.blobsDir, shard);
      let names: string[];
      try {
        names = fs.readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        const hash = shard + name;
        if (!isDigest(hash)) continue;
        const st = fs.statSync(path.join(dir, name), { throwIfNoEntry: false });
        if (st?.isFile()) yield { hash, size: st.size, mtimeMs: st.mtimeMs };
      }
    }
  }

  /** Removes temp files left by killed writers, older than `olderThanMs`. */
  sweepTemp(olderThanMs: number): number {
    let removed = 0;
    let names: string[];
    try {
      names = fs.readdirSync(this.tmpDir);
    } catch {
      return 0;
    }
    const limit = Date.now() - olderThanMs;
    for (const name of names) {
      const file = path.join(this.tmpDir, name);
      const st = fs.statSync(file, { throwIfNoEntry: false });
      if (st && st.mtimeMs <= limit) {
        fs.rmSync(file, { force: true, recursive: true });
        removed++;
      }
    }
    return removed;
  }

  /** Refresh mtime so that orphan sweeping (which goes by age) spares a reused blob. */
  touch(hash: string): void {
    const now = new Date();
    try {
      fs.utimesSync(this.pathOf(hash), now, now);
    } catch {
      // Gone meanwhile: publication checks presence under the index lock anyway.
    }
  }

  private openTemp(tmp: string): number {
    try {
      return fs.openSync(tmp, 'wx', BLOB_MODE);
    } catch (e) {
      throw new StoreError('CACHE_DIR_UNWRITABLE', `cannot create ${tmp}: ${shortMessage(e)}`, { cause: e });
    }
  }

  private async openTempAsync(tmp: string): Promise<fs.promises.FileHandle> {
    try {
      return await fs.promises.open(tmp, 'wx', BLOB_MODE);
    } catch (e) {
      throw new StoreError('CACHE_DIR_UNWRITABLE', `cannot create ${tmp}: ${shortMessage(e)}`, { cause: e });
    }
  }

  /**
   * Renames a complete temp file to its digest. If the blob already exists it is
   * replaced, which is harmless (same bytes) and heals a blob that had rotted.
   */
  private commitTemp(tmp: string, hash: string): void {
    const dest = this.pathOf(hash);
    try {
      fs.renameSync(tmp, dest);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') {
        fs.rmSync(tmp, { force: true });
        throw new StoreError('IO_ERROR', `cannot publish blob ${hash}: ${shortMessage(e)}`, { cause: e });
      }
      // Shard directory not created yet (or removed by `clear`): create and retry once.
      try {
        mkdirs(path.dirname(dest));
        fs.renameSync(tmp, dest);
      } catch (e2) {
        fs.rmSync(tmp, { force: true });
        throw new StoreError('IO_ERROR', `cannot publish blob ${hash}: ${shortMessage(e2)}`, { cause: e2 });
      }
    }
  }
}

/** O_NONBLOCK: a FIFO at `source` is refused later (not regular) instead of blocking the open. */
function openForReading(source: string): number {
  try {
    return fs.openSync(source, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw new StoreError('IO_ERROR', `cannot read ${source}: ${shortMessage(e)}`, { cause: e });
  }
}

async function writeFully(fh: fs.promises.FileHandle, buffer: Uint8Array, length: number): Promise<void> {
  let off = 0;
  while (off < length) {
    const { bytesWritten } = await fh.write(buffer, off, length - off);
    off += bytesWritten;
  }
}
