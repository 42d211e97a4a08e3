// The entry model: what one cached execution looks like to the store. Generic on
// purpose: the store does not know what a process is, only paths, stats and digests.

export type InputKind = 'content' | 'metadata' | 'absent' | 'dirlist' | 'terminal' | 'cpus';
export type OutputKind = 'content' | 'deleted' | 'mkdir' | 'symlink' | 'mode';
export type FileType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'char' | 'block';

export const INPUT_KINDS: readonly InputKind[] = ['content', 'metadata', 'absent', 'dirlist', 'terminal', 'cpus'];
export const OUTPUT_KINDS: readonly OutputKind[] = ['content', 'deleted', 'mkdir', 'symlink', 'mode'];

/**
 * Something an execution observed. How each kind is matched later (input-check.ts):
 *   content  - stat (following symlinks) is a regular file whose digest is `hash`
 *   metadata - lstat gives the same `type` and `mode`, the same `size` for a regular file,
 *              and for a symlink the same target (kept in `hash`). A path looked up
 *              *through* a symlink must be recorded by the caller as two inputs: the link
 *              and the resolved path.
 *   absent   - lstat finds nothing (ENOENT/ENOTDIR)
 *   dirlist  - stat is a directory whose sorted listing (names and types) has digest `hash`
 *   terminal - the terminal `path` names (/dev/fd/N: the one on the new execution's fd N) has
 *              the size `hash` ("ROWSxCOLUMNS"); the checker's caller says which terminal that is
 *   cpus     - the new execution may run on `hash` CPUs (its sched_getaffinity count)
 * The stat fields are those seen when `hash` was computed, at `verifiedAtNs`; when the
 * file's stat is still identical and was settled then (see hash-cache.ts), no re-hash is needed.
 */
export interface InputRecord {
  path: string;
  kind: InputKind;
  type?: FileType | null;
  dev?: bigint | null;
  ino?: bigint | null;
  size?: bigint | null;
  mtimeNs?: bigint | null;
  ctimeNs?: bigint | null;
  /** permission bits (st_mode & 0o7777) */
  mode?: number | null;
  /** content: file digest; dirlist: listing digest; metadata of a symlink: the link target; terminal: its size; cpus: the count */
  hash?: string | null;
  /** wall-clock ns when stat and hash were taken together; 0/absent = never trust the stat */
  verifiedAtNs?: bigint | null;
}

/**
 * The final state of something an execution changed.
 *   content - a regular file with blob `hash` and permission bits `mode`
 *   deleted - the path no longer exists
 *   mkdir   - a directory (permission bits `mode`, when known)
 *   symlink - a symlink to `linkTarget`
 *   mode    - permission bits changed to `mode`, content untouched
 */
export interface OutputRecord {
  path: string;
  kind: OutputKind;
  hash?: string | null;
  mode?: number | null;
  linkTarget?: string | null;
}

/** Where the bytes of a blob come from when publishing. */
/**
 * chunks: bytes held in memory in pieces (a captured stream), stored without joining them;
 * with `digest` when the caller has already hashed exactly these bytes.
 */
export type BlobSource = { hash: string } | { file: string } | { bytes: Uint8Array } | { chunks: readonly Uint8Array[]; digest?: string };

/** A content output without a hash is stored from `source`, by default the file at `path`. */
export interface NewOutput extends OutputRecord {
  source?: BlobSource;
}

export interface NewEntry {
  /** hex string computed by the caller from everything that identifies the command */
  commandKey: string;
  exitStatus: number;
  stdout?: BlobSource | null;
  stderr?: BlobSource | null;
  durationMs: number;
  inputs: InputRecord[];
  outputs: NewOutput[];
}

export interface EntrySummary {
  id: number;
  commandKey: string;
  exitStatus: number;
  stdoutHash: string | null;
  stderrHash: string | null;
  durationMs: number;
  createdMs: number;
  lastUsedMs: number;
  inputCount: number;
  outputCount: number;
}

export interface Entry extends EntrySummary {
  inputs: InputRecord[];
  outputs: OutputRecord[];
}

/** Why a candidate's inputs do not match the file system any more. */
export interface InputMismatch {
  index: number;
  path: string;
  kind: InputKind;
  reason: string;
}

export type ExecutionOutcome = 'hit' | 'miss' | 'uncacheable';

export interface RunStart {
  command: string;
  cwd: string;
  startedMs?: number;
}

export interface RunExecution {
  commandKey?: string | null;
  entryId?: number | null;
  /** short human label, e.g. argv[0] and first arguments */
  label?: string | null;
  outcome: ExecutionOutcome;
  /** why it missed or was uncacheable */
  reason?: string | null;
  durationMs?: number | null;
  /** time a hit saved (the cached entry's duration) */
  savedMs?: number;
}

export interface RunEnd {
  endedMs?: number;
  exitStatus: number | null;
}

export interface RunSummary {
  id: number;
  command: string;
  cwd: string;
  startedMs: number;
  endedMs: number | null;
  exitStatus: number | null;
  executions: number;
  hits: number;
  misses: number;
  uncacheable: number;
  timeSavedMs: number;
}
