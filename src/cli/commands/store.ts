// `pcache stats | gc | verify | clear`: maintenance of the cache store. Parses
// arguments, calls cache-store, prints. Errors are StoreErrors (stable `code`,
// one-line message) and are printed by main.ts.

import type { Argv, CommandModule } from 'yargs';
import { formatSize, resolveCacheDir, resolveMaxSize } from '../../../cache-store/config';
import { StoreError, isStoreError } from '../../../cache-store/errors';
import { Store, destroyCacheDir } from '../../../cache-store/store';

interface CacheDirArgs {
  'cache-dir'?: string;
}

interface StatsArgs extends CacheDirArgs {
  json?: boolean;
}

interface GcArgs extends CacheDirArgs {
  'max-size'?: string;
  'dry-run'?: boolean;
}

type Print = (text: string) => void;

function withCacheDir<T>(y: Argv<T>): Argv<T & CacheDirArgs> {
  return y.option('cache-dir', {
    type: 'string',
    describe: 'cache directory (default: $PCACHE_DIR, else ${XDG_CACHE_HOME:-~/.cache}/pcache)',
  }) as Argv<T & CacheDirArgs>;
}

function openStore(args: CacheDirArgs): Store {
  return Store.open(resolveCacheDir({ flag: args['cache-dir'] }));
}

function withStore<R>(args: CacheDirArgs, fn: (store: Store) => R): R {
  const store = openStore(args);
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

function percent(ratio: number | null): string {
  return ratio === null ? 'n/a' : `${(ratio * 100).toFixed(1)}%`;
}

function table(rows: Array<[string, string]>): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join('');
}

/** The commands, printing through `print` (tests capture it). */
export function makeStoreCommands(print: Print = (t) => process.stdout.write(t)): CommandModule[] {
  const stats: CommandModule<object, StatsArgs> = {
    command: 'stats',
    describe: 'show cache size, entries, runs and hit rate',
    builder: (y) => withCacheDir(y).option('json', { type: 'boolean', describe: 'print as JSON' }) as Argv<StatsArgs>,
    handler: (args) => {
      const s = withStore(args, (store) => store.stats());
      if (args.json) {
        print(JSON.stringify(s, null, 2) + '\n');
        return;
      }
      print(
        table([
          ['cache directory', s.cacheDir],
          ['entries', `${s.entries} (${s.commandKeys} distinct commands)`],
          ['blobs', `${s.blobs} (${formatSize(s.blobBytes)})`],
          ['index', formatSize(s.indexBytes)],
          ['total size', formatSize(s.totalBytes)],
          ['runs', String(s.runs)],
          ['executions', `${s.hits} hits, ${s.misses} misses, ${s.uncacheable} uncacheable`],
          ['hit rate', percent(s.hitRate)],
          ['time saved', `${(s.timeSavedMs / 1000).toFixed(1)} s`],
        ]),
      );
    },
  };

  const gc: CommandModule<object, GcArgs> = {
    command: 'gc',
    describe: 'evict least recently used entries until the cache fits in --max-size',
    builder: (y) =>
      withCacheDir(y)
        .option('max-size', { type: 'string', describe: 'size limit, e.g. 500M, 10G (default: $PCACHE_MAX_SIZE, else 10G)' })
        .option('dry-run', { type: 'boolean', describe: 'only report what would be removed' }) as Argv<GcArgs>,
    handler: (args) => {
      const maxBytes = resolveMaxSize(args['max-size']);
      const r = withStore(args, (store) => store.gc({ maxBytes, dryRun: args['dry-run'] ?? false }));
      const verb = r.dryRun ? 'would evict' : 'evicted';
      print(
        `${verb} ${r.entriesEvicted} entries and ${r.blobsRemoved} blobs (${formatSize(r.blobBytesFreed)}), ` +
          `${r.orphanFilesRemoved} orphaned files; size ${formatSize(r.bytesBefore)} -> ${formatSize(r.bytesAfter)} ` +
          `(limit ${formatSize(r.maxBytes)})\n`,
      );
    },
  };

  const verify: CommandModule<object, CacheDirArgs> = {
    command: 'verify',
    describe: 're-hash every blob; drop corrupt ones and the entries that need them',
    builder: (y) => withCacheDir(y),
    handler: async (args) => {
      const store = openStore(args);
      try {
        const r = await store.verify();
        print(`checked ${r.blobsChecked} blobs (${formatSize(r.bytesChecked)} intact)\n`);
        for (const hash of r.corrupt) print(`corrupt blob ${hash}: removed\n`);
        for (const hash of r.missing) print(`missing blob ${hash}\n`);
        if (r.corrupt.length + r.missing.length > 0) print(`dropped ${r.entriesDropped} entries that needed them\n`);
        else print('all blobs intact\n');
        if (r.orphanFiles > 0) print(`${r.orphanFiles} unreferenced blob files (removed by 'pcache gc')\n`);
        if (r.indexProblems.length > 0) {
          throw new StoreError('INDEX_CORRUPT', `${store.indexPath} is damaged (${r.indexProblems[0]}); run 'pcache clear' to start over`);
        }
      } finally {
        store.close();
      }
    },
  };

  const clear: CommandModule<object, CacheDirArgs> = {
    command: 'clear',
    describe: 'remove every entry, blob and run record',
    builder: (y) => withCacheDir(y),
    handler: (args) => {
      const dir = resolveCacheDir({ flag: args['cache-dir'] });
      let store: Store;
      try {
        store = Store.open(dir);
      } catch (e) {
        // The way out of a damaged or too-new index is to start over; `clear` is that.
        if (isStoreError(e) && ['INDEX_CORRUPT', 'INDEX_MISSING', 'INDEX_TOO_NEW'].includes(e.code)) {
          destroyCacheDir(dir);
          print(`removed unusable cache at ${dir} (${e.code})\n`);
          return;
        }
        throw e;
      }
      try {
        const r = store.clear();
        print(`cleared ${dir}: ${r.entriesRemoved} entries, ${r.blobsRemoved} blobs (${formatSize(r.bytesRemoved)})\n`);
      } finally {
        store.close();
      }
    },
  };

  return [stats, gc, verify, clear] as unknown as CommandModule[];
}

export const storeCommands: CommandModule[] = makeStoreCommands();
