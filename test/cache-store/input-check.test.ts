import * as fs from 'fs';
import * as path from 'path';
import { InputRecord } from '../../cache-store/entry';
import { RACY_WINDOW_NS } from '../../cache-store/hash-cache';
import { digestDirListing } from '../../cache-store/input-check';
import { decodeManifest, encodeManifest } from '../../cache-store/manifest';
import { Store } from '../../cache-store/store';
import { cleanupTempDirs, makeTempDir } from './helpers/tmp';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const settle = () => sleep(Number(RACY_WINDOW_NS / 1_000_000n) + 300);

let store: Store;
afterAll(() => {
  store.close();
  cleanupTempDirs();
});

type Scene = ReturnType<typeof snapshotScene>;

/** A directory with one input of each kind. */
function makeSceneFiles(): string {
  const dir = makeTempDir();
  const f = (name: string) => path.join(dir, name);
  fs.writeFileSync(f('data.txt'), 'data v1\n');
  fs.writeFileSync(f('script.sh'), '#!/bin/sh\n');
  fs.chmodSync(f('script.sh'), 0o755);
  fs.mkdirSync(f('sub'));
  fs.writeFileSync(f('sub/one'), '1');
  fs.symlinkSync('data.txt', f('link'));
  return dir;
}

function snapshotScene(dir: string) {
  const f = (name: string) => path.join(dir, name);
  const snap = (p: string, kind: InputRecord['kind']) => {
    const record = store.snapshotInput(p, kind);
    if (!record) throw new Error(`cannot snapshot ${p} as ${kind}`);
    return record;
  };
  const inputs = {
    content: snap(f('data.txt'), 'content'),
    metadata: snap(f('script.sh'), 'metadata'),
    link: snap(f('link'), 'metadata'),
    absent: snap(f('missing.txt'), 'absent'),
    dirlist: snap(f('sub'), 'dirlist'),
  };
  return { dir, f, inputs, all: Object.values(inputs) };
}

// Scenes are made up front and settled together (one wait instead of one per test).
const scenes: Scene[] = [];
async function scene(): Promise<Scene> {
  const next = scenes.pop();
  if (!next) throw new Error('not enough scenes prepared');
  return next;
}

beforeAll(async () => {
  // The racy-file guard as on file systems without multigrain timestamps.
  store = Store.open(path.join(makeTempDir(), 'cache'), { timestamps: 'coarse' });
  const dirs = Array.from({ length: 22 }, makeSceneFiles);
  await settle();
  for (const dir of dirs) scenes.push(snapshotScene(dir));
});

