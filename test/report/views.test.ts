// log, show, inputs and the graph model on synthetic run reports: exact output.

import { buildGraph, formatDot } from '../../src/report/graph';
import { formatHtml, layoutGraph } from '../../src/report/graph-html';
import { externalInputs, formatInputs } from '../../src/report/inputs';
import { formatLog, logEntry } from '../../src/report/log';
import { formatShow, showJson } from '../../src/report/show';
import { CWD, execution, runReport } from './helpers';

// formatTime prints local time
process.env.TZ = 'UTC';

const D = `${CWD}/data`;
const O = `${CWD}/out`;

/** ./pipeline.sh: sort data/x.txt > out/sorted.txt (ran), uniq (skipped), a download (uncacheable). */
function pipelineRun() {
  const sort = execution({
    id: 2,
    parent: 1,
    argv: ['sort', 'data/x.txt'],
    exe: '/usr/bin/sort',
    durationMs: 1234,
    inputs: [
      { path: '/usr/bin/sort', kind: 'content', hash: 'e'.repeat(64) },
      { path: '/usr/lib/x86_64-linux-gnu/libc.so.6', kind: 'content', hash: 'f'.repeat(64) },
      { path: `${D}/x.txt`, kind: 'content', hash: 'a'.repeat(64) },
      { path: '/root/.cargo/bin/sort', kind: 'absent' },
    ],
    outputs: [],
  });
  const uniq = execution({
    id: 4,
    parent: 1,
    outcome: 'hit',
    argv: ['uniq', 'out/sorted.txt'],
    exe: '/usr/bin/uniq',
    durationMs: 0,
    savedMs: 800,
    startMs: 1200,
    inputs: [{ path: `${O}/sorted.txt`, kind: 'content', hash: 'b'.repeat(64) }],
    outputs: [{ path: `${O}/uniq.txt`, kind: 'content', hash: 'c'.repeat(64) }],
  });
  const curl = execution({
    id: 3,
    parent: 1,
    outcome: 'uncacheable',
    reasons: ['connected to 10.0.0.5:443'],
    argv: ['curl', '-so', 'data/ref.fa', 'https://example.org/ref.fa'],
    exe: '/usr/bin/curl',
    durationMs: 50,
    startMs: 1100,
    inputs: [{ path: '/etc/resolv.conf', kind: 'content' }],
    outputs: [{ path: `${D}/ref.fa`, kind: 'content', hash: null }],
  });
  const root = execution({
    id: 1,
    argv: ['./pipeline.sh'],
    exe: `${CWD}/pipeline.sh`,
    durationMs: 2100,
    startMs: 900,
    inputs: [
      { path: `${CWD}/pipeline.sh`, kind: 'content', hash: 'd'.repeat(64) },
      { path: O, kind: 'metadata' },
      ...sort.inputs,
      ...curl.inputs,
      ...uniq.inputs,
    ],
    outputs: [{ path: `${O}/sorted.txt`, kind: 'content', hash: 'b'.repeat(64) }, ...curl.outputs, ...uniq.outputs],
  });
  return runReport(2, [root, sort, curl, uniq], { wallSeconds: 2.25, savedSeconds: 0.8 });
}

test('log: a table of runs, oldest first', () => {
  const first = runReport(1, [execution({ id: 1 }), execution({ id: 2, outcome: 'uncacheable' })], { wallSeconds: 12.5, exitCode: null, signal: 2 });
  expect(formatLog([logEntry(first), logEntry(pipelineRun())])).toBe(
    [
      'run  started              exit  ran  skipped  uncacheable    wall   saved  cwd            command',
      '  1  2026-01-02 03:05:05   130    2        0            1  12.5 s    0 ms  /work/project  ./pipeline.sh',
      '  2  2026-01-02 03:06:05     0    3        1            1  2.25 s  800 ms  /work/project  ./pipeline.sh',
      '',
    ].join('\n'),
  );
  expect(formatLog([])).toBe('no runs recorded yet\n');
  expect(logEntry(pipelineRun())).toEqual({
    runId: 2,
    startedMs: Date.UTC(2026, 0, 2, 3, 6, 5),
    command: ['./pipeline.sh'],
    cwd: CWD,
    exitStatus: 0,
    executions: { total: 4, ran: 3, skipped: 1, uncacheable: 1 },
    wallSeconds: 2.25,
    savedSeconds: 0.8,
  });
});

