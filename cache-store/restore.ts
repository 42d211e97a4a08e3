// Restoring blobs to destination paths, in two steps so a caller can restore several
// outputs all-or-nothing:
//   stage   - copy the blob to a temp file beside the destination (same directory, so
//             same file system and rename(2) is atomic) while, in parallel, re-hashing the
//             blob; give the temp file its mode. Nothing visible has changed yet.
//   commit  - rename the temp file over the destination: a reader sees the old file or
//             the whole new one. abort() removes the temp file instead.
// A blob whose digest does not match is never staged, so it never reaches a destination.
//
// The copy (file-copy.ts) tries the FICLONE ioctl (a reflink on btrfs/xfs, no data
// copied) and falls back to copy_file_range, so the bytes never pass through user space.

import * as fs from 'fs';
import * as path from 'path';
import { BlobDir, tempName } from './blobs';
import { digestFileBesideCopy } from './digest';
import { StoreError, errnoCode, shortMessage } from './errors';
import { copyNewFile } from './file-copy';

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
  const tmp = tempName(path.dirname(destination), '.pcache-');
  const copying = copyNewFile(source, tmp, mode);
  const hashing = digestFileBesideCopy(source);
  const [copied, hashed] = await Promise.allSettled([copying, hashing]);
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
          fs.renameSync(tmp, destination);
        } catch (e) {
          fs.rmSync(tmp, { force: true });
          throw new StoreError('IO_ERROR', `cannot restore ${destination}: ${shortMessage(e)}`, { cause: e });
        }
      },
      abort() {
        fs.rmSync(tmp, { force: true });
      },
    };
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw new StoreError('IO_ERROR', `cannot restore ${destination}: ${shortMessage(e)}`, { cause: e });
  } finally {
    if (!staged) await fs.promises.rm(tmp, { force: true });
  }
}

export async function restoreBlob(blobs: BlobDir, hash: string, destination: string, mode: number): Promise<RestoreOutcome> {
  const staged = await stageBlob(blobs, hash, destination, mode);
  if (typeof staged === 'string') return staged;
  staged.commit();
  return 'restored';
}
