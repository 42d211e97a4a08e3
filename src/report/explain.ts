// `pcache explain [RUN] [EXECUTION]`: why each execution of a run ran instead of being
// skipped, as the first difference from the closest earlier execution of the same program.
//
// Two sources of "earlier":
//  - same command key: the run report lists the cached candidates that were looked at and
//    the first input of each that did not match (`rejected`); the newest one is the closest.
//  - another command key: earlier run reports are searched for executions of the same
//    program (same executable or same argv[0]) in the same directory; the closest is the
//    one with the fewest differing key parts, then the newest. Its first differing key part
//    (executable, arguments, environment, umask, standard streams) is the explanation.

import * as fs from 'fs';
import * as path from 'path';
import type { ReportExecution, RunReport } from '../core/run-report';
import { commandLabel, displayPath, shellWord } from './runs';

export type ExplanationKind =
  | 'uncacheable'
  | 'input'
  | 'directory'
  | 'shadowed'
  | 'executable'
  | 'argument'
  | 'environment'
  | 'umask'
  | 'stream'
  | 'no-cached-result'
  | 'never-ran';

export interface Explanation {
  execution: number;
  argv: string[];
  kind: ExplanationKind;
  message: string;
  /** the earlier execution compared with, when there was one */
  comparedWith?: { runId: number; execution: number; entryId: number | null };
}

interface Earlier {
  run: RunReport;
  execution: ReportExecution;
}

/** One explanation per execution that ran (miss or uncacheable), in id order. */
export function explainRun(report: RunReport, earlierRuns: readonly RunReport[], only?: number): Explanation[] {
  const earlier: Earlier[] = [];
  for (const run of earlierRuns) {
    if (run.runId >= report.runId) continue;
    for (const execution of run.executions) earlier.push({ run, execution });
  }
  const byEntry = new Map<number, Earlier>();
  for (const x of earlier) if (x.execution.outcome === 'miss' && x.execution.entryId !== null) byEntry.set(x.execution.entryId, x);
  // Same program in the same directory: same executable, or same argv[0] (found elsewhere on PATH now).
  const byProgram = new Map<string, Earlier[]>();
  const add = (k: string, x: Earlier): void => {
    let list = byProgram.get(k);
    if (!list) byProgram.set(k, (list = []));
    list.push(x);
  };
  for (const x of earlier) {
    add(`exe\0${x.execution.cwd}\0${x.execution.exe}`, x);
    if (x.execution.argv.length > 0) add(`argv0\0${x.execution.cwd}\0${x.execution.argv[0]}`, x);
  }
  const samePrograms = (e: ReportExecution): Earlier[] => [
    ...new Set([...(byProgram.get(`exe\0${e.cwd}\0${e.exe}`) ?? []), ...(byProgram.get(`argv0\0${e.cwd}\0${e.argv[0]}`) ?? [])]),
  ];
  const out: Explanation[] = [];
  for (const e of [...report.executions].sort((a, b) => a.id - b.id)) {
    if (e.outcome === 'hit') continue;
    if (only !== undefined && e.id !== only) continue;
    out.push(explainExecution(report, e, samePrograms(e), byEntry));
  }
  return out;
}

function explainExecution(
  report: RunReport,
  e: ReportExecution,
  same: readonly Earlier[],
  byEntry: ReadonlyMap<number, Earlier>,
): Explanation {
  const base = { execution: e.id, argv: e.argv };
  const shown = (p: string): string => displayPath(p, report.cwd);
  if (e.outcome === 'uncacheable') {
    return { ...base, kind: 'uncacheable', message: `uncacheable: ${e.reasons[0] ?? 'no reason recorded'}` };
  }
  if (e.rejected.length > 0) {
    // Candidates come newest first: the first one is the closest cached result.
    const r = e.rejected[0];
    const old = byEntry.get(r.entryId);
    const found = old ? { comparedWith: { runId: old.run.runId, execution: old.execution.id, entryId: r.entryId } } : {};
    if (r.kind === 'dirlist' && r.reason === 'listing changed') {
      return { ...base, ...found, kind: 'directory', message: directoryChange(r.path, e, old?.execution, shown) };
    }
    if (r.kind === 'absent' && r.reason === 'exists now') {
      const shadowed = shadowedOnPath(r.path, e.keyParts.env);
      if (shadowed) return { ...base, ...found, kind: 'shadowed', message: `new file ${shown(r.path)} shadows ${shown(shadowed)} on PATH` };
    }
    return { ...base, ...found, kind: 'input', message: inputChange(shown(r.path), r.kind, r.reason) };
  }
  if (same.length === 0) return { ...base, kind: 'never-ran', message: 'never ran before' };
  let best = same[0];
  let bestScore = Infinity;
  for (const x of same) {
    const score = differingParts(e, x.execution);
    // ties go to the newest: later runs, then later in the run
    if (score < bestScore || (score === bestScore && newer(x, best))) {
      best = x;
      bestScore = score;
    }
  }
  const comparedWith = { runId: best.run.runId, execution: best.execution.id, entryId: best.execution.entryId };
  const diff = firstKeyDifference(e, best.execution, shown);
  if (diff) {
    const more = bestScore - 1;
    return { ...base, comparedWith, kind: diff.kind, message: more > 0 ? `${diff.message} (and ${more} more difference${more === 1 ? '' : 's'})` : diff.message };
  }
  if (best.execution.outcome === 'uncacheable') {
    return {
      ...base,
      comparedWith,
      kind: 'no-cached-result',
      message: `it was uncacheable when it ran before (run ${best.run.runId}: ${best.execution.reasons[0] ?? 'no reason recorded'})`,
    };
  }
  return {
    ...base,
    comparedWith,
    kind: 'no-cached-result',
    message: `ran before with the same command (run ${best.run.runId}) but no cached result was left to compare (evicted, cleared, or skipping was off)`,
  };
}

