// `pcache explain [RUN] [EXECUTION] [--json]`: why each execution of a run ran.

import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors';
import { explainRun, formatExplain } from '../../report/explain';
import { loadRunReports, resolveRun } from '../../report/runs';
import { cacheDirOf, stdoutPrint, type Print } from './log';
import { withRun, type RunArg } from './show';

interface ExplainArgs extends RunArg {
  execution?: string;
  json?: boolean;
}

export function explainCommand(print: Print = stdoutPrint): CommandModule<object, ExplainArgs> {
  return {
    command: 'explain [run] [execution]',
    describe: 'why each execution of a run ran: the first difference from the closest earlier one',
    builder: (y) =>
      withRun(y)
        .positional('execution', { type: 'string', describe: 'only this execution (its #id in pcache show)' })
        .option('json', { type: 'boolean', describe: 'print as JSON' }) as Argv<ExplainArgs>,
    handler: (args) => {
      const dir = cacheDirOf(args);
      const report = resolveRun(dir, args.run);
      let only: number | undefined;
      if (args.execution !== undefined) {
        const text = String(args.execution).replace(/^#/, '');
        if (!/^\d+$/.test(text)) throw new UsageError(`invalid execution '${args.execution}' (expected its #id in pcache show)`);
        only = Number(text);
        const e = report.executions.find((x) => x.id === only);
        if (!e) throw new UsageError(`run ${report.runId} has no execution #${only}`);
        if (e.outcome === 'hit') {
          print(`#${only} was skipped (a cached result matched)\n`);
          return;
        }
      }
      const explanations = explainRun(report, loadRunReports(dir, report.runId), only);
      print(args.json ? JSON.stringify(explanations, null, 2) + '\n' : formatExplain(report, explanations));
    },
  };
}
