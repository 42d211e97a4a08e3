// The store: the one interface src/ uses. Knows entries, blobs and runs; knows nothing
// about processes.
//
// Cache directory layout:
//   CACHEDIR.TAG   written once the index exists; from then on a missing/empty index is
//                  damage and is refused (never silently replaced by an empty cache)
//   index.db       SQLite index (index-db.ts), with -wal/-shm beside it
//   blobs/, tmp/   content-addressed blobs (blobs.ts)
//
// Publication order: blobs are stored (fsynced, renamed into place) first; then one
// IMMEDIATE transaction checks every referenced blob is present and writes all rows of
// the entry. A crash at any point leaves either no entry or a complete one.
//
// Removal order (gc, clear, drop of a corrupt blob): rows first, committed; blob files
// are unlinked afterwards while holding the write lock and only if still unreferenced.
// Publishers check blob presence under that same lock, so an entry can never commit
// pointing to a blob that is being removed.

import * as fs from 'fs';
import * as path from 'path';
import { BlobDir, BlobDirOptions, BLOB_LAYOUT_VERSION, SmallFile, StoredBlob, StoredFile } from './blobs';
import { DIGEST_ALGORITHM, digestBytes, isDigest } from './digest';
import {
  BlobSource,
  Entry,
  EntrySummary,
  FileType,
  InputKind,
  InputRecord,
  INPUT_KINDS,
  NewEntry,
  OutputKind,
  OutputRecord,
  OUTPUT_KINDS,
  RunEnd,
  RunExecution,
  RunStart,
  RunSummary,
  InputMismatch,
} from './entry';
import { StoreError, errnoCode, shortMessage } from './errors';
import { networkFsOf } from './fs-type';
import { HashCache, statOrUndefined, type HashedFile } from './hash-cache';
import { Db, Statement, indexError, openIndex, toInt64 } from './index-db';
import { InputChecker, Tolerate, snapshotInput } from './input-check';
import { decodeManifest, encodeManifest } from './manifest';
import { RestoreOutcome, StagedRestore, stageBlob } from './restore';
import { mkdirs } from './mkdirs';

/** Candidates kept per command key; older (least recently used) ones are dropped. */
export const DEFAULT_MAX_CANDIDATES = 16;
/** Hash cache rows older than this are dropped by gc (the file is simply hashed again once). */
export const HASH_CACHE_MAX_AGE_MS = 30 * 24 * 3600 * 1000;
/** Blob and temp files younger than this are never swept as orphans: a writer may be about to publish them. */
export const ORPHAN_GRACE_MS = 60 * 60 * 1000;

const CACHEDIR_TAG =
  'Signature: 8a477f597d28d172789f06886806bc55\n' +
  '# This file is a cache directory tag created by pcache.\n' +
  '# For information about cache directory tags see https://bford.info/cachedir/\n';

export interface StoreOptions {
  /** fsync blobs before publishing them (default true) */
  durable?: boolean;
  maxCandidates?: number;
  /** receives problems found while reading (corrupt or missing blobs); default: a warning on stderr */
  onProblem?: (problem: StoreProblem) => void;
  /**
   * 'auto' (default): trust a fresh file's stamp where timestamps are multigrain (see
   * hash-cache.ts); 'coarse': never, as on file systems that stamp with a coarse clock.
   */
  timestamps?: 'auto' | 'coarse';
}

export interface StoreProblem {
  code: 'BLOB_CORRUPT' | 'BLOB_MISSING';
  hash: string;
  /** entries removed because they needed the blob */
  entriesDropped: number;
  message: string;
}

export interface PublishedEntry {
  id: number;
  stdoutHash: string | null;
  stderrHash: string | null;
  outputs: OutputRecord[];
  /** the files read to store this entry's blobs that did not change while read */
  storedFiles: Array<StoredFile & { file: string }>;
}

export interface LookupOptions {
  /** share one checker (and its memoised stats and digests) across several lookups */
  checker?: InputChecker;
  /** accept a mismatching input of a candidate anyway; gets that candidate's outputs */
  tolerate?: (input: InputRecord, reason: string, outputs: readonly OutputRecord[]) => boolean;
}

export interface LookupResult {
  /** the newest candidate whose inputs all match, with its outputs */
  hit: Entry | null;
  /** candidates tried and why each did not match, newest first */
  rejected: Array<{ entryId: number; mismatch: InputMismatch }>;
}

export interface StoreStats {
  cacheDir: string;
  entries: number;
  commandKeys: number;
  blobs: number;
  blobBytes: number;
  indexBytes: number;
  totalBytes: number;
  hashCacheRows: number;
  runs: number;
  hits: number;
  misses: number;
  uncacheable: number;
  /** hits / (hits + misses); null before the first cacheable execution */
  hitRate: number | null;
  timeSavedMs: number;
}

export interface GcOptions {
  maxBytes: number;
  dryRun?: boolean;
  /** orphan files younger than this are kept (default ORPHAN_GRACE_MS) */
  orphanGraceMs?: number;
}

export interface GcReport {
  dryRun: boolean;
  maxBytes: number;
  bytesBefore: number;
  bytesAfter: number;
  entriesEvicted: number;
  blobsRemoved: number;
  blobBytesFreed: number;
  orphanFilesRemoved: number;
  tempFilesRemoved: number;
  hashCacheRowsPruned: number;
}

export interface VerifyReport {
  blobsChecked: number;
  bytesChecked: number;
  corrupt: string[];
  missing: string[];
  entriesDropped: number;
  /** blob files no entry refers to (gc removes them) */
  orphanFiles: number;
  /** PRAGMA quick_check lines other than "ok" */
  indexProblems: string[];
}

export interface ClearReport {
  entriesRemoved: number;
  blobsRemoved: number;
  bytesRemoved: number;
}

interface EntryRow {
  id: number;
  command_key: string;
  exit_status: number;
  stdout_hash: string | null;
  stderr_hash: string | null;
  duration_ms: number;
  created_ms: number;
  last_used_ms: number;
  input_count: number;
  output_count: number;
}

interface OutputRow {
  path: string;
  kind: string;
  hash: string | null;
  mode: number | null;
  link_target: string | null;
}


const ENTRY_COLUMNS = `id, command_key, exit_status, stdout_hash, stderr_hash, duration_ms, created_ms, last_used_ms, input_count, output_count`;