test('show: the tree, each file once at the deepest execution, system files and probes counted', () => {
  expect(formatShow(pipelineRun())).toBe(
    [
      'run 2  2026-01-02 03:06:05  ./pipeline.sh  (cwd /work/project)',
      'exit 0; 4 executions: 3 ran, 1 skipped, 1 uncacheable; wall 2.25 s, saved 800 ms',
      '',
      '#1 miss 2.10 s  ./pipeline.sh',
      `     read  pipeline.sh  content ${'d'.repeat(12)}`,
      '     + 1 system file and probes (--all lists them)',
      `     wrote out/sorted.txt  content ${'b'.repeat(12)}`,
      '  #2 miss 1.23 s  sort data/x.txt',
      `       read  data/x.txt  content ${'a'.repeat(12)}`,
      '       + 3 system files and probes (--all lists them)',
      '  #3 uncacheable 50 ms  curl -so data/ref.fa https://example.org/ref.fa',
      '       why   connected to 10.0.0.5:443',
      '       + 1 system file and probes (--all lists them)',
      '       wrote data/ref.fa  content',
      '  #4 hit (saved 800 ms)  uniq out/sorted.txt',
      `       read  out/sorted.txt  content ${'b'.repeat(12)}`,
      `       wrote out/uniq.txt  content ${'c'.repeat(12)}`,
      '',
    ].join('\n'),
  );
  const all = formatShow(pipelineRun(), { all: true });
  expect(all).toContain(`       read  /usr/lib/x86_64-linux-gnu/libc.so.6  content ${'f'.repeat(12)}\n`);
  expect(all).toContain('       read  /root/.cargo/bin/sort  absent\n');
  expect(all).toContain('     read  out  metadata\n');
  expect(all).not.toContain('system file');
});

test('show --json: the nested tree', () => {
  const j = showJson(pipelineRun()) as { tree: Array<{ id: number; children: Array<{ id: number; outcome: string; children: unknown[] }> }> };
  expect(j.tree.map((e) => e.id)).toEqual([1]);
  expect(j.tree[0].children.map((c) => [c.id, c.outcome, c.children.length])).toEqual([
    [2, 'miss', 0],
    [3, 'uncacheable', 0],
    [4, 'hit', 0],
  ]);
});

test('inputs: what the run read that none of its executions wrote, with digests', () => {
  const report = pipelineRun();
  expect(externalInputs(report)).toEqual([
    { path: '/etc/resolv.conf', kind: 'content', hash: null },
    { path: '/usr/bin/sort', kind: 'content', hash: 'e'.repeat(64) },
    { path: '/usr/lib/x86_64-linux-gnu/libc.so.6', kind: 'content', hash: 'f'.repeat(64) },
    { path: `${D}/x.txt`, kind: 'content', hash: 'a'.repeat(64) },
    { path: `${CWD}/pipeline.sh`, kind: 'content', hash: 'd'.repeat(64) },
  ]);
  expect(externalInputs(report, { all: true }).map((i) => `${i.kind} ${i.path}`)).toEqual([
    'content /etc/resolv.conf',
    'absent /root/.cargo/bin/sort',
    'content /usr/bin/sort',
    'content /usr/lib/x86_64-linux-gnu/libc.so.6',
    'content /work/project/data/x.txt',
    'metadata /work/project/out',
    'content /work/project/pipeline.sh',
  ]);
  const dash = '-'.padEnd(64);
  expect(formatInputs(report, externalInputs(report))).toBe(
    [
      `${dash}  content  /etc/resolv.conf`,
      `${'e'.repeat(64)}  content  /usr/bin/sort`,
      `${'f'.repeat(64)}  content  /usr/lib/x86_64-linux-gnu/libc.so.6`,
      `${'a'.repeat(64)}  content  data/x.txt`,
      `${'d'.repeat(64)}  content  pipeline.sh`,
      '',
    ].join('\n'),
  );
});

test('graph: executions and files as nodes, child/read/write edges, system files left out', () => {
  const g = buildGraph(pipelineRun());
  expect(g.executions.map((e) => [e.id, e.parent, e.outcome, e.durationMs, e.savedMs])).toEqual([
    ['e1', null, 'miss', 2100, 0],
    ['e2', 'e1', 'miss', 1234, 0],
    ['e3', 'e1', 'uncacheable', 50, 0],
    ['e4', 'e1', 'hit', 0, 800],
  ]);
  expect(g.files).toEqual([
    { id: 'f1', path: `${CWD}/data/ref.fa`, label: 'data/ref.fa' },
    { id: 'f2', path: `${CWD}/data/x.txt`, label: 'data/x.txt' },
    { id: 'f3', path: `${CWD}/out/sorted.txt`, label: 'out/sorted.txt' },
    { id: 'f4', path: `${CWD}/out/uniq.txt`, label: 'out/uniq.txt' },
    { id: 'f5', path: `${CWD}/pipeline.sh`, label: 'pipeline.sh' },
  ]);
  expect(g.edges.map((e) => `${e.from} -${e.kind}-> ${e.to}`)).toEqual([
    'f5 -read-> e1',
    'e1 -write-> f3',
    'e1 -child-> e2',
    'f2 -read-> e2',
    'e1 -child-> e3',
    'e3 -write-> f1',
    'e1 -child-> e4',
    'f3 -read-> e4',
    'e4 -write-> f4',
  ]);
  // /usr/bin/sort, libc, /etc/resolv.conf, the absent probe, the metadata probe of out
  expect(g.hiddenFiles).toBe(5);
  expect(buildGraph(pipelineRun(), { all: true }).files.length).toBe(10);
});

