// The harness checks itself: tree snapshots and their comparison, and that
// each stdio arrangement really gives the command what it claims (a socket, a
// pipe, a file, a terminal). None of this needs `pcache run`.

import * as fs from 'fs';
import * as path from 'path';
import {
  comparePhase,
  createWorkspace,
  rewriteKeepingMtime,
  runArgv,
  snapshotTree,
  treeDifferences,
  writeTree,
  type Workspace,
} from './harness';

let ws: Workspace;
beforeEach(() => {
  ws = createWorkspace();
});
afterEach(() => ws.cleanup());

describe('snapshotTree and treeDifferences', () => {
  test('records type, mode, content and symlink targets, not mtimes', () => {
    writeTree(ws.work, {
      'a.txt': 'alpha\n',
      'run.sh': '#!/bin/sh\n',
      'sub/b.bin': { content: Buffer.from([0xff, 0x00, 0xfe]), mode: 0o600 },
      'sub/link': { symlink: '../a.txt' },
      empty: { dir: true, mode: 0o700 },
    });
    const tree = snapshotTree(ws.work);
    expect(Object.keys(tree).sort()).toEqual(['', 'a.txt', 'empty', 'run.sh', 'sub', 'sub/b.bin', 'sub/link']);
    expect(tree['a.txt']).toMatchObject({ type: 'file', mode: '0644', size: 6, text: 'alpha\n' });
    expect(tree['run.sh']).toMatchObject({ type: 'file', mode: '0755' });
    expect(tree['sub/b.bin']).toMatchObject({ type: 'file', mode: '0600', size: 3 });
    expect(tree['sub/b.bin']).not.toHaveProperty('text');
    expect(tree['sub/link']).toEqual({ type: 'symlink', target: '../a.txt' });
    expect(tree['empty']).toEqual({ type: 'dir', mode: '0700' });

    fs.utimesSync(path.join(ws.work, 'a.txt'), 1000, 1000);
    expect(treeDifferences(snapshotTree(ws.work), tree)).toEqual([]);

    fs.linkSync(path.join(ws.work, 'a.txt'), path.join(ws.work, 'hard.txt'));
    expect(treeDifferences(snapshotTree(ws.work), tree)).toEqual([
      'a.txt: file 0644 6 bytes "alpha\\n" nlink 2 != file 0644 6 bytes "alpha\\n"',
      'hard.txt: file 0644 6 bytes "alpha\\n" nlink 2 != absent',
    ]);
  });

  test('reports content, mode, type, target, missing and extra paths', () => {
    writeTree(ws.work, { 'a.txt': 'alpha\n', 'b.txt': 'beta\n', 'c.txt': 'c\n', l: { symlink: 'a.txt' }, d: { dir: true } });
    const before = snapshotTree(ws.work);
    fs.writeFileSync(path.join(ws.work, 'a.txt'), 'ALPHA\n');
    fs.chmodSync(path.join(ws.work, 'b.txt'), 0o600);
    fs.rmSync(path.join(ws.work, 'c.txt'));
    fs.writeFileSync(path.join(ws.work, 'new.txt'), 'n\n');
    fs.unlinkSync(path.join(ws.work, 'l'));
    fs.symlinkSync('b.txt', path.join(ws.work, 'l'));
    fs.rmdirSync(path.join(ws.work, 'd'));
    fs.writeFileSync(path.join(ws.work, 'd'), '');
    expect(treeDifferences(snapshotTree(ws.work), before)).toEqual([
      'a.txt: file 0644 6 bytes "ALPHA\\n" != file 0644 6 bytes "alpha\\n"',
      'b.txt: file 0600 5 bytes "beta\\n" != file 0644 5 bytes "beta\\n"',
      'c.txt: absent != file 0644 2 bytes "c\\n"',
      'd: file 0644 0 bytes "" != dir 0755',
      'l: symlink -> b.txt != symlink -> a.txt',
      'new.txt: file 0644 2 bytes "n\\n" != absent',
    ]);
  });

  test('ignoreContent compares those paths by type and mode only', () => {
    writeTree(ws.work, { 'rand.txt': 'one\n' });
    const before = snapshotTree(ws.work);
    fs.writeFileSync(path.join(ws.work, 'rand.txt'), 'two two\n');
    expect(treeDifferences(snapshotTree(ws.work), before, ['rand.txt'])).toEqual([]);
    fs.chmodSync(path.join(ws.work, 'rand.txt'), 0o600);
    expect(treeDifferences(snapshotTree(ws.work), before, ['rand.txt'])).toHaveLength(1);
  });

  test('rewriteKeepingMtime changes the content and keeps inode, size and mtime', () => {
    writeTree(ws.work, { 'a.txt': 'banana\n' });
    const file = path.join(ws.work, 'a.txt');
    const st = fs.statSync(file, { bigint: true });
    rewriteKeepingMtime(file, 'cherry\n');
    const after = fs.statSync(file, { bigint: true });
    expect(fs.readFileSync(file, 'utf8')).toBe('cherry\n');
    expect([after.ino, after.size, after.mtimeNs]).toEqual([st.ino, st.size, st.mtimeNs]);
    expect(fs.readdirSync(ws.work)).toEqual(['a.txt']);
  });
});

