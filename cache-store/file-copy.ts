// The kernel-side file copy restore uses, from the pcache_fileops addon
// (native/src/file_copy.cc): a new O_EXCL file filled by reflink, copy_file_range or
// read/write, given its mode. fs.copyFile is not used because libuv truncates the
// destination first, and on ext4 a truncate to 0 makes close() start writeback of
// the whole file inside the call (0.26 s of a 0.5 s copy of 1 GiB).

import * as path from 'path';
import { StoreError } from './errors';

interface FileOps {
  /** Rejects with an Error carrying .code (errno name) and .syscall, like Node's fs. */
  copyFile(source: string, destination: string, mode: number): Promise<void>;
  /** An unnamed file (O_TMPFILE) in directory holding the copy: its fd, or -1 where none can be made. */
  copyAnonymous(source: string, directory: string, mode: number): Promise<number>;
  /** Gives that file a name (which must not exist); throws like copyFile rejects. */
  linkAnonymous(fd: number, path: string): void;
  /** temp (O_EXCL, mode) gets the pieces, then is renamed to destination; rejects like copyFile. */
  writeFile(temp: string, destination: string, pieces: Buffer[], mode: number, durable: boolean): Promise<void>;
}

let loaded: FileOps | undefined;

function fileOps(): FileOps {
  if (loaded) return loaded;
  // The project root is an ancestor: cache-store/ under ts-jest, dist/cache-store when
  // built, deeper for the benchmarks' own builds.
  const candidates: string[] = [];
  for (let dir = path.resolve(__dirname, '..'); candidates.length < 5; dir = path.dirname(dir)) {
    candidates.push(path.join(dir, 'native', 'build', 'Release', 'pcache_fileops.node'));
    if (dir === path.dirname(dir)) break;
  }
  let last: unknown;
  for (const file of candidates) {
    try {
      loaded = require(file) as FileOps;
      return loaded;
    } catch (e) {
      last = e;
    }
  }
  throw new StoreError('IO_ERROR', `native file operations not built (run \`make build\`): ${(last as Error).message}`);
}

/** Creates destination (which must not exist) as a copy of source with exactly this mode. */
export function copyNewFile(source: string, destination: string, mode: number): Promise<void> {
  return fileOps().copyFile(source, destination, mode & 0o7777);
}

/**
 * A copy of source with exactly this mode in an unnamed file of `directory` (O_TMPFILE):
 * nothing shows in the directory until linkAnonymous names it, so a pcache killed before
 * then leaves nothing behind there. null where the file system cannot make unnamed files.
 * The caller owns the fd.
 */
export async function copyAnonymous(source: string, directory: string, mode: number): Promise<number | null> {
  const fd = await fileOps().copyAnonymous(source, directory, mode & 0o7777);
  return fd < 0 ? null : fd;
}

/** Names the file behind copyAnonymous's fd `path`, which must not exist. */
export function linkAnonymous(fd: number, path: string): void {
  fileOps().linkAnonymous(fd, path);
}

/**
 * Writes the pieces one after another into a new file `temp` with this mode (fdatasynced when
 * durable) and renames it to `destination`, making destination's directory if it is missing:
 * one trip through the thread pool. temp is removed on failure.
 */
export function writeNewFile(temp: string, destination: string, pieces: readonly Uint8Array[], mode: number, durable: boolean): Promise<void> {
  const buffers = pieces.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
  return fileOps().writeFile(temp, destination, buffers, mode & 0o7777, durable);
}
