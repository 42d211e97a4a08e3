// One `pcache run`: the command traced, every exec looked up in the store, hits
// replayed instead of run, misses recorded when they end (before their exit is
// let go, so a parent never sees outputs that are not stored yet).

import * as fs from 'fs';
import type { Entry, FileType as StoreFileType, InputRecord, NewEntry, NewOutput, OutputRecord } from '../../cache-store/entry';
import type { Store } from '../../cache-store/store';
import type { ExecDecision, ExecRequest, ExitRequest, FileType, PreimageRequest } from '../trace/native';
import { loadNative } from '../trace/native';
import type { ExecutionRecord } from '../trace/record';
import { runTraced, type ExecFilter, type SessionResult } from '../trace/session';
import type { TraceFolder, WholeFile } from '../trace/fold';
import { commandKey, EXEC_SIG_PREFIX_LENGTH, execSigOfKey, ignoredEnv, keyParts, type KeyParts } from './key';
import { RUN_REPORT_VERSION, writeRunReport, type ReportExecution, type RunReport } from './run-report';
import { applyOutputs, eventsForHit, KEEPS_MODE, REPLACED, writeStdio, type StdioBytes } from './replay';
import { RunHashes } from './run-hashes';
import { contentRecord, type InputChecker } from '../../cache-store/input-check';
import { stampOf, statOrUndefined } from '../../cache-store/hash-cache';
import { digestPieces } from '../../cache-store/digest';

export type Outcome = 'hit' | 'miss' | 'uncacheable';

export interface ExecutionOutcome {
  outcome: Outcome;
  argv: string[];
  pid: number;
  reason?: string;
  durationMs: number;
  savedMs: number;
}

export interface CachedRunSummary {
  exitCode: number | null;
  signal: number | null;
  total: number;
  ran: number;
  skipped: number;
  uncacheable: number;
  wallSeconds: number;
  savedSeconds: number;
  executions: ExecutionOutcome[];
  session: SessionResult;
}

export interface CachedRunOptions {
  argv: string[];
  file: string;
  env: NodeJS.ProcessEnv;
  cwd: string;
  store: Store;
  /** trace and record, never skip */
  noSkip?: boolean;
  /**
   * Assume that re-running an execution on its own results gives the same result: an input
   * it saw absent (or present) and then created (or deleted), now exactly as it left it,
   * matches. Off by default: a step like `mkdir out` (without -p) would fail when re-run.
   */
  assumeIdempotent?: boolean;
  /** called whenever counts change (live progress) */
  onProgress?: (counts: { running: number; ran: number; skipped: number; savedMs: number }) => void;
}

interface Preimage {
  timeMs: number;
  record: InputRecord | undefined;
}

const STORE_TYPE: Record<Exclude<FileType, '-'>, StoreFileType> = {
  f: 'file',
  d: 'dir',
  l: 'symlink',
  p: 'fifo',
  s: 'socket',
  c: 'char',
  b: 'block',
};

/**
 * A set-user-ID or set-group-ID program that would change this user's identity: traced, it
 * runs without that (the seccomp filter needs no_new_privs, and ptrace drops it too), so it
 * may do less than in a plain run (passwd -S cannot read /etc/shadow). pcache cannot give
 * the privilege back; it says so, runs it every time, and never stores what it did.
 */
export function lostPrivilege(exe: string): string | null {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(exe, { throwIfNoEntry: false });
  } catch {
    return null; // not ours to look at: the exec itself will say
  }
  if (!st) return null;
  const setuid = (st.mode & 0o4000) !== 0 && st.uid !== (process.geteuid?.() ?? st.uid);
  const setgid = (st.mode & 0o2000) !== 0 && (st.mode & 0o010) !== 0 && st.gid !== (process.getegid?.() ?? st.gid);
  if (!setuid && !setgid) return null;
  return `${exe} is set-${setuid ? 'user' : 'group'}-ID: traced, it runs without that privilege, unlike a plain run`;
}

/**
 * Programs known to write their input files' modification times into their output, which
 * they read with fstat (not traced: every program fstats its files). A content input is
 * keyed on bytes only, so these must run every time.
 */
export function storesTimestamps(exe: string, argv: readonly string[]): string | null {
  const name = exe.slice(exe.lastIndexOf('/') + 1);
  const args = argv.slice(1);
  const flag = (long: string, short: string): boolean =>
    args.some((a) => a === long || (/^-[a-zA-Z0-9]+$/.test(a) && a.includes(short)));
  if (name === 'gzip' || name === 'pigz') {
    const decompress = flag('--decompress', 'd') || flag('--test', 't') || flag('--list', 'l');
    const noName = flag('--no-name', 'n');
    const fileOperand = args.some((a) => !a.startsWith('-'));
    if (!decompress && !noName && fileOperand) return `${name} stores its input files' timestamps (use -n)`;
  }
  if (name === 'tar') {
    const first = args[0] ?? '';
    const creates = args.includes('--create') || args.includes('--append') || (/^-?[A-Za-z]+$/.test(first) && /[cr]/.test(first.replace(/^-/, '')));
    if (creates) return 'tar stores its input files\' timestamps';
  }
  if (name === 'zip') return 'zip stores its input files\' timestamps';
  return null;
}

/**
 * Programs whose output is the time they read or measured. The clock is read through the
 * vDSO, with no system call to stop on, so the tracer cannot see it: these are named, and
 * run every time. `date -r FILE` (a file's time, which is an input) and `date -d @N` do not
 * read the clock.
 */
