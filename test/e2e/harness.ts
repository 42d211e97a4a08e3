// End-to-end scenario harness for `pcache -- CMD`: runs a command plainly and
// under pcache from the same starting state and captures everything the one
// rule (DESIGN.md) says must be equal: the file tree of the working directory,
// the bytes on stdout and stderr, and the exit status.
//
// A scenario lives in one working directory W whose path never changes (cache
// keys include cwd and absolute paths, so a copy elsewhere could never hit).
// Each phase snapshots W (cp -a), runs one side, captures, restores W from the
// snapshot and runs the other side:
//   phase 1 (cold cache): plain first, then pcache, so W is left in the state
//     pcache produced (its inodes and stats are the ones the cache saw);
//   change(W);
//   phase 2 (re-run): pcache first, on exactly the state the change left
//     (stat-based shortcuts are exercised, e.g. an edit with the mtime put back),
//     then plain from the restored snapshot.
// The cache directory, snapshots, summaries and captured streams live next to
// W, never inside it.

import { spawn, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const REPO = path.resolve(__dirname, '..', '..');
/** The pcache entry point under test; PCACHE_E2E_BIN points the suite at another build. */
export const PCACHE = process.env.PCACHE_E2E_BIN ?? path.join(REPO, 'bin', 'pcache');

/**
 * The environment every run starts from (plain and pcache alike), so results
 * do not depend on the developer's shell. HOME points at a directory that is
 * never W, TMPDIR is fixed so tools that consult it see the same value.
 */
export const BASE_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/bin:/bin',
  LC_ALL: 'C',
  HOME: os.tmpdir(),
  TMPDIR: os.tmpdir(),
  SHELL: '/bin/sh',
};

// ---------------------------------------------------------------- file trees

export type TreeEntry =
  | { type: 'file'; mode: string; size: number; sha256: string; text?: string; nlink?: number }
  | { type: 'dir'; mode: string }
  | { type: 'symlink'; target: string }
  | { type: 'other'; mode: string; kind: string };

/** Relative path -> entry for every path under root (root itself is ''). */
export type Tree = Record<string, TreeEntry>;

const TEXT_LIMIT = 4096;

