// The command key: everything that identifies an execution before it runs,
// apart from the file contents it will read (those are the entry's inputs,
// checked per candidate). Built from delimited, typed fields behind a version
// prefix; bump KEY_VERSION whenever a field is added or changes meaning.
//
// History:
//   1 - exe, argv, cwd, env (minus ignored), umask, standard streams.
//       Later, without a bump (absent, it leaves older keys as they were): the regular files
//       and directories open on fds 3 and up at the exec (`cmd 3< in`).
//       Later, without a bump: a key with a terminal on fd 0-2 says that its entries record
//       the terminal's size as an input, so entries from before that was recorded (which
//       would replay `ls` at any width) are never found.
//   2 - the fields of 1 without the terminal marker (the new version does its work).
//       Entries record how many CPUs an execution may run on when it asks (sched_getaffinity:
//       nproc, OpenMP); those from before (which would replay nproc's count on a machine or
//       in a cpuset with another one) are never found.
//   3 - the fields of 2; the key is led by the exec signature (16 hex digits and a '-',
//       ExecRequest.execSig: exe path and argv), so that the tracer can run an exec that no
//       entry's key starts with at once, without asking (session.ts ExecFilter).

import { digestBytes } from '../../cache-store/digest';
import type { ExecRequest, FdSnapshot } from '../trace/native';

export const KEY_VERSION = 3;

/**
 * Environment variables that differ between otherwise identical invocations and
 * that programs do not act on: shells set `_` to the last command, SHLVL counts
 * nesting, OLDPWD remembers the previous directory; the rest name a terminal
 * session; PCACHE_DEBUG and PCACHE_TRACER_STATS only change what pcache prints, and
 * PCACHE_CAPTURE_MEMORY and PCACHE_CAPTURE_MAX only where captured bytes are kept and
 * whether a step with that much output is cached at all, PCACHE_RELAY only how a pipe
 * stdout is captured (native/src/relay.h), PCACHE_NOTIFY only how the tracer is told of
 * a call (native/src/notifier.h). Users extend the list with
 * PCACHE_IGNORE_ENV=NAME,NAME.
 */
export const DEFAULT_IGNORED_ENV: readonly string[] = [
  '_',
  'OLDPWD',
  'SHLVL',
  'SSH_CLIENT',
  'SSH_CONNECTION',
  'SSH_TTY',
  'WINDOWID',
  'XDG_SESSION_ID',
  'TERM_SESSION_ID',
  'TMUX_PANE',
  // pcache's own diagnostics: turning them on to find out why something re-ran must not
  // make everything re-run.
  'PCACHE_DEBUG',
  'PCACHE_TRACER_STATS',
  'PCACHE_CAPTURE_MEMORY',
  'PCACHE_CAPTURE_MAX',
  'PCACHE_RELAY',
  'PCACHE_NOTIFY',
];

