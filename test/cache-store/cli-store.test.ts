// `pcache stats | gc | verify | clear` as yargs commands (main.ts wires them in).

import * as fs from 'fs';
import * as path from 'path';
import yargs from 'yargs';
import { makeStoreCommands } from '../../src/cli/commands/store';
import { Store } from '../../cache-store/store';
import { cleanupTempDirs, makeTempDir } from './helpers/tmp';

afterAll(cleanupTempDirs);

async function cli(args: string[]): Promise<string> {
  let out = '';
  await yargs(args)
    .command(makeStoreCommands((t) => (out += t)))
    .strict()
    .exitProcess(false)
    .fail((msg: string | null, err: Error | undefined) => {
      throw err ?? new Error(msg ?? 'usage');
    })
    .parseAsync();
  return out;
}

async function cacheWithEntries(n: number): Promise<string> {
  const dir = path.join(makeTempDir(), 'cache');
  const store = Store.open(dir);
  for (let i = 0; i < n; i++) {
    await store.publishEntry({
      commandKey: `k${i}`,
      exitStatus: 0,
      durationMs: 100,
      stdout: { bytes: Buffer.alloc(1000 + i, i) },
      inputs: [],
      outputs: [],
    });
  }
  const run = store.recordRun({ command: 'pcache -- x', cwd: '/' });
  store.recordRunExecution(run, { outcome: 'hit', savedMs: 1500 });
  store.recordRunExecution(run, { outcome: 'miss' });
  store.finishRun(run, { exitStatus: 0 });
  store.close();
  return dir;
}

describe('store commands', () => {
  test('stats --json', async () => {
    const dir = await cacheWithEntries(3);
    const stats = JSON.parse(await cli(['stats', '--json', '--cache-dir', dir]));
    expect(stats).toMatchObject({ cacheDir: dir, entries: 3, blobs: 3, blobBytes: 3003, runs: 1, hits: 1, misses: 1, hitRate: 0.5, timeSavedMs: 1500 });
  });

  test('stats (human) honours PCACHE_DIR', async () => {
    const dir = await cacheWithEntries(2);
    const saved = process.env.PCACHE_DIR;
    process.env.PCACHE_DIR = dir;
    try {
      const out = await cli(['stats']);
      expect(out).toContain(`cache directory  ${dir}\n`);
      expect(out).toMatch(/^entries +2 \(2 distinct commands\)$/m);
      expect(out).toMatch(/^blobs +2 \(1\.95 KiB\)$/m);
      expect(out).toMatch(/^hit rate +50\.0%$/m);
      expect(out).toMatch(/^time saved +1\.5 s$/m);
    } finally {
      if (saved === undefined) delete process.env.PCACHE_DIR;
      else process.env.PCACHE_DIR = saved;
    }
  });

  test('gc --dry-run then gc --max-size', async () => {
    const dir = await cacheWithEntries(4);
    expect(await cli(['gc', '--max-size', '0', '--dry-run', '--cache-dir', dir])).toMatch(/^would evict 4 entries and 4 blobs \(3\.91 KiB\)/);
    expect(JSON.parse(await cli(['stats', '--json', '--cache-dir', dir])).entries).toBe(4);
    expect(await cli(['gc', '--max-size', '0', '--cache-dir', dir])).toMatch(/^evicted 4 entries and 4 blobs/);
    expect(JSON.parse(await cli(['stats', '--json', '--cache-dir', dir])).entries).toBe(0);
  });

  test('gc with a bad size fails with INVALID_ARGUMENT', async () => {
    const dir = await cacheWithEntries(1);
    await expect(cli(['gc', '--max-size', 'lots', '--cache-dir', dir])).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: "invalid size 'lots' (expected e.g. 500M, 2G, 1.5GiB, 4096)",
    });
  });

  test('verify reports and drops a corrupt blob', async () => {
    const dir = await cacheWithEntries(2);
    expect(await cli(['verify', '--cache-dir', dir])).toBe('checked 2 blobs (1.95 KiB intact)\nall blobs intact\n');
    const store = Store.open(dir);
    const hash = store.candidates('k0')[0].stdoutHash!;
    store.close();
    const file = path.join(dir, 'blobs', hash.slice(0, 2), hash.slice(2));
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, 'tampered');
    expect(await cli(['verify', '--cache-dir', dir])).toBe(
      `checked 2 blobs (1001 B intact)\ncorrupt blob ${hash}: removed\ndropped 1 entries that needed them\n`,
    );
    expect(JSON.parse(await cli(['stats', '--json', '--cache-dir', dir])).entries).toBe(1);
  });

  test('clear empties the cache', async () => {
    const dir = await cacheWithEntries(2);
    expect(await cli(['clear', '--cache-dir', dir])).toBe(`cleared ${dir}: 2 entries, 2 blobs (1.95 KiB)\n`);
    expect(JSON.parse(await cli(['stats', '--json', '--cache-dir', dir]))).toMatchObject({ entries: 0, blobs: 0, runs: 0 });
  });

  test('on a damaged index every command fails with INDEX_CORRUPT except clear, which starts over', async () => {
    const dir = await cacheWithEntries(2);
    fs.writeFileSync(path.join(dir, 'index.db'), Buffer.alloc(8192, 0x5a));
    for (const cmd of ['stats', 'gc', 'verify']) {
      await expect(cli([cmd, '--cache-dir', dir])).rejects.toMatchObject({ code: 'INDEX_CORRUPT' });
    }
    expect(await cli(['clear', '--cache-dir', dir])).toBe(`removed unusable cache at ${dir} (INDEX_CORRUPT)\n`);
    expect(JSON.parse(await cli(['stats', '--json', '--cache-dir', dir]))).toMatchObject({ entries: 0 });
  });

  test('a cache path that is a file fails with CACHE_DIR_NOT_DIRECTORY', async () => {
    const file = path.join(makeTempDir(), 'f');
    fs.writeFileSync(file, '');
    await expect(cli(['stats', '--cache-dir', file])).rejects.toMatchObject({ code: 'CACHE_DIR_NOT_DIRECTORY' });
  });
});