export function readsClock(exe: string, argv: readonly string[]): string | null {
  const name = exe.slice(exe.lastIndexOf('/') + 1);
  const args = argv.slice(1);
  if (name === 'time') return 'time reports how long its command took';
  if (name !== 'date') return null;
  // date's options, as getopt reads them: -d/-f/-r/-s take a value (attached or next),
  // -I takes an optional attached one.
  const seen: Array<[string, string | undefined]> = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') break;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const opt = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const takes = ['date', 'file', 'reference', 'set'].some((o) => o.startsWith(opt) && opt.length > 0);
      seen.push([opt, eq >= 0 ? a.slice(eq + 1) : takes ? args[++i] : undefined]);
    } else if (/^-./.test(a)) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j];
        if (c === 'I') break;
        if ('dfrs'.includes(c)) {
          seen.push([c, j + 1 < a.length ? a.slice(j + 1) : args[++i]]);
          break;
        }
        seen.push([c, undefined]);
      }
    }
  }
  const is = (opt: string, short: string, long: string): boolean => opt === short || (opt.length > 1 && long.startsWith(opt));
  if (seen.some(([o]) => is(o, 's', 'set'))) return 'date sets the clock';
  const fixed = seen.some(([o, v]) => is(o, 'r', 'reference') || (is(o, 'd', 'date') && /^\s*@-?[0-9]+(\.[0-9]+)?\s*$/.test(v ?? '')));
  return fixed ? null : 'date reads the clock';
}

function label(argv: readonly string[]): string {
  return argv.slice(0, 4).join(' ');
}

/** Past this many bytes of small outputs waiting in memory, held exits store them at once. */
const HELD_BLOB_BYTES_MAX = 256 << 20;

export class CachedRun {
  private readonly opts: CachedRunOptions;
  private readonly store: Store;
  private readonly ignored: Set<string>;
  private readonly native = loadNative();
  private folder: TraceFolder | undefined;
  /** `${tgid}:${request time}` -> command key of the exec that started there */
  private readonly keys = new Map<string, { key: string; parts: KeyParts; rejected: ReportExecution['rejected'] }>();
  /** Regular-file stdout/stderr (not O_APPEND) at exec, by `tgid:time`: where writing started. */
  private readonly outStart = new Map<string, Array<{ fd: number; target: string; pos: number }>>();
  /** The same fds at the root process's exit stop, by pid (replaced at the pid's next exit): where writing ended. */
  private readonly outEnd = new Map<number, Map<number, { target: string; pos: number }>>();
  /** pids whose exec had such a stdout/stderr: only their exits are looked at */
  private readonly outPids = new Set<number>();
  /** processes that exec'd with a regular file as fd 0: where its offset ends is read at their exit */
  private readonly stdinPids = new Set<number>();
  private readonly report: ReportExecution[] = [];
  private readonly hitReports: ReportExecution[] = [];
  /** execution id -> why a descendant made it uncacheable (found when storing, not folding) */
  private readonly tainted = new Map<number, string>();
  /** pid -> offset of its fd 0 when it exited */
  private readonly stdinEnd = new Map<number, number>();
  private readonly preimages = new Map<string, Preimage[]>();
  private readonly ended: ExecutionRecord[] = [];
  private readonly outcomes: ExecutionOutcome[] = [];
  private storing: Promise<void> = Promise.resolve();
  /**
   * What may wait until after an exit is let go: storing captured stdout/stderr (bytes in
   * memory, which nobody can change) and the index rows. Runs in order, after `storing`.
   */
  private publishing: Promise<void> = Promise.resolve();
  /** Bytes of small output files read under a held exit and not stored yet. */
  private heldBlobBytes = 0;
  /** Digests of blobs a queued publication stores (held outputs, captured streams): how many. */
  private readonly queuedBlobs = new Map<string, number>();
  /** digests learnt in this run, so a file is read once, not once per enclosing execution */
  private readonly runHashes = new RunHashes((p) => this.folder?.changeMark(p) ?? 0);
  private running = 0;
  private ran = 0;
  private skipped = 0;
  private savedMs = 0;
  private runId = 0;
  /** exec signatures the tracer knows may have an entry (execFilter) */
  private readonly knownSigs = new Set<string>();
  private allowSigs?: (sigs: string[]) => void;
  private sigRefresh?: NodeJS.Timeout;

  constructor(opts: CachedRunOptions) {
    this.opts = opts;
    this.store = opts.store;
    this.ignored = ignoredEnv(opts.env);
  }

  async run(): Promise<CachedRunSummary> {
    const started = Date.now();
    this.runId = this.store.recordRun({ command: this.opts.argv.join(' '), cwd: this.opts.cwd, startedMs: started });
    const env = Object.entries(this.opts.env)
      .filter((kv): kv is [string, string] => kv[1] !== undefined)
      .map(([k, v]) => `${k}=${v}`);
    let session: SessionResult;
    try {
      session = await runTraced({
        argv: this.opts.argv,
        file: this.opts.file,
        env,
        cwd: this.opts.cwd,
        ignoreDirs: [this.store.dir],
        spill: { dir: this.store.blobs.tmpDir, overBytes: captureMemoryBytes(this.opts.env) },
        captureMax: captureMaxBytes(this.opts.env),
        decideExec: (req) => this.decideExec(req),
        execFilter: this.execFilter(),
        onExecutionEnd: (rec) => {
          this.running = Math.max(0, this.running - 1);
          this.ended.push(rec);
          this.progress();
        },
        onExitRequest: (req) => this.onExitRequest(req),
        onPreimage: (req) => this.onPreimage(req),
        onFolder: (f) => {
          this.folder = f;
        },
      });
      // Executions that ended without a held exit (a process left running, a signal death ...).
      await this.storeEnded();
      await this.storing;
      await this.publishing;
    } finally {
      // The once-a-second look for other runs' entries ends with the command, however it ends.
      if (this.sigRefresh) clearInterval(this.sigRefresh);
    }
    const wallSeconds = (Date.now() - started) / 1000;
    const uncacheable = this.outcomes.filter((o) => o.outcome === 'uncacheable').length;
    this.writeReport(session, started, wallSeconds);
    this.store.finishRun(this.runId, {
      endedMs: Date.now(),
      exitStatus: session.exitCode ?? (session.signal !== null ? 128 + session.signal : null),
    });
    return {
      exitCode: session.exitCode,
      signal: session.signal,
      total: this.ran + this.skipped,
      ran: this.ran,
      skipped: this.skipped,
      uncacheable,
      wallSeconds,
      savedSeconds: this.savedMs / 1000,
      executions: this.outcomes,
      session,
    };
  }

