// Input manifest: all inputs of one entry packed in one binary value, stored in
// entries.inputs_manifest, the only copy of them (schema 3 dropped the row-per-input
// table). A lookup reads one value instead of a thousand rows, and the checker compares
// stat fields straight from the buffer; a full InputRecord is only decoded for an input
// whose stat differs, or for a report (Store.entryInputs).
//
// Format (little endian), MANIFEST_VERSION 1:
//   header  "PCIM"  u8 version  u8[3] zero  u32 count
//   record  u8 kind (INPUT_KINDS index)  u8 flags  u8 type (FILE_TYPES index, 255 none)  u8 zero
//           u32 mode (0xffffffff none)  u32 path byte length  path (UTF-8)
//           flags & HAS_STAMP:  u64 dev  u64 ino  u64 size  i64 mtime_ns  i64 ctime_ns  i64 verified_at_ns
//                               f64 dev  f64 ino  f64 size  f64 mtime_ms  f64 ctime_ms
//             (the f64 copies are what fs.statSync() without bigint reports, see FAST)
//           flags & HAS_SIZE (without a stamp):  u64 size
//           flags & HAS_HASH:   u32 byte length, UTF-8 (a symlink target, or any non-digest text)
//           flags & HASH_BIN:   32 bytes (a hex BLAKE3 digest, stored as binary)
//   flags: 1 HAS_STAMP, 2 FAST, 4 HAS_HASH, 8 HAS_SIZE, 16 HASH_BIN
//   FAST: the stamp was settled when recorded (hash-cache.ts), so an identical stat proves
//   the input unchanged; and dev/ino/size are below 2^53, so the f64 copies are exact and
//   can be compared with a plain (non-BigInt) stat. The f64 times lose precision below a
//   microsecond, which cannot matter: any later change to a settled file moves mtime or
//   ctime by more than the racy window.
//
// History:
//   1 - first version.

import type { Stats } from 'fs';
import { FileType, InputKind, InputRecord, INPUT_KINDS } from './entry';
import { StoreError } from './errors';
import { isSettled } from './hash-cache';

export const MANIFEST_VERSION = 1;
const MAGIC = 0x4d494350; // "PCIM" read as u32 LE
const HEADER = 12;
const HAS_STAMP = 1;
const FAST = 2;
const STAMP_BYTES = 88;
const HAS_HASH = 4;
const HAS_SIZE = 8;
const HASH_BIN = 16;
const DIGEST_RE = /^[0-9a-f]{64}$/;
const NO_MODE = 0xffffffff;
const NO_TYPE = 255;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export const FILE_TYPES: readonly FileType[] = ['file', 'dir', 'symlink', 'fifo', 'socket', 'char', 'block'];

