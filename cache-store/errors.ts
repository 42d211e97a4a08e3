// Errors raised by the store. Every error carries a stable `code` that callers and
// tests match on, and a one-line message fit to print as `pcache: <message>`.

export type StoreErrorCode =
  /** the cache path exists but is not a directory */
  | 'CACHE_DIR_NOT_DIRECTORY'
  /** the cache directory (or something inside it) cannot be created or written */
  | 'CACHE_DIR_UNWRITABLE'
  /** the cache directory is on a network file system (SQLite locking is unreliable there) */
  | 'CACHE_DIR_NETWORK_FS'
  /** index.db is not a readable SQLite database, or is damaged */
  | 'INDEX_CORRUPT'
  /** the cache was initialised but index.db is missing or empty */
  | 'INDEX_MISSING'
  /** index.db was written by a newer pcache (higher schema_version) */
  | 'INDEX_TOO_NEW'
  /** index.db is a SQLite database that pcache did not create */
  | 'INDEX_NOT_PCACHE'
  /** a blob an entry needs is not in the blob directory */
  | 'BLOB_MISSING'
  /** a blob's bytes no longer match its name */
  | 'BLOB_CORRUPT'
  /** a caller passed something the store cannot accept */
  | 'INVALID_ARGUMENT'
  /** the store was used after close() */
  | 'STORE_CLOSED'
  /** an unexpected file system or database failure */
  | 'IO_ERROR';

export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    // One line only: the CLI prints the message as is.
    super(message.replace(/\s*\n\s*/g, ' '), options);
    this.code = code;
  }
}

export function isStoreError(e: unknown, code?: StoreErrorCode): e is StoreError {
  return e instanceof StoreError && (code === undefined || e.code === code);
}

/** The errno-style code of a Node system error, or undefined. */
export function errnoCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const code = (e as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** First line of an unknown error's message, for wrapping. */
export function shortMessage(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split('\n')[0];
}