/** SQL: the entries that reference blob @hash (as an output, stdout or stderr). Scans: rare. */
const ENTRIES_USING_BLOB = `
  SELECT entry_id AS id FROM outputs WHERE hash = @hash
  UNION SELECT id FROM entries WHERE stdout_hash = @hash
  UNION SELECT id FROM entries WHERE stderr_hash = @hash`;

/** SQL: every reference from an entry to a blob, one row per reference (no index: gc/verify only). */
const BLOB_REFERENCES = `
  SELECT hash FROM outputs WHERE hash IS NOT NULL
  UNION ALL SELECT stdout_hash FROM entries WHERE stdout_hash IS NOT NULL
  UNION ALL SELECT stderr_hash FROM entries WHERE stderr_hash IS NOT NULL`;

/** Rows kept back for the next write transaction before they get one of their own. */
const MAX_PENDING_ROWS = 512;

export class Store {
  readonly dir: string;
  readonly indexPath: string;
  readonly blobs: BlobDir;
  readonly hashCache: HashCache;
  private db: Db | undefined;
  private readonly maxCandidates: number;
  private readonly onProblem: (problem: StoreProblem) => void;
  private readonly sql: Record<string, Statement>;
  /** run_executions rows for the next write transaction (recordRunExecution) */
  private readonly pendingRunRows: unknown[][] = [];

  /** Opens (creating if needed) the cache at `cacheDir`. Throws StoreError on bad input. */
  static open(cacheDir: string, options: StoreOptions = {}): Store {
    return new Store(path.resolve(cacheDir), options);
  }

  private constructor(dir: string, options: StoreOptions) {
    this.dir = dir;
    this.indexPath = path.join(dir, 'index.db');
    this.maxCandidates = options.maxCandidates ?? DEFAULT_MAX_CANDIDATES;
    this.onProblem = options.onProblem ?? ((p) => process.stderr.write(`pcache: warning: ${p.message}\n`));
    ensureCacheDir(dir);
    const tagPath = path.join(dir, 'CACHEDIR.TAG');
    const initialised = fs.existsSync(tagPath);
    const blobOptions: BlobDirOptions = { durable: options.durable ?? true };
    this.blobs = new BlobDir(dir, blobOptions);
    const db = openIndex(this.indexPath, initialised);
    this.db = db;
    try {
      this.checkMeta();
      this.blobs.init();
      if (!initialised) writeFileAtomic(tagPath, CACHEDIR_TAG);
      this.hashCache = new HashCache(db, {
        fineGrained: options.timestamps !== 'coarse',
        deferWrites: true,
        maxPending: MAX_PENDING_ROWS,
        // Not from inside a transaction (a digest recorded while one runs waits for its end).
        onPendingFull: () => db.inTransaction || this.flushPending(),
      });
      this.sql = this.prepareStatements(db);
    } catch (e) {
      db.close();
      this.db = undefined;
      throw indexError(e, this.indexPath, 'cannot open');
    }
  }

  close(): void {
    if (this.db?.open && !this.db.inTransaction) {
      try {
        this.flushPending();
      } catch {
        // Only rows of a cache (digests, a run's history): the next run does without them.
      }
    }
    this.db?.close();
    this.db = undefined;
  }

  // ---------------------------------------------------------------- blobs

  /**
   * A small file read and hashed now, to be stored from memory later (BlobDir.readSmallFile);
   * its digest goes into the hash cache like storeFile's. null for a larger file.
   */
  readSmallFile(file: string): SmallFile | null {
    this.live();
    const small = this.blobs.readSmallFile(file);
    if (small?.stable) this.hashCache.record(file, small.stat, small.hash, small.readStartNs);
    return small;
  }

  /** Stores a file in one pass and remembers its digest in the hash cache. */
  async storeFile(file: string): Promise<StoredFile> {
    this.live();
    const stored = await this.blobs.storeFile(file);
    if (stored.stable) this.hashCache.record(file, stored.stat, stored.hash, stored.readStartNs);
    return stored;
  }

  storeBytes(bytes: Uint8Array): StoredBlob {
    this.live();
    return this.blobs.storeBytes(bytes);
  }

  /**
   * The verified bytes of a blob (stdout/stderr replay), or null if it is missing or
   * corrupt. A bad blob is reported, removed, and the entries needing it dropped.
   */
  readBlob(hash: string): Buffer | null {
    this.live();
    const result = this.blobs.readVerified(hash);
    if (typeof result !== 'string') return result;
    this.dropBadBlob(hash, result === 'corrupt' ? 'BLOB_CORRUPT' : 'BLOB_MISSING');
    return null;
  }

  /**
   * Writes blob `hash` to `destination` with permission bits `mode`, atomically. If the
   * destination already holds exactly that content (by the hash cache), only its mode is
   * fixed. 'missing'/'corrupt' means nothing was written: the caller must treat the entry
   * as a miss (the blob has already been reported and removed).
   */
  async restoreBlob(hash: string, destination: string, mode: number): Promise<RestoreOutcome | 'unchanged'> {
    return (await this.restoreBlobVerified(hash, destination, mode)).outcome;
  }

  /**
   * restoreBlob, also saying what was learnt of the destination: for 'unchanged', its stat
   * taken before its content was found equal to the blob (a chmod since moves its ctime).
   */
  async restoreBlobVerified(
    hash: string,
    destination: string,
    mode: number,
    current?: fs.BigIntStats | null,
  ): Promise<{ outcome: RestoreOutcome | 'unchanged'; verified?: { stat: fs.BigIntStats; hashedAtNs: bigint } }> {
    const staged = await this.stageRestore([{ hash, destination, mode, current }]);
    if (typeof staged === 'string') return { outcome: staged };
    staged[0].commit();
    return staged[0].action === 'write' ? { outcome: 'restored' } : { outcome: 'unchanged', verified: staged[0].verified };
  }