describe('stdio arrangements', () => {
  // what fd N of the command is, as /proc shows it
  // (readlink runs inside $(...), so it sees the shell's own unredirected fds)
  const fdKinds = ['/bin/sh', '-c', 'links=$(readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2); echo "$links" >&2; readlink /proc/self/fd/1'];
  const kind = (link: string): string => link.replace(/:\[\d+\]$/, '').replace(/^\/dev\/pts\/\d+$/, 'pty');

  test('socket: node stdio (a socketpair), stdin /dev/null', async () => {
    const r = await runArgv(fdKinds, ws.work, ws.io, {});
    expect(r.exitCode).toBe(0);
    expect(r.stderr.toString().trim().split('\n').map(kind)).toEqual(['/dev/null', 'socket', 'socket']);
  });

  test('pipe: real pipes through the launcher', async () => {
    const r = await runArgv(fdKinds, ws.work, ws.io, { stdio: 'pipe' });
    expect(r.exitCode).toBe(0);
    expect(r.stderr.toString().trim().split('\n').map(kind)).toEqual(['/dev/null', 'pipe', 'pipe']);
  });

  test('file: two regular files outside W', async () => {
    const r = await runArgv(fdKinds, ws.work, ws.io, { stdio: 'file' });
    expect(r.exitCode).toBe(0);
    const links = r.stderr.toString().trim().split('\n');
    expect(links[0]).toBe('/dev/null');
    expect(path.dirname(links[1])).toBe(ws.io);
    expect(path.dirname(links[2])).toBe(ws.io);
    expect(r.stdout.toString()).toBe(`${links[1]}\n`);
  });

  test('alone: two regular files outside W that no process but the command holds', async () => {
    // How many of the parent's (the harness's) fds name the two files: none; with 'file', both.
    const probe = ['/bin/sh', '-c', `echo out; ls -l /proc/$PPID/fd | grep -c '${ws.io}/std' >&2 || true`];
    const r = await runArgv(probe, ws.work, ws.io, { stdio: 'alone' });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toBe('out\n');
    expect(r.stderr.toString()).toBe('0\n');
    expect((await runArgv(probe, ws.work, ws.io, { stdio: 'file' })).stderr.toString()).toBe('2\n');
  });

  test('tty: a terminal on 0, 1 and 2; the transcript is stdout', async () => {
    const r = await runArgv(fdKinds, ws.work, ws.io, { stdio: 'tty' });
    expect(r.exitCode).toBe(0);
    expect(r.stderr.length).toBe(0);
    expect(r.stdout.toString().trim().split('\r\n').map(kind)).toEqual(['pty', 'pty', 'pty', 'pty']);
  });

  test('stdin from a file and from a pipe; umask', async () => {
    fs.writeFileSync(path.join(ws.io, 'in.txt'), 'from a file\n');
    const probe = ['/bin/sh', '-c', 'readlink /proc/self/fd/0 | sed "s/:.*//"; cat; umask'];
    const f = await runArgv(probe, ws.work, ws.io, { stdin: { file: 'in.txt' }, umask: 0o077 });
    expect(f.stdout.toString()).toBe(`${path.join(ws.io, 'in.txt')}\nfrom a file\n0077\n`);
    const p = await runArgv(probe, ws.work, ws.io, { stdin: { pipe: 'through a pipe\n' } });
    const inherited = process.umask().toString(8).padStart(4, '0');
    expect(p.stdout.toString()).toBe(`pipe\nthrough a pipe\n${inherited}\n`);
  });

  test('exit status: a code passes through, a signal death becomes 128+N in every arrangement', async () => {
    for (const stdio of ['socket', 'pipe', 'file', 'alone', 'tty'] as const) {
      expect((await runArgv(['/bin/sh', '-c', 'exit 7'], ws.work, ws.io, { stdio })).exitCode).toBe(7);
      expect((await runArgv(['/bin/sh', '-c', 'kill -TERM $$'], ws.work, ws.io, { stdio })).exitCode).toBe(143);
    }
  });
});

test('a run that outlives its timeout is killed with its whole process group and reported', async () => {
  const marker = path.join(ws.work, 'late');
  // the background sleep would create the marker if it survived the kill
  const argv = ['/bin/sh', '-c', `(sleep 1; touch ${marker}) & sleep 30`];
  await expect(runArgv(argv, ws.work, ws.io, {}, 300)).rejects.toThrow(/timed out after 0.3 s/);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect(fs.existsSync(marker)).toBe(false);
});

describe('comparePhase', () => {
  // A command whose result depends on what is already in W: without the
  // restore between the two sides, the second side would see the first's line.
  // Only the plain side is checked (this must hold whatever pcache does).
  test.each([true, false])('plainFirst=%s: the plain run starts from the snapshot; no snapshot is left', async (plainFirst) => {
    writeTree(ws.work, { 'log.txt': 'start\n' });
    const phase = await comparePhase(ws, { cmd: ['/bin/sh', '-c', 'echo more >> log.txt; cat log.txt'] }, plainFirst);
    expect(phase.plain.stdout.toString()).toBe('start\nmore\n');
    expect(phase.plain.tree['log.txt']).toMatchObject({ text: 'start\nmore\n' });
    expect(fs.existsSync(ws.snapshot)).toBe(false);
  });
});
