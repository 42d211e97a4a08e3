// Restoring a blob to a destination path.
//
// The copy goes to a temp file beside the destination (same directory, so same file
// system and rename(2) is atomic) while, in parallel, the blob is re-hashed. Only when
// the digest matches is the temp file given its mode and renamed over the destination:
// a reader sees the old file or the whole new one, and a corrupt blob never reaches it.
//
// The copy is fs.copyFile with COPYFILE_FICLONE: libuv tries the FICLONE ioctl (a
// reflink on btrfs/xfs, no data copied) and falls back to copy_file_range / sendfile,
// so the bytes never pass through user space.

import * as fs from 'fs';
import * as path from 'path';
import { BlobDir, tempName } from './blobs';
import { digestFileAsync } from './digest';
import { StoreError, errnoCode, shortMessage } from './errors';

/** restored: written; missing/corrupt: nothing was written, the blob is unusable */
export type RestoreOutcome = 'restored' | 'missing' | 'corrupt';

export async function restoreBlob(blobs: BlobDir, hash: string, destination: string, mode: number): Promise<RestoreOutcome> {
  const source = blobs.pathOf(hash);
  const tmp = tempName(path.dirname(destination), '.pcache-');
  const copying = fs.promises.copyFile(source, tmp, fs.constants.COPYFILE_FICLONE | fs.constants.COPYFILE_EXCL);
  const hashing = digestFileAsync(source);
  const [copied, hashed] = await Promise.allSettled([copying, hashing]);
  try {
    if (hashed.status === 'rejected') {
      if (errnoCode(hashed.reason) === 'ENOENT') return 'missing';
      throw new StoreError('IO_ERROR', `cannot read blob ${hash}: ${shortMessage(hashed.reason)}`, { cause: hashed.reason });
    }
    if (hashed.value.hash !== hash) return 'corrupt';
    if (copied.status === 'rejected') {
      throw new StoreError('IO_ERROR', `cannot restore ${destination}: ${shortMessage(copied.reason)}`, { cause: copied.reason });
    }
    await fs.promises.chmod(tmp, mode & 0o7777);
    await fs.promises.rename(tmp, destination);
    return 'restored';
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw new StoreError('IO_ERROR', `cannot restore ${destination}: ${shortMessage(e)}`, { cause: e });
  } finally {
    // After a successful rename this is a no-op.
    await fs.promises.rm(tmp, { force: true });
  }
}
