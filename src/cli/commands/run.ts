// `pcache [run] [--cache-dir DIR] [--summary-json FILE] [--no-skip] [--quiet] -- CMD ARGS...`:
// run CMD with every unchanged execution skipped and replayed from the cache.

import * as fs from 'fs';
import * as tty from 'tty';
import { loadNative } from '../../trace/native';
import * as path from 'path';
import type { Argv, CommandModule } from 'yargs';
import { resolveCacheDir } from '../../../cache-store/config';
import { Store } from '../../../cache-store/store';
import { CAPTURE_MAX_LIMIT, CachedRun, type CachedRunSummary } from '../../core/cached-run';
import { ProgressLine, wantsProgress, type StatusTerminal } from '../../report/progress';
import { CliError, UsageError } from '../errors';
import { checkOutputFile, writeOutputFile } from '../output-file';
import { commandEnv, resolveCommand, type CommandContext } from './trace';

interface RunArgs {
  cmd?: string[];
  '--'?: string[];
  'cache-dir'?: string;
  'summary-json'?: string;
  'no-skip'?: boolean;
  skip?: boolean;
  quiet?: boolean;
  'assume-idempotent'?: boolean;
}

export interface RunInvocation {
  assumeIdempotent?: boolean;
  cmd: string[];
  cacheDir?: string;
  summaryJson?: string;
  noSkip: boolean;
  quiet: boolean;
  env: NodeJS.ProcessEnv;
  cwd: string;
  stderr: (text: string) => void;
  /** where the live status line goes when it is a terminal (process.stderr) */
  progressTerminal?: StatusTerminal & { isTTY?: boolean };
}

function seconds(s: number): string {
  return s < 10 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`;
}

export function summaryLine(s: CachedRunSummary): string {
  const plural = s.total === 1 ? 'execution' : 'executions';
  return (
    `pcache: ${s.total} ${plural}: ${s.ran} ran, ${s.skipped} skipped, ${s.uncacheable} uncacheable; ` +
    `saved ${seconds(s.savedSeconds)} (wall ${seconds(s.wallSeconds)})\n`
  );
}

export function summaryJson(s: CachedRunSummary, exitCode: number): object {
  return {
    exitCode,
    executions: { total: s.total, ran: s.ran, skipped: s.skipped, uncacheable: s.uncacheable },
    wallSeconds: s.wallSeconds,
    savedSeconds: s.savedSeconds,
  };
}

export async function runCached(inv: RunInvocation): Promise<number> {
  if (inv.cmd.length === 0) throw new UsageError('no command given (usage: pcache [run] [options] -- CMD ARGS...)');
  const summaryPath = inv.summaryJson === undefined ? undefined : checkOutputFile('--summary-json', inv.summaryJson, inv.cwd);
  for (const name of ['PCACHE_CAPTURE_MEMORY', 'PCACHE_CAPTURE_MAX']) {
    const v = inv.env[name];
    if (v !== undefined && !/^[0-9]+$/.test(v)) throw new UsageError(`${name} must be a number of bytes, not '${v}'`);
  }
  const max = inv.env.PCACHE_CAPTURE_MAX;
  if (max !== undefined && Number(max) > CAPTURE_MAX_LIMIT) {
    throw new UsageError(`PCACHE_CAPTURE_MAX can be at most ${CAPTURE_MAX_LIMIT} bytes (one replay reads the stream whole), not ${max}`);
  }
  const file = resolveCommand(inv.cmd[0], inv.env.PATH, inv.cwd);
  // No fsync per blob: publication stays atomic against kills (blobs are renamed into place
  // before their index rows commit), and after a power loss a torn blob fails its
  // verification on read and is a miss, never a wrong output. fsync cost ~0.4 s per
  // 100 executions here, all of it on the path of every held exit.
  const store = Store.open(resolveCacheDir({ flag: inv.cacheDir, env: inv.env }), { durable: false });
  // Live status line (src/report/progress.ts): only on a terminal, never with --quiet.
  const progress = inv.progressTerminal && wantsProgress(inv.progressTerminal, inv.env, inv.quiet) ? new ProgressLine(inv.progressTerminal) : undefined;
  let summary: CachedRunSummary;
  try {
    progress?.start();
    summary = await new CachedRun({
      argv: inv.cmd,
      file,
      env: commandEnv(inv.env, file),
      cwd: inv.cwd,
      store,
      noSkip: inv.noSkip,
      assumeIdempotent: inv.assumeIdempotent,
      onProgress: progress ? (c) => progress.update(c) : undefined,
    }).run();
  } finally {
    progress?.stop();
    store.close();
  }
  const exitCode = summary.exitCode ?? (summary.signal !== null ? 128 + summary.signal : 1);
  if (!inv.quiet) inv.stderr(summaryLine(summary));
  if (summaryPath === undefined) return exitCode;
  return writeOutputFile(summaryPath, JSON.stringify(summaryJson(summary, exitCode)) + '\n', exitCode, inv.stderr);
}

function writeStderr(text: string): void {
  const bytes = Buffer.from(text);
  for (let off = 0; off < bytes.length; ) {
    try {
      off += fs.writeSync(2, bytes, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return;
    }
  }
}

function stderrTerminal(): StatusTerminal & { isTTY: boolean } {
  const size = (): [number, number] => {
    try {
      return loadNative().termSize(2) ?? [0, 0];
    } catch {
      return [0, 0];
    }
  };
  return {
    isTTY: tty.isatty(2),
    get rows() {
      return size()[0];
    },
    get columns() {
      return size()[1];
    },
    write: (text: string) => writeStderr(text),
  };
}

export function runCommand(ctx: CommandContext): CommandModule<object, RunArgs> {
  return {
    command: ['run [cmd..]', '$0 [cmd..]'],
    describe: 'Run CMD, skipping every execution whose inputs did not change',
    builder: (y: Argv<object>) =>
      y
        .usage('$0 [run] [--cache-dir DIR] [--summary-json FILE] [--no-skip] [--quiet] -- CMD ARGS...')
        .positional('cmd', { type: 'string', array: true, describe: 'the command and its arguments (after --)' })
        .option('cache-dir', { type: 'string', requiresArg: true, describe: 'cache directory (default: $PCACHE_DIR, else ${XDG_CACHE_HOME:-~/.cache}/pcache)' })
        .option('summary-json', { type: 'string', requiresArg: true, describe: 'write counts and times as JSON to FILE' })
        .option('skip', { type: 'boolean', default: true, describe: 'skip unchanged executions (--no-skip: trace and record only)' })
        .option('quiet', { type: 'boolean', default: false, describe: 'no summary line' })
        .option('assume-idempotent', {
          type: 'boolean',
          default: false,
          describe: 'an output already in place counts for the absent input it replaced (mkdir -p, cp)',
        }) as Argv<RunArgs>,
    handler: async (args) => {
      ctx.exitCode = await runCached({
        cmd: [...(args.cmd ?? []), ...(args['--'] ?? [])].map(String),
        cacheDir: args['cache-dir'],
        summaryJson: args['summary-json'],
        noSkip: args.skip === false,
        quiet: args.quiet === true,
        assumeIdempotent: args['assume-idempotent'] === true,
        env: process.env,
        cwd: process.cwd(),
        // fd 2 directly: creating process.stderr on a terminal makes libuv reopen the terminal
        // onto fd 2, and the command would inherit that description instead of the caller's.
        stderr: (t) => writeStderr(t),
        progressTerminal: stderrTerminal(),
      });
    },
  };
}
