#!/usr/bin/env node
// Builds pcache's startup snapshot (`make build`): the heap of a Node that has loaded all of
// pcache, for `node --snapshot-blob` to start from (main.js says what runs in it, bin/pcache
// when it is used). Quick and silent when it is up to date. Never fails the build: without
// it pcache starts the usual way, only more slowly, so a problem is a warning.
//
//   dist/snapshot/pcache.blob          the blob; its mtime is that of the node binary that
//                                      made it, which is how bin/pcache tells that it fits
//   dist/snapshot/pcache-snapshot.js   what it was made from: BUILD, the bundle, main.js
//   dist/snapshot/stamp.json           the node, and the files the blob stands for
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const Module = require('module');

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.join(ROOT, 'dist', 'snapshot');
const BLOB = path.join(OUT, 'pcache.blob');
const STAMP = path.join(OUT, 'stamp.json');
const SCRIPT = path.join(OUT, 'pcache-snapshot.js');
const PCACHE = path.join(ROOT, 'bin', 'pcache');
const CLI = 'dist/src/cli/main.js';
const ENTRY = '<snapshot entry>'; // the generated module the bundle starts from
const BLAKE = '@napi-rs/blake-hash';
// What makes BLAKE's own loader look elsewhere than it did at build time.
const BLAKE_ENV = ['NAPI_RS_NATIVE_LIBRARY_PATH', 'NAPI_RS_FORCE_WASI', 'NAPI_RS_ENFORCE_VERSION_CHECK'];

/** [file relative to ROOT, size, mtimeMs]: main.js compares them at each start. */
function fileState(file) {
  const st = fs.statSync(path.join(ROOT, file), { throwIfNoEntry: false });
  return st ? [file, st.size, st.mtimeMs] : [file, -1, -1];
}

function sameMtime(a, b) {
  return fs.statSync(a, { bigint: true }).mtimeNs === fs.statSync(b, { bigint: true }).mtimeNs;
}

function upToDate() {
  try {
    const stamp = JSON.parse(fs.readFileSync(STAMP, 'utf8'));
    return (
      stamp.root === ROOT &&
      stamp.node === process.version &&
      stamp.execPath === process.execPath &&
      sameMtime(BLOB, process.execPath) &&
      stamp.inputs.every((s) => JSON.stringify(fileState(s[0])) === JSON.stringify(s))
    );
  } catch {
    return false;
  }
}

/**
 * The state of each file the blob is made from, taken before it is read: a file changed
 * while the blob is built then no longer matches, and the blob is not used.
 */
const states = new Map();
function noteState(file) {
  const rel = path.relative(ROOT, file);
  if (!states.has(rel)) states.set(rel, fileState(rel));
}

/** Gives each bundled module its own __dirname and __filename: where it lies. */
const ownPaths = {
  name: 'own-paths',
  setup(build) {
    build.onLoad({ filter: /\.c?js$/ }, (args) => {
      noteState(args.path);
      let contents = fs.readFileSync(args.path, 'utf8');
      if (/\b__(dirname|filename)\b/.test(contents)) {
        contents = `var __dirname = ${JSON.stringify(path.dirname(args.path))}, __filename = ${JSON.stringify(args.path)};\n${contents}`;
      }
      return { contents, loader: 'js' };
    });
  },
};

/**
 * better-sqlite3 finds its addon with the `bindings` package, which reads its caller's file
 * from a stack trace and then tries a dozen paths (~5 ms at each start). The file it would
 * find is found here, once; the bundle requires it by that path, and it is one of the
 * files the snapshot stands for (gone or rebuilt: the snapshot is not used).
 */
function sqliteAddon() {
  const pkg = path.dirname(require.resolve('better-sqlite3/package.json', { paths: [ROOT] }));
  const bindings = Module.createRequire(path.join(pkg, 'lib', 'database.js'))('bindings');
  return bindings({ bindings: 'better_sqlite3.node', module_root: pkg, path: true });
}

/**
 * @napi-rs/blake-hash's index.js only chooses which binary to load (platform, libc read
 * from /usr/bin/ldd, a version check) and takes ~2 ms to load and run. The binary it
 * loads, asked here in a Node with nothing of the build's environment, is one of the files
 * the snapshot stands for; at run time the bundle requires it by its path, unless one of
 * the variables that steer that loader is set: then the loader runs, as without the snapshot.
 */
function blakeBinary() {
  const r = node(['-e', `require(${JSON.stringify(BLAKE)}); console.log(Object.keys(require.cache).filter((f) => f.endsWith('.node')).join('\\n'))`], buildEnv());
  const found = r.stdout.split('\n').filter((f) => f !== '');
  if (r.status !== 0 || found.length !== 1) throw new Error(`which binary ${BLAKE} loads: ${found.length} found (${r.stderr.trim()})`);
  return found[0];
}

