// The SQLite index: schema, migrations, connection settings and the error mapping.
//
// The schema version lives in PRAGMA user_version and the file is tagged with
// PRAGMA application_id, so a database from a newer pcache, or one pcache never
// created, is refused with a clear error instead of being "repaired" into an empty cache.
//
// Schema history (bump SCHEMA_VERSION and append to MIGRATIONS; never edit a step):
//   1 - entries, inputs, outputs, blobs, hash_cache, runs, run_executions, meta.
//   2 - the indexes from blobs back to entries (and the LRU index) are dropped: each
//       publish wrote ~7 random index pages for the sake of the rare gc/verify, which
//       now count references themselves. Adds entries.inputs_manifest to databases made
//       by a pre-release step 1 that lacked it (their entries are dropped: unusable).
//   3 - the inputs table is dropped: entries.inputs_manifest holds every input, and
//       writing a row per input as well was most of the cost of a publish.
//
// Integers that may exceed 2^53 (inode numbers, device numbers, nanosecond times) are
// stored as signed 64-bit values and read with safeIntegers (BigInt).

import type Database from 'better-sqlite3';
import * as fs from 'fs';
import { StoreError, errnoCode, shortMessage } from './errors';

export type Db = Database.Database;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Statement = Database.Statement<any[]>;

export const SCHEMA_VERSION = 3;
/** "pcac" - identifies index.db as ours. */
export const APPLICATION_ID = 0x70636163;
/** Writers wait this long for the lock before failing; other processes' transactions are short. */
export const BUSY_TIMEOUT_MS = 60_000;

