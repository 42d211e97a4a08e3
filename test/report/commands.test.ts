// log, show, inputs and graph through bin/pcache on real runs of a small pipeline; the
// HTML graph rendered in headless Chromium; one-line errors.

import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { digestBytes } from '../../cache-store/digest';
import type { ProvenanceGraph } from '../../src/report/graph';
import { createWorkspace, REPO, writeTree, type Workspace } from '../e2e/harness';
import { cachedRun, pcache } from './helpers';

const PIPELINE = ['#!/bin/sh', 'set -e', 'seq 1 10 > n.txt', 'sort -rn n.txt > r.txt', 'head -n 2 r.txt', ''].join('\n');
const ARTIFACTS = path.join(REPO, 'test-artifacts', 'report');

let ws: Workspace;
beforeEach(async () => {
  ws = createWorkspace();
  writeTree(ws.work, { 'p.sh': PIPELINE });
  expect((await cachedRun(ws, ['./p.sh'])).stdout).toBe('10\n9\n');
  expect((await cachedRun(ws, ['./p.sh'])).stdout).toBe('10\n9\n');
});
afterEach(() => ws.cleanup());

async function ok(args: string[]): Promise<string> {
  const r = await pcache(ws, [...args, '--cache-dir', ws.cache], { TZ: 'UTC' });
  expect([r.exitCode, r.stderr]).toEqual([0, '']);
  return r.stdout;
}

/** Durations, clock times and the count of system files vary from machine to machine. */
function steady(text: string): string {
  return text
    .replace(/\d\d\d\d-\d\d-\d\d \d\d:\d\d:\d\d/g, 'TIME')
    .replace(/\d+(\.\d+)? (ms|s)\b/g, 'T')
    .replace(/\+ \d+ system files/g, '+ N system files');
}

const hash = (rel: string): string => digestBytes(fs.readFileSync(path.join(ws.work, rel)));

test('log: both runs, the second skipped whole', async () => {
  expect(steady(await ok(['log'])).replace(/ +/g, ' ')).toBe(
    [
      'run started exit ran skipped uncacheable wall saved cwd command',
      ` 1 TIME 0 4 0 0 T T ${ws.work} ./p.sh`,
      ` 2 TIME 0 0 1 0 T T ${ws.work} ./p.sh`,
      '',
    ].join('\n'),
  );
  expect(steady(await ok(['log', '-n', '1'])).replace(/ +/g, ' ')).toBe(
    ['run started exit ran skipped uncacheable wall saved cwd command', ` 2 TIME 0 0 1 0 T T ${ws.work} ./p.sh`, ''].join('\n'),
  );
  const json = JSON.parse(await ok(['log', '--json'])) as Array<{ runId: number; executions: object; command: string[] }>;
  expect(json.map((e) => [e.runId, e.command, e.executions])).toEqual([
    [1, ['./p.sh'], { total: 4, ran: 4, skipped: 0, uncacheable: 0 }],
    [2, ['./p.sh'], { total: 1, ran: 0, skipped: 1, uncacheable: 0 }],
  ]);
});

test('show: the execution tree, of the last run by default', async () => {
  const h = (rel: string): string => hash(rel).slice(0, 12);
  expect(steady(await ok(['show', '1']))).toBe(
    [
      `run 1  TIME  ./p.sh  (cwd ${ws.work})`,
      'exit 0; 4 executions: 4 ran, 0 skipped, 0 uncacheable; wall T, saved T',
      '',
      '#1 miss T  ./p.sh',
      `     read  p.sh  content ${h('p.sh')}`,
      '     + N system files and probes (--all lists them)',
      `     wrote n.txt  content ${h('n.txt')}`,
      `     wrote r.txt  content ${h('r.txt')}`,
      '  #2 miss T  seq 1 10',
      '       + N system files and probes (--all lists them)',
      '  #3 miss T  sort -rn n.txt',
      `       read  n.txt  content ${h('n.txt')}`,
      '       + N system files and probes (--all lists them)',
      '  #4 miss T  head -n 2 r.txt',
      `       read  r.txt  content ${h('r.txt')}`,
      '       + N system files and probes (--all lists them)',
      '',
    ].join('\n'),
  );
  expect(steady(await ok(['show']))).toBe(
    [
      `run 2  TIME  ./p.sh  (cwd ${ws.work})`,
      'exit 0; 1 execution: 0 ran, 1 skipped, 0 uncacheable; wall T, saved T',
      '',
      '#1 hit (saved T)  ./p.sh',
      `     read  p.sh  content ${h('p.sh')}`,
      '     + N system files and probes (--all lists them)',
      `     wrote n.txt  content ${h('n.txt')}`,
      `     wrote r.txt  content ${h('r.txt')}`,
      '',
    ].join('\n'),
  );
  expect(await ok(['show', '-1'])).toBe(await ok(['show', '1']));
  const json = JSON.parse(await ok(['show', '1', '--json'])) as { tree: Array<{ argv: string[]; children: Array<{ argv: string[] }> }> };
  expect(json.tree.map((e) => [e.argv, e.children.map((c) => c.argv)])).toEqual([[['./p.sh'], [['seq', '1', '10'], ['sort', '-rn', 'n.txt'], ['head', '-n', '2', 'r.txt']]]]);
});