export function encodeManifest(inputs: readonly InputRecord[]): Buffer {
  // Two passes, one buffer: sizes and flags first, then every field written in place (a
  // buffer per field and a concat cost several times more, on every stored execution).
  const flagsOf = new Uint8Array(inputs.length);
  const pathLength = new Uint32Array(inputs.length);
  const hashLength = new Uint32Array(inputs.length);
  let total = HEADER;
  inputs.forEach((input, i) => {
    const binary = input.hash != null && DIGEST_RE.test(input.hash);
    const { dev, ino, size, mtimeNs, ctimeNs } = input;
    const hasStamp = dev != null && ino != null && size != null && mtimeNs != null && ctimeNs != null;
    let flags = 0;
    if (hasStamp) {
      flags |= HAS_STAMP;
      const verifiedAt = input.verifiedAtNs ?? 0n;
      const safe = (v: bigint) => v >= 0n && v <= MAX_SAFE;
      if (verifiedAt > 0n && isSettled({ dev, ino, size, mtimeNs, ctimeNs }, verifiedAt) && safe(dev) && safe(ino) && safe(size)) {
        flags |= FAST;
      }
    } else if (size != null) flags |= HAS_SIZE;
    if (input.hash != null) flags |= binary ? HASH_BIN : HAS_HASH;
    flagsOf[i] = flags;
    pathLength[i] = Buffer.byteLength(input.path, 'utf8');
    total += 12 + pathLength[i];
    if (flags & HAS_STAMP) total += STAMP_BYTES;
    else if (flags & HAS_SIZE) total += 8;
    if (flags & HASH_BIN) total += 32;
    else if (flags & HAS_HASH) {
      hashLength[i] = Buffer.byteLength(input.hash!, 'utf8');
      total += 4 + hashLength[i];
    }
  });
  const out = Buffer.alloc(total);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt8(MANIFEST_VERSION, 4);
  out.writeUInt32LE(inputs.length, 8);
  let at = HEADER;
  inputs.forEach((input, i) => {
    const flags = flagsOf[i];
    out.writeUInt8(INPUT_KINDS.indexOf(input.kind), at);
    out.writeUInt8(flags, at + 1);
    out.writeUInt8(input.type ? FILE_TYPES.indexOf(input.type) : NO_TYPE, at + 2);
    out.writeUInt32LE(input.mode ?? NO_MODE, at + 4);
    out.writeUInt32LE(pathLength[i], at + 8);
    at += 12;
    at += out.write(input.path, at, pathLength[i], 'utf8');
    if (flags & HAS_STAMP) {
      const dev = input.dev!;
      const ino = input.ino!;
      const size = input.size!;
      out.writeBigUInt64LE(BigInt.asUintN(64, dev), at);
      out.writeBigUInt64LE(BigInt.asUintN(64, ino), at + 8);
      out.writeBigUInt64LE(BigInt.asUintN(64, size), at + 16);
      out.writeBigInt64LE(BigInt.asIntN(64, input.mtimeNs!), at + 24);
      out.writeBigInt64LE(BigInt.asIntN(64, input.ctimeNs!), at + 32);
      out.writeBigInt64LE(BigInt.asIntN(64, input.verifiedAtNs ?? 0n), at + 40);
      out.writeDoubleLE(Number(dev), at + 48);
      out.writeDoubleLE(Number(ino), at + 56);
      out.writeDoubleLE(Number(size), at + 64);
      out.writeDoubleLE(statMs(input.mtimeNs!), at + 72);
      out.writeDoubleLE(statMs(input.ctimeNs!), at + 80);
      at += STAMP_BYTES;
    } else if (flags & HAS_SIZE) {
      out.writeBigUInt64LE(BigInt.asUintN(64, input.size!), at);
      at += 8;
    }
    if (flags & HASH_BIN) {
      at += out.write(input.hash!, at, 32, 'hex');
    } else if (flags & HAS_HASH) {
      out.writeUInt32LE(hashLength[i], at);
      at += 4;
      at += out.write(input.hash!, at, hashLength[i], 'utf8');
    }
  });
  if (at !== total) throw new StoreError('INVALID_ARGUMENT', `manifest encoding wrote ${at} of ${total} bytes`);
  return out;
}

/** A cursor over an encoded manifest; reads fields of the current record in place. */
export class ManifestReader {
  readonly count: number;
  private offset = HEADER;
  // Current record:
  kind: InputKind = 'content';
  flags = 0;
  path = '';
  private typeIndex = NO_TYPE;
  private modeValue = NO_MODE;
  private stampAt = -1;
  private sizeAt = -1;
  private hashAt = -1;
  private hashLength = 0;
  private hashBinary = false;

  constructor(private readonly buf: Buffer) {
    if (buf.length < HEADER || buf.readUInt32LE(0) !== MAGIC) {
      throw new StoreError('INDEX_CORRUPT', 'damaged input manifest in the index');
    }
    const version = buf.readUInt8(4);
    if (version !== MANIFEST_VERSION) {
      throw new StoreError('INDEX_TOO_NEW', `input manifest version ${version} is not supported (this pcache reads ${MANIFEST_VERSION})`);
    }
    this.count = buf.readUInt32LE(8);
  }

