// The reproducibility audit: every execution of a run that ran for real is compared with
// a result the cache recorded earlier for the same command key and the same inputs. Same
// key and same inputs must give the same exit status, stdout, stderr and outputs; when
// they do not, the execution is nondeterministic (it read the clock, a random source the
// tracer cannot see, its own pid ...).
//
// The audit run records into a store of its own (see cli/commands/audit.ts): publishing
// into the user's store would replace the very entry it is compared with (an entry with
// identical inputs replaces the older one).

import type { Entry, InputRecord, OutputRecord } from '../../cache-store/entry';
import type { Store } from '../../cache-store/store';
import type { ReportExecution, RunReport } from '../core/run-report';
import { commandLabel, displayPath } from './runs';

export interface LineDifference {
  /** 1-based */
  line: number;
  now: string | null;
  cached: string | null;
}

export type AuditDifference =
  | { what: 'exit'; now: number; cached: number }
  | { what: 'stdout' | 'stderr'; line?: LineDifference; byte?: number }
  | { what: 'output'; path: string; change: 'content'; line?: LineDifference; byte?: number }
  | { what: 'output'; path: string; change: 'new' | 'not written' | 'kind' | 'mode' | 'link target'; now?: string; cached?: string };

export interface AuditFinding {
  execution: number;
  argv: string[];
  /** the earlier entry of the user's cache it was compared with */
  cachedEntry: number;
  differences: AuditDifference[];
  /** set when every difference is one a descendant already shows (a script whose step is nondeterministic) */
  explainedBy?: number[];
}

export interface AuditResult {
  findings: AuditFinding[];
  /** executions that had an earlier result for the same inputs and reproduced it */
  reproduced: number[];
  uncacheable: number[];
  /** executions with no earlier result for the same key and inputs: nothing to compare */
  unmatched: number[];
}

/** What an input is, apart from when it was seen (stat stamps and verification times differ between runs). */
function inputSignature(i: InputRecord): string {
  switch (i.kind) {
    case 'content':
    case 'dirlist':
      return `${i.kind}:${i.hash ?? ''}`;
    case 'metadata':
      return `metadata:${i.type ?? ''}:${i.mode ?? ''}:${i.type === 'file' ? String(i.size ?? '') : ''}:${i.type === 'symlink' ? (i.hash ?? '') : ''}`;
    case 'absent':
      return 'absent';
    case 'terminal':
      return `terminal:${i.hash ?? ''}`;
    case 'cpus':
      return `cpus:${i.hash ?? ''}`;
  }
}

/**
 * Same starting state. Probes of a path the execution itself writes (absent before the first
 * run, present before a re-run) do not count, the way a lookup assumes re-running an
 * execution on its own results is idempotent.
 */
export function sameInputs(now: Entry, cached: Entry): boolean {
  const written = new Set([...now.outputs, ...cached.outputs].map((o) => o.path));
  const relevant = (inputs: InputRecord[]): Map<string, string> => {
    const m = new Map<string, string>();
    for (const i of inputs) {
      if ((i.kind === 'absent' || i.kind === 'metadata') && written.has(i.path)) continue;
      m.set(`${i.kind}\0${i.path}`, inputSignature(i));
    }
    return m;
  };
  const a = relevant(now.inputs);
  const b = relevant(cached.inputs);
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

const TEXT_LIMIT = 1024 * 1024;
const BINARY_LIMIT = 64 * 1024 * 1024;

function looksLikeText(b: Buffer): boolean {
  return b.length <= TEXT_LIMIT && !b.subarray(0, 8192).includes(0);
}

function clip(line: string): string {
  return line.length <= 100 ? line : `${line.slice(0, 97)}...`;
}

/** Offset of the first byte that differs (binary content), when both sides are at hand and not huge. */
export function firstDifferentByte(now: Buffer | null, cached: Buffer | null): number | undefined {
  if (!now || !cached || now.length > BINARY_LIMIT || cached.length > BINARY_LIMIT) return undefined;
  const n = Math.min(now.length, cached.length);
  for (let i = 0; i < n; i++) if (now[i] !== cached[i]) return i;
  return now.length !== cached.length ? n : undefined;
}

/** Where two contents first differ: a line for text, else a byte offset. */
function whereDifferent(now: Buffer | null, cached: Buffer | null): { line: LineDifference } | { byte: number } | Record<string, never> {
  const line = firstDifferentLine(now, cached);
  if (line) return { line };
  if (now && cached && looksLikeText(now) && looksLikeText(cached)) return {};
  const byte = firstDifferentByte(now, cached);
  return byte === undefined ? {} : { byte };
}

/** The first line that differs, when both sides are small text. */
export function firstDifferentLine(now: Buffer | null, cached: Buffer | null): LineDifference | undefined {
  if (!now || !cached || !looksLikeText(now) || !looksLikeText(cached)) return undefined;
  const a = now.toString('utf8').split('\n');
  const b = cached.toString('utf8').split('\n');
  // A trailing newline leaves an empty last element: it is the end of the file, not a line.
  if (a[a.length - 1] === '') a.pop();
  if (b[b.length - 1] === '') b.pop();
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return { line: i + 1, now: i < a.length ? clip(a[i]) : null, cached: i < b.length ? clip(b[i]) : null };
  }
  return undefined;
}