export const MIGRATIONS: ReadonlyArray<string | ((db: Db) => void)> = [
  // 0 -> 1
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) WITHOUT ROWID;

  -- Blobs referenced by at least one entry (or about to be swept). The files live in blobs/.
  CREATE TABLE blobs (
    hash       TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
  ) WITHOUT ROWID;

  -- One cached execution. The manifest (command key -> candidates) is entries_by_key.
  -- AUTOINCREMENT: ids are never reused, so run history never points at a stranger.
  CREATE TABLE entries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    command_key   TEXT NOT NULL,
    inputs_digest TEXT NOT NULL,
    -- all inputs packed for fast checking (manifest.ts); the inputs table has them row by row
    inputs_manifest BLOB NOT NULL,
    exit_status   INTEGER NOT NULL,
    stdout_hash   TEXT,
    stderr_hash   TEXT,
    duration_ms   REAL NOT NULL,
    created_ms    INTEGER NOT NULL,
    last_used_ms  INTEGER NOT NULL,
    input_count   INTEGER NOT NULL,
    output_count  INTEGER NOT NULL
  );
  CREATE INDEX entries_by_key ON entries (command_key, created_ms DESC, id DESC);
  CREATE INDEX entries_by_lru ON entries (last_used_ms, id);
  CREATE INDEX entries_by_stdout ON entries (stdout_hash) WHERE stdout_hash IS NOT NULL;
  CREATE INDEX entries_by_stderr ON entries (stderr_hash) WHERE stderr_hash IS NOT NULL;

  CREATE TABLE inputs (
    entry_id       INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    path           TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('content', 'metadata', 'absent', 'dirlist')),
    type           TEXT,
    dev            INTEGER,
    ino            INTEGER,
    size           INTEGER,
    mtime_ns       INTEGER,
    ctime_ns       INTEGER,
    mode           INTEGER,
    hash           TEXT,
    verified_at_ns INTEGER,
    PRIMARY KEY (entry_id, seq)
  ) WITHOUT ROWID;

  CREATE TABLE outputs (
    entry_id    INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    path        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('content', 'deleted', 'mkdir', 'symlink', 'mode')),
    hash        TEXT,
    mode        INTEGER,
    link_target TEXT,
    PRIMARY KEY (entry_id, seq)
  ) WITHOUT ROWID;
  CREATE INDEX outputs_by_hash ON outputs (hash) WHERE hash IS NOT NULL;

  CREATE TABLE hash_cache (
    path         TEXT PRIMARY KEY,
    dev          INTEGER NOT NULL,
    ino          INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    ctime_ns     INTEGER NOT NULL,
    hash         TEXT NOT NULL,
    hashed_at_ns INTEGER NOT NULL
  ) WITHOUT ROWID;

  -- One pcache invocation.
  CREATE TABLE runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    command       TEXT NOT NULL,
    cwd           TEXT NOT NULL,
    started_ms    INTEGER NOT NULL,
    ended_ms      INTEGER,
    exit_status   INTEGER,
    executions    INTEGER NOT NULL DEFAULT 0,
    hits          INTEGER NOT NULL DEFAULT 0,
    misses        INTEGER NOT NULL DEFAULT 0,
    uncacheable   INTEGER NOT NULL DEFAULT 0,
    time_saved_ms REAL NOT NULL DEFAULT 0
  );

  -- What happened to each execution in a run. entry_id is not a foreign key: the
  -- history outlives evicted entries.
  CREATE TABLE run_executions (
    run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    command_key TEXT,
    entry_id    INTEGER,
    label       TEXT,
    outcome     TEXT NOT NULL CHECK (outcome IN ('hit', 'miss', 'uncacheable')),
    reason      TEXT,
    duration_ms REAL,
    saved_ms    REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, seq)
  ) WITHOUT ROWID;
  `,
  // 1 -> 2
  (db) => {
    db.exec(`DROP INDEX IF EXISTS entries_by_lru;
             DROP INDEX IF EXISTS entries_by_stdout;
             DROP INDEX IF EXISTS entries_by_stderr;
             DROP INDEX IF EXISTS outputs_by_hash;`);
    const columns = db.prepare(`SELECT name FROM pragma_table_info('entries')`).pluck().all() as string[];
    if (!columns.includes('inputs_manifest')) {
      db.exec(`DELETE FROM entries; ALTER TABLE entries ADD COLUMN inputs_manifest BLOB NOT NULL DEFAULT x''`);
    }
  },
  // 2 -> 3: the manifest is the only copy of an entry's inputs. The row per input said
  // the same again and was most of the cost of publishing an entry (an execution's
  // shared libraries, locale files and probes are dozens of inputs).
  `DROP TABLE IF EXISTS inputs;`,
];

if (MIGRATIONS.length !== SCHEMA_VERSION) throw new Error('MIGRATIONS and SCHEMA_VERSION disagree');

/** Maps a better-sqlite3 / file system failure on `file` to a StoreError. */
export function indexError(e: unknown, file: string, doing: string): StoreError {
  if (e instanceof StoreError) return e;
  const code = errnoCode(e) ?? '';
  if (code === 'SQLITE_NOTADB') {
    return new StoreError('INDEX_CORRUPT', `${file} is not a database (damaged?); run 'pcache clear' to start over`, { cause: e });
  }
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_IOERR_SHORT_READ') {
    return new StoreError('INDEX_CORRUPT', `${file} is damaged (${shortMessage(e)}); run 'pcache clear' to start over`, { cause: e });
  }
  if (code === 'SQLITE_READONLY' || code.startsWith('SQLITE_CANTOPEN') || code === 'SQLITE_PERM' || code.startsWith('SQLITE_READONLY')) {
    return new StoreError('CACHE_DIR_UNWRITABLE', `cannot write ${file} (${shortMessage(e)})`, { cause: e });
  }
  return new StoreError('IO_ERROR', `${doing} ${file}: ${shortMessage(e)}`, { cause: e });
}

/**
 * Opens (creating if needed) and migrates index.db. `mustExist` is set when the cache
 * directory says it was initialised before: then an empty database is damage, not a
 * fresh cache, and is refused.
 */
export function openIndex(file: string, mustExist: boolean): Db {
  if (mustExist) {
    const st = fs.statSync(file, { throwIfNoEntry: false });
    if (!st || st.size === 0) {
      throw new StoreError('INDEX_MISSING', `${file} is missing or empty although the cache was initialised; run 'pcache clear' to start over`);
    }
  }
  let db: Db;
  try {
    // Loaded here, not at import: commands that never open the index (`pcache trace`) skip it.
    const Sqlite = require('better-sqlite3') as typeof Database;
    db = new Sqlite(file, { timeout: BUSY_TIMEOUT_MS });
  } catch (e) {
    throw indexError(e, file, 'cannot open');
  }
  try {
    // Before anything else touches the file: a foreign or newer database is refused
    // without writing to it.
    // One read transaction for all three: read one by one, another process creating
    // the same new cache could commit its schema in between, and a fresh file would
    // look like somebody else's database (application_id from before, tables after).
    const { appId, version, tables } = db.transaction(() => ({
      appId: db.pragma('application_id', { simple: true }) as number,
      version: db.pragma('user_version', { simple: true }) as number,
      tables: db.prepare(`SELECT count(*) AS n FROM sqlite_schema`).get() as { n: number },
    }))();
    if (appId !== APPLICATION_ID && (version !== 0 || tables.n !== 0)) {
      throw new StoreError('INDEX_NOT_PCACHE', `${file} is a SQLite database that pcache did not create; refusing to use it`);
    }
    if (version > SCHEMA_VERSION) {
      throw new StoreError(
        'INDEX_TOO_NEW',
        `${file} has schema version ${version}, this pcache understands up to ${SCHEMA_VERSION}; upgrade pcache or use another --cache-dir`,
      );
    }
    if (mustExist && version === 0) {
      throw new StoreError('INDEX_MISSING', `${file} has no pcache schema although the cache was initialised; run 'pcache clear' to start over`);
    }
    if (version === 0 && tables.n === 0) {
      // Only possible on a brand-new file; must precede the first CREATE TABLE.
      db.pragma('auto_vacuum = INCREMENTAL');
    }
    // WAL: readers never block the writer and vice versa. NORMAL: commits are not
    // fsynced one by one; a power loss can drop the last commits but never corrupts.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // Checkpoint (and fsync the database) every ~40 MB of WAL instead of every 4 MB:
    // each entry is its own small transaction, and checkpoints dominated inserting.
    db.pragma('wal_autocheckpoint = 10000');
    db.pragma('foreign_keys = ON');
    migrate(db, file);
    return db;
  } catch (e) {
    db.close();
    throw indexError(e, file, 'cannot open');
  }
}

function migrate(db: Db, file: string): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current === SCHEMA_VERSION) return;
  // IMMEDIATE: two processes creating the same new cache serialise here, and the
  // second one sees the first one's version and does nothing.
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new StoreError('INDEX_TOO_NEW', `${file} has schema version ${version}, newer than ${SCHEMA_VERSION}`);
    }
    for (let v = version; v < SCHEMA_VERSION; v++) {
      const step = MIGRATIONS[v];
      if (typeof step === 'string') db.exec(step);
      else step(db);
    }
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/** ints that may not fit in 53 bits: store as signed 64-bit */
export function toInt64(value: bigint): bigint {
  return BigInt.asIntN(64, value);
}
