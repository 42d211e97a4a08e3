// `pcache show [RUN]`: the execution tree of one run with each execution's outcome,
// duration, and the files it read and wrote.

import type { ReportExecution, ReportFile, RunReport } from '../core/run-report';
import {
  commandLabel,
  displayPath,
  executionTree,
  exitStatus,
  formatDuration,
  formatTime,
  isProbe,
  isSystemPath,
  ownFiles,
  runCounts,
  shortHash,
} from './runs';

export interface ShowOptions {
  /** also list probes (metadata and absence inputs: PATH and library searches, stats) and system files */
  all?: boolean;
}

export function runHeader(report: RunReport): string {
  const c = runCounts(report);
  const status = exitStatus(report);
  return (
    `run ${report.runId}  ${formatTime(report.startedMs)}  ${commandLabel(report.argv)}  (cwd ${report.cwd})\n` +
    `exit ${status === null ? '-' : status}; ${c.total} execution${c.total === 1 ? '' : 's'}: ${c.ran} ran, ${c.skipped} skipped, ` +
    `${c.uncacheable} uncacheable; wall ${formatDuration(report.wallSeconds * 1000)}, saved ${formatDuration(report.savedSeconds * 1000)}\n`
  );
}

export function outcomeText(e: ReportExecution): string {
  switch (e.outcome) {
    case 'hit':
      return `hit (saved ${formatDuration(e.savedMs)})`;
    case 'miss':
      return `miss ${formatDuration(e.durationMs)}`;
    case 'uncacheable':
      return `uncacheable ${formatDuration(e.durationMs)}`;
  }
}

function fileLine(verb: string, f: ReportFile, cwd: string): string {
  const hash = f.kind === 'symlink' ? (f.hash ? `-> ${f.hash}` : '') : f.hash ? shortHash(f.hash) : '';
  return `${verb.padEnd(5)} ${displayPath(f.path, cwd)}  ${f.kind}${hash ? ` ${hash}` : ''}`;
}

export function formatShow(report: RunReport, opts: ShowOptions = {}): string {
  const { roots, children } = executionTree(report);
  const out: string[] = [runHeader(report), '\n'];
  const visit = (e: ReportExecution, depth: number): void => {
    const pad = '  '.repeat(depth);
    const status = e.exitCode !== null && e.exitCode !== 0 ? ` exit ${e.exitCode}` : e.signal !== null ? ` signal ${e.signal}` : '';
    out.push(`${pad}#${e.id} ${outcomeText(e)}${status}  ${commandLabel(e.argv)}\n`);
    const detail = `${pad}     `;
    if (e.outcome === 'uncacheable') for (const r of e.reasons) out.push(`${detail}why   ${r}\n`);
    const own = ownFiles(e, children);
    const reads = opts.all ? own.inputs : own.inputs.filter((f) => !isProbe(f) && !isSystemPath(f.path));
    for (const f of reads) out.push(`${detail}${fileLine('read', f, report.cwd)}\n`);
    const hidden = own.inputs.length - reads.length;
    if (hidden > 0) out.push(`${detail}+ ${hidden} system file${hidden === 1 ? '' : 's'} and probes (--all lists them)\n`);
    for (const f of own.outputs) out.push(`${detail}${fileLine('wrote', f, report.cwd)}\n`);
    for (const c of children.get(e.id) ?? []) visit(c, depth + 1);
  };
  for (const r of roots) visit(r, 0);
  return out.join('');
}

export interface ShowJsonExecution extends Omit<ReportExecution, 'keyParts' | 'rejected'> {
  children: ShowJsonExecution[];
}

/** The tree as JSON: each execution with all its inputs and outputs (its subtree's included). */
export function showJson(report: RunReport): object {
  const { roots, children } = executionTree(report);
  const node = (e: ReportExecution): ShowJsonExecution => {
    const { keyParts: _k, rejected: _r, ...rest } = e;
    return { ...rest, children: (children.get(e.id) ?? []).map(node) };
  };
  return {
    runId: report.runId,
    argv: report.argv,
    cwd: report.cwd,
    startedMs: report.startedMs,
    endedMs: report.endedMs,
    exitStatus: exitStatus(report),
    executions: runCounts(report),
    wallSeconds: report.wallSeconds,
    savedSeconds: report.savedSeconds,
    tree: roots.map(node),
  };
}
