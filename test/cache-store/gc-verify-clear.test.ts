import * as fs from 'fs';
import * as path from 'path';
import { NewEntry } from '../../cache-store/entry';
import { Store } from '../../cache-store/store';
import { cleanupTempDirs, makeTempDir } from './helpers/tmp';

afterAll(cleanupTempDirs);

const MiB = 1024 * 1024;

function open(): Store {
  return Store.open(path.join(makeTempDir(), 'cache'), { onProblem: (p) => fail(p.message) });
}

function filled(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 251) b[i] = (seed * 31 + i) & 0xff;
  b.writeUInt32LE(seed, 0);
  return b;
}

const SHARED = Buffer.from('shared by every entry\n');

function bigEntry(i: number, extra: Partial<NewEntry> = {}): NewEntry {
  return {
    commandKey: `key-${i}`,
    exitStatus: 0,
    durationMs: 1,
    inputs: [],
    outputs: [
      { path: `/out/${i}`, kind: 'content', mode: 0o644, source: { bytes: filled(MiB, i) } },
      { path: `/out/shared`, kind: 'content', mode: 0o644, source: { bytes: SHARED } },
    ],
    ...extra,
  };
}

/** Every entry's blobs exist and are intact: no entry points to an evicted blob. */
function expectAllEntriesComplete(store: Store): number[] {
  const ids: number[] = [];
  for (let i = 0; i < 100; i++) {
    for (const c of store.candidates(`key-${i}`)) {
      ids.push(i);
      const e = store.getEntry(c.id)!;
      for (const o of e.outputs) if (o.hash) expect({ i, hash: o.hash, state: store.blobs.checkSync(o.hash) }).toEqual({ i, hash: o.hash, state: 'ok' });
    }
  }
  return ids;
}

/** Ten 1 MiB entries, used at t=1..9 s except entry 0, used last. */
async function tenEntries(store: Store): Promise<string[]> {
  const unique: string[] = [];
  const base = Date.now();
  for (let i = 0; i < 10; i++) {
    const p = await store.publishEntry(bigEntry(i));
    unique.push(p.outputs[0].hash!);
    store.markUsed(p.id, base + 1000 * (i + 1));
  }
  store.markUsed(store.candidates('key-0')[0].id, base + 100_000);
  return unique;
}

