// The readable execution tree `pcache trace` prints on stderr: one line per
// execution, indented by nesting.
//
//   #1 sh -c 'cat a | sort > b'  exit 0  12ms  in 31 out 1
//     #2 cat a  exit 0  3ms  in 9 out 0
//     #3 sort  exit 0  4ms  in 12 out 0  uncacheable: read stdin from a pipe ...

import type { ExecutionRecord, TraceRecord } from './record';

const ARGV_WIDTH = 60;
const SAFE = /^[A-Za-z0-9_\-+=.,/:@%^]+$/;

export function shellQuote(arg: string): string {
  if (arg !== '' && SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** argv as a shell would show it, cut to `width` characters. */
export function shortArgv(argv: readonly string[], width = ARGV_WIDTH): string {
  const s = argv.map(shellQuote).join(' ');
  // Control characters (newlines in sh -c scripts) would break the one-line layout.
  const flat = s.replace(/[\x00-\x1f\x7f]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : '?'));
  return flat.length <= width ? flat : flat.slice(0, width - 1) + '…';
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  return `${m}m${String(s).padStart(2, '0')}s`;
}

function status(e: ExecutionRecord): string {
  if (e.signal !== null) return `signal ${e.signal}`;
  if (e.exitCode !== null) return `exit ${e.exitCode}`;
  return 'exit ?';
}

export function formatExecution(e: ExecutionRecord, depth: number): string {
  const parts = [
    `${'  '.repeat(depth)}#${e.id} ${shortArgv(e.argv.length > 0 ? e.argv : [e.exe])}`,
    status(e),
    e.end !== null ? formatDuration(e.end - e.start) : 'running',
    `in ${e.inputs.length} out ${e.outputs.length}`,
  ];
  if (e.uncacheable.length > 0) parts.push(`uncacheable: ${e.uncacheable.join('; ')}`);
  return parts.join('  ');
}

/** The whole tree, children in start order under their parent, one line each. */
export function formatTree(record: TraceRecord): string {
  const children = new Map<number | null, ExecutionRecord[]>();
  const ids = new Set(record.executions.map((e) => e.id));
  for (const e of record.executions) {
    // An execution whose parent is missing is shown as a root rather than dropped.
    const key = e.parent !== null && ids.has(e.parent) ? e.parent : null;
    const list = children.get(key) ?? [];
    list.push(e);
    children.set(key, list);
  }
  const lines: string[] = [];
  const walk = (parent: number | null, depth: number): void => {
    for (const e of (children.get(parent) ?? []).sort((a, b) => a.id - b.id)) {
      lines.push(formatExecution(e, depth));
      walk(e.id, depth + 1);
    }
  };
  walk(null, 0);
  return lines.map((l) => l + '\n').join('');
}
