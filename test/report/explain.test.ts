// explain on synthetic run reports: one test per kind of message, the choice of the
// closest earlier execution, and the printed form.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { explainRun, formatExplain } from '../../src/report/explain';
import { CWD, execution, runReport } from './helpers';

const JF = ['/usr/bin/jellyfish', 'count', '-k', '21', 'reads.fa'];

function explainOne(before: ReturnType<typeof runReport>[], now: ReturnType<typeof execution>): string[] {
  const report = runReport(before.length + 1, [now]);
  return explainRun(report, [...before, report]).map((x) => x.message);
}

let tmp: string;
beforeEach(() => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-explain-')));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('same command key: the newest rejected candidate', () => {
  test('a changed input file, relative to the run directory', () => {
    const run1 = runReport(1, [execution({ id: 3, entryId: 7 })]);
    const now = execution({
      id: 3,
      rejected: [
        { entryId: 7, path: `${CWD}/data/x.txt`, kind: 'content', reason: 'content changed' },
        { entryId: 2, path: `${CWD}/data/y.txt`, kind: 'content', reason: 'missing' },
      ],
    });
    const report = runReport(2, [now]);
    expect(explainRun(report, [run1, report])).toEqual([
      {
        execution: 3,
        argv: now.argv,
        kind: 'input',
        message: 'input data/x.txt changed (content)',
        comparedWith: { runId: 1, execution: 3, entryId: 7 },
      },
    ]);
  });

  test.each([
    ['content', 'size changed', 'input data/x.txt changed (content)'],
    ['content', 'missing', 'input data/x.txt was removed'],
    ['content', 'not a regular file', 'input data/x.txt is no longer a regular file'],
    ['metadata', 'type changed (file -> dir)', 'data/x.txt changed type (file -> dir)'],
    ['metadata', 'mode changed', 'data/x.txt changed mode'],
    ['metadata', 'link target changed', 'symlink data/x.txt points elsewhere now'],
    ['absent', 'exists now', 'new file data/x.txt (it was absent before)'],
    ['dirlist', 'not a directory', 'directory data/x.txt/ is gone or no longer a directory'],
  ])('%s input, %s', (kind, reason, message) => {
    const now = execution({ rejected: [{ entryId: 1, path: `${CWD}/data/x.txt`, kind, reason }] });
    expect(explainOne([], now)).toEqual([message]);
  });

  test('paths outside the run directory stay absolute when that is shorter', () => {
    const now = execution({ rejected: [{ entryId: 1, path: '/etc/ld.so.cache', kind: 'content', reason: 'content changed' }] });
    expect(explainOne([], now)).toEqual(['input /etc/ld.so.cache changed (content)']);
  });

  test('a directory that gained an entry the execution then read', () => {
    const data = `${CWD}/data`;
    const old = execution({
      entryId: 4,
      inputs: [
        { path: data, kind: 'dirlist', hash: 'd1' },
        { path: `${data}/S1.fastq.gz`, kind: 'content', hash: 'a' },
        { path: `${data}/S2.fastq.gz`, kind: 'content', hash: 'b' },
      ],
    });
    const now = execution({
      inputs: [
        { path: data, kind: 'dirlist', hash: 'd2' },
        { path: `${data}/S1.fastq.gz`, kind: 'content', hash: 'a' },
        { path: `${data}/S2.fastq.gz`, kind: 'content', hash: 'b' },
        { path: `${data}/S5.fastq.gz`, kind: 'content', hash: 'c' },
      ],
      rejected: [{ entryId: 4, path: data, kind: 'dirlist', reason: 'listing changed' }],
    });
    expect(explainOne([runReport(1, [old])], now)).toEqual(['directory data/ gained S5.fastq.gz']);
  });

  test('a directory that lost an entry (seen absent now)', () => {
    const data = `${CWD}/data`;
    const old = execution({
      entryId: 4,
      inputs: [
        { path: data, kind: 'dirlist', hash: 'd1' },
        { path: `${data}/S1.fastq.gz`, kind: 'content', hash: 'a' },
        { path: `${data}/S2.fastq.gz`, kind: 'content', hash: 'b' },
      ],
    });
    const now = execution({
      inputs: [
        { path: data, kind: 'dirlist', hash: 'd2' },
        { path: `${data}/S1.fastq.gz`, kind: 'content', hash: 'a' },
        { path: `${data}/S2.fastq.gz`, kind: 'absent' },
      ],
      rejected: [{ entryId: 4, path: data, kind: 'dirlist', reason: 'listing changed' }],
    });
    expect(explainOne([runReport(1, [old])], now)).toEqual(['directory data/ lost S2.fastq.gz']);
  });

  test('a listing change whose names are unknown', () => {
    const data = `${CWD}/data`;
    const old = execution({ entryId: 4, inputs: [{ path: data, kind: 'dirlist', hash: 'd1' }] });
    const now = execution({
      inputs: [{ path: data, kind: 'dirlist', hash: 'd2' }],
      rejected: [{ entryId: 4, path: data, kind: 'dirlist', reason: 'listing changed' }],
    });
    expect(explainOne([runReport(1, [old])], now)).toEqual(['directory data/ changed its entries']);
    // without the earlier report there is nothing to compare names with
    expect(explainOne([], now)).toEqual(['directory data/ changed its entries']);
  });

  test('a new file earlier on PATH than the program the command ran before', () => {
    fs.mkdirSync(path.join(tmp, 'local'));
    fs.mkdirSync(path.join(tmp, 'bin'));
    fs.writeFileSync(path.join(tmp, 'local', 'bwa'), '');
    fs.writeFileSync(path.join(tmp, 'bin', 'bwa'), '');
    const now = execution({
      argv: ['/bin/sh', '-c', 'bwa index ref.fa'],
      keyParts: { env: [`PATH=${tmp}/local:${tmp}/bin`] },
      rejected: [{ entryId: 1, path: `${tmp}/local/bwa`, kind: 'absent', reason: 'exists now' }],
    });
    expect(explainOne([], now)).toEqual([`new file ${tmp}/local/bwa shadows ${tmp}/bin/bwa on PATH`]);
  });

  test('the same command ran before, uncacheable then', () => {
    const old = execution({ outcome: 'uncacheable', reasons: ['connected to 10.0.0.5:443'] });
    expect(explainOne([runReport(1, [old])], execution())).toEqual([
      'it was uncacheable when it ran before (run 1: connected to 10.0.0.5:443)',
    ]);
  });

  test('the same command ran before, but no candidate was left', () => {
    expect(explainOne([runReport(1, [execution({ entryId: 3 })])], execution())).toEqual([
      'ran before with the same command (run 1) but no cached result was left to compare (evicted, cleared, or skipping was off)',
    ]);
  });
});

