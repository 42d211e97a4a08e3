// lostPrivilege: a set-user/group-ID program that would change this user's identity runs
// without that under pcache (no_new_privs, ptrace); pcache says so and never stores it.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { lostPrivilege } from '../../src/core/cached-run';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-setuid-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function program(name: string, mode: number, uid: number, gid: number): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, '#!/bin/sh\n');
  fs.chownSync(p, uid, gid);
  fs.chmodSync(p, mode); // after chown, which clears the set-ID bits
  return p;
}

const me = { uid: process.geteuid!(), gid: process.getegid!() };
const other = me.uid === 65534 ? 65533 : 65534;

test('a set-user-ID program owned by someone else, or set-group-ID of another group', () => {
  const su = program('su-other', 0o4755, other, me.gid);
  expect(lostPrivilege(su)).toBe(`${su} is set-user-ID: traced, it runs without that privilege, unlike a plain run`);
  const sg = program('sg-other', 0o2755, me.uid, other);
  expect(lostPrivilege(sg)).toBe(`${sg} is set-group-ID: traced, it runs without that privilege, unlike a plain run`);
});

test('nothing to lose: own set-ID bits, set-group-ID without group execute (locking), plain programs, absent paths', () => {
  expect(lostPrivilege(program('su-mine', 0o4755, me.uid, me.gid))).toBeNull();
  expect(lostPrivilege(program('sg-lock', 0o2745, me.uid, other))).toBeNull();
  expect(lostPrivilege(program('plain', 0o755, other, other))).toBeNull();
  expect(lostPrivilege(path.join(dir, 'absent'))).toBeNull();
});
