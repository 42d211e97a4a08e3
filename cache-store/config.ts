// Where the cache lives and how big it may grow. Layered: default <- environment
// (PCACHE_DIR, PCACHE_MAX_SIZE, XDG_CACHE_HOME, HOME) <- explicit flags.

import * as os from 'os';
import * as path from 'path';
import { StoreError } from './errors';

/** Default size limit for `pcache gc` when neither a flag nor PCACHE_MAX_SIZE sets one. */
export const DEFAULT_MAX_SIZE = 10 * 1024 ** 3;

export interface CacheDirSources {
  /** value of --cache-dir, if given */
  flag?: string;
  env?: NodeJS.ProcessEnv;
}

/** `--cache-dir` > `PCACHE_DIR` > `${XDG_CACHE_HOME:-~/.cache}/pcache`. Always absolute. */
export function resolveCacheDir(sources: CacheDirSources = {}): string {
  const env = sources.env ?? process.env;
  // `--cache-dir "$UNSET"` is a mistake to report, not a request for the default cache.
  if (sources.flag === '') throw new StoreError('INVALID_ARGUMENT', '--cache-dir: empty path');
  if (sources.flag !== undefined) return path.resolve(sources.flag);
  if (env.PCACHE_DIR) return path.resolve(env.PCACHE_DIR);
  // The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'pcache');
  const home = env.HOME || os.homedir();
  return path.join(home, '.cache', 'pcache');
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** "500M", "1.5G", "2GiB", "10gb", "4096" -> bytes. Single letters are binary (like du -h). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new StoreError('INVALID_ARGUMENT', `invalid size '${text}' (expected e.g. 500M, 2G, 1.5GiB, 4096)`);
  }
  return Math.floor(Number(m[1]) * unit);
}

/** --max-size > PCACHE_MAX_SIZE > DEFAULT_MAX_SIZE. */
export function resolveMaxSize(flag?: string, env: NodeJS.ProcessEnv = process.env): number {
  if (flag !== undefined && flag !== '') return parseSize(flag);
  if (env.PCACHE_MAX_SIZE) return parseSize(env.PCACHE_MAX_SIZE);
  return DEFAULT_MAX_SIZE;
}

/** 1536 -> "1.5 KiB" */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let i = 0;
  while (Math.abs(value) >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return i === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[i]}`;
}
