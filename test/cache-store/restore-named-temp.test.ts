// Restore where the file system cannot make unnamed files (O_TMPFILE: NFS, some FUSE file
// systems): the copy waits under a temp name beside the destination, as before unnamed
// files were used. Simulated by making copyAnonymous answer "not here".

import * as fs from 'fs';
import * as path from 'path';
import { Store } from '../../cache-store/store';
import { cleanupTempDirs, makeTempDir } from './helpers/tmp';

jest.mock('../../cache-store/file-copy', () => {
  const actual = jest.requireActual('../../cache-store/file-copy');
  return { ...actual, copyAnonymous: jest.fn(async () => null) };
});

afterAll(cleanupTempDirs);

test('without unnamed files: staged under a temp name, renamed on commit, removed on abort', async () => {
  const store = Store.open(path.join(makeTempDir(), 'cache'));
  const work = makeTempDir();
  const { hash } = store.storeBytes(Buffer.from('new\n'));
  fs.writeFileSync(path.join(work, 'x'), 'old\n');

  const kept = await store.stageRestore([{ hash, destination: path.join(work, 'x'), mode: 0o644 }]);
  if (typeof kept === 'string') throw new Error(kept);
  const names = fs.readdirSync(work).sort();
  expect(names).toHaveLength(2);
  expect(names[0]).toMatch(/^\.pcache-/);
  kept[0].commit();
  expect(fs.readdirSync(work)).toEqual(['x']);
  expect(fs.readFileSync(path.join(work, 'x'), 'utf8')).toBe('new\n');

  fs.writeFileSync(path.join(work, 'x'), 'old\n');
  const dropped = await store.stageRestore([{ hash, destination: path.join(work, 'x'), mode: 0o644 }]);
  if (typeof dropped === 'string') throw new Error(dropped);
  dropped[0].abort();
  expect(fs.readdirSync(work)).toEqual(['x']);
  expect(fs.readFileSync(path.join(work, 'x'), 'utf8')).toBe('old\n');
  store.close();
});
