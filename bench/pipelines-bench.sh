#!/usr/bin/env bash
# make bench: pcache on the fixture pipelines (fixtures/pipelines/<name>/run.sh),
# measured against a plain run and its peers on this machine, median of
# BENCH_RUNS (default 3, at least 3) runs of each:
#   plain            run.sh on fresh outputs
#   pcache cold      first run on an empty cache (recording everything)
#   pcache unchanged re-run with nothing changed
#   pcache changed   re-run after changing one sample's input (gen.py mutate-*)
#   strace           strace -f -e trace=%file,%process -o /dev/null, with and without --seccomp-bpf
#   reprozip         reprozip trace --dont-identify-packages (ptrace provenance tracer writing SQLite),
#                    through bench/noclone3 (reprozip 1.1 cannot follow clone3)
#   snakemake        the equivalent Snakefile (-j 2): first run, no-op re-run, re-run after the same change
# Every pcache run's working directory is compared with a plain run from the
# same state (fixtures/pipelines/compare.py with the pipeline's
# NONDETERMINISTIC.tsv). Writes bench/RESULTS.md (BENCH_OUT).
#
# Environment: BENCH_RUNS, BENCH_SIZE (bench|small), BENCH_PIPELINES ("variant
# align chunks"), BENCH_OUT, BENCH_WORK, PCACHE_BIN (another pcache entry point)
# with BENCH_PCACHE_REV (what to call it in the results).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
RUNS="${BENCH_RUNS:-3}"
[ "$RUNS" -ge 3 ] || RUNS=3
SIZE="${BENCH_SIZE:-bench}"
PIPELINES="${BENCH_PIPELINES:-variant align chunks}"
OUT="${BENCH_OUT:-$ROOT/bench/RESULTS.md}"
WORK="${BENCH_WORK:-$ROOT/bench/work/pipelines}"
FIX="$ROOT/fixtures/pipelines"
PCACHE="${PCACHE_BIN:-$ROOT/bin/pcache}"
export LC_ALL=C

# What the bench runs: the pipelines' tools and the peers. setup.sh installs
# them (make bench runs make setup first); this covers a direct invocation.
need=()
for p in bwa samtools bcftools fastp clustalo hmmer seqtk snakemake strace reprozip; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null || true
fi
[ -f dist/src/cli/main.js ] || make -s build
HAVE_REPROZIP=0; command -v reprozip >/dev/null && HAVE_REPROZIP=1
mkdir -p "$WORK"
if [ "$HAVE_REPROZIP" = 1 ]; then
  reprozip usage_report --disable >/dev/null 2>&1 || true
  # reprozip 1.1 aborts on clone3, which glibc uses for every thread: run it
  # through noclone3, which makes clone3 fail with ENOSYS (glibc then uses clone)
  gcc -O1 -Wall -o "$WORK/noclone3" bench/noclone3.c
fi

now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
minmax() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }'; }

declare -A T CHECK INFO FAILMSG
FAILED=()

timed() { # key dir command... : runs the command in dir, appends its wall seconds to T[key]
  local key="$1" dir="$2"; shift 2
  local t0 t1 rc=0
  t0=$(now)
  (cd "$dir" && "$@" >"$WORK/last.out" 2>"$WORK/last.err") || rc=$?
  t1=$(now)
  if [ "$rc" != 0 ]; then
    echo "bench: $key failed (exit $rc): $*" >&2
    tail -5 "$WORK/last.err" >&2
    CHECK[$key]="FAILED (exit $rc)"
    [ -n "${FAILMSG[$key]:-}" ] || FAILED+=("$key")
    FAILMSG[$key]="exit $rc: $({ grep -m1 CRITICAL "$WORK/last.err" || grep -m1 -E 'ERROR|rror' "$WORK/last.err"; } | sed 's/^\[REPROZIP\] [0-9:.]* //' | cut -c1-200)"
  fi
  T[$key]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') "
  echo "  $key $(echo "${T[$key]}" | awk '{ print $NF }') s" >&2
}

mutate() { # name dir : the one-sample change
  case "$1" in
    variant) python3 "$FIX/gen/gen.py" mutate-sample "$2/data/samples/S2_R1.fq.gz" ;;
    align) python3 "$FIX/gen/gen.py" mutate-family "$2/data/families/fam02.fa" ;;
    chunks) python3 "$FIX/gen/gen.py" mutate-sample "$2/data/samples/C2.fq.gz" ;;
  esac
}

fresh() { # a working directory with only the generated data
  rm -rf "$W" && mkdir -p "$W" && cp -r "$D/data" "$W/data"
}

check() { # name key reference : compares the working directory with a plain run's
  local diffs
  if diffs=$(python3 "$FIX/compare.py" --rules "$FIX/$1/NONDETERMINISTIC.tsv" "$3" "$W"); then
    CHECK[$1,$2]="${CHECK[$1,$2]:-identical}"
  else
    CHECK[$1,$2]="DIFFERENT"
    echo "bench: $1 $2: outputs differ from plain:" >&2
    echo "$diffs" | head -20 >&2
    INFO[$1,$2,diff]="$(echo "$diffs" | head -5 | tr '\n' ';')"
  fi
}

