import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { findCommand, jsonRecord, resolveCommand } from '../../src/cli/commands/trace';
import { TraceFolder } from '../../src/trace/fold';

describe('findCommand', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-find-')));
    for (const d of ['a', 'b', 'c']) fs.mkdirSync(path.join(dir, d));
    fs.writeFileSync(path.join(dir, 'a', 'tool'), '', { mode: 0o644 }); // not executable: skipped
    fs.mkdirSync(path.join(dir, 'b', 'tool')); // a directory: skipped
    fs.writeFileSync(path.join(dir, 'c', 'tool'), '', { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'here'), '', { mode: 0o755 });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const PATH = () => ['a', 'b', 'c'].map((d) => path.join(dir, d)).join(':');

  test('searches PATH in order, skipping non-executables and directories', () => {
    expect(findCommand('tool', PATH(), '/')).toBe(path.join(dir, 'c', 'tool'));
  });
  test('an empty PATH entry is the current directory; relative entries stay relative', () => {
    expect(findCommand('here', `${PATH()}:`, dir)).toBe('here');
    expect(findCommand('here', PATH(), dir)).toBeNull();
    expect(findCommand('tool', 'a:c/', dir)).toBe('c/tool');
  });
  test('a name with a slash is a path relative to cwd, not searched, and kept as given', () => {
    expect(findCommand('./here', PATH(), dir)).toBe('./here');
    expect(findCommand('c/tool', '', dir)).toBe('c/tool');
    expect(findCommand('a/tool', PATH(), dir)).toBeNull();
    expect(findCommand('', PATH(), dir)).toBeNull();
  });

  // what bash says and exits with when it cannot run the command
  const failure = (cmd: string, pathEnv: string): { message: string; exitCode: number } => {
    try {
      resolveCommand(cmd, pathEnv, dir);
    } catch (e) {
      return { message: (e as Error).message, exitCode: (e as { exitCode: number }).exitCode };
    }
    throw new Error(`${cmd} resolved`);
  };
  test('nothing to run: 127 when there is no such file, 126 when there is one that cannot run', () => {
    expect(resolveCommand('tool', PATH(), '/')).toBe(path.join(dir, 'c', 'tool'));
    expect(failure('nope', PATH())).toEqual({ message: 'nope: command not found', exitCode: 127 });
    expect(failure('./nope', PATH())).toEqual({ message: './nope: No such file or directory', exitCode: 127 });
    expect(failure('a/tool', PATH())).toEqual({ message: 'a/tool: Permission denied', exitCode: 126 });
    expect(failure('b/tool', PATH())).toEqual({ message: 'b/tool: Is a directory', exitCode: 126 });
    // found along PATH, but only without the execute bit
    expect(failure('tool', path.join(dir, 'a'))).toEqual({ message: 'tool: Permission denied', exitCode: 126 });
    expect(failure('', PATH())).toEqual({ message: ': command not found', exitCode: 127 });
  });
});

describe('jsonRecord', () => {
  test('captured bytes: UTF-8 text when valid, base64 otherwise', () => {
    const folder = new TraceFolder({ stat: () => ({ type: '-', mode: 0 }), execInputs: () => [] });
    const fds = [
      { fd: 0, target: '/dev/null', kind: 'null' as const, pos: 0, flags: 0 },
      { fd: 1, target: 'pipe:[1]', kind: 'pipe' as const, pos: 0, flags: 0 },
      { fd: 2, target: 'pipe:[2]', kind: 'pipe' as const, pos: 0, flags: 0 },
    ];
    folder.execRequest({ token: 1, pid: 5, tgid: 5, path: '/bin/x', execSig: '0000000000000001', links: [], argv: ['x'], env: [], cwd: '/', umask: 0o22, fds, time: 1 });
    folder.events([
      { k: 'exec', pid: 5, formerTid: 5, token: 1 },
      { k: 'io', pid: 5, fd: 1, dir: 'w', target: 'pipe:[1]', kind: 'pipe', data: Buffer.from('héllo\n'), count: 7, syscall: 'write' },
      { k: 'io', pid: 5, fd: 2, dir: 'w', target: 'pipe:[2]', kind: 'pipe', data: Buffer.from([0xff, 0x00]), count: 2, syscall: 'write' },
      { k: 'exit', pid: 5, tgid: 5, processExit: true, code: 0, signal: null, time: 2 },
    ]);
    const record = folder.finish({ code: 0, signal: null });
    const out = jsonRecord({ record, folder, exitCode: 0, signal: null });
    expect(out.executions[0].captured).toEqual({ stdout: { text: 'héllo\n' }, stderr: { base64: '/wA=' } });
    expect(out.executions[0].stdout).toEqual({ kind: 'pipe', target: 'pipe:[1]', bytes: 7 });
  });
});
