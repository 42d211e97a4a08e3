// Deterministic entries for the multi-process tests: the writer publishes
// syntheticEntry(worker, i) and the checker recomputes it, so every visible entry can be
// compared field by field and byte by byte with what was meant to be written.

import * as fs from 'fs';
import * as path from 'path';
import { digestBytes } from '../../../cache-store/digest';
import type { InputRecord, NewEntry } from '../../../cache-store/entry';

export function commandKeyOf(worker: number, i: number): string {
  return Buffer.from(`w${worker}-${i}`).toString('hex');
}

export function parseCommandKey(key: string): { worker: number; i: number } {
  const m = /^w(\d+)-(\d+)$/.exec(Buffer.from(key, 'hex').toString());
  if (!m) throw new Error(`not a synthetic key: ${key}`);
  return { worker: Number(m[1]), i: Number(m[2]) };
}

/** xorshift32 bytes: cheap, deterministic, incompressible enough. */
function pseudoRandomBytes(seed: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed | 0 || 1;
  for (let j = 0; j < length; j++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[j] = x & 0xff;
  }
  return out;
}

export function outputCount(i: number): number {
  return 1 + (i % 4);
}

export function inputCount(i: number): number {
  return 1 + (i % 20);
}

/** Output k of entry (worker, i). Output 0 is shared between workers (dedupe under contention). */
export function outputBytes(worker: number, i: number, k: number, maxSize: number): Buffer {
  if (k === 0) return Buffer.from(`shared output ${i % 7}\n`);
  const size = 1 + ((i * 7919 + k * 104729 + worker * 31) % maxSize);
  return pseudoRandomBytes(worker * 1_000_003 + i * 101 + k + 1, size);
}

export function stdoutBytes(worker: number, i: number): Buffer {
  return Buffer.from(`stdout of worker ${worker} entry ${i}\n`);
}

export function syntheticInputs(worker: number, i: number): InputRecord[] {
  const inputs: InputRecord[] = [];
  for (let k = 0; k < inputCount(i); k++) {
    const p = `/synthetic/w${worker}/${i}/in${k}`;
    if (k % 4 === 3) {
      inputs.push({ path: p, kind: 'absent' });
      continue;
    }
    inputs.push({
      path: p,
      kind: 'content',
      type: 'file',
      dev: 2049n,
      // above 2^63: must survive the signed 64-bit round trip
      ino: 0xfedcba9876543210n + BigInt(i * 100 + k),
      size: BigInt(k * 10),
      mtimeNs: 1_700_000_000_000_000_000n + BigInt(i),
      ctimeNs: 1_700_000_000_000_000_001n + BigInt(i),
      mode: 0o644,
      hash: digestBytes(`input ${worker} ${i} ${k}`),
      verifiedAtNs: 1_700_000_100_000_000_000n,
    });
  }
  return inputs;
}

/**
 * The entry as the writer publishes it. Output 1 (when present) goes through the
 * file path (one-pass streaming store); the others are in-memory bytes.
 */
export function syntheticEntry(worker: number, i: number, maxSize: number, scratchDir: string): NewEntry {
  const outputs: NewEntry['outputs'] = [];
  for (let k = 0; k < outputCount(i); k++) {
    const bytes = outputBytes(worker, i, k, maxSize);
    const p = `/synthetic/w${worker}/${i}/out${k}`;
    if (k === 1) {
      const file = path.join(scratchDir, `w${worker}-out-${i}`);
      fs.writeFileSync(file, bytes);
      outputs.push({ path: p, kind: 'content', mode: 0o600 + k, source: { file } });
    } else {
      outputs.push({ path: p, kind: 'content', mode: 0o600 + k, source: { bytes } });
    }
  }
  return {
    commandKey: commandKeyOf(worker, i),
    exitStatus: i % 3,
    stdout: { bytes: stdoutBytes(worker, i) },
    stderr: i % 2 === 0 ? { bytes: Buffer.from(`err ${i}\n`) } : null,
    durationMs: i + 0.5,
    inputs: syntheticInputs(worker, i),
    outputs,
  };
}