test('inputs: what the run read from outside itself, with the digests it recorded', async () => {
  const lines = (await ok(['inputs', '1'])).split('\n');
  expect(lines).toContain(`${hash('p.sh')}  content  p.sh`);
  expect(lines).toContain(`${digestBytes(fs.readFileSync('/usr/bin/sort'))}  content  /usr/bin/sort`);
  // written inside the run: not external
  expect(lines.filter((l) => /n\.txt|r\.txt/.test(l))).toEqual([]);
  const json = JSON.parse(await ok(['inputs', '1', '--json'])) as Array<{ path: string; kind: string; hash: string | null }>;
  expect(json.find((i) => i.path === path.join(ws.work, 'p.sh'))).toEqual({ path: path.join(ws.work, 'p.sh'), kind: 'content', hash: hash('p.sh') });
  // no probes without --all; sort asks how many CPUs it may use (a cpus input, its count)
  expect(json.every((i) => i.kind === 'content' || i.kind === 'dirlist' || i.kind === 'cpus')).toBe(true);
  expect(json.filter((i) => i.kind === 'cpus')).toEqual([{ path: '/proc/self/status', kind: 'cpus', hash: String(os.availableParallelism()) }]);
  const all = JSON.parse(await ok(['inputs', '1', '--json', '--all'])) as Array<{ kind: string }>;
  expect(all.some((i) => i.kind === 'absent' || i.kind === 'metadata')).toBe(true);
});

test('graph: nodes and edges of the run, as JSON and dot', async () => {
  const g = JSON.parse(await ok(['graph', '1', '--format', 'json'])) as ProvenanceGraph;
  const name = new Map<string, string>([...g.executions.map((e) => [e.id, e.label] as const), ...g.files.map((f) => [f.id, f.label] as const)]);
  expect(g.executions.map((e) => [e.label, e.outcome, e.parent])).toEqual([
    ['./p.sh', 'miss', null],
    ['seq 1 10', 'miss', 'e1'],
    ['sort -rn n.txt', 'miss', 'e1'],
    ['head -n 2 r.txt', 'miss', 'e1'],
  ]);
  expect(g.files.map((f) => f.label)).toEqual(['n.txt', 'p.sh', 'r.txt']);
  expect(g.edges.map((e) => `${name.get(e.from)} -${e.kind}-> ${name.get(e.to)}`)).toEqual([
    'p.sh -read-> ./p.sh',
    // the shell opens the redirections, so the script writes the files its steps print
    './p.sh -write-> n.txt',
    './p.sh -write-> r.txt',
    './p.sh -child-> seq 1 10',
    './p.sh -child-> sort -rn n.txt',
    'n.txt -read-> sort -rn n.txt',
    './p.sh -child-> head -n 2 r.txt',
    'r.txt -read-> head -n 2 r.txt',
  ]);
  expect(g.executions.every((e) => e.durationMs > 0)).toBe(true);
  const dot = await ok(['graph', '1']);
  expect(dot.startsWith('digraph pcache_run_1 {\n')).toBe(true);
  expect(dot).toContain('  f2 -> e1;\n');
  expect(dot).toContain('  e1 -> e3 [style=dashed, color="#999999"];\n');
  // -o writes the file and prints nothing
  expect(await ok(['graph', '1', '-o', `${ws.io}/g.dot`])).toBe('');
  expect(fs.readFileSync(`${ws.io}/g.dot`, 'utf8')).toBe(dot);
});

