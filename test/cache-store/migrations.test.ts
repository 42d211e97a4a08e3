// The schema migrates forward in place: an index from schema 1 opens under schema 2.

import Database from 'better-sqlite3';
import * as path from 'path';
import { SCHEMA_VERSION } from '../../cache-store/index-db';
import { Store } from '../../cache-store/store';
import { cleanupTempDirs, makeTempDir } from './helpers/tmp';

afterAll(cleanupTempDirs);

const V1_INDEXES = `
  CREATE INDEX entries_by_lru ON entries (last_used_ms, id);
  CREATE INDEX entries_by_stdout ON entries (stdout_hash) WHERE stdout_hash IS NOT NULL;
  CREATE INDEX entries_by_stderr ON entries (stderr_hash) WHERE stderr_hash IS NOT NULL;
  CREATE INDEX outputs_by_hash ON outputs (hash) WHERE hash IS NOT NULL;`;

async function cacheAtVersion1(withManifest: boolean): Promise<string> {
  const dir = path.join(makeTempDir(), 'cache');
  const store = Store.open(dir);
  await store.publishEntry({
    commandKey: 'k',
    exitStatus: 0,
    durationMs: 1,
    stdout: { bytes: Buffer.from('out') },
    inputs: [{ path: '/nowhere', kind: 'absent' }],
    outputs: [],
  });
  store.close();
  const db = new Database(path.join(dir, 'index.db'));
  db.exec(V1_INDEXES);
  if (!withManifest) db.exec(`ALTER TABLE entries DROP COLUMN inputs_manifest`);
  db.pragma('user_version = 1');
  db.close();
  return dir;
}

function indexNames(dir: string): string[] {
  const db = new Database(path.join(dir, 'index.db'), { readonly: true });
  const names = db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name`).pluck().all() as string[];
  db.close();
  return names;
}

test('schema 1 -> 2 drops the reference indexes and keeps the entries', async () => {
  const dir = await cacheAtVersion1(true);
  expect(indexNames(dir)).toContain('outputs_by_hash');
  const store = Store.open(dir);
  expect(store.lookup('k').hit?.exitStatus).toBe(0);
  store.close();
  expect(indexNames(dir)).toEqual(['entries_by_key']);
  const db = new Database(path.join(dir, 'index.db'), { readonly: true });
  expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
  db.close();
});

test('a pre-release schema 1 without input manifests loses its (unusable) entries, not its blobs or runs', async () => {
  const dir = await cacheAtVersion1(false);
  const store = Store.open(dir);
  expect(store.stats()).toMatchObject({ entries: 0, blobs: 1 });
  // And works normally afterwards.
  await store.publishEntry({ commandKey: 'k2', exitStatus: 3, durationMs: 1, inputs: [], outputs: [] });
  expect(store.lookup('k2').hit?.exitStatus).toBe(3);
  expect(store.gc({ maxBytes: 0 })).toMatchObject({ entriesEvicted: 1, blobsRemoved: 1 });
  store.close();
});
