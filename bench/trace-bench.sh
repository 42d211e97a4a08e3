#!/usr/bin/env bash
# make bench-trace: what tracing costs. Runs each workload plainly, under
# `pcache trace`, under `strace -f -e trace=%file,%process -o /dev/null`, and
# under the same strace with --seccomp-bpf, interleaved round by round, and
# prints (and writes to bench/TRACE-RESULTS.md) the median wall time, the
# min-max range and the ratio of each median to plain.
#
# Workloads:
#   compute  gzip -9 of 150 MB of generated text (read/write only: no stops expected)
#   procs    1,000 short processes: sh -c 'for i in $(seq 1000); do /bin/true; done'
#   find     find /usr -name '*.h' (stat/getdents heavy)
#   python   python3 -c 'import email, json, http.client', 20 times (open/stat heavy)
#   stdout   sed -n p of 50 MB to a file: 4 KiB stdio writes to stdout, each a stop
#            for pcache (it captures stdout); strace's file/process filter skips them
#
# Environment: BENCH_RUNS (default 5, at least 3), BENCH_ONLY (space-separated
# workload names), BENCH_MODES (subset of: plain pcache strace seccomp; plain is
# always run), BENCH_OUT (results file, default bench/TRACE-RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

RUNS="${BENCH_RUNS:-5}"
if [ "$RUNS" -lt 3 ]; then RUNS=3; fi
OUT="${BENCH_OUT:-$ROOT/bench/TRACE-RESULTS.md}"
WORK="$ROOT/bench/work"

need=()
command -v strace >/dev/null || need+=(strace)
command -v gzip >/dev/null || need+=(gzip)
[ -x /usr/bin/python3 ] || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: apt-get install ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! strace --seccomp-bpf -f -o /dev/null /bin/true 2>/dev/null; then
  echo "bench: this strace has no --seccomp-bpf (strace >= 5.3 needed)" >&2
  exit 1
fi
if [[ " ${BENCH_MODES:-pcache} " == *" pcache "* ]] &&
  { [ ! -f native/build/Release/pcache_tracer.node ] || [ ! -f dist/src/cli/main.js ]; }; then
  make -s build
fi

mkdir -p "$WORK"
# 50 MB of deterministic text (words from a fixed pseudo-random vocabulary),
# made once; gzip reads it three times per run.
if [ ! -f "$WORK/data.txt" ] || [ "$(stat -c %s "$WORK/data.txt")" -lt 50000000 ]; then
  echo "bench: generating $WORK/data.txt" >&2
  /usr/bin/python3 - "$WORK/data.txt.tmp" <<'PY'
import random, sys
r = random.Random(20261121)
words = [''.join(r.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(r.randint(2, 9))) for _ in range(5000)]
lines = [' '.join(r.choice(words) for _ in range(12)) for _ in range(20000)]
with open(sys.argv[1], 'w') as f:
    n = 0
    i = 0
    while n < 50_000_000:
        # vary the line order so the stream is not a short repeat
        line = lines[(i * 7919 + (i >> 7)) % len(lines)] + ' %d\n' % i
        f.write(line)
        n += len(line)
        i += 1
PY
  mv "$WORK/data.txt.tmp" "$WORK/data.txt"
fi

export ROOT WORK RUNS OUT
exec /usr/bin/python3 - <<'PY'
import os, platform, resource, statistics, subprocess, sys, time

root, work, runs, out = os.environ['ROOT'], os.environ['WORK'], int(os.environ['RUNS']), os.environ['OUT']
only = set(os.environ.get('BENCH_ONLY', '').split())

workloads = [
    ('compute', 'gzip -9 of 3 x 50 MB', ['gzip', '-9', '-c', f'{work}/data.txt', f'{work}/data.txt', f'{work}/data.txt']),
    ('procs', '1,000 x /bin/true from sh', ['/bin/sh', '-c', 'for i in $(seq 1000); do /bin/true; done']),
    ('find', "find /usr -name '*.h'", ['find', '/usr', '-name', '*.h']),
    ('python', "20 x python3 -c 'import email, json, http.client'",
     ['/bin/sh', '-c', 'for i in $(seq 20); do /usr/bin/python3 -c "import email, json, http.client"; done']),
    ('stdout', 'sed -n p of 50 MB to a file', ['/bin/sh', '-c', f'sed -n p {work}/data.txt > {work}/stdout.txt']),
]
workloads = [w for w in workloads if not only or w[0] in only]

strace = ['strace', '-f', '-e', 'trace=%file,%process', '-o', '/dev/null']
modes = [
    ('plain', 'plain', lambda cmd: cmd),
    # as users run it: bin/pcache as a program (its sh step, then Node)
    ('pcache', 'pcache trace', lambda cmd: [f'{root}/bin/pcache', 'trace', '--', *cmd]),
    ('strace', 'strace', lambda cmd: [*strace, *cmd]),
    ('seccomp', 'strace --seccomp-bpf', lambda cmd: [*strace, '--seccomp-bpf', *cmd]),
]
wanted = set(os.environ.get('BENCH_MODES', 'plain pcache strace seccomp').split()) | {'plain'}
modes = [(label, wrap) for key, label, wrap in modes if key in wanted]

