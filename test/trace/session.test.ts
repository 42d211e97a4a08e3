import type { ExecDecision, ExecRequest, NativeEvent, NativeTracer, TraceOptions } from '../../src/trace/native';
import { runTraced } from '../../src/trace/session';

/** A stand-in for the addon: records what pcache tells it and plays a script of callbacks. */
class FakeTracer implements NativeTracer {
  decisions: Array<[number, ExecDecision]> = [];
  exits: number[] = [];
  preimages: number[] = [];
  signals: number[] = [];
  onDecision: () => void = () => undefined;
  resolveExec(token: number, decision: ExecDecision): void {
    this.decisions.push([token, decision]);
    this.onDecision();
  }
  resolveExit(token: number): void {
    this.exits.push(token);
  }
  resolvePreimage(token: number): void {
    this.preimages.push(token);
  }
  signal(sig: number): void {
    this.signals.push(sig);
  }
  allowed: string[] = [];
  allowExecs(sigs: string[]): void {
    this.allowed.push(...sigs);
  }
  stats(): Record<string, number> {
    return {};
  }
}

function fakeNative(play: (o: TraceOptions, t: FakeTracer) => void) {
  const tracer = new FakeTracer();
  let options: TraceOptions | undefined;
  return {
    tracer,
    options: () => options,
    native: {
      eventVersion: 1,
      dupFd: () => -9,
      restoreStdioFlags: () => undefined,
      termSize: () => null,
      execImpliedInputs: () => [],
      start(o: TraceOptions): NativeTracer {
        options = o;
        setImmediate(() => play(o, tracer));
        return tracer;
      },
    },
  };
}

const req = (token: number): ExecRequest => ({
  token,
  pid: 7,
  tgid: 7,
  path: '/bin/tool',
  execSig: '0000000000000001',
  links: [],
  argv: ['tool'],
  env: ['A=1'],
  cwd: '/w',
  umask: 0o22,
  fds: [],
  time: 10,
});

const base = { argv: ['tool', 'x'], file: '/bin/tool', env: ['A=1'], cwd: '/w', ignoreDirs: [] };

test('passes argv/file/env/cwd, answers each exec with the decision, folds the events', async () => {
  const f = fakeNative((o, t) => {
    o.onExec(req(1));
    t.onDecision = () => {
      o.onEvents([
        { k: 'exec', pid: 7, formerTid: 7, token: 1 },
        { k: 'exit', pid: 7, tgid: 7, processExit: true, code: 5, signal: null, time: 20 },
      ], 1);
      o.onPreimage({ token: 8, pid: 7, items: [{ path: '/w/f', kind: 'content' }] });
      o.onExit({ token: 9, pid: 7, tid: 7, code: 5, signal: null });
      o.onDone({ code: 5, signal: null });
    };
  });
  const seen: ExecRequest[] = [];
  const r = await runTraced({
    ...base,
    native: f.native,
    decideExec: async (q) => {
      seen.push(q);
      return { action: 'run', holdExit: true };
    },
  });
  expect(f.options()).toEqual(expect.objectContaining({ argv: ['tool', 'x'], file: '/bin/tool', env: ['A=1'], cwd: '/w' }));
  expect(seen.map((q) => q.token)).toEqual([1]);
  expect(f.tracer.decisions).toEqual([[1, { action: 'run', holdExit: true }]]);
  expect(f.tracer.exits).toEqual([9]);
  expect(f.tracer.preimages).toEqual([8]);
  expect([r.exitCode, r.signal, r.record.exitCode]).toEqual([5, null, 5]);
  expect(r.record.executions.map((e) => [e.id, e.exe, e.exitCode, e.start, e.end])).toEqual([[1, '/bin/tool', 5, 10, 20]]);
});

test('a failing decision still lets the exec run', async () => {
  const f = fakeNative((o, t) => {
    o.onExec(req(3));
    t.onDecision = () => o.onDone({ code: 0, signal: null });
  });
  await runTraced({ ...base, native: f.native, decideExec: async () => Promise.reject(new Error('cache broken')) });
  expect(f.tracer.decisions).toEqual([[3, { action: 'run' }]]);
});

test('SIGINT, SIGTERM and SIGHUP are forwarded while the command runs, and only then', async () => {
  const before = ['SIGINT', 'SIGTERM', 'SIGHUP'].map((s) => process.listenerCount(s));
  const f = fakeNative((o) => {
    process.emit('SIGTERM', 'SIGTERM');
    process.emit('SIGINT', 'SIGINT');
    process.emit('SIGHUP', 'SIGHUP');
    o.onDone({ code: null, signal: 15 });
  });
  const r = await runTraced({ ...base, native: f.native });
  expect(f.tracer.signals).toEqual([15, 2, 1]);
  expect([r.exitCode, r.signal]).toEqual([null, 15]);
  expect(['SIGINT', 'SIGTERM', 'SIGHUP'].map((s) => process.listenerCount(s))).toEqual(before);
});

test('a tracer error rejects and stops forwarding', async () => {
  const before = process.listenerCount('SIGTERM');
  const f = fakeNative((o) => o.onDone({ code: null, signal: null, error: 'fork failed: EAGAIN' }));
  await expect(runTraced({ ...base, native: f.native })).rejects.toThrow('fork failed: EAGAIN');
  expect(process.listenerCount('SIGTERM')).toBe(before);
});


test('a failure while folding does not stop the answers; it is reported when the command is done', async () => {
  const f = fakeNative((o, t) => {
    o.onEvents([{ k: 'bogus' } as unknown as NativeEvent], 2);
    o.onExec(req(4));
    t.onDecision = () => o.onDone({ code: 0, signal: null });
  });
  await expect(runTraced({ ...base, native: f.native })).rejects.toThrow('internal error while folding the trace: unknown native event');
  expect(f.tracer.decisions).toEqual([[4, { action: 'run' }]]);
});

test('exit and preimage hooks that throw or reject still release the tracee', async () => {
  const f = fakeNative((o) => {
    o.onExit({ token: 21, pid: 7, tid: 7, code: 0, signal: null });
    o.onPreimage({ token: 22, pid: 7, items: [{ path: '/w/f', kind: 'content' }] });
    setTimeout(() => o.onDone({ code: 0, signal: null }), 20);
  });
  await runTraced({
    ...base,
    native: f.native,
    onExitRequest: () => {
      throw new Error('store broken');
    },
    onPreimage: async () => Promise.reject(new Error('hash failed')),
  });
  expect(f.tracer.exits).toEqual([21]);
  expect(f.tracer.preimages).toEqual([22]);
});
