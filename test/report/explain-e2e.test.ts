// explain on real runs of small pipelines: each kind of change between two runs gives its
// message, through bin/pcache.

import * as fs from 'fs';
import * as path from 'path';
import { readRunReport } from '../../src/core/run-report';
import { createWorkspace, REPO, writeTree, type Workspace } from '../e2e/harness';
import { cachedRun, pcache } from './helpers';

const PIPELINE = ['#!/bin/sh', 'set -e', 'sort data/x.txt > sorted.txt', 'cat data/*.txt > all.txt', ''].join('\n');

let ws: Workspace;
beforeEach(() => {
  ws = createWorkspace();
});
afterEach(() => ws.cleanup());

async function explain(...args: string[]): Promise<string> {
  const r = await pcache(ws, ['explain', '--cache-dir', ws.cache, ...args]);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  return r.stdout;
}

async function run(cmd: string[], env: Record<string, string> = {}): Promise<void> {
  const r = await cachedRun(ws, cmd, env);
  expect([r.exitCode, r.stderr]).toEqual([0, '']);
}

test('a pipeline: first run, a changed input, a new file in a globbed directory, a changed environment variable', async () => {
  writeTree(ws.work, { 'p.sh': PIPELINE, 'data/x.txt': 'b\na\nc\n' });
  await run(['./p.sh']);
  expect(await explain()).toBe(
    [
      'run 1: ./p.sh (values: this run vs before)',
      '#1 ./p.sh: never ran before',
      '#2 sort data/x.txt: never ran before',
      '#3 cat data/x.txt: never ran before',
      '',
    ].join('\n'),
  );

  fs.writeFileSync(path.join(ws.work, 'data/x.txt'), 'b\na\nd\n');
  await run(['./p.sh']);
  expect(await explain()).toBe(
    [
      'run 2: ./p.sh (values: this run vs before)',
      '#1 ./p.sh: input data/x.txt changed (content)',
      '#2 sort data/x.txt: input data/x.txt changed (content)',
      '#3 cat data/x.txt: input data/x.txt changed (content)',
      '',
    ].join('\n'),
  );

  fs.writeFileSync(path.join(ws.work, 'data/y.txt'), 'z\n');
  await run(['./p.sh']);
  expect(await explain()).toBe(
    [
      'run 3: ./p.sh (values: this run vs before)',
      '#1 ./p.sh: directory data/ gained y.txt',
      '#2 cat data/x.txt data/y.txt: argument 2 added: data/y.txt',
      '1 skipped execution not listed',
      '',
    ].join('\n'),
  );

  await run(['./p.sh'], { LC_ALL: 'C.UTF-8' });
  expect(await explain()).toBe(
    [
      'run 4: ./p.sh (values: this run vs before)',
      '#1 ./p.sh: environment variable LC_ALL differs',
      '#2 sort data/x.txt: environment variable LC_ALL differs',
      '#3 cat data/x.txt data/y.txt: environment variable LC_ALL differs',
      '',
    ].join('\n'),
  );
  // an earlier run and one execution can be asked about
  expect(await explain('2', '3')).toBe(['run 2: ./p.sh (values: this run vs before)', '#3 cat data/x.txt: input data/x.txt changed (content)', ''].join('\n'));
  expect(await explain('3', '3')).toBe('#3 was skipped (a cached result matched)\n');
  // --json carries what it was compared with
  const json = JSON.parse(await explain('2', '--json')) as Array<{ execution: number; kind: string; comparedWith?: { runId: number } }>;
  expect(json.map((x) => [x.execution, x.kind, x.comparedWith?.runId])).toEqual([
    [1, 'input', 1],
    [2, 'input', 1],
    [3, 'input', 1],
  ]);
});

test('an option value that differs', async () => {
  writeTree(ws.work, { 'x.txt': 'b 2\na 1\n' });
  await run(['sort', '-k', '1', 'x.txt']);
  await run(['sort', '-k', '2', 'x.txt']);
  expect(await explain()).toBe(['run 2: sort -k 2 x.txt (values: this run vs before)', '#1 sort -k 2 x.txt: argument 2 differs: -k 2 vs -k 1', ''].join('\n'));
});

test('a new program earlier on PATH shadows the one that ran before', async () => {
  writeTree(ws.work, { 'b/tool': { content: '#!/bin/sh\necho b\n', mode: 0o755 } });
  const env = { PATH: `${ws.work}/a:${ws.work}/b:/usr/bin:/bin` };
  await run(['sh', '-c', 'tool'], env);
  writeTree(ws.work, { 'a/tool': { content: '#!/bin/sh\necho a\n', mode: 0o755 } });
  await run(['sh', '-c', 'tool'], env);
  expect(await explain()).toBe(
    [
      'run 2: sh -c tool (values: this run vs before)',
      // the shell looked for a/tool and did not find it: now it exists
      '#1 sh -c tool: new file a/tool shadows b/tool on PATH',
      // the program itself: another executable for the same argv[0]
      '#2 tool: new file a/tool shadows b/tool on PATH',
      '',
    ].join('\n'),
  );
});

test('an uncacheable execution gives its reason', async () => {
  const fixture = path.join(REPO, 'fixtures/bin/socket_connect');
  await run([fixture]);
  const report = readRunReport(ws.cache, 1)!;
  expect(report.executions[0].reasons.some((r) => /^connected to 127\.0\.0\.1:\d+$/.test(r))).toBe(true);
  expect(await explain()).toBe(
    [`run 1: ${fixture} (values: this run vs before)`, `#1 ${fixture}: uncacheable: ${report.executions[0].reasons[0]}`, ''].join('\n'),
  );
});