  private writeReport(session: SessionResult, started: number, wallSeconds: number): void {
    const ran = [...this.report].sort((a, b) => a.id - b.id);
    let next = ran.reduce((m, r) => Math.max(m, r.id), 0) + 1;
    for (const h of this.hitReports) h.id = next++;
    const report: RunReport = {
      version: RUN_REPORT_VERSION,
      runId: this.runId,
      argv: this.opts.argv,
      cwd: this.opts.cwd,
      startedMs: started,
      endedMs: Date.now(),
      exitCode: session.exitCode,
      signal: session.signal,
      wallSeconds,
      savedSeconds: this.savedMs / 1000,
      executions: [...ran, ...this.hitReports],
    };
    try {
      writeRunReport(this.store.dir, report);
    } catch (e) {
      process.stderr.write(`pcache: warning: could not write the run report: ${(e as Error).message}\n`);
    }
  }

  /**
   * Which execs are worth asking about: only those whose signature (exe and argv) leads
   * some entry's key. Every other exec is a miss whatever its inputs, and runs without
   * waiting for this thread (a wait of about a millisecond per exec here, most of a
   * cold run's overhead on short steps). Entries published since, by this run or another
   * one on the same cache, are added as they appear. With --no-skip nothing is asked.
   */
  private execFilter(): ExecFilter {
    if (this.opts.noSkip) return { initial: [], connect: () => undefined };
    const read = (afterId: number): { sigs: string[]; lastId: number } => {
      const { prefixes, lastId } = this.store.commandKeyPrefixes(afterId, EXEC_SIG_PREFIX_LENGTH);
      const sigs = [...prefixes].map(execSigOfKey).filter((x): x is string => x !== null && !this.knownSigs.has(x));
      for (const sig of sigs) this.knownSigs.add(sig);
      return { sigs, lastId };
    };
    const first = read(0);
    let lastId = first.lastId;
    return {
      initial: first.sigs,
      connect: (allow) => {
        this.allowSigs = allow;
        this.sigRefresh = setInterval(() => {
          try {
            const next = read(lastId);
            lastId = next.lastId;
            if (next.sigs.length > 0) allow(next.sigs);
          } catch {
            // the index busy or gone: the next tick tries again, and a miss is always correct
          }
        }, SIG_REFRESH_MS);
        this.sigRefresh.unref();
      },
    };
  }

  /** A signature that now has an entry: its next exec is asked about. */
  private allowSig(key: string): void {
    const sig = execSigOfKey(key);
    if (sig === null || this.knownSigs.has(sig)) return;
    this.knownSigs.add(sig);
    this.allowSigs?.([sig]);
  }

  private progress(): void {
    this.opts.onProgress?.({ running: this.running, ran: this.ran, skipped: this.skipped, savedMs: this.savedMs });
  }

  private async decideExec(req: ExecRequest): Promise<ExecDecision> {
    const parts = keyParts(req, this.ignored);
    const key = commandKey(parts, req.execSig);
    const rejected: ReportExecution['rejected'] = [];
    this.keys.set(`${req.tgid}:${req.time}`, { key, parts, rejected });
    // A stdout read back (req.readback) is checked by the read-back itself: its bytes are the
    // file's region from where fd 1 stood to where it ended, so only other files are looked at.
    const files = req.fds.filter(
      (f) => (f.fd === 2 || (f.fd === 1 && !req.readback)) && f.kind === 'file' && (f.flags & fs.constants.O_APPEND) === 0,
    );
    // Where a stdin file's offset ends is read at the exit only where it can matter.
    if (req.fds.some((f) => f.fd === 0 && f.kind === 'file')) this.stdinPids.add(req.tgid);
    if (files.length > 0) {
      this.outStart.set(`${req.tgid}:${req.time}`, files.map((f) => ({ fd: f.fd, target: f.target, pos: f.pos })));
      this.outPids.add(req.tgid);
    }
    const run: ExecDecision = { action: 'run', holdExit: true };
    const lost = lostPrivilege(req.path);
    if (lost !== null) {
      this.unprivileged.set(`${req.tgid}:${req.time}`, lost);
      this.warnOnce(lost);
    }
    if (!this.opts.noSkip && lost === null && !req.decided) {
      let skip: ExecDecision | null = null;
      try {
        skip = await this.tryHit(req, key, parts, rejected);
      } catch (e) {
        // The execution then runs, and is counted, held and stored like any miss.
        this.warnOnce(`cannot look up ${label(req.argv)}: ${(e as Error).message}`);
      }
      if (skip) return skip;
    }
    this.ran++;
    this.running++;
    this.progress();
    return run;
  }

  private readonly warned = new Set<string>();
  /** executions (by `${tgid}:${start}`) of set-user/group-ID programs: see lostPrivilege */
  private readonly unprivileged = new Map<string, string>();

