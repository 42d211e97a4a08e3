import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { nowNs } from '../../cache-store/blobs';
import { digestBytes } from '../../cache-store/digest';
import { Store, StoreProblem } from '../../cache-store/store';
import { cleanupTempDirs, makeTempDir } from './helpers/tmp';

afterAll(cleanupTempDirs);

function open(problems: StoreProblem[] = []): Store {
  return Store.open(path.join(makeTempDir(), 'cache'), { onProblem: (p) => problems.push(p) });
}

describe('restoreBlob', () => {
  test('restores byte-identical content with the recorded mode, replacing the old file', async () => {
    const store = open();
    const work = makeTempDir();
    const src = path.join(work, 'tool');
    const bytes = Buffer.alloc(5 * 1024 * 1024 + 3, 7);
    bytes.write('#!/bin/sh\necho hi\n');
    fs.writeFileSync(src, bytes);
    const { hash } = await store.storeFile(src);
    const dest = path.join(work, 'restored');
    fs.writeFileSync(dest, 'old content');
    expect(await store.restoreBlob(hash, dest, 0o750)).toBe('restored');
    expect(fs.readFileSync(dest).equals(bytes)).toBe(true);
    expect(fs.statSync(dest).mode & 0o7777).toBe(0o750);
    expect(await store.restoreBlob(hash, path.join(work, 'private'), 0o600)).toBe('restored');
    expect(fs.statSync(path.join(work, 'private')).mode & 0o7777).toBe(0o600);
    // Temp files beside the destination are gone.
    expect(fs.readdirSync(work).sort()).toEqual(['private', 'restored', 'tool']);
    store.close();
  });

  test('a destination that already has the content is left alone, only its mode fixed', async () => {
    const store = open();
    const work = makeTempDir();
    const dest = path.join(work, 'out');
    fs.writeFileSync(dest, 'result\n');
    fs.chmodSync(dest, 0o644);
    const inode = fs.statSync(dest).ino;
    const { hash } = store.storeBytes(Buffer.from('result\n'));
    expect(await store.restoreBlob(hash, dest, 0o640)).toBe('unchanged');
    expect(fs.statSync(dest).ino).toBe(inode);
    expect(fs.statSync(dest).mode & 0o7777).toBe(0o640);
    store.close();
  });

  test('the hash cache answers for a destination: holding the content needs no blob, other content is replaced', async () => {
    const problems: StoreProblem[] = [];
    const store = open(problems);
    const work = makeTempDir();
    // Rows as if each file had been hashed long after it last changed (settled).
    const remember = (file: string, content: string): void => {
      store.hashCache.record(file, fs.statSync(file, { bigint: true }), digestBytes(content), nowNs() + 5_000_000_000n);
    };
    const same = path.join(work, 'same');
    fs.writeFileSync(same, 'result\n');
    remember(same, 'result\n');
    const inode = fs.statSync(same).ino;
    const gone = store.storeBytes(Buffer.from('result\n')).hash;
    store.blobs.remove(gone);
    expect(await store.restoreBlob(gone, same, 0o644)).toBe('unchanged');
    expect(fs.statSync(same).ino).toBe(inode);
    expect(problems).toEqual([]);

    const other = path.join(work, 'other');
    fs.writeFileSync(other, 'resulT\n');
    remember(other, 'resulT\n');
    const wanted = store.storeBytes(Buffer.from('result\n')).hash;
    expect(await store.restoreBlob(wanted, other, 0o644)).toBe('restored');
    expect(fs.readFileSync(other, 'utf8')).toBe('result\n');
    store.close();
  });

  test('a corrupt blob is a miss: destination untouched, blob and dependent entries removed, problem reported', async () => {
    const problems: StoreProblem[] = [];
    const store = open(problems);
    const work = makeTempDir();
    const out = path.join(work, 'out.txt');
    fs.writeFileSync(out, 'good output\n');
    const published = await store.publishEntry({
      commandKey: 'c0ffee',
      exitStatus: 0,
      durationMs: 5,
      inputs: [],
      outputs: [{ path: out, kind: 'content' }],
    });
    const hash = published.outputs[0].hash!;
    const blobFile = store.blobs.pathOf(hash);
    fs.chmodSync(blobFile, 0o644);
    fs.writeFileSync(blobFile, 'evil output\n');
    fs.writeFileSync(out, 'current\n');

    expect(await store.restoreBlob(hash, out, 0o644)).toBe('corrupt');
    expect(fs.readFileSync(out, 'utf8')).toBe('current\n');
    expect(fs.readdirSync(work)).toEqual(['out.txt']);
    expect(fs.existsSync(blobFile)).toBe(false);
    expect(store.getEntry(published.id)).toBeUndefined();
    expect(problems).toEqual([expect.objectContaining({ code: 'BLOB_CORRUPT', hash, entriesDropped: 1 })]);
    expect(problems[0].message).not.toContain('\n');
    store.close();
  });

  test('a missing blob is a miss and is reported', async () => {
    const problems: StoreProblem[] = [];
    const store = open(problems);
    const { hash } = store.storeBytes(Buffer.from('gone soon\n'));
    store.blobs.remove(hash);
    const dest = path.join(makeTempDir(), 'dest');
    expect(await store.restoreBlob(hash, dest, 0o644)).toBe('missing');
    expect(fs.existsSync(dest)).toBe(false);
    expect(problems.map((p) => p.code)).toEqual(['BLOB_MISSING']);
    store.close();
  });

  test('the whole blob is verified: a large one damaged in its last byte is corrupt, not restored', async () => {
    const store = open();
    const work = makeTempDir();
    const src = path.join(work, 'big');
    const bytes = Buffer.alloc(9 * 1024 * 1024 + 11, 3);
    fs.writeFileSync(src, bytes);
    const { hash } = await store.storeFile(src);
    const blobFile = store.blobs.pathOf(hash);
    fs.chmodSync(blobFile, 0o644);
    const fd = fs.openSync(blobFile, 'r+');
    fs.writeSync(fd, Buffer.from([4]), 0, 1, bytes.length - 1);
    fs.closeSync(fd);
    const dest = path.join(work, 'restored');
    expect(await store.restoreBlob(hash, dest, 0o644)).toBe('corrupt');
    expect(fs.existsSync(dest)).toBe(false);
    expect(fs.readdirSync(work)).toEqual(['big']);
    store.close();
  });

  test('a FIFO in a blob\'s place is a corrupt blob, and restore does not hang on it', async () => {
    const store = open();
    const work = makeTempDir();
    const { hash } = store.storeBytes(Buffer.from('content\n'));
    const blobFile = store.blobs.pathOf(hash);
    fs.rmSync(blobFile);
    execFileSync('mkfifo', [blobFile]);
    const dest = path.join(work, 'restored');
    expect(await store.restoreBlob(hash, dest, 0o644)).toBe('corrupt');
    expect(fs.readdirSync(work)).toEqual([]);
    store.close();
  });

  test('readBlob returns verified bytes, and null for a corrupt blob (after dropping its entries)', async () => {
    const problems: StoreProblem[] = [];
    const store = open(problems);
    const published = await store.publishEntry({
      commandKey: 'beef',
      exitStatus: 3,
      stdout: { bytes: Buffer.from('line 1\nline 2\n') },
      stderr: { bytes: Buffer.from('warning\n') },
      durationMs: 1,
      inputs: [],
      outputs: [],
    });
    expect(store.readBlob(published.stdoutHash!)).toEqual(Buffer.from('line 1\nline 2\n'));
    const file = store.blobs.pathOf(published.stderrHash!);
    fs.chmodSync(file, 0o644);
    fs.appendFileSync(file, 'x');
    expect(store.readBlob(published.stderrHash!)).toBeNull();
    expect(store.getEntry(published.id)).toBeUndefined();
    expect(problems.map((p) => [p.code, p.entriesDropped])).toEqual([['BLOB_CORRUPT', 1]]);
    store.close();
  });

  test('stageRestore is all-or-nothing: one corrupt blob and no destination changes', async () => {
    const problems: StoreProblem[] = [];
    const store = open(problems);
    const work = makeTempDir();
    const dest = (n: string) => path.join(work, n);
    const blobs = ['alpha\n', 'beta\n', 'gamma\n'].map((t) => store.storeBytes(Buffer.from(t)).hash);
    for (const n of ['a', 'b', 'c']) fs.writeFileSync(dest(n), `old ${n}\n`);
    const bad = store.blobs.pathOf(blobs[1]);
    fs.chmodSync(bad, 0o644);
    fs.writeFileSync(bad, 'BETA\n');
    const items = ['a', 'b', 'c'].map((n, i) => ({ hash: blobs[i], destination: dest(n), mode: 0o644 }));

    expect(await store.stageRestore(items)).toBe('corrupt');
    expect(['a', 'b', 'c'].map((n) => fs.readFileSync(dest(n), 'utf8'))).toEqual(['old a\n', 'old b\n', 'old c\n']);
    expect(fs.readdirSync(work).sort()).toEqual(['a', 'b', 'c']);
    expect(problems.map((p) => p.code)).toEqual(['BLOB_CORRUPT']);

    // With a good blob again, staging succeeds and nothing is visible until commit.
    store.storeBytes(Buffer.from('beta\n'));
    fs.writeFileSync(dest('c'), 'gamma\n');
    fs.chmodSync(dest('c'), 0o600);
    const staged = await store.stageRestore(items);
    if (typeof staged === 'string') throw new Error(staged);
    expect(staged.map((s) => s.action)).toEqual(['write', 'write', 'chmod']);
    expect(fs.readFileSync(dest('a'), 'utf8')).toBe('old a\n');
    for (const s of staged) s.commit();
    expect(['a', 'b', 'c'].map((n) => fs.readFileSync(dest(n), 'utf8'))).toEqual(['alpha\n', 'beta\n', 'gamma\n']);
    expect(fs.statSync(dest('c')).mode & 0o7777).toBe(0o644);
    expect(fs.readdirSync(work).sort()).toEqual(['a', 'b', 'c']);
    store.close();
  });

  test('a staged copy shows nowhere until commit (a pcache killed then leaves nothing behind)', async () => {
    const store = open();
    const work = makeTempDir();
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 5, 9);
    const { hash } = store.storeBytes(bytes);
    fs.writeFileSync(path.join(work, 'x'), 'old\n');
    const staged = await store.stageRestore([
      { hash, destination: path.join(work, 'x'), mode: 0o640 },
      { hash, destination: path.join(work, 'y'), mode: 0o600 },
    ]);
    if (typeof staged === 'string') throw new Error(staged);
    // This machine's file systems (ext4, tmpfs) make unnamed files: no temp name appears.
    expect(fs.readdirSync(work)).toEqual(['x']);
    for (const s of staged) s.commit();
    expect(fs.readdirSync(work).sort()).toEqual(['x', 'y']);
    expect(fs.readFileSync(path.join(work, 'x')).equals(bytes)).toBe(true);
    expect(fs.readFileSync(path.join(work, 'y')).equals(bytes)).toBe(true);
    expect([fs.statSync(path.join(work, 'x')).mode & 0o7777, fs.statSync(path.join(work, 'y')).mode & 0o7777]).toEqual([0o640, 0o600]);
    store.close();
  });

  test('abort leaves the destination as it was and no temp file behind', async () => {
    const store = open();
    const work = makeTempDir();
    const { hash } = store.storeBytes(Buffer.from('new\n'));
    fs.writeFileSync(path.join(work, 'x'), 'old\n');
    const staged = await store.stageRestore([{ hash, destination: path.join(work, 'x'), mode: 0o644 }]);
    if (typeof staged === 'string') throw new Error(staged);
    staged[0].abort();
    expect(fs.readFileSync(path.join(work, 'x'), 'utf8')).toBe('old\n');
    expect(fs.readdirSync(work)).toEqual(['x']);
    store.close();
  });
});
