// Execution records: what src/trace/fold.ts produces from native events and
// what `pcache trace --json` writes. Persisted format: bump TRACE_RECORD_VERSION
// when a field changes meaning.
//
// History:
//   1 - first version.

import type { FdKind, FileType } from './native';

export const TRACE_RECORD_VERSION = 1;

/**
 * content  - the bytes of a regular file were (or could have been) read
 * metadata - existence/type/mode/size was probed (stat, access, readlink, a symlink traversed,
 *            a directory opened as a base for *at calls, mkdir on an existing dir ...)
 * absent   - the path was looked up and did not exist (ENOENT/ENOTDIR)
 * dirlist  - a directory's entries were listed (getdents)
 * terminal - the size of the terminal on its stdin, stdout or stderr was asked (TIOCGWINSZ):
 *            `path` is /dev/fd/N, `size` what it was told ("ROWSxCOLUMNS")
 * cpus     - it asked how many CPUs it may run on (sched_getaffinity: nproc, OpenMP):
 *            `path` is /proc/self/status (its Cpus_allowed_list), `size` the count
 */
export type InputKind = 'content' | 'metadata' | 'absent' | 'dirlist' | 'terminal' | 'cpus';

/**
 * content - a regular file's final bytes differ from (or may differ from) the start
 * deleted - the path existed before and is gone at the end
 * mkdir   - a directory that was created
 * symlink - a symlink that was created (target in `linkTarget`)
 * mode    - permission bits changed on a path whose content was not otherwise an output
 */
export type OutputKind = 'content' | 'deleted' | 'mkdir' | 'symlink' | 'mode';

export interface InputRecord {
  path: string;
  kind: InputKind;
  /** type before the execution touched the path ('-' = absent) */
  before?: FileType;
  /**
   * A content input whose metadata a nested execution looked at without reading it (`date
   * -r f` next to `sort f`): what it saw, a modification time included, is an input too.
   */
  statted?: boolean;
  /** terminal inputs: "ROWSxCOLUMNS"; cpus inputs: the count */
  size?: string;
}

export interface OutputRecord {
  path: string;
  kind: OutputKind;
  /** symlink outputs: the link's contents */
  linkTarget?: string;
  /** content/mode outputs: final mode bits, when known at the end of the execution */
  mode?: number;
  /**
   * content outputs written through opens only: a file already at that name keeps its own
   * mode (a plain run's O_TRUNC does not change it), so a replay keeps it too
   */
  keepsMode?: boolean;
  /** content outputs: how the file was written ('created' | 'truncated' | 'appended' | 'written') */
  how?: 'created' | 'truncated' | 'appended' | 'written';
}

export interface StdStream {
  /** what the fd referred to when the execution started */
  kind: FdKind;
  target: string;
  /** bytes the execution (whole subtree) wrote to it, in order; only for fd 1/2 */
  bytes?: number;
  /** stdin only: the file offset at the start (a shared offset is part of what was read) */
  pos?: number;
}

/**
 * Captured stdout/stderr bytes: UTF-8 text when valid, else base64. `truncated`: only the
 * first TRACE_CAPTURE_LIMIT bytes are there (the stream's `bytes` says how many it had).
 */
export type CapturedBytes = ({ text: string } | { base64: string }) & { truncated?: true };

/** What `pcache trace --json` keeps of each execution's stdout and of its stderr. */
export const TRACE_CAPTURE_LIMIT = 1024 * 1024;

export interface ExecutionRecord {
  id: number;
  parent: number | null;
  pid: number;
  exe: string;
  argv: string[];
  env: string[];
  cwd: string;
  umask: number;
  /** ms since epoch */
  start: number;
  end: number | null;
  exitCode: number | null;
  signal: number | null;
  inputs: InputRecord[];
  outputs: OutputRecord[];
  stdin: StdStream;
  stdout: StdStream;
  stderr: StdStream;
  uncacheable: string[];
  /** `pcache trace --json` only: what the subtree wrote to the stdout/stderr it started with */
  captured?: { stdout: CapturedBytes; stderr: CapturedBytes };
}

export interface TraceRecord {
  version: number;
  exitCode: number | null;
  signal: number | null;
  executions: ExecutionRecord[];
}
