// Content digests: BLAKE3, 256 bits, lowercase hex. Blob names, input hashes and the
// hash cache all use this one function, so a digest means the same thing everywhere.

import * as fs from 'fs';
import type { Blake3Hasher } from '@napi-rs/blake-hash';

// Loaded on first use: the native module costs about 11 ms to load, which every command
// that never hashes (`pcache trace`, `--help`) would pay at startup.
let blakeModule: typeof import('@napi-rs/blake-hash') | undefined;
function blake(): typeof import('@napi-rs/blake-hash') {
  return (blakeModule ??= require('@napi-rs/blake-hash') as typeof import('@napi-rs/blake-hash'));
}

export const DIGEST_ALGORITHM = 'blake3-256';
const DIGEST_RE = /^[0-9a-f]{64}$/;

/** Large enough to amortise syscalls, small enough to stay in L2/L3 while hashing. */
export const CHUNK_SIZE = 1 << 20;

export function isDigest(text: string): boolean {
  return DIGEST_RE.test(text);
}

export function digestBytes(bytes: Uint8Array | string): string {
  return blake().blake3(bytes).toString('hex');
}

/** The digest of the bytes of `pieces` one after another (not joined into one buffer). */
export function digestPieces(pieces: readonly Uint8Array[]): string {
  if (pieces.length === 1) return digestBytes(pieces[0]);
  const hasher = newHasher();
  for (const p of pieces) hasher.update(p);
  return hasher.digest('hex');
}

export function newHasher(): Blake3Hasher {
  return new (blake().Blake3Hasher)();
}

/** Reads an open fd from offset 0 to EOF, hashing. Returns digest and bytes read. */
export function digestFdSync(fd: number, buffer: Buffer = Buffer.allocUnsafe(CHUNK_SIZE)): { hash: string; size: number } {
  const hasher = new (blake().Blake3Hasher)();
  let position = 0;
  for (;;) {
    const n = fs.readSync(fd, buffer, 0, buffer.length, position);
    if (n === 0) break;
    hasher.update(buffer.subarray(0, n));
    position += n;
  }
  return { hash: hasher.digest('hex'), size: position };
}

/**
 * Async version that keeps one read in flight while the previous chunk is hashed, so
 * the kernel copy and the hashing overlap on two cores.
 */
export async function digestFileAsync(file: string): Promise<{ hash: string; size: number }> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const hasher = new (blake().Blake3Hasher)();
    const buffers = [Buffer.allocUnsafe(CHUNK_SIZE * 4), Buffer.allocUnsafe(CHUNK_SIZE * 4)];
    let position = 0;
    let i = 0;
    let pending = fh.read(buffers[0], 0, buffers[0].length, 0);
    for (;;) {
      const { bytesRead } = await pending;
      if (bytesRead === 0) break;
      const current = buffers[i & 1];
      position += bytesRead;
      i++;
      pending = fh.read(buffers[i & 1], 0, buffers[i & 1].length, position);
      pending.catch(() => undefined); // awaited on the next turn; no unhandled rejection meanwhile
      hasher.update(current.subarray(0, bytesRead));
    }
    return { hash: hasher.digest('hex'), size: position };
  } finally {
    await fh.close();
  }
}

/** Pieces small enough that a piece read is still in the core's L2 cache when it is hashed. */
const PIECE_SIZE = 512 * 1024;
/** Pieces hashed between two turns of the event loop (about a millisecond of work). */
const PIECES_PER_TURN = 8;

/**
 * Hashes a file on this thread alone, for when the other core is busy (restore runs it
 * beside the kernel copy). Reads synchronously in L2-sized pieces and yields to the
 * event loop every 4 MiB, so tracer decisions are not held up. Beside a copy of 1 GiB
 * this measured 356 ms against 466 ms for digestFileAsync (median of 9): the thread-pool
 * reads of the latter compete with the copy for the second core, and a 4 MiB buffer is
 * read back from memory, not from cache, when it is hashed.
 */
export async function digestFileBesideCopy(file: string): Promise<{ hash: string; size: number }> {
  // O_NONBLOCK: this runs on the JS thread, where a FIFO put in a blob's place must not hang
  // pcache in open(); it reads as empty and fails the digest instead.
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const hasher = new (blake().Blake3Hasher)();
    const buffer = Buffer.allocUnsafe(PIECE_SIZE);
    let position = 0;
    for (;;) {
      let n = 0;
      for (let k = 0; k < PIECES_PER_TURN; k++) {
        n = fs.readSync(fd, buffer, 0, PIECE_SIZE, position);
        if (n === 0) break;
        hasher.update(buffer.subarray(0, n));
        position += n;
      }
      if (n === 0) break;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return { hash: hasher.digest('hex'), size: position };
  } finally {
    fs.closeSync(fd);
  }
}
