import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { BlobDir } from '../../cache-store/blobs';
import { digestBytes, digestPieces } from '../../cache-store/digest';
import { cleanupTempDirs, makeTempDir } from './helpers/tmp';

afterAll(cleanupTempDirs);

function newBlobDir(): BlobDir {
  const blobs = new BlobDir(makeTempDir());
  blobs.init();
  return blobs;
}

function bigBuffer(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 2654435761) >>> 24;
  return b;
}

describe('BlobDir', () => {
  test('storeFile streams a multi-chunk file into a blob named by its BLAKE3 digest', async () => {
    const blobs = newBlobDir();
    const src = path.join(makeTempDir(), 'big');
    const bytes = bigBuffer(13 * 1024 * 1024 + 5); // several 4 MiB chunks plus a tail
    fs.writeFileSync(src, bytes);
    const stored = await blobs.storeFile(src);
    expect(stored.hash).toBe(digestBytes(bytes));
    expect(stored.size).toBe(bytes.length);
    expect(stored.stable).toBe(true);
    const file = path.join(blobs.blobsDir, stored.hash.slice(0, 2), stored.hash.slice(2));
    expect(fs.readFileSync(file).equals(bytes)).toBe(true);
    expect(fs.statSync(file).mode & 0o777).toBe(0o444);
    expect(fs.readdirSync(blobs.tmpDir)).toEqual([]);
  });

  test('storing the same content twice keeps one blob file', async () => {
    const blobs = newBlobDir();
    const dir = makeTempDir();
    fs.writeFileSync(path.join(dir, 'a'), 'same bytes\n');
    fs.writeFileSync(path.join(dir, 'b'), 'same bytes\n');
    const a = await blobs.storeFile(path.join(dir, 'a'));
    const b = await blobs.storeFile(path.join(dir, 'b'));
    const c = blobs.storeBytes(Buffer.from('same bytes\n'));
    expect(new Set([a.hash, b.hash, c.hash]).size).toBe(1);
    expect([...blobs.list()].map((f) => f.hash)).toEqual([a.hash]);
    expect(fs.readdirSync(blobs.tmpDir)).toEqual([]);
  });

  test('storeChunks stores pieces as one blob, byte-identical, pieces of every size joined in runs', async () => {
    const blobs = newBlobDir();
    const whole = bigBuffer(3 * 1024 * 1024 + 17);
    // 3,000 pieces of uneven sizes (a captured stdout arrives as one piece per write).
    const pieces: Buffer[] = [];
    for (let at = 0, i = 0; at < whole.length; i++) {
      const n = Math.min(whole.length - at, 1 + ((i * 7919) % 2100));
      pieces.push(whole.subarray(at, at + n));
      at += n;
    }
    expect(pieces.length).toBeGreaterThan(2048);
    const stored = await blobs.storeChunks(pieces);
    expect(stored).toEqual({ hash: digestBytes(whole), size: whole.length });
    expect(fs.readFileSync(blobs.pathOf(stored.hash)).equals(whole)).toBe(true);
    // Again, and as one small piece: one blob file, no temp file left behind.
    expect((await blobs.storeChunks([whole])).hash).toBe(stored.hash);
    // New bytes whose pieces include one larger than a run, between small ones.
    const mixed = [Buffer.from('head\n'), bigBuffer(2 * 1024 * 1024 + 3), Buffer.from('tail\n')];
    const joined = Buffer.concat(mixed);
    const m = await blobs.storeChunks(mixed);
    expect(m).toEqual({ hash: digestBytes(joined), size: joined.length });
    expect(fs.readFileSync(blobs.pathOf(m.hash)).equals(joined)).toBe(true);
    const small = await blobs.storeChunks([Buffer.from('a'), Buffer.from(''), Buffer.from('bc\n')]);
    expect(small.hash).toBe(digestBytes('abc\n'));
    expect(fs.readFileSync(blobs.pathOf(small.hash), 'utf8')).toBe('abc\n');
    expect([...blobs.list()].map((f) => f.hash).sort()).toEqual([stored.hash, m.hash, small.hash].sort());
    expect(fs.readdirSync(blobs.tmpDir)).toEqual([]);
  });

  test('storeChunks with the caller\'s digest stores the same blob under it, and refuses a malformed one', async () => {
    const blobs = newBlobDir();
    const pieces = [Buffer.from('read '), Buffer.from('back\n')];
    const digest = digestPieces(pieces);
    expect(digest).toBe(digestBytes('read back\n'));
    expect(await blobs.storeChunks(pieces, digest)).toEqual({ hash: digest, size: 10 });
    expect(fs.readFileSync(blobs.pathOf(digest), 'utf8')).toBe('read back\n');
    await expect(blobs.storeChunks(pieces, 'not-a-digest')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect([...blobs.list()].map((f) => f.hash)).toEqual([digest]);
    expect(fs.readdirSync(blobs.tmpDir)).toEqual([]);
  });

  test('storeChunks into a blob directory removed meanwhile makes it again', async () => {
    const blobs = newBlobDir();
    fs.rmSync(blobs.blobsDir, { recursive: true });
    const stored = await blobs.storeChunks([Buffer.from('after a clear\n')]);
    expect(fs.readFileSync(blobs.pathOf(stored.hash), 'utf8')).toBe('after a clear\n');
    expect(fs.readdirSync(blobs.tmpDir)).toEqual([]);
  });

  test('empty file and empty bytes are a valid blob', async () => {
    const blobs = newBlobDir();
    const src = path.join(makeTempDir(), 'empty');
    fs.writeFileSync(src, '');
    const stored = await blobs.storeFile(src);
    expect(stored).toMatchObject({ hash: digestBytes(''), size: 0 });
    expect(blobs.readVerified(stored.hash)).toEqual(Buffer.alloc(0));
  });

  test('re-storing content heals a blob whose file was damaged', async () => {
    const blobs = newBlobDir();
    const { hash } = blobs.storeBytes(Buffer.from('precious\n'));
    const file = blobs.pathOf(hash);
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, 'rotten!!!\n');
    expect(blobs.checkSync(hash)).toBe('corrupt');
    const src = path.join(makeTempDir(), 'again');
    fs.writeFileSync(src, 'precious\n');
    await blobs.storeFile(src);
    expect(blobs.checkSync(hash)).toBe('ok');
    expect(fs.readFileSync(file, 'utf8')).toBe('precious\n');
  });

  test('verified reads report corrupt and missing blobs', async () => {
    const blobs = newBlobDir();
    const { hash } = blobs.storeBytes(Buffer.from('hello\n'));
    expect(blobs.readVerified(hash)).toEqual(Buffer.from('hello\n'));
    expect(await blobs.check(hash)).toBe('ok');
    const file = blobs.pathOf(hash);
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, 'hellO\n'); // same size, one byte differs
    expect(blobs.readVerified(hash)).toBe('corrupt');
    expect(await blobs.check(hash)).toBe('corrupt');
    expect(blobs.checkSync(hash)).toBe('corrupt');
    blobs.remove(hash);
    expect(blobs.readVerified(hash)).toBe('missing');
    expect(await blobs.check(hash)).toBe('missing');
  });

  test('storing a directory or a missing file is an error with a code, leaving no temp file', async () => {
    const blobs = newBlobDir();
    await expect(blobs.storeFile(makeTempDir())).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(blobs.storeFile('/nonexistent/pcache-test')).rejects.toMatchObject({ code: 'IO_ERROR' });
    expect(fs.readdirSync(blobs.tmpDir)).toEqual([]);
  });

  test('pathOf refuses names that are not digests (no path tricks)', () => {
    const blobs = newBlobDir();
    expect(() => blobs.pathOf('../../etc/passwd')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  test('sweepTemp removes only old temp files', () => {
    const blobs = newBlobDir();
    const old = path.join(blobs.tmpDir, 'old.tmp');
    const fresh = path.join(blobs.tmpDir, 'fresh.tmp');
    fs.writeFileSync(old, 'x');
    fs.writeFileSync(fresh, 'y');
    const past = new Date(Date.now() - 2 * 3600 * 1000);
    fs.utimesSync(old, past, past);
    expect(blobs.sweepTemp(3600 * 1000)).toBe(1);
    expect(fs.readdirSync(blobs.tmpDir)).toEqual(['fresh.tmp']);
  });

  test('a write failure mid-stream (file size limit) is an IO_ERROR: no crash, no temp file left', () => {
    const cacheDir = makeTempDir();
    const src = path.join(makeTempDir(), 'big');
    fs.writeFileSync(src, bigBuffer(6 * 1024 * 1024));
    const script = `
      const { BlobDir } = require(${JSON.stringify(path.join(__dirname, '../../cache-store/blobs.ts'))});
      const blobs = new BlobDir(${JSON.stringify(cacheDir)});
      blobs.init();
      blobs.storeFile(${JSON.stringify(src)}).then(
        () => console.log('stored'),
        (e) => console.log(JSON.stringify({ code: e.code, message: e.message })));`;
    // Node ignores SIGXFSZ, so writes past RLIMIT_FSIZE fail with EFBIG instead of killing it.
    const r = spawnSync('sh', ['-c', 'ulimit -f 2048 && exec "$0" -r "$1" -e "$2"', process.execPath, path.join(__dirname, 'helpers/ts-register.js'), script], {
      encoding: 'utf8',
    });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    const result = JSON.parse(r.stdout);
    expect(result.code).toBe('IO_ERROR');
    expect(result.message).toMatch(/^cannot store .*big: EFBIG/);
    expect(fs.readdirSync(path.join(cacheDir, 'tmp'))).toEqual([]);
    // no blob file in any shard directory
    expect(fs.readdirSync(path.join(cacheDir, 'blobs')).flatMap((d) => fs.readdirSync(path.join(cacheDir, 'blobs', d)))).toEqual([]);
  });
});