  private warnOnce(message: string): void {
    const line = message.replace(/\s*\n\s*/g, ' ');
    if (this.warned.has(line)) return;
    this.warned.add(line);
    process.stderr.write(`pcache: warning: ${line}\n`);
  }

  /** The size of the terminal a terminal input names (/dev/fd/N) for this exec, as "ROWSxCOLUMNS". */
  private terminalSize(req: ExecRequest, path: string): string | null {
    const m = /^\/dev\/fd\/([0-2])$/.exec(path);
    const f = m ? req.fds.find((x) => x.fd === Number(m[1])) : undefined;
    if (f === undefined || f.kind !== 'tty') return null;
    const size = this.native.termSize(f.target);
    return size ? `${size[0]}x${size[1]}` : null;
  }

  /** A hit replayed: the decision that skips the execution; null when it must run. */
  private async tryHit(req: ExecRequest, key: string, parts: KeyParts, rejected: ReportExecution['rejected']): Promise<ExecDecision | null> {
    const checker = this.store.newInputChecker(
      (path) => this.terminalSize(req, path),
      () => (req.cpus === undefined ? null : String(req.cpus)),
    );
    const hit = this.lookup(key, rejected, checker);
    if (!hit) return null;
    const parent = this.folder?.executionIdOf(req.pid) ?? null;
    // What the lookup saw of the hit's content inputs, for outputs left in place (replay.ts).
    const newestInputMs = (): number => checker.newestMtimeMs(hit.inputs.filter((i) => i.kind === 'content').map((i) => i.path));
    const replayed = await this.replay(req, hit, newestInputMs);
    if (!replayed) return null;
    this.skipped++;
    this.savedMs += hit.durationMs;
    const outcome: ExecutionOutcome = {
      outcome: 'hit',
      argv: req.argv,
      pid: req.tgid,
      durationMs: 0,
      savedMs: hit.durationMs,
    };
    this.outcomes.push(outcome);
    this.store.recordRunExecution(this.runId, {
      commandKey: key,
      entryId: hit.id,
      label: label(req.argv),
      outcome: 'hit',
      durationMs: 0,
      savedMs: hit.durationMs,
    });
    this.hitReports.push({
      id: 0,
      parent,
      outcome: 'hit',
      reasons: [],
      argv: req.argv,
      exe: req.path,
      cwd: req.cwd,
      key,
      keyParts: parts,
      entryId: hit.id,
      pid: req.tgid,
      startMs: req.time,
      endMs: req.time,
      durationMs: 0,
      savedMs: hit.durationMs,
      exitCode: hit.exitStatus,
      signal: null,
      inputs: hit.inputs.map((i) => ({ path: i.path, kind: i.kind, hash: i.hash ?? null })),
      outputs: hit.outputs.map((o) => ({ path: o.path, kind: o.kind, hash: o.hash ?? o.linkTarget ?? null })),
      rejected,
    });
    this.progress();
    return { action: 'skip', exitCode: hit.exitStatus };
  }

  /**
   * The newest candidate whose inputs match. With --assume-idempotent, one relaxation: an
   * input the execution saw absent (or present) that the execution itself then created (or
   * deleted), and that is now exactly what the execution left there, matches (re-running an
   * execution on its own results is then assumed to give the same result: mkdir -p, cp,
   * ln -sf, tools that check their outputs).
   */
  private lookup(key: string, rejected: ReportExecution['rejected'], checker: InputChecker): Entry | null {
    // The store's lookup reads each candidate's inputs from its packed manifest (one value per
    // entry, not a query per input row) and memoises stats across candidates.
    const tolerate = this.opts.assumeIdempotent
      ? (input: InputRecord, _reason: string, outputs: readonly OutputRecord[]) =>
          this.isOwnResult(input, outputs.find((o) => o.path === input.path))
      : undefined;
    const { hit, rejected: rej } = this.store.lookup(key, { tolerate, checker });
    for (const { entryId, mismatch } of rej) {
      rejected.push({ entryId, path: mismatch.path, kind: mismatch.kind, reason: mismatch.reason });
      if (this.opts.env.PCACHE_DEBUG) {
        process.stderr.write(`pcache: debug: candidate ${entryId} rejected: ${mismatch.path} (${mismatch.kind}): ${mismatch.reason}\n`);
      }
    }
    return hit;
  }

  private isOwnResult(input: InputRecord, output: OutputRecord | undefined): boolean {
    if (!output) return false;
    if (input.kind === 'absent') {
      try {
        const st = fs.lstatSync(output.path);
        // Mode included: a redirection onto an existing file keeps that file's mode, so a
        // changed mode is a changed starting state.
        const sameMode = output.mode == null || (st.mode & 0o7777) === (output.mode & 0o7777);
        switch (output.kind) {
          case 'mkdir':
            return st.isDirectory() && sameMode;
          case 'symlink':
            return st.isSymbolicLink() && fs.readlinkSync(output.path) === (output.linkTarget ?? '');
          case 'content':
            return st.isFile() && sameMode && this.store.hashCache.hashFile(output.path)?.hash === output.hash;
          default:
            return false;
        }
      } catch {
        return false;
      }
    }
    // A file it read and then replaced wholesale (clustalo -o reads what is there first,
    // sort -o f f sorts f): now exactly what it left there, it stands for what it replaced.
    if (input.kind === 'content' && output.kind === 'content' && ((output.mode ?? 0) & REPLACED) !== 0) {
      const st = statOrUndefined(output.path);
      return st !== undefined && st.isFile() && (Number(st.mode) & 0o7777) === ((output.mode ?? 0) & 0o7777) && this.store.hashCache.hashFile(output.path, st)?.hash === output.hash;
    }
    if (input.kind === 'metadata' && output.kind === 'deleted') {
      try {
        fs.lstatSync(output.path);
        return false;
      } catch {
        return true;
      }
    }
    return false;
  }

