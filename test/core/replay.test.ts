// writeStdio reaches every descriptor before writing a byte: a replay that cannot reach
// stderr must not have written stdout already (the real run it falls back to writes it).
// Nor may it go on to stderr once stdout's reader has gone.

import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { mayWrite, writeStdio } from '../../src/core/replay';
import type { ExecRequest } from '../../src/trace/native';

const req: ExecRequest = { token: 1, pid: 42, tgid: 42, path: '/bin/true', execSig: '0000000000000001', links: [], argv: ['true'], env: [], cwd: '/', umask: 0o22, fds: [], time: 0 };

describe('writeStdio', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-replay-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('stderr unreachable: nothing is written to stdout', async () => {
    const out = path.join(dir, 'out');
    const dupFd = (_pid: number, fd: number): number => (fd === 1 ? fs.openSync(out, 'w') : -9);
    await expect(writeStdio(dupFd, req, { stdout: Buffer.from('once\n'), stderr: Buffer.from('err\n') })).rejects.toThrow(
      'cannot reach fd 2 of process 42 (errno 9)',
    );
    expect(fs.readFileSync(out, 'utf8')).toBe('');
  });

  test('both reachable: each stream gets exactly its bytes', async () => {
    const files = [path.join(dir, '1'), path.join(dir, '2')];
    const dupFd = (_pid: number, fd: number): number => fs.openSync(files[fd - 1], 'w');
    await writeStdio(dupFd, req, { stdout: Buffer.from('out\n'), stderr: Buffer.from('err\n') });
    expect(files.map((f) => fs.readFileSync(f, 'utf8'))).toEqual(['out\n', 'err\n']);
  });

  /** The write end of a FIFO whose reader has already gone: writes fail with EPIPE. */
  function brokenPipe(): number {
    const fifo = path.join(dir, `fifo${Math.random()}`);
    execFileSync('mkfifo', [fifo]);
    const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const writer = fs.openSync(fifo, fs.constants.O_WRONLY);
    fs.closeSync(reader);
    return writer;
  }

  test("stdout's reader gone: said so, and stderr is left for the real run", async () => {
    const err = path.join(dir, 'err');
    const dupFd = (_pid: number, fd: number): number => (fd === 1 ? brokenPipe() : fs.openSync(err, 'w'));
    expect(await writeStdio(dupFd, req, { stdout: Buffer.from('out\n'), stderr: Buffer.from('err\n') })).toBe('reader gone');
    expect(fs.readFileSync(err, 'utf8')).toBe('');
  });

  test("stderr's reader gone after stdout was written: the end of that stream", async () => {
    const out = path.join(dir, 'out');
    const dupFd = (_pid: number, fd: number): number => (fd === 1 ? fs.openSync(out, 'w') : brokenPipe());
    expect(await writeStdio(dupFd, req, { stdout: Buffer.from('out\n'), stderr: Buffer.from('err\n') })).toBe('written');
    expect(fs.readFileSync(out, 'utf8')).toBe('out\n');
  });
});

describe('mayWrite (a real run opens an output for writing; a restore renames and would not care)', () => {
  afterEach(() => jest.restoreAllMocks());
  const as = (uid: number, gid: number, groups: number[] = []): void => {
    jest.spyOn(process, 'geteuid').mockReturnValue(uid);
    jest.spyOn(process, 'getegid').mockReturnValue(gid);
    jest.spyOn(process, 'getgroups').mockReturnValue(groups);
  };
  // A path the kernel cannot answer for: what the mode bits say decides.
  const p = '/nonexistent/pcache-test/out.txt';
  const file = (mode: number, uid: number, gid: number) => ({ mode: BigInt(0o100000 | mode), uid: BigInt(uid), gid: BigInt(gid) });

  test('by the owner, group or other bit that applies', () => {
    as(1000, 100);
    expect(mayWrite(p, file(0o644, 1000, 100))).toBe(true);
    expect(mayWrite(p, file(0o444, 1000, 100))).toBe(false);
    expect(mayWrite(p, file(0o464, 2000, 100))).toBe(true);
    expect(mayWrite(p, file(0o466, 1000, 100))).toBe(false); // the owner bit applies, not other's
    expect(mayWrite(p, file(0o446, 2000, 300))).toBe(true);
    as(1000, 100, [300]);
    expect(mayWrite(p, file(0o464, 2000, 300))).toBe(true);
  });

  test('root may write anything', () => {
    as(0, 0);
    expect(mayWrite(p, file(0o444, 1000, 100))).toBe(true);
  });
});