  /** Moves to the next record; false at the end. */
  next(): boolean {
    const b = this.buf;
    let o = this.offset;
    if (o >= b.length) return false;
    this.kind = INPUT_KINDS[b[o]];
    this.flags = b[o + 1];
    this.typeIndex = b[o + 2];
    this.modeValue = b.readUInt32LE(o + 4);
    const pathLength = b.readUInt32LE(o + 8);
    o += 12;
    this.path = b.toString('utf8', o, o + pathLength);
    o += pathLength;
    this.stampAt = -1;
    this.sizeAt = -1;
    if (this.flags & HAS_STAMP) {
      this.stampAt = o;
      this.sizeAt = o + 16;
      o += STAMP_BYTES;
    } else if (this.flags & HAS_SIZE) {
      this.sizeAt = o;
      o += 8;
    }
    this.hashAt = -1;
    this.hashBinary = (this.flags & HASH_BIN) !== 0;
    if (this.hashBinary) {
      this.hashLength = 32;
      this.hashAt = o;
      o += 32;
    } else if (this.flags & HAS_HASH) {
      this.hashLength = b.readUInt32LE(o);
      this.hashAt = o + 4;
      o += 4 + this.hashLength;
    }
    if (this.kind === undefined || o > b.length) throw new StoreError('INDEX_CORRUPT', 'damaged input manifest in the index');
    this.offset = o;
    return true;
  }

  /** True if the record is FAST and these (non-BigInt) stat fields equal its stamp. */
  fastStampEquals(st: Stats): boolean {
    if (!(this.flags & FAST)) return false;
    const b = this.buf;
    const o = this.stampAt + 48;
    return (
      b.readDoubleLE(o + 24) === st.mtimeMs &&
      b.readDoubleLE(o + 32) === st.ctimeMs &&
      b.readDoubleLE(o + 16) === st.size &&
      b.readDoubleLE(o + 8) === st.ino &&
      b.readDoubleLE(o) === st.dev
    );
  }

  /** The current record in full. */
  record(): InputRecord {
    const b = this.buf;
    const r: InputRecord = {
      path: this.path,
      kind: this.kind,
      type: this.typeIndex === NO_TYPE ? null : FILE_TYPES[this.typeIndex],
      dev: null,
      ino: null,
      size: this.sizeAt >= 0 ? b.readBigUInt64LE(this.sizeAt) : null,
      mtimeNs: null,
      ctimeNs: null,
      mode: this.modeValue === NO_MODE ? null : this.modeValue,
      hash: this.hashAt >= 0 ? b.toString(this.hashBinary ? 'hex' : 'utf8', this.hashAt, this.hashAt + this.hashLength) : null,
      verifiedAtNs: null,
    };
    if (this.stampAt >= 0) {
      const o = this.stampAt;
      r.dev = b.readBigUInt64LE(o);
      r.ino = b.readBigUInt64LE(o + 8);
      r.mtimeNs = b.readBigInt64LE(o + 24);
      r.ctimeNs = b.readBigInt64LE(o + 32);
      const verifiedAt = b.readBigInt64LE(o + 40);
      r.verifiedAtNs = verifiedAt === 0n ? null : verifiedAt; // 0 and null both mean never verified
    }
    return r;
  }
}

/** A nanosecond time as fs.Stats reports it in milliseconds (same arithmetic, same double). */
export function statMs(ns: bigint): number {
  let sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    sec -= 1n;
  }
  return Number(sec) * 1000 + Number(nsec) / 1_000_000;
}

export function decodeManifest(buf: Buffer): InputRecord[] {
  const reader = new ManifestReader(buf);
  const out: InputRecord[] = [];
  while (reader.next()) out.push(reader.record());
  if (out.length !== reader.count) throw new StoreError('INDEX_CORRUPT', 'damaged input manifest in the index');
  return out;
}
