// `pcache show [RUN] [--json] [--all]`: the execution tree of a run (default: the last).

import type { Argv, CommandModule } from 'yargs';
import { resolveRun } from '../../report/runs';
import { formatShow, showJson } from '../../report/show';
import { cacheDirOf, stdoutPrint, withCacheDir, type CacheDirArgs, type Print } from './log';

export interface RunArg extends CacheDirArgs {
  run?: string;
}

export function withRun<T>(y: Argv<T>): Argv<T & RunArg> {
  return withCacheDir(y).positional('run', {
    type: 'string',
    describe: "run id (see pcache log), 'last' (the default) or -N for the Nth before the last",
  }) as Argv<T & RunArg>;
}

interface ShowArgs extends RunArg {
  json?: boolean;
  all?: boolean;
}

export function showCommand(print: Print = stdoutPrint): CommandModule<object, ShowArgs> {
  return {
    command: 'show [run]',
    describe: 'the execution tree of a run with outcomes, durations, inputs and outputs',
    builder: (y) =>
      withRun(y)
        .option('json', { type: 'boolean', describe: 'print as JSON' })
        .option('all', { type: 'boolean', describe: 'also list system files and probes (stat, access, files looked for and absent)' }) as Argv<ShowArgs>,
    handler: (args) => {
      const report = resolveRun(cacheDirOf(args), args.run);
      print(args.json ? JSON.stringify(showJson(report), null, 2) + '\n' : formatShow(report, { all: args.all === true }));
    },
  };
}
