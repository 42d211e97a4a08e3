// Bad input: each a clear one-line error with a stable code, never a stack trace,
// never a silently emptied cache.

import Database from 'better-sqlite3';
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { SCHEMA_VERSION } from '../../cache-store/index-db';
import { Store } from '../../cache-store/store';
import { StoreError } from '../../cache-store/errors';
import { cleanupTempDirs, makeTempDir } from './helpers/tmp';

afterAll(cleanupTempDirs);

function openError(dir: string): StoreError {
  try {
    Store.open(dir).close();
  } catch (e) {
    expect(e).toBeInstanceOf(StoreError);
    expect((e as StoreError).message).not.toMatch(/\n/);
    return e as StoreError;
  }
  throw new Error(`Store.open(${dir}) unexpectedly succeeded`);
}

/** A closed cache with 200 entries (a multi-page index) and their blobs. */
async function populatedCache(): Promise<{ dir: string; blobFiles: string[] }> {
  const dir = path.join(makeTempDir(), 'cache');
  const store = Store.open(dir);
  for (let i = 0; i < 200; i++) {
    await store.publishEntry({
      commandKey: `key-${i}`,
      exitStatus: 0,
      durationMs: 1,
      stdout: { bytes: Buffer.from(`stdout ${i}\n`) },
      inputs: Array.from({ length: 10 }, (_, k) => ({ path: `/some/fairly/long/input/path/${i}/${k}`, kind: 'absent' as const })),
      outputs: [],
    });
  }
  store.close();
  return { dir, blobFiles: [...store.blobs.list()].map((f) => f.hash) };
}

const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** The error left everything in place. */
function expectUntouched(dir: string, indexHash: string, blobFiles: string[]): void {
  expect(sha(path.join(dir, 'index.db'))).toBe(indexHash);
  expect(blobFiles.length).toBeGreaterThan(0);
  const present = blobFiles.filter((h) => fs.existsSync(path.join(dir, 'blobs', h.slice(0, 2), h.slice(2))));
  expect(present).toEqual(blobFiles);
}