  /** Restores a hit; false when it cannot be replayed (the execution then runs). */
  private async replay(req: ExecRequest, entry: Entry, newestInputMs: () => number): Promise<boolean> {
    const stdout = entry.stdoutHash ? this.store.readBlob(entry.stdoutHash) : Buffer.alloc(0);
    const stderr = entry.stderrHash ? this.store.readBlob(entry.stderrHash) : Buffer.alloc(0);
    if (stdout === null || stderr === null) return false;
    // Marks before the outputs are touched: a change by anyone else from then on forgets them.
    const marks = new Map(entry.outputs.filter((o) => o.kind === 'content').map((o) => [o.path, this.runHashes.mark(o.path)]));
    const applied = await applyOutputs(this.store, entry, newestInputMs);
    if (applied === null) return false;
    const bytes: StdioBytes = { stdout, stderr };
    // A pipe whose reader has left: only the program itself knows what it does about that.
    if ((await writeStdio((pid, fd) => this.native.dupFd(pid, fd), req, bytes)) === 'reader gone') return false;
    const untouched = applied.filter((a) => a.known && a.output.hash && marks.get(a.output.path) === this.runHashes.mark(a.output.path));
    // The hit's own writes, folded now, are what was just verified or restored.
    this.folder?.events(eventsForHit(req, entry, applied, bytes));
    for (const a of untouched) {
      const p = a.output.path;
      if (a.known && a.output.hash) this.runHashes.remember(p, a.known.stamp, a.output.hash, a.known.hashedAtNs, this.runHashes.mark(p));
    }
    return true;
  }

  private async onPreimage(req: PreimageRequest): Promise<void> {
    // The tracee is stopped before its change: the file or directory is still what was read.
    for (const item of req.items) {
      const record = this.store.snapshotInput(item.path, item.kind);
      const key = `${item.kind}:${item.path}`;
      let list = this.preimages.get(key);
      if (!list) {
        list = [];
        this.preimages.set(key, list);
      }
      list.push({ timeMs: Date.now(), record });
    }
  }

  /**
   * A regular-file stdout/stderr whose offset did not end where writing the captured bytes in
   * order would leave it: the execution seeked (lseek, pwrite) and wrote over or past bytes,
   * and a replay, which writes the capture in order, would leave another file. (O_APPEND
   * writes always land at the end, in order: not checked.)
   */
  private movedOutput(rec: ExecutionRecord, start: Array<{ fd: number; target: string; pos: number }> | undefined): string | null {
    // kept: every execution of an exec chain (`python3` shim -> bash -> python) ends at this exit
    const ends = this.outEnd.get(rec.pid);
    if (!start || !ends) return null;
    for (const s of start) {
      const end = ends.get(s.fd);
      if (!end || end.target !== s.target) continue; // fd replaced or closed: another description
      // 2>&1 onto one file: one stream, kept as stdout
      const shared = rec.stdout.target === rec.stderr.target;
      if (s.fd === 2 && shared) continue;
      const written = s.fd === 1 ? (rec.stdout.bytes ?? 0) + (shared ? rec.stderr.bytes ?? 0 : 0) : rec.stderr.bytes ?? 0;
      if (end.pos !== s.pos + written) {
        const name = s.fd === 1 ? 'stdout' : 'stderr';
        return `moved the offset of its ${name} file ${s.target} (wrote ${written} bytes from offset ${s.pos}, ended at ${end.pos}); a replay writes in order`;
      }
    }
    return null;
  }

  private async onExitRequest(req: ExitRequest): Promise<void> {
    // Still open at the exit stop: where the process left a stdin file's offset.
    if (this.stdinPids.delete(req.pid)) {
      try {
        const info = fs.readFileSync(`/proc/${req.pid}/task/${req.tid}/fdinfo/0`, 'utf8');
        const m = /^pos:\s*(\d+)/m.exec(info);
        if (m) this.stdinEnd.set(req.pid, Number(m[1]));
      } catch {
        // no fd 0: nothing shared to leave behind
      }
    }
    if (this.outPids.delete(req.pid)) this.outEnd.set(req.pid, this.stdioEnds(`/proc/${req.pid}/task/${req.tid}`));
    await this.storeEnded();
  }

  /** Where a held task's fd 1 and 2 point and stand (fdinfo `pos`), read at its exit stop (`task`: its /proc directory). */
  private stdioEnds(task: string): Map<number, { target: string; pos: number }> {
    const ends = new Map<number, { target: string; pos: number }>();
    for (const fd of [1, 2]) {
      try {
        const m = /^pos:\s*(\d+)/m.exec(fs.readFileSync(`${task}/fdinfo/${fd}`, 'utf8'));
        if (m) ends.set(fd, { target: fs.readlinkSync(`${task}/fd/${fd}`), pos: Number(m[1]) });
      } catch {
        // closed: where it ended is not known, and not checked
      }
    }
    return ends;
  }

  /** Stores every execution that ended since the last call, in order. */
  private storeEnded(): Promise<void> {
    const batch = this.ended.splice(0);
    this.storing = this.storing.then(async () => {
      for (const rec of batch) await this.storeOne(rec);
    });
    return this.storing;
  }

