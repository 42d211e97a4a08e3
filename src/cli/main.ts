// CLI entry (bin/pcache). Parses arguments and calls the commands; the one
// error policy lives here: `pcache: <one-line message>` on stderr, exit 2 for
// usage errors, the error's own status for CliErrors, 1 otherwise. Never a
// stack trace.

import yargs, { type CommandModule } from 'yargs';
import { CliError, UsageError } from './errors';
import { loadNative } from '../trace/native';
import { traceCommand, type CommandContext } from './commands/trace';
import { runCommand } from './commands/run';
import { storeCommands } from './commands/store';
import { logCommand } from './commands/log';
import { showCommand } from './commands/show';
import { explainCommand } from './commands/explain';
import { graphCommand } from './commands/graph';
import { inputsCommand } from './commands/inputs';
import { auditCommand } from './commands/audit';

const VERSION = '0.1.0';

function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim();
}

/** What skipHelpCache reaches of yargs (17.x) that its typings do not show. */
interface YargsUsageInternals {
  getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } };
}

/**
 * Once a named command's handler has started (`pcache run`, `pcache trace` ...), yargs
 * renders that command's whole help and keeps it, in case the handler calls showHelp():
 * ~6 ms of every such start (string widths through a large emoji regex). No handler here
 * shows help, so the rendering is skipped; `--help` and usage errors are not affected.
 */
export function skipHelpCache(parser: unknown): void {
  const usage = (parser as YargsUsageInternals).getInternalMethods?.().getUsageInstance?.();
  if (typeof usage?.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => {};
}

/** Runs the CLI and resolves with the exit status (does not exit; main() does). */
export async function run(argv: string[], stderr: (text: string) => void = (t) => process.stderr.write(t)): Promise<number> {
  const ctx: CommandContext = { exitCode: 0 };
  try {
    const parser = yargs(argv);
    skipHelpCache(parser);
    await parser
      .scriptName('pcache')
      .parserConfiguration({
        // arguments after `--` belong to the traced command and must stay exact strings
        'parse-positional-numbers': false,
        'populate--': true,
      })
      .command(runCommand(ctx))
      .command(traceCommand(ctx))
      .command(storeCommands)
      .command([logCommand(), showCommand(), explainCommand(), graphCommand(), inputsCommand(), auditCommand(ctx)] as unknown as CommandModule[])
      .demandCommand(1, 'no command given (see pcache --help)')
      .strict()
      .help()
      .version(VERSION)
      .exitProcess(false)
      .fail((msg: string | null, err: Error | undefined) => {
        // yargs reports its own validation failures as YError; anything else came from a handler.
        if (err && err.name !== 'YError') throw err;
        throw new UsageError(msg ?? err?.message ?? 'invalid arguments');
      })
      .parseAsync();
    return ctx.exitCode;
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    stderr(`pcache: ${oneLine(err.message)}\n`);
    return err instanceof CliError ? err.exitCode : 1;
  }
}

export function main(argv: string[]): void {
  // Last resort for the error policy: a failure outside any command's promise chain.
  const die = (e: unknown): void => {
    process.stderr.write(`pcache: internal error: ${oneLine(e instanceof Error ? e.message : String(e))}\n`);
    process.exit(1);
  };
  process.on('uncaughtException', die);
  process.on('unhandledRejection', die);
  // Whoever gets fds 0-2 back after pcache (a shell, a terminal) must find them as they were.
  const exit = (code: number): void => {
    try {
      loadNative().restoreStdioFlags();
    } catch {
      // no addon (a build problem already reported): nothing was changed through it
    }
    process.exit(code);
  };
  run(argv).then(exit, () => exit(1));
}
