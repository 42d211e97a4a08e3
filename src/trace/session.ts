// Runs one command under the native tracer and folds what it reports into a
// TraceRecord. The exec decision is an injectable async function so the cache
// (issue 4) can answer "skip" without this file knowing about it.

import * as fs from 'fs';
import * as os from 'os';
import { TraceFolder } from './fold';
import { loadNative, type ExecDecision, type ExecRequest, type ExitRequest, type NativeTracer, type PreimageRequest } from './native';
import type { ExecutionRecord, TraceRecord } from './record';

export type DecideExec = (req: ExecRequest) => Promise<ExecDecision>;

/** Until the cache exists every exec runs. */
export const alwaysRun: DecideExec = async () => ({ action: 'run' });

export interface SessionOptions {
  /** the program exactly as it should see its argv */
  argv: string[];
  /** the file to execve (argv[0] already searched along PATH) */
  file: string;
  /** "NAME=value" strings */
  env: string[];
  cwd: string;
  decideExec?: DecideExec;
  /** false: no decisions at all, every exec runs at once (tracing only) */
  askExec?: boolean;
  /**
   * Only execs this filter may know wait for decideExec; the rest run at once with their
   * exits held, and decideExec sees them with `decided` set (its answer is not used). For
   * those, whatever decideExec records must be recorded before its first await: the
   * execution's exit may come in the next batch.
   */
  execFilter?: ExecFilter;
  /** never recorded as inputs/outputs (pcache's cache directory) */
  ignoreDirs?: string[];
  /** captured streams past this size go to files (FolderOptions.spill) */
  spill?: { dir: string; overBytes: number };
  /** bytes of each captured stream kept (FolderOptions.captureLimit) */
  captureLimit?: number;
  /** past this, an execution's stream is not cached (FolderOptions.captureMax) */
  captureMax?: number;
  onExecutionEnd?: (record: ExecutionRecord) => void;
  /**
   * A process whose exec decision asked for holdExit is exiting; it stays stopped until the
   * promise settles (the cache stores the ended executions' outputs meanwhile). The folder has
   * already been told of the exit when this runs.
   */
  onExitRequest?: (req: ExitRequest, folder: TraceFolder) => Promise<void>;
  /** A file some tracee read is about to change: record its old state before the promise settles. */
  onPreimage?: (req: PreimageRequest) => Promise<void>;
  /** called with the folder before the command starts (the cache feeds it skipped executions) */
  onFolder?: (folder: TraceFolder) => void;
  /** injectable for tests; default: the built addon */
  native?: ReturnType<typeof loadNative>;
}

export interface ExecFilter {
  /** the signatures (ExecRequest.execSig) that may have an entry when the command starts */
  initial: string[];
  /** called once the tracer runs, with the function that adds signatures from then on */
  connect(allow: (sigs: string[]) => void): void;
}

export interface SessionResult {
  record: TraceRecord;
  /** the root process's exit code, null when it died of a signal */
  exitCode: number | null;
  signal: number | null;
  /** captured bytes per execution are available from here */
  folder: TraceFolder;
}

