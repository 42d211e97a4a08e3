// `pcache log [-n N] [--json]`: past runs, oldest first. Also the options the other report
// commands share (--cache-dir, the printer).

import type { Argv, CommandModule } from 'yargs';
import { resolveCacheDir } from '../../../cache-store/config';
import { formatLog, logEntry } from '../../report/log';
import { readRunReport } from '../../core/run-report';
import { listRunIds } from '../../report/runs';
import { UsageError } from '../errors';

export type Print = (text: string) => void;

export const stdoutPrint: Print = (t) => process.stdout.write(t);

export interface CacheDirArgs {
  'cache-dir'?: string;
}

export function withCacheDir<T>(y: Argv<T>): Argv<T & CacheDirArgs> {
  return y.option('cache-dir', {
    type: 'string',
    requiresArg: true,
    describe: 'cache directory (default: $PCACHE_DIR, else ${XDG_CACHE_HOME:-~/.cache}/pcache)',
  }) as Argv<T & CacheDirArgs>;
}

/** Run reports are plain files: reading them needs no store (and creates no cache directory). */
export function cacheDirOf(args: CacheDirArgs): string {
  return resolveCacheDir({ flag: args['cache-dir'] });
}

interface LogArgs extends CacheDirArgs {
  json?: boolean;
  n?: number;
}

export function logCommand(print: Print = stdoutPrint): CommandModule<object, LogArgs> {
  return {
    command: 'log',
    describe: 'list past runs: when, command, exit, executions run/skipped/uncacheable, wall time, time saved',
    builder: (y) =>
      withCacheDir(y)
        .option('json', { type: 'boolean', describe: 'print as JSON' })
        .option('n', { type: 'number', requiresArg: true, describe: 'only the last N runs' }) as Argv<LogArgs>,
    handler: (args) => {
      if (args.n !== undefined && !(Number.isInteger(args.n) && args.n >= 0)) throw new UsageError(`-n ${args.n}: expected a number of runs`);
      const dir = cacheDirOf(args);
      // Only the reports shown are read: each holds every execution of its run.
      const ids = listRunIds(dir);
      const entries = ids
        .slice(args.n === undefined ? 0 : Math.max(0, ids.length - args.n))
        .map((id) => readRunReport(dir, id))
        .filter((r) => r !== null)
        .map(logEntry);
      print(args.json ? JSON.stringify(entries, null, 2) + '\n' : formatLog(entries));
    },
  };
}
