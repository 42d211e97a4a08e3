// `pcache inputs [RUN] [--json] [--all]`: what a run read from outside itself, with digests.

import type { Argv, CommandModule } from 'yargs';
import { externalInputs, formatInputs } from '../../report/inputs';
import { resolveRun } from '../../report/runs';
import { cacheDirOf, stdoutPrint, type Print } from './log';
import { withRun, type RunArg } from './show';

interface InputsArgs extends RunArg {
  json?: boolean;
  all?: boolean;
}

export function inputsCommand(print: Print = stdoutPrint): CommandModule<object, InputsArgs> {
  return {
    command: 'inputs [run]',
    describe: 'the external inputs of a run (files read that no execution in it wrote), with hashes',
    builder: (y) =>
      withRun(y)
        .option('json', { type: 'boolean', describe: 'print as JSON' })
        .option('all', { type: 'boolean', describe: 'also list probes (stat, access, files looked for and absent)' }) as Argv<InputsArgs>,
    handler: (args) => {
      const report = resolveRun(cacheDirOf(args), args.run);
      const inputs = externalInputs(report, { all: args.all === true });
      print(args.json ? JSON.stringify(inputs, null, 2) + '\n' : formatInputs(report, inputs));
    },
  };
}