/** The modules whose JavaScript only finds their native code: the bundle requires the file it finds here. */
function nativeFiles(sqlite, blake) {
  return {
    name: 'native-files',
    setup(build) {
      build.onResolve({ filter: /^bindings$/ }, (args) =>
        args.importer.includes(`${path.sep}better-sqlite3${path.sep}`) ? { path: sqlite, namespace: 'native-file' } : undefined,
      );
      build.onResolve({ filter: /^@napi-rs\/blake-hash$/ }, (args) =>
        args.namespace === 'native-file' ? { path: BLAKE, external: true } : { path: blake, namespace: 'native-file' },
      );
      build.onLoad({ filter: /.*/, namespace: 'native-file' }, (args) => ({
        contents:
          args.path === sqlite
            ? `const file = ${JSON.stringify(sqlite)};\nmodule.exports = () => require(file);\n`
            : `const file = ${JSON.stringify(blake)};\nmodule.exports = ${BLAKE_ENV.map((v) => `process.env.${v}`).join(' || ')} ? require(${JSON.stringify(BLAKE)}) : require(file);\n`,
        loader: 'js',
      }));
    },
  };
}

/** The module main.js's `require('yargs')` loads last: its cjsPlatformShim notes the terminal's width. */
function yargsBuild() {
  const index = require.resolve('yargs', { paths: [path.join(ROOT, path.dirname(CLI))] });
  return path.join(path.dirname(index), 'build', 'index.cjs');
}

async function bundle() {
  const sqlite = sqliteAddon();
  const blake = blakeBinary();
  for (const file of [__filename, path.join(__dirname, 'main.js'), sqlite, blake]) noteState(file);
  const entry = [
    `exports.cli = () => require(${JSON.stringify(`./${CLI}`)});`,
    `exports.yargsShim = () => require(${JSON.stringify(yargsBuild())}).cjsPlatformShim;`,
  ].join('\n');
  const result = await require('esbuild').build({
    stdin: { contents: entry, resolveDir: ROOT, sourcefile: ENTRY, loader: 'js' },
    absWorkingDir: ROOT, // the metafile's paths are relative to it
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    plugins: [ownPaths, nativeFiles(sqlite, blake)],
    metafile: true,
    write: false,
    logLevel: 'silent',
    minifyWhitespace: true,
  });
  for (const file of Object.keys(result.metafile.inputs)) {
    if (file !== ENTRY && !file.startsWith('native-file:')) noteState(path.join(ROOT, file));
  }
  return result.outputFiles[0].text;
}

/**
 * Only PATH: nothing of the build's environment is to go into the blob, and NODE_OPTIONS,
 * which bin/pcache sets aside, could give it V8 flags that Node would then refuse it for.
 */
function buildEnv(extra) {
  return { PATH: process.env.PATH, ...extra };
}

function node(args, env) {
  return spawnSync(process.execPath, args, { cwd: ROOT, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000 });
}

async function build() {
  const text = await bundle();
  const BUILD = { root: ROOT, inputs: [...states.values()] };
  const script = [
    `// Made by scripts/startup-snapshot/build.js: main.js there after the bundle of ${CLI}.`,
    `const BUILD = ${JSON.stringify(BUILD)};`,
    `function loadBundle(require) {`,
    `const module = { exports: {} }, exports = module.exports;`,
    text,
    `return module.exports;`,
    `}`,
    fs.readFileSync(path.join(__dirname, 'main.js'), 'utf8'),
  ].join('\n');

  fs.mkdirSync(OUT, { recursive: true });
  const tmp = (name) => path.join(OUT, `.${name}.${process.pid}`);
  fs.writeFileSync(tmp('script'), script);
  fs.renameSync(tmp('script'), SCRIPT);
  try {
    const made = node(['--snapshot-blob', tmp('blob'), '--build-snapshot', SCRIPT], buildEnv());
    if (made.status !== 0) throw new Error(`node --build-snapshot failed (${made.error ?? `status ${made.status}`}):\n${made.stderr}`);
    // It must start pcache as bin/pcache does, or it is not used.
    const expected = node([PCACHE, '--version'], buildEnv());
    const got = node(['--snapshot-blob', tmp('blob'), PCACHE, '--version'], buildEnv({ PCACHE_DEBUG: 'startup' }));
    if (got.status !== expected.status || got.stdout !== expected.stdout || got.stderr !== `pcache: debug: startup snapshot used\n${expected.stderr}`) {
      throw new Error(`it does not start pcache: status ${got.status}, stdout ${JSON.stringify(got.stdout)}, stderr ${JSON.stringify(got.stderr)}`);
    }
    // bin/pcache compares this mtime with its node's, to the nanosecond: touch -r copies it exactly.
    if (spawnSync('touch', ['-r', process.execPath, tmp('blob')]).status !== 0) throw new Error(`touch -r ${process.execPath} failed`);
    fs.renameSync(tmp('blob'), BLOB);
  } finally {
    fs.rmSync(tmp('blob'), { force: true });
  }
  const stamp = { root: ROOT, node: process.version, execPath: process.execPath, inputs: BUILD.inputs };
  fs.writeFileSync(tmp('stamp'), `${JSON.stringify(stamp, null, 1)}\n`);
  fs.renameSync(tmp('stamp'), STAMP);
}

if (!upToDate()) {
  build().catch((e) => {
    fs.rmSync(BLOB, { force: true });
    process.stderr.write(`warning: no startup snapshot (pcache starts without it, more slowly): ${e.message}\n`);
  });
}
