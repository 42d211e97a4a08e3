// Helpers for the report tests: synthetic run reports (exact, no tracing needed) and
// running bin/pcache in a workspace.

import { RUN_REPORT_VERSION, type ReportExecution, type RunReport } from '../../src/core/run-report';
import { KEY_VERSION } from '../../src/core/key';
import { PCACHE, runArgv, type Workspace } from '../e2e/harness';

export const CWD = '/work/project';

/** An execution with plausible defaults; `over` replaces fields, `keyParts` fields merge. */
export function execution(over: Partial<Omit<ReportExecution, 'keyParts'>> & { keyParts?: Partial<ReportExecution['keyParts']> } = {}): ReportExecution {
  const argv = over.argv ?? ['/usr/bin/sort', 'data/x.txt'];
  const exe = over.exe ?? argv[0];
  const { keyParts, ...rest } = over;
  return {
    id: 1,
    parent: null,
    outcome: 'miss',
    reasons: [],
    argv,
    exe,
    cwd: CWD,
    key: 'k1',
    entryId: null,
    pid: 100,
    startMs: 1000,
    endMs: 1500,
    durationMs: 500,
    savedMs: 0,
    exitCode: 0,
    signal: null,
    inputs: [],
    outputs: [],
    rejected: [],
    ...rest,
    keyParts: {
      version: KEY_VERSION,
      exe,
      argv,
      cwd: over.cwd ?? CWD,
      env: ['LC_ALL=C', 'PATH=/usr/bin:/bin'],
      umask: 0o022,
      stdin: 'null',
      stdout: 'file',
      stderr: 'file',
      merged: false,
      ...keyParts,
    },
  };
}

/** A run report; startedMs defaults to runId minutes after 2026-01-02 03:04:05 UTC. */
export function runReport(runId: number, executions: ReportExecution[], over: Partial<RunReport> = {}): RunReport {
  const startedMs = Date.UTC(2026, 0, 2, 3, 4, 5) + runId * 60_000;
  return {
    version: RUN_REPORT_VERSION,
    runId,
    argv: ['./pipeline.sh'],
    cwd: CWD,
    startedMs,
    endedMs: startedMs + 2500,
    exitCode: 0,
    signal: null,
    wallSeconds: 2.5,
    savedSeconds: 0,
    executions,
    ...over,
  };
}

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** `node bin/pcache ARGS` in the workspace, with the e2e base environment plus `env`. */
export async function pcache(ws: Workspace, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const r = await runArgv([process.execPath, PCACHE, ...args], ws.work, ws.io, { env });
  return { exitCode: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** `pcache --quiet --cache-dir C -- CMD` in the workspace. */
export async function cachedRun(ws: Workspace, cmd: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return pcache(ws, ['--cache-dir', ws.cache, '--quiet', '--', ...cmd], env);
}