describe('opening a cache directory', () => {
  test('creates a missing directory (and parents) with index, blobs, tmp and CACHEDIR.TAG', () => {
    const dir = path.join(makeTempDir(), 'a', 'b', 'cache');
    Store.open(dir).close();
    expect(fs.readdirSync(dir).sort()).toEqual(['CACHEDIR.TAG', 'blobs', 'index.db', 'tmp']);
    expect(fs.readFileSync(path.join(dir, 'CACHEDIR.TAG'), 'utf8')).toMatch(/^Signature: 8a477f597d28d172789f06886806bc55\n/);
    const db = new Database(path.join(dir, 'index.db'), { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  test('a regular file as cache path: CACHE_DIR_NOT_DIRECTORY', () => {
    const file = path.join(makeTempDir(), 'file');
    fs.writeFileSync(file, 'not a dir');
    expect(openError(file)).toMatchObject({ code: 'CACHE_DIR_NOT_DIRECTORY', message: `cache path ${file} exists and is not a directory` });
    expect(openError(path.join(file, 'sub'))).toMatchObject({ code: 'CACHE_DIR_NOT_DIRECTORY' });
    expect(fs.readFileSync(file, 'utf8')).toBe('not a dir');
  });

  test('an unwritable cache path: CACHE_DIR_UNWRITABLE', () => {
    const parent = makeTempDir();
    const readOnly = path.join(parent, 'ro');
    fs.mkdirSync(readOnly);
    const undo = makeReadOnly(readOnly);
    try {
      expect(openError(readOnly).code).toBe('CACHE_DIR_UNWRITABLE');
      expect(openError(path.join(readOnly, 'cache')).code).toBe('CACHE_DIR_UNWRITABLE');
    } finally {
      undo();
    }
  });

  test('a database from a newer schema version: INDEX_TOO_NEW, file untouched', async () => {
    const { dir, blobFiles } = await populatedCache();
    const indexPath = path.join(dir, 'index.db');
    const db = new Database(indexPath);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    const before = sha(indexPath);
    const err = openError(dir);
    expect(err.code).toBe('INDEX_TOO_NEW');
    expect(err.message).toContain(`schema version ${SCHEMA_VERSION + 1}`);
    expectUntouched(dir, before, blobFiles);
    // Once an older pcache is used again the cache is still all there.
    const fix = new Database(indexPath);
    fix.pragma(`user_version = ${SCHEMA_VERSION}`);
    fix.close();
    const store = Store.open(dir);
    expect(store.stats().entries).toBe(200);
    store.close();
  });

  test('a truncated database: INDEX_CORRUPT, nothing emptied', async () => {
    const { dir, blobFiles } = await populatedCache();
    const indexPath = path.join(dir, 'index.db');
    const size = fs.statSync(indexPath).size;
    expect(size).toBeGreaterThan(8 * 4096);
    fs.truncateSync(indexPath, Math.floor(size / 2));
    const before = sha(indexPath);
    const err = openError(dir);
    expect(err.code).toBe('INDEX_CORRUPT');
    expect(err.message).toContain(indexPath);
    expect(err.message).toContain('pcache clear');
    expectUntouched(dir, before, blobFiles);
  });

  test('a database truncated to a few bytes: refused, not mistaken for a new cache', async () => {
    const { dir, blobFiles } = await populatedCache();
    const indexPath = path.join(dir, 'index.db');
    fs.truncateSync(indexPath, 50);
    const before = sha(indexPath);
    expect(['INDEX_CORRUPT', 'INDEX_MISSING']).toContain(openError(dir).code);
    expectUntouched(dir, before, blobFiles);
  });

  test('garbage in place of the database: INDEX_CORRUPT', async () => {
    const { dir, blobFiles } = await populatedCache();
    const indexPath = path.join(dir, 'index.db');
    fs.writeFileSync(indexPath, crypto.randomBytes(16384));
    const before = sha(indexPath);
    const err = openError(dir);
    expect(err).toMatchObject({ code: 'INDEX_CORRUPT' });
    expect(err.message).toContain('is not a database');
    expectUntouched(dir, before, blobFiles);
  });

  test('an empty or deleted database in an initialised cache: INDEX_MISSING', async () => {
    const { dir, blobFiles } = await populatedCache();
    const indexPath = path.join(dir, 'index.db');
    fs.writeFileSync(indexPath, '');
    expect(openError(dir).code).toBe('INDEX_MISSING');
    expect(fs.statSync(indexPath).size).toBe(0);
    fs.rmSync(indexPath);
    expect(openError(dir).code).toBe('INDEX_MISSING');
    expect(fs.existsSync(indexPath)).toBe(false);
    expect(blobFiles.every((h) => fs.existsSync(path.join(dir, 'blobs', h.slice(0, 2), h.slice(2))))).toBe(true);
  });

  test('somebody else\'s SQLite database: INDEX_NOT_PCACHE, untouched', () => {
    const dir = makeTempDir();
    const indexPath = path.join(dir, 'index.db');
    const db = new Database(indexPath);
    db.exec(`CREATE TABLE precious (x); INSERT INTO precious VALUES (42);`);
    db.close();
    const before = sha(indexPath);
    expect(openError(dir).code).toBe('INDEX_NOT_PCACHE');
    expect(sha(indexPath)).toBe(before);
  });
});

/** Makes `dir` unwritable even for root; returns the undo. */
function makeReadOnly(dir: string): () => void {
  if (process.getuid?.() !== 0) {
    fs.chmodSync(dir, 0o555);
    return () => fs.chmodSync(dir, 0o755);
  }
  // Root ignores permission bits: use a read-only mount, else the immutable attribute.
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'pcache-test', dir], { stdio: 'ignore' });
    return () => execFileSync('umount', [dir], { stdio: 'ignore' });
  } catch {
    execFileSync('chattr', ['+i', dir], { stdio: 'ignore' });
    return () => execFileSync('chattr', ['-i', dir], { stdio: 'ignore' });
  }
}
