// Promise: a half-written entry is never visible. Writers are killed with SIGKILL at
// random moments (while streaming blobs, fsyncing, inside the index transaction, during
// gc) over and over; after each round the store must open, and every visible entry
// must be complete, exactly as written, with all its blobs present and intact.

import * as fs from 'fs';
import * as path from 'path';
import { Store } from '../../cache-store/store';
import { checkSyntheticStore } from './helpers/check';
import { killWriters, startWriter } from './helpers/spawn';
import { cleanupTempDirs, makeTempDir } from './helpers/tmp';

const ROUNDS = 12;
const MAX_OUTPUT = 3 * 1024 * 1024; // big enough that blob streaming spans many chunks

afterAll(async () => {
  await killWriters();
  cleanupTempDirs();
});

function seededRandom(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
}

test('entries stay complete when writers are SIGKILLed at random moments', async () => {
  const cacheDir = path.join(makeTempDir(), 'cache');
  const scratch = makeTempDir();
  const random = seededRandom(20261121);
  let killed = 0;
  let everSeen = 0;
  for (let round = 0; round < ROUNDS; round++) {
    // Two writers share the directory; worker ids repeat across rounds so entries get
    // replaced too. The second one runs gc now and then (and may evict the first one's).
    const writers = [
      startWriter([cacheDir, round % 3, 400, MAX_OUTPUT, scratch, 0]),
      startWriter([cacheDir, 10 + (round % 2), 400, MAX_OUTPUT, scratch, 7, 40 * 1024 * 1024]),
    ];
    await Promise.all(writers.map((w) => w.ready));
    await Promise.all(
      writers.map(async (w) => {
        await new Promise((r) => setTimeout(r, Math.floor(random() * 700)));
        w.child.kill('SIGKILL');
        const { signal, code } = await w.exited;
        if (signal === 'SIGKILL') killed++;
        // A writer that finished before the kill must have succeeded.
        else expect({ code, stderr: w.stderr }).toEqual({ code: 0, stderr: '' });
      }),
    );
    const store = Store.open(cacheDir, { onProblem: (p) => fail(p.message) });
    try {
      const { entries } = checkSyntheticStore(store, MAX_OUTPUT);
      everSeen += entries;
    } finally {
      store.close();
    }
  }
  expect(killed).toBeGreaterThanOrEqual(ROUNDS);
  expect(everSeen).toBeGreaterThan(0);

  // Leftovers of killed writers are unreferenced temp and blob files only; verify finds
  // nothing wrong and gc (with no grace period) removes them.
  const store = Store.open(cacheDir);
  try {
    const report = await store.verify();
    expect({ corrupt: report.corrupt, missing: report.missing, index: report.indexProblems }).toEqual({ corrupt: [], missing: [], index: [] });
    store.gc({ maxBytes: Number.MAX_SAFE_INTEGER, orphanGraceMs: 0 });
    expect((await store.verify()).orphanFiles).toBe(0);
    expect(fs.readdirSync(path.join(cacheDir, 'tmp'))).toEqual([]);
    checkSyntheticStore(store, MAX_OUTPUT);
  } finally {
    store.close();
  }
}, 300000); // several processes: longer than the default timeout on a loaded machine
