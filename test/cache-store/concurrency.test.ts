// Promise: several pcache processes share one cache directory. Four processes publish
// 1,000 entries each (reading back earlier ones and recording runs as they go); none
// may fail (e.g. "database is locked") and all 4,000 entries must be there, intact.
// Creating a cache is itself a race: processes started together on a directory that
// does not exist yet must all open it, and agree on one schema.

import * as path from 'path';
import { Store } from '../../cache-store/store';
import { checkSyntheticStore } from './helpers/check';
import { commandKeyOf } from './helpers/synthetic';
import { killWriters, startWriter } from './helpers/spawn';
import { cleanupTempDirs, makeTempDir } from './helpers/tmp';

const WORKERS = 4;
const ENTRIES = 1000;
const MAX_OUTPUT = 4096;

afterAll(async () => {
  await killWriters();
  cleanupTempDirs();
});

test('4 processes x 1,000 entries on one cache directory: no errors, nothing lost', async () => {
  const cacheDir = path.join(makeTempDir(), 'cache'); // created concurrently by the workers
  const scratch = makeTempDir();
  const writers = Array.from({ length: WORKERS }, (_, w) => startWriter([cacheDir, w, ENTRIES, MAX_OUTPUT, scratch]));
  const results = await Promise.all(writers.map((w) => w.exited));
  expect(results.map((r, w) => ({ w, ...r, stderr: writers[w].stderr }))).toEqual(
    writers.map((_, w) => ({ w, code: 0, signal: null, stderr: '' })),
  );

  const store = Store.open(cacheDir, { onProblem: (p) => fail(p.message) });
  try {
    const { entries, keys } = checkSyntheticStore(store, MAX_OUTPUT);
    expect(entries).toBe(WORKERS * ENTRIES);
    for (let w = 0; w < WORKERS; w++) for (let i = 0; i < ENTRIES; i++) expect(keys.has(commandKeyOf(w, i))).toBe(true);
    const stats = store.stats();
    expect(stats.runs).toBe(WORKERS);
    expect(stats.hits + stats.misses).toBe(WORKERS * ENTRIES);
    expect(stats.hits).toBe(WORKERS * (ENTRIES / 5));
  } finally {
    store.close();
  }
}, 300000); // several processes: longer than the default timeout on a loaded machine

test('8 processes creating one new cache at once, 5 times over: every one opens it', async () => {
  const base = makeTempDir();
  const scratch = makeTempDir();
  for (let round = 0; round < 5; round++) {
    const cacheDir = path.join(base, `cache-${round}`);
    const writers = Array.from({ length: 8 }, (_, w) => startWriter([cacheDir, w, 0, MAX_OUTPUT, scratch]));
    const results = await Promise.all(writers.map((w) => w.exited));
    expect(results.map((r, w) => ({ round, w, ...r, stderr: writers[w].stderr }))).toEqual(
      writers.map((_, w) => ({ round, w, code: 0, signal: null, stderr: '' })),
    );
    const store = Store.open(cacheDir, { onProblem: (p) => fail(p.message) });
    try {
      expect(store.stats().runs).toBe(8);
    } finally {
      store.close();
    }
  }
}, 300000);
