import { formatDuration, formatTree, shortArgv } from '../../src/trace/tree';
import type { ExecutionRecord } from '../../src/trace/record';

function exec(id: number, parent: number | null, argv: string[], more: Partial<ExecutionRecord> = {}): ExecutionRecord {
  return {
    id,
    parent,
    pid: 100 + id,
    exe: `/usr/bin/${argv[0]}`,
    argv,
    env: [],
    cwd: '/',
    umask: 0o22,
    start: 1000,
    end: 1012,
    exitCode: 0,
    signal: null,
    inputs: [{ path: '/a', kind: 'content' }],
    outputs: [],
    stdin: { kind: 'null', target: '/dev/null' },
    stdout: { kind: 'pipe', target: 'pipe:[1]', bytes: 0 },
    stderr: { kind: 'pipe', target: 'pipe:[2]', bytes: 0 },
    uncacheable: [],
    ...more,
  };
}

test('one line per execution, children indented under their parent in id order', () => {
  const record = {
    version: 1,
    exitCode: 0,
    signal: null,
    executions: [
      exec(1, null, ['sh', '-c', 'cat a | sort > b'], { end: 3500 }),
      exec(3, 1, ['sort'], { uncacheable: ['read stdin from a pipe outside the execution (pipe:[9])'] }),
      exec(2, 1, ['cat', 'a'], { outputs: [{ path: '/b', kind: 'content' }] }),
      exec(4, 2, ['x'], { end: null, exitCode: null, signal: 9 }),
    ],
  };
  expect(formatTree(record)).toBe(
    [
      "#1 sh -c 'cat a | sort > b'  exit 0  2.5s  in 1 out 0",
      '  #2 cat a  exit 0  12ms  in 1 out 1',
      '    #4 x  signal 9  running  in 1 out 0',
      '  #3 sort  exit 0  12ms  in 1 out 0  uncacheable: read stdin from a pipe outside the execution (pipe:[9])',
      '',
    ].join('\n'),
  );
});

test('argv is quoted like a shell would and cut to width', () => {
  expect(shortArgv(['echo', "it's", '', 'a b', 'x\ny'])).toBe(`echo 'it'\\''s' '' 'a b' 'x\\ny'`);
  expect(shortArgv(['python3', '-c', 'x'.repeat(100)], 20)).toBe('python3 -c xxxxxxxx…');
  expect(shortArgv(['python3', '-c', 'x'.repeat(100)], 20)).toHaveLength(20);
});

test('durations', () => {
  expect([formatDuration(0), formatDuration(999), formatDuration(1500), formatDuration(125_000)]).toEqual(['0ms', '999ms', '1.5s', '2m05s']);
});
