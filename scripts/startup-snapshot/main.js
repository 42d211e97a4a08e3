// The start of pcache from its startup snapshot (dist/snapshot/pcache.blob). build.js puts
// this file after the bundle of dist/ (loadBundle) and the list of the files it was made
// from (BUILD). `node --build-snapshot` runs it once, when the snapshot is built; the heap
// it leaves, with the bytecode of every function that ran, is what each bin/pcache whose
// `node` made the blob starts from: no module to find, read or compile.
'use strict';
/* global BUILD, loadBundle */
const fs = require('fs');
const path = require('path');
const v8 = require('v8');
const Module = require('module');

// Parsed once at build time so that the parser's bytecode is in the snapshot: each fails
// its checks before any command runs (run and trace, the commands that start most often).
const WARM_UP = [
  ['--snapshot-warm-up', '--cache-dir', 'c', '--summary-json', 's', '--quiet', '--', 'true', 'x'],
  ['run', '--snapshot-warm-up', '--', 'true'],
  ['trace', '--snapshot-warm-up', '--json', 'j', '--', 'true', 'x'],
];

// While the snapshot is built, `require` knows only Node's own modules; from the start on,
// what is not in the bundle (native code: pcache's addons, better-sqlite3's, BLAKE3's) is
// required as bin/pcache would, from where it is.
let runtimeRequire;
const bundleRequire = (id) => (runtimeRequire ?? require)(id);
bundleRequire.resolve = (id, options) => runtimeRequire.resolve(id, options);
// yargs looks for package.json from the main module (the root is checked at each start)
bundleRequire.main = { filename: path.join(BUILD.root, 'bin', 'pcache') };
const bundle = loadBundle(bundleRequire);

// Into the snapshot: the top level of every module, then the parser's bytecode.
// test/cli/startup-snapshot.test.ts checks that no top level in dist/ reads the process's
// state (pid, environment, clock, files ...), which would be the build's for every start.
const cli = bundle.cli();
// What yargs takes from the process when it loads is the build's, except for the width of
// the terminal: taken again at each start, below.
const yargsShim = bundle.yargsShim();
if (!('stdColumns' in yargsShim.process)) throw new Error('yargs has no cjsPlatformShim.process.stdColumns');
const warmUp = Promise.all(WARM_UP.map((argv) => cli.run(argv, () => {}))).then((codes) => {
  if (codes.some((code) => code !== 2)) throw new Error(`warm-up command lines ended with ${codes}, not usage errors`);
});

/** Why the snapshot cannot stand for the files it was built from, or null when it can. */
function staleness(root) {
  if (root !== BUILD.root) return `built in ${BUILD.root}`;
  for (const [file, size, mtimeMs] of BUILD.inputs) {
    let st;
    try {
      st = fs.statSync(path.join(root, file));
    } catch (e) {
      return `${file}: ${e.code ?? e.message}`;
    }
    if (st.size !== size || st.mtimeMs !== mtimeMs) return `${file} changed`;
  }
  return null;
}

function start() {
  // bin/pcache's own steps, in its order (see the comments there). The V8 flag is set here,
  // not when the snapshot is built: Node refuses a blob made under other V8 flags.
  v8.setFlagsFromString('--interrupt-budget=1000000');
  // argv[1] is bin/pcache as the sh step was given it; Node makes a script's path absolute.
  const script = path.resolve(process.argv[1]);
  process.argv[1] = script;
  const self = fs.realpathSync(script);
  runtimeRequire = Module.createRequire(self);
  try {
    runtimeRequire('../native/build/Release/pcache_tracer.node');
  } catch {
    // reported with a clear message when a command needs the tracer
  }
  const stale = staleness(path.dirname(path.dirname(self)));
  // Only on request: with PCACHE_DEBUG=1, stderr has nothing but why entries were rejected.
  if (process.env.PCACHE_DEBUG === 'startup') {
    // fd 2 itself: process.stderr on a terminal would reopen it (see commands/run.ts)
    fs.writeSync(2, `pcache: debug: startup snapshot ${stale ? `not used: ${stale}` : 'used'}\n`);
  }
  if (stale) return runtimeRequire('../dist/src/cli/main.js').main(process.argv.slice(2));
  // as loading yargs does, creating process.stdout on the way
  yargsShim.process.stdColumns = process.stdout.columns !== undefined ? process.stdout.columns : null;
  cli.main(process.argv.slice(2));
}

warmUp.then(() => v8.startupSnapshot.setDeserializeMainFunction(start));