  /**
   * All-or-nothing restore of several outputs, step one: every blob is verified and
   * copied beside its destination; a destination already holding the content needs at
   * most a chmod. Returns one StagedRestore per item, in order, to commit() (or abort())
   * - or 'missing'/'corrupt' if any blob is unusable, in which case nothing was changed.
   * An item's `current` is the destination's stat when the caller just took it (null:
   * known absent), which saves taking it again.
   */
  async stageRestore(
    items: ReadonlyArray<{ hash: string; destination: string; mode: number; current?: fs.BigIntStats | null }>,
  ): Promise<StagedRestore[] | 'missing' | 'corrupt'> {
    this.live();
    const staged: StagedRestore[] = [];
    for (const item of items) {
      const { hash, destination, mode } = item;
      const existing = this.alreadyHolds(destination, hash, item.current === undefined ? statOrUndefined(destination) : item.current);
      if (existing) {
        const chmod = Number(existing.stat.mode & 0o7777n) !== (mode & 0o7777);
        staged.push({
          destination,
          action: chmod ? 'chmod' : 'none',
          verified: { stat: existing.stat, hashedAtNs: existing.hashedAtNs },
          commit: () => chmod && fs.chmodSync(destination, mode & 0o7777),
          abort: () => undefined,
        });
        continue;
      }
      let outcome: StagedRestore | 'missing' | 'corrupt';
      try {
        outcome = await stageBlob(this.blobs, hash, destination, mode);
      } catch (e) {
        for (const s of staged) s.abort();
        throw e;
      }
      if (typeof outcome === 'string') {
        for (const s of staged) s.abort();
        this.dropBadBlob(hash, outcome === 'corrupt' ? 'BLOB_CORRUPT' : 'BLOB_MISSING');
        return outcome;
      }
      staged.push(outcome);
    }
    return staged;
  }

  /**
   * The destination's digest and stat when it already holds blob `hash`. The hash cache
   * answers for an unchanged file without reading it (nor the blob: the common re-run
   * case); otherwise a destination of the blob's size is hashed.
   */
  alreadyHolds(destination: string, hash: string, current: fs.BigIntStats | undefined | null): HashedFile | undefined {
    this.live();
    if (!current?.isFile()) return undefined;
    const cached = this.hashCache.lookup(destination, current);
    if (cached) return cached.hash === hash ? { hash, stat: current, hashedAtNs: cached.hashedAtNs, cached: true } : undefined;
    if (Number(current.size) !== this.blobs.sizeOf(hash)) return undefined;
    const hashed = this.hashCache.hashFile(destination, current);
    return hashed?.hash === hash ? hashed : undefined;
  }

  // ---------------------------------------------------------------- entries

