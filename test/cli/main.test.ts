// The CLI's error policy and exit statuses, through the real entry point (bin/pcache).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import yargs from 'yargs';
import { tracerStats } from '../e2e/harness';
import { skipHelpCache } from '../../src/cli/main';

const REPO = path.resolve(__dirname, '..', '..');
const PCACHE = path.join(REPO, 'bin', 'pcache');

function pcache(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, [PCACHE, ...args], {
    cwd: opts.cwd ?? REPO,
    env: opts.env ?? process.env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60000,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
beforeAll(() => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-cli-')));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('usage errors: exit 2 and exactly one line on stderr', () => {
  test.each([
    [['trace', '--bogus', '--', 'true'], 'pcache: Unknown argument: bogus\n'],
    [['--bogus', '--', 'true'], 'pcache: Unknown argument: bogus\n'],
    [['trace'], 'pcache: trace: no command given (usage: pcache trace [--json FILE] -- CMD ARGS...)\n'],
    [['trace', '--json'], 'pcache: Not enough arguments following: json\n'],
  ])('pcache %j', (args, stderr) => {
    const r = pcache(args);
    expect({ status: r.status, stderr: r.stderr, stdout: r.stdout }).toEqual({ status: 2, stderr, stdout: '' });
  });

  test('a PCACHE_CAPTURE_MEMORY that is not a number of bytes is refused before running anything', () => {
    const marker = path.join(dir, 'capture-memory-ran');
    const r = pcache(['--cache-dir', path.join(dir, 'cm-cache'), '--', '/bin/sh', '-c', `touch ${marker}`], {
      env: { ...process.env, PCACHE_CAPTURE_MEMORY: '64M' },
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("pcache: PCACHE_CAPTURE_MEMORY must be a number of bytes, not '64M'\n");
    expect(fs.existsSync(marker)).toBe(false);
  });

  test('a --json directory that does not exist is refused before running anything', () => {
    const marker = path.join(dir, 'ran');
    const r = pcache(['trace', '--json', path.join(dir, 'no/such/x.json'), '--', '/bin/sh', '-c', `touch ${marker}`]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`pcache: --json ${path.join(dir, 'no/such/x.json')}: no such directory ${path.join(dir, 'no/such')}\n`);
    expect(fs.existsSync(marker)).toBe(false);
  });

  test.each([
    ['run', (f: string) => ['--cache-dir', path.join(dir, 'sj-cache'), '--summary-json', f], '--summary-json'],
    ['trace', (f: string) => ['trace', '--json', f], '--json'],
    ['audit', (f: string) => ['audit', '--cache-dir', path.join(dir, 'sj-cache'), '--json', f], '--json'],
  ])('%s: an output file that is a directory, or empty, is refused before running anything', (_name, flags, flag) => {
    const marker = path.join(dir, 'ran-output-dir');
    const target = path.join(dir, 'a-directory');
    fs.mkdirSync(target, { recursive: true });
    const r = pcache([...flags(target), '--', '/bin/sh', '-c', `touch ${marker}`]);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 2, stderr: `pcache: ${flag} ${target}: is a directory\n` });
    const empty = pcache([...flags(''), '--', '/bin/sh', '-c', `touch ${marker}`]);
    expect({ status: empty.status, stderr: empty.stderr }).toEqual({ status: 2, stderr: `pcache: ${flag}: empty file name\n` });
    expect(fs.existsSync(marker)).toBe(false);
  });

  test('an empty --cache-dir is refused, not taken for the default cache', () => {
    const marker = path.join(dir, 'ran-empty-cache-dir');
    const r = pcache(['--cache-dir', '', '--', '/bin/sh', '-c', `touch ${marker}`]);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 1, stderr: 'pcache: --cache-dir: empty path\n' });
    expect(fs.existsSync(marker)).toBe(false);
  });
});

