// Digests learnt during one run, so a file is read once per run instead of once per
// execution that covers it: a chunk's output is stored when the chunk ends, and again by
// every enclosing execution (the loop, the script, the pipeline), each of which re-read
// and re-hashed it; a hit's outputs, just verified or restored, were read again by every
// running ancestor.
//
// A remembered digest stands for the file while both hold:
//   - the file has the same stamp (dev, ino, size, mtime, ctime) as when it was hashed, and
//     no traced process has changed the path since (the fold's change mark);
//   - a change after hashing would have moved the stamp: either the stamp was already
//     older than the timestamp granularity when hashed (the hash cache's racy guard), or
//     the file system has multigrain timestamps (Linux 6.13+ on ext4, XFS, Btrfs, tmpfs),
//     which give the first change after a stat a fine-grained ctime of its own.
// On other file systems a fresh file is simply hashed again, as before.

import * as fs from 'fs';
import { FineGrainedCtime } from '../../cache-store/fs-type';
import { isSettled, sameStamp, stampOf, type FileStamp } from '../../cache-store/hash-cache';

interface Known {
  stamp: FileStamp;
  hash: string;
  hashedAtNs: bigint;
  mark: number;
}

export class RunHashes {
  private readonly known = new Map<string, Known>();
  private readonly fineGrained: FineGrainedCtime;

  /** `markOf(path)` changes whenever a traced process changes the path. */
  constructor(
    private readonly markOf: (path: string) => number,
    kernelRelease?: string,
  ) {
    this.fineGrained = new FineGrainedCtime({ kernelRelease });
  }

  /** The mark to pass to remember(): take it before the file is read. */
  mark(path: string): number {
    return this.markOf(path);
  }

  /**
   * `stamp` is the regular file's, taken before the bytes that gave `hash` were read (or
   * after pcache itself wrote them); `mark` was taken before that too.
   */
  remember(path: string, stamp: FileStamp, hash: string, hashedAtNs: bigint, mark: number): void {
    if (hashedAtNs <= 0n) return;
    if (!isSettled(stamp, hashedAtNs) && !this.fineGrained.has(path, stamp.dev)) return;
    this.known.set(path, { stamp, hash, hashedAtNs, mark });
  }

  /** The digest of `path` if `stat` (its current stat) shows the remembered file. */
  lookup(path: string, stat: fs.BigIntStats | undefined): { hash: string; hashedAtNs: bigint } | undefined {
    const k = this.known.get(path);
    if (!k || !stat?.isFile()) return undefined;
    if (k.mark !== this.markOf(path) || !sameStamp(k.stamp, stampOf(stat))) {
      this.known.delete(path);
      return undefined;
    }
    return { hash: k.hash, hashedAtNs: k.hashedAtNs };
  }
}