test('graph --format dot', () => {
  const report = runReport(5, [
    execution({ id: 1, argv: ['sh', '-c', 'echo "hi" > out.txt'], durationMs: 12, outputs: [{ path: `${CWD}/out.txt`, kind: 'content', hash: 'x' }] }),
    execution({ id: 2, parent: 1, outcome: 'hit', argv: ['cat', 'out.txt'], savedMs: 3000, inputs: [{ path: `${CWD}/out.txt`, kind: 'content', hash: 'x' }] }),
  ], { savedSeconds: 3 });
  expect(formatDot(buildGraph(report))).toBe(
    [
      'digraph pcache_run_5 {',
      '  rankdir=LR;',
      '  label="run 5: ./pipeline.sh; 1 ran, 1 skipped, 0 uncacheable; saved 3.00 s";',
      '  node [fontname="Helvetica", fontsize=10];',
      `  e1 [shape=box, style="rounded,filled", fillcolor="#ffb74d", label="#1 sh -c 'echo \\"hi\\" > out.txt'\\nmiss 12 ms"];`,
      '  e2 [shape=box, style="rounded,filled", fillcolor="#4caf50", label="#2 cat out.txt\\nhit, saved 3.00 s"];',
      '  f1 [shape=note, label="out.txt"];',
      '  e1 -> f1 [color="#1f4e99"];',
      '  e1 -> e2 [style=dashed, color="#999999"];',
      '  f1 -> e2;',
      '}',
      '',
    ].join('\n'),
  );
});

test('graph layout: data flows left to right, a file read and written by one execution does not loop', () => {
  const g = buildGraph(pipelineRun());
  const { nodes } = layoutGraph(g);
  const layer = (id: string): number => nodes.get(id)!.layer;
  for (const e of g.edges) expect([e.from, e.to, layer(e.from) < layer(e.to)]).toEqual([e.from, e.to, true]);
  const loop = runReport(1, [
    execution({ inputs: [{ path: `${CWD}/log.txt`, kind: 'content', hash: 'a' }], outputs: [{ path: `${CWD}/log.txt`, kind: 'content', hash: 'b' }] }),
  ]);
  const placed = layoutGraph(buildGraph(loop)).nodes;
  expect([...placed.values()].map((n) => [n.id, n.layer])).toEqual([
    ['e1', 0],
    ['f1', 1],
  ]);
});

test('graph --format html: colored by outcome, time saved in the header, names escaped, data inline', () => {
  const report = runReport(3, [
    execution({ id: 1, argv: ['./run.sh'], durationMs: 40, outputs: [{ path: `${CWD}/<b>&.txt`, kind: 'content', hash: 'x' }] }),
    execution({ id: 2, parent: 1, outcome: 'hit', argv: ['bwa', 'mem', 'ref.fa'], savedMs: 65_000 }),
    execution({ id: 3, parent: 1, outcome: 'uncacheable', argv: ['curl', 'https://example.org/</script>'], reasons: ['connected to 10.0.0.5:443'] }),
  ], { savedSeconds: 65 });
  const html = formatHtml(buildGraph(report));
  const nodes = [...html.matchAll(/<g class="node execution (\w+)" id="(e\d)"[^>]*><title>[^<]*<\/title><rect [^>]* fill="([^"]+)"\/>/g)].map((m) => [m[2], m[1], m[3]]);
  expect(nodes).toEqual([
    ['e1', 'miss', '#ffb74d'],
    ['e2', 'hit', '#4caf50'],
    ['e3', 'uncacheable', '#e57373'],
  ]);
  expect(html).toContain('<span class="saved">saved 65.0 s</span>');
  expect(html).toContain('3 executions: 2 ran, 1 skipped, 1 uncacheable');
  expect(html).toContain('>&lt;b&gt;&amp;.txt</text>');
  expect(html).toContain('hit, saved 65.0 s');
  // the embedded JSON cannot close its script element early
  expect(html.split('</script>').length).toBe(3);
  const data = /<script type="application\/json" id="graph-data">(.*?)<\/script>/s.exec(html)![1];
  expect((JSON.parse(data) as { executions: unknown[] }).executions.length).toBe(3);
});
