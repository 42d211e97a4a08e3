#!/usr/bin/env bash
# make bench: what caching costs and saves. For each pipeline: plain run, pcache
# first run (cold cache, recording everything), unchanged re-run, and re-run after
# changing one input; median of BENCH_RUNS (default 5, at least 3) runs each, with
# min-max and the ratio to plain. Writes bench/CACHE-RESULTS.md.
#
# Pipelines:
#   demo     fixtures/demo/pipeline.sh (k-mer counting, compute-bound steps)
#   chunks   fixtures/pipelines/chunks.sh 32 (about 100 short executions)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
RUNS="${BENCH_RUNS:-5}"
[ "$RUNS" -ge 3 ] || RUNS=3
OUT="${BENCH_OUT:-$ROOT/bench/CACHE-RESULTS.md}"
WORK="$ROOT/bench/work/cache"
PCACHE="$ROOT/bin/pcache"
[ -f dist/src/cli/main.js ] && [ -f native/build/Release/pcache_tracer.node ] || make -s build
# hyperfine-style harnesses randomize the environment; none is used here, but be safe.
export PCACHE_IGNORE_ENV="HYPERFINE_RANDOMIZED_ENVIRONMENT_OFFSET"

now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
minmax() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.3f-%.3f", lo, hi }'; }

prepare() { # pipeline -> fresh work dir with its inputs
  local name="$1" dir="$WORK/$1"
  rm -rf "$dir" && mkdir -p "$dir"
  case "$name" in
    demo) cp fixtures/demo/pipeline.sh "$dir/p.sh" ;;
    chunks)
      cp fixtures/pipelines/chunks.sh "$dir/p.sh"
      awk 'BEGIN { srand(7); for (i = 0; i < 200000; i++) { printf "w%d", int(rand() * 5000); for (j = 0; j < 8; j++) printf " w%d", int(rand() * 5000); print "" } }' > "$dir/data.txt"
      ;;
  esac
}

change_one() { # changes one input of the pipeline
  local name="$1" dir="$WORK/$1"
  case "$name" in
    demo) sed -i 's/print ">read" i; print s/print ">read" i; print s; if (i == 3999) print "" /' "$dir/p.sh" ;;
    chunks) # one line in the first chunk only
      sed -i '1s/^/changed /' "$dir/data.txt" ;;
  esac
}

time_cmd() { # dir, command... -> seconds
  local dir="$1"; shift
  local t0 t1
  t0=$(now)
  (cd "$dir" && "$@" >/dev/null 2>&1)
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }'
}

declare -A R
for name in demo chunks; do
  dir="$WORK/$name"
  arg=""; [ "$name" = chunks ] && arg=32
  for i in $(seq "$RUNS"); do
    prepare "$name"
    R[$name,plain]+="$(time_cmd "$dir" ./p.sh $arg) "
    prepare "$name"
    cache="$WORK/$name.cache"; rm -rf "$cache"
    R[$name,cold]+="$(time_cmd "$dir" "$PCACHE" --quiet --assume-idempotent --cache-dir "$cache" -- ./p.sh $arg) "
    R[$name,rerun]+="$(time_cmd "$dir" "$PCACHE" --quiet --assume-idempotent --cache-dir "$cache" -- ./p.sh $arg) "
    change_one "$name"
    R[$name,changed]+="$(time_cmd "$dir" "$PCACHE" --quiet --assume-idempotent --cache-dir "$cache" --summary-json "$WORK/$name.changed.json" -- ./p.sh $arg) "
  done
  R[$name,changed_summary]="$(cat "$WORK/$name.changed.json")"
done

{
  echo "# pcache caching benchmark"
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores, median of $RUNS runs (seconds), ratio = median / plain median."
  echo
  echo "| pipeline | run | median | min-max | ratio |"
  echo "| --- | --- | --- | --- | --- |"
  for name in demo chunks; do
    p=$(echo ${R[$name,plain]} | tr ' ' '\n' | median)
    for mode in plain cold rerun changed; do
      m=$(echo ${R[$name,$mode]} | tr ' ' '\n' | median)
      mm=$(echo ${R[$name,$mode]} | tr ' ' '\n' | minmax)
      echo "| $name | $mode | $m | $mm | $(awk -v a="$m" -v b="$p" 'BEGIN { printf "%.3f", a / b }') |"
    done
  done
  echo
  for name in demo chunks; do echo "- $name, after one change: \`${R[$name,changed_summary]}\`"; done
} | tee "$OUT"