/** Runs headless Chromium on a file with a fresh profile and no network features. */
function chromium(args: string[], file: string): { status: number | null; stdout: string; stderr: string } {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-chromium-'));
  try {
    const r = spawnSync(
      'chromium',
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
        '--window-size=1200,800',
        ...args,
        `file://${file}`,
      ],
      { encoding: 'utf8', timeout: 90_000 },
    );
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.error ? String(r.error) : (r.stderr ?? '') };
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

test('graph --format html: one self-contained page that Chromium renders with every node', async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const html = path.join(ARTIFACTS, 'graph.html');
  const png = path.join(ARTIFACTS, 'graph.png');
  fs.rmSync(png, { force: true });
  expect(await ok(['graph', '1', '--format', 'html', '-o', html])).toBe('');
  const page = fs.readFileSync(html, 'utf8');
  // nothing fetched: no external resources of any kind
  expect(page.match(/\b(src|href)\s*=|@import|url\((?!#)|https?:\/\/(?!www\.w3\.org\/2000\/svg")/g)).toBeNull();

  const dom = chromium(['--dump-dom'], html);
  expect(dom.status).toBe(0);
  // the inline script ran to its end
  expect(dom.stdout).toMatch(/<body data-ready="true">/);
  expect(dom.stdout).toContain('Click a node for details');
  const executions = [...dom.stdout.matchAll(/<g class="node execution (\w+)" id="(e\d+)"/g)].map((m) => [m[2], m[1]]);
  expect(executions).toEqual([
    ['e1', 'miss'],
    ['e2', 'miss'],
    ['e3', 'miss'],
    ['e4', 'miss'],
  ]);
  for (const label of ['#1 ./p.sh', '#2 seq 1 10', '#3 sort -rn n.txt', '#4 head -n 2 r.txt', '>n.txt<', '>r.txt<', '>p.sh<']) {
    expect(dom.stdout).toContain(label);
  }
  expect((dom.stdout.match(/<path class="edge /g) ?? []).length).toBe(8);
  expect(dom.stdout).toMatch(/4 executions: 4 ran, 0 skipped, 0 uncacheable/);

  const shot = chromium([`--screenshot=${png}`], html);
  expect(shot.status).toBe(0);
  const bytes = fs.readFileSync(png);
  expect(bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  // 1200x800, as asked (IHDR width and height)
  expect([bytes.readUInt32BE(16), bytes.readUInt32BE(20)]).toEqual([1200, 800]);
});

describe('errors: one line, non-zero', () => {
  async function fails(args: string[], status: number, message: string): Promise<void> {
    const r = await pcache(ws, args);
    expect([r.exitCode, r.stdout, r.stderr]).toEqual([status, '', `pcache: ${message}\n`]);
  }

  test('no runs, no such run, a bad run, a bad execution, a bad format, an unwritable output', async () => {
    const empty = path.join(ws.io, 'empty-cache');
    await fails(['show', '--cache-dir', empty], 1, `no runs recorded in ${empty} yet`);
    expect(fs.existsSync(empty)).toBe(false);
    await fails(['show', '42', '--cache-dir', ws.cache], 1, `no report of run 42 in ${ws.cache} (see pcache log)`);
    await fails(['inputs', 'latest', '--cache-dir', ws.cache], 2, "invalid run 'latest' (expected a run id, 'last' or -N; see pcache log)");
    await fails(['explain', '1', '9', '--cache-dir', ws.cache], 2, 'run 1 has no execution #9');
    await fails(['explain', '1', 'x', '--cache-dir', ws.cache], 2, "invalid execution 'x' (expected its #id in pcache show)");
    await fails(['show', '-5', '--cache-dir', ws.cache], 1, `only 2 runs recorded in ${ws.cache}`);
    const bad = await pcache(ws, ['graph', '--format', 'svg', '--cache-dir', ws.cache]);
    expect([bad.exitCode, bad.stdout]).toEqual([2, '']);
    expect(bad.stderr).toMatch(/^pcache: [^\n]*svg[^\n]*\n$/);
    await fails(['graph', '-o', `${ws.io}/no/such/dir/g.dot`, '--cache-dir', ws.cache], 1, `cannot write ${ws.io}/no/such/dir/g.dot: ENOENT`);
    const log = await pcache(ws, ['log', '--cache-dir', empty]);
    expect([log.exitCode, log.stdout, log.stderr]).toEqual([0, 'no runs recorded yet\n', '']);
  });
});
