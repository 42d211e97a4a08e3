// Restoring blobs to destination paths, in two steps so a caller can restore several
// outputs all-or-nothing:
//   stage   - copy the blob to an unnamed file (O_TMPFILE) in the destination's directory
//             (same file system, so rename(2) is atomic) while, in parallel, re-hashing the
//             blob; give it its mode. Nothing is visible yet, and a pcache killed now
//             leaves nothing in the user's directory. (Where the file system cannot make
//             unnamed files: a temp file beside the destination.)
//   commit  - name the file and rename it over the destination: a reader sees the old
//             file or the whole new one. abort() drops the copy instead.
// A blob whose digest does not match is never staged, so it never reaches a destination.
//
// The copy (file-copy.ts) tries the FICLONE ioctl (a reflink on btrfs/xfs, no data
// copied) and falls back to copy_file_range, so the bytes never pass through user space.

import * as fs from 'fs';
import * as path from 'path';
import { BlobDir, tempName } from './blobs';
import { digestFileBesideCopy } from './digest';
import { StoreError, errnoCode, shortMessage } from './errors';
import { copyAnonymous, copyNewFile, linkAnonymous } from './file-copy';

/** restored: written; missing/corrupt: nothing was written, the blob is unusable */
export type RestoreOutcome = 'restored' | 'missing' | 'corrupt';

/** A verified copy waiting beside its destination. */
export interface StagedRestore {
  readonly destination: string;
  /** write: a new file replaces the destination; chmod: content already right, mode fixed; none: nothing to do */
  readonly action: 'write' | 'chmod' | 'none';
  /** Renames the staged file over the destination. */
  commit(): void;
  /** Removes the staged file; the destination stays as it was. */
  abort(): void;
  /** action none/chmod: the destination's stat taken before its content was checked, and when */
  readonly verified?: { stat: fs.BigIntStats; hashedAtNs: bigint };
}

export async function stageBlob(
  blobs: BlobDir,
  hash: string,
  destination: string,
  mode: number,
): Promise<StagedRestore | 'missing' | 'corrupt'> {
  const source = blobs.pathOf(hash);
  const dir = path.dirname(destination);
  // The copy waits unnamed (O_TMPFILE) until commit; a named temp file beside the
  // destination where the file system cannot do that.
  let fd: number | null = null;
  let tmp: string | null = null;
  const copying = copyAnonymous(source, dir, mode).then(async (anonymous) => {
    fd = anonymous;
    if (anonymous !== null) return;
    tmp = tempName(dir, '.pcache-');
    await copyNewFile(source, tmp, mode);
  });
  const hashing = digestFileBesideCopy(source);
  const [copied, hashed] = await Promise.allSettled([copying, hashing]);
  const discard = (): void => {
    if (fd !== null) fs.closeSync(fd);
    fd = null;
    if (tmp !== null) fs.rmSync(tmp, { force: true });
    tmp = null;
  };
  let staged = false;
  try {
    if (hashed.status === 'rejected') {
      if (errnoCode(hashed.reason) === 'ENOENT') return 'missing';
      // Something other than a file in the blob's place (a FIFO, a directory): not its content.
      const st = fs.lstatSync(source, { throwIfNoEntry: false });
      if (st !== undefined && !st.isFile()) return 'corrupt';
      throw new StoreError('IO_ERROR', `cannot read blob ${hash}: ${shortMessage(hashed.reason)}`, { cause: hashed.reason });
    }
    if (hashed.value.hash !== hash) return 'corrupt';
    if (copied.status === 'rejected') {
      throw new StoreError('IO_ERROR', `cannot restore ${destination}: ${shortMessage(copied.reason)}`, { cause: copied.reason });
    }
    staged = true;
    return {
      destination,
      action: 'write',
      commit() {
        try {
          if (fd !== null) {
            // Named only now, and renamed at once: the name shows for microseconds.
            const name = tempName(dir, '.pcache-');
            linkAnonymous(fd, name);
            tmp = name;
          }
          fs.renameSync(tmp!, destination);
          tmp = null;
        } catch (e) {
          throw new StoreError('IO_ERROR', `cannot restore ${destination}: ${shortMessage(e)}`, { cause: e });
        } finally {
          discard();
        }
      },
      abort() {
        discard();
      },
    };
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw new StoreError('IO_ERROR', `cannot restore ${destination}: ${shortMessage(e)}`, { cause: e });
  } finally {
    if (!staged) discard();
  }
}

export async function restoreBlob(blobs: BlobDir, hash: string, destination: string, mode: number): Promise<RestoreOutcome> {
  const staged = await stageBlob(blobs, hash, destination, mode);
  if (typeof staged === 'string') return staged;
  staged.commit();
  return 'restored';
}