export function ignoredEnv(env: NodeJS.ProcessEnv = process.env): Set<string> {
  const extra = (env.PCACHE_IGNORE_ENV ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return new Set([...DEFAULT_IGNORED_ENV, ...extra]);
}

/** What a standard stream contributes: its kind (isatty changes output), for stdin also what it reads. */
function streamField(f: FdSnapshot | undefined, fd: number): string {
  if (!f) return 'closed';
  if (fd === 0 && f.kind === 'file') return `file:${f.target}@${f.pos}`;
  return f.kind;
}

/** True when stdout and stderr are one stream (2>&1): their bytes are kept as one, in order. */
export function mergedStdio(fds: readonly FdSnapshot[]): boolean {
  const out = fds.find((f) => f.fd === 1);
  const err = fds.find((f) => f.fd === 2);
  return out !== undefined && err !== undefined && out.target === err.target;
}

export interface KeyParts {
  version: number;
  exe: string;
  argv: string[];
  cwd: string;
  env: string[];
  umask: number;
  stdin: string;
  stdout: string;
  stderr: string;
  merged: boolean;
  /**
   * Regular files and directories open on fd 3 and up that the program starts with, as
   * openFdField's text: it can read or write them without an open the tracer sees,
   * so a replay must know it was given the same ones. Absent in reports older than the field.
   */
  openFds?: string[];
}

const O_ACCMODE = 3;
const O_APPEND = 0o2000;

/** `fd 3: file /data/in.txt, read at 0` (readable in `pcache explain`). */
function openFdField(f: FdSnapshot): string {
  const access = ['read', 'write', 'read-write', 'access 3'][f.flags & O_ACCMODE];
  // Appending writes at the end wherever the offset stands.
  const at = (f.flags & O_APPEND) !== 0 ? 'appending' : `at ${f.pos}`;
  return `fd ${f.fd}: ${f.kind} ${f.target}, ${access} ${at}`;
}

// Execs with equal environments get one frozen array from the tracer (envToJs in
// native/src/addon.cc): what the key takes of it is worked out once per array. Only frozen
// arrays are remembered, so an array changed after its key was made cannot hit a stale one.
const keptEnvs = new WeakMap<readonly string[], { ignored: ReadonlySet<string>; env: string[] }>();
const envTexts = new WeakMap<readonly string[], string>();

/** The variables of `env` that are part of a key, sorted (frozen when `env` is). */
function keptEnv(env: readonly string[], ignored: ReadonlySet<string>): string[] {
  const memo = keptEnvs.get(env);
  if (memo !== undefined && memo.ignored === ignored) return memo.env;
  const kept = env.filter((kv) => !ignored.has(kv.slice(0, Math.max(0, kv.indexOf('=')))) ).sort();
  if (!Object.isFrozen(env)) return kept;
  Object.freeze(kept);
  keptEnvs.set(env, { ignored, env: kept });
  return kept;
}

export function keyParts(req: ExecRequest, ignored: ReadonlySet<string>): KeyParts {
  const env = keptEnv(req.env, ignored);
  const fd = (n: number): FdSnapshot | undefined => req.fds.find((f) => f.fd === n);
  return {
    version: KEY_VERSION,
    exe: req.path,
    argv: req.argv,
    cwd: req.cwd,
    env,
    umask: req.umask,
    stdin: streamField(fd(0), 0),
    stdout: streamField(fd(1), 1),
    stderr: streamField(fd(2), 2),
    merged: mergedStdio(req.fds),
    openFds: req.fds.filter((f) => f.fd > 2 && (f.kind === 'file' || f.kind === 'dir')).map(openFdField),
  };
}

/** How long the exec signature that leads a command key is, with its '-'. */
export const EXEC_SIG_PREFIX_LENGTH = 17;

/** The exec signature a command key (or its prefix) starts with; null for keys of other versions. */
export function execSigOfKey(key: string): string | null {
  return /^[0-9a-f]{16}-/.test(key) ? key.slice(0, 16) : null;
}

/**
 * `execSig` (ExecRequest.execSig) and the digest of the parts. Each field is
 * length-prefixed, so no value can be confused with a delimiter.
 */
export function commandKey(parts: KeyParts, execSig: string): string {
  const before: string[] = [
    `pcache-key-v${parts.version}`,
    `exe=${parts.exe}`,
    `argc=${parts.argv.length}`,
    ...parts.argv.map((a, i) => `argv[${i}]=${a}`),
    `cwd=${parts.cwd}`,
    `envc=${parts.env.length}`,
  ];
  const after: string[] = [
    `umask=${parts.umask}`,
    `stdin=${parts.stdin}`,
    `stdout=${parts.stdout}`,
    `stderr=${parts.stderr}`,
    `merged=${parts.merged ? 1 : 0}`,
  ];
  // Only when there are some: every key made without them stays what it was.
  const open = parts.openFds ?? [];
  if (open.length > 0) after.push(`fdc=${open.length}`, ...open.map((f) => `fd=${f}`));
  const env = envText(parts.env);
  const lines = [...before.map(keyField), ...(env === '' ? [] : [env]), ...after.map(keyField)];
  return `${execSig}-${digestBytes(lines.join('\n'))}`;
}

/** One field of the key's text, its length in bytes first. */
function keyField(f: string): string {
  return `${Buffer.byteLength(f)}:${f}`;
}

/** The `env=` fields of the key's text, one per line ('' for none). */
function envText(env: readonly string[]): string {
  let text = envTexts.get(env);
  if (text === undefined) {
    text = env.map((e) => keyField(`env=${e}`)).join('\n');
    if (Object.isFrozen(env)) envTexts.set(env, text);
  }
  return text;
}
