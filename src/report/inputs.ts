// `pcache inputs [RUN]`: the run's external inputs, i.e. what it read that no execution
// in it wrote, with the digests recorded for them: what an auditor needs to reproduce
// the run elsewhere.

import type { RunReport } from '../core/run-report';
import { displayPath, isProbe } from './runs';

export interface ExternalInput {
  path: string;
  kind: string;
  /** content: blob digest; dirlist: listing digest; metadata of a symlink: its target; null when not recorded */
  hash: string | null;
}

/**
 * Sorted by path then kind. Without `all`, probes (metadata and absence: PATH and library
 * searches) are left out. A digest is only known for executions whose entry was stored or
 * replayed; an input seen only by uncacheable executions has none.
 */
export function externalInputs(report: RunReport, opts: { all?: boolean } = {}): ExternalInput[] {
  const written = new Set<string>();
  for (const e of report.executions) for (const o of e.outputs) written.add(o.path);
  const found = new Map<string, ExternalInput>();
  for (const e of report.executions) {
    for (const i of e.inputs) {
      if (written.has(i.path)) continue;
      if (!opts.all && isProbe(i)) continue;
      const id = `${i.path}\0${i.kind}`;
      const known = found.get(id);
      if (!known) found.set(id, { path: i.path, kind: i.kind, hash: i.hash ?? null });
      else if (known.hash === null && i.hash) known.hash = i.hash;
    }
  }
  return [...found.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
}

/** `<digest or ->  <kind>  <path>`, the digest in full so it can be checked elsewhere. */
export function formatInputs(report: RunReport, inputs: readonly ExternalInput[]): string {
  if (inputs.length === 0) return `run ${report.runId} read nothing from outside itself\n`;
  const hashWidth = Math.max(...inputs.map((i) => (i.hash ?? '-').length));
  const kindWidth = Math.max(...inputs.map((i) => i.kind.length));
  return inputs
    .map((i) => `${(i.hash ?? '-').padEnd(hashWidth)}  ${i.kind.padEnd(kindWidth)}  ${displayPath(i.path, report.cwd)}\n`)
    .join('');
}
