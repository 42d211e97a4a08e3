import * as fs from 'fs';
import * as path from 'path';
import { digestBytes } from '../../cache-store/digest';
import { kernelHasMultigrain } from '../../cache-store/fs-type';
import { RACY_WINDOW_NS, stampOf } from '../../cache-store/hash-cache';
import { Store } from '../../cache-store/store';
import { cleanupTempDirs, makeTempDir } from './helpers/tmp';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FAKE = 'f'.repeat(64);

let store: Store;
let work: string;
let settled: string;
let settledOutput: string;

beforeAll(async () => {
  // The racy-file guard as on file systems without multigrain timestamps.
  store = Store.open(path.join(makeTempDir(), 'cache'), { timestamps: 'coarse' });
  work = makeTempDir();
  settled = path.join(work, 'settled.txt');
  fs.writeFileSync(settled, 'settled content\n');
  settledOutput = path.join(work, 'settled-output.bin');
  fs.writeFileSync(settledOutput, Buffer.alloc(100_000, 2));
  // Let mtime and ctime fall outside the racy window.
  await sleep(Number(RACY_WINDOW_NS / 1_000_000n) + 300);
});

afterAll(() => {
  store.close();
  cleanupTempDirs();
});

/** Rows written to the index (a Store writes recorded digests with its next transaction). */
function rowCount(file: string, of: Store = store): number {
  const db = (of as unknown as { db: import('better-sqlite3').Database }).db;
  return (db.prepare(`SELECT count(*) AS n FROM hash_cache WHERE path = ?`).get(file) as { n: number }).n;
}

describe('hash cache', () => {
  test('a settled file is read once, then answered from the cache until it changes', () => {
    const first = store.hashCache.hashFile(settled)!;
    expect(first).toMatchObject({ hash: digestBytes('settled content\n'), cached: false });
    store.flushPending();
    expect(rowCount(settled)).toBe(1);
    const second = store.hashCache.hashFile(settled)!;
    expect(second).toMatchObject({ hash: first.hash, cached: true });

    fs.writeFileSync(settled, 'SETTLED CONTENT\n'); // same size, new mtime/ctime
    const third = store.hashCache.hashFile(settled)!;
    expect(third).toMatchObject({ hash: digestBytes('SETTLED CONTENT\n'), cached: false });
    // Still racy: read again (the stale row for the old stamp is never used).
    expect(store.hashCache.hashFile(settled)).toMatchObject({ hash: digestBytes('SETTLED CONTENT\n'), cached: false });
  });

  test('racy-file guard: a file modified just before hashing is never cached', () => {
    const fresh = path.join(work, 'fresh.txt');
    fs.writeFileSync(fresh, 'fresh\n');
    expect(store.hashCache.hashFile(fresh)).toMatchObject({ hash: digestBytes('fresh\n'), cached: false });
    expect(rowCount(fresh)).toBe(0);
    expect(store.hashCache.hashFile(fresh)).toMatchObject({ cached: false });
  });

  test('racy-file guard: a digest taken within the window of mtime/ctime is not trusted', () => {
    const file = path.join(work, 'guarded.txt');
    fs.writeFileSync(file, 'real content\n');
    const st = fs.statSync(file, { bigint: true });
    // Hashed 1 ms after the last modification: a same-second rewrite could keep the stamp.
    expect(store.hashCache.record(file, stampOf(st), FAKE, st.mtimeNs + 1_000_000n)).toBe(false);
    expect(store.hashCache.lookup(file, stampOf(st))).toBeUndefined();
    expect(store.hashCache.hashFile(file)!.hash).toBe(digestBytes('real content\n'));

    // Hashed well after: the stamp is trusted (so the fake digest proves the cache answered).
    expect(store.hashCache.record(file, stampOf(st), FAKE, st.ctimeNs + RACY_WINDOW_NS + 1n)).toBe(true);
    expect(store.hashCache.hashFile(file)).toMatchObject({ hash: FAKE, cached: true });
  });

  test('a cached digest is not used when any stat field differs', () => {
    const file = path.join(work, 'stamped.txt');
    fs.writeFileSync(file, 'abc\n');
    const st = stampOf(fs.statSync(file, { bigint: true }));
    store.hashCache.record(file, st, FAKE, st.ctimeNs + RACY_WINDOW_NS + 1n);
    expect(store.hashCache.lookup(file, st)?.hash).toBe(FAKE);
    for (const changed of [
      { ...st, ino: st.ino + 1n },
      { ...st, dev: st.dev + 1n },
      { ...st, size: st.size + 1n },
      { ...st, mtimeNs: st.mtimeNs + 1n },
      { ...st, ctimeNs: st.ctimeNs + 1n },
    ]) {
      expect(store.hashCache.lookup(file, changed)).toBeUndefined();
    }
    expect(store.hashCache.lookup(path.join(work, 'other-path'), st)).toBeUndefined();
  });

  test('inode numbers above 2^63 round-trip through SQLite', () => {
    const file = path.join(work, 'big-inode');
    const st = { dev: 0xffffffffffffff00n, ino: 0xfedcba9876543210n, size: 3n, mtimeNs: 1n, ctimeNs: 2n };
    expect(store.hashCache.record(file, st, FAKE, 10n ** 18n)).toBe(true);
    expect(store.hashCache.lookup(file, st)?.hash).toBe(FAKE);
  });

  test('storing a settled file records its digest, so the next lookup needs no read', async () => {
    const stored = await store.storeFile(settledOutput);
    store.flushPending();
    expect(rowCount(settledOutput)).toBe(1);
    expect(store.hashCache.hashFile(settledOutput)).toMatchObject({ hash: stored.hash, cached: true });
  });

  test('storing a file whose ctime is fresh caches nothing, even if its mtime is old', async () => {
    const file = path.join(work, 'output.bin');
    fs.writeFileSync(file, Buffer.alloc(100_000, 1));
    const past = new Date(Date.now() - 10_000);
    fs.utimesSync(file, past, past); // sets ctime to now
    await store.storeFile(file);
    expect(rowCount(file)).toBe(0);
  });
});