function octal(mode: number | null | undefined): string {
  return mode == null ? '-' : mode.toString(8).padStart(4, '0');
}

function compareEntries(now: Entry, cached: Entry, recorded: Store, cache: Store): AuditDifference[] {
  const diffs: AuditDifference[] = [];
  if (now.exitStatus !== cached.exitStatus) diffs.push({ what: 'exit', now: now.exitStatus, cached: cached.exitStatus });
  for (const stream of ['stdout', 'stderr'] as const) {
    const a = stream === 'stdout' ? now.stdoutHash : now.stderrHash;
    const b = stream === 'stdout' ? cached.stdoutHash : cached.stderrHash;
    if (a === b) continue;
    diffs.push({ what: stream, ...whereDifferent(a ? recorded.readBlob(a) : Buffer.alloc(0), b ? cache.readBlob(b) : Buffer.alloc(0)) });
  }
  const before = new Map<string, OutputRecord>(cached.outputs.map((o) => [o.path, o]));
  const after = new Map<string, OutputRecord>(now.outputs.map((o) => [o.path, o]));
  for (const p of [...new Set([...after.keys(), ...before.keys()])].sort()) {
    const a = after.get(p);
    const b = before.get(p);
    if (!b) diffs.push({ what: 'output', path: p, change: 'new', now: a!.kind });
    else if (!a) diffs.push({ what: 'output', path: p, change: 'not written', cached: b.kind });
    else if (a.kind !== b.kind) diffs.push({ what: 'output', path: p, change: 'kind', now: a.kind, cached: b.kind });
    else if (a.kind === 'content' && a.hash !== b.hash) {
      diffs.push({ what: 'output', path: p, change: 'content', ...whereDifferent(a.hash ? recorded.readBlob(a.hash) : null, b.hash ? cache.readBlob(b.hash) : null) });
    } else if (a.kind === 'symlink' && a.linkTarget !== b.linkTarget) {
      diffs.push({ what: 'output', path: p, change: 'link target', now: a.linkTarget ?? '', cached: b.linkTarget ?? '' });
    } else if ((a.mode ?? null) !== (b.mode ?? null) && a.mode != null && b.mode != null) {
      diffs.push({ what: 'output', path: p, change: 'mode', now: octal(a.mode), cached: octal(b.mode) });
    }
  }
  return diffs;
}

/**
 * @param report   the audit run's report (every execution ran)
 * @param recorded the store the audit run published into
 * @param cache    the user's cache, holding the earlier results
 */