  private reportOf(rec: ExecutionRecord, outcome: ReportExecution['outcome'], reasons: string[], entryId: number | null): ReportExecution {
    const k = this.keys.get(`${rec.pid}:${rec.start}`);
    return {
      id: rec.id,
      parent: rec.parent,
      outcome,
      reasons,
      argv: rec.argv,
      exe: rec.exe,
      cwd: rec.cwd,
      key: k?.key ?? '',
      keyParts: k?.parts ?? keyParts({ token: 0, pid: rec.pid, tgid: rec.pid, path: rec.exe, execSig: '', links: [], argv: rec.argv, env: rec.env, cwd: rec.cwd, umask: rec.umask, fds: [], time: rec.start }, this.ignored),
      entryId,
      pid: rec.pid,
      startMs: rec.start,
      endMs: rec.end,
      durationMs: (rec.end ?? rec.start) - rec.start,
      savedMs: 0,
      exitCode: rec.exitCode,
      signal: rec.signal,
      inputs: rec.inputs.map((i) => ({ path: i.path, kind: i.kind })),
      outputs: rec.outputs.map((o) => ({ path: o.path, kind: o.kind, hash: o.linkTarget ?? null })),
      rejected: k?.rejected ?? [],
    };
  }

  /** Queues `step` after the publishing already queued; a failure is a warning, not a stop. */
  private later(step: () => void | Promise<void>): void {
    this.publishing = this.publishing.then(step).catch((e: unknown) => {
      process.stderr.write(`pcache: warning: ${(e as Error).message}\n`);
    });
  }

  /** Records the outcome after what is queued before it, so outcomes keep their order. */
  private uncacheable(rec: ExecutionRecord, reason: string): void {
    this.later(() => this.recordUncacheable(rec, reason));
  }

  private recordUncacheable(rec: ExecutionRecord, reason: string): void {
    this.report.push(this.reportOf(rec, 'uncacheable', rec.uncacheable.length > 0 ? rec.uncacheable : [reason], null));
    this.outcomes.push({
      outcome: 'uncacheable',
      argv: rec.argv,
      pid: rec.pid,
      reason,
      durationMs: (rec.end ?? rec.start) - rec.start,
      savedMs: 0,
    });
    this.store.recordRunExecution(this.runId, {
      label: label(rec.argv),
      outcome: 'uncacheable',
      reason,
      durationMs: (rec.end ?? rec.start) - rec.start,
    });
  }

  /**
   * The input as the execution saw it. Contents and listings: the state before the first
   * change made after it started (a preimage), else the state now. Absence is what the
   * tracer saw. Metadata of a path the execution itself changed: its type before.
   */
  private inputRecord(
    rec: ExecutionRecord,
    input: ExecutionRecord['inputs'][number],
    changed: ReadonlyMap<string, ExecutionRecord['outputs'][number]>,
  ): InputRecord | undefined {
    const { path, kind } = input;
    if (kind === 'absent') return { path, kind };
    if (kind === 'terminal' || kind === 'cpus') return input.size ? { path, kind, hash: input.size } : undefined;
    if (kind === 'content' || kind === 'dirlist') {
      const pre = this.preimages.get(`${kind}:${path}`)?.find((p) => p.timeMs >= rec.start);
      if (pre) return pre.record;
    }
    if (kind === 'metadata' && changed.has(path) && input.before !== undefined && input.before !== '-') {
      // A file truncated in place keeps its mode: the mode it ended with is the mode it had
      // (or one a chmod set regardless of what it was).
      const out = changed.get(path);
      const mode = out?.kind === 'content' && input.before === 'f' ? (out.mode ?? null) : null;
      return { path, kind, type: STORE_TYPE[input.before], mode };
    }
    if (kind === 'content') {
      const st = statOrUndefined(path);
      const known = this.runHashes.lookup(path, st);
      if (known && st) return contentRecord(path, st, known.hash, known.hashedAtNs);
      const mark = this.runHashes.mark(path);
      const record = this.store.snapshotInput(path, kind);
      if (record?.hash && record.dev != null && record.ino != null && record.size != null && record.mtimeNs != null && record.ctimeNs != null) {
        const stamp = { dev: record.dev, ino: record.ino, size: record.size, mtimeNs: record.mtimeNs, ctimeNs: record.ctimeNs };
        this.runHashes.remember(path, stamp, record.hash, record.verifiedAtNs ?? 0n, mark);
      }
      return record;
    }
    return this.store.snapshotInput(path, kind);
  }

  private async storeOne(rec: ExecutionRecord): Promise<void> {
    // What it wrote to its stdout and stderr, taken out of the fold now, stored or not, so a
    // run does not keep every byte its pipes carried: pieces in memory (a large stdout is
    // hashed and written without first being joined into one buffer), or a spilled file
    // that is removed once it is stored or not needed.
    const none = { chunks: [] };
    const stdout = this.wholeFileKnown(this.folder?.takeCaptured(rec.id, 'stdout') ?? none);
    const stderr = this.wholeFileKnown(this.folder?.takeCaptured(rec.id, 'stderr') ?? none);
    const spilled = [stdout, stderr].flatMap((c) => ('file' in c ? [c.file] : []));
    let handedOver = false;
    try {
      handedOver = (await this.storeCaptured(rec, stdout, stderr, spilled)) === true;
    } finally {
      if (!handedOver) for (const f of spilled) fs.rmSync(f, { force: true });
    }
  }