describe('another command key: the first differing key part', () => {
  test('an option value, shown with its option (this run first)', () => {
    const old = execution({ argv: JF, key: 'k21' });
    const now = execution({ argv: [...JF.slice(0, 3), '19', 'reads.fa'], key: 'k19' });
    expect(explainOne([runReport(1, [old])], now)).toEqual(['argument 3 differs: -k 19 vs -k 21']);
  });

  test('arguments added, removed, and a plain one that differs', () => {
    const old = execution({ argv: JF, key: 'a' });
    expect(explainOne([runReport(1, [old])], execution({ argv: [...JF, 'more reads.fa'], key: 'b' }))).toEqual([
      "argument 5 added: 'more reads.fa'",
    ]);
    expect(explainOne([runReport(1, [old])], execution({ argv: JF.slice(0, 4), key: 'b' }))).toEqual(['argument 4 removed: reads.fa']);
    expect(explainOne([runReport(1, [old])], execution({ argv: [JF[0], 'stats', ...JF.slice(2)], key: 'b' }))).toEqual([
      'argument 1 differs: stats vs count',
    ]);
  });

  test('environment variables: changed, new, unset; values are not shown', () => {
    const old = execution({ key: 'a', keyParts: { env: ['LC_ALL=C', 'PATH=/usr/bin:/bin'] } });
    const run1 = runReport(1, [old]);
    expect(explainOne([run1], execution({ key: 'b', keyParts: { env: ['LC_ALL=en_US.UTF-8', 'PATH=/usr/bin:/bin'] } }))).toEqual([
      'environment variable LC_ALL differs',
    ]);
    expect(explainOne([run1], execution({ key: 'b', keyParts: { env: ['LC_ALL=C', 'OMP_NUM_THREADS=4', 'PATH=/usr/bin:/bin'] } }))).toEqual([
      'environment variable OMP_NUM_THREADS is new',
    ]);
    expect(explainOne([run1], execution({ key: 'b', keyParts: { env: ['PATH=/usr/bin:/bin'] } }))).toEqual([
      'environment variable LC_ALL was unset',
    ]);
  });

  test('a program found earlier on PATH now (the old one still exists)', () => {
    for (const d of ['usr-local-bin', 'usr-bin']) {
      fs.mkdirSync(path.join(tmp, d));
      fs.writeFileSync(path.join(tmp, d, 'bwa'), '');
    }
    const old = execution({ argv: ['bwa', 'index', 'ref.fa'], exe: `${tmp}/usr-bin/bwa`, key: 'a' });
    const now = execution({ argv: ['bwa', 'index', 'ref.fa'], exe: `${tmp}/usr-local-bin/bwa`, key: 'b' });
    expect(explainOne([runReport(1, [old])], now)).toEqual([`new file ${tmp}/usr-local-bin/bwa shadows ${tmp}/usr-bin/bwa on PATH`]);
    fs.rmSync(path.join(tmp, 'usr-bin', 'bwa'));
    expect(explainOne([runReport(1, [old])], now)).toEqual([
      `executable differs: ${tmp}/usr-local-bin/bwa vs ${tmp}/usr-bin/bwa (gone)`,
    ]);
  });

  test('umask and standard streams', () => {
    const run1 = runReport(1, [execution({ key: 'a' })]);
    expect(explainOne([run1], execution({ key: 'b', keyParts: { umask: 0o077 } }))).toEqual(['umask differs: 0077 vs 0022']);
    expect(explainOne([run1], execution({ key: 'b', keyParts: { stdout: 'tty' } }))).toEqual(['standard output differs: tty vs file']);
    expect(explainOne([run1], execution({ key: 'b', keyParts: { stdin: 'file:/work/project/in.txt@0' } }))).toEqual([
      'standard input differs: file:/work/project/in.txt@0 vs null',
    ]);
    expect(explainOne([run1], execution({ key: 'b', keyParts: { merged: true } }))).toEqual(['stdout and stderr are one stream now (2>&1)']);
  });

  test('the closest earlier execution: fewest differing key parts, then the newest', () => {
    const twoOff = execution({ argv: [...JF.slice(0, 3), '25', 'reads.fa'], key: 'x', keyParts: { env: ['LC_ALL=C.UTF-8', 'PATH=/usr/bin:/bin'] } });
    const oneOff = execution({ argv: JF, key: 'y', keyParts: { env: ['LC_ALL=C.UTF-8', 'PATH=/usr/bin:/bin'] } });
    const alsoOneOff = execution({ argv: JF, key: 'z', keyParts: { umask: 0o002 } });
    const now = execution({ argv: JF, key: 'now' });
    // run 2 (one difference) beats run 3 (two differences) although older
    expect(explainOne([runReport(1, [oneOff]), runReport(2, [twoOff])], now)).toEqual(['environment variable LC_ALL differs']);
    // equally close: the newest wins
    expect(explainOne([runReport(1, [oneOff]), runReport(2, [alsoOneOff])], now)).toEqual(['umask differs: 0022 vs 0002']);
    expect(explainOne([runReport(1, [alsoOneOff]), runReport(2, [oneOff])], now)).toEqual(['environment variable LC_ALL differs']);
  });

  test('more key parts differ: counted after the first', () => {
    const old = execution({ argv: JF, key: 'a' });
    const now = execution({
      argv: [...JF.slice(0, 3), '19', 'reads.fa'],
      key: 'b',
      keyParts: { env: ['LC_ALL=C', 'PATH=/opt/bin:/usr/bin:/bin', 'TMPDIR=/scratch'], umask: 0o002 },
    });
    expect(explainOne([runReport(1, [old])], now)).toEqual(['argument 3 differs: -k 19 vs -k 21 (and 3 more differences)']);
    const envOnly = execution({ argv: JF, key: 'c', keyParts: { env: ['LC_ALL=C', 'PATH=/opt/bin:/usr/bin:/bin'], umask: 0o002 } });
    expect(explainOne([runReport(1, [old])], envOnly)).toEqual(['environment variable PATH differs (and 1 more difference)']);
  });

  test('never seen before: another program, or the same one in another directory', () => {
    expect(explainOne([], execution())).toEqual(['never ran before']);
    const elsewhere = execution({ cwd: '/elsewhere', key: 'a' });
    expect(explainOne([runReport(1, [elsewhere])], execution({ key: 'b' }))).toEqual(['never ran before']);
    const other = execution({ argv: ['/usr/bin/uniq', '-c'], key: 'c' });
    expect(explainOne([runReport(1, [other])], execution({ key: 'b' }))).toEqual(['never ran before']);
  });

  test('later runs do not count as earlier', () => {
    const report = runReport(1, [execution({ key: 'b' })]);
    const later = runReport(2, [execution({ key: 'a', argv: ['/usr/bin/sort', '-r', 'data/x.txt'] })]);
    expect(explainRun(report, [report, later]).map((x) => x.message)).toEqual(['never ran before']);
  });
});