export function auditRun(report: RunReport, recorded: Store, cache: Store): AuditResult {
  const result: AuditResult = { findings: [], reproduced: [], uncacheable: [], unmatched: [] };
  const ordered = [...report.executions].sort((a, b) => a.id - b.id);
  for (const e of ordered) {
    if (e.outcome === 'uncacheable' || e.entryId === null) {
      result.uncacheable.push(e.id);
      continue;
    }
    const now = recorded.getEntry(e.entryId);
    if (!now) {
      result.unmatched.push(e.id);
      continue;
    }
    let cached: Entry | undefined;
    for (const c of cache.candidates(e.key)) {
      const candidate: Entry = { ...c, inputs: cache.entryInputs(c.id), outputs: cache.entryOutputs(c.id) };
      if (sameInputs(now, candidate)) {
        cached = candidate;
        break;
      }
    }
    if (!cached) {
      result.unmatched.push(e.id);
      continue;
    }
    const differences = compareEntries(now, cached, recorded, cache);
    if (differences.length === 0) result.reproduced.push(e.id);
    else result.findings.push({ execution: e.id, argv: e.argv, cachedEntry: cached.id, differences });
  }
  markExplained(result.findings, ordered);
  return result;
}

/**
 * A script differs when one of its steps does: say so rather than report it as a second
 * culprit. A script's differing file counts as its steps' doing when a step wrote the same
 * file or printed something different (the script may have redirected it there).
 */
function markExplained(findings: AuditFinding[], executions: readonly ReportExecution[]): void {
  const parentOf = new Map(executions.map((e) => [e.id, e.parent]));
  const isBelow = (child: number, ancestor: number): boolean => {
    for (let p = parentOf.get(child) ?? null; p !== null; p = parentOf.get(p) ?? null) if (p === ancestor) return true;
    return false;
  };
  for (const f of findings) {
    const below = findings.filter((g) => g !== f && isBelow(g.execution, f.execution));
    if (below.length === 0) continue;
    const covered = (d: AuditDifference): boolean =>
      below.some((g) =>
        g.differences.some((h) =>
          d.what === 'exit'
            ? h.what === 'exit'
            : // a step's stdout is often what its script redirects into a file
              h.what === 'stdout' || h.what === 'stderr' || (d.what === 'output' && h.what === 'output' && h.path === d.path),
        ),
      );
    if (f.differences.every(covered)) f.explainedBy = below.map((g) => g.execution);
  }
}

function lineText(l: LineDifference): string {
  const side = (s: string | null): string => (s === null ? '(end)' : JSON.stringify(s));
  return `line ${l.line}: ${side(l.now)} now, ${side(l.cached)} cached`;
}

function whereText(d: { line?: LineDifference; byte?: number }): string {
  if (d.line) return `; ${lineText(d.line)}`;
  if (d.byte !== undefined) return `; first at byte ${d.byte}`;
  return '';
}

function differenceText(d: AuditDifference, cwd: string): string {
  switch (d.what) {
    case 'exit':
      return `exit status ${d.now} now, ${d.cached} cached`;
    case 'stdout':
    case 'stderr':
      return `${d.what} differs${whereText(d)}`;
    case 'output': {
      const p = displayPath(d.path, cwd);
      switch (d.change) {
        case 'content':
          return `${p}: content differs${whereText(d)}`;
        case 'new':
          return `${p}: written now (${d.now}), not in the cached result`;
        case 'not written':
          return `${p}: in the cached result (${d.cached}), not written now`;
        default:
          return `${p}: ${d.change} ${d.now} now, ${d.cached} cached`;
      }
    }
  }
}

export function formatAudit(report: RunReport, r: AuditResult): string {
  const lines: string[] = [];
  const shown = r.findings.filter((f) => !f.explainedBy);
  for (const f of shown) {
    lines.push(`nondeterministic: #${f.execution} ${commandLabel(f.argv)} (cached entry ${f.cachedEntry})\n`);
    for (const d of f.differences) lines.push(`  ${differenceText(d, report.cwd)}\n`);
  }
  for (const f of r.findings) {
    if (f.explainedBy) lines.push(`(#${f.execution} ${commandLabel(f.argv, 48)} differs through #${f.explainedBy.join(', #')})\n`);
  }
  const total = report.executions.length;
  lines.push(
    `audit: ${total} execution${total === 1 ? '' : 's'}: ${r.reproduced.length} reproduced their cached result, ${r.findings.length} nondeterministic, ` +
      `${r.uncacheable.length} uncacheable, ${r.unmatched.length} without a cached result for the same inputs\n`,
  );
  if (r.reproduced.length + r.findings.length === 0) lines.push('audit: nothing to compare with; run the command under pcache first\n');
  return lines.join('');
}
