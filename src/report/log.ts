// `pcache log`: one line per past run, newest last, from the run reports.

import type { RunReport } from '../core/run-report';
import { commandLabel, exitStatus, formatDuration, formatTime, runCounts, type RunCounts } from './runs';

export interface LogEntry {
  runId: number;
  startedMs: number;
  command: string[];
  cwd: string;
  exitStatus: number | null;
  executions: RunCounts;
  wallSeconds: number;
  savedSeconds: number;
}

export function logEntry(report: RunReport): LogEntry {
  return {
    runId: report.runId,
    startedMs: report.startedMs,
    command: report.argv,
    cwd: report.cwd,
    exitStatus: exitStatus(report),
    executions: runCounts(report),
    wallSeconds: report.wallSeconds,
    savedSeconds: report.savedSeconds,
  };
}

/** A table: run, when, exit, ran/skipped/uncacheable, wall, saved, cwd, command. */
export function formatLog(entries: readonly LogEntry[]): string {
  if (entries.length === 0) return 'no runs recorded yet\n';
  const header = ['run', 'started', 'exit', 'ran', 'skipped', 'uncacheable', 'wall', 'saved', 'cwd', 'command'];
  const rows = entries.map((e) => [
    String(e.runId),
    formatTime(e.startedMs),
    e.exitStatus === null ? '-' : String(e.exitStatus),
    String(e.executions.ran),
    String(e.executions.skipped),
    String(e.executions.uncacheable),
    formatDuration(e.wallSeconds * 1000),
    formatDuration(e.savedSeconds * 1000),
    e.cwd,
    commandLabel(e.command),
  ]);
  const numeric = new Set([0, 2, 3, 4, 5, 6, 7]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : numeric.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd() + '\n';
  return line(header) + rows.map(line).join('');
}