  /**
   * A stream read back from its stdout file whole (`tool > f`) is that file's content: hashed
   * now, while the exit is held, its digest stands for the file in this run. The next step
   * that reads f, and the enclosing execution that stores f as its output, then neither read
   * nor hash it again (1,000 such files were ~0.2 s of a cold run's JS thread). The digest
   * goes with the bytes, so storing them does not hash them again either.
   */
  private wholeFileKnown(c: { chunks: readonly Buffer[]; whole?: WholeFile } | { file: string }): CapturedStream {
    if (!('chunks' in c) || !c.whole) return c;
    const digest = digestPieces(c.chunks);
    const { path, stamp, atNs, mark } = c.whole;
    this.runHashes.remember(path, stamp, digest, atNs, mark);
    // And for later runs, as if it had been read: an unchanged re-run that restores f finds
    // it already holds its content by its stat alone (without this row it hashed every such
    // output again: chunks at bench size, 0.25 -> 0.47 s).
    this.store.hashCache.record(path, stamp, digest, atNs);
    return { chunks: c.chunks, digest };
  }

  /** True once the entry's publishing is queued (which then owns the `spilled` files). */
  private async storeCaptured(rec: ExecutionRecord, stdout: CapturedStream, stderr: CapturedStream, spilled: string[]): Promise<boolean | void> {
    const durationMs = (rec.end ?? rec.start) - rec.start;
    // Taken now: an execution that turns out uncacheable before it is looked at must not leave it behind.
    const outStart = this.outStart.get(`${rec.pid}:${rec.start}`);
    this.outStart.delete(`${rec.pid}:${rec.start}`);
    const passedUp = this.tainted.get(rec.id);
    if (passedUp !== undefined && rec.parent !== null && !this.tainted.has(rec.parent)) {
      this.tainted.set(rec.parent, `child execution ${rec.id}: ${passedUp}`);
    }
    if (rec.uncacheable.length > 0) return this.uncacheable(rec, rec.uncacheable[0]);
    if (rec.exitCode === null) return this.uncacheable(rec, rec.signal !== null ? `killed by signal ${rec.signal}` : 'no exit status');
    // A stdin file shared with the caller (`while read ...; done < f`, `{ head -n1; cat; } < f`):
    // where its offset ends up is an effect a replay would not reproduce.
    const end = this.stdinEnd.get(rec.pid);
    if (rec.stdin.kind === 'file' && end !== undefined && end !== (rec.stdin.pos ?? 0)) {
      return this.uncacheable(rec, `moved the offset of its stdin file ${rec.stdin.target} (shared with its caller)`);
    }
    const moved = this.movedOutput(rec, outStart);
    if (moved !== null) return this.uncacheable(rec, moved);
    const key = this.keys.get(`${rec.pid}:${rec.start}`)?.key;
    if (key === undefined) return this.uncacheable(rec, 'exec was not looked up');
    // Reasons found here taint the ancestors too (their records cover this subtree); a child
    // always ends, and is stored, before its parent.
    const taint = (reason: string): void => {
      if (rec.parent !== null && !this.tainted.has(rec.parent)) this.tainted.set(rec.parent, `child execution ${rec.id}: ${reason}`);
      this.uncacheable(rec, reason);
    };
    const inherited = this.tainted.get(rec.id);
    if (inherited) return taint(inherited);
    const lost = this.unprivileged.get(`${rec.pid}:${rec.start}`);
    if (lost) return taint(lost);
    const known = storesTimestamps(rec.exe, rec.argv) ?? readsClock(rec.exe, rec.argv);
    if (known) return taint(known);
    // Hard links among outputs would come back as separate files.
    const outputStats = new Map<string, fs.BigIntStats>();
    for (const o of rec.outputs) {
      if (o.kind !== 'content') continue;
      const st = fs.lstatSync(o.path, { bigint: true, throwIfNoEntry: false });
      if (st === undefined) continue; // gone since the end of the execution: publishing reports it
      if (st.nlink > 1n) return taint(`output ${o.path} has more than one name (hard link)`);
      outputStats.set(o.path, st);
    }
    const inputs: InputRecord[] = [];
    const changed = new Map(rec.outputs.map((o) => [o.path, o]));
    for (const i of rec.inputs) {
      let r: InputRecord | undefined;
      let m: InputRecord | undefined;
      try {
        r = this.inputRecord(rec, i, changed);
        if (!r) return this.uncacheable(rec, `input ${i.path} changed while it ran (${i.kind})`);
        // Read and also looked at by path: its metadata (a modification time too) is checked
        // besides its bytes, as its own input record.
        if (i.kind === 'content' && i.statted) {
          m = this.inputRecord(rec, { path: i.path, kind: 'metadata', before: i.before }, changed);
          if (!m) return this.uncacheable(rec, `input ${i.path} changed while it ran (metadata)`);
        }
      } catch (e) {
        // A file this user may not read (passwd tries /etc/shadow; the open fails, but the
        // tracer saw it at its entry): nothing to check it by later. The run goes on.
        return this.uncacheable(rec, `cannot read its input ${i.path}: ${(e as Error).message}`);
      }
      inputs.push(r);
      if (m) inputs.push(m);
    }
    const marks = new Map<string, number>();
    const outputs: NewOutput[] = rec.outputs.map((o) => {
      const out: NewOutput = {
        path: o.path,
        kind: o.kind,
        mode: o.mode == null ? null : o.mode | (o.keepsMode ? KEEPS_MODE : 0) | (o.how === 'created' || o.how === 'truncated' ? REPLACED : 0),
        linkTarget: o.linkTarget ?? null,
      };
      if (o.kind !== 'content') return out;
      const st = outputStats.get(o.path);
      const known = this.runHashes.lookup(o.path, st);
      // Known in this run (stored by a child, a hit's output, read as an input) and in the
      // store, or queued to be stored before this entry is published (publishing is one queue
      // in order): not read again. (A file only read so far has no blob yet.)
      if (known && st && (this.queuedBlobs.has(known.hash) || this.store.blobs.has(known.hash))) {
        out.hash = known.hash;
        out.source = { file: o.path };
        if (out.mode == null) out.mode = Number(st.mode & 0o7777n);
      } else {
        marks.set(o.path, this.runHashes.mark(o.path));
      }
      return out;
    });
    const entry: NewEntry = {
      commandKey: key,
      exitStatus: rec.exitCode,
      stdout: blobSourceOf(stdout),
      stderr: blobSourceOf(stderr),
      durationMs,
      inputs,
      outputs,
    };
    // Output files are read now, while the exit is held: once it is let go, the caller
    // may change or remove them. A small one is only read and hashed here, its blob written
    // from memory after the exit is let go (a file creation is the slow part); a large one
    // is stored here.
    const heldBlobs: Array<{ bytes: Buffer; hash: string }> = [];
    try {
      for (const out of outputs) {
        if (out.kind !== 'content' || out.hash) continue;
        const small = this.heldBlobBytes < HELD_BLOB_BYTES_MAX ? this.store.readSmallFile(out.path) : null;
        if (small) {
          heldBlobs.push({ bytes: small.bytes, hash: small.hash });
          this.heldBlobBytes += small.size;
        }
        const stored = small ?? (await this.store.storeFile(out.path));
        out.hash = stored.hash;
        if (out.mode == null) out.mode = Number(stored.stat.mode & 0o7777n);
        const mark = marks.get(out.path);
        if (stored.stable && mark !== undefined) this.runHashes.remember(out.path, stampOf(stored.stat), stored.hash, stored.readStartNs, mark);
      }
    } catch (e) {
      // An output that vanished before it could be stored (a racing writer): nothing to replay.
      return this.uncacheable(rec, `could not store its outputs: ${(e as Error).message}`);
    }
    // From here on no file is read again: a blob a concurrent gc removed meanwhile makes
    // publishing fail (a miss next time) instead of storing what the file holds by then.
    for (const out of outputs) delete out.source;
    // The captured stdout/stderr and the index rows wait until the exit is let go.
    const queued = [...heldBlobs.map((b) => b.hash), ...[entry.stdout, entry.stderr].flatMap((c) => (c && 'digest' in c && c.digest ? [c.digest] : []))];
    for (const h of queued) this.queuedBlobs.set(h, (this.queuedBlobs.get(h) ?? 0) + 1);
    this.later(async () => {
      let published: Awaited<ReturnType<Store['publishEntry']>>;
      try {
        try {
          for (const { bytes, hash } of heldBlobs) await this.store.blobs.storeChunks([bytes], hash);
        } finally {
          for (const { bytes } of heldBlobs) this.heldBlobBytes -= bytes.length;
        }
        published = await this.store.publishEntry(entry);
        this.allowSig(key);
      } catch (e) {
        return this.recordUncacheable(rec, `could not store its outputs: ${(e as Error).message}`);
      } finally {
        for (const f of spilled) fs.rmSync(f, { force: true });
        for (const h of queued) {
          const n = this.queuedBlobs.get(h)! - 1;
          if (n > 0) this.queuedBlobs.set(h, n);
          else this.queuedBlobs.delete(h);
        }
      }
      this.outcomes.push({ outcome: 'miss', argv: rec.argv, pid: rec.pid, durationMs, savedMs: 0 });
      const r = this.reportOf(rec, 'miss', [], published.id);
      r.inputs = inputs.map((i) => ({ path: i.path, kind: i.kind, hash: i.hash ?? null }));
      r.outputs = published.outputs.map((o) => ({ path: o.path, kind: o.kind, hash: o.hash ?? o.linkTarget ?? null }));
      this.report.push(r);
      this.store.recordRunExecution(this.runId, { commandKey: key, entryId: published.id, label: label(rec.argv), outcome: 'miss', durationMs });
    });
    return true;
  }
}