test('uncacheable executions give their first reason', () => {
  const now = execution({ outcome: 'uncacheable', reasons: ['connected to 10.0.0.5:443', 'read /dev/urandom'] });
  expect(explainOne([], now)).toEqual(['uncacheable: connected to 10.0.0.5:443']);
});

test('the printed form: one line per execution that ran, hits counted, one execution on request', () => {
  const report = runReport(2, [
    execution({ id: 1, argv: ['./pipeline.sh'], rejected: [{ entryId: 9, path: `${CWD}/data/x.txt`, kind: 'content', reason: 'content changed' }] }),
    execution({ id: 2, parent: 1, argv: ['/usr/bin/curl', '-s', 'https://example.org/x'], outcome: 'uncacheable', reasons: ['connected to 10.0.0.5:443'] }),
    execution({ id: 3, parent: 1, outcome: 'hit', savedMs: 700 }),
    execution({ id: 4, parent: 1, argv: ['/usr/bin/wc', '-l'], key: 'wc' }),
  ]);
  expect(formatExplain(report, explainRun(report, [report]))).toBe(
    [
      'run 2: ./pipeline.sh (values: this run vs before)',
      '#1 ./pipeline.sh: input data/x.txt changed (content)',
      '#2 /usr/bin/curl -s https://example.org/x: uncacheable: connected to 10.0.0.5:443',
      '#4 /usr/bin/wc -l: never ran before',
      '1 skipped execution not listed',
      '',
    ].join('\n'),
  );
  expect(explainRun(report, [report], 4).map((x) => x.execution)).toEqual([4]);
});