describe('gc', () => {
  test('evicts least recently used entries until under the limit, keeping shared blobs', async () => {
    const store = open();
    const unique = await tenEntries(store);
    const indexBytes = store.stats().indexBytes;
    const limit = indexBytes + SHARED.length + 4.5 * MiB;
    const report = store.gc({ maxBytes: limit });
    expect(report).toMatchObject({ dryRun: false, entriesEvicted: 6, blobsRemoved: 6, blobBytesFreed: 6 * MiB });
    expect(expectAllEntriesComplete(store).sort()).toEqual([0, 7, 8, 9]);
    for (const i of [1, 2, 3, 4, 5, 6]) expect(fs.existsSync(store.blobs.pathOf(unique[i]))).toBe(false);
    for (const i of [0, 7, 8, 9]) expect(fs.existsSync(store.blobs.pathOf(unique[i]))).toBe(true);
    const stats = store.stats();
    expect(stats.blobBytes).toBe(4 * MiB + SHARED.length);
    expect(stats.totalBytes).toBeLessThanOrEqual(limit);
    expect([...store.blobs.list()].length).toBe(5);
    store.close();
  });

  test('--dry-run reports the same plan and changes nothing', async () => {
    const store = open();
    await tenEntries(store);
    const before = store.stats();
    const files = [...store.blobs.list()].map((f) => f.hash).sort();
    const report = store.gc({ maxBytes: before.indexBytes + SHARED.length + 4.5 * MiB, dryRun: true });
    expect(report).toMatchObject({ dryRun: true, entriesEvicted: 6, blobsRemoved: 6, blobBytesFreed: 6 * MiB });
    expect(store.stats()).toMatchObject({ entries: 10, blobs: 11, blobBytes: before.blobBytes });
    expect([...store.blobs.list()].map((f) => f.hash).sort()).toEqual(files);
    expect(expectAllEntriesComplete(store)).toHaveLength(10);
    store.close();
  });

  test('a limit of 0 empties the cache; a generous limit removes only unreferenced blobs', async () => {
    const store = open();
    const a = await store.publishEntry(bigEntry(1));
    await store.publishEntry(bigEntry(2));
    store.deleteEntry(a.id);
    let report = store.gc({ maxBytes: 100 * 1024 * MiB });
    expect(report).toMatchObject({ entriesEvicted: 0, blobsRemoved: 1, blobBytesFreed: MiB });
    expect(expectAllEntriesComplete(store)).toEqual([2]);
    report = store.gc({ maxBytes: 0 });
    expect(report).toMatchObject({ entriesEvicted: 1, blobsRemoved: 2 });
    expect(store.stats()).toMatchObject({ entries: 0, blobs: 0, blobBytes: 0 });
    expect([...store.blobs.list()]).toEqual([]);
    store.close();
  });

  test('orphaned blob files are swept only after the grace period', async () => {
    const store = open();
    const orphan = store.storeBytes(Buffer.from('stored, never published'));
    expect(store.gc({ maxBytes: 1024 * MiB }).orphanFilesRemoved).toBe(0);
    expect(store.blobs.has(orphan.hash)).toBe(true);
    expect(store.gc({ maxBytes: 1024 * MiB, orphanGraceMs: 0 }).orphanFilesRemoved).toBe(1);
    expect(store.blobs.has(orphan.hash)).toBe(false);
    store.close();
  });

  test('hash cache rows older than 30 days are pruned', () => {
    const store = open();
    const stamp = { dev: 1n, ino: 2n, size: 3n, mtimeNs: 4n, ctimeNs: 5n };
    const day = 24n * 3600n * 1_000_000_000n;
    const now = BigInt(Date.now()) * 1_000_000n;
    store.hashCache.record('/old', stamp, 'a'.repeat(64), now - 31n * day);
    store.hashCache.record('/recent', stamp, 'b'.repeat(64), now - 29n * day);
    expect(store.gc({ maxBytes: 1024 * MiB, dryRun: true }).hashCacheRowsPruned).toBe(1);
    expect(store.stats().hashCacheRows).toBe(2);
    expect(store.gc({ maxBytes: 1024 * MiB }).hashCacheRowsPruned).toBe(1);
    expect(store.hashCache.lookup('/old', stamp)).toBeUndefined();
    expect(store.hashCache.lookup('/recent', stamp)?.hash).toBe('b'.repeat(64));
    store.close();
  });

  test('an invalid limit is refused', () => {
    const store = open();
    expect(() => store.gc({ maxBytes: NaN })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    store.close();
  });
});

describe('verify', () => {
  test('drops corrupt and missing blobs and exactly the entries that need them', async () => {
    const problems: string[] = [];
    const store = Store.open(path.join(makeTempDir(), 'cache'), { onProblem: (p) => problems.push(p.message) });
    const e1 = await store.publishEntry(bigEntry(1));
    const e2 = await store.publishEntry(bigEntry(2, { stdout: { bytes: Buffer.from('e2 stdout') } }));
    const e3 = await store.publishEntry(bigEntry(3));
    const corrupt = e1.outputs[0].hash!;
    const missing = e2.stdoutHash!;
    const file = store.blobs.pathOf(corrupt);
    fs.chmodSync(file, 0o644);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([0xff]), 0, 1, 12345); // one flipped byte, same size
    fs.closeSync(fd);
    store.blobs.remove(missing);

    const report = await store.verify();
    expect(report).toEqual({
      blobsChecked: 5,
      bytesChecked: 2 * MiB + SHARED.length,
      corrupt: [corrupt],
      missing: [missing],
      entriesDropped: 2,
      orphanFiles: 0,
      indexProblems: [],
    });
    expect(problems).toEqual([]); // verify reports through its result, not as warnings
    expect(store.getEntry(e1.id)).toBeUndefined();
    expect(store.getEntry(e2.id)).toBeUndefined();
    expect(store.getEntry(e3.id)).toBeDefined();
    expect(fs.existsSync(file)).toBe(false);
    expect(expectAllEntriesComplete(store)).toEqual([3]);

    const again = await store.verify();
    expect(again).toMatchObject({ corrupt: [], missing: [], entriesDropped: 0 });
    store.close();
  });
});

describe('clear', () => {
  test('removes entries, blobs, runs and hash cache; the store stays usable', async () => {
    const store = open();
    await store.publishEntry(bigEntry(1));
    const run = store.recordRun({ command: 'x', cwd: '/' });
    store.recordRunExecution(run, { outcome: 'miss' });
    const report = store.clear();
    expect(report).toEqual({ entriesRemoved: 1, blobsRemoved: 2, bytesRemoved: MiB + SHARED.length });
    expect(store.stats()).toMatchObject({ entries: 0, blobs: 0, runs: 0, hits: 0, misses: 0, hashCacheRows: 0 });
    expect([...store.blobs.list()]).toEqual([]);
    const again = await store.publishEntry(bigEntry(2));
    expect(store.readBlob(again.outputs[1].hash!)!.equals(SHARED)).toBe(true);
    store.close();
    // And it reopens fine (the tag and index are consistent).
    const reopened = Store.open(store.dir);
    expect(reopened.stats().entries).toBe(1);
    reopened.close();
  });
});