type CapturedStream = { chunks: readonly Buffer[]; digest?: string } | { file: string };

/** A captured stream as a blob source, or null when nothing was written. */
function blobSourceOf(c: CapturedStream): CapturedStream | null {
  if ('file' in c) return c;
  return c.chunks.some((b) => b.length > 0) ? c : null;
}

/**
 * How much of one execution's stdout or stderr is kept in memory before the rest goes to a
 * file in the cache's tmp directory: PCACHE_CAPTURE_MEMORY (bytes), default 256 MiB (a
 * bounded amount per stream; below it nothing is written twice).
 */
export function captureMemoryBytes(env: Readonly<Record<string, string | undefined>>): number {
  const v = env.PCACHE_CAPTURE_MEMORY;
  if (v !== undefined && /^[0-9]+$/.test(v)) return Number(v);
  return 256 * 1024 * 1024;
}

/** How often the exec filter looks for entries other pcache runs published meanwhile. */
const SIG_REFRESH_MS = 1000;

/** The most a replay can write from one blob (what one read of it can hold). */
export const CAPTURE_MAX_LIMIT = 2 ** 31 - 1;

/**
 * Past how many bytes of stdout or stderr an execution is not cached: PCACHE_CAPTURE_MAX
 * (bytes, at most CAPTURE_MAX_LIMIT), default 1 GiB. (`bwa mem | samtools sort` on a whole
 * genome: bwa runs every time, the script around it can still be skipped as a whole.)
 */
export function captureMaxBytes(env: Readonly<Record<string, string | undefined>>): number {
  const v = env.PCACHE_CAPTURE_MAX;
  if (v !== undefined && /^[0-9]+$/.test(v)) return Math.min(Number(v), CAPTURE_MAX_LIMIT);
  return 1024 * 1024 * 1024;
}
