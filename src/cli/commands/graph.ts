// `pcache graph [RUN] [--format dot|json|html] [-o FILE] [--all]`: the provenance graph.

import * as fs from 'fs';
import * as path from 'path';
import type { Argv, CommandModule } from 'yargs';
import { CliError } from '../errors';
import { buildGraph, formatDot, formatGraphJson } from '../../report/graph';
import { formatHtml } from '../../report/graph-html';
import { resolveRun } from '../../report/runs';
import { cacheDirOf, stdoutPrint, type Print } from './log';
import { withRun, type RunArg } from './show';

const FORMATS = ['dot', 'json', 'html'] as const;

interface GraphArgs extends RunArg {
  format?: (typeof FORMATS)[number];
  output?: string;
  all?: boolean;
}

export function graphCommand(print: Print = stdoutPrint): CommandModule<object, GraphArgs> {
  return {
    command: 'graph [run]',
    describe: 'the provenance graph of a run: executions, files, reads and writes',
    builder: (y) =>
      withRun(y)
        .option('format', { type: 'string', choices: FORMATS, default: 'dot', describe: 'output format' })
        .option('output', { alias: 'o', type: 'string', requiresArg: true, describe: 'write to FILE instead of stdout' })
        .option('all', { type: 'boolean', describe: 'keep system files and probes' }) as Argv<GraphArgs>,
    handler: (args) => {
      const graph = buildGraph(resolveRun(cacheDirOf(args), args.run), { all: args.all === true });
      const text = args.format === 'html' ? formatHtml(graph) : args.format === 'json' ? formatGraphJson(graph) : formatDot(graph);
      if (args.output === undefined) {
        print(text);
        return;
      }
      const file = path.resolve(args.output);
      try {
        fs.writeFileSync(file, text);
      } catch (e) {
        throw new CliError(`cannot write ${args.output}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    },
  };
}
