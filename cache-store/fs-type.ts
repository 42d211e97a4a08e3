// Which file system the cache directory is on. SQLite's locking is unreliable on network
// file systems (DESIGN.md: the cache must never need to live on NFS), so those are refused
// at open instead of corrupting the index later.

import * as fs from 'fs';

/** statfs(2) f_type magic numbers of network/cluster file systems (linux/magic.h and vendors). */
const NETWORK_FS: ReadonlyMap<number, string> = new Map([
  [0x6969, 'NFS'],
  [0xff534d42, 'CIFS'],
  [0xfe534d42, 'SMB2'],
  [0x517b, 'SMB'],
  [0x0bd00bd0, 'Lustre'],
  [0x47504653, 'GPFS'],
  [0x19830326, 'BeeGFS'],
  [0x00c36400, 'CephFS'],
  [0x6b414653, 'AFS'],
  [0x5346414f, 'OpenAFS'],
  [0x01161970, 'GFS2'],
  [0x7461636f, 'OCFS2'],
]);

/** Name of the network file system with this statfs type, or undefined for local ones. */
export function networkFsName(type: number): string | undefined {
  return NETWORK_FS.get(type >>> 0);
}

/** Name of the network file system `dir` is on, or undefined (also when it cannot tell). */
export function networkFsOf(dir: string): string | undefined {
  try {
    return networkFsName(fs.statfsSync(dir).type);
  } catch {
    return undefined;
  }
}
