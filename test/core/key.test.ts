// The command key: what identifies an execution before it runs (src/core/key.ts).

import { commandKey, EXEC_SIG_PREFIX_LENGTH, execSigOfKey, ignoredEnv, keyParts } from '../../src/core/key';
import type { ExecRequest, FdSnapshot } from '../../src/trace/native';

const O_WRONLY = 1;
const O_APPEND = 0o2000;

function request(extraFds: FdSnapshot[] = []): ExecRequest {
  return {
    token: 1,
    pid: 10,
    tgid: 10,
    path: '/usr/bin/sort',
    execSig: '0123456789abcdef',
    links: [],
    argv: ['sort', 'in.txt'],
    env: ['LANG=C', 'SHLVL=2'],
    cwd: '/work',
    umask: 0o22,
    time: 0,
    fds: [
      { fd: 0, target: '/dev/null', kind: 'null', pos: 0, flags: 0 },
      { fd: 1, target: '/work/out.txt', kind: 'file', pos: 0, flags: O_WRONLY },
      { fd: 2, target: 'pipe:[7]', kind: 'pipe', pos: 0, flags: O_WRONLY },
      ...extraFds,
    ],
  } as ExecRequest;
}

const keyOf = (req: ExecRequest): string => commandKey(keyParts(req, ignoredEnv({})), req.execSig);
const file = (fd: number, target: string, pos = 0, flags = 0): FdSnapshot => ({ fd, target, kind: 'file', pos, flags });

describe('command key', () => {
  test('is stable: the same request has had the same key since format 3 (entries stay usable)', () => {
    expect(keyOf(request())).toBe('0123456789abcdef-814d2c003d9c4f458cb8d60b304e5a1b011cdafb45a2097dd4ca902c91489c55');
    // format 2's key, which no exec signature leads (the exec filter could not know its entries)
    expect(keyOf(request())).not.toBe('8170d10b30e14ae3997e47622deeb518458ec63ae81ccf08e48bd47b71950225');
    // format 1's key: its entries recorded no CPU count, so they are never found
    expect(keyOf(request())).not.toBe('aaf13dbe1b696afb9655a585b5bfda50b473f1e2eb81ae96d349ef47e1d971e6');
    // SHLVL is ignored; a pipe on fd 3 (make's jobserver) is not part of the key
    const other = request([{ fd: 3, target: 'pipe:[9]', kind: 'pipe', pos: 0, flags: 0 }]);
    other.env = ['LANG=C', 'SHLVL=5'];
    expect(keyOf(other)).toBe(keyOf(request()));
  });

  test("follows its environment's content: one frozen array gives one key, a changed array a new one", () => {
    // A frozen array (the tracer's, shared by execs with equal environments) is worked out once;
    // an array that can still change must never hit what was worked out for its old content.
    // one ignore set for the whole run, as CachedRun keeps it (work is remembered per set)
    const ignored = ignoredEnv({});
    const keyIn = (req: ExecRequest): string => commandKey(keyParts(req, ignored), req.execSig);
    const shared = Object.freeze(['LANG=C', 'SHLVL=2']) as string[];
    const a = request();
    a.env = shared;
    const b = request();
    b.env = shared;
    expect(keyIn(a)).toBe(keyIn(request()));
    expect(keyIn(b)).toBe(keyIn(a));
    const mutable = request();
    const before = keyIn(mutable);
    mutable.env.push('LC_ALL=C');
    const after = keyIn(mutable);
    expect(after).not.toBe(before);
    const fresh = request();
    fresh.env = ['LANG=C', 'SHLVL=2', 'LC_ALL=C'];
    expect(after).toBe(keyIn(fresh));
    expect(keyParts(mutable, ignored).env).toEqual(['LANG=C', 'LC_ALL=C']);
  });

  test('is led by the exec signature, which execSigOfKey reads back; other versions have none', () => {
    const key = keyOf(request());
    expect(execSigOfKey(key)).toBe('0123456789abcdef');
    expect(key.length).toBe(EXEC_SIG_PREFIX_LENGTH + 64);
    const other = request();
    other.execSig = 'fedcba9876543210';
    expect(keyOf(other)).toBe(`fedcba9876543210${key.slice(16)}`);
    expect(execSigOfKey('8170d10b30e14ae3997e47622deeb518458ec63ae81ccf08e48bd47b71950225')).toBeNull();
  });

  test('names the files open on fd 3 and up (`cmd 3< in`), their offset and access', () => {
    const base = keyOf(request([file(3, '/work/a.txt')]));
    expect(base).not.toBe(keyOf(request()));
    expect(keyOf(request([file(3, '/work/b.txt')]))).not.toBe(base);
    expect(keyOf(request([file(4, '/work/a.txt')]))).not.toBe(base);
    expect(keyOf(request([file(3, '/work/a.txt', 10)]))).not.toBe(base);
    expect(keyOf(request([file(3, '/work/a.txt', 0, O_WRONLY)]))).not.toBe(base);
    expect(keyOf(request([{ fd: 3, target: '/work', kind: 'dir', pos: 0, flags: 0 }]))).not.toBe(base);
    // Appending writes at the end: where the offset stands does not matter.
    const log = (pos: number): FdSnapshot => file(5, '/work/log', pos, O_WRONLY | O_APPEND);
    expect(keyOf(request([log(100)]))).toBe(keyOf(request([log(2000)])));
    expect(keyParts(request([log(100)]), ignoredEnv({})).openFds).toEqual(['fd 5: file /work/log, write appending']);
  });

  test('with a terminal on fd 0-2: never a key of format 1, whose entries may lack the terminal size', () => {
    const onTerminal = request();
    onTerminal.fds[2] = { fd: 2, target: '/dev/pts/3', kind: 'tty', pos: 0, flags: O_WRONLY };
    expect(keyOf(onTerminal)).toBe('0123456789abcdef-ea8fae012180b4a35c5ca5899fd49054b657303e967149f771c74b60905cffaf');
    // format 1 before terminal sizes were inputs (b7fa394's key.ts), and after (5424b8c's)
    expect(keyOf(onTerminal)).not.toBe('c27e959f94a13c067929aa95bbf7addd3d99896905584466ffa8a8b3800e73db');
    expect(keyOf(onTerminal)).not.toBe('0565745a7f5efeee2fcc1b7446a9eaf1df006541540b218baffc7e761a2ade41');
  });
});
