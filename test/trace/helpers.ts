// Helpers for the end-to-end tracer tests: run `pcache trace --json` on a command
// in a fresh directory and look at the record through that directory.
//
// The record holds every path an execution touched, including the loader's
// libraries and locale files, so exact assertions are made on the paths under
// the test's own directory (`inputsIn` / `outputsIn`), and separately on a few
// well-known system paths.

import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ExecutionRecord, InputKind, OutputKind, OutputRecord, TraceRecord } from '../../src/trace/record';

export const REPO = path.resolve(__dirname, '..', '..');
export const PCACHE = path.join(REPO, 'bin', 'pcache');

/** Absolute path of a compiled fixture (`make fixtures`). */
export function fixture(name: string): string {
  const p = path.join(REPO, 'fixtures', 'bin', name);
  if (!fs.existsSync(p)) throw new Error(`fixture ${name} not built: run \`make fixtures\``);
  return p;
}

const made: string[] = [];

/** A fresh directory under os.tmpdir(), symlinks resolved so it matches recorded paths. */
export function tempDir(prefix = 'pcache-e2e-'): string {
  const d = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
  made.push(d);
  return d;
}

/** Remove every directory made by tempDir (call from afterAll). */
export function cleanTempDirs(): void {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** Write files relative to dir: { 'a': 'text', 'sub/b': 'text' }. */
export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text);
  }
}

export interface TraceRunOptions {
  cwd?: string;
  /** extra environment on top of process.env (or `baseEnv`) */
  env?: Record<string, string>;
  /** replaces process.env as the base environment */
  baseEnv?: NodeJS.ProcessEnv;
  /** bytes for the command's stdin, fed through a pipe; without it stdin is /dev/null */
  input?: string;
  /** a file to open as pcache's stdin (as `pcache ... < FILE` would) */
  stdinFile?: string;
  timeoutMs?: number;
  /** pcache's stdout and stderr on /dev/null (steps' file stdouts are then read back) */
  quietStdio?: boolean;
}

