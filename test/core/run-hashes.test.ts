// RunHashes: a digest learnt in a run stands for a file only while its stamp and the
// fold's change mark are unchanged, and only where a later change must move the stamp.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { stampOf } from '../../cache-store/hash-cache';
import { kernelHasMultigrain } from '../../cache-store/fs-type';
import { RunHashes } from '../../src/core/run-hashes';

const H = 'a'.repeat(64);
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function fresh(content: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-runhashes-'));
  dirs.push(dir);
  const f = path.join(dir, 'f');
  fs.writeFileSync(f, content);
  return f;
}

const lstat = (f: string): fs.BigIntStats => fs.lstatSync(f, { bigint: true });
const now = (): bigint => BigInt(Date.now()) * 1_000_000n;

describe('RunHashes', () => {
  test('kernel releases with multigrain timestamps: 6.13 and later', () => {
    expect(['6.1.0-27-amd64', '6.12.9', '6.13.0', '6.18.44-fc', '7.0.1', 'weird'].map((r) => kernelHasMultigrain(r))).toEqual([
      false,
      false,
      true,
      true,
      true,
      false,
    ]);
  });

  test('a file written a moment ago is not remembered where timestamps are coarse', () => {
    const marks = new Map<string, number>();
    const h = new RunHashes((p) => marks.get(p) ?? 0, '6.1.0');
    const f = fresh('x');
    h.remember(f, stampOf(lstat(f)), H, now(), 0);
    expect(h.lookup(f, lstat(f))).toBeUndefined();
  });

  test('a settled file is remembered until the fold marks a change, or its stamp moves', () => {
    const marks = new Map<string, number>();
    const h = new RunHashes((p) => marks.get(p) ?? 0, '6.1.0');
    const f = fresh('x');
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(f, old, old); // mtime settled; ctime is now, so hash "later"
    const st = lstat(f);
    const later = st.ctimeNs + 10_000_000_000n;
    h.remember(f, stampOf(st), H, later, 0);
    expect(h.lookup(f, lstat(f))).toEqual({ hash: H, hashedAtNs: later });
    marks.set(f, 1); // a traced process changed the path
    expect(h.lookup(f, lstat(f))).toBeUndefined();

    h.remember(f, stampOf(lstat(f)), H, later, 1);
    expect(h.lookup(f, lstat(f))?.hash).toBe(H);
    fs.appendFileSync(f, 'y'); // changed behind the fold's back: the stamp moved
    expect(h.lookup(f, lstat(f))).toBeUndefined();
  });

  test('on a multigrain file system a fresh file is remembered, and any change after the stat is seen', () => {
    const f = fresh('x');
    // This kernel and file system: the property is checked where it holds, and where it does
    // not, the fresh file must not be remembered.
    const h = new RunHashes(() => 0);
    const type = fs.statfsSync(f).type >>> 0;
    const multigrain = kernelHasMultigrain(os.release()) && [0xef53, 0x58465342, 0x9123683e, 0x01021994].includes(type);
    h.remember(f, stampOf(lstat(f)), H, now(), 0);
    expect(h.lookup(f, lstat(f))?.hash).toBe(multigrain ? H : undefined);
    // same size, same second: only the ctime's fine grain tells
    fs.writeFileSync(f, 'z');
    expect(h.lookup(f, lstat(f))).toBeUndefined();
  });
});