/** Signals pcache passes on to the traced command instead of dying of them. */
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export function runTraced(opts: SessionOptions): Promise<SessionResult> {
  const native = opts.native ?? loadNative();
  const decide = opts.decideExec ?? alwaysRun;
  const folder = new TraceFolder({ ignoreDirs: opts.ignoreDirs, onExecutionEnd: opts.onExecutionEnd, spill: opts.spill, captureLimit: opts.captureLimit, captureMax: opts.captureMax });
  opts.onFolder?.(folder);

  return new Promise<SessionResult>((resolve, reject) => {
    let tracer: NativeTracer | undefined;
    // Callbacks run on the JS thread, so none can fire before start() returns; the queue
    // only guards against a native implementation that calls back synchronously.
    const early: Array<(t: NativeTracer) => void> = [];
    const withTracer = (f: (t: NativeTracer) => void): void => {
      if (tracer) f(tracer);
      else early.push(f);
    };
    // A bug while folding must neither kill pcache from inside a native callback (a stack
    // trace, the command orphaned) nor leave a tracee waiting for its answer: remember the
    // first failure, keep answering, and report it once the command is done.
    let internal: Error | undefined;
    // PCACHE_TRACER_STATS: how long tracees waited on pcache (decisions, held exits), in ns.
    const held = { execs: 0, execNs: 0n, exits: 0, exitNs: 0n };
    const guard = (f: () => void): void => {
      try {
        f();
      } catch (e) {
        internal ??= e instanceof Error ? e : new Error(String(e));
      }
    };
    const handlers = new Map<NodeJS.Signals, () => void>();
    const stopForwarding = (): void => {
      for (const [sig, h] of handlers) process.removeListener(sig, h);
      handlers.clear();
    };
    for (const sig of FORWARDED) {
      const h = (): void => withTracer((t) => t.signal(os.constants.signals[sig]));
      handlers.set(sig, h);
      process.on(sig, h);
    }

    try {
      tracer = native.start({
        file: opts.file,
        askExec: opts.askExec ?? true,
        execFilter: opts.execFilter?.initial,
        // Only so much of each stream is kept: a read-back need not read more.
        readbackLimit: opts.captureLimit,
        argv: opts.argv,
        env: opts.env,
        cwd: opts.cwd,
        onEvents: (events, batch) => guard(() => folder.events(events, batch)),
        onExec: (req) => {
          guard(() => folder.execRequest(req));
          if (req.decided || opts.askExec === false) {
            // Already running: decideExec only takes note of it (synchronously, before
            // any later batch can bring its exit). No answer: one would only wake the
            // tracer thread for nothing.
            decide(req).catch(() => undefined);
            return;
          }
          const since = process.hrtime.bigint();
          const answer = (d: ExecDecision): void => {
            held.execs++;
            held.execNs += process.hrtime.bigint() - since;
            withTracer((t) => t.resolveExec(req.token, d));
          };
          Promise.resolve()
            .then(() => decide(req))
            .then(
              answer,
              // A broken decision must not hang the tracee: running is always correct.
              () => answer({ action: 'run' }),
            );
        },
        onExit: (req) => {
          // The process is gone for every purpose but its parent's wait: fold it as exited now,
          // so its executions end (and can be stored) before the parent may look at their outputs.
          guard(() =>
            folder.event({
              k: 'exit',
              pid: req.pid,
              tgid: req.pid,
              processExit: true,
              code: req.code,
              signal: req.signal,
              time: Date.now(),
            }),
          );
          const since = process.hrtime.bigint();
          const release = (): void => {
            held.exits++;
            held.exitNs += process.hrtime.bigint() - since;
            withTracer((t) => t.resolveExit(req.token));
          };
          const hook = opts.onExitRequest;
          if (!hook) return release();
          // A hook that throws must still let the process go (and not abort the native batch).
          Promise.resolve()
            .then(() => hook(req, folder))
            .then(release, release);
        },
        onPreimage: (req) => {
          const release = (): void => withTracer((t) => t.resolvePreimage(req.token));
          const hook = opts.onPreimage;
          if (!hook) return release();
          Promise.resolve()
            .then(() => hook(req))
            .then(release, release);
        },
        onDone: (result) => {
          stopForwarding();
          if (process.env.PCACHE_TRACER_STATS) {
            // Where a slow traced run goes: the tracer's stops by kind, and the time tracees
            // spent stopped waiting for this thread (exec decisions, exits held for storing).
            const ms = (ns: bigint): number => Math.round(Number(ns) / 1e4) / 100;
            withTracer((t) =>
              process.stderr.write(
                `pcache: tracer stats: ${JSON.stringify({
                  ...t.stats(),
                  held_exec_decisions: held.execs,
                  held_exec_ms: ms(held.execNs),
                  held_exits: held.exits,
                  held_exit_ms: ms(held.exitNs),
                  captures_spilled: folder.spilledStreams(),
                  cpu_ms_by_thread: cpuByThread(),
                })}\n`,
              ),
            );
          }
          if (result.error !== undefined && result.error !== '') {
            reject(new Error(result.error));
            return;
          }
          if (internal) {
            reject(new Error(`internal error while folding the trace: ${internal.message}`));
            return;
          }
          let record: TraceRecord;
          try {
            record = folder.finish({ code: result.code, signal: result.signal });
          } catch (e) {
            reject(new Error(`internal error while folding the trace: ${(e as Error).message}`));
            return;
          }
          resolve({ record, exitCode: result.code, signal: result.signal, folder });
        },
      });
    } catch (e) {
      stopForwarding();
      reject(e);
      return;
    }
    const t = tracer;
    opts.execFilter?.connect((sigs) => t.allowExecs(sigs));
    for (const f of early.splice(0)) f(t);
  });
}

/** CPU time (user + system, ms) of pcache's own threads so far, summed by thread name. */
function cpuByThread(): Record<string, number> {
  const out: Record<string, number> = {};
  const tick = 1000 / 100; // USER_HZ is 100 on Linux
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const name = Number(tid) === process.pid ? 'main' : comm;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[name] = (out[name] ?? 0) + (Number(f[11]) + Number(f[12])) * tick;
    } catch {
      // the thread ended while listing
    }
  }
  return out;
}
