// Files a command writes once its command has run (`--summary-json`, `--json`). They are
// checked before the command starts, so an hour-long pipeline's report is not lost to a
// typo, and written through a temp file and a rename, so a reader (a workflow runner
// polling for it) never sees half of one.

import * as fs from 'fs';
import * as path from 'path';
import { UsageError } from './errors';

/** The absolute path FLAG GIVEN will be written to; a UsageError if it cannot be. */
export function checkOutputFile(flag: string, given: string, cwd: string): string {
  if (given === '') throw new UsageError(`${flag}: empty file name`);
  let file = path.resolve(cwd, given);
  // Written in place through a symlink, as a shell's `>` would: the rename must not
  // replace the link itself.
  try {
    if (fs.lstatSync(file).isSymbolicLink()) file = linkTarget(file);
  } catch {
    // absent: created at the end
  }
  const dir = path.dirname(file);
  let isDir = false;
  try {
    isDir = fs.statSync(dir).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) throw new UsageError(`${flag} ${given}: no such directory ${dir}`);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    throw new UsageError(`${flag} ${given}: cannot write in ${dir} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let existing: fs.Stats | undefined;
  try {
    existing = fs.statSync(file);
  } catch {
    // absent: created at the end
  }
  if (existing?.isDirectory()) throw new UsageError(`${flag} ${given}: is a directory`);
  return file;
}

/** Where writing through the link at FILE lands: its final target, also when that is absent. */
function linkTarget(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    // dangling: `>` creates the file it names (the directory check then speaks for it)
    let target = file;
    for (let hops = 0; hops < 40; hops++) {
      const st = fs.lstatSync(target, { throwIfNoEntry: false });
      if (!st?.isSymbolicLink()) return target;
      target = path.resolve(path.dirname(target), fs.readlinkSync(target));
    }
    return target;
  }
}

/**
 * Writes TEXT to FILE (a path from checkOutputFile) once the command has run with STATUS.
 * Returns the status pcache exits with: the command's, or 1 if the file could not be
 * written (said on stderr) after a command that succeeded.
 */
export function writeOutputFile(file: string, text: string, status: number, stderr: (text: string) => void): number {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
    return status;
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    stderr(`pcache: cannot write ${file}: ${(e as Error).message.split('\n')[0]}\n`);
    return status !== 0 ? status : 1;
  }
}