describe('input checking', () => {
  test('unchanged inputs match on stat alone', async () => {
    const { all } = await scene();
    let checker = store.newInputChecker();
    expect(checker.check(all)).toBeNull();
    expect(checker.filesHashed).toBe(0);
    checker = store.newInputChecker();
    expect(checker.checkManifest(encodeManifest(all))).toBeNull();
    expect(checker.filesHashed).toBe(0);
  });

  test('the manifest round-trips every input field', async () => {
    const { all } = await scene();
    const big: InputRecord = {
      path: '/ünïcode/path with spaces',
      kind: 'content',
      type: 'file',
      dev: 0xffffffffffffff00n,
      ino: 0xfedcba9876543210n,
      size: 123n,
      mtimeNs: 1n,
      ctimeNs: 2n,
      mode: 0o4755,
      hash: 'a'.repeat(64),
      verifiedAtNs: 3n,
    };
    const normal = (r: InputRecord): InputRecord => ({
      type: null, dev: null, ino: null, size: null, mtimeNs: null, ctimeNs: null, mode: null, hash: null, verifiedAtNs: null, ...r,
    });
    expect(decodeManifest(encodeManifest([...all, big]))).toEqual([...all, big].map(normal));
    expect(decodeManifest(encodeManifest([]))).toEqual([]);
  });

  test("a terminal input matches only the size the caller reports for that path", () => {
    const terminal: InputRecord = { path: '/dev/fd/1', kind: 'terminal', hash: '24x80' };
    const manifest = encodeManifest([terminal]);
    expect(decodeManifest(manifest)).toEqual([{ type: null, dev: null, ino: null, size: null, mtimeNs: null, ctimeNs: null, mode: null, verifiedAtNs: null, ...terminal }]);
    const asked: string[] = [];
    const sized = (size: string | null) => (p: string) => (asked.push(p), size);
    expect(store.newInputChecker(sized('24x80')).checkManifest(manifest)).toBeNull();
    expect(store.newInputChecker(sized('30x100')).checkManifest(manifest)).toEqual({
      index: 0,
      path: '/dev/fd/1',
      kind: 'terminal',
      reason: 'terminal size changed (24x80 -> 30x100)',
    });
    expect(store.newInputChecker(sized(null)).check([terminal])?.reason).toBe('not a terminal');
    expect(asked).toEqual(['/dev/fd/1', '/dev/fd/1', '/dev/fd/1']);
    // nobody to say which terminal it is (a report, not a lookup): never a match
    expect(store.newInputChecker().check([terminal])?.reason).toBe('not a terminal');
  });

  test('a cpus input matches only the count the caller reports for the new execution', () => {
    const cpus: InputRecord = { path: '/proc/self/status', kind: 'cpus', hash: '4' };
    const manifest = encodeManifest([cpus]);
    expect(decodeManifest(manifest)).toEqual([{ type: null, dev: null, ino: null, size: null, mtimeNs: null, ctimeNs: null, mode: null, verifiedAtNs: null, ...cpus }]);
    const counted = (n: string | null) => [undefined, () => n] as const;
    expect(store.newInputChecker(...counted('4')).checkManifest(manifest)).toBeNull();
    expect(store.newInputChecker(...counted('16')).checkManifest(manifest)).toEqual({
      index: 0,
      path: '/proc/self/status',
      kind: 'cpus',
      reason: 'CPU count changed (4 -> 16)',
    });
    expect(store.newInputChecker(...counted(null)).check([cpus])?.reason).toBe('CPU count unknown');
    expect(store.newInputChecker().check([cpus])?.reason).toBe('CPU count unknown');
  });

  test('snapshots record what the file system shows', async () => {
    const { inputs, f } = await scene();
    expect(inputs.content).toMatchObject({ kind: 'content', type: 'file', size: 8n, mode: 0o644 });
    expect(inputs.metadata).toMatchObject({ kind: 'metadata', type: 'file', mode: 0o755, hash: null });
    expect(inputs.link).toMatchObject({ kind: 'metadata', type: 'symlink', hash: 'data.txt' });
    expect(inputs.absent).toEqual({ path: f('missing.txt'), kind: 'absent' });
    expect(inputs.dirlist.hash).toBe(digestDirListing(f('sub')));
    // Not what the kind needs: no record.
    expect(store.snapshotInput(f('sub'), 'content')).toBeUndefined();
    expect(store.snapshotInput(f('data.txt'), 'absent')).toBeUndefined();
    expect(store.snapshotInput(f('data.txt'), 'dirlist')).toBeUndefined();
    expect(store.snapshotInput(f('nope'), 'metadata')).toBeUndefined();
  });

  test('a file rewritten with identical bytes still matches (by hash: early cutoff)', async () => {
    const { f, inputs } = await scene();
    fs.writeFileSync(f('data.tmp'), 'data v1\n');
    fs.renameSync(f('data.tmp'), f('data.txt')); // new inode, new times, same content
    const checker = store.newInputChecker();
    expect(checker.check([inputs.content])).toBeNull();
    expect(checker.filesHashed).toBe(1);
  });

  test.each([
    ['content changed, same size', (f: (n: string) => string) => fs.writeFileSync(f('data.txt'), 'data v2\n'), 'content', 'content changed'],
    ['content grew', (f: (n: string) => string) => fs.appendFileSync(f('data.txt'), 'more\n'), 'content', 'size changed'],
    ['content removed', (f: (n: string) => string) => fs.rmSync(f('data.txt')), 'content', 'missing'],
    ['content became a directory', (f: (n: string) => string) => (fs.rmSync(f('data.txt')), fs.mkdirSync(f('data.txt'))), 'content', 'not a regular file'],
    ['mode changed', (f: (n: string) => string) => fs.chmodSync(f('script.sh'), 0o644), 'metadata', 'mode changed'],
    ['size of probed file changed', (f: (n: string) => string) => fs.appendFileSync(f('script.sh'), 'x'), 'metadata', 'size changed'],
    ['type changed', (f: (n: string) => string) => (fs.rmSync(f('script.sh')), fs.mkdirSync(f('script.sh'), 0o755)), 'metadata', 'type changed (file -> dir)'],
    ['symlink retargeted', (f: (n: string) => string) => (fs.rmSync(f('link')), fs.symlinkSync('script.sh', f('link'))), 'link', 'link target changed'],
    ['absent file appeared', (f: (n: string) => string) => fs.writeFileSync(f('missing.txt'), ''), 'absent', 'exists now'],
    ['absent path became a dangling symlink', (f: (n: string) => string) => fs.symlinkSync('nowhere', f('missing.txt')), 'absent', 'exists now'],
    ['directory gained an entry', (f: (n: string) => string) => fs.writeFileSync(f('sub/two'), '2'), 'dirlist', 'listing changed'],
    ['directory entry renamed', (f: (n: string) => string) => fs.renameSync(f('sub/one'), f('sub/uno')), 'dirlist', 'listing changed'],
    ['directory removed', (f: (n: string) => string) => fs.rmSync(f('sub'), { recursive: true }), 'dirlist', 'not a directory'],
  ] as const)('%s -> mismatch', async (_name, change, which, reason) => {
    const { f, inputs, all } = await scene();
    change(f);
    const target = inputs[which];
    const expected = { index: all.indexOf(target), path: target.path, kind: target.kind, reason };
    expect(store.newInputChecker().check(all)).toEqual(expected);
    // The packed manifest (what lookups use) reaches the same verdict.
    expect(store.newInputChecker().checkManifest(encodeManifest(all))).toEqual(expected);
  });

  test('changing a file inside a listed directory does not change the listing', async () => {
    const { f, inputs } = await scene();
    fs.writeFileSync(f('sub/one'), 'different content');
    expect(store.newInputChecker().check([inputs.dirlist])).toBeNull();
  });

  test('an input recorded while racy is re-hashed, not trusted by stat', () => {
    const dir = makeTempDir();
    const file = path.join(dir, 'just-written');
    fs.writeFileSync(file, 'v1\n');
    const record = store.snapshotInput(file, 'content')!;
    let checker = store.newInputChecker();
    expect(checker.check([record])).toBeNull();
    expect(checker.filesHashed).toBe(1);
    // Rewritten within the same timestamp tick would keep the stamp; the content check catches it.
    fs.writeFileSync(file, 'v2\n');
    checker = store.newInputChecker();
    expect(checker.check([record])?.reason).toBe('content changed');
  });

  test('1,000 unchanged inputs are checked without reading a single file', async () => {
    const dir = makeTempDir();
    const files = Array.from({ length: 1000 }, (_, i) => path.join(dir, `in-${i}`));
    files.forEach((file, i) => fs.writeFileSync(file, `input ${i}\n`));
    await settle();
    const inputs = files.map((file) => store.snapshotInput(file, 'content')!);
    const published = await store.publishEntry({ commandKey: 'k1000', exitStatus: 0, durationMs: 1, inputs, outputs: [] });
    const checker = store.newInputChecker();
    const result = store.lookup('k1000', { checker });
    expect(result.hit?.id).toBe(published.id);
    expect(result.hit?.inputs).toHaveLength(1000);
    expect(checker.filesHashed).toBe(0);
  });
});