describe('an output file that cannot be written after the run', () => {
  // The command removes the directory the summary was to go to: pcache says so in one
  // line and keeps a failing command's status; a succeeding one becomes 1.
  test.each([
    ['exit 3', 3],
    ['exit 0', 1],
  ])('run --summary-json, command %s: exit %d', (exit, status) => {
    const out = path.join(dir, `vanishing-${status}`);
    fs.mkdirSync(out, { recursive: true });
    const summary = path.join(out, 's.json');
    const r = pcache(['--cache-dir', path.join(dir, 'vanish-cache'), '--quiet', '--summary-json', summary, '--', '/bin/sh', '-c', `rm -r ${out}; ${exit}`]);
    expect(r.status).toBe(status);
    expect(r.stderr).toMatch(new RegExp(`^pcache: cannot write ${summary}: ENOENT[^\n]*\n$`));
    expect(fs.existsSync(out)).toBe(false);
  });

  test('trace --json, command exit 0: exit 1', () => {
    const out = path.join(dir, 'vanishing-trace');
    fs.mkdirSync(out, { recursive: true });
    const json = path.join(out, 't.json');
    const r = pcache(['trace', '--json', json, '--', '/bin/sh', '-c', `rm -r ${out}`]);
    expect(r.status).toBe(1);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('pcache:'))).toEqual([
      expect.stringMatching(new RegExp(`^pcache: cannot write ${json}: ENOENT`)),
    ]);
  });

  test('a summary path that is a symlink is written through the link', () => {
    const real = path.join(dir, 'real-summary.json');
    const link = path.join(dir, 'link-summary.json');
    fs.writeFileSync(real, 'old\n');
    fs.symlinkSync(real, link);
    const r = pcache(['--cache-dir', path.join(dir, 'link-cache'), '--quiet', '--summary-json', link, '--', '/bin/sh', '-c', 'exit 4']);
    expect(r.status).toBe(4);
    expect(fs.readlinkSync(link)).toBe(real);
    expect(JSON.parse(fs.readFileSync(real, 'utf8')).exitCode).toBe(4);
    // a link to a file not there yet: `>` would create that file, so does pcache
    const later = path.join(dir, 'later-summary.json');
    const dangling = path.join(dir, 'dangling-summary.json');
    fs.symlinkSync(later, dangling);
    const d = pcache(['--cache-dir', path.join(dir, 'link-cache'), '--quiet', '--summary-json', dangling, '--', '/bin/sh', '-c', 'exit 5']);
    expect(d.status).toBe(5);
    expect(fs.readlinkSync(dangling)).toBe(later);
    expect(JSON.parse(fs.readFileSync(later, 'utf8')).exitCode).toBe(5);
  });
});

describe('command lookup: 127 or 126 like a shell', () => {
  test('a name not found along PATH', () => {
    const r = pcache(['trace', '--', 'pcache-no-such-command-xyz', 'arg']);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 127, stderr: 'pcache: pcache-no-such-command-xyz: command not found\n' });
  });

  test('a path that is not executable, a directory, a path to nothing: what bash says, and its status', () => {
    fs.writeFileSync(path.join(dir, 'plain'), 'echo hi\n', { mode: 0o644 });
    for (const cmd of ['./plain', '/', './no-such-file', './plain/below']) {
      const bash = spawnSync('/bin/bash', ['-c', `${cmd}`], { cwd: dir, encoding: 'utf8' });
      const r = pcache(['trace', '--', cmd], { cwd: dir });
      // bash: "bash: -c: line 1: ./plain: Permission denied" (126), "/: Is a directory" (126), "No such file or
      // directory" (127), "./plain/below: Not a directory" (126)
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: bash.status, stderr: `pcache: ${bash.stderr.split(': ').slice(-2).join(': ')}` });
    }
  });
});

describe('a cache directory that cannot be made', () => {
  test('under /proc: a one-line error at once (Node 20\'s recursive mkdir loops there forever)', () => {
    const r = pcache(['--cache-dir', '/proc/pcache-no-such/cache', '--', 'true']);
    expect({ status: r.status, stderr: r.stderr }).toEqual({
      status: 1,
      stderr: "pcache: cannot create cache directory /proc/pcache-no-such/cache: ENOENT: no such file or directory, mkdir '/proc/pcache-no-such'\n",
    });
  });
});