describe('digests recorded through a Store are written with its next write transaction', () => {
  const st = { dev: 7n, ino: 8n, size: 3n, mtimeNs: 1n, ctimeNs: 2n };
  const late = 10n ** 18n; // hashed long after its stamp: settled

  test('answered at once from memory; written by an entry\'s transaction, not by one of their own', async () => {
    const dir = makeTempDir();
    const s = Store.open(path.join(dir, 'cache'));
    try {
      const file = path.join(dir, 'a');
      expect(s.hashCache.record(file, st, FAKE, late)).toBe(true);
      expect(s.hashCache.lookup(file, st)).toEqual({ hash: FAKE, hashedAtNs: late });
      expect(rowCount(file, s)).toBe(0);
      // A transaction that rolls back (a blob the entry names is missing) leaves it kept back.
      const entry = { commandKey: 'k', exitStatus: 0, stdout: { hash: FAKE }, stderr: null, durationMs: 1, inputs: [], outputs: [] };
      await expect(s.publishEntry(entry)).rejects.toMatchObject({ code: 'BLOB_MISSING' });
      expect(rowCount(file, s)).toBe(0);
      expect(s.hashCache.pendingRows).toBe(1);
      const blob = s.storeBytes(Buffer.from('out'));
      await s.publishEntry({ ...entry, stdout: { hash: blob.hash } });
      expect(rowCount(file, s)).toBe(1);
      expect(s.hashCache.pendingRows).toBe(0);
    } finally {
      s.close();
    }
  });

  test('what is still kept back when the store closes is written then', () => {
    const dir = makeTempDir();
    const file = path.join(dir, 'b');
    const s = Store.open(path.join(dir, 'cache'));
    s.hashCache.record(file, st, FAKE, late);
    s.close();
    const again = Store.open(path.join(dir, 'cache'));
    try {
      expect(rowCount(file, again)).toBe(1);
      expect(again.hashCache.lookup(file, st)?.hash).toBe(FAKE);
    } finally {
      again.close();
    }
  });

  test('past 512 kept-back rows they are written in a transaction of their own', () => {
    const dir = makeTempDir();
    const s = Store.open(path.join(dir, 'cache'));
    try {
      for (let i = 0; i < 511; i++) s.hashCache.record(path.join(dir, `f${i}`), st, FAKE, late);
      expect(s.hashCache.pendingRows).toBe(511);
      expect(rowCount(path.join(dir, 'f0'), s)).toBe(0);
      s.hashCache.record(path.join(dir, 'f511'), st, FAKE, late);
      expect(s.hashCache.pendingRows).toBe(0);
      expect(rowCount(path.join(dir, 'f0'), s) + rowCount(path.join(dir, 'f511'), s)).toBe(2);
    } finally {
      s.close();
    }
  });
});

describe('hash cache where timestamps are multigrain', () => {
  // Linux 6.13+ on ext4/XFS/Btrfs/tmpfs: the first change after a stat gets a ctime of its
  // own, so a digest of a file written a moment ago can be cached at once. Checked on the
  // machine's own kernel and temp file system: where that does not hold, the guard applies.
  test('a fresh file is cached at once, and a same-size rewrite right after is still seen', () => {
    const auto = Store.open(path.join(makeTempDir(), 'cache'));
    try {
      const file = path.join(work, 'fresh-multigrain.txt');
      fs.writeFileSync(file, 'one\n');
      const st = fs.statSync(file, { bigint: true });
      const fine = kernelHasMultigrain() && [0xef53, 0x58465342, 0x9123683e, 0x01021994].includes(fs.statfsSync(file).type >>> 0);
      expect(auto.hashCache.hashFile(file)).toMatchObject({ hash: digestBytes('one\n'), cached: false });
      expect(auto.hashCache.hashFile(file)).toMatchObject({ hash: digestBytes('one\n'), cached: fine });
      fs.writeFileSync(file, 'two\n'); // same size, within the same clock tick
      expect(fs.statSync(file, { bigint: true }).size).toBe(st.size);
      expect(auto.hashCache.hashFile(file)).toMatchObject({ hash: digestBytes('two\n'), cached: false });
    } finally {
      auto.close();
    }
  });
});
