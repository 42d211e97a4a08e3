// pcache's startup snapshot (scripts/startup-snapshot/): `make build` makes one, bin/pcache
// starts from it, to the same effect as `node bin/pcache`, and starts the usual way when it
// does not fit (another node, a blob written since, a file of dist/ changed or gone, the
// tree moved). Which start ran shows with PCACHE_DEBUG=startup: `pcache: debug: startup
// snapshot used` (or `not used: <why>`) comes only from a start from the snapshot.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const REPO = path.resolve(__dirname, '..', '..');
const USED = 'pcache: debug: startup snapshot used\n';

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** This environment in the C locale, without NODE_* (NODE_OPTIONS would reach `node bin/pcache`) and PCACHE_*. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C' };
  for (const name of Object.keys(env)) if (name.startsWith('NODE_') || name.startsWith('PCACHE_')) delete env[name];
  return { ...env, ...extra };
}

function spawn(file: string, args: string[], env: NodeJS.ProcessEnv, cwd = REPO): Result {
  const r = spawnSync(file, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** bin/pcache run as a program (its sh step), and with `node bin/pcache` (never the snapshot). */
const viaSh = (root: string, args: string[], env: NodeJS.ProcessEnv = cleanEnv()) => spawn(path.join(root, 'bin', 'pcache'), args, env);
const viaNode = (root: string, args: string[], env: NodeJS.ProcessEnv = cleanEnv()) => spawn(process.execPath, [path.join(root, 'bin', 'pcache'), ...args], env);

/** Times differ from run to run: `4ms` in the execution tree, `0.01 s` in the summary line. */
const untimed = (r: Result): Result => ({ ...r, stderr: r.stderr.replace(/\d+(\.\d+)?( ?m?s)\b/g, 'T$2') });

let tmp: string;
beforeAll(() => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-snapshot-')));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('the snapshot `make build` made', () => {
  test('bin/pcache starts from it', () => {
    const r = viaSh(REPO, ['--version'], cleanEnv({ PCACHE_DEBUG: 'startup' }));
    expect(r).toEqual({ status: 0, stdout: '0.1.0\n', stderr: USED });
    expect(viaNode(REPO, ['--version'], cleanEnv({ PCACHE_DEBUG: 'startup' }))).toEqual({ status: 0, stdout: '0.1.0\n', stderr: '' });
    // PCACHE_DEBUG=1 is for rejected cache entries only (it must not change a clean run's stderr)
    expect(viaSh(REPO, ['--version'], cleanEnv({ PCACHE_DEBUG: '1' }))).toEqual({ status: 0, stdout: '0.1.0\n', stderr: '' });
  });

  test('also when run through a symlink (a bin/ directory on PATH)', () => {
    const link = path.join(tmp, 'bin', 'pcache');
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(path.relative(path.dirname(link), path.join(REPO, 'bin', 'pcache')), link);
    const env = cleanEnv({ PCACHE_DEBUG: 'startup', PATH: `${path.dirname(link)}:${process.env.PATH}` });
    expect(spawn('pcache', ['--version'], env, tmp)).toEqual({ status: 0, stdout: '0.1.0\n', stderr: USED });
  });

  test.each([
    [['--version']],
    [['--help']],
    [['trace', '--help']],
    [['--bogus', '--', 'true']],
    [['trace']],
    [['trace', '--json']],
    [['graph', '--format', 'nope']],
    [['no-such-command']],
    [['trace', '--', '/bin/sh', '-c', 'echo out; echo err >&2; exit 3']],
    [['trace', '--', '/nonexistent/program']],
    [['--cache-dir', '<cache>', '--', '/bin/sh', '-c', 'echo out; echo err >&2; exit 5']],
    [['--cache-dir', '<cache>', '--', '/bin/sh', '-c', 'echo out; echo err >&2; exit 5']],
    [['stats', '--cache-dir', '<cache>']],
  ])('pcache %j: the same status, stdout and stderr as without it', (args) => {
    // one cache each: the second run of a command is a hit on both sides
    const start = (via: typeof viaSh, cache: string): Result => {
      const r = untimed(via(REPO, args.map((a) => (a === '<cache>' ? cache : a))));
      return { ...r, stdout: r.stdout.replaceAll(cache, '<cache>') };
    };
    expect(start(viaSh, path.join(tmp, 'cache-sh'))).toEqual(start(viaNode, path.join(tmp, 'cache-node')));
  });

  test("@napi-rs/blake-hash's own loader when one of its variables is set", () => {
    const args = ['--cache-dir', path.join(tmp, 'blake-cache'), '--', '/bin/true'];
    const env = cleanEnv({ NAPI_RS_NATIVE_LIBRARY_PATH: path.join(tmp, 'no-such-binary.node') });
    // no BLAKE3 then: the execution cannot be keyed, so it runs uncached
    const r = untimed(viaSh(REPO, args, env));
    expect(r).toEqual({ status: 0, stdout: '', stderr: 'pcache: 0 executions: 0 ran, 0 skipped, 1 uncacheable; saved T s (wall T s)\n' });
    expect(r).toEqual(untimed(viaNode(REPO, args, env)));
  });

  test('messages in the language of the locale, as yargs has them', () => {
    const env = cleanEnv({ LC_ALL: 'de_DE.UTF-8' });
    const r = viaSh(REPO, ['trace', '--json'], env);
    expect(r).toEqual({ status: 2, stdout: '', stderr: 'pcache: Nicht genügend Argumente nach: json\n' });
    expect(r).toEqual(viaNode(REPO, ['trace', '--json'], env));
  });

  test("--help fits the terminal's width at each start, not at the build's", () => {
    const onTerminal = (columns: number, command: string) => {
      const r = spawn('script', ['-qec', `stty rows 20 cols ${columns}; exec ${command} --help`, '/dev/null'], cleanEnv());
      expect(r.status).toBe(0);
      return r.stdout;
    };
    const pcache = path.join(REPO, 'bin', 'pcache');
    const narrow = onTerminal(50, pcache);
    expect(narrow).toBe(onTerminal(50, `'${process.execPath}' '${pcache}'`));
    expect(narrow.split('\n').every((line) => line.replace(/\r$/, '').length <= 50)).toBe(true);
    expect(onTerminal(120, pcache)).toBe(onTerminal(120, `'${process.execPath}' '${pcache}'`));
  });
});

// A tree of its own (bin/, dist/, the build script; node_modules and native/ linked) with a
// snapshot of its own, spoilt in each way bin/pcache must notice.
describe('a snapshot that does not fit is not used, and pcache works the same', () => {
  let root: string;
  let blob: string;
  const build = () => {
    const r = spawn(process.execPath, [path.join(root, 'scripts', 'startup-snapshot', 'build.js')], cleanEnv(), root);
    expect(r).toEqual({ status: 0, stdout: '', stderr: '' });
  };
  const debugEnv = (extra: NodeJS.ProcessEnv = {}) => cleanEnv({ PCACHE_DEBUG: 'startup', ...extra });
  /** pcache works (a usage error and a traced command) and says which start ran. */
  const expectStart = (debugLine: string, env = debugEnv()) => {
    expect(viaSh(root, ['--version'], env)).toEqual({ status: 0, stdout: '0.1.0\n', stderr: debugLine });
    expect(viaSh(root, ['--bogus', '--', 'true'], env)).toEqual({ status: 2, stdout: '', stderr: `${debugLine}pcache: Unknown argument: bogus\n` });
    const traced = viaSh(root, ['trace', '--', '/bin/sh', '-c', 'echo out; exit 3'], env);
    expect({ status: traced.status, stdout: traced.stdout }).toEqual({ status: 3, stdout: 'out\n' });
    expect(traced.stderr.split('  exit 3 ')[0]).toBe(`${debugLine}#1 /bin/sh -c 'echo out; exit 3'`);
  };

  beforeAll(() => {
    root = path.join(tmp, 'tree');
    fs.mkdirSync(path.join(root, 'scripts'), { recursive: true });
    for (const dir of ['bin', 'dist', 'scripts/startup-snapshot']) {
      fs.cpSync(path.join(REPO, dir), path.join(root, dir), { recursive: true, preserveTimestamps: true, filter: (f) => !f.includes('/dist/snapshot') });
    }
    fs.copyFileSync(path.join(REPO, 'package.json'), path.join(root, 'package.json'));
    for (const dir of ['node_modules', 'native']) fs.symlinkSync(path.join(REPO, dir), path.join(root, dir));
    blob = path.join(root, 'dist', 'snapshot', 'pcache.blob');
    build();
  }, 60000);

  // each test starts from a fitting snapshot (build.js is quick when it fits)
  beforeEach(build, 60000);

  test('it fits: used', () => {
    expectStart(USED);
    // `node bin/pcache` never uses it
    expect(viaNode(root, ['--version'], debugEnv())).toEqual({ status: 0, stdout: '0.1.0\n', stderr: '' });
  });

  test('the blob was written since it was made (here: garbage that would make node abort)', () => {
    fs.writeFileSync(blob, 'not a snapshot blob');
    expectStart('');
  });

  test('no blob', () => {
    fs.rmSync(blob);
    expectStart('');
  });

  test('another node binary along PATH', () => {
    const other = path.join(tmp, 'other-node');
    fs.mkdirSync(other, { recursive: true });
    fs.writeFileSync(path.join(other, 'node'), `#!/bin/sh\nexec '${process.execPath}' "$@"\n`, { mode: 0o755 });
    expectStart('', debugEnv({ PATH: `${other}:${process.env.PATH}` }));
  });

  test('a file of dist/ changed since: started from the snapshot, then dist/ loaded as without it', () => {
    const file = path.join(root, 'dist', 'src', 'cli', 'errors.js');
    fs.appendFileSync(file, '\n');
    expectStart('pcache: debug: startup snapshot not used: dist/src/cli/errors.js changed\n');
  });

  test('a file it was made from is gone', () => {
    fs.rmSync(path.join(root, 'scripts', 'startup-snapshot', 'build.js'));
    try {
      expectStart('pcache: debug: startup snapshot not used: scripts/startup-snapshot/build.js: ENOENT\n');
    } finally {
      fs.cpSync(path.join(REPO, 'scripts', 'startup-snapshot', 'build.js'), path.join(root, 'scripts', 'startup-snapshot', 'build.js'), { preserveTimestamps: true });
    }
  });

  test('the tree moved', () => {
    const moved = path.join(tmp, 'moved');
    fs.renameSync(root, moved);
    try {
      expect(viaSh(moved, ['--bogus'], debugEnv())).toEqual({
        status: 2,
        stdout: '',
        stderr: `pcache: debug: startup snapshot not used: built in ${root}\npcache: Unknown argument: bogus\n`,
      });
    } finally {
      fs.renameSync(moved, root);
    }
  });
});

// The build runs every module's top level once, into the snapshot: what one reads of the
// process there (pid, environment, clock, random numbers, files, terminal) would be the
// build's in every pcache started from it. Loads dist/ with those traps set; Node's module
// loading (which reads files and the environment itself) is let through.
test("no top level in dist/ reads the process's state", () => {
  const modules: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.js')) modules.push(p);
    }
  };
  for (const dir of ['src', 'cache-store']) walk(path.join(REPO, 'dist', dir));
  expect(modules).toContain(path.join(REPO, 'dist', 'src', 'cli', 'main.js'));
  const r = spawn(process.execPath, ['-e', TRAPS, path.join(REPO, 'dist'), ...modules], cleanEnv());
  expect(r.stderr).toBe('');
  expect(JSON.parse(r.stdout)).toEqual([]);
});

