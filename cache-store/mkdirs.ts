// mkdir -p that always ends. Node 20's fs.mkdirSync(dir, { recursive: true }) loops at
// full CPU, never returning, where mkdir keeps failing with ENOENT below a parent that
// exists (`--cache-dir /proc/x`): it creates the parent (EEXIST), retries, and again.

import * as fs from 'fs';
import * as path from 'path';

function isDirectory(p: string): boolean {
  return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() === true;
}

/** Creates dir and its missing parents; an existing directory is fine. Throws what mkdir(2) says. */
export function mkdirs(dir: string): void {
  try {
    fs.mkdirSync(dir);
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && isDirectory(dir)) return;
    const parent = path.dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw e;
    mkdirs(parent);
  }
  // the parent exists now: one more try, and whatever it says is the answer
  try {
    fs.mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST' && isDirectory(dir)) return;
    throw e;
  }
}
