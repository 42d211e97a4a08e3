// Child process for the crash and concurrency tests: publishes synthetic entries into
// one cache directory as fast as it can.
//   node writer.js CACHE_DIR WORKER COUNT MAX_OUTPUT_SIZE SCRATCH_DIR [GC_EVERY GC_MAX_BYTES]
// GC_EVERY 0: no gc of its own, but another writer collects in the same directory, so an
// earlier entry may be gone for a good reason. Without GC_EVERY, nobody collects, and an
// earlier entry that cannot be found is an error.
// Prints "ready" once the store is open and "done" at the end; any error exits 3.
'use strict';
require('./ts-register');
const { Store } = require('../../../cache-store/store.ts');
const { syntheticEntry, commandKeyOf } = require('./synthetic.ts');

const [cacheDir, worker, count, maxSize, scratch, gcEvery, gcMaxBytes] = process.argv.slice(2);

async function main() {
  const store = Store.open(cacheDir);
  process.stdout.write('ready\n');
  const w = Number(worker);
  const collects = Number(gcEvery) > 0;
  const someoneCollects = gcEvery !== undefined;
  const run = store.recordRun({ command: `writer ${w}`, cwd: process.cwd() });
  for (let i = 0; i < Number(count); i++) {
    const entry = syntheticEntry(w, i, Number(maxSize), scratch);
    const published = await store.publishEntry(entry);
    // Readers and writers interleave: read back an earlier entry of this worker.
    const earlier = Math.floor(i / 2);
    if (!someoneCollects && store.candidates(commandKeyOf(w, earlier)).length === 0) {
      throw new Error(`entry ${earlier} of worker ${w} vanished`);
    }
    store.getEntry(published.id);
    store.recordRunExecution(run, { commandKey: entry.commandKey, entryId: published.id, outcome: i % 5 === 0 ? 'hit' : 'miss', durationMs: 1, savedMs: i % 5 === 0 ? 2 : 0 });
    if (collects && i % Number(gcEvery) === Number(gcEvery) - 1) store.gc({ maxBytes: Number(gcMaxBytes) });
  }
  store.finishRun(run, { exitStatus: 0 });
  store.close();
  process.stdout.write('done\n');
}

main().catch((e) => {
  process.stderr.write(`writer ${worker} failed: ${e && e.code} ${e && e.message}\n`);
  process.exit(3);
});
