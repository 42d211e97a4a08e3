// The live status line on a real pseudo-terminal (`script`): the programs' output comes
// through intact (a partial line included), the status row is cleared at the end and
// nothing of it is left after; no status line with --quiet or off a terminal.

import { PCACHE, createWorkspace, runArgv, writeTree, type Workspace } from '../e2e/harness';
import { pcache } from './helpers';

const SLOW = ['#!/bin/sh', 'echo line-one', 'sleep 0.3', "printf 'partial-'", 'sleep 0.4', 'echo rest', 'echo to-stderr >&2', 'echo last', ''].join('\n');
const PROGRAM_OUTPUT = 'line-one\r\npartial-rest\r\nto-stderr\r\nlast\r\n';

const RESERVE = '\r\n\x1b[1A\x1b7\x1b[1;23r\x1b8';
const DRAW = /\x1b7\x1b\[24;1H\x1b\[2K([^\x1b]+)\x1b8/g;
const ERASE = '\x1b7\x1b[r\x1b8\x1b7\x1b[24;1H\x1b[2K\x1b8';

let ws: Workspace;
beforeEach(() => {
  ws = createWorkspace();
  writeTree(ws.work, { 'slow.sh': SLOW });
});
afterEach(() => ws.cleanup());

/** pcache under `script` on a 24x80 terminal; returns the transcript. */
async function onTerminal(flags: string[]): Promise<string> {
  const cmd = `stty rows 24 cols 80; exec '${process.execPath}' '${PCACHE}' --cache-dir '${ws.cache}' ${flags.join(' ')} -- ./slow.sh`;
  const r = await runArgv(['script', '-qec', cmd, '/dev/null'], ws.work, ws.io, { env: { TERM: 'xterm' } });
  expect(r.exitCode).toBe(0);
  return r.stdout.toString('latin1');
}

test('drawn on the reserved last row, erased at the end, the output intact', async () => {
  const t = await onTerminal([]);
  expect(t.startsWith(RESERVE)).toBe(true);
  const draws = [...t.matchAll(DRAW)].map((m) => m[1]);
  expect(draws.length).toBeGreaterThanOrEqual(1);
  for (const text of draws) expect(text).toMatch(/^pcache: \d+ running, \d+ done, \d+ skipped; saved \d+(\.\d+)? m?s$/);
  expect(draws[0]).toBe('pcache: 1 running, 0 done, 0 skipped; saved 0 ms');
  // erased once, after the last draw; only the summary line follows
  expect(t.split(ERASE).length).toBe(2);
  const after = t.slice(t.indexOf(ERASE) + ERASE.length);
  expect(after).toMatch(/^pcache: \d+ executions: \d+ ran, \d+ skipped, 0 uncacheable; saved [^\r\n\x1b]*\r\n$/);
  // without the status sequences, exactly what the programs wrote
  const stripped = t.slice(RESERVE.length).replace(DRAW, '').replace(ERASE, '');
  expect(stripped).toBe(PROGRAM_OUTPUT + after);
});

test('--quiet: no status line, no summary, only the programs', async () => {
  expect(await onTerminal(['--quiet'])).toBe(PROGRAM_OUTPUT);
});

test('stderr not a terminal: no status line', async () => {
  const r = await pcache(ws, ['--cache-dir', ws.cache, '--', './slow.sh']);
  expect(r.stdout).toBe('line-one\npartial-rest\nlast\n');
  expect(r.stderr).toMatch(/^to-stderr\npcache: \d+ executions: [^\n\x1b]*\n$/);
});