class Hung(Exception):
    pass

def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

def once(argv, timeout):
    """(wall seconds, CPU seconds of the whole process tree: tracer and tracees)."""
    c0 = children_cpu()
    t0 = time.perf_counter()
    # own session, so a hung run can be killed with everything it started
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         cwd=work, start_new_session=True)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        p.communicate()
        raise Hung()
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.stderr.write(f'bench: {" ".join(argv[:6])} ... exited {p.returncode}\n{err.decode(errors="replace")[-2000:]}\n')
        sys.exit(1)
    return dt, children_cpu() - c0

results = {}  # (workload, mode) -> [wall seconds]
cpu = {}  # (workload, mode) -> [CPU seconds]
hung = {}  # (workload, mode) -> how many runs did not finish within the limit
for name, _, cmd in workloads:
    # one warm-up of each mode (page cache, python bytecode caches); plain's sets the time limit
    limit = None
    for mname, wrap in modes:
        try:
            dt, _ = once(wrap(cmd), limit)
        except Hung:
            hung[(name, mname)] = hung.get((name, mname), 0) + 1
            continue
        if mname == 'plain':
            limit = max(120.0, 30 * dt)
    for r in range(runs):
        for mname, wrap in modes:
            try:
                dt, ct = once(wrap(cmd), limit)
                results.setdefault((name, mname), []).append(dt)
                cpu.setdefault((name, mname), []).append(ct)
            except Hung:
                hung[(name, mname)] = hung.get((name, mname), 0) + 1
                sys.stderr.write(f'bench: {name} under {mname} did not finish within {limit:.0f} s, killed\n')
        sys.stderr.write(f'bench: {name} round {r + 1}/{runs}\n')

def fmt(s):
    return f'{s:.3f}'

header = '| workload | mode | median s | min-max s | ratio to plain | median CPU s | CPU ratio |'
rows = [header, '|---|---|---:|---:|---:|---:|---:|']
verdicts = []
for name, desc, _ in workloads:
    plain = statistics.median(results[(name, 'plain')])
    plain_cpu = statistics.median(cpu[(name, 'plain')])
    for mname, _ in modes:
        xs = results.get((name, mname), [])
        note = f' ({hung[(name, mname)]} run(s) hung, killed)' if (name, mname) in hung else ''
        if not xs:
            rows.append(f'| {name}: {desc} | {mname}{note} | - | - | - | - | - |')
            continue
        med = statistics.median(xs)
        cmed = statistics.median(cpu[(name, mname)])
        rows.append(f'| {name}: {desc} | {mname}{note} | {fmt(med)} | {fmt(min(xs))}-{fmt(max(xs))} | {med / plain:.3f}x '
                    f'| {fmt(cmed)} | {cmed / plain_cpu:.3f}x |')
    if not results.get((name, 'pcache trace')) or not results.get((name, 'strace --seccomp-bpf')):
        continue
    pc = statistics.median(results[(name, 'pcache trace')])
    sb = statistics.median(results[(name, 'strace --seccomp-bpf')])
    verdicts.append(f'- {name}: pcache {pc / plain:.3f}x plain, strace --seccomp-bpf {sb / plain:.3f}x plain; '
                    f'pcache {"faster" if pc < sb else "NOT faster"} than strace --seccomp-bpf')
    if name == 'compute':
        pcc = statistics.median(cpu[(name, 'pcache trace')])
        verdicts.append(f'  - goal within 3% of plain: wall {"met" if pc <= plain * 1.03 else "NOT met"}, '
                        f'CPU {"met" if pcc <= plain_cpu * 1.03 else "NOT met"} ({pcc / plain_cpu:.3f}x)')
    if name == 'procs':
        verdicts.append(f'  - goal under 1.5x plain: {"met" if pc < plain * 1.5 else "NOT met"}')

def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except Exception:
        return '?'

text = '\n'.join([
    '# pcache trace benchmark',
    '',
    f'`make bench-trace` on {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}: {runs} runs per mode '
    '(after one warm-up), modes interleaved round by round; wall-clock seconds, and CPU seconds (user + system)',
    'of the whole process tree, tracer included, which a busy machine disturbs much less than wall time.',
    f'Load average when done: {os.getloadavg()[0]:.1f}.',
    '',
    f'Machine: {os.cpu_count()} CPUs, Linux {platform.release()}, {sh(["strace", "-V"])}, node {sh(["node", "--version"])}.',
    '',
    *rows,
    '',
    'Goals (issue 2): within 3% of plain on compute-bound, under 1.5x plain on 1,000 short',
    'processes, faster than strace --seccomp-bpf on each.',
    '',
    *verdicts,
    '',
])
print(text)
with open(out, 'w') as f:
    f.write(text)
sys.stderr.write(f'bench: wrote {out}\n')
PY
