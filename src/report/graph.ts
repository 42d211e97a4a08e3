// `pcache graph [RUN]`: the provenance graph of a run. Executions and files are nodes;
// edges are reads (file -> execution), writes (execution -> file) and nesting
// (parent execution -> child execution). Each file is attached to the deepest execution
// that touched it (an execution's record includes its children's files).
//
// By default the graph leaves out probes (metadata/absence inputs: PATH and library
// searches) and system files (under /usr, /lib, /etc, /proc ...), which every execution
// touches and which would make every graph a hairball; --all keeps everything.

import type { ReportExecution, ReportFile, RunReport } from '../core/run-report';
import {
  commandLabel,
  displayPath,
  executionTree,
  exitStatus,
  formatDuration,
  isProbe,
  isSystemPath,
  ownFiles,
  runCounts,
  type RunCounts,
} from './runs';

export type EdgeKind = 'read' | 'write' | 'child';

export interface GraphExecution {
  id: string;
  execution: number;
  parent: string | null;
  label: string;
  argv: string[];
  outcome: ReportExecution['outcome'];
  reasons: string[];
  durationMs: number;
  savedMs: number;
  exitCode: number | null;
}

export interface GraphFile {
  id: string;
  path: string;
  /** relative to the run's cwd when shorter */
  label: string;
}

export interface GraphEdge {
  from: string;
  to: string;
  kind: EdgeKind;
}

export interface ProvenanceGraph {
  runId: number;
  argv: string[];
  cwd: string;
  exitStatus: number | null;
  counts: RunCounts;
  wallSeconds: number;
  savedSeconds: number;
  executions: GraphExecution[];
  files: GraphFile[];
  edges: GraphEdge[];
  /** files left out (probes and system files) unless --all */
  hiddenFiles: number;
}

export function buildGraph(report: RunReport, opts: { all?: boolean } = {}): ProvenanceGraph {
  const { children } = executionTree(report);
  const ordered = [...report.executions].sort((a, b) => a.id - b.id);
  const keep = (f: ReportFile): boolean => opts.all === true || (!isProbe(f) && !isSystemPath(f.path));
  const paths = new Set<string>();
  const hidden = new Set<string>();
  const own = new Map<number, ReturnType<typeof ownFiles>>();
  for (const e of ordered) {
    const o = ownFiles(e, children);
    own.set(e.id, o);
    for (const f of [...o.inputs, ...o.outputs]) (keep(f) ? paths : hidden).add(f.path);
  }
  const files: GraphFile[] = [...paths].sort().map((p, i) => ({ id: `f${i + 1}`, path: p, label: displayPath(p, report.cwd) }));
  const fileId = new Map(files.map((f) => [f.path, f.id]));
  const edges: GraphEdge[] = [];
  const seen = new Set<string>();
  const edge = (from: string, to: string, kind: EdgeKind): void => {
    const k = `${from}>${to}>${kind}`;
    if (seen.has(k)) return;
    seen.add(k);
    edges.push({ from, to, kind });
  };
  const ids = new Set(ordered.map((e) => e.id));
  for (const e of ordered) {
    if (e.parent !== null && ids.has(e.parent)) edge(`e${e.parent}`, `e${e.id}`, 'child');
    const o = own.get(e.id)!;
    for (const f of o.inputs) if (keep(f)) edge(fileId.get(f.path)!, `e${e.id}`, 'read');
    for (const f of o.outputs) if (keep(f)) edge(`e${e.id}`, fileId.get(f.path)!, 'write');
  }
  for (const p of paths) hidden.delete(p);
  return {
    runId: report.runId,
    argv: report.argv,
    cwd: report.cwd,
    exitStatus: exitStatus(report),
    counts: runCounts(report),
    wallSeconds: report.wallSeconds,
    savedSeconds: report.savedSeconds,
    executions: ordered.map((e) => ({
      id: `e${e.id}`,
      execution: e.id,
      parent: e.parent !== null && ids.has(e.parent) ? `e${e.parent}` : null,
      label: commandLabel(e.argv, 60),
      argv: e.argv,
      outcome: e.outcome,
      reasons: e.reasons,
      durationMs: e.durationMs,
      savedMs: e.savedMs,
      exitCode: e.exitCode,
    })),
    files,
    edges,
    hiddenFiles: hidden.size,
  };
}

/** What an execution's node says under its command: outcome and time. */
export function timing(e: GraphExecution): string {
  if (e.outcome === 'hit') return `hit, saved ${formatDuration(e.savedMs)}`;
  return `${e.outcome} ${formatDuration(e.durationMs)}`;
}

export const OUTCOME_COLORS: Record<GraphExecution['outcome'], string> = {
  hit: '#4caf50',
  miss: '#ffb74d',
  uncacheable: '#e57373',
};

function dotString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

export function formatDot(g: ProvenanceGraph): string {
  const lines = [
    `digraph pcache_run_${g.runId} {`,
    '  rankdir=LR;',
    `  label=${dotString(`run ${g.runId}: ${commandLabel(g.argv)}; ${g.counts.ran} ran, ${g.counts.skipped} skipped, ${g.counts.uncacheable} uncacheable; saved ${formatDuration(g.savedSeconds * 1000)}`)};`,
    '  node [fontname="Helvetica", fontsize=10];',
  ];
  for (const e of g.executions) {
    lines.push(
      `  ${e.id} [shape=box, style="rounded,filled", fillcolor=${dotString(OUTCOME_COLORS[e.outcome])}, label=${dotString(`#${e.execution} ${e.label}\n${timing(e)}`)}];`,
    );
  }
  for (const f of g.files) lines.push(`  ${f.id} [shape=note, label=${dotString(f.label)}];`);
  for (const ed of g.edges) {
    const style = ed.kind === 'child' ? ' [style=dashed, color="#999999"]' : ed.kind === 'write' ? ' [color="#1f4e99"]' : '';
    lines.push(`  ${ed.from} -> ${ed.to}${style};`);
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

export function formatGraphJson(g: ProvenanceGraph): string {
  return JSON.stringify(g, null, 2) + '\n';
}
