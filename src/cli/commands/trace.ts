// `pcache trace [--json FILE] -- CMD ARGS...`: run CMD traced, print the
// execution tree on stderr, write the full record as JSON.

import * as fs from 'fs';
import * as path from 'path';
import type { Argv, CommandModule } from 'yargs';
import { CliError, UsageError } from '../errors';
import { checkOutputFile, writeOutputFile } from '../output-file';
import { runTraced, type SessionResult } from '../../trace/session';
import { resolveCacheDir } from '../../../cache-store/config';
import { formatTree } from '../../trace/tree';
import { TRACE_CAPTURE_LIMIT, type CapturedBytes, type TraceRecord } from '../../trace/record';

/** Where the exit status of a command handler goes (main.ts owns the process). */
export interface CommandContext {
  exitCode: number;
}

interface TraceArgs {
  json?: string;
  cmd?: string[];
  '--'?: string[];
}

/**
 * Finds CMD the way a shell would before running it: a name with a slash is a
 * path (relative to cwd), anything else is searched along PATH (an empty entry
 * means the current directory). Returns the file name exactly as a shell would
 * pass it to execve (a script's interpreter sees it as its argument, so
 * `./script.py` must stay `./script.py`), or null when there is no executable
 * regular file.
 */
export function findCommand(cmd: string, pathEnv: string | undefined, cwd: string): string | null {
  const executable = (p: string): boolean => {
    try {
      if (!fs.statSync(p).isFile()) return false;
      fs.accessSync(p, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (cmd.includes('/')) return executable(path.resolve(cwd, cmd)) ? cmd : null;
  for (const file of pathCandidates(cmd, pathEnv)) if (executable(path.resolve(cwd, file))) return file;
  return null;
}

/** The names a search along PATH tries for cmd, in order (none for an empty name). */
function pathCandidates(cmd: string, pathEnv: string | undefined): string[] {
  if (cmd === '') return [];
  // glibc's execvp default when PATH is unset
  return (pathEnv ?? '/bin:/usr/bin').split(':').map((dir) => (dir === '' ? cmd : `${dir.replace(/\/+$/, '')}/${cmd}`));
}

/**
 * findCommand, or the error a shell gives when there is nothing to run: 127 and "No such
 * file or directory" / "command not found" when there is no such file, 126 and "Permission
 * denied" / "Is a directory" when there is one that cannot be executed.
 */
export function resolveCommand(cmd: string, pathEnv: string | undefined, cwd: string): string {
  const file = findCommand(cmd, pathEnv, cwd);
  if (file !== null) return file;
  // Why execve would refuse what is at p, or null when nothing is there.
  const refusal = (p: string): string | null => {
    try {
      return fs.statSync(path.resolve(cwd, p)).isDirectory() ? 'Is a directory' : 'Permission denied';
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'ENOENT' ? null : code === 'ENOTDIR' ? 'Not a directory' : 'Permission denied';
    }
  };
  if (cmd.includes('/')) {
    const why = refusal(cmd);
    throw why === null ? new CliError(`${cmd}: No such file or directory`, 127) : new CliError(`${cmd}: ${why}`, 126);
  }
  // bash skips what it cannot run along PATH, but names a file it found there
  const isFile = (p: string): boolean => {
    try {
      return fs.statSync(path.resolve(cwd, p)).isFile();
    } catch {
      return false;
    }
  };
  if (pathCandidates(cmd, pathEnv).some(isFile)) throw new CliError(`${cmd}: Permission denied`, 126);
  throw new CliError(`${cmd}: command not found`, 127);
}

/**
 * The environment the command is given. bash sets `_` to the path of each program it runs,
 * as it ran it (`./bin/pcache`, `/usr/local/bin/pcache`): for `pcache -- cmd` that is pcache's
 * own path (process.argv[1], made absolute by Node), where a plain run would have cmd's, as
 * found along PATH (`file`). Anything else passes as it is.
 */
export function commandEnv(env: NodeJS.ProcessEnv, file: string, self: string | undefined = process.argv[1]): NodeJS.ProcessEnv {
  if (self === undefined || env._ === undefined || path.resolve(env._) !== path.resolve(self)) return env;
  return { ...env, _: file };
}

function captured(bytes: Buffer, truncated: boolean): CapturedBytes {
  const text = bytes.toString('utf8');
  // Round-trip check: invalid UTF-8 would be silently replaced by U+FFFD (a multi-byte
  // character cut at the limit too: that one is base64).
  const value: CapturedBytes = Buffer.from(text, 'utf8').equals(bytes) ? { text } : { base64: bytes.toString('base64') };
  return truncated ? { ...value, truncated: true } : value;
}

/** The record as written by --json: each execution with what it wrote to stdout/stderr. */
export function jsonRecord(result: SessionResult): TraceRecord {
  const { record, folder } = result;
  return {
    ...record,
    executions: record.executions.map((e) => ({
      ...e,
      // `before` serves the cache; the trace record keeps the documented {path, kind}.
      inputs: e.inputs.map((i) => (i.size !== undefined ? { path: i.path, kind: i.kind, size: i.size } : { path: i.path, kind: i.kind })),
      captured: {
        stdout: captured(folder.captured(e.id, 'stdout'), folder.capturedTruncated(e.id, 'stdout')),
        stderr: captured(folder.captured(e.id, 'stderr'), folder.capturedTruncated(e.id, 'stderr')),
      },
    })),
  };
}

export interface TraceRun {
  cmd: string[];
  json?: string;
  env: NodeJS.ProcessEnv;
  cwd: string;
  stderr: (text: string) => void;
}

/** Runs the command; resolves with pcache's exit status (the command's, 128+N for signal N). */
export async function trace(run: TraceRun): Promise<number> {
  if (run.cmd.length === 0) throw new UsageError('trace: no command given (usage: pcache trace [--json FILE] -- CMD ARGS...)');
  const file = resolveCommand(run.cmd[0], run.env.PATH, run.cwd);
  const jsonPath = run.json === undefined ? undefined : checkOutputFile('--json', run.json, run.cwd);
  const env = Object.entries(commandEnv(run.env, file))
    .filter((kv): kv is [string, string] => kv[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  const result = await runTraced({
    argv: run.cmd,
    file,
    env,
    cwd: run.cwd,
    ignoreDirs: [resolveCacheDir({ env: run.env })],
    // Nothing to decide when only tracing: execs need not wait for JS.
    askExec: false,
    // Bytes are kept only for the record, and only its share of them: a trace of
    // `bwa mem | samtools sort` must not hold the SAM.
    captureLimit: jsonPath === undefined ? 0 : TRACE_CAPTURE_LIMIT,
  });
  run.stderr(formatTree(result.record));
  const status = result.exitCode ?? (result.signal !== null ? 128 + result.signal : 1);
  if (jsonPath === undefined) return status;
  return writeOutputFile(jsonPath, JSON.stringify(jsonRecord(result), null, 2) + '\n', status, run.stderr);
}

export function traceCommand(ctx: CommandContext): CommandModule<object, TraceArgs> {
  return {
    command: 'trace [cmd..]',
    describe: 'Run CMD traced: print the execution tree on stderr, optionally write the record as JSON',
    builder: (y: Argv<object>) =>
      y
        .usage('$0 trace [--json FILE] -- CMD ARGS...')
        .positional('cmd', { type: 'string', array: true, describe: 'the command and its arguments (after --)' })
        .option('json', { type: 'string', requiresArg: true, describe: 'write the trace record to FILE' }) as Argv<TraceArgs>,
    handler: async (args) => {
      ctx.exitCode = await trace({
        cmd: [...(args.cmd ?? []), ...(args['--'] ?? [])].map(String),
        json: args.json,
        env: process.env,
        cwd: process.cwd(),
        stderr: (t) => process.stderr.write(t),
      });
    },
  };
}