export interface TraceRun {
  record: TraceRecord;
  /** pcache's exit status */
  status: number | null;
  /** signal that killed pcache itself (should always be null) */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node bin/pcache trace --json FILE -- ...cmd` and parses FILE. The JSON file
 * lives in its own directory so it never shows up among the paths under test.
 * Throws (with pcache's stderr) when no record was written.
 */
export function traceRun(cmd: string[], opts: TraceRunOptions = {}): TraceRun {
  const jsonDir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-json-')));
  const jsonPath = path.join(jsonDir, 'trace.json');
  try {
    let argv = [process.execPath, PCACHE, 'trace', '--json', jsonPath, '--', ...cmd];
    if (opts.input !== undefined) {
      // a real pipe on stdin, the way `producer | pcache ...` gives one (node's own
      // 'pipe' stdio is a socketpair)
      const inputPath = path.join(jsonDir, 'stdin');
      fs.writeFileSync(inputPath, opts.input);
      argv = ['/bin/sh', '-c', 'cat "$0" | "$@"', inputPath, ...argv];
    }
    const stdinFd = opts.stdinFile !== undefined ? fs.openSync(opts.stdinFile, 'r') : undefined;
    const r = spawnSync(argv[0], argv.slice(1), {
      cwd: opts.cwd ?? REPO,
      env: { ...(opts.baseEnv ?? process.env), ...(opts.env ?? {}) },
      // stdout/stderr: node's 'pipe' stdio, which is a unix socketpair (kind 'socket')
      stdio: [stdinFd ?? 'ignore', opts.quietStdio ? 'ignore' : 'pipe', opts.quietStdio ? 'ignore' : 'pipe'],
      encoding: 'utf8',
      timeout: opts.timeoutMs ?? 60000,
      maxBuffer: 64 * 1024 * 1024,
    });
    if (stdinFd !== undefined) fs.closeSync(stdinFd);
    if (r.error) throw r.error;
    if (!fs.existsSync(jsonPath)) {
      throw new Error(
        `pcache trace wrote no record (status ${r.status}, signal ${r.signal}) for ${cmd.join(' ')}\n` +
          `stderr:\n${r.stderr}`,
      );
    }
    const record = JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as TraceRecord;
    return { record, status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  } finally {
    fs.rmSync(jsonDir, { recursive: true, force: true });
  }
}

/** Problems with the record's shape: ids, parents, absolute normalized paths. Empty when fine. */
export function recordProblems(record: TraceRecord): string[] {
  const problems: string[] = [];
  if (record.version !== 1) problems.push(`version ${record.version}`);
  const ids = new Set(record.executions.map((e) => e.id));
  if (ids.size !== record.executions.length) problems.push('duplicate execution ids');
  const roots = record.executions.filter((e) => e.parent === null);
  if (roots.length !== 1) problems.push(`${roots.length} root executions`);
  const normal = (p: string) => path.isAbsolute(p) && path.posix.normalize(p) === p && (p === '/' || !p.endsWith('/'));
  for (const e of record.executions) {
    if (e.parent !== null && !ids.has(e.parent)) problems.push(`execution ${e.id}: unknown parent ${e.parent}`);
    if (!normal(e.exe)) problems.push(`execution ${e.id}: exe ${e.exe}`);
    if (!normal(e.cwd)) problems.push(`execution ${e.id}: cwd ${e.cwd}`);
    for (const i of e.inputs) if (!normal(i.path)) problems.push(`execution ${e.id}: input ${i.path}`);
    for (const o of e.outputs) if (!normal(o.path)) problems.push(`execution ${e.id}: output ${o.path}`);
    if (!Array.isArray(e.uncacheable)) problems.push(`execution ${e.id}: uncacheable is not an array`);
  }
  return problems;
}

export function rootOf(record: TraceRecord): ExecutionRecord {
  const roots = record.executions.filter((e) => e.parent === null);
  if (roots.length !== 1) throw new Error(`expected one root execution, found ${roots.length}`);
  return roots[0];
}

export function childrenOf(record: TraceRecord, parent: ExecutionRecord): ExecutionRecord[] {
  return record.executions.filter((e) => e.parent === parent.id).sort((a, b) => a.id - b.id);
}

/** The single execution whose argv[0] ends with `name` (throws if not exactly one). */
export function execNamed(record: TraceRecord, name: string): ExecutionRecord {
  const found = record.executions.filter((e) => e.argv.length > 0 && path.basename(e.argv[0]) === name);
  if (found.length !== 1) {
    throw new Error(`expected one execution named ${name}, found ${found.length}: ` + record.executions.map((e) => JSON.stringify(e.argv)).join(', '));
  }
  return found[0];
}

function under(dir: string, p: string): string | null {
  const rel = path.relative(dir, p);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return null;
  return rel;
}

/**
 * One kind per path, strongest first: a path probed (`metadata`) and also read
 * (`content`) or listed (`dirlist`) is reported by the stronger kind alone, since
 * that key covers the probe. Any other combination is joined with '+', so an
 * unexpected duplicate still shows up in an exact comparison.
 */
function foldKinds(kinds: string[]): string {
  let set = [...new Set(kinds)].sort();
  if (set.length > 1) set = set.filter((k) => k !== 'metadata');
  return set.join('+');
}

/** Inputs strictly under dir, keyed by path relative to dir. */
export function inputsIn(exec: ExecutionRecord, dir: string): Record<string, string> {
  const byPath = new Map<string, string[]>();
  for (const i of exec.inputs) {
    const rel = under(dir, i.path);
    if (rel === null) continue;
    byPath.set(rel, [...(byPath.get(rel) ?? []), i.kind]);
  }
  const out: Record<string, string> = {};
  for (const [rel, kinds] of [...byPath].sort()) out[rel] = foldKinds(kinds);
  return out;
}

/** Outputs strictly under dir, keyed by path relative to dir. */
export function outputsIn(exec: ExecutionRecord, dir: string): Record<string, string> {
  const byPath = new Map<string, string[]>();
  for (const o of exec.outputs) {
    const rel = under(dir, o.path);
    if (rel === null) continue;
    byPath.set(rel, [...(byPath.get(rel) ?? []), o.kind]);
  }
  const out: Record<string, string> = {};
  for (const [rel, kinds] of [...byPath].sort()) out[rel] = [...new Set(kinds)].sort().join('+');
  return out;
}

/** Outputs outside dir (a fixture run in dir must have none). */
export function outputsOutside(exec: ExecutionRecord, dir: string): string[] {
  return exec.outputs.filter((o) => under(dir, o.path) === null).map((o) => `${o.kind} ${o.path}`);
}

export function outputAt(exec: ExecutionRecord, p: string): OutputRecord | undefined {
  return exec.outputs.find((o) => o.path === p);
}

/** Every kind recorded for an absolute path among an execution's inputs. */
export function inputKinds(exec: ExecutionRecord, p: string): InputKind[] {
  return exec.inputs.filter((i) => i.path === p).map((i) => i.kind);
}

export function outputKinds(exec: ExecutionRecord, p: string): OutputKind[] {
  return exec.outputs.filter((o) => o.path === p).map((o) => o.kind);
}

/**
 * Opening a file with O_CREAT but without O_EXCL succeeds whether or not it
 * existed, and its previous bytes cannot matter, so the folding may or may not
 * record the existence check. This removes `rel` from an inputsIn() map after
 * checking it is at most such a probe (`absent` if the file did not exist before,
 * `metadata` if it did) -- never `content`.
 */
export function dropCreateProbe(inputs: Record<string, string>, rel: string, existedBefore: boolean): Record<string, string> {
  const kind = inputs[rel];
  const allowed = existedBefore ? 'metadata' : 'absent';
  if (kind !== undefined && kind !== allowed) {
    throw new Error(`${rel} is a '${kind}' input; a file created with O_CREAT|O_TRUNC may only be an '${allowed}' probe`);
  }
  const rest = { ...inputs };
  delete rest[rel];
  return rest;
}

/** Real path of a system file as the loader would reach it (e.g. libc behind /lib symlinks). */
export function systemPath(p: string): string {
  return fs.realpathSync(p);
}