describe('help and version', () => {
  test('--version prints the version and exits 0', () => {
    const r = pcache(['--version']);
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: '0.1.0\n', stderr: '' });
  });

  test('trace --help shows the usage line', () => {
    const r = pcache(['trace', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('pcache trace [--json FILE] -- CMD ARGS...');
  });

  // yargs 17 renders a named command's help once its handler has started, for a showHelp()
  // that never comes (~6 ms a start): run() skips that through yargs' internals.
  test("skipHelpCache stops the help rendering after a command's start", () => {
    type Usage = { cacheHelpMessage(): void; help(): string };
    const usageOf = (parser: unknown) => (parser as { getInternalMethods(): { getUsageInstance(): Usage } }).getInternalMethods().getUsageInstance();
    const plain = usageOf(yargs([]));
    const plainHelp = jest.spyOn(plain, 'help').mockReturnValue('');
    plain.cacheHelpMessage();
    expect(plainHelp).toHaveBeenCalledTimes(1);
    const parser = yargs([]);
    skipHelpCache(parser);
    const help = jest.spyOn(usageOf(parser), 'help').mockReturnValue('');
    usageOf(parser).cacheHelpMessage();
    expect(help).not.toHaveBeenCalled();
  });
});

describe('running a command traced', () => {
  test('arguments after -- reach the command as exact strings; its exit status is pcache\'s', () => {
    const json = path.join(dir, 'args.json');
    const r = pcache(['trace', '--json', json, '--', '/bin/sh', '-c', 'echo "$@"; exit 3', 'sh', '007', '1e3', '--x', '-0']);
    expect(r.stdout).toBe('007 1e3 --x -0\n');
    expect(r.status).toBe(3);
    const rec = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(rec.version).toBe(1);
    expect(rec.exitCode).toBe(3);
    expect(rec.executions[0].argv).toEqual(['/bin/sh', '-c', 'echo "$@"; exit 3', 'sh', '007', '1e3', '--x', '-0']);
    expect(rec.executions[0].captured).toEqual({ stdout: { text: '007 1e3 --x -0\n' }, stderr: { text: '' } });
    // the tree on stderr: one line for the one execution
    expect(r.stderr.split('\n').filter(Boolean)).toEqual([expect.stringMatching(/^#1 \/bin\/sh -c 'echo "\$@"; exit 3' sh 007 1e3 --x -0  exit 3  \d+(ms|\.\ds)  in \d+ out 0$/)]);
  });

  test('the record keeps the first MiB of what each execution wrote, and says so', () => {
    // 1.5 MB through a pipe into wc, and 17 bytes to the run's stdout
    const json = path.join(dir, 'big.json');
    const r = pcache(['trace', '--json', json, '--', '/bin/sh', '-c', 'head -c 1500000 /dev/zero | tr "\\0" a | wc -c; echo "$((1 << 20)) bytes"']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('1500000\n1048576 bytes\n');
    const rec = JSON.parse(fs.readFileSync(json, 'utf8'));
    const tr = rec.executions.find((e: { argv: string[] }) => e.argv[0] === 'tr');
    expect(tr.stdout.bytes).toBe(1500000);
    expect(tr.captured.stdout).toEqual({ text: 'a'.repeat(1 << 20), truncated: true });
    expect(rec.executions[0].captured.stdout).toEqual({ text: '1500000\n1048576 bytes\n' });
  });

  test('a stdout file read back at the end: the first MiB of it, its whole size, and the file intact', () => {
    // tr's stdout is a regular file, read back when tr ends, only as far as the record keeps;
    // the shell around it has the same file as stdout and gets the same bytes.
    const json = path.join(dir, 'readback.json');
    const out = path.join(dir, 'readback.out');
    const zeros = path.join(dir, 'zeros');
    fs.writeFileSync(zeros, Buffer.alloc(1500000));
    const script = `{ tr "\\0" b < ${zeros}; printf 'tail'; } > ${out}`;
    for (const withJson of [true, false]) {
      const r = pcache(['trace', ...(withJson ? ['--json', json] : []), '--', '/bin/sh', '-c', script]);
      expect(r.status).toBe(0);
      expect(fs.readFileSync(out, 'latin1')).toBe('b'.repeat(1500000) + 'tail');
    }
    const rec = JSON.parse(fs.readFileSync(json, 'utf8'));
    const tr = rec.executions.find((e: { argv: string[] }) => e.argv[0] === 'tr');
    expect(tr.stdout).toMatchObject({ kind: 'file', target: out, bytes: 1500000 });
    expect(tr.captured.stdout).toEqual({ text: 'b'.repeat(1 << 20), truncated: true });
    expect(tr.uncacheable).toEqual([]);
  });

  test("pcache's cache directory is never recorded; the same writes elsewhere are", () => {
    const cache = path.join(dir, 'cache');
    const json = path.join(dir, 'cachedir.json');
    const env = { ...process.env, PCACHE_DIR: cache };
    const script = `mkdir -p "$PCACHE_DIR" && echo x > "$PCACHE_DIR/f" && echo y > ${dir}/visible`;
    const r = pcache(['trace', '--json', json, '--', '/bin/sh', '-c', script], { env });
    expect(r.status).toBe(0);
    const rec = JSON.parse(fs.readFileSync(json, 'utf8'));
    const touched = (e: { inputs: { path: string }[]; outputs: { path: string }[] }) => [...e.inputs, ...e.outputs].map((x) => x.path);
    expect(touched(rec.executions[0]).filter((p: string) => p === cache || p.startsWith(cache + '/'))).toEqual([]);
    const outputs = rec.executions[0].outputs as { path: string; kind: string }[];
    expect(outputs.filter((o) => o.path.startsWith(dir + '/')).map((o) => `${o.kind} ${o.path}`)).toEqual([`content ${path.join(dir, 'visible')}`]);
  });

  test('death by a signal: 128+N', () => {
    const r = pcache(['trace', '--', '/bin/sh', '-c', 'kill -TERM $$']);
    expect(r.status).toBe(128 + 15);
    expect(r.stderr).toMatch(/^#1 .*signal 15 .*uncacheable: killed by signal 15\n$/);
  });

  test('SIGTERM sent to pcache reaches the traced command', () => {
    const ready = path.join(dir, 'ready');
    const script = `trap 'echo got-term; exit 7' TERM; touch ${ready}; while :; do sleep 0.05; done`;
    const child = require('child_process').spawn(process.execPath, [PCACHE, 'trace', '--', '/bin/sh', '-c', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    return new Promise<void>((resolve, reject) => {
      const poll = setInterval(() => {
        if (fs.existsSync(ready)) {
          clearInterval(poll);
          child.kill('SIGTERM');
        }
      }, 20);
      child.on('exit', (code: number | null, signal: string | null) => {
        clearInterval(poll);
        try {
          expect({ code, signal, out }).toEqual({ code: 7, signal: null, out: 'got-term\n' });
          resolve();
        } catch (e) {
          reject(e);
        }
      });
    });
  });
});

describe('PCACHE_TRACER_STATS: where a slow run goes', () => {

  test('pcache run: execs decided or asked, a held exit per process that ran a program', () => {
    const cache = path.join(dir, 'stats-cache');
    const r = pcache(['--cache-dir', cache, '--quiet', '--', '/bin/sh', '-c', '/bin/true; /bin/true'], {
      env: { ...process.env, PCACHE_TRACER_STATS: '1' },
    });
    expect(r.status).toBe(0);
    const s = tracerStats(r.stderr);
    // Three execs (sh, true, and the last true that dash execs in place of itself) in two
    // processes: two exits, each held until its execution is stored. On an empty cache
    // the exec filter runs sh and the first true without asking; the second true is asked
    // when the first one's entry was published before it started.
    expect([s.exec_requests, s.exec_decided_by_filter + s.held_exec_decisions, s.held_exits]).toEqual([3, 3, 2]);
    expect(s.exec_decided_by_filter).toBeGreaterThanOrEqual(2);
    expect(s.held_exit_ms).toBeGreaterThan(0);
    // No part of the key: the same command without it is the same execution, replayed
    // (asked about: its entry is known).
    const summary = path.join(dir, 'stats-summary.json');
    const again = pcache(['--cache-dir', cache, '--quiet', '--summary-json', summary, '--', '/bin/sh', '-c', '/bin/true; /bin/true'], {
      env: { ...process.env, PCACHE_TRACER_STATS: '1' },
    });
    expect(again.status).toBe(0);
    expect(JSON.parse(fs.readFileSync(summary, 'utf8')).executions).toEqual({ total: 1, ran: 0, skipped: 1, uncacheable: 0 });
    const t = tracerStats(again.stderr);
    expect([t.exec_requests, t.held_exec_decisions, t.exec_decided_by_filter ?? 0, t.held_exits]).toEqual([1, 1, 0, 0]);
    expect(t.held_exec_ms).toBeGreaterThan(0);
  });

  test('pcache trace holds nothing, and without the variable nothing is printed', () => {
    const r = pcache(['trace', '--', '/bin/sh', '-c', '/bin/true'], { env: { ...process.env, PCACHE_TRACER_STATS: '1' } });
    expect(r.status).toBe(0);
    const s = tracerStats(r.stderr);
    expect([s.exec_requests, s.held_exec_decisions, s.held_exits]).toEqual([2, 0, 0]);
    const env = { ...process.env };
    delete env.PCACHE_TRACER_STATS;
    expect(pcache(['trace', '--', '/bin/true'], { env }).stderr).not.toContain('tracer stats');
  });
});

// Node marks every descriptor it inherited close-on-exec as it starts; run as a program,
// bin/pcache notes them first (in sh) so that the command gets them as it would without
// pcache: `pcache -- cmd 3< file`, a make jobserver's pipe.
describe('descriptors above 2 given to pcache', () => {
  /** bin/pcache run as a program (its #! line), with `file` open on fd 7. */
  function withFd7(file: string, args: string[]) {
    const fd = fs.openSync(file, 'r');
    try {
      const r = spawnSync(PCACHE, args, {
        cwd: dir,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore', 'ignore', fd],
        timeout: 60000,
      });
      if (r.error) throw r.error;
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    } finally {
      fs.closeSync(fd);
    }
  }

  test('the command gets them; a file there is an input of the command', () => {
    const input = path.join(dir, 'fd7.txt');
    const cache = path.join(dir, 'fd7-cache');
    fs.writeFileSync(input, 'seven\n');
    const args = ['--cache-dir', cache, '--summary-json', path.join(dir, 'fd7.json'), '--', '/bin/sh', '-c', 'cat <&7; echo "${PCACHE_INHERITED_FDS-unset}"'];
    const summary = () => JSON.parse(fs.readFileSync(path.join(dir, 'fd7.json'), 'utf8')).executions;
    const first = withFd7(input, args);
    expect({ status: first.status, stdout: first.stdout }).toEqual({ status: 0, stdout: 'seven\nunset\n' });
    expect(summary()).toEqual(expect.objectContaining({ ran: 2, skipped: 0, uncacheable: 0 }));
    const again = withFd7(input, args);
    expect(again.stdout).toBe('seven\nunset\n');
    expect(summary()).toEqual(expect.objectContaining({ ran: 0, skipped: 1 }));
    fs.writeFileSync(input, 'eight\n');
    const changed = withFd7(input, args);
    expect(changed.stdout).toBe('eight\nunset\n');
    expect(summary()).toEqual(expect.objectContaining({ ran: 2, skipped: 0 }));
  });
});

// Some NODE_* variables would change pcache's own Node rather than the command's: bin/pcache
// sets them aside and the addon puts them back for the command, unchanged.
describe('NODE_* variables meant for the command', () => {
  test('reach the command exactly; pcache itself runs without them', () => {
    const coverage = path.join(dir, 'v8-coverage');
    const cache = path.join(dir, 'node-env-cache');
    const json = path.join(dir, 'node-env.json');
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      // seen by pcache's Node: it fails to start, writes coverage files, warns on stderr
      NODE_OPTIONS: '--require /nonexistent/preload.js',
      NODE_V8_COVERAGE: coverage,
      NODE_EXTRA_CA_CERTS: '/nonexistent/ca.pem',
      NODE_DEBUG: '',
    };
    const show = 'printf "%s|" "$NODE_OPTIONS" "$NODE_V8_COVERAGE" "$NODE_EXTRA_CA_CERTS" "${NODE_DEBUG-unset}" "${NODE_DEBUG_NATIVE-unset}"; env | grep -c ^PCACHE_';
    const run = () => {
      const r = spawnSync(PCACHE, ['--cache-dir', cache, '--summary-json', json, '--', '/bin/sh', '-c', show], { cwd: dir, env, encoding: 'utf8', timeout: 60000 });
      if (r.error) throw r.error;
      return { status: r.status, stdout: r.stdout, stderr: r.stderr, summary: JSON.parse(fs.readFileSync(json, 'utf8')).executions };
    };
    const expected = `--require /nonexistent/preload.js|${coverage}|/nonexistent/ca.pem||unset|0\n`;
    const first = run();
    // grep -c finding nothing exits 1
    expect({ status: first.status, stdout: first.stdout }).toEqual({ status: 1, stdout: expected });
    expect(first.summary).toEqual(expect.objectContaining({ ran: 3, skipped: 0 }));
    // Node's "Ignoring extra certs from ..." warning: pcache's Node never loaded the bundle
    expect(first.stderr).not.toContain('extra certs');
    const again = run();
    expect({ status: again.status, stdout: again.stdout }).toEqual({ status: 1, stdout: expected });
    expect(again.summary).toEqual(expect.objectContaining({ ran: 0, skipped: 1 }));
    expect(fs.existsSync(coverage)).toBe(false);
  });
});

describe('`_`, which bash sets to the path of the program it runs', () => {
  // `_` is not part of a command's key (DEFAULT_IGNORED_ENV): each case has its own cache
  function printUnderscore(underscore: string, cmd: string, launcher = PCACHE, cwd = dir) {
    const cache = fs.mkdtempSync(path.join(dir, 'underscore-cache-'));
    const r = spawnSync(launcher, ['--cache-dir', cache, '--quiet', '--', cmd, '_'], {
      cwd,
      env: { PATH: '/usr/bin:/bin', _: underscore },
      encoding: 'utf8',
      timeout: 60000,
    });
    if (r.error) throw r.error;
    return { status: r.status, stdout: r.stdout };
  }

  test("is the command's when it was pcache's: what bash gives a plain run", () => {
    expect(printUnderscore(PCACHE, 'printenv')).toEqual({ status: 0, stdout: '/usr/bin/printenv\n' });
    // a path with a slash is used as given, as bash does
    expect(printUnderscore(PCACHE, '/bin/printenv')).toEqual({ status: 0, stdout: '/bin/printenv\n' });
    // pcache run by a relative path: bash gives that path as typed
    expect(printUnderscore('./pcache', 'printenv', './pcache', path.dirname(PCACHE))).toEqual({ status: 0, stdout: '/usr/bin/printenv\n' });
  });

  test('passes unchanged when something else set it', () => {
    expect(printUnderscore('/usr/bin/make', 'printenv')).toEqual({ status: 0, stdout: '/usr/bin/make\n' });
  });
});
