// A path that cannot be looked up. The tracer records a failed lstat on the way (a PATH
// directory the user may not search: EACCES) as absent; looking the same path up again when
// checking a candidate's inputs must say the same, not fail the lookup (which, before, made
// every lookup of such a user's commands fail, so nothing was ever skipped).

import * as fs from 'fs';
import { lstatOrUndefined, statOrUndefined } from '../../cache-store/hash-cache';

jest.mock('fs', () => ({ ...jest.requireActual('fs'), lstatSync: jest.fn(), statSync: jest.fn() }));

const failWith = (code: string) => () => {
  throw Object.assign(new Error(`${code}: simulated`), { code });
};

test('EACCES is not there, like ENOENT and ENOTDIR; other errors still throw', () => {
  (fs.lstatSync as jest.Mock).mockImplementation(failWith('EACCES'));
  (fs.statSync as jest.Mock).mockImplementation(failWith('EACCES'));
  expect(lstatOrUndefined('/locked/dir/tool')).toBeUndefined();
  expect(statOrUndefined('/locked/dir/tool')).toBeUndefined();
  (fs.lstatSync as jest.Mock).mockImplementation(failWith('EIO'));
  (fs.statSync as jest.Mock).mockImplementation(failWith('EIO'));
  expect(() => lstatOrUndefined('/broken/disk/file')).toThrow('cannot stat /broken/disk/file');
  expect(() => statOrUndefined('/broken/disk/file')).toThrow('cannot stat /broken/disk/file');
});