/** node -e TRAPS DIST MODULE...: requires each MODULE with the traps set; prints what its top levels read. */
const TRAPS = `
const [dist, ...modules] = process.argv.slice(1);
const hits = [];
const restore = [];
// The frame in dist/ that led here, unless Node's module loader stands between.
function culprit() {
  const saved = Error.prepareStackTrace;
  Error.prepareStackTrace = (_, frames) => frames;
  const frames = new Error().stack.slice(2);
  Error.prepareStackTrace = saved;
  for (const f of frames) {
    const file = f.getFileName() || '';
    if (file.startsWith('node:internal/modules/')) return null;
    if (file.startsWith(dist)) return file.slice(dist.length + 1) + ':' + f.getLineNumber();
  }
  return null;
}
const note = (what) => { const at = culprit(); if (at) hits.push(what + ' at ' + at); };
function trapValue(obj, key, what) {
  const d = Object.getOwnPropertyDescriptor(obj, key);
  const get = d.get ? () => d.get.call(obj) : () => d.value;
  Object.defineProperty(obj, key, { configurable: true, enumerable: d.enumerable, get() { note(what); return get(); } });
  restore.push(() => Object.defineProperty(obj, key, d));
}
function trapFunctions(obj, keys, what) {
  for (const key of keys) {
    const f = obj[key];
    if (typeof f !== 'function' || /^[A-Z]/.test(key)) continue;
    const trapped = function (...args) { note(what + '.' + key); return new.target ? new f(...args) : f.apply(this, args); };
    Object.assign(trapped, f);
    obj[key] = trapped;
    restore.push(() => { obj[key] = f; });
  }
}
const fs = require('fs'), os = require('os'), crypto = require('crypto'), tty = require('tty'), cp = require('child_process');
// the Node modules dist/ uses, loaded before the traps (their own loading is not at issue)
const { isBuiltin } = require('module');
for (const m of modules) for (const [, id] of fs.readFileSync(m, 'utf8').matchAll(/require\\("([^"]+)"\\)/g)) if (isBuiltin(id)) require(id);
for (const key of ['env', 'argv', 'execArgv', 'pid', 'ppid', 'title', 'stdin', 'stdout', 'stderr']) trapValue(process, key, 'process.' + key);
trapFunctions(process, ['cwd', 'chdir', 'umask', 'hrtime', 'uptime', 'cpuUsage', 'resourceUsage', 'memoryUsage', 'getuid', 'geteuid', 'getgid', 'getegid', 'getgroups'], 'process');
trapFunctions(Date, ['now'], 'Date');
const RealDate = Date;
globalThis.Date = new Proxy(RealDate, {
  construct(target, args, newTarget) { if (args.length === 0) note('new Date()'); return Reflect.construct(target, args, newTarget); },
  apply(target, self, args) { note('Date()'); return Reflect.apply(target, self, args); },
});
restore.push(() => { globalThis.Date = RealDate; });
trapFunctions(Math, ['random'], 'Math');
trapFunctions(performance, ['now'], 'performance');
trapFunctions(crypto, ['randomBytes', 'randomFillSync', 'randomFill', 'randomInt', 'randomUUID', 'getRandomValues'], 'crypto');
trapFunctions(os, Object.keys(os), 'os');
trapFunctions(fs, Object.keys(fs), 'fs');
trapFunctions(fs.promises, Object.keys(fs.promises), 'fs.promises');
trapFunctions(tty, Object.keys(tty), 'tty');
trapFunctions(cp, Object.keys(cp), 'child_process');
try {
  for (const m of modules) require(m);
} finally {
  for (const undo of restore.reverse()) undo();
}
process.stdout.write(JSON.stringify(hits));
`;