function newer(a: Earlier, b: Earlier): boolean {
  return a.run.runId !== b.run.runId ? a.run.runId > b.run.runId : a.execution.startMs > b.execution.startMs;
}

/** What an input-check reason (cache-store/input-check.ts) means for a user. */
function inputChange(shown: string, kind: string, reason: string): string {
  switch (kind) {
    case 'content':
      if (reason === 'content changed' || reason === 'size changed') return `input ${shown} changed (content)`;
      if (reason === 'missing') return `input ${shown} was removed`;
      if (reason === 'not a regular file') return `input ${shown} is no longer a regular file`;
      break;
    case 'metadata':
      if (reason === 'missing') return `${shown} was removed`;
      if (reason.startsWith('type changed')) return `${shown} changed type ${reason.slice('type changed '.length)}`;
      if (reason === 'mode changed') return `${shown} changed mode`;
      if (reason === 'size changed') return `${shown} changed size`;
      if (reason === 'link target changed') return `symlink ${shown} points elsewhere now`;
      break;
    case 'absent':
      if (reason === 'exists now') return `new file ${shown} (it was absent before)`;
      break;
    case 'dirlist':
      if (reason === 'not a directory') return `directory ${withSlash(shown)} is gone or no longer a directory`;
      break;
    case 'terminal':
      if (reason === 'not a terminal') return `${shown} is no longer a terminal`;
      if (reason.startsWith('terminal size changed')) return `the terminal on ${shown} changed size ${reason.slice('terminal size changed '.length)}`;
      break;
    case 'cpus':
      if (reason.startsWith('CPU count changed')) return `the number of CPUs it may run on changed ${reason.slice('CPU count changed '.length)}`;
      break;
  }
  return `input ${shown} changed (${kind}: ${reason})`;
}

function withSlash(p: string): string {
  return p.endsWith('/') ? p : `${p}/`;
}

/**
 * Reports carry only a digest of a listing, so the names come from what the executions
 * touched in the directory: names this execution found that the earlier one did not
 * (gained), names the earlier one found that are gone (lost).
 */
function directoryChange(dir: string, e: ReportExecution, old: ReportExecution | undefined, shown: (p: string) => string): string {
  const label = `directory ${withSlash(shown(dir))}`;
  if (!old) return `${label} changed its entries`;
  const namesIn = (x: ReportExecution, present: boolean): Set<string> =>
    new Set(
      x.inputs
        .filter((i) => path.dirname(i.path) === dir && i.path !== dir && (i.kind !== 'absent') === present)
        .map((i) => path.basename(i.path)),
    );
  const nowPresent = namesIn(e, true);
  const nowAbsent = namesIn(e, false);
  const before = namesIn(old, true);
  const gained = [...nowPresent].filter((n) => !before.has(n)).sort();
  const lost = [...before].filter((n) => !nowPresent.has(n) && (nowAbsent.has(n) || !exists(path.join(dir, n)))).sort();
  const parts: string[] = [];
  if (gained.length > 0) parts.push(`gained ${gained.join(', ')}`);
  if (lost.length > 0) parts.push(`lost ${lost.join(', ')}`);
  return parts.length > 0 ? `${label} ${parts.join(' and ')}` : `${label} changed its entries`;
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function envMap(env: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of env) {
    const eq = kv.indexOf('=');
    m.set(eq < 0 ? kv : kv.slice(0, eq), eq < 0 ? '' : kv.slice(eq + 1));
  }
  return m;
}

/** A later PATH entry holding a file of the same name that `file` now hides, if any. */
function shadowedOnPath(file: string, env: readonly string[]): string | null {
  const dirs = (envMap(env).get('PATH') ?? '').split(':').filter((d) => d !== '');
  const at = dirs.indexOf(path.dirname(file));
  if (at < 0) return null;
  for (const d of dirs.slice(at + 1)) {
    const candidate = path.join(d, path.basename(file));
    if (exists(candidate)) return candidate;
  }
  return null;
}