mkdir -p "$WORK"
for name in $PIPELINES; do
  echo "bench: $name ($SIZE)" >&2
  D="$WORK/$name-$SIZE"  # generated data, reference trees, cache; W: the working directory
  W="$D/w"
  # Generated once per version of gen.py (its sizes and seeds decide the data).
  gen_id=$(sha256sum "$FIX/gen/gen.py" | cut -c1-16)
  if [ "$(cat "$D/data.ok" 2>/dev/null)" != "$gen_id" ]; then
    rm -rf "$D" && mkdir -p "$D"
    python3 "$FIX/gen/gen.py" "$name" "$SIZE" "$D/data"
    echo "$gen_id" > "$D/data.ok"
  fi
  script="$FIX/$name/run.sh"
  snake=(snakemake -s "$FIX/$name/Snakefile" -j 2 --quiet --config "size=$SIZE")
  for i in $(seq "$RUNS"); do
    # plain, and the reference trees: plain before and after the change
    fresh
    timed "$name,plain" "$W" "$script" "$SIZE"
    if [ "$i" = 1 ]; then
      rm -rf "$D/ref-plain" && cp -a "$W" "$D/ref-plain"
      cp "$WORK/last.out" "$D/plain.stdout"
      mutate "$name" "$W"
      timed "$name,plain-changed" "$W" "$script" "$SIZE"
      rm -rf "$D/ref-changed" && cp -a "$W" "$D/ref-changed"
    fi

    # pcache: cold, unchanged, changed, each checked against plain
    fresh
    cache="$D/cache"; rm -rf "$cache"
    pc=("$PCACHE" --quiet --assume-idempotent --cache-dir "$cache" --summary-json "$D/summary.json" -- "$script" "$SIZE")
    timed "$name,cold" "$W" "${pc[@]}"
    INFO[$name,cold]="$(cat "$D/summary.json" 2>/dev/null || echo "no summary")"; rm -f "$D/summary.json"
    check "$name" cold "$D/ref-plain"
    timed "$name,unchanged" "$W" "${pc[@]}"
    INFO[$name,unchanged]="$(cat "$D/summary.json" 2>/dev/null || echo "no summary")"; rm -f "$D/summary.json"
    check "$name" unchanged "$D/ref-plain"
    mutate "$name" "$W"
    timed "$name,changed" "$W" "${pc[@]}"
    INFO[$name,changed]="$(cat "$D/summary.json" 2>/dev/null || echo "no summary")"; rm -f "$D/summary.json"
    check "$name" changed "$D/ref-changed"
    if [ "$i" = 1 ]; then
      # The default (strict) mode, once: a step that looked for its own output before
      # creating it (cp, clustalo -o) runs once more on the first re-run (README).
      fresh
      rm -rf "$cache"
      strict=("$PCACHE" --quiet --cache-dir "$cache" --summary-json "$D/summary.json" -- "$script" "$SIZE")
      timed "$name,strict-cold" "$W" "${strict[@]}"
      rm -f "$D/summary.json"
      timed "$name,strict-unchanged" "$W" "${strict[@]}"
      INFO[$name,strict-unchanged]="$(cat "$D/summary.json" 2>/dev/null || echo "no summary")"; rm -f "$D/summary.json"
      check "$name" strict-unchanged "$D/ref-plain"
    fi

    # tracing peers
    fresh
    timed "$name,strace" "$W" strace -f -e trace=%file,%process -o /dev/null "$script" "$SIZE"
    fresh
    timed "$name,strace-bpf" "$W" strace -f --seccomp-bpf -e trace=%file,%process -o /dev/null "$script" "$SIZE"
    if [ "$HAVE_REPROZIP" = 1 ]; then
      fresh
      timed "$name,reprozip" "$W" reprozip trace --dont-identify-packages -d "$D/rpz" --overwrite "$WORK/noclone3" "$script" "$SIZE"
    fi

    # snakemake: first run, no-op, after the same change
    fresh
    timed "$name,snakemake" "$W" "${snake[@]}"
    timed "$name,snakemake-noop" "$W" "${snake[@]}"
    mutate "$name" "$W"
    timed "$name,snakemake-changed" "$W" "${snake[@]}"
  done
done

row() { # name key label
  local name="$1" key="$2" label="$3" m mm p ratio
  [ -n "${T[$name,$key]:-}" ] || return 0
  m=$(echo "${T[$name,$key]}" | tr ' ' '\n' | grep . | median)
  mm=$(echo "${T[$name,$key]}" | tr ' ' '\n' | grep . | minmax)
  p=$(echo "${T[$name,plain]}" | tr ' ' '\n' | grep . | median)
  ratio=$(awk -v a="$m" -v b="$p" 'BEGIN { printf "%.3f", a / b }')
  printf '| %s | %s | %.2f | %s | %s | %s |\n' "$name" "$label" "$m" "$mm" "$ratio" "${CHECK[$name,$key]:-}"
}

