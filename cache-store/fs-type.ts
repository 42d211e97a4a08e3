// Which file system the cache directory is on. SQLite's locking is unreliable on network
// file systems (DESIGN.md: the cache must never need to live on NFS), so those are refused
// at open instead of corrupting the index later.

import * as fs from 'fs';
import * as os from 'os';

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

/** statfs f_type of the file systems that opted into multigrain timestamps (FS_MGTIME). */
const MULTIGRAIN_FS = new Set([0xef53 /* ext4 */, 0x58465342 /* xfs */, 0x9123683e /* btrfs */, 0x01021994 /* tmpfs */]);

/** Linux 6.13 and later hand out multigrain timestamps (on the file systems above). */
export function kernelHasMultigrain(release: string = os.release()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major > 6 || (major === 6 && minor >= 13);
}

/**
 * Whether a change to a file always moves its ctime once someone has stat'ed it: with
 * multigrain timestamps the first change after a stat gets a fine-grained ctime of its
 * own, so a stamp taken by a stat cannot hide a change made in the same clock tick.
 * Answers are remembered per device (st_dev).
 */
export class FineGrainedCtime {
  private readonly byDev = new Map<bigint, boolean>();
  private readonly kernel: boolean;

  /** enabled false: always answer false (the racy guard everywhere, as on pre-6.13 kernels) */
  constructor(options: { enabled?: boolean; kernelRelease?: string } = {}) {
    this.kernel = options.enabled !== false && kernelHasMultigrain(options.kernelRelease);
  }

  has(path: string, dev: bigint): boolean {
    if (!this.kernel) return false;
    let yes = this.byDev.get(dev);
    if (yes === undefined) {
      try {
        yes = MULTIGRAIN_FS.has(fs.statfsSync(path).type >>> 0);
      } catch {
        return false;
      }
      this.byDev.set(dev, yes);
    }
    return yes;
  }
}