  /**
   * Stores the entry's blobs (content outputs without a hash are read from their source,
   * by default their path), then writes all rows in one transaction. An older entry of
   * the same command with identical inputs is replaced. Throws BLOB_MISSING if a blob
   * given by hash is not (or no longer) in the store.
   */
  async publishEntry(entry: NewEntry): Promise<PublishedEntry> {
    this.live();
    validateEntry(entry);
    // Where each blob came from, so one removed by a concurrent gc/clear between
    // storing and publishing can be stored again.
    const sources = new Map<string, BlobSource>();
    const modes = new Map<string, number>();
    const storedFiles: PublishedEntry['storedFiles'] = [];
    const resolve = async (source: BlobSource): Promise<string> => {
      if ('file' in source) {
        const stored = await this.storeFile(source.file);
        if (stored.stable) storedFiles.push({ ...stored, file: source.file });
        sources.set(stored.hash, source);
        modes.set(source.file, Number(stored.stat.mode & 0o7777n));
        return stored.hash;
      }
      const hash = await this.resolveBlob(source);
      if (!('hash' in source)) sources.set(hash, source);
      return hash;
    };
    let stdoutHash = entry.stdout ? await resolve(entry.stdout) : null;
    let stderrHash = entry.stderr ? await resolve(entry.stderr) : null;
    const outputs: OutputRecord[] = [];
    for (const output of entry.outputs) {
      const { source, ...record } = output;
      if (record.kind === 'content' && !record.hash) {
        const src: BlobSource = source ?? { file: record.path };
        record.hash = await resolve(src);
        if (record.mode == null && 'file' in src) record.mode = modes.get(src.file) ?? null;
      } else if (record.kind === 'content' && record.hash && source && !('hash' in source)) {
        // Digest known to the caller; the source stores the blob again if a gc removed it.
        sources.set(record.hash, source);
      }
      outputs.push(record);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const id = this.insertEntry(entry, stdoutHash, stderrHash, outputs);
        return { id, stdoutHash, stderrHash, outputs, storedFiles };
      } catch (e) {
        const source = e instanceof MissingBlobError ? sources.get(e.hash) : undefined;
        if (!source || attempt >= 3) throw e;
        // A gc that removed one of this entry's blobs has usually removed others too: store
        // every missing one again, not only the first the transaction tripped over (one per
        // attempt ran out of attempts with a few evicted outputs).
        for (const [missing, src] of [...sources]) {
          if (this.blobs.has(missing)) continue;
          const again = await resolve(src);
          if (stdoutHash === missing) stdoutHash = again;
          if (stderrHash === missing) stderrHash = again;
          for (const o of outputs) if (o.hash === missing) o.hash = again;
        }
      }
    }
  }

  /** All rows of one entry in one transaction, after checking its blobs are present. */
  private insertEntry(entry: NewEntry, stdoutHash: string | null, stderrHash: string | null, outputs: OutputRecord[]): number {
    const referenced = new Set<string>();
    for (const h of [stdoutHash, stderrHash, ...outputs.map((o) => (o.kind === 'content' ? o.hash : null))]) {
      if (h) referenced.add(h);
    }
    const inputsDigest = digestInputs(entry.inputs);
    const manifest = encodeManifest(entry.inputs);
    const now = Date.now();
    return this.write(() => {
      for (const hash of referenced) {
        // A blob with a row is present: rows go before files in every removal, under
        // this same lock. Only a new row needs the file checked.
        if (this.sql.blobRow.get(hash)) continue;
        const size = this.blobs.sizeOf(hash);
        if (size === undefined) throw new MissingBlobError(hash);
        this.sql.insertBlob.run(hash, size, now);
      }
      this.sql.deleteSameInputs.run(entry.commandKey, inputsDigest);
      const result = this.sql.insertEntry.run(
        entry.commandKey,
        inputsDigest,
        manifest,
        entry.exitStatus,
        stdoutHash,
        stderrHash,
        entry.durationMs,
        now,
        now,
        entry.inputs.length,
        outputs.length,
      );
      const entryId = Number(result.lastInsertRowid);
      outputs.forEach((output, seq) => {
        this.sql.insertOutput.run(entryId, seq, output.path, output.kind, output.hash ?? null, output.mode ?? null, output.linkTarget ?? null);
      });
      this.sql.dropExcessCandidates.run({ key: entry.commandKey, keep: this.maxCandidates });
      return entryId;
    });
  }

  /** Candidate entries of a command, newest first (at most maxCandidates). */
  candidates(commandKey: string): EntrySummary[] {
    this.live();
    return (this.sql.candidates.all(commandKey, this.maxCandidates) as EntryRow[]).map(entrySummary);
  }

  /**
   * The first `length` characters of the command keys of the entries with an id above
   * `afterId`, and the highest id seen (pass it back to read only what was added since;
   * ids only grow). Keys are opaque here: what a prefix means is the caller's.
   */
  commandKeyPrefixes(afterId: number, length: number): { prefixes: Set<string>; lastId: number } {
    const db = this.live();
    const prefixes = new Set<string>();
    if (afterId <= 0) {
      // All of them: from the key index alone (a scan of the table would read every
      // entry's manifest pages too), with the highest id in the same snapshot.
      return db.transaction(() => {
        for (const p of this.sql.allKeyPrefixes.iterate(length) as Iterable<string>) prefixes.add(p);
        return { prefixes, lastId: Number(this.sql.maxEntryId.get() ?? 0) };
      })();
    }
    let lastId = afterId;
    for (const row of this.sql.keyPrefixesSince.iterate(length, afterId) as Iterable<{ id: number; p: string }>) {
      prefixes.add(row.p);
      if (row.id > lastId) lastId = row.id;
    }
    return { prefixes, lastId };
  }

  getEntry(id: number): Entry | undefined {
    this.live();
    const row = this.sql.entryById.get(id) as EntryRow | undefined;
    if (!row) return undefined;
    return { ...entrySummary(row), inputs: this.entryInputs(id), outputs: this.entryOutputs(id) };
  }

  entryInputs(id: number): InputRecord[] {
    this.live();
    const manifest = this.sql.manifestOf.get(id) as Buffer | undefined;
    return manifest ? decodeManifest(manifest) : [];
  }

  entryOutputs(id: number): OutputRecord[] {
    this.live();
    return (this.sql.outputsOf.all(id) as OutputRow[]).map((r) => ({
      path: r.path,
      kind: r.kind as OutputKind,
      hash: r.hash,
      mode: r.mode,
      linkTarget: r.link_target,
    }));
  }

  /** A checker for one lookup: memoises stats and digests across candidates (terminalSize, cpuCount: see InputChecker). */
  newInputChecker(terminalSize?: (path: string) => string | null, cpuCount?: () => string | null): InputChecker {
    this.live();
    return new InputChecker(this.hashCache, terminalSize, cpuCount);
  }

  /** Records an input as the file system shows it now (see input-check.ts). */
  snapshotInput(file: string, kind: InputKind): InputRecord | undefined {
    this.live();
    return snapshotInput(this.hashCache, file, kind);
  }

  /**
   * Finds the newest candidate whose inputs still match and marks it used. The hit's
   * inputs are decoded from its manifest. `tolerate` is asked about each mismatching
   * input of a candidate (with that candidate's outputs) and may accept it.
   */
  lookup(commandKey: string, options: LookupOptions = {}): LookupResult {
    this.live();
    const checker = options.checker ?? this.newInputChecker();
    const rejected: LookupResult['rejected'] = [];
    const rows = this.sql.candidatesWithManifest.all(commandKey, this.maxCandidates) as Array<EntryRow & { inputs_manifest: Buffer }>;
    for (const row of rows) {
      let outputs: OutputRecord[] | undefined;
      const tolerate: Tolerate | undefined = options.tolerate
        ? (input, reason) => options.tolerate!(input, reason, (outputs ??= this.entryOutputs(row.id)))
        : undefined;
      const mismatch = checker.checkManifest(row.inputs_manifest, tolerate);
      if (mismatch) {
        rejected.push({ entryId: row.id, mismatch });
        continue;
      }
      this.markUsed(row.id);
      const hit: Entry = { ...entrySummary(row), inputs: decodeManifest(row.inputs_manifest), outputs: outputs ?? this.entryOutputs(row.id) };
      return { hit, rejected };
    }
    return { hit: null, rejected };
  }

  /** Bumps an entry's last-used time (LRU order for gc). */
  markUsed(id: number, whenMs = Date.now()): void {
    this.live();
    this.write(() => this.sql.touchEntry.run(whenMs, id));
  }

  /** Removes an entry (e.g. its outputs could not be restored). Its blobs go at the next gc. */
  deleteEntry(id: number): boolean {
    this.live();
    return this.write(() => this.sql.deleteEntry.run(id).changes > 0);
  }

  // ---------------------------------------------------------------- runs

  /** Starts the record of one pcache invocation; returns its id. */
  recordRun(run: RunStart): number {
    this.live();
    return this.write(() => Number(this.sql.insertRun.run(run.command, run.cwd, run.startedMs ?? Date.now()).lastInsertRowid));
  }

  /**
   * Records what happened to one execution in a run. The row is written with the next write
   * transaction (an entry's publication, the run's end), not in one of its own.
   */
  recordRunExecution(runId: number, execution: RunExecution): void {
    this.live();
    this.pendingRunRows.push([
      runId,
      runId,
      execution.commandKey ?? null,
      execution.entryId ?? null,
      execution.label ?? null,
      execution.outcome,
      execution.reason ?? null,
      execution.durationMs ?? null,
      execution.savedMs ?? 0,
    ]);
    if (this.pendingRunRows.length + this.hashCache.pendingRows >= MAX_PENDING_ROWS) this.flushPending();
  }

  /**
   * Writes the rows kept for the next write transaction (run executions, hash-cache digests)
   * in a transaction of their own. Readers of those tables in this process call it first.
   */
  flushPending(): void {
    if (this.pendingRunRows.length > 0 || this.hashCache.pendingRows > 0) this.write(() => undefined);
  }

  /** Closes a run: stores end, exit status and the counts of its executions. */
  finishRun(runId: number, end: RunEnd): RunSummary {
    this.live();
    this.write(() => this.sql.finishRun.run({ ended: end.endedMs ?? Date.now(), exit: end.exitStatus, run: runId }));
    const run = this.getRun(runId);
    if (!run) throw new StoreError('INVALID_ARGUMENT', `no run with id ${runId}`);
    return run;
  }

  getRun(runId: number): RunSummary | undefined {
    this.live();
    const r = this.sql.runById.get(runId) as Record<string, number | string | null> | undefined;
    if (!r) return undefined;
    return {
      id: r.id as number,
      command: r.command as string,
      cwd: r.cwd as string,
      startedMs: r.started_ms as number,
      endedMs: r.ended_ms as number | null,
      exitStatus: r.exit_status as number | null,
      executions: r.executions as number,
      hits: r.hits as number,
      misses: r.misses as number,
      uncacheable: r.uncacheable as number,
      timeSavedMs: r.time_saved_ms as number,
    };
  }

  // ---------------------------------------------------------------- maintenance

  stats(): StoreStats {
    this.flushPending();
    const db = this.live();
    const one = (sql: string) => db.prepare(sql).get() as Record<string, number | null>;
    const entries = one(`SELECT count(*) AS n, count(DISTINCT command_key) AS keys FROM entries`);
    const blobs = one(`SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM blobs`);
    const runs = one(`SELECT count(*) AS n FROM runs`);
    const outcomes = one(
      `SELECT coalesce(sum(outcome = 'hit'), 0) AS hits, coalesce(sum(outcome = 'miss'), 0) AS misses,
              coalesce(sum(outcome = 'uncacheable'), 0) AS uncacheable, coalesce(sum(saved_ms), 0) AS saved
       FROM run_executions`,
    );
    const hashRows = one(`SELECT count(*) AS n FROM hash_cache`);
    const indexBytes = this.indexBytes();
    const hits = outcomes.hits ?? 0;
    const misses = outcomes.misses ?? 0;
    return {
      cacheDir: this.dir,
      entries: entries.n ?? 0,
      commandKeys: entries.keys ?? 0,
      blobs: blobs.n ?? 0,
      blobBytes: blobs.bytes ?? 0,
      indexBytes,
      totalBytes: (blobs.bytes ?? 0) + indexBytes,
      hashCacheRows: hashRows.n ?? 0,
      runs: runs.n ?? 0,
      hits,
      misses,
      uncacheable: outcomes.uncacheable ?? 0,
      hitRate: hits + misses > 0 ? hits / (hits + misses) : null,
      timeSavedMs: outcomes.saved ?? 0,
    };
  }

  /**
   * Brings the cache under `maxBytes` (blob bytes + index file) by evicting least
   * recently used entries, then removes blobs no entry needs and orphaned files.
   */
  gc(options: GcOptions): GcReport {
    const db = this.live();
    this.flushPending();
    if (!(options.maxBytes >= 0)) throw new StoreError('INVALID_ARGUMENT', `invalid size limit ${options.maxBytes}`);
    const dryRun = options.dryRun ?? false;
    const grace = options.orphanGraceMs ?? ORPHAN_GRACE_MS;
    const indexBytesBefore = this.indexBytes();
    let freedHashes: string[] = [];
    let report: GcReport | undefined;

    // Phase 1: decide and delete rows under the write lock. A dry run rolls back.
    const plan = () => {
      const entryCount = (db.prepare(`SELECT count(*) AS n FROM entries`).get() as { n: number }).n;
      let blobBytes = (db.prepare(`SELECT coalesce(sum(size), 0) AS b FROM blobs`).get() as { b: number }).b;
      const bytesBefore = blobBytes + indexBytesBefore;
      // The index shrinks roughly in proportion to the entries removed.
      const indexBytesPerEntry = entryCount > 0 ? indexBytesBefore / entryCount : 0;
      let indexBytes = indexBytesBefore;
      const freed: string[] = [];
      let freedBytes = 0;
      const freeBlob = (hash: string, size: number) => {
        this.sql.deleteBlobRow.run(hash);
        freed.push(hash);
        freedBytes += size;
        blobBytes -= size;
      };
      // Reference counts, computed once here rather than indexed on every publish.
      db.exec(`DROP TABLE IF EXISTS temp.gc_refs;
               CREATE TEMP TABLE gc_refs (hash TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
               INSERT INTO gc_refs SELECT hash, count(*) FROM (${BLOB_REFERENCES}) GROUP BY hash;`);
      for (const b of db.prepare(`SELECT hash, size FROM blobs WHERE hash NOT IN (SELECT hash FROM temp.gc_refs)`).all() as Array<{ hash: string; size: number }>) {
        freeBlob(b.hash, b.size);
      }
      let evicted = 0;
      if (blobBytes + indexBytes > options.maxBytes) {
        const lru = db.prepare(`SELECT id, stdout_hash, stderr_hash FROM entries ORDER BY last_used_ms, id`).all() as Array<{
          id: number;
          stdout_hash: string | null;
          stderr_hash: string | null;
        }>;
        const outputHashes = db.prepare(`SELECT hash FROM outputs WHERE entry_id = ? AND hash IS NOT NULL`).pluck();
        const release = db.prepare(`UPDATE temp.gc_refs SET n = n - 1 WHERE hash = ? RETURNING n`).pluck();
        for (const e of lru) {
          if (blobBytes + indexBytes <= options.maxBytes) break;
          const references = outputHashes.all(e.id) as string[];
          if (e.stdout_hash) references.push(e.stdout_hash);
          if (e.stderr_hash) references.push(e.stderr_hash);
          this.sql.deleteEntry.run(e.id);
          evicted++;
          indexBytes -= indexBytesPerEntry;
          // Only blobs no remaining entry needs are freed: never a dangling reference.
          for (const hash of references) {
            if ((release.get(hash) as number) !== 0) continue;
            const row = this.sql.blobRow.get(hash) as { size: number } | undefined;
            if (row) freeBlob(hash, row.size);
          }
        }
      }
      db.exec(`DROP TABLE temp.gc_refs`);
      // Rows are only rewritten when a file is re-hashed, so age bounds the table.
      const pruned = db
        .prepare(`DELETE FROM hash_cache WHERE hashed_at_ns < ?`)
        .run(BigInt(Date.now() - HASH_CACHE_MAX_AGE_MS) * 1_000_000n).changes;
      report = {
        dryRun,
        maxBytes: options.maxBytes,
        bytesBefore,
        bytesAfter: Math.max(0, Math.round(blobBytes + indexBytes)),
        entriesEvicted: evicted,
        blobsRemoved: freed.length,
        blobBytesFreed: freedBytes,
        orphanFilesRemoved: 0,
        tempFilesRemoved: 0,
        hashCacheRowsPruned: pruned,
      };
      freedHashes = freed;
      if (dryRun) throw ROLLBACK;
    };
    try {
      this.write(plan);
    } catch (e) {
      if (e !== ROLLBACK) throw e;
    }
    const result = report as unknown as GcReport;

    // Orphans: blob files with no row (a writer killed before publishing, a crash
    // between phase 1 and 2 of an earlier gc). Listed without the lock, removed under it.
    const known = db.prepare(`SELECT 1 FROM blobs WHERE hash = ?`).pluck();
    const cutoff = Date.now() - grace;
    const freed = new Set(freedHashes);
    const orphans: string[] = [];
    for (const file of this.blobs.list()) {
      if (file.mtimeMs <= cutoff && !freed.has(file.hash) && !known.get(file.hash)) orphans.push(file.hash);
    }
    if (dryRun) {
      result.orphanFilesRemoved = orphans.length;
      return result;
    }

    // Phase 2: unlink under the write lock, re-checking that nobody published a
    // reference to the blob in between.
    this.write(() => {
      for (const hash of freedHashes) if (!known.get(hash)) this.blobs.remove(hash);
      for (const hash of orphans) {
        if (!known.get(hash)) {
          this.blobs.remove(hash);
          result.orphanFilesRemoved++;
        }
      }
    });
    result.tempFilesRemoved = this.blobs.sweepTemp(grace);
    try {
      db.pragma('incremental_vacuum');
    } catch {
      // Only reclaims space; a busy database just keeps its free pages for now.
    }
    result.bytesAfter = (db.prepare(`SELECT coalesce(sum(size), 0) AS b FROM blobs`).get() as { b: number }).b + this.indexBytes();
    return result;
  }

  /** Re-hashes every blob; drops corrupt or missing ones and the entries that need them. */
  async verify(): Promise<VerifyReport> {
    const db = this.live();
    const indexProblems = (db.pragma('quick_check') as Array<{ quick_check: string }>)
      .map((r) => r.quick_check)
      .filter((line) => line !== 'ok');
    const rows = db.prepare(`SELECT hash, size FROM blobs ORDER BY hash`).all() as Array<{ hash: string; size: number }>;
    // Referenced digests without a row would be a bug; verify treats them as missing blobs.
    const unlisted = db
      .prepare(
        `SELECT hash FROM (SELECT hash FROM outputs WHERE hash IS NOT NULL
                            UNION SELECT stdout_hash FROM entries WHERE stdout_hash IS NOT NULL
                            UNION SELECT stderr_hash FROM entries WHERE stderr_hash IS NOT NULL)
         WHERE hash NOT IN (SELECT hash FROM blobs)`,
      )
      .pluck()
      .all() as string[];
    const report: VerifyReport = {
      blobsChecked: 0,
      bytesChecked: 0,
      corrupt: [],
      missing: [...unlisted],
      entriesDropped: 0,
      orphanFiles: 0,
      indexProblems,
    };
    for (const row of rows) {
      const state = await this.blobs.check(row.hash);
      report.blobsChecked++;
      if (state === 'ok') report.bytesChecked += row.size;
      else if (state === 'corrupt') report.corrupt.push(row.hash);
      else report.missing.push(row.hash);
    }
    for (const hash of report.corrupt) report.entriesDropped += this.dropBadBlob(hash, 'BLOB_CORRUPT', false);
    for (const hash of report.missing) report.entriesDropped += this.dropBadBlob(hash, 'BLOB_MISSING', false);
    const known = db.prepare(`SELECT 1 FROM blobs WHERE hash = ?`).pluck();
    for (const file of this.blobs.list()) if (!known.get(file.hash)) report.orphanFiles++;
    return report;
  }

  /** Empties the cache: entries, blobs, hash cache and run history. */
  clear(): ClearReport {
    const db = this.live();
    const report = this.write(() => {
      const counts = db.prepare(`SELECT (SELECT count(*) FROM entries) AS e, (SELECT count(*) FROM blobs) AS b, (SELECT coalesce(sum(size), 0) FROM blobs) AS bytes`).get() as {
        e: number;
        b: number;
        bytes: number;
      };
      db.exec(`DELETE FROM run_executions; DELETE FROM runs; DELETE FROM outputs;
               DELETE FROM entries; DELETE FROM blobs; DELETE FROM hash_cache;`);
      return { entriesRemoved: counts.e, blobsRemoved: counts.b, bytesRemoved: counts.bytes };
    });
    // Under the lock, move the blob directory away if nothing was published since;
    // otherwise remove unreferenced files one by one.
    const trash = path.join(this.blobs.tmpDir, `clear-${process.pid}-${Date.now()}`);
    let moved = false;
    this.write(() => {
      const remaining = (db.prepare(`SELECT count(*) AS n FROM blobs`).get() as { n: number }).n;
      if (remaining === 0) {
        try {
          fs.renameSync(this.blobs.blobsDir, trash);
          mkdirs(this.blobs.blobsDir);
          moved = true;
        } catch (e) {
          if (errnoCode(e) !== 'ENOENT') throw new StoreError('IO_ERROR', `cannot clear ${this.blobs.blobsDir}: ${shortMessage(e)}`, { cause: e });
        }
      } else {
        const known = db.prepare(`SELECT 1 FROM blobs WHERE hash = ?`).pluck();
        for (const file of this.blobs.list()) if (!known.get(file.hash)) this.blobs.remove(file.hash);
      }
    });
    if (moved) fs.rmSync(trash, { recursive: true, force: true });
    this.blobs.sweepTemp(ORPHAN_GRACE_MS);
    try {
      db.pragma('incremental_vacuum');
    } catch {
      // Only reclaims space; a busy database keeps its free pages for now.
    }
    return report;
  }

  // ---------------------------------------------------------------- internals

  private live(): Db {
    if (!this.db) throw new StoreError('STORE_CLOSED', 'the cache store is closed');
    return this.db;
  }

  /** Runs `fn` in an IMMEDIATE transaction (takes the write lock up front, so it waits
   *  on the busy timeout instead of failing on a read-to-write upgrade). */
  private write<T>(fn: () => T): T {
    const db = this.live();
    // Rows kept back (recordRunExecution, the hash cache) go in first; they count as written
    // once the transaction commits, and stay kept back if it rolls back.
    let runRows = 0;
    let hashRowsWritten = (): void => undefined;
    const withPending = (): T => {
      runRows = this.pendingRunRows.length;
      for (let i = 0; i < runRows; i++) this.sql.insertRunExecution.run(...this.pendingRunRows[i]);
      hashRowsWritten = this.hashCache.writePending();
      return fn();
    };
    try {
      const result = db.transaction(withPending).immediate();
      this.pendingRunRows.splice(0, runRows);
      hashRowsWritten();
      return result;
    } catch (e) {
      if (e === ROLLBACK) throw e;
      throw indexError(e, this.indexPath, 'cannot write');
    }
  }

  private async resolveBlob(source: BlobSource): Promise<string> {
    if ('hash' in source) {
      if (!isDigest(source.hash)) throw new StoreError('INVALID_ARGUMENT', `not a blob digest: '${source.hash}'`);
      return source.hash;
    }
    if ('file' in source) return (await this.storeFile(source.file)).hash;
    if ('chunks' in source) return (await this.blobs.storeChunks(source.chunks, source.digest)).hash;
    return this.blobs.storeBytes(source.bytes).hash;
  }

  /**
   * Reports a corrupt or missing blob, drops every entry that needs it and removes the
   * file. Returns the number of entries dropped.
   */
  private dropBadBlob(hash: string, code: StoreProblem['code'], report = true): number {
    const before = this.blobs.sizeOf(hash) !== undefined ? fs.statSync(this.blobs.pathOf(hash)).ino : undefined;
    const dropped = this.write(() => {
      const ids = this.sql.entriesUsingBlob.pluck().all({ hash }) as number[];
      for (const id of ids) this.sql.deleteEntry.run(id);
      this.sql.deleteBlobRow.run(hash);
      // Only the file we judged: a writer may have just renamed a fresh copy over it.
      const now = fs.statSync(this.blobs.pathOf(hash), { throwIfNoEntry: false });
      if (now && now.ino === before) this.blobs.remove(hash);
      return ids.length;
    });
    const what = code === 'BLOB_CORRUPT' ? 'is corrupt (content does not match its digest)' : 'is missing';
    const problem: StoreProblem = {
      code,
      hash,
      entriesDropped: dropped,
      message: `blob ${hash} ${what}; removed it and ${dropped} cache ${dropped === 1 ? 'entry' : 'entries'} that needed it`,
    };
    if (report) this.onProblem(problem);
    return dropped;
  }

  private indexBytes(): number {
    // The -wal file is left out: it is transient and bounded by the autocheckpoint.
    return fs.statSync(this.indexPath, { throwIfNoEntry: false })?.size ?? 0;
  }

  private checkMeta(): void {
    const db = this.live();
    const rows = db.prepare(`SELECT key, value FROM meta`).all() as Array<{ key: string; value: string }>;
    const meta = new Map(rows.map((r) => [r.key, r.value]));
    if (meta.size === 0) {
      db.transaction(() => {
        const insert = db.prepare(`INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)`);
        insert.run('blob_layout', String(BLOB_LAYOUT_VERSION));
        insert.run('digest', DIGEST_ALGORITHM);
      }).immediate();
      return;
    }
    if (meta.get('blob_layout') !== String(BLOB_LAYOUT_VERSION) || meta.get('digest') !== DIGEST_ALGORITHM) {
      throw new StoreError(
        'INDEX_TOO_NEW',
        `${this.indexPath} uses blob layout ${meta.get('blob_layout')} / ${meta.get('digest')}, this pcache knows ${BLOB_LAYOUT_VERSION} / ${DIGEST_ALGORITHM}`,
      );
    }
  }

  private prepareStatements(db: Db): Record<string, Statement> {
    return {
      insertBlob: db.prepare(`INSERT INTO blobs (hash, size, created_ms) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING`),
      blobRow: db.prepare(`SELECT size FROM blobs WHERE hash = ?`),
      deleteBlobRow: db.prepare(`DELETE FROM blobs WHERE hash = ?`),
      entriesUsingBlob: db.prepare(ENTRIES_USING_BLOB),
      deleteSameInputs: db.prepare(`DELETE FROM entries WHERE command_key = ? AND inputs_digest = ?`),
      insertEntry: db.prepare(
        `INSERT INTO entries (command_key, inputs_digest, inputs_manifest, exit_status, stdout_hash, stderr_hash,
                              duration_ms, created_ms, last_used_ms, input_count, output_count)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertOutput: db.prepare(
        `INSERT INTO outputs (entry_id, seq, path, kind, hash, mode, link_target) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      // Keeps the maxCandidates most recently used entries of a key.
      dropExcessCandidates: db.prepare(
        `DELETE FROM entries WHERE id IN (
           SELECT id FROM entries WHERE command_key = @key ORDER BY last_used_ms DESC, id DESC LIMIT -1 OFFSET @keep)`,
      ),
      candidatesWithManifest: db.prepare(
        `SELECT ${ENTRY_COLUMNS}, inputs_manifest FROM entries WHERE command_key = ? ORDER BY created_ms DESC, id DESC LIMIT ?`,
      ),
      candidates: db.prepare(
        `SELECT ${ENTRY_COLUMNS} FROM entries WHERE command_key = ? ORDER BY created_ms DESC, id DESC LIMIT ?`,
      ),
      entryById: db.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE id = ?`),
      keyPrefixesSince: db.prepare(`SELECT id, substr(command_key, 1, ?) AS p FROM entries WHERE id > ?`),
      allKeyPrefixes: db.prepare(`SELECT DISTINCT substr(command_key, 1, ?) FROM entries`).pluck(),
      maxEntryId: db.prepare(`SELECT max(id) FROM entries`).pluck(),
      manifestOf: db.prepare(`SELECT inputs_manifest FROM entries WHERE id = ?`).pluck(),
      outputsOf: db.prepare(`SELECT path, kind, hash, mode, link_target FROM outputs WHERE entry_id = ? ORDER BY seq`),
      touchEntry: db.prepare(`UPDATE entries SET last_used_ms = max(last_used_ms, ?) WHERE id = ?`),
      deleteEntry: db.prepare(`DELETE FROM entries WHERE id = ?`),
      insertRun: db.prepare(`INSERT INTO runs (command, cwd, started_ms) VALUES (?, ?, ?)`),
      insertRunExecution: db.prepare(
        `INSERT INTO run_executions (run_id, seq, command_key, entry_id, label, outcome, reason, duration_ms, saved_ms)
         VALUES (?, (SELECT coalesce(max(seq), -1) + 1 FROM run_executions WHERE run_id = ?), ?, ?, ?, ?, ?, ?, ?)`,
      ),
      finishRun: db.prepare(
        `UPDATE runs SET ended_ms = @ended, exit_status = @exit,
           executions = (SELECT count(*) FROM run_executions WHERE run_id = @run),
           hits = (SELECT count(*) FROM run_executions WHERE run_id = @run AND outcome = 'hit'),
           misses = (SELECT count(*) FROM run_executions WHERE run_id = @run AND outcome = 'miss'),
           uncacheable = (SELECT count(*) FROM run_executions WHERE run_id = @run AND outcome = 'uncacheable'),
           time_saved_ms = (SELECT coalesce(sum(saved_ms), 0) FROM run_executions WHERE run_id = @run)
         WHERE id = @run`,
      ),
      runById: db.prepare(`SELECT * FROM runs WHERE id = ?`),
    };
  }
}

const ROLLBACK = Symbol('rollback');

class MissingBlobError extends StoreError {
  constructor(readonly hash: string) {
    super('BLOB_MISSING', `blob ${hash} is not in the store (removed by a concurrent gc or clear)`);
  }
}

/**
 * Removes a cache directory whose index cannot be opened (damaged, or from a newer
 * pcache), as `pcache clear` does when the store refuses to open. Only touches the
 * files the store creates.
 */
export function destroyCacheDir(cacheDir: string): void {
  const dir = path.resolve(cacheDir);
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  if (!st) return;
  if (!st.isDirectory()) throw new StoreError('CACHE_DIR_NOT_DIRECTORY', `cache path ${dir} is not a directory`);
  try {
    for (const name of ['blobs', 'tmp']) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    for (const name of ['index.db-wal', 'index.db-shm', 'index.db', 'CACHEDIR.TAG']) fs.rmSync(path.join(dir, name), { force: true });
  } catch (e) {
    throw new StoreError('CACHE_DIR_UNWRITABLE', `cannot clear ${dir}: ${shortMessage(e)}`, { cause: e });
  }
}

function ensureCacheDir(dir: string): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dir, { throwIfNoEntry: false });
  } catch (e) {
    if (errnoCode(e) === 'ENOTDIR') {
      throw new StoreError('CACHE_DIR_NOT_DIRECTORY', `cannot use cache directory ${dir}: a parent is not a directory`, { cause: e });
    }
    throw new StoreError('CACHE_DIR_UNWRITABLE', `cannot use cache directory ${dir}: ${shortMessage(e)}`, { cause: e });
  }
  if (st && !st.isDirectory()) throw new StoreError('CACHE_DIR_NOT_DIRECTORY', `cache path ${dir} exists and is not a directory`);
  if (!st) {
    try {
      mkdirs(dir);
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOTDIR' || code === 'EEXIST') {
        throw new StoreError('CACHE_DIR_NOT_DIRECTORY', `cannot create cache directory ${dir}: a parent is not a directory`, { cause: e });
      }
      throw new StoreError('CACHE_DIR_UNWRITABLE', `cannot create cache directory ${dir}: ${shortMessage(e)}`, { cause: e });
    }
    st = fs.statSync(dir);
  }
  const network = networkFsOf(dir);
  if (network) {
    throw new StoreError(
      'CACHE_DIR_NETWORK_FS',
      `cache directory ${dir} is on ${network}, where SQLite locking is unreliable; use a local directory (--cache-dir or PCACHE_DIR)`,
    );
  }
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (e) {
    throw new StoreError('CACHE_DIR_UNWRITABLE', `cache directory ${dir} is not writable (${errnoCode(e) ?? shortMessage(e)})`, { cause: e });
  }
}

function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new StoreError('CACHE_DIR_UNWRITABLE', `cannot write ${file}: ${shortMessage(e)}`, { cause: e });
  }
}

function entrySummary(r: EntryRow): EntrySummary {
  return {
    id: r.id,
    commandKey: r.command_key,
    exitStatus: r.exit_status,
    stdoutHash: r.stdout_hash,
    stderrHash: r.stderr_hash,
    durationMs: r.duration_ms,
    createdMs: r.created_ms,
    lastUsedMs: r.last_used_ms,
    inputCount: r.input_count,
    outputCount: r.output_count,
  };
}

/** Format of digestInputs; bump when its encoding changes. */
const INPUTS_DIGEST_FORMAT = 'pcache-inputs-v1';

/** Identifies the state of the world an entry was recorded in (what was observed, not when). */
function digestInputs(inputs: readonly InputRecord[]): string {
  const fields: unknown[] = [INPUTS_DIGEST_FORMAT];
  for (const i of inputs) {
    const observed = i.kind === 'metadata' ? [i.type, i.mode, i.type === 'file' ? String(i.size) : null] : [];
    fields.push([i.kind, i.path, i.hash ?? null, ...observed]);
  }
  return digestBytes(JSON.stringify(fields));
}

function validateEntry(entry: NewEntry): void {
  const bad = (what: string) => new StoreError('INVALID_ARGUMENT', `invalid cache entry: ${what}`);
  if (typeof entry.commandKey !== 'string' || entry.commandKey === '') throw bad('empty command key');
  if (!Number.isInteger(entry.exitStatus)) throw bad(`exit status ${entry.exitStatus}`);
  if (!(entry.durationMs >= 0)) throw bad(`duration ${entry.durationMs}`);
  for (const input of entry.inputs) {
    if (!INPUT_KINDS.includes(input.kind)) throw bad(`input kind '${input.kind}'`);
    if (!input.path) throw bad('input without a path');
    if ((input.kind === 'content' || input.kind === 'dirlist') && !input.hash) throw bad(`${input.kind} input ${input.path} without a hash`);
    if (input.kind === 'metadata' && !input.type) throw bad(`metadata input ${input.path} without a type`);
  }
  for (const output of entry.outputs) {
    if (!OUTPUT_KINDS.includes(output.kind)) throw bad(`output kind '${output.kind}'`);
    if (!output.path) throw bad('output without a path');
    if (output.kind === 'symlink' && output.linkTarget == null) throw bad(`symlink output ${output.path} without a target`);
    if (output.kind === 'mode' && output.mode == null) throw bad(`mode output ${output.path} without a mode`);
    if (output.kind !== 'content' && output.hash) throw bad(`${output.kind} output ${output.path} with a hash`);
  }
}
