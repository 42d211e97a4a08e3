// Finding and reading the run reports that `pcache run` leaves in <cache>/runs/,
// plus the small formatting helpers every report command shares.

import * as fs from 'fs';
import * as path from 'path';
import { CliError, UsageError } from '../cli/errors';
import { readRunReport, runsDir, type ReportExecution, type ReportFile, type RunReport } from '../core/run-report';

/** Ids of the runs that have a report, oldest first. */
export function listRunIds(cacheDir: string): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(runsDir(cacheDir));
  } catch {
    return [];
  }
  return names
    .map((n) => /^(\d+)\.json$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** Every readable report (of runs before `before`, when given), oldest first; unreadable or foreign-version ones are left out. */
export function loadRunReports(cacheDir: string, before = Infinity): RunReport[] {
  return listRunIds(cacheDir)
    .filter((id) => id < before)
    .map((id) => readRunReport(cacheDir, id))
    .filter((r): r is RunReport => r !== null);
}

/**
 * The run a command was asked about: a run id, or the last run when none was given.
 * `last`, and `-N` for the Nth before the last, are accepted too.
 */
export function resolveRun(cacheDir: string, spec: string | number | undefined): RunReport {
  const ids = listRunIds(cacheDir);
  if (ids.length === 0) throw new CliError(`no runs recorded in ${cacheDir} yet`);
  const text = spec === undefined ? 'last' : String(spec);
  let id: number;
  if (text === 'last') id = ids[ids.length - 1];
  else if (/^-\d+$/.test(text)) {
    const back = Number(text.slice(1));
    if (back >= ids.length) throw new CliError(`only ${ids.length} runs recorded in ${cacheDir}`);
    id = ids[ids.length - 1 - back];
  } else if (/^\d+$/.test(text)) id = Number(text);
  else throw new UsageError(`invalid run '${text}' (expected a run id, 'last' or -N; see pcache log)`);
  const report = readRunReport(cacheDir, id);
  if (!report) throw new CliError(`no report of run ${id} in ${cacheDir} (see pcache log)`);
  return report;
}

// ---------------------------------------------------------------- run facts

export interface RunCounts {
  total: number;
  ran: number;
  skipped: number;
  uncacheable: number;
}

/** Counted as the summary line counts: uncacheable executions ran too. */
export function runCounts(report: RunReport): RunCounts {
  const c: RunCounts = { total: report.executions.length, ran: 0, skipped: 0, uncacheable: 0 };
  for (const e of report.executions) {
    if (e.outcome === 'hit') c.skipped++;
    else c.ran++;
    if (e.outcome === 'uncacheable') c.uncacheable++;
  }
  return c;
}

/** The exit status as a shell reports it (128+N for a death by signal N). */
export function exitStatus(report: Pick<RunReport, 'exitCode' | 'signal'>): number | null {
  if (report.exitCode !== null) return report.exitCode;
  return report.signal !== null ? 128 + report.signal : null;
}

/** Children of each execution, in report order, and the roots. */
export function executionTree(report: RunReport): { roots: ReportExecution[]; children: Map<number, ReportExecution[]> } {
  const ids = new Set(report.executions.map((e) => e.id));
  const children = new Map<number, ReportExecution[]>();
  const roots: ReportExecution[] = [];
  const ordered = [...report.executions].sort((a, b) => a.startMs - b.startMs || a.id - b.id);
  for (const e of ordered) {
    if (e.parent === null || !ids.has(e.parent)) roots.push(e);
    else {
      let list = children.get(e.parent);
      if (!list) children.set(e.parent, (list = []));
      list.push(e);
    }
  }
  return { roots, children };
}

/**
 * An execution's record includes everything its descendants read and wrote. Its *own*
 * files are those no descendant in the report accounts for, so each file is shown once,
 * at the deepest execution that touched it.
 */
export function ownFiles(
  e: ReportExecution,
  children: ReadonlyMap<number, ReportExecution[]>,
): { inputs: ReportExecution['inputs']; outputs: ReportExecution['outputs'] } {
  const below = { inputs: new Set<string>(), outputs: new Set<string>() };
  const visit = (x: ReportExecution): void => {
    for (const c of children.get(x.id) ?? []) {
      for (const i of c.inputs) below.inputs.add(`${i.kind}\0${i.path}`);
      for (const o of c.outputs) below.outputs.add(o.path);
      visit(c);
    }
  };
  visit(e);
  return {
    inputs: e.inputs.filter((i) => !below.inputs.has(`${i.kind}\0${i.path}`)),
    outputs: e.outputs.filter((o) => !below.outputs.has(o.path)),
  };
}

// ---------------------------------------------------------------- kinds of files

/** Inputs that only looked at a path (stat, access, a failed open) rather than read it. */
export function isProbe(f: ReportFile): boolean {
  return f.kind === 'metadata' || f.kind === 'absent';
}

/** Files every execution touches (libraries, locales, the loader cache): left out of views unless asked for. */
const SYSTEM_PREFIXES = ['/usr/', '/lib/', '/lib32/', '/lib64/', '/libx32/', '/etc/', '/proc/', '/sys/', '/dev/', '/bin/', '/sbin/', '/run/', '/var/lib/', '/var/cache/'];
const SYSTEM_DIRS = new Set(['/', '/usr', '/lib', '/lib32', '/lib64', '/libx32', '/etc', '/proc', '/sys', '/dev', '/bin', '/sbin', '/run', '/var', '/tmp']);

export function isSystemPath(p: string): boolean {
  return SYSTEM_DIRS.has(p) || SYSTEM_PREFIXES.some((prefix) => p.startsWith(prefix));
}

// ---------------------------------------------------------------- formatting

/** A path relative to cwd when that is shorter. */
export function displayPath(p: string, cwd: string): string {
  const rel = path.relative(cwd, p);
  if (rel === '') return '.';
  return rel.length < p.length ? rel : p;
}

/** `1.23 s`, `45 ms`, `2 min 05 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(2)} s`;
  if (s < 120) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(Math.round(s - m * 60)).padStart(2, '0')} s`;
}

/** Local time, `2026-11-21 15:03:09`. */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A command line for people: arguments that need it are single-quoted; long ones cut. */
export function commandLabel(argv: readonly string[], max = 72): string {
  const text = argv.map(shellWord).join(' ');
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

export function shellWord(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The first characters of a digest, enough to tell blobs apart by eye. */
export function shortHash(hash: string | null | undefined): string {
  return hash ? hash.slice(0, 12) : '-';
}
