import * as fs from 'fs';
import * as path from 'path';
import { digestBytes } from '../../cache-store/digest';
import { NewEntry } from '../../cache-store/entry';
import { Store } from '../../cache-store/store';
import { cleanupTempDirs, makeTempDir } from './helpers/tmp';

afterAll(cleanupTempDirs);

function open(options: Parameters<typeof Store.open>[1] = {}): Store {
  return Store.open(path.join(makeTempDir(), 'cache'), { onProblem: (p) => fail(p.message), ...options });
}

const hashOf = (text: string) => digestBytes(text);

function entry(key: string, inputHash: string, extra: Partial<NewEntry> = {}): NewEntry {
  return {
    commandKey: key,
    exitStatus: 0,
    durationMs: 10,
    inputs: [{ path: '/in', kind: 'content', type: 'file', hash: inputHash }],
    outputs: [],
    ...extra,
  };
}

describe('publishing and reading entries', () => {
  test('command key prefixes: all of them at first, then only those of entries added since', async () => {
    const store = open();
    expect(store.commandKeyPrefixes(0, 4)).toEqual({ prefixes: new Set(), lastId: 0 });
    await store.publishEntry(entry('aaaa-1', hashOf('1')));
    await store.publishEntry(entry('aaaa-2', hashOf('2')));
    const b = await store.publishEntry(entry('bbbb-1', hashOf('3')));
    const all = store.commandKeyPrefixes(0, 4);
    expect(all).toEqual({ prefixes: new Set(['aaaa', 'bbbb']), lastId: b.id });
    expect(store.commandKeyPrefixes(all.lastId, 4)).toEqual({ prefixes: new Set(), lastId: b.id });
    const c = await store.publishEntry(entry('cccc-1', hashOf('4')));
    await store.publishEntry(entry('aaaa-3', hashOf('5')));
    const since = store.commandKeyPrefixes(all.lastId, 4);
    expect(since).toEqual({ prefixes: new Set(['cccc', 'aaaa']), lastId: c.id + 1 });
    expect(store.commandKeyPrefixes(0, 6)).toEqual({ prefixes: new Set(['aaaa-1', 'aaaa-2', 'bbbb-1', 'cccc-1', 'aaaa-3']), lastId: c.id + 1 });
    store.close();
  });

  test('an entry reads back exactly as published, with every output kind', async () => {
    const store = open();
    const work = makeTempDir();
    fs.writeFileSync(path.join(work, 'result.txt'), 'result\n');
    fs.chmodSync(path.join(work, 'result.txt'), 0o640);
    const published = await store.publishEntry({
      commandKey: 'ab12',
      exitStatus: 7,
      stdout: { bytes: Buffer.from('to stdout\n') },
      stderr: { bytes: Buffer.from('to stderr\n') },
      durationMs: 123.5,
      inputs: [
        { path: '/usr/bin/tool', kind: 'content', type: 'file', dev: 1n, ino: 2n, size: 3n, mtimeNs: 4n, ctimeNs: 5n, mode: 0o755, hash: hashOf('tool'), verifiedAtNs: 6n },
        { path: '/etc/missing', kind: 'absent' },
        { path: '/etc', kind: 'dirlist', type: 'dir', hash: hashOf('listing') },
        { path: '/lib/link', kind: 'metadata', type: 'symlink', mode: 0o777, hash: 'target.so' },
      ],
      outputs: [
        { path: path.join(work, 'result.txt'), kind: 'content' },
        { path: '/tmp/x/gone', kind: 'deleted' },
        { path: '/tmp/x/dir', kind: 'mkdir', mode: 0o700 },
        { path: '/tmp/x/ln', kind: 'symlink', linkTarget: '../result.txt' },
        { path: '/tmp/x/exe', kind: 'mode', mode: 0o755 },
        { path: '/tmp/x/bytes', kind: 'content', mode: 0o600, source: { bytes: Buffer.from('from memory') } },
      ],
    });
    expect(published.stdoutHash).toBe(hashOf('to stdout\n'));
    const e = store.getEntry(published.id)!;
    expect(e).toMatchObject({ commandKey: 'ab12', exitStatus: 7, durationMs: 123.5, inputCount: 4, outputCount: 6 });
    expect(store.readBlob(e.stdoutHash!)!.toString()).toBe('to stdout\n');
    expect(store.readBlob(e.stderrHash!)!.toString()).toBe('to stderr\n');
    expect(e.inputs).toEqual([
      { path: '/usr/bin/tool', kind: 'content', type: 'file', dev: 1n, ino: 2n, size: 3n, mtimeNs: 4n, ctimeNs: 5n, mode: 0o755, hash: hashOf('tool'), verifiedAtNs: 6n },
      { path: '/etc/missing', kind: 'absent', type: null, dev: null, ino: null, size: null, mtimeNs: null, ctimeNs: null, mode: null, hash: null, verifiedAtNs: null },
      { path: '/etc', kind: 'dirlist', type: 'dir', dev: null, ino: null, size: null, mtimeNs: null, ctimeNs: null, mode: null, hash: hashOf('listing'), verifiedAtNs: null },
      { path: '/lib/link', kind: 'metadata', type: 'symlink', dev: null, ino: null, size: null, mtimeNs: null, ctimeNs: null, mode: 0o777, hash: 'target.so', verifiedAtNs: null },
    ]);
    expect(e.outputs).toEqual([
      { path: path.join(work, 'result.txt'), kind: 'content', hash: hashOf('result\n'), mode: 0o640, linkTarget: null },
      { path: '/tmp/x/gone', kind: 'deleted', hash: null, mode: null, linkTarget: null },
      { path: '/tmp/x/dir', kind: 'mkdir', hash: null, mode: 0o700, linkTarget: null },
      { path: '/tmp/x/ln', kind: 'symlink', hash: null, mode: null, linkTarget: '../result.txt' },
      { path: '/tmp/x/exe', kind: 'mode', hash: null, mode: 0o755, linkTarget: null },
      { path: '/tmp/x/bytes', kind: 'content', hash: hashOf('from memory'), mode: 0o600, linkTarget: null },
    ]);
    store.close();
  });

  test('candidates come newest first; a lookup returns the newest one whose inputs match', async () => {
    const store = open();
    const dir = makeTempDir();
    const input = path.join(dir, 'input');
    fs.writeFileSync(input, 'A');
    const recordA = store.snapshotInput(input, 'content')!;
    const a = await store.publishEntry({ ...entry('key', ''), inputs: [recordA], stdout: { bytes: Buffer.from('A out') } });
    fs.writeFileSync(input, 'B');
    const recordB = store.snapshotInput(input, 'content')!;
    const b = await store.publishEntry({ ...entry('key', ''), inputs: [recordB], stdout: { bytes: Buffer.from('B out') } });
    await store.publishEntry(entry('other-key', hashOf('x')));

    expect(store.candidates('key').map((c) => c.id)).toEqual([b.id, a.id]);
    let result = store.lookup('key');
    expect(result.hit?.id).toBe(b.id);
    expect(result.rejected).toEqual([]);

    fs.writeFileSync(input, 'A'); // back to the first state
    result = store.lookup('key');
    expect(result.hit?.id).toBe(a.id);
    expect(store.readBlob(result.hit!.stdoutHash!)!.toString()).toBe('A out');
    expect(result.rejected).toEqual([{ entryId: b.id, mismatch: { index: 0, path: input, kind: 'content', reason: 'content changed' } }]);

    fs.writeFileSync(input, 'C');
    result = store.lookup('key');
    expect(result.hit).toBeNull();
    expect(result.rejected.map((r) => r.entryId)).toEqual([b.id, a.id]);
    expect(store.lookup('unknown-key')).toEqual({ hit: null, rejected: [] });
    store.close();
  });

  test('lookup asks `tolerate` about mismatching inputs only, with the candidate\'s outputs', async () => {
    const store = open();
    const dir = makeTempDir();
    const made = path.join(dir, 'made-by-the-command');
    const published = await store.publishEntry({
      ...entry('tol', ''),
      inputs: [store.snapshotInput(made, 'absent')!, store.snapshotInput(dir, 'metadata')!],
      outputs: [{ path: made, kind: 'mkdir', mode: 0o755 }],
    });
    fs.mkdirSync(made); // the command's own result now exists
    const asked: Array<[string, string, number]> = [];
    const result = store.lookup('tol', {
      tolerate: (input, reason, outputs) => {
        asked.push([input.path, reason, outputs.length]);
        return outputs.some((o) => o.path === input.path && o.kind === 'mkdir');
      },
    });
    expect(result.hit?.id).toBe(published.id);
    expect(result.hit?.outputs).toEqual([{ path: made, kind: 'mkdir', hash: null, mode: 0o755, linkTarget: null }]);
    expect(asked).toEqual([[made, 'exists now', 1]]);
    expect(store.lookup('tol').hit).toBeNull();
    store.close();
  });

  test('publishing the same command with identical inputs replaces the old entry', async () => {
    const store = open();
    const first = await store.publishEntry(entry('k', hashOf('same'), { exitStatus: 1 }));
    const second = await store.publishEntry(entry('k', hashOf('same'), { exitStatus: 2 }));
    expect(store.candidates('k').map((c) => [c.id, c.exitStatus])).toEqual([[second.id, 2]]);
    expect(store.getEntry(first.id)).toBeUndefined();
    store.close();
  });

  test('candidates per command key are capped, dropping the least recently used', async () => {
    const store = open({ maxCandidates: 3 });
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) ids.push((await store.publishEntry(entry('capped', hashOf(`v${i}`)))).id);
    store.markUsed(ids[0], Date.now() + 60_000); // the oldest is the most recently used
    const newest = (await store.publishEntry(entry('capped', hashOf('v3')))).id;
    expect(store.candidates('capped').map((c) => c.id).sort()).toEqual([ids[0], ids[2], newest].sort());
    expect(store.getEntry(ids[1])).toBeUndefined();
    store.close();
  });

  test('a blob given by hash must be in the store: BLOB_MISSING, and nothing is written', async () => {
    const store = open();
    const bogus = hashOf('never stored');
    await expect(store.publishEntry(entry('k', hashOf('i'), { stdout: { hash: bogus } }))).rejects.toMatchObject({ code: 'BLOB_MISSING' });
    await expect(store.publishEntry(entry('k', hashOf('i'), { outputs: [{ path: '/o', kind: 'content', hash: bogus, mode: 0o644 }] }))).rejects.toMatchObject({
      code: 'BLOB_MISSING',
    });
    expect(store.candidates('k')).toEqual([]);
    expect(store.stats()).toMatchObject({ entries: 0, blobs: 0 });
    store.close();
  });

  test('a blob removed between storing and publishing is stored again from its source', async () => {
    const store = open();
    const stored = store.storeBytes(Buffer.from('stdout bytes'));
    store.blobs.remove(stored.hash); // as a concurrent gc would
    const published = await store.publishEntry(entry('k', hashOf('i'), { stdout: { bytes: Buffer.from('stdout bytes') } }));
    expect(store.readBlob(published.stdoutHash!)!.toString()).toBe('stdout bytes');
    store.close();
  });

  test('malformed entries are refused with INVALID_ARGUMENT', async () => {
    const store = open();
    const bad: Array<Partial<NewEntry>> = [
      { commandKey: '' },
      { exitStatus: 1.5 },
      { inputs: [{ path: '/x', kind: 'content' }] },
      { inputs: [{ path: '/x', kind: 'bogus' as never }] },
      { outputs: [{ path: '/x', kind: 'symlink' }] },
      { outputs: [{ path: '/x', kind: 'mode' }] },
      { outputs: [{ path: '/x', kind: 'deleted', hash: hashOf('x') }] },
    ];
    for (const extra of bad) {
      await expect(store.publishEntry({ ...entry('k', hashOf('i')), ...extra })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    store.close();
  });

  test('a closed store refuses work with STORE_CLOSED', () => {
    const store = open();
    store.close();
    expect(() => store.candidates('k')).toThrow(expect.objectContaining({ code: 'STORE_CLOSED' }));
  });
});

describe('runs and stats', () => {
  test('runs record each execution; stats count entries, blobs, bytes, runs and the hit rate', async () => {
    const store = open();
    const e = await store.publishEntry(entry('k', hashOf('i'), { stdout: { bytes: Buffer.from('12345') }, stderr: { bytes: Buffer.from('678') } }));
    const run = store.recordRun({ command: 'pcache -- make', cwd: '/src', startedMs: 1000 });
    store.recordRunExecution(run, { commandKey: 'k', entryId: e.id, label: 'cc a.c', outcome: 'hit', durationMs: 1, savedMs: 250 });
    store.recordRunExecution(run, { commandKey: 'k2', label: 'cc b.c', outcome: 'miss', reason: 'input changed', durationMs: 300 });
    store.recordRunExecution(run, { label: 'curl', outcome: 'uncacheable', reason: 'network socket' });
    store.recordRunExecution(run, { commandKey: 'k3', outcome: 'hit', savedMs: 50 });
    const summary = store.finishRun(run, { endedMs: 5000, exitStatus: 0 });
    expect(summary).toEqual({
      id: run,
      command: 'pcache -- make',
      cwd: '/src',
      startedMs: 1000,
      endedMs: 5000,
      exitStatus: 0,
      executions: 4,
      hits: 2,
      misses: 1,
      uncacheable: 1,
      timeSavedMs: 300,
    });
    const stats = store.stats();
    expect(stats).toMatchObject({ entries: 1, commandKeys: 1, blobs: 2, blobBytes: 8, runs: 1, hits: 2, misses: 1, uncacheable: 1, timeSavedMs: 300 });
    expect(stats.hitRate).toBeCloseTo(2 / 3);
    expect(stats.totalBytes).toBe(stats.blobBytes + stats.indexBytes);
    expect(stats.indexBytes).toBe(fs.statSync(store.indexPath).size);
    store.close();
  });

  test('a run\'s execution rows wait for the next write transaction, or for close', async () => {
    const store = open();
    const reader = Store.open(store.dir);
    const rows = (): number =>
      ((reader as unknown as { db: import('better-sqlite3').Database }).db.prepare('SELECT count(*) AS n FROM run_executions').get() as { n: number }).n;
    try {
      const run = store.recordRun({ command: 'pcache -- make', cwd: '/src', startedMs: 1000 });
      store.recordRunExecution(run, { commandKey: 'k', label: 'cc a.c', outcome: 'miss', durationMs: 3 });
      expect(rows()).toBe(0);
      await store.publishEntry(entry('k', hashOf('i')));
      expect(rows()).toBe(1);
      store.recordRunExecution(run, { commandKey: 'k2', label: 'cc b.c', outcome: 'uncacheable', reason: 'network socket' });
      expect(rows()).toBe(1);
      store.close();
      expect(rows()).toBe(2);
    } finally {
      reader.close();
    }
  });

  test('an empty cache has no hit rate', () => {
    const store = open();
    expect(store.stats()).toMatchObject({ entries: 0, blobs: 0, blobBytes: 0, runs: 0, hitRate: null });
    store.close();
  });
});
