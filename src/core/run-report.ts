// The report of one `pcache run`: every execution with its outcome, key parts,
// inputs and outputs. Written to <cache>/runs/<run id>.json when the run ends
// (temp file + rename); `pcache log/show/explain/graph/inputs` read it.
//
// Format version: bump RUN_REPORT_VERSION when a field changes meaning.
// History:
//   1 - first version.

import * as fs from 'fs';
import * as path from 'path';
import type { KeyParts } from './key';
import { mkdirs } from '../../cache-store/mkdirs';

export const RUN_REPORT_VERSION = 1;

export type ReportOutcome = 'hit' | 'miss' | 'uncacheable';

export interface ReportFile {
  path: string;
  kind: string;
  /** content: blob digest; dirlist: listing digest; symlink: target (when known) */
  hash?: string | null;
}

export interface ReportExecution {
  /** run-local id; executions that ran use the tracer's numbering, hits follow on */
  id: number;
  parent: number | null;
  outcome: ReportOutcome;
  /** uncacheable reasons (first one decides), or why a miss missed when known */
  reasons: string[];
  argv: string[];
  exe: string;
  cwd: string;
  key: string;
  keyParts: KeyParts;
  /** entry stored (miss) or replayed (hit) */
  entryId: number | null;
  pid: number;
  startMs: number;
  endMs: number | null;
  durationMs: number;
  savedMs: number;
  exitCode: number | null;
  signal: number | null;
  inputs: ReportFile[];
  outputs: ReportFile[];
  /** candidates with this key that were looked at and why each did not match */
  rejected: Array<{ entryId: number; path: string; kind: string; reason: string }>;
}

export interface RunReport {
  version: number;
  runId: number;
  argv: string[];
  cwd: string;
  startedMs: number;
  endedMs: number;
  exitCode: number | null;
  signal: number | null;
  wallSeconds: number;
  savedSeconds: number;
  executions: ReportExecution[];
}

export function runsDir(cacheDir: string): string {
  return path.join(cacheDir, 'runs');
}

export function reportPath(cacheDir: string, runId: number): string {
  return path.join(runsDir(cacheDir), `${runId}.json`);
}

export function writeRunReport(cacheDir: string, report: RunReport): void {
  const dir = runsDir(cacheDir);
  mkdirs(dir);
  const final = reportPath(cacheDir, report.runId);
  const tmp = `${final}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(report));
  fs.renameSync(tmp, final);
}

/** null when the run has no report (older pcache, or it was removed). */
export function readRunReport(cacheDir: string, runId: number): RunReport | null {
  try {
    const r = JSON.parse(fs.readFileSync(reportPath(cacheDir, runId), 'utf8')) as RunReport;
    return r.version === RUN_REPORT_VERSION ? r : null;
  } catch {
    return null;
  }
}
