// `pcache audit [--cache-dir DIR] [--json FILE] -- CMD ARGS...`: run CMD with nothing
// skipped and compare every execution's results with what the cache recorded for the
// same command and inputs. Exit status 1 when an execution is nondeterministic, else the
// command's own.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Argv, CommandModule } from 'yargs';
import { resolveCacheDir } from '../../../cache-store/config';
import { Store } from '../../../cache-store/store';
import { CachedRun } from '../../core/cached-run';
import { readRunReport } from '../../core/run-report';
import { auditRun, formatAudit } from '../../report/audit';
import { listRunIds } from '../../report/runs';
import { CliError, UsageError } from '../errors';
import { checkOutputFile, writeOutputFile } from '../output-file';
import { commandEnv, resolveCommand, type CommandContext } from './trace';

interface AuditArgs {
  cmd?: string[];
  '--'?: string[];
  'cache-dir'?: string;
  json?: string;
}

/** Exit status when the audit found nondeterminism. */
export const NONDETERMINISTIC_STATUS = 1;

export interface AuditInvocation {
  cmd: string[];
  cacheDir?: string;
  json?: string;
  env: NodeJS.ProcessEnv;
  cwd: string;
  stderr: (text: string) => void;
}

export async function runAudit(inv: AuditInvocation): Promise<number> {
  if (inv.cmd.length === 0) throw new UsageError('no command given (usage: pcache audit [options] -- CMD ARGS...)');
  const file = resolveCommand(inv.cmd[0], inv.env.PATH, inv.cwd);
  const jsonPath = inv.json === undefined ? undefined : checkOutputFile('--json', inv.json, inv.cwd);
  const cache = Store.open(resolveCacheDir({ flag: inv.cacheDir, env: inv.env }));
  // The audit run records into a scratch store: publishing into the user's store would
  // replace the entries it is about to be compared with.
  const scratchDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-audit-'));
  try {
    const scratch = Store.open(scratchDir, { durable: false });
    try {
      const summary = await new CachedRun({ argv: inv.cmd, file, env: commandEnv(inv.env, file), cwd: inv.cwd, store: scratch, noSkip: true }).run();
      const ids = listRunIds(scratchDir);
      const report = ids.length > 0 ? readRunReport(scratchDir, ids[ids.length - 1]) : null;
      if (!report) throw new CliError('the audit run left no run report');
      const result = auditRun(report, scratch, cache);
      inv.stderr(formatAudit(report, result));
      const status =
        result.findings.length > 0 ? NONDETERMINISTIC_STATUS : (summary.exitCode ?? (summary.signal !== null ? 128 + summary.signal : 1));
      if (jsonPath === undefined) return status;
      return writeOutputFile(jsonPath, JSON.stringify(result, null, 2) + '\n', status, inv.stderr);
    } finally {
      scratch.close();
    }
  } finally {
    cache.close();
    fs.rmSync(scratchDir, { recursive: true, force: true });
  }
}

export function auditCommand(ctx: CommandContext): CommandModule<object, AuditArgs> {
  return {
    command: 'audit [cmd..]',
    describe: 'run CMD with nothing skipped and report executions whose results differ from the cached ones (nondeterminism)',
    builder: (y: Argv<object>) =>
      y
        .usage('$0 audit [--cache-dir DIR] [--json FILE] -- CMD ARGS...')
        .positional('cmd', { type: 'string', array: true, describe: 'the command and its arguments (after --)' })
        .option('cache-dir', { type: 'string', requiresArg: true, describe: 'cache directory (default: $PCACHE_DIR, else ${XDG_CACHE_HOME:-~/.cache}/pcache)' })
        .option('json', { type: 'string', requiresArg: true, describe: 'also write the findings as JSON to FILE' }) as Argv<AuditArgs>,
    handler: async (args) => {
      ctx.exitCode = await runAudit({
        cmd: [...(args.cmd ?? []), ...(args['--'] ?? [])].map(String),
        cacheDir: args['cache-dir'],
        json: args.json,
        env: process.env,
        cwd: process.cwd(),
        stderr: (t) => process.stderr.write(t),
      });
    },
  };
}
