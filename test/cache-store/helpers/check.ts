// Checks a cache directory written by helpers/writer.js: every visible entry must be
// complete and exactly what syntheticEntry() describes, and every blob it needs present
// and intact.

import { digestBytes } from '../../../cache-store/digest';
import { Store } from '../../../cache-store/store';
import { inputCount, outputBytes, outputCount, parseCommandKey, stdoutBytes, syntheticInputs } from './synthetic';

export function checkSyntheticStore(store: Store, maxSize: number): { entries: number; keys: Set<string> } {
  const db = (store as unknown as { db: import('better-sqlite3').Database }).db;
  const ids = db.prepare(`SELECT id FROM entries ORDER BY id`).pluck().all() as number[];
  const keys = new Set<string>();
  for (const id of ids) {
    const entry = store.getEntry(id);
    if (!entry) throw new Error(`entry ${id} listed but not readable`);
    const { worker, i } = parseCommandKey(entry.commandKey);
    const where = `entry ${id} (worker ${worker}, #${i})`;
    keys.add(entry.commandKey);
    expect({ where, inputs: entry.inputs.length, counted: entry.inputCount }).toEqual({ where, inputs: inputCount(i), counted: inputCount(i) });
    expect({ where, outputs: entry.outputs.length, counted: entry.outputCount }).toEqual({ where, outputs: outputCount(i), counted: outputCount(i) });
    expect({ where, inputs: entry.inputs }).toEqual({ where, inputs: syntheticInputs(worker, i).map(normaliseInput) });
    expect(entry.exitStatus).toBe(i % 3);
    for (let k = 0; k < outputCount(i); k++) {
      const expected = outputBytes(worker, i, k, maxSize);
      const output = entry.outputs[k];
      expect({ where, k, hash: output.hash, mode: output.mode }).toEqual({ where, k, hash: digestBytes(expected), mode: 0o600 + k });
      expect({ where, k, state: store.blobs.checkSync(output.hash!) }).toEqual({ where, k, state: 'ok' });
    }
    expect({ where, stdout: store.readBlob(entry.stdoutHash!)?.toString() }).toEqual({ where, stdout: stdoutBytes(worker, i).toString() });
    if (i % 2 === 0) expect(store.readBlob(entry.stderrHash!)?.toString()).toBe(`err ${i}\n`);
    else expect(entry.stderrHash).toBeNull();
  }
  return { entries: ids.length, keys };
}

/** Inputs come back from SQLite with every optional field present (null when unset). */
function normaliseInput(input: ReturnType<typeof syntheticInputs>[number]) {
  return {
    path: input.path,
    kind: input.kind,
    type: input.type ?? null,
    dev: input.dev ?? null,
    ino: input.ino ?? null,
    size: input.size ?? null,
    mtimeNs: input.mtimeNs ?? null,
    ctimeNs: input.ctimeNs ?? null,
    mode: input.mode ?? null,
    hash: input.hash ?? null,
    verifiedAtNs: input.verifiedAtNs ?? null,
  };
}
