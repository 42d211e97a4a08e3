// The schema migrates forward in place: an index from schema 1 or 2 opens under the
// current schema with its entries intact.

import Database from 'better-sqlite3';
import * as path from 'path';
import { MIGRATIONS, SCHEMA_VERSION } from '../../cache-store/index-db';
import { InputRecord } from '../../cache-store/entry';
import { Store } from '../../cache-store/store';
import { cleanupTempDirs, makeTempDir } from './helpers/tmp';

afterAll(cleanupTempDirs);

// Schemas 1 and 2 also kept every input as a row (dropped in 3): that table as step 1
// created it, and one row per existing entry.
const OLD_INPUTS_TABLE = `${/CREATE TABLE inputs \([\s\S]*?\) WITHOUT ROWID;/.exec(MIGRATIONS[0] as string)![0]}
  INSERT INTO inputs (entry_id, seq, path, kind) SELECT id, 0, '/nowhere', 'absent' FROM entries;`;

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
  db.exec(OLD_INPUTS_TABLE);
  db.exec(V1_INDEXES);
  if (!withManifest) db.exec(`ALTER TABLE entries DROP COLUMN inputs_manifest`);
  db.pragma('user_version = 1');
  db.close();
  return dir;
}

function schemaNames(dir: string, type: 'index' | 'table'): string[] {
  const db = new Database(path.join(dir, 'index.db'), { readonly: true });
  const names = db.prepare(`SELECT name FROM sqlite_schema WHERE type = ? AND name NOT LIKE 'sqlite_%' ORDER BY name`).pluck().all(type) as string[];
  db.close();
  return names;
}

test('schema 1 -> 2 drops the reference indexes and keeps the entries', async () => {
  const dir = await cacheAtVersion1(true);
  expect(schemaNames(dir, 'index')).toContain('outputs_by_hash');
  const store = Store.open(dir);
  expect(store.lookup('k').hit?.exitStatus).toBe(0);
  store.close();
  expect(schemaNames(dir, 'index')).toEqual(['entries_by_key']);
  const db = new Database(path.join(dir, 'index.db'), { readonly: true });
  expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
  db.close();
});

test('schema 2 -> 3 drops the row-per-input table; every input is still there, from the manifest', async () => {
  const dir = path.join(makeTempDir(), 'cache');
  const inputs: InputRecord[] = [
    { path: '/usr/bin/tool', kind: 'content', type: 'file', dev: 1n, ino: 2n, size: 3n, mtimeNs: 4n, ctimeNs: 5n, mode: 0o755, hash: 'a'.repeat(64), verifiedAtNs: 6n },
    { path: '/etc/ld.so.preload', kind: 'absent', type: null, dev: null, ino: null, size: null, mtimeNs: null, ctimeNs: null, mode: null, hash: null, verifiedAtNs: null },
    { path: '/data', kind: 'dirlist', type: 'dir', dev: null, ino: null, size: null, mtimeNs: null, ctimeNs: null, mode: 0o755, hash: 'b'.repeat(64), verifiedAtNs: null },
    { path: '/lib/link', kind: 'metadata', type: 'symlink', dev: null, ino: null, size: 7n, mtimeNs: null, ctimeNs: null, mode: null, hash: 'target', verifiedAtNs: null },
  ];
  let store = Store.open(dir);
  const { id } = await store.publishEntry({ commandKey: 'k', exitStatus: 0, durationMs: 1, inputs, outputs: [] });
  store.close();
  const db = new Database(path.join(dir, 'index.db'));
  db.exec(OLD_INPUTS_TABLE);
  db.pragma('user_version = 2');
  db.close();
  expect(schemaNames(dir, 'table')).toContain('inputs');

  store = Store.open(dir);
  expect(store.getEntry(id)?.inputs).toEqual(inputs);
  expect(store.candidates('k').map((c) => c.id)).toEqual([id]);
  store.close();
  expect(schemaNames(dir, 'table')).not.toContain('inputs');
  expect(schemaNames(dir, 'table')).toContain('entries');
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