function modeString(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/**
 * Every path under root with its type, permission bits, content (size, sha256
 * and, for small UTF-8 files, the text so a failing comparison shows a readable
 * diff), link count when a file has several names, and symlink target. Mtimes,
 * owners and inode numbers are not part of it.
 */
export function snapshotTree(root: string): Tree {
  const tree: Tree = {};
  const visit = (rel: string): void => {
    const abs = rel === '' ? root : path.join(root, rel);
    const st = fs.lstatSync(abs);
    if (st.isSymbolicLink()) {
      tree[rel] = { type: 'symlink', target: fs.readlinkSync(abs) };
    } else if (st.isFile()) {
      const bytes = fs.readFileSync(abs);
      const entry: TreeEntry = {
        type: 'file',
        mode: modeString(st.mode),
        size: bytes.length,
        sha256: crypto.createHash('sha256').update(bytes).digest('hex'),
      };
      if (bytes.length <= TEXT_LIMIT) {
        const text = bytes.toString('utf8');
        if (Buffer.from(text, 'utf8').equals(bytes)) entry.text = text;
      }
      // hard links are visible (a write through one name shows through the other)
      if (st.nlink > 1) entry.nlink = st.nlink;
      tree[rel] = entry;
    } else if (st.isDirectory()) {
      tree[rel] = { type: 'dir', mode: modeString(st.mode) };
      for (const name of fs.readdirSync(abs).sort()) visit(rel === '' ? name : path.join(rel, name));
    } else {
      const kind = st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : st.isCharacterDevice() ? 'chardev' : 'blockdev';
      tree[rel] = { type: 'other', mode: modeString(st.mode), kind };
    }
  };
  visit('');
  return tree;
}

function describeEntry(entry: TreeEntry | undefined): string {
  if (!entry) return 'absent';
  switch (entry.type) {
    case 'file':
      return (
        `file ${entry.mode} ${entry.size} bytes ${entry.text !== undefined ? JSON.stringify(entry.text) : entry.sha256.slice(0, 16)}` +
        (entry.nlink ? ` nlink ${entry.nlink}` : '')
      );
    case 'dir':
      return `dir ${entry.mode}`;
    case 'symlink':
      return `symlink -> ${entry.target}`;
    case 'other':
      return `${entry.kind} ${entry.mode}`;
  }
}

/**
 * Differences between two trees, one line per path: `path: <actual> != <expected>`.
 * Paths in `ignoreContent` are compared by type and mode only.
 */
export function treeDifferences(actual: Tree, expected: Tree, ignoreContent: readonly string[] = []): string[] {
  const diffs: string[] = [];
  const paths = [...new Set([...Object.keys(actual), ...Object.keys(expected)])].sort();
  for (const p of paths) {
    let a = actual[p];
    let e = expected[p];
    if (a && e && a.type === 'file' && e.type === 'file' && ignoreContent.includes(p)) {
      a = { type: 'file', mode: a.mode, size: 0, sha256: '', nlink: a.nlink };
      e = { type: 'file', mode: e.mode, size: 0, sha256: '', nlink: e.nlink };
    }
    if (JSON.stringify(a) !== JSON.stringify(e)) diffs.push(`${p === '' ? '.' : p}: ${describeEntry(a)} != ${describeEntry(e)}`);
  }
  return diffs;
}

// ---------------------------------------------------------------- workspaces

export interface Workspace {
  /** holds everything below; removed by cleanup() */
  base: string;
  /** W: the working directory the command runs in; its path never changes */
  work: string;
  /** the pcache cache directory */
  cache: string;
  /** captured streams, summaries, stdin files */
  io: string;
  /** where W is snapshotted during a phase */
  snapshot: string;
  cleanup(): void;
}

/** A fresh workspace under os.tmpdir() (symlinks resolved); `cache` can be shared between workspaces. */
export function createWorkspace(opts: { cache?: string } = {}): Workspace {
  const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-e2e-')));
  const ws: Workspace = {
    base,
    work: path.join(base, 'w'),
    cache: opts.cache ?? path.join(base, 'cache'),
    io: path.join(base, 'io'),
    snapshot: path.join(base, 'snapshot'),
    cleanup: () => {
      if (process.env.PCACHE_E2E_KEEP) return;
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
  fs.mkdirSync(ws.work);
  fs.mkdirSync(ws.io);
  return ws;
}

export type FileSpec = string | Buffer | { content: string | Buffer; mode?: number } | { symlink: string } | { dir: true; mode?: number };

/**
 * Populates dir: text files get mode 0644 and `p.sh` (or any `.sh`) 0755 unless
 * given, so results do not depend on the umask of the test process.
 */
export function writeTree(dir: string, files: Record<string, FileSpec>): void {
  for (const [rel, spec] of Object.entries(files)) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (typeof spec === 'object' && !Buffer.isBuffer(spec) && 'symlink' in spec) {
      fs.symlinkSync(spec.symlink, p);
    } else if (typeof spec === 'object' && !Buffer.isBuffer(spec) && 'dir' in spec) {
      fs.mkdirSync(p, { recursive: true });
      fs.chmodSync(p, spec.mode ?? 0o755);
    } else {
      const content = typeof spec === 'string' || Buffer.isBuffer(spec) ? spec : spec.content;
      const mode = typeof spec === 'object' && !Buffer.isBuffer(spec) && spec.mode !== undefined ? spec.mode : rel.endsWith('.sh') ? 0o755 : 0o644;
      fs.writeFileSync(p, content);
      fs.chmodSync(p, mode);
    }
  }
}

/** `cp -a from to`, replacing `to`: content, modes, symlinks and mtimes preserved. */
export function copyTree(from: string, to: string): void {
  fs.rmSync(to, { recursive: true, force: true });
  const r = spawnSync('cp', ['-a', from, to], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cp -a ${from} ${to} failed: ${r.stderr}`);
}

/**
 * Rewrites a file's content in place (same inode) and puts its mtime back to
 * the nanosecond with `touch -r`, the way an edit that preserves timestamps would.
 */
export function rewriteKeepingMtime(file: string, content: string | Buffer): void {
  const ref = `${file}.mtime-ref`;
  const before = fs.statSync(file, { bigint: true });
  copyTree(file, ref);
  try {
    fs.writeFileSync(file, content);
    const r = spawnSync('touch', ['-r', ref, file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`touch -r ${ref} ${file} failed: ${r.stderr}`);
  } finally {
    fs.rmSync(ref, { force: true });
  }
  const after = fs.statSync(file, { bigint: true });
  if (after.mtimeNs !== before.mtimeNs || after.ino !== before.ino) throw new Error(`could not put back the mtime of ${file}`);
}

// ---------------------------------------------------------------- running

/**
 * Where the command's stdout and stderr go:
 *  socket - node's captured stdio (a unix socketpair, what spawn gives)
 *  pipe   - real pipes (a python3 launcher outside pcache reads them)
 *  file   - two regular files outside W, opened by the harness (which holds them while
 *           the command runs, as a shell running `{ ...; } > log` or a workflow runner
 *           sharing its log with its jobs would: pcache stops on every write to them)
 *  alone  - two regular files outside W that only the command holds, the usual
 *           `pcache -- ./p.sh > out 2> err` (a shell opens them in the child it execs):
 *           pcache reads back its stdout file's region instead of stopping on writes
 *  tty    - a pseudo-terminal (`script -qec CMD /dev/null`); stdout and stderr
 *           are the same terminal, so the captured stdout is the merged
 *           transcript (with the terminal's \r\n) and stderr is empty
 *  null   - /dev/null for both (a batch job's `> /dev/null 2>&1`: the only arrangement in
 *           which pcache's steps write their stdout files without stopping, read back at
 *           their end); both captures are empty
 */
export type StdioKind = 'socket' | 'pipe' | 'file' | 'alone' | 'tty' | 'null';

export interface Invocation {
  /** the command, run with cwd W; default ['./p.sh'] */
  cmd?: string[];
  /** added to BASE_ENV */
  env?: Record<string, string>;
  stdio?: StdioKind;
  /**
   * stdin: default /dev/null; `file` opens that file (path relative to the io
   * directory, outside W) as fd 0; `pipe` feeds these bytes through a real pipe
   * from a shell outside pcache (`printf %s DATA | CMD`)
   */
  stdin?: { file: string } | { pipe: string };
  /** run under this umask (set by a shell outside pcache) */
  umask?: number;
  /** tty only: the terminal's width (`stty cols`, outside pcache); default script's */
  columns?: number;
  /** run on these CPUs only (`taskset -c LIST`, outside pcache), as a batch job's cpuset would */
  cpus?: string;
}

export interface Summary {
  exitCode: number;
  executions: { total: number; ran: number; skipped: number; uncacheable: number };
  wallSeconds: number;
  savedSeconds: number;
}

export interface RunCapture {
  /** exit status, 128+N for a death by signal N */
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  /** W right after the run */
  tree: Tree;
}

export interface CachedRun extends RunCapture {
  /** the --summary-json file, or null when pcache wrote none */
  summary: Summary | null;
}

export interface PcacheOptions {
  /** flags before `--`, after --cache-dir/--summary-json/--quiet (e.g. ['--no-skip']) */
  flags?: string[];
  /** leave out --quiet (the summary line then ends stderr) */
  verbose?: boolean;
  /** `pcache run ...` instead of `pcache ...` */
  runSubcommand?: boolean;
  /** no --summary-json */
  noSummary?: boolean;
}

let runCounter = 0;

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./=:+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

// Real pipes for stdout and stderr: python's subprocess uses pipe(2) (node's
// own stdio pipes are socketpairs). The launcher passes the bytes and the
// status through, a signal death as 128+N.
const PIPE_LAUNCHER = [
  'import subprocess, sys',
  'r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)',
  'sys.stdout.buffer.write(r.stdout); sys.stdout.flush()',
  'sys.stderr.buffer.write(r.stderr); sys.stderr.flush()',
  'sys.exit(r.returncode if r.returncode >= 0 else 128 - r.returncode)',
].join('\n');

/**
 * Runs argv in cwd with the invocation's stdio/stdin/umask arrangement, in its
 * own process group so a run that hangs can be killed whole: after timeoutMs
 * the group gets SIGKILL and the promise rejects (well before jest's own test
 * timeout, so the failure names the command).
 */
export async function runArgv(argv: string[], cwd: string, io: string, inv: Invocation, timeoutMs = 50000): Promise<Omit<RunCapture, 'tree'>> {
  const id = ++runCounter;
  let wrapped = argv;
  if (inv.stdin && 'pipe' in inv.stdin) wrapped = ['/bin/sh', '-c', 'printf %s "$0" | "$@"', inv.stdin.pipe, ...wrapped];
  if (inv.cpus !== undefined) wrapped = ['taskset', '-c', inv.cpus, ...wrapped];
  if (inv.umask !== undefined) wrapped = ['/bin/sh', '-c', `umask ${inv.umask.toString(8).padStart(3, '0')} && exec "$@"`, 'sh', ...wrapped];
  const stdioKind = inv.stdio ?? 'socket';
  if (stdioKind === 'pipe') wrapped = ['/usr/bin/python3', '-c', PIPE_LAUNCHER, ...wrapped];
  if (stdioKind === 'tty') {
    const command = wrapped.map(shellQuote).join(' ');
    wrapped = ['script', '-qec', inv.columns === undefined ? command : `stty cols ${inv.columns} && exec ${command}`, '/dev/null'];
  }
  const outFile = path.join(io, `stdout.${id}`);
  const errFile = path.join(io, `stderr.${id}`);
  if (stdioKind === 'alone') wrapped = ['/bin/sh', '-c', 'o=$1 e=$2; shift 2; exec "$@" > "$o" 2> "$e"', 'sh', outFile, errFile, ...wrapped];

  const opened: number[] = [];
  const open = (p: string, flags: string): number => {
    const fd = fs.openSync(p, flags);
    opened.push(fd);
    return fd;
  };
  const stdin = inv.stdin && 'file' in inv.stdin ? open(path.join(io, inv.stdin.file), 'r') : 'ignore';
  const other = stdioKind === 'null' || stdioKind === 'alone' ? 'ignore' : 'pipe';
  const stdout = stdioKind === 'file' ? open(outFile, 'w') : other;
  const stderr = stdioKind === 'file' ? open(errFile, 'w') : other;

  try {
    const child = spawn(wrapped[0], wrapped.slice(1), {
      cwd,
      env: { ...BASE_ENV, ...(inv.env ?? {}) },
      stdio: [stdin, stdout, stderr],
      detached: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c, s) => resolve([c, s]));
    }).finally(() => clearTimeout(timer));
    if (timedOut) {
      throw new Error(`timed out after ${timeoutMs / 1000} s (killed): ${wrapped.join(' ')}\nstderr so far:\n${Buffer.concat(err).toString()}`);
    }
    const exitCode = code ?? 128 + (os.constants.signals[signal as NodeJS.Signals] ?? 0);
    if (stdioKind === 'file' || stdioKind === 'alone') {
      return { exitCode, stdout: fs.readFileSync(outFile), stderr: fs.readFileSync(errFile) };
    }
    return { exitCode, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
  } finally {
    for (const fd of opened) fs.closeSync(fd);
  }
}

export function commandOf(inv: Invocation): string[] {
  return inv.cmd ?? ['./p.sh'];
}

/** The command run plainly in W. */
export async function runPlain(ws: Workspace, inv: Invocation): Promise<RunCapture> {
  const r = await runArgv(commandOf(inv), ws.work, ws.io, inv);
  return { ...r, tree: snapshotTree(ws.work) };
}

/** The argv of `node bin/pcache [run] --cache-dir C [--summary-json J] [--quiet] FLAGS -- CMD`. */
export function pcacheArgv(ws: Workspace, cmd: string[], opts: PcacheOptions & { summaryPath?: string } = {}): string[] {
  return [
    process.execPath,
    PCACHE,
    ...(opts.runSubcommand ? ['run'] : []),
    '--cache-dir',
    ws.cache,
    ...(opts.summaryPath ? ['--summary-json', opts.summaryPath] : []),
    ...(opts.verbose ? [] : ['--quiet']),
    ...(opts.flags ?? []),
    '--',
    ...cmd,
  ];
}

/** The command run under pcache in W. */
export async function runCached(ws: Workspace, inv: Invocation, opts: PcacheOptions = {}): Promise<CachedRun> {
  const summaryPath = opts.noSummary ? undefined : path.join(ws.io, `summary.${++runCounter}.json`);
  const r = await runArgv(pcacheArgv(ws, commandOf(inv), { ...opts, summaryPath }), ws.work, ws.io, inv);
  let summary: Summary | null = null;
  if (summaryPath && fs.existsSync(summaryPath)) summary = JSON.parse(fs.readFileSync(summaryPath, 'utf8')) as Summary;
  return { ...r, summary, tree: snapshotTree(ws.work) };
}

export interface Phase {
  plain: RunCapture;
  cached: CachedRun;
}

/**
 * Runs the invocation plainly and under pcache from the same state of W
 * (snapshot, run one, restore, run the other). `plainFirst` decides which run
 * leaves its state in W.
 */
export async function comparePhase(ws: Workspace, inv: Invocation, plainFirst: boolean, opts: PcacheOptions = {}): Promise<Phase> {
  copyTree(ws.work, ws.snapshot);
  try {
    if (plainFirst) {
      const plain = await runPlain(ws, inv);
      copyTree(ws.snapshot, ws.work);
      const cached = await runCached(ws, inv, opts);
      return { plain, cached };
    }
    const cached = await runCached(ws, inv, opts);
    copyTree(ws.snapshot, ws.work);
    const plain = await runPlain(ws, inv);
    return { plain, cached };
  } finally {
    fs.rmSync(ws.snapshot, { recursive: true, force: true });
  }
}

export interface Scenario {
  /** initial contents of W */
  files?: Record<string, FileSpec>;
  /** more setup after `files` */
  setup?(work: string, ws: Workspace): void | Promise<void>;
  /** the first (cold cache) invocation; default ./p.sh with everything default */
  first?: Invocation | ((ws: Workspace) => Invocation);
  /** what changes between the two runs */
  change?(work: string, ws: Workspace): void | Promise<void>;
  /** the re-run invocation; default the first one */
  rerun?: Invocation | ((ws: Workspace) => Invocation);
  /** pcache options for the re-run */
  rerunOptions?: PcacheOptions;
}

export interface ScenarioResult {
  first: Phase;
  rerun: Phase;
}

/** Sets up W, compares plain and pcache on a cold cache, applies the change, compares again. */
export async function runScenario(scenario: Scenario): Promise<ScenarioResult> {
  const ws = createWorkspace();
  try {
    writeTree(ws.work, scenario.files ?? {});
    await scenario.setup?.(ws.work, ws);
    const resolve = (inv: Scenario['first']): Invocation => (typeof inv === 'function' ? inv(ws) : (inv ?? {}));
    const firstInv = resolve(scenario.first);
    const first = await comparePhase(ws, firstInv, true);
    await scenario.change?.(ws.work, ws);
    const rerunInv = scenario.rerun === undefined ? firstInv : resolve(scenario.rerun);
    const rerun = await comparePhase(ws, rerunInv, false, scenario.rerunOptions);
    return { first, rerun };
  } finally {
    ws.cleanup();
  }
}

// ---------------------------------------------------------------- assertions

function printable(b: Buffer): string {
  // byte-exact and readable for ASCII
  return b.toString('latin1');
}

/**
 * The one rule: same exit status, same stdout and stderr bytes, same tree
 * (paths in `ignoreContent` compared by type and mode only).
 */
export function expectIndistinguishable(phase: Phase, ignoreContent: readonly string[] = []): void {
  const { plain, cached } = phase;
  expect({ stderr: printable(cached.stderr) }).toEqual({ stderr: printable(plain.stderr) });
  expect({ stdout: printable(cached.stdout) }).toEqual({ stdout: printable(plain.stdout) });
  expect({ exitCode: cached.exitCode }).toEqual({ exitCode: plain.exitCode });
  expect(treeDifferences(cached.tree, plain.tree, ignoreContent)).toEqual([]);
}

/** Asserts the given summary fields (execution counts and exit code) exactly. */
export function expectSummary(
  run: CachedRun,
  expected: { total?: number; ran?: number; skipped?: number; uncacheable?: number; exitCode?: number },
): void {
  if (run.summary === null) {
    throw new Error(`pcache wrote no --summary-json (exit ${run.exitCode}); its stderr:\n${run.stderr.toString()}`);
  }
  const s = run.summary;
  const actual: Record<string, number> = {};
  for (const key of Object.keys(expected) as (keyof typeof expected)[]) {
    actual[key] = key === 'exitCode' ? s.exitCode : s.executions[key];
  }
  expect(actual).toEqual(expected);
  // every execution counted either ran or was replayed
  expect(s.executions.ran + s.executions.skipped).toBe(s.executions.total);
  expect(s.exitCode).toBe(run.exitCode);
}

/** File content of a tree entry as text (throws when not a small text file). */
export function textOf(tree: Tree, rel: string): string {
  const e = tree[rel];
  if (!e || e.type !== 'file' || e.text === undefined) throw new Error(`${rel} is not a small text file: ${describeEntry(e)}`);
  return e.text;
}

/** The one `pcache: tracer stats: {...}` line a PCACHE_TRACER_STATS=1 run printed, parsed. */
export function tracerStats(stderr: string): Record<string, number> {
  const lines = stderr.split('\n').filter((l) => l.startsWith('pcache: tracer stats: '));
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0].slice('pcache: tracer stats: '.length)) as Record<string, number>;
}
