// Content digests: BLAKE3, 256 bits, lowercase hex. Blob names, input hashes and the
// hash cache all use this one function, so a digest means the same thing everywhere.

import * as fs from 'fs';
import { Blake3Hasher, blake3 } from '@napi-rs/blake-hash';

export const DIGEST_ALGORITHM = 'blake3-256';
const DIGEST_RE = /^[0-9a-f]{64}$/;

/** Large enough to amortise syscalls, small enough to stay in L2/L3 while hashing. */
export const CHUNK_SIZE = 1 << 20;

export function isDigest(text: string): boolean {
  return DIGEST_RE.test(text);
}

export function digestBytes(bytes: Uint8Array | string): string {
  return blake3(bytes).toString('hex');
}

export function newHasher(): Blake3Hasher {
  return new Blake3Hasher();
}

/** Reads an open fd from offset 0 to EOF, hashing. Returns digest and bytes read. */
export function digestFdSync(fd: number, buffer: Buffer = Buffer.allocUnsafe(CHUNK_SIZE)): { hash: string; size: number } {
  const hasher = new Blake3Hasher();
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
    const hasher = new Blake3Hasher();
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
