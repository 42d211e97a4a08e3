import * as fs from 'fs';
import * as path from 'path';
import { copyNewFile, writeNewFile } from '../../cache-store/file-copy';
import { cleanupTempDirs, makeTempDir } from './helpers/tmp';

afterAll(cleanupTempDirs);

function pattern(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 131 + (i >> 12)) & 0xff;
  return b;
}

describe('copyNewFile (native copy used by restore)', () => {
  test('copies bytes exactly and gives exactly the mode asked for, whatever the umask', async () => {
    const dir = makeTempDir();
    const src = path.join(dir, 'src');
    const bytes = pattern(3 * 1024 * 1024 + 17);
    fs.writeFileSync(src, bytes);
    const old = process.umask(0o077);
    try {
      await copyNewFile(src, path.join(dir, 'a'), 0o755);
      await copyNewFile(src, path.join(dir, 'b'), 0o4711);
    } finally {
      process.umask(old);
    }
    expect(fs.readFileSync(path.join(dir, 'a')).equals(bytes)).toBe(true);
    expect(fs.statSync(path.join(dir, 'a')).mode & 0o7777).toBe(0o755);
    expect(fs.statSync(path.join(dir, 'b')).mode & 0o7777).toBe(0o4711);
  });

  test('an empty file copies to an empty file', async () => {
    const dir = makeTempDir();
    fs.writeFileSync(path.join(dir, 'empty'), '');
    await copyNewFile(path.join(dir, 'empty'), path.join(dir, 'copy'), 0o644);
    expect(fs.statSync(path.join(dir, 'copy')).size).toBe(0);
  });

  test('never overwrites: an existing destination is an EEXIST error and keeps its content', async () => {
    const dir = makeTempDir();
    fs.writeFileSync(path.join(dir, 'src'), 'new');
    fs.writeFileSync(path.join(dir, 'dst'), 'precious');
    await expect(copyNewFile(path.join(dir, 'src'), path.join(dir, 'dst'), 0o644)).rejects.toMatchObject({
      code: 'EEXIST',
      syscall: 'open',
    });
    expect(fs.readFileSync(path.join(dir, 'dst'), 'utf8')).toBe('precious');
  });

  test('a missing source is ENOENT and creates nothing', async () => {
    const dir = makeTempDir();
    await expect(copyNewFile(path.join(dir, 'nope'), path.join(dir, 'dst'), 0o644)).rejects.toMatchObject({
      code: 'ENOENT',
      path: path.join(dir, 'nope'),
    });
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  test('copies across file system types (ext4/tmpfs: copy_file_range says EXDEV, read/write takes over)', async () => {
    const dir = makeTempDir();
    const shm = fs.mkdtempSync('/dev/shm/pcache-copy-test-');
    try {
      expect(fs.statSync(shm).dev).not.toBe(fs.statSync(dir).dev);
      const src = path.join(dir, 'src');
      const bytes = pattern(2 * 1024 * 1024 + 5);
      fs.writeFileSync(src, bytes);
      await copyNewFile(src, path.join(shm, 'out'), 0o640);
      expect(fs.readFileSync(path.join(shm, 'out')).equals(bytes)).toBe(true);
      expect(fs.statSync(path.join(shm, 'out')).mode & 0o7777).toBe(0o640);
      await copyNewFile(path.join(shm, 'out'), path.join(dir, 'back'), 0o600);
      expect(fs.readFileSync(path.join(dir, 'back')).equals(bytes)).toBe(true);
    } finally {
      fs.rmSync(shm, { recursive: true, force: true });
    }
  });
});

describe('writeNewFile (native write of a blob from memory)', () => {
  test('writes the pieces in order into a new temp file, renames it into place, and makes a missing directory', async () => {
    const dir = makeTempDir();
    const big = pattern(2 * 1024 * 1024 + 5);
    const view = new Uint8Array(big.buffer, big.byteOffset + 7, 100); // a Uint8Array, not a Buffer
    const pieces = [Buffer.from('head\n'), big, Buffer.alloc(0), view];
    const dest = path.join(dir, 'shard', 'blob');
    await writeNewFile(path.join(dir, 'tmp1'), dest, pieces, 0o444, true);
    expect(fs.readFileSync(dest).equals(Buffer.concat([Buffer.from('head\n'), big, Buffer.from(view)]))).toBe(true);
    expect(fs.statSync(dest).mode & 0o222).toBe(0);
    expect(fs.readdirSync(dir).sort()).toEqual(['shard']);
    // Over an existing destination (the same blob stored twice): replaced.
    await writeNewFile(path.join(dir, 'tmp2'), dest, [Buffer.from('again\n')], 0o444, false);
    expect(fs.readFileSync(dest, 'utf8')).toBe('again\n');
  });

  test('a temp name that exists is an EEXIST error from open, and that file is left alone', async () => {
    const dir = makeTempDir();
    fs.writeFileSync(path.join(dir, 'tmp'), 'someone else\n');
    await expect(writeNewFile(path.join(dir, 'tmp'), path.join(dir, 'dest'), [Buffer.from('x')], 0o444, false)).rejects.toMatchObject({
      code: 'EEXIST',
      syscall: 'open',
    });
    expect(fs.readFileSync(path.join(dir, 'tmp'), 'utf8')).toBe('someone else\n');
    expect(fs.existsSync(path.join(dir, 'dest'))).toBe(false);
  });

  test('a destination that cannot be made is an error from rename, and the temp file is removed', async () => {
    const dir = makeTempDir();
    const dest = path.join(dir, 'missing', 'deeper', 'blob'); // only one directory level is made
    await expect(writeNewFile(path.join(dir, 'tmp'), dest, [Buffer.from('x')], 0o444, false)).rejects.toMatchObject({
      code: 'ENOENT',
      syscall: 'rename',
      path: dest,
    });
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