const STREAMS = ['stdin', 'stdout', 'stderr'] as const;
const STREAM_NAMES: Record<(typeof STREAMS)[number], string> = {
  stdin: 'standard input',
  stdout: 'standard output',
  stderr: 'standard error',
};

function differingParts(a: ReportExecution, b: ReportExecution): number {
  const ka = a.keyParts;
  const kb = b.keyParts;
  let n = 0;
  if (ka.exe !== kb.exe) n++;
  if (JSON.stringify(ka.argv) !== JSON.stringify(kb.argv)) n++;
  const ea = envMap(ka.env);
  const eb = envMap(kb.env);
  for (const name of new Set([...ea.keys(), ...eb.keys()])) if (ea.get(name) !== eb.get(name)) n++;
  if (ka.umask !== kb.umask) n++;
  for (const s of STREAMS) if (ka[s] !== kb[s]) n++;
  if (ka.merged !== kb.merged) n++;
  if (JSON.stringify(ka.openFds ?? []) !== JSON.stringify(kb.openFds ?? [])) n++;
  return n;
}

/** The first key part, in key order, that differs; null when the keys are the same. */
function firstKeyDifference(
  now: ReportExecution,
  before: ReportExecution,
  shown: (p: string) => string,
): Pick<Explanation, 'kind' | 'message'> | null {
  const a = now.keyParts;
  const b = before.keyParts;
  if (a.exe !== b.exe) {
    if (path.basename(a.exe) === path.basename(b.exe) && exists(b.exe)) {
      return { kind: 'shadowed', message: `new file ${shown(a.exe)} shadows ${shown(b.exe)} on PATH` };
    }
    return { kind: 'executable', message: `executable differs: ${shown(a.exe)} vs ${shown(b.exe)}${exists(b.exe) ? '' : ' (gone)'}` };
  }
  const n = Math.max(a.argv.length, b.argv.length);
  for (let i = 0; i < n; i++) {
    if (a.argv[i] === b.argv[i]) continue;
    if (i >= b.argv.length) return { kind: 'argument', message: `argument ${i} added: ${shellWord(a.argv[i])}` };
    if (i >= a.argv.length) return { kind: 'argument', message: `argument ${i} removed: ${shellWord(b.argv[i])}` };
    // An option's value reads better with its option: "-k 19 vs -k 21".
    const prev = i > 0 && a.argv[i - 1] === b.argv[i - 1] && a.argv[i - 1].startsWith('-') ? `${shellWord(a.argv[i - 1])} ` : '';
    return { kind: 'argument', message: `argument ${i} differs: ${prev}${shellWord(a.argv[i])} vs ${prev}${shellWord(b.argv[i])}` };
  }
  const ea = envMap(a.env);
  const eb = envMap(b.env);
  for (const name of [...new Set([...ea.keys(), ...eb.keys()])].sort()) {
    // Values are not shown: environments carry secrets.
    if (!eb.has(name)) return { kind: 'environment', message: `environment variable ${name} is new` };
    if (!ea.has(name)) return { kind: 'environment', message: `environment variable ${name} was unset` };
    if (ea.get(name) !== eb.get(name)) return { kind: 'environment', message: `environment variable ${name} differs` };
  }
  if (a.umask !== b.umask) {
    const octal = (m: number): string => m.toString(8).padStart(4, '0');
    return { kind: 'umask', message: `umask differs: ${octal(a.umask)} vs ${octal(b.umask)}` };
  }
  for (const s of STREAMS) {
    if (a[s] !== b[s]) return { kind: 'stream', message: `${STREAM_NAMES[s]} differs: ${a[s]} vs ${b[s]}` };
  }
  if (a.merged !== b.merged) {
    return { kind: 'stream', message: a.merged ? 'stdout and stderr are one stream now (2>&1)' : 'stdout and stderr are no longer one stream' };
  }
  const fa = (a.openFds ?? []).join('; ');
  const fb = (b.openFds ?? []).join('; ');
  if (fa !== fb) return { kind: 'stream', message: `open descriptors differ: ${fa || 'none'} vs ${fb || 'none'}` };
  return null;
}

export function formatExplain(report: RunReport, explanations: readonly Explanation[]): string {
  const skipped = report.executions.filter((e) => e.outcome === 'hit').length;
  const lines = [`run ${report.runId}: ${commandLabel(report.argv)} (values: this run vs before)\n`];
  for (const x of explanations) lines.push(`#${x.execution} ${commandLabel(x.argv, 48)}: ${x.message}\n`);
  if (explanations.length === 0) lines.push('no execution ran\n');
  if (skipped > 0) lines.push(`${skipped} skipped execution${skipped === 1 ? '' : 's'} not listed\n`);
  return lines.join('');
}