med() { # name key -> median or empty
  [ -n "${T[$1,$2]:-}" ] || return 0
  echo "${T[$1,$2]}" | tr ' ' '\n' | grep . | median
}
goals() { # name cold-limit -> one line of met/missed
  local p c u ch sb rz sn snc
  p=$(med "$1" plain); c=$(med "$1" cold); u=$(med "$1" unchanged); ch=$(med "$1" changed)
  sb=$(med "$1" strace-bpf); rz=$(med "$1" reprozip); sn=$(med "$1" snakemake-noop); snc=$(med "$1" snakemake-changed)
  awk -v p="$p" -v c="$c" -v u="$u" -v ch="$ch" -v sb="$sb" -v rz="$rz" -v rzok="${CHECK[$1,reprozip]:-ok}" -v sn="$sn" -v snc="$snc" -v lim="$2" 'BEGIN {
    printf "cold %.3f of plain (goal <= %.2f: %s)", c / p, lim, (c / p <= lim ? "met" : "MISSED")
    printf "; cold vs strace --seccomp-bpf %.2f s: %s", sb, (c < sb ? "cheaper" : "NOT cheaper")
    if (rz != "" && rzok == "ok") printf "; vs reprozip %.2f s: %s", rz, (c < rz ? "cheaper" : "NOT cheaper")
    else printf "; reprozip: no successful run to compare with"
    printf "; unchanged %.4f of plain (goal < 0.02: %s)", u / p, (u / p < 0.02 ? "met" : "MISSED")
    printf ", vs snakemake no-op %.2f s: %s", sn, (u < sn ? "faster" : "NOT faster")
    printf "; after the change %.3f of plain (snakemake after the same change: %.3f)", ch / p, snc / p
  }'
}

{
  echo "# make bench: pcache on the fixture pipelines"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r), size \`$SIZE\`, median of $RUNS runs each (seconds, wall clock);"
  echo "ratio = median / plain median. pcache: ${BENCH_PCACHE_REV:-$(git rev-parse --short HEAD) (working tree)}. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Produced by \`make bench\` (bench/pipelines-bench.sh). The pcache column \"outputs\" says whether the working"
  echo "directory after every pcache run was identical to a plain run from the same state after the normalization"
  echo "listed in fixtures/pipelines/<name>/NONDETERMINISTIC.tsv (fixtures/pipelines/compare.py)."
  echo "The pcache rows run with --assume-idempotent (the pipelines are idempotent by construction), each"
  echo "round on an empty cache, so \"unchanged re-run\" is always the first re-run; one round also runs the"
  echo "default (strict) mode, whose first re-run repeats the steps that looked for their own outputs."
  echo
  echo "| pipeline | run | median | min-max | ratio to plain | outputs |"
  echo "| --- | --- | --- | --- | --- | --- |"
  for name in $PIPELINES; do
    row "$name" plain "plain"
    row "$name" plain-changed "plain, after the change (1 run)"
    row "$name" cold "pcache, cold cache"
    row "$name" unchanged "pcache, unchanged re-run"
    row "$name" strict-unchanged "pcache without --assume-idempotent, first unchanged re-run (1 run)"
    row "$name" changed "pcache, after a one-sample change"
    row "$name" strace "strace -f (file,process) > /dev/null"
    row "$name" strace-bpf "strace -f --seccomp-bpf (file,process)"
    row "$name" reprozip "reprozip trace (via noclone3)"
    row "$name" snakemake "snakemake, first run"
    row "$name" snakemake-noop "snakemake, no-op re-run"
    row "$name" snakemake-changed "snakemake, after the change"
  done
  echo
  echo "Goals of issue 5, checked against these medians:"
  echo
  for name in $PIPELINES; do
    limit=1.05; [ "$name" = chunks ] && limit=1.30
    echo "- $name: $(goals "$name" "$limit")"
  done
  echo
  [ "$HAVE_REPROZIP" = 1 ] || echo "reprozip: not installable from Debian here, not measured."
  echo "pcache summaries of the last run of each kind (\`--summary-json\`):"
  echo
  for name in $PIPELINES; do
    for k in cold unchanged changed strict-unchanged; do echo "- $name, $k: \`${INFO[$name,$k]}\`"; done
  done
  for name in $PIPELINES; do
    for k in cold unchanged changed; do
      [ -z "${INFO[$name,$k,diff]:-}" ] || echo "- $name, $k: outputs differ: ${INFO[$name,$k,diff]}"
    done
  done
  if [ ${#FAILED[@]} -gt 0 ]; then
    echo
    echo "Failed runs (their time is until the failure; the message of the last one):"
    echo
    for key in "${FAILED[@]}"; do echo "- $key: ${FAILMSG[$key]}"; done
  fi
} > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
